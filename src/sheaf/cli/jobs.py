"""`sheaf jobs list|show|watch`: read-only, so no migration check and no web stack."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from sheaf.cli.common import (
    Detached,
    console,
    database,
    detached,
    load_settings,
    pick_job_id,
    print_outcome,
    resolve_job_id,
    say_data_dir,
)
from sheaf.cli.common import watch as watch_job

if TYPE_CHECKING:
    from sheaf.jobs.models import Job

app = typer.Typer(no_args_is_help=True, help="Jobs: every aggregation run.")

JOB_ID = typer.Argument(..., help="A job id, or any start of one that is unique.")


@app.command("list")
def list_jobs(limit: int = typer.Option(20), status: str | None = typer.Option(None)) -> None:
    """The newest jobs, with whole ids."""
    from rich import box
    from rich.table import Table
    from sqlalchemy import select

    from sheaf.jobs.models import Job

    with database(load_settings()) as db, db.read() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if status:
            query = query.where(Job.status == status)
        jobs = list(session.execute(query).scalars())
    table = Table("id", "status", "progress", "created", "type", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, collapse_padding=True)
    for j in jobs:
        progress = f"{j.progress_current}/{j.progress_total or '?'}"
        table.add_row(j.id, j.status, progress, f"{j.created_at:%m-%d %H:%M:%S}", j.type)
    # (whole ids, never wrapped or cut: they are what `jobs show` and `jobs watch` take)
    table.columns[0].no_wrap = True
    table.columns[0].min_width = 32
    for column, width in ((1, 9), (3, 14)):  # (status and time whole; the type may give)
        table.columns[column].no_wrap = True
        table.columns[column].min_width = width
    console.print(table)


@app.command()
def show(job_id: str = JOB_ID) -> None:
    """One job as JSON."""
    from sheaf.cli import quick
    from sheaf.jobs.views import job_json

    if (local := quick.sqlite_file()) is not None:  # the default database: no ORM needed
        data_dir, path = local
        say_data_dir(f"data dir {data_dir}")
        if not path.exists():
            with database(load_settings()):  # (says there is none, and exits)
                pass
        found = quick.jobs_starting(path, job_id.strip().lower())
        full_id = pick_job_id(job_id, [j.id for j in found])
        job_row = next(j for j in found if j.id == full_id)
        typer.echo(json.dumps(job_json(job_row), indent=2))  # type: ignore[arg-type]
        return

    from sheaf.jobs import repository

    with database(load_settings()) as db:
        full_id = resolve_job_id(db, job_id)
        with db.read() as session:
            job = repository.get(session, full_id)
    if job is None:  # (deleted since)
        raise typer.Exit(code=2)
    typer.echo(json.dumps(job_json(job), indent=2))


@app.command()
def watch(job_id: str = JOB_ID) -> None:
    """A live progress bar until the job ends. Ctrl-C stops watching, not the job."""
    from sheaf.jobs import live, repository

    settings = load_settings()
    with database(settings) as db:
        full_id = resolve_job_id(db, job_id)

        def read() -> Job | None:
            with db.read() as session:
                job = repository.get(session, full_id)
            return None if job is None else live.overlay(job, settings.data_dir)

        try:
            job = watch_job(read, full_id)
        except Detached:
            raise detached(full_id) from None
    print_outcome(job)
    raise typer.Exit(code=0 if job.status in ("succeeded", "warning") else 1)
