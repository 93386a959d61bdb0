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


def active_payload_values(session: Session, key: str) -> set[str]:
    """``payload[key]`` of every queued or running job (e.g. the files they still need)."""
    rows = session.execute(
        select(Job.payload).where(Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
    ).scalars()
    return {str(p[key]) for p in rows if p and p.get(key)}


def touch(session: Session, job_id: str, worker_id: str, **values: Any) -> bool | None:
    """Update a running job's own columns (lease, progress); never its status.

    Returns None if the job is no longer this worker's to run, else whether cancellation
    has been asked for (read in the same statement, so progress costs one round trip).
    """
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value, Job.worker_id == worker_id)
        .values(updated_at=utcnow(), **values)
        .returning(Job.cancel_requested_at)
        .execution_options(synchronize_session=False)
    ).first()
    return None if row is None else row[0] is not None


def events(session: Session, job_id: str) -> list[JobEvent]:
    return list(
        session.execute(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        ).scalars()
    )
