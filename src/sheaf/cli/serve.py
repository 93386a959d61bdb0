"""`sheaf serve`: API, console and embedded worker; migrations applied on start."""

from __future__ import annotations

import typer
import uvicorn

from sheaf.app import create_app
from sheaf.config import Settings


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    log_level: str = typer.Option("info"),
) -> None:
    """Run sheaf: the APIs, the console at /console and the embedded worker."""
    settings = Settings()
    typer.echo(f"sheaf: data in {settings.data_dir.resolve()}, database {settings.db_url}")
    typer.echo(f"sheaf: console at http://{host}:{port}/console/ , API docs at /docs")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
