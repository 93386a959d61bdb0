"""`sheaf serve`: API, console and embedded worker; migrations applied on start."""

from __future__ import annotations

import os

import typer

from sheaf.cli.common import load_settings, port_taken


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, envvar="SHEAF_PORT", help="TCP port."),
    workers: int = typer.Option(
        default_workers(), min=1,
        help="API processes sharing the port (default: the core count). Jobs and their "
             "maintenance run once, in the process this command starts."),
    log_level: str = typer.Option("info"),
) -> None:
    """Run sheaf: the APIs, the console at /console and the embedded worker."""
    from sheaf.serving import serve as run  # (here: other commands must not pay for the web stack)

    settings = load_settings()
    if problem := port_taken(host, port):
        raise typer.Exit(code=problem)
    typer.echo(f"sheaf: console at http://{host}:{port}/console/ , API docs at /docs")
    run(settings, host, port, workers, log_level)
