"""`sheaf jobs list|show|watch`"""

from __future__ import annotations

import json

import typer
from rich.table import Table
from sqlalchemy import select

from sheaf.cli.common import console, print_outcome, runtime
from sheaf.cli.common import watch as watch_job
from sheaf.jobs.endpoints import job_json
from sheaf.jobs.models import Job

app = typer.Typer(no_args_is_help=True, help="Jobs: every aggregation run.")


@app.command("list")
def list_jobs(limit: int = typer.Option(20), status: str | None = typer.Option(None)) -> None:
    """The newest jobs."""
    with runtime() as rt, rt.db.read() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status:
            query = query.where(Job.status == status)
        jobs = list(session.execute(query).scalars())
    table = Table("id", "type", "status", "progress", "created")
    for j in jobs:
        progress = f"{j.progress_current}/{j.progress_total or '?'} {j.progress_message or ''}"
        table.add_row(j.id, j.type, j.status, progress, f"{j.created_at:%Y-%m-%d %H:%M:%S}")
    console.print(table)


@app.command()
def show(job_id: str) -> None:
    """One job as JSON."""
    with runtime() as rt:
        job = rt.jobs.get(job_id)
    if job is None:
        raise typer.Exit(code=_missing(job_id))
    typer.echo(json.dumps(job_json(job), indent=2))


@app.command()
def watch(job_id: str) -> None:
    """A live progress bar until the job ends."""
    with runtime() as rt:
        if rt.jobs.get(job_id) is None:
            raise typer.Exit(code=_missing(job_id))
        job = watch_job(rt, job_id)
    print_outcome(job)
    raise typer.Exit(code=0 if job.status in ("succeeded", "warning") else 1)


def _missing(job_id: str) -> int:
    console.print(f"[red]job {job_id} not found[/]")
    return 2
