"""Finds running jobs whose worker stopped renewing its lease, and requeues or fails them.

``hand_back`` is also what an executor does when it sees its own worker process die, or
stops one at shutdown: the worker is known to be gone, so there is no lease to wait out.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from sheaf.db import Database
from sheaf.jobs import repository
from sheaf.jobs.models import Job
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import utcnow

log = logging.getLogger(__name__)


def hand_back(
    session: Session, job: Job, where: Sequence[ColumnElement[bool]], reason: str,
    *, count_attempt: bool = True,
) -> JobStatus | None:
    """A running job whose worker is gone (and can no longer commit): end it as asked if
    it was asked to stop, else requeue it while attempts remain, else fail it as crashed.

    ``count_attempt=False`` (a server shutting down stopped the worker) gives the attempt
    back. Returns the job's new status, or None if ``where`` no longer matched.
    """
    now = utcnow()
    if job.cancel_requested_at is not None:
        return repository.end_as_requested(session, job, where, f"{reason}; it was asked to stop")
    if not count_attempt or job.attempt < job.max_attempts:
        ok = repository.transition(
            session, job.id, JobStatus.QUEUED, from_=[JobStatus.RUNNING], where=where,
            message=f"{reason}; requeued", worker_id=None, lease_expires_at=None, run_after=now,
            attempt=Job.attempt if count_attempt else Job.attempt - 1,
            progress_message="Queued",
        )
        return JobStatus.QUEUED if ok else None
    text = f"{reason} during attempt {job.attempt}"
    ok = repository.transition(
        session, job.id, JobStatus.FAILED, from_=[JobStatus.RUNNING], where=where,
        message=text, error_code="crashed", finished_at=now, lease_expires_at=None,
        messages=[*job.messages, {"level": "error", "key": "crashed", "text": text}],
        progress_message="Failed",
    )
    return JobStatus.FAILED if ok else None


def reap(db: Database) -> list[str]:
    """Handle every expired lease once, and every job of a worker process of this host
    that no longer exists (a killed server's: no need to wait out its lease); returns
    the ids of jobs it changed."""
    changed = []
    with db.write() as session:
        now = utcnow()
        for job in repository.expired_leases(session, now):
            # Only this exact lease: a worker that heartbeats meanwhile keeps its job.
            same_lease = [Job.lease_expires_at == job.lease_expires_at]
            if hand_back(session, job, same_lease, f"worker {job.worker_id} lost its lease"):
                log.warning("reaped job %s", job.id)
                changed.append(job.id)
        for job in repository.running_on(session, f"{socket.gethostname()}:"):
            if job.id in changed or _process_exists(job.worker_id):
                continue
            same_claim = [Job.worker_id == job.worker_id, Job.attempt == job.attempt]
            if hand_back(session, job, same_claim, f"worker {job.worker_id} is gone"):
                log.warning("handed back job %s of a worker that is gone", job.id)
                changed.append(job.id)
    return changed


def _process_exists(worker_id: str | None) -> bool:
    """Whether the process of a worker id of this host (host:pid:thread) still exists.

    Unsure means yes (the lease decides then). A pid reused since only delays the hand
    back; a worker wrongly thought gone (another pid namespace under the same host name)
    cannot commit once its job is handed back: its write is fenced on the claim.
    """
    try:
        pid = int(str(worker_id).split(":")[1])
    except (IndexError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (exists, someone else's)
        return True
    return True
