"""Shared CLI plumbing: settings, a database or a runtime, following a job.

Imports stay light here (no web stack, no polars): `sheaf --help` and `sheaf jobs show`
must answer at once. What a command needs beyond that it imports inside its function.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from sheaf.config import Settings
    from sheaf.db import Database
    from sheaf.jobs.executors.base import Executor
    from sheaf.jobs.models import Job
    from sheaf.runtime import Runtime

console = Console(highlight=False, emoji=False, soft_wrap=True)
# (soft_wrap: paths, ids and commands are never broken across lines, so they copy whole.)
# Notes about the run itself (which data directory, what happened to a detached job) go
# to stderr, so that --json output and `jobs show` stay machine-readable.
notes = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

INTERRUPTED = 130  # the shell's code for "ended by Ctrl-C"


def load_settings() -> Settings:
    """The settings, once, and one dim line saying which data directory they point at."""
    from pydantic import ValidationError

    from sheaf.config import Settings

    try:
        settings = Settings()
    except ValidationError as exc:  # a bad SHEAF_* variable: say which, no traceback
        for error in exc.errors():
            name = "SHEAF_" + "__".join(str(p) for p in error["loc"]).upper()
            console.print(f"[red]{escape(name)}[/]: {escape(error['msg'])} "
                          f"(got {escape(repr(error.get('input')))})")
        raise typer.Exit(code=2) from None
    where = f"data dir {settings.data_dir}"
    if settings.database_url:
        where += f", database {_without_password(settings.database_url)}"
    say_data_dir(where)
    return settings


def say_data_dir(where: str) -> None:
    notes.print(f"[dim]sheaf: {escape(where)}[/]")


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: say nothing of it
        return "(unreadable SHEAF_DATABASE_URL)"


@contextmanager
def database(settings: Settings) -> Iterator[Database]:
    """The database as it is, for commands that only read: no migration check, and no
    empty database created where none was."""
    from sheaf.db import Database

    if settings.database_url is None and not (settings.data_dir / "sheaf.db").exists():
        console.print(f"[red]No sheaf database in {escape(str(settings.data_dir))}[/]: run "
                      "`sheaf db upgrade` (or `make run`) first, or point SHEAF_DATA_DIR at "
                      "the right directory.")
        raise typer.Exit(code=2)
    db = Database(settings.db_url)
    try:
        with _reachable(settings):
            yield db
    finally:
        db.dispose()


@contextmanager
def _reachable(settings: Settings) -> Iterator[None]:
    """A database that cannot be reached is a one-line message, not a traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        console.print(f"[red]Cannot use the database[/] "
                      f"{escape(_without_password(settings.db_url))}: {escape(first)}")
        raise typer.Exit(code=1) from None


@contextmanager
def migrated(settings: Settings) -> Iterator[Database]:
    """The database, migrated to the latest schema first (commands that write)."""
    from sheaf.db import Database
    from sheaf.migrate import upgrade

    with _reachable(settings):
        upgrade(settings)
    db = Database(settings.db_url)
    try:
        with _reachable(settings):
            yield db
    finally:
        db.dispose()


@contextmanager
def runtime(
    settings: Settings | None = None, *, start_executor: bool = False,
    executor: Executor | None = None,
) -> Iterator[Runtime]:
    """Migrations applied, the database, and (when asked) an executor running jobs."""
    from sheaf.finance import jobs as _finance_jobs  # noqa: F401  (registers handlers)
    from sheaf.identity import jobs as _identity_jobs  # noqa: F401  (registers handlers)
    from sheaf.migrate import upgrade
    from sheaf.runtime import Runtime

    settings = settings or load_settings()
    with _reachable(settings):
        upgrade(settings)
    rt = Runtime.build(settings, executor)
    if start_executor:
        rt.executor.start()
    interrupted = False
    try:
        yield rt
    except (KeyboardInterrupt, Detached):
        interrupted = True
        raise
    finally:
        # After Ctrl-C, do not wait for this process's own workers: the job they ran is
        # requeued once its lease expires (a killed run changes nothing).
        rt.executor.shutdown(graceful=not interrupted)
        rt.db.dispose()


def resolve_job_id(db: Database, prefix: str) -> str:
    """The one job whose id starts with ``prefix`` (as `jobs list` prints them)."""
    from sheaf.jobs import repository

    with db.read() as session:
        matches = repository.ids_starting(session, prefix.strip().lower(), limit=11)
    return pick_job_id(prefix, matches)


def pick_job_id(prefix: str, matches: list[str]) -> str:
    """The one match, else a message (none, or several: it lists them) and exit 2."""
    if len(matches) == 1:
        return matches[0]
    if not matches:
        console.print(f"[red]No job id starts with {escape(prefix)!r}.[/] `sheaf jobs list` "
                      "shows the newest.")
        raise typer.Exit(code=2)
    shown = "\n".join(f"  {m}" for m in matches[:10])
    more = "\n  ..." if len(matches) > 10 else ""
    console.print(f"[red]{escape(prefix)!r} is the start of several job ids[/]; give more of "
                  f"it:\n{shown}{more}")
    raise typer.Exit(code=2)


