"""The scaled-out executor: job ids travel through Redis (dramatiq) to ``sheaf worker``
processes on any number of hosts, which share the database (PostgreSQL) and blob store.

The broker carries nothing but ids. Its retries, time limit and age limit are left out:
retries and backoff belong to the job core, a long aggregation is kept alive by its
lease, and a message delivered twice is harmless because claiming a job is a
compare-and-set (the second delivery finds it no longer queued).

When the job core schedules a retry, the worker sends the id again, delayed by the
backoff. A message that is lost anyway (Redis restarted empty) is made up for by the
servers' maintenance pass, which re-sends a job left queued for a lease's length.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import repository, worker
from sheaf.jobs.maintenance import Maintenance
from sheaf.jobs.runner import run_job
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import utcnow

log = logging.getLogger(__name__)
ACTOR_NAME = "sheaf_run_job"


def _broker_and_actor(
    settings: Settings, run: Callable[[str], None]
) -> tuple[RedisBroker, dramatiq.Actor[[str], None]]:
    broker = RedisBroker(url=settings.jobs.broker_url, middleware=[])
    actor = dramatiq.Actor(run, broker=broker, actor_name=ACTOR_NAME,
                           queue_name=settings.jobs.queue, priority=0, options={})
    return broker, actor


def _not_here(job_id: str) -> None:  # the API side only sends
    raise RuntimeError(f"job {job_id} was delivered to a process that does not run jobs")


class DramatiqExecutor:
    """The API side: send job ids; keep the maintenance pass (reaper, due retries)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.broker, self.actor = _broker_and_actor(settings, _not_here)
        self._resend_after = settings.jobs.lease_seconds
        self._sent: dict[str, float] = {}
        self._lock = threading.Lock()
        self._maintenance = Maintenance(db, settings, self._offer, waited=self._resend_after)

    def start(self) -> None:
        self._maintenance.start()

    def submit(self, job_id: str) -> None:
        try:
            self.actor.send(job_id)
        except Exception:  # the job row is saved: the maintenance pass will send it later
            log.exception("could not send job %s to the broker", job_id)
            return
        with self._lock:
            self._sent[job_id] = time.monotonic()

    def _offer(self, job_id: str) -> None:
        """Re-send a job that has waited a lease's length, once per lease from this
        server: a long backlog must not fill the queue with copies."""
        now = time.monotonic()
        with self._lock:
            self._sent = {j: t for j, t in self._sent.items() if now - t < self._resend_after}
            if job_id in self._sent:
                return
        self.submit(job_id)

    def shutdown(self, graceful: bool = True) -> None:
        self._maintenance.stop(timeout=30 if graceful else 0)
        self.broker.close()


def serve_worker(settings: Settings, threads: int, stop: threading.Event) -> None:
    """Run jobs delivered through the broker until ``stop`` is set (``sheaf worker``)."""
    db = Database(settings.db_url)
    worker.import_handlers()

    def run(job_id: str) -> None:
        try:
            if run_job(db, job_id, settings) is JobStatus.QUEUED:
                _send_retry(db, actor, job_id)
        except Exception:  # the job core records outcomes; this is its own failure
            log.exception("could not run job %s", job_id)

    broker, actor = _broker_and_actor(settings, run)
    consumer = dramatiq.Worker(broker, queues={settings.jobs.queue}, worker_threads=threads,
                               worker_timeout=200)
    consumer.start()
    log.info("sheaf worker: %d thread(s) on queue %s at %s", threads, settings.jobs.queue,
             settings.jobs.broker_url)
    try:
        stop.wait()
    finally:
        # Running jobs get the lease's length to finish; what is cut off is requeued by a
        # reaper once its lease expires.
        consumer.stop(timeout=int(settings.jobs.lease_seconds * 1000))
        broker.close()
        db.dispose()


def _send_retry(db: Database, actor: dramatiq.Actor[[str], None], job_id: str) -> None:
    """The job core put the job back in the queue to retry after a backoff: deliver it
    again when that time comes."""
    with db.read() as session:
        job = repository.get(session, job_id)
    if job is None or job.status != JobStatus.QUEUED.value:
        return
    delay_ms = max(0, int((job.run_after - utcnow()).total_seconds() * 1000))
    actor.send_with_options(args=(job_id,), delay=delay_ms)
