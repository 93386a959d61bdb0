"""Finds running jobs whose worker stopped renewing its lease, and requeues or fails them."""

from __future__ import annotations

import logging

from sheaf.db import Database
from sheaf.jobs import repository
from sheaf.jobs.models import Job
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import utcnow

log = logging.getLogger(__name__)


def reap(db: Database) -> list[str]:
    """Handle every expired lease once; returns the ids of jobs it changed."""
    changed = []
    with db.write() as session:
        now = utcnow()
        for job in repository.expired_leases(session, now):
            # Only this exact lease: a worker that heartbeats meanwhile keeps its job.
            same_lease = [Job.lease_expires_at == job.lease_expires_at]
            if job.attempt < job.max_attempts:
                ok = repository.transition(
                    session, job.id, JobStatus.QUEUED, from_=[JobStatus.RUNNING],
                    where=same_lease, message=f"worker {job.worker_id} lost its lease; requeued",
                    worker_id=None, lease_expires_at=None, run_after=now,
                )
            else:
                text = f"worker {job.worker_id} stopped during attempt {job.attempt}"
                ok = repository.transition(
                    session, job.id, JobStatus.FAILED, from_=[JobStatus.RUNNING],
                    where=same_lease, message=text, error_code="crashed", finished_at=now,
                    lease_expires_at=None,
                    messages=[*job.messages, {"level": "error", "key": "crashed", "text": text}],
                )
            if ok:
                log.warning("reaped job %s", job.id)
                changed.append(job.id)
    return changed
