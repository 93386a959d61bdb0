"""`sheaf identity load-accounts SOURCE FILE`"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from sheaf.cli.common import (
    INTERRUPTED,
    Detached,
    console,
    detached,
    finish_here,
    load_settings,
    notes,
    print_outcome,
)
from sheaf.cli.common import runtime as make_runtime
from sheaf.cli.common import watch as watch_job

if TYPE_CHECKING:
    from sheaf.jobs.executors.base import Executor

app = typer.Typer(no_args_is_help=True, help="Identity sources and aggregations.")


@app.command("load-accounts")
def load_accounts(
    source: str = typer.Argument(..., help="Source id or name."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    disable_optimization: bool = typer.Option(False, help="Reprocess unchanged accounts."),
) -> None:
    """Submit a CSV snapshot for aggregation and watch it until it ends.

    With a server running on the same database, the server's workers run it (Ctrl-C
    then only stops watching); otherwise this command runs it itself.
    """
    from sheaf.errors import SheafError
    from sheaf.identity import service
    from sheaf.jobs.presence import HandOff, live_server

    settings = load_settings()
    executor: Executor | None = None
    server = settings.jobs.executor == "dramatiq"  # (then `sheaf worker`s run every job)
    if settings.jobs.executor == "local" and (found := live_server(settings)):
        notes.print(f"[dim]sheaf: handing the job to the server running here "
                    f"(pid {found['pid']})[/]")
        executor, server = HandOff(), True
    elif not server:
        # Run it in a thread of this process: no worker process to start (a second or
        # more), and Ctrl-C ends one process, not a family of them.
        settings.jobs.isolation = "thread"
    try:
        with make_runtime(settings, start_executor=True, executor=executor) as rt:
            try:
                source_id = service.resolve_source(rt, source)
                with file.open("rb") as stream:
                    submitted = service.load_accounts(
                        rt, source_id, service.store_file(rt, stream),
                        disable_optimization=disable_optimization, launcher="cli")
            except SheafError as exc:
                console.print(f"[red]{escape(exc.message)}[/]")
                raise typer.Exit(code=2) from None
            job_id = submitted.id
            try:
                job = watch_job(lambda: rt.jobs.get(job_id), job_id)
            except Detached:
                if server:
                    raise
                print_outcome(finish_here(lambda: rt.jobs.get(job_id), job_id))
                raise typer.Exit(code=INTERRUPTED) from None
    except Detached as stopped:
        raise detached(stopped.job_id) from None
    print_outcome(job)
    raise typer.Exit(code=0 if job.status in ("succeeded", "warning") else 1)
