"""`sheaf db ...`"""

from __future__ import annotations

import typer

from sheaf.config import Settings
from sheaf.migrate import upgrade as run_upgrade

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    settings = Settings()
    run_upgrade(settings, revision)
    typer.echo(f"database at {revision}: {settings.db_url}")
