"""`sheaf serve`: API, console and embedded worker; migrations applied on start."""

from __future__ import annotations

import typer

from sheaf.cli.common import load_settings, port_taken


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, envvar="SHEAF_PORT", help="TCP port."),
    log_level: str = typer.Option("info"),
) -> None:
    """Run sheaf: the APIs, the console at /console and the embedded worker."""
    import uvicorn  # (here, not at the top: other commands must not pay for the web stack)

    from sheaf.app import create_app

    settings = load_settings()
    if problem := port_taken(host, port):
        raise typer.Exit(code=problem)
    typer.echo(f"sheaf: console at http://{host}:{port}/console/ , API docs at /docs")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