def _elapsed(job: Job) -> str:
    start = job.started_at or job.created_at
    end = job.finished_at or datetime.now(start.tzinfo)
    seconds = max(0, int((end - start).total_seconds()))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _message(job: Job) -> str:
    message = job.progress_message or ""
    if job.status == "running" and message == "Queued":  # claimed, handler not started yet
        return "Starting"
    return message


def _count(job: Job) -> str:
    if job.progress_total:
        return f"{job.progress_current:,}/{job.progress_total:,}"
    return f"{job.progress_current:,}" if job.progress_current else ""


class Detached(Exception):
    """Ctrl-C while following a job: the watch ends, the job may well go on."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def watch(read: Callable[[], Job | None] | Runtime, job_id: str, poll: float = 0.25) -> Job:
    """A live progress bar until the job ends; returns the finished job. ``read`` gives
    the job's latest state (or is a Runtime, whose job service does).

    The bar is the job row's own units (rows parsed, rows to compare, rows written of
    rows to write); the elapsed time is the job's, so it keeps counting between updates.
    Ctrl-C raises Detached.
    """
    from rich.progress import BarColumn, Progress, TextColumn

    from sheaf.jobs.states import TERMINAL, JobStatus

    if not callable(read):
        rt = read

        def read() -> Job | None:
            return rt.jobs.get(job_id)

    columns = [TextColumn("{task.fields[status]}", markup=False), BarColumn(),
               TextColumn("{task.fields[count]}", markup=False),
               TextColumn("{task.fields[elapsed]}", markup=False),
               TextColumn("{task.fields[message]}", markup=False)]
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(job_id, total=None, status="", count="", elapsed="",
                                message="")
            while True:
                job = read()
                if job is None:
                    console.print(f"[red]job {escape(job_id)} not found[/]")
                    raise typer.Exit(code=2)
                done = JobStatus(job.status) in TERMINAL
                total = job.progress_total or None
                completed = job.progress_current
                if done and total:
                    completed = total
                elif total and completed >= total:
                    # a full bar means finished: keep it one short until the job is
                    completed = max(0, total - 1)
                bar.update(task, completed=completed, total=total, status=job.status,
                           count=_count(job), elapsed=_elapsed(job), message=_message(job))
                if done:
                    return job
                time.sleep(poll)
    except KeyboardInterrupt:
        raise Detached(job_id) from None


def detached(job_id: str) -> typer.Exit:
    """Ctrl-C while watching a job that runs elsewhere: say it goes on; the exit to raise."""
    notes.print(f"Stopped watching. Job {job_id} goes on; follow it again with "
                f"`sheaf jobs watch {job_id}`.", markup=False)
    return typer.Exit(code=INTERRUPTED)


def finish_here(read: Callable[[], Job | None], job_id: str, poll: float = 0.25) -> Job:
    """Ctrl-C while this process itself runs the job (no server was running): the job
    cannot go on without it, so it is finished first; a second Ctrl-C abandons it at once.
    Either way the truth is said: an abandoned run changed nothing (its transaction is never
    committed) and a server runs it again once its lease expires."""
    from sheaf.jobs.states import TERMINAL, JobStatus

    notes.print(f"No server is running, so this command is running job {job_id} itself: "
                "finishing it before exiting. Ctrl-C again to abandon it (it changes "
                "nothing then, and a server, `sheaf serve`, runs it again once its lease "
                "expires).", markup=False)
    try:
        while True:
            job = read()
            if job is None or JobStatus(job.status) in TERMINAL:
                if job is None:
                    raise typer.Exit(code=INTERRUPTED)
                return job
            time.sleep(poll)
    except KeyboardInterrupt:
        notes.print(f"Abandoned job {job_id}; follow it with `sheaf jobs watch {job_id}`.",
                    markup=False)
        sys.stderr.flush()
        # (at once: waiting for the running transaction is what the user refused; SQLite
        # or PostgreSQL rolls it back, and the job's lease hands it to the next server)
        os._exit(INTERRUPTED)


def print_outcome(job: Job) -> None:
    style = {"succeeded": "green", "warning": "yellow"}.get(job.status, "red")
    console.print(f"job [bold]{job.id}[/] {escape(job.type)}: [{style}]{job.status}[/]")
    for key, value in job.counters.items():
        console.print(f"  {escape(str(key))}: {escape(str(value))}")
    for message in job.messages:
        console.print(f"  {message.get('level', 'info')}: {message.get('text', '')}",
                      markup=False)


def port_taken(host: str, port: int) -> int:
    """0 if ``host:port`` can be listened on; else says so (and what to do) and returns
    the exit code. Checked before anything else is done, so a taken port costs nothing."""
    import errno
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # (as uvicorn does: a port whose last connections linger in TIME_WAIT is free)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except (OSError, OverflowError) as exc:  # (OverflowError: not a port number)
            why = ("is already in use (another sheaf, or another program)"
                   if getattr(exc, "errno", None) == errno.EADDRINUSE
                   else f"cannot be used: {getattr(exc, 'strerror', None) or exc}")
            console.print(f"[red]Port {port} on {escape(host)} {escape(why)}.[/] Choose "
                          "another with `make run PORT=8001`, `sheaf serve --port 8001` or "
                          "SHEAF_PORT=8001.")
            return 1
    return 0
