"""What a running handler sees: its payload, throttled progress, cancellation, a lease,
and ``finish``: the fenced end a handler writes in the same transaction as its data."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import live, repository
from sheaf.jobs.errors import JobCancelled, JobLost
from sheaf.jobs.models import Job
from sheaf.jobs.registry import JobOutcome
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import utcnow


class JobContext:
    def __init__(self, db: Database, job: Job, worker_id: str, settings: Settings) -> None:
        self.db = db
        self.job_id = job.id
        self.type = job.type
        self.payload: dict[str, Any] = dict(job.payload)
        self.attempt = job.attempt
        self.worker_id = worker_id
        self.settings = settings
        # Set by ``finish``: the status this run committed together with its data.
        self.finished: JobStatus | None = None
        self._timing = settings.jobs
        self._last_write = 0.0
        self._live = False  # progress is in sheaf.jobs.live's file, not the row
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"heartbeat-{job.id[:8]}", daemon=True
        )

    # -- progress and cancellation -------------------------------------------------------
    def progress(
        self, current: int, total: int | None = None, message: str | None = None,
        *, force: bool = False, in_transaction: bool = False,
    ) -> None:
        """Record progress at most every ``progress_interval_seconds``; checks cancellation.

        ``in_transaction``: called while the handler's own write transaction is open. On
        SQLite that transaction holds the only write lock, so the numbers go to the file
        ``sheaf.jobs.live`` keeps (and cancellation waits for the next safe point).
        """
        now = time.monotonic()
        if not force and now - self._last_write < self._timing.progress_interval_seconds:
            return
        self._last_write = now
        if in_transaction and self.db.is_sqlite:
            live.write(self.settings.data_dir, self.job_id, current, total,
                       (message or "")[:500])
            self._live = True
            return
        if self._live:  # the row is the truth again
            self.clear_live_progress()
        values: dict[str, Any] = {"progress_current": current}
        if total is not None:
            values["progress_total"] = total
        if message is not None:
            values["progress_message"] = message[:500]
        with self.db.write() as session:
            cancel = repository.touch(session, self.job_id, self.worker_id, self.attempt,
                                      **values)
        if cancel:
            raise JobCancelled()
        if cancel is None:  # not this worker's any more: see whether it still exists
            self.check_cancelled()

    def clear_live_progress(self) -> None:
        live.clear(self.settings.data_dir, self.job_id)
        self._live = False

    def check_cancelled(self) -> None:
        """Raise JobCancelled if stop was asked, JobLost if the job is not ours any more."""
        with self.db.read() as session:
            job = repository.get(session, self.job_id)
        if job is None or job.status != JobStatus.RUNNING.value or (
                job.worker_id, job.attempt) != (self.worker_id, self.attempt):
            raise JobLost(f"job {self.job_id} is no longer this worker's")
        if job.cancel_requested_at is not None:
            raise JobCancelled()

    # -- the end, with the data -----------------------------------------------------------
    def finish(self, session: Session, outcome: JobOutcome) -> None:
        """Record ``outcome`` as this job's end inside the caller's data transaction.

        The update is fenced on this claim still owning a job nobody asked to stop, so the
        data and the task's report commit together or not at all: a job ended from outside
        or taken over cannot have its data applied, and a crash after the commit cannot
        leave a task that reruns or lies about what was applied. Raises JobCancelled (stop
        was asked) or JobLost (not ours any more); the caller's transaction then rolls back.
        """
        status = JobStatus.WARNING if outcome.warning else JobStatus.SUCCEEDED
        done = repository.transition(
            session, self.job_id, status, from_=[JobStatus.RUNNING],
            where=[*repository.owned_by(self.worker_id, self.attempt),
                   Job.cancel_requested_at.is_(None)],
            finished_at=utcnow(), lease_expires_at=None, messages=outcome.messages,
            counters=outcome.counters, progress_message="Completed",
            # (the bar full in the units it had: the last rows written were counted
            # beside the database, not in the row)
            progress_current=func.coalesce(Job.progress_total, Job.progress_current),
        )
        if done:
            self.finished = status
            return
        job = repository.get(session, self.job_id)
        if (job is not None and job.status == JobStatus.RUNNING.value
                and job.worker_id == self.worker_id and job.attempt == self.attempt):
            raise JobCancelled()
        raise JobLost(f"job {self.job_id} is no longer this worker's to finish")

    # -- lease -----------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat.is_alive():
            self._heartbeat.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self._timing.heartbeat_seconds):
            now = utcnow()
            try:
                with self.db.write() as session:
                    mine = repository.touch(
                        session,
                        self.job_id,
                        self.worker_id,
                        self.attempt,
                        heartbeat_at=now,
                        lease_expires_at=now + timedelta(seconds=self._timing.lease_seconds),
                    )
            except Exception:  # a missed beat is retried; the lease covers several
                continue
            if mine is None:  # the job ended or was taken over
                return
