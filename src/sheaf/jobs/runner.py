"""run_job(job_id): claim, run the handler, record the outcome. Every executor calls this."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from sqlalchemy import func

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import repository
from sheaf.jobs.context import JobContext
from sheaf.jobs.errors import JobCancelled, JobFailed, JobLost
from sheaf.jobs.models import Job
from sheaf.jobs.registry import spec_for
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import utcnow

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def claim(db: Database, job_id: str, worker_id: str, settings: Settings) -> Job | None:
    now = utcnow()
    with db.write() as session:
        claimed = repository.transition(
            session,
            job_id,
            JobStatus.RUNNING,
            where=[Job.run_after <= now],
            worker_id=worker_id,
            attempt=Job.attempt + 1,
            started_at=now,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=settings.jobs.lease_seconds),
        )
        return repository.get(session, job_id) if claimed else None


def run_job(db: Database, job_id: str, settings: Settings) -> JobStatus | None:
    """Run one job to an end (or a scheduled retry). Returns its new status, or None if
    another worker holds it or it is no longer queued."""
    worker_id = worker_name()
    job = claim(db, job_id, worker_id, settings)
    if job is None:
        return None
    spec = spec_for(job.type)
    ctx = JobContext(db, job, worker_id, settings)
    ctx.start_heartbeat()
    mine = repository.owned_by(worker_id, job.attempt)
    try:
        outcome = spec.handler(ctx)
    except JobCancelled:
        return _end_as_requested(db, job_id, mine)
    except JobLost:
        log.warning("job %s was taken from this worker; nothing of this run was applied", job_id)
        return None
    except JobFailed as failure:
        return _finish(
            db, job_id, JobStatus.FAILED, mine, failure.message,
            error_code=failure.code, messages=failure.messages, counters=failure.counters,
            progress_message="Failed",
        )
    except Exception as exc:  # unexpected: retry with backoff while attempts remain
        log.exception("job %s (%s) raised", job_id, job.type)
        text = f"{type(exc).__name__}: {exc}"
        if job.attempt < min(spec.max_attempts, job.max_attempts):
            delay = spec.backoff_seconds * (2 ** (job.attempt - 1))
            with db.write() as session:
                requeued = repository.transition(
                    session, job_id, JobStatus.QUEUED, from_=[JobStatus.RUNNING],
                    where=[*mine, Job.cancel_requested_at.is_(None)],
                    message=f"attempt {job.attempt} failed, retrying: {text}",
                    worker_id=None, lease_expires_at=None,
                    run_after=utcnow() + timedelta(seconds=delay),
                )
            return JobStatus.QUEUED if requeued else _end_as_requested(db, job_id, mine)
        return _finish(
            db, job_id, JobStatus.FAILED, mine, text, error_code="internal_error",
            messages=[{"level": "error", "key": "internal_error", "text": text}],
            progress_message="Failed",
        )
    finally:
        ctx.stop_heartbeat()
    if ctx.finished is not None:  # the handler committed its end with its data
        return ctx.finished
    status = JobStatus.WARNING if outcome.warning else JobStatus.SUCCEEDED
    return _finish(
        db, job_id, status, mine, None, messages=outcome.messages, counters=outcome.counters,
        progress_message="Completed",
        progress_current=func.coalesce(Job.progress_total, Job.progress_current),
    )


def _end_as_requested(db: Database, job_id: str, mine: list) -> JobStatus | None:
    """The handler stopped because it was asked to: end the job the way it was asked."""
    with db.write() as session:
        job = repository.get(session, job_id)
        ended = None if job is None else repository.end_as_requested(
            session, job, mine, "stopped on request")
    if ended is None:
        log.warning("job %s was taken from this worker before it could stop", job_id)
    return ended


def _finish(db: Database, job_id: str, status: JobStatus, where: list, message: str | None,
            **values: object) -> JobStatus | None:
    with db.write() as session:
        done = repository.transition(
            session, job_id, status, from_=[JobStatus.RUNNING], where=where, message=message,
            finished_at=utcnow(), lease_expires_at=None, **values,
        )
    if not done:
        log.warning("job %s was taken from this worker before it could finish", job_id)
        return None
    return status
