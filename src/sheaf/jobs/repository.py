"""Queries on the job table. ``transition`` is the only code that writes a job's status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.orm import Session

from sheaf.jobs.models import Job, JobEvent
from sheaf.jobs.states import ALLOWED_FROM, JobStatus
from sheaf.kit.base import utcnow


def transition(
    session: Session,
    job_id: str,
    to: JobStatus,
    *,
    from_: Iterable[JobStatus] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    message: str | None = None,
    **values: Any,
) -> bool:
    """Compare-and-set a job into ``to``; True if this call made the change.

    The update only applies while the job is in one of the allowed source statuses (and
    matches ``where``), so two racing writers cannot both win. Each change is logged.
    """
    allowed = ALLOWED_FROM[to] if from_ is None else frozenset(from_)
    if not allowed <= ALLOWED_FROM[to]:
        raise ValueError(f"illegal transition into {to} from {sorted(allowed - ALLOWED_FROM[to])}")
    now = utcnow()
    before = session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()
    if before is None or JobStatus(before) not in allowed:
        return False
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([s.value for s in allowed]), *where)
        .values(status=to.value, updated_at=now, **values)
        .returning(Job.status)
        .execution_options(synchronize_session=False)
    )
    if result.first() is None:
        return False
    session.execute(
        insert(JobEvent).values(
            job_id=job_id, at=now, from_status=before, to_status=to.value, message=message
        )
    )
    return True


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id, populate_existing=True)


def ids_starting(session: Session, prefix: str, limit: int = 10) -> list[str]:
    """Job ids that start with ``prefix`` (the CLI takes any unique one), in order."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = session.execute(
        select(Job.id).where(Job.id.like(f"{escaped}%", escape="\\")).order_by(Job.id)
        .limit(limit)
    )
    return list(rows.scalars())


def ready_ids(session: Session, limit: int = 100, waited: float = 0.0) -> list[str]:
    """Queued jobs whose time came at least ``waited`` seconds ago, oldest first."""
    rows = session.execute(
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED.value,
               Job.run_after <= utcnow() - timedelta(seconds=waited))
        .order_by(Job.run_after, Job.created_at)
        .limit(limit)
    )
    return list(rows.scalars())


def expired_leases(session: Session, now: datetime) -> list[Job]:
    return list(
        session.execute(
            select(Job).where(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now)
        ).scalars()
    )


def running_on(session: Session, worker_prefix: str) -> list[Job]:
    """Running jobs whose worker id starts with ``worker_prefix`` (``host:``)."""
    return list(session.execute(
        select(Job).where(Job.status == JobStatus.RUNNING.value,
                          Job.worker_id.startswith(worker_prefix, autoescape=True))
    ).scalars())


def active_payload_values(session: Session, key: str) -> set[str]:
    """``payload[key]`` of every queued or running job (e.g. the files they still need)."""
    rows = session.execute(
        select(Job.payload).where(Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
    ).scalars()
    return {str(p[key]) for p in rows if p and p.get(key)}


def owned_by(worker_id: str, attempt: int) -> list[ColumnElement[bool]]:
    """The fence of one claim: the job is still running under this worker and attempt.

    (The attempt makes each claim distinct: a worker id can come back, a claim cannot.)
    """
    return [Job.status == JobStatus.RUNNING.value, Job.worker_id == worker_id,
            Job.attempt == attempt]


def touch(session: Session, job_id: str, worker_id: str, attempt: int,
          **values: Any) -> bool | None:
    """Update a running job's own columns (lease, progress); never its status.

    Returns None if the job is no longer this claim's to run, else whether cancellation
    has been asked for (read in the same statement, so progress costs one round trip).
    """
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, *owned_by(worker_id, attempt))
        .values(updated_at=utcnow(), **values)
        .returning(Job.cancel_requested_at)
        .execution_options(synchronize_session=False)
    ).first()
    return None if row is None else row[0] is not None


def request_end(session: Session, job_id: str, status: JobStatus,
                message: dict[str, Any] | None = None, error_code: str | None = None) -> bool:
    """Ask a running job to stop and end as ``status`` once its worker has stopped.

    The job stays running (and keeps its lock key) until then: its worker stops at its
    next safe point, or finds the request when it tries to commit, which it then cannot.
    A worker that is gone is found by the reaper when its lease runs out.
    """
    job = session.execute(
        select(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .with_for_update()
    ).scalar_one_or_none()
    if job is None:
        return False
    values: dict[str, Any] = {"end_status": status.value, "updated_at": utcnow()}
    if job.cancel_requested_at is None:
        values["cancel_requested_at"] = utcnow()
    if error_code is not None:
        values["error_code"] = error_code
    if message is not None:
        values["messages"] = [*job.messages, message]
    done = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(**values).execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def end_as_requested(session: Session, job: Job, where: Sequence[ColumnElement[bool]],
                     message: str) -> JobStatus | None:
    """End a running job that was asked to stop, the way it was asked (see request_end)."""
    status = JobStatus(job.end_status or JobStatus.CANCELLED.value)
    done = transition(
        session, job.id, status, from_=[JobStatus.RUNNING], where=where, message=message,
        finished_at=utcnow(), lease_expires_at=None, error_code=job.error_code or "cancelled",
        progress_message="Cancelled" if status is JobStatus.CANCELLED else "Failed",
    )
    return status if done else None


def events(session: Session, job_id: str) -> list[JobEvent]:
    return list(
        session.execute(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        ).scalars()
    )
