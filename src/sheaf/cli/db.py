"""`sheaf db ...`"""

from __future__ import annotations

import typer

from sheaf.cli.common import load_settings

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from sheaf.migrate import upgrade as run_upgrade

    settings = load_settings()
    run_upgrade(settings, revision)
    typer.echo(f"database at {revision}")
