"""`sheaf worker`: the job runner of the scaled-out mode."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from sheaf.cli.common import load_settings


def worker(
    threads: int = typer.Option(0, help="Jobs run at once (default: SHEAF_JOBS__WORKERS)."),
) -> None:
    """Run the jobs that servers with SHEAF_JOBS__EXECUTOR=dramatiq send through Redis.

    Start as many as you like, on any host that reaches the same database, broker and
    blob directory. SIGTERM or Ctrl-C stops taking work and lets running jobs finish.
    """
    from sheaf.jobs.executors.distributed import serve_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        typer.echo(f"sheaf worker: {signal.Signals(signum).name}, finishing running jobs")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve_worker(settings, threads or settings.jobs.workers, stop)
