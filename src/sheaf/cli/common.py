"""Shared CLI plumbing: settings, a runtime with a running executor, watching a job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sheaf.config import Settings
from sheaf.identity import jobs as _identity_jobs  # noqa: F401  (registers handlers)
from sheaf.jobs.models import Job
from sheaf.jobs.states import TERMINAL, JobStatus
from sheaf.migrate import upgrade
from sheaf.runtime import Runtime
from sheaf.utility import jobs as _utility_jobs  # noqa: F401  (registers handlers)

console = Console()


@contextmanager
def runtime(*, start_executor: bool = False) -> Iterator[Runtime]:
    settings = Settings()
    upgrade(settings)
    rt = Runtime.build(settings)
    if start_executor:
        rt.executor.start()
    try:
        yield rt
    finally:
        rt.close()


def watch(rt: Runtime, job_id: str, poll: float = 0.25) -> Job:
    """A live progress bar until the job ends; returns the finished job."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[message]}")]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(job_id[:8], total=None, message="")
        while True:
            job = rt.jobs.get(job_id)
            if job is None:
                raise SystemExit(f"job {job_id} not found")
            bar.update(task, completed=job.progress_current, total=job.progress_total,
                       message=f"{job.status}: {job.progress_message or ''}")
            if JobStatus(job.status) in TERMINAL:
                return job
            time.sleep(poll)


def print_outcome(job: Job) -> None:
    style = {"succeeded": "green", "warning": "yellow"}.get(job.status, "red")
    console.print(f"job [bold]{job.id}[/] {job.type}: [{style}]{job.status}[/]")
    for key, value in job.counters.items():
        console.print(f"  {key}: {value}")
    for message in job.messages:
        console.print(f"  [{message['level']}] {message['text']}")
