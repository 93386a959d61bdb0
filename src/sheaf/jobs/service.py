"""Submitting, refusing, cancelling and reading jobs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sheaf.db import Database
from sheaf.jobs import live, repository
from sheaf.jobs.executors.base import Executor
from sheaf.jobs.models import IS_ACTIVE, Job, JobEvent
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import new_id, utcnow


class LockHeld(Exception):
    """Another job holding the same lock key is queued or running."""

    def __init__(self, lock_key: str, holder_id: str | None) -> None:
        super().__init__(f"lock {lock_key} is held by job {holder_id}")
        self.lock_key = lock_key
        self.holder_id = holder_id


class IdempotencyKeyReused(Exception):
    """The client sent an idempotency key it already used, with a different request."""

    def __init__(self, key: str, job: Job) -> None:
        super().__init__(
            f"The Idempotency-Key '{key}' was already used by this client for another request "
            f"(task {job.id}); send a new key for a new request, or repeat the first request "
            "exactly to get its task back."
        )
        self.key = key
        self.job = job


def request_fingerprint(type_: str, subject_id: str | None, request: dict[str, Any]) -> str:
    """A digest of what a request asked for: same digest, same request."""
    canonical = json.dumps([type_, subject_id, request], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _keyed_job(session: Session, client: str, key: str, fingerprint: str,
               type_: str, subject_id: str | None) -> Job | None:
    """The job this client's key created, if any; raises if it came with another request."""
    job = session.execute(
        select(Job).where(Job.idempotency_client == client, Job.idempotency_key == key)
    ).scalar_one_or_none()
    if job is None:
        return None
    if job.request_fingerprint is None:  # keyed before requests were recorded
        same = job.type == type_ and job.subject_id == subject_id
    else:
        same = job.request_fingerprint == fingerprint
    if not same:
        raise IdempotencyKeyReused(key, job)
    return job


def active_holder(session: Session, lock_key: str) -> str | None:
    return session.execute(
        select(Job.id).where(Job.lock_key == lock_key, IS_ACTIVE)
    ).scalar_one_or_none()


class JobService:
    def __init__(self, db: Database, executor: Executor, max_attempts: int = 3,
                 data_dir: Path | None = None) -> None:
        self.db = db
        self.executor = executor
        self.max_attempts = max_attempts
        self.data_dir = data_dir  # where running jobs may keep live progress (jobs.live)

    def submit(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        lock_key: str | None = None,
        idempotency_key: str | None = None,
        idempotency_client: str = "",
        request: dict[str, Any] | None = None,
        subject_id: str | None = None,
        launcher: str = "System",
        total: int | None = None,
    ) -> Job:
        """Create a queued job and hand its id to the executor once it is committed.

        An idempotency key belongs to ``idempotency_client`` (the API client that sent
        it): repeated with the same request (job type, subject and ``request``, e.g. the
        endpoint and its parameters) it returns the job it first created; repeated with
        another request it raises IdempotencyKeyReused. Another client's equal key is
        another key. A held lock key raises LockHeld.
        """
        fingerprint = request_fingerprint(type_, subject_id, request or {})
        try:
            with self.db.write() as session:
                if idempotency_key is not None and (existing := _keyed_job(
                        session, idempotency_client, idempotency_key, fingerprint, type_,
                        subject_id)):
                    return existing
                if lock_key is not None and (holder := active_holder(session, lock_key)):
                    raise LockHeld(lock_key, holder)
                keyed = ({} if idempotency_key is None else
                         {"idempotency_key": idempotency_key,
                          "idempotency_client": idempotency_client,
                          "request_fingerprint": fingerprint})
                job = self._new(
                    session, type_, payload, lock_key=lock_key, subject_id=subject_id,
                    launcher=launcher, progress_total=total, progress_message="Queued", **keyed,
                )
        except IntegrityError as exc:  # lost a race another transaction won
            if idempotency_key is not None:
                with self.db.read() as session:
                    existing = _keyed_job(session, idempotency_client, idempotency_key,
                                          fingerprint, type_, subject_id)
                if existing is not None:
                    return existing
            if lock_key is None:
                raise
            with self.db.read() as session:
                raise LockHeld(lock_key, active_holder(session, lock_key)) from exc
        self.executor.submit(job.id)
        return job

    def refuse(
        self, type_: str, payload: dict[str, Any], *, code: str, message: str,
        subject_id: str | None = None, launcher: str = "System",
    ) -> Job:
        """Record a run that was refused before it started, as a job that ended failed.

        Vendors such as SailPoint accept the request and report the refusal in the task.
        """
        with self.db.write() as session:
            job = self._new(session, type_, payload, subject_id=subject_id, launcher=launcher,
                            progress_message="Refused")
            repository.transition(
                session, job.id, JobStatus.FAILED, from_=[JobStatus.QUEUED], message=message,
                error_code=code, finished_at=utcnow(),
                messages=[{"level": "error", "key": code, "text": message}],
            )
            return repository.get(session, job.id)  # type: ignore[return-value]

    def _new(self, session: Session, type_: str, payload: dict[str, Any], **values: Any) -> Job:
        now = utcnow()
        job = Job(id=new_id(), type=type_, status=JobStatus.QUEUED.value, payload=payload,
                  max_attempts=self.max_attempts, created_at=now, updated_at=now, run_after=now,
                  messages=[], counters={}, **values)
        session.add(job)
        session.flush()
        session.add(JobEvent(job_id=job.id, at=now, to_status=JobStatus.QUEUED.value,
                             message="submitted"))
        return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; ask a running one to stop at its next safe point.

        A running job stays running, holding its lock key, until its worker has stopped
        (see repository.request_end): it then ends cancelled with nothing applied.
        """
        with self.db.write() as session:
            job = repository.get(session, job_id)
            if job is None:
                return None
            if job.status == JobStatus.QUEUED.value:
                repository.transition(
                    session, job_id, JobStatus.CANCELLED, from_=[JobStatus.QUEUED],
                    message="cancelled before it started", error_code="cancelled",
                    finished_at=utcnow(), progress_message="Cancelled",
                )
            elif job.status == JobStatus.RUNNING.value and job.cancel_requested_at is None:
                repository.request_end(session, job_id, JobStatus.CANCELLED)
            return repository.get(session, job_id)

    def end(self, job_id: str, status: JobStatus, message: str, code: str) -> Job | None:
        """End an unfinished job as ``status`` (an operator clearing a stuck task).

        A queued job ends at once. A running one is asked to stop and ends as ``status``
        once its worker has stopped, or once its lease runs out if the worker is gone:
        until then it keeps its lock key, and what its worker was writing is never applied.
        """
        note = {"level": "error", "key": code, "text": message}
        with self.db.write() as session:
            job = repository.get(session, job_id)
            if job is None:
                return None
            if not repository.transition(
                session, job_id, status, from_=[JobStatus.QUEUED], message=message,
                error_code=code, finished_at=utcnow(), lease_expires_at=None,
                cancel_requested_at=utcnow(), progress_message=message[:500],
                messages=[*job.messages, note],
            ):
                repository.request_end(session, job_id, status, note, code)
            return repository.get(session, job_id)

    def get(self, job_id: str) -> Job | None:
        with self.db.read() as session:
            job = repository.get(session, job_id)
        if job is not None and self.data_dir is not None:
            job = live.overlay(job, self.data_dir)
        return job

