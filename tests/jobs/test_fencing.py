"""A worker commits its data and its job's outcome together, and only while it owns the
job: ending a job from outside, or taking it over, can never let a stale worker commit."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from sheaf.jobs.context import JobContext
from sheaf.jobs.models import Job, JobEvent
from sheaf.jobs.reaper import reap
from sheaf.jobs.registry import JobOutcome, job_handler
from sheaf.jobs.runner import claim, run_job
from sheaf.jobs.service import LockHeld
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime

GATE = threading.Event()
WORKING = threading.Event()
DATA = "the handler's data"


@job_handler("test.fenced_write", max_attempts=3)
def fenced_write(ctx: JobContext) -> JobOutcome:
    """Works until GATE opens, then writes its 'data' (an event row) and its end together."""
    WORKING.set()
    assert GATE.wait(10)
    outcome = JobOutcome(counters={"written": 1})
    with ctx.db.write() as session:
        session.execute(insert(JobEvent).values(job_id=ctx.job_id, to_status="running",
                                                message=DATA))
        ctx.finish(session, outcome)
    return outcome


@pytest.fixture(autouse=True)
def _reset() -> None:
    GATE.clear()
    WORKING.clear()


def start(runtime: Runtime) -> tuple[Job, threading.Thread, list[object]]:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")
    result: list[object] = []
    t = threading.Thread(
        target=lambda: result.append(run_job(runtime.db, job.id, runtime.settings)))
    t.start()
    assert WORKING.wait(10)
    return job, t, result


def data_written(runtime: Runtime, job_id: str) -> bool:
    with runtime.db.read() as s:
        rows = s.execute(select(JobEvent.id).where(JobEvent.job_id == job_id,
                                                   JobEvent.message == DATA)).all()
    return bool(rows)


def get(runtime: Runtime, job_id: str) -> Job:
    job = runtime.jobs.get(job_id)
    assert job is not None
    return job


def test_outcome_commits_with_the_data(runtime: Runtime) -> None:
    job, t, result = start(runtime)
    GATE.set()
    t.join(10)
    assert result == [JobStatus.SUCCEEDED]
    done = get(runtime, job.id)
    assert done.status == "succeeded" and done.counters == {"written": 1}
    assert data_written(runtime, job.id)


@pytest.mark.parametrize("how", ["end", "cancel"])
def test_a_job_ended_while_running_keeps_its_lock_and_its_worker_cannot_commit(
    runtime: Runtime, how: str,
) -> None:
    job, t, result = start(runtime)
    if how == "end":
        runtime.jobs.end(job.id, JobStatus.FAILED, "Task status set by an administrator",
                         "cleared_by_operator")
    else:
        runtime.jobs.cancel(job.id)
    # Its worker is still at work: the job still holds the lock key.
    assert get(runtime, job.id).status == "running"
    with pytest.raises(LockHeld):
        runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")
    GATE.set()
    t.join(10)
    done = get(runtime, job.id)
    assert not data_written(runtime, job.id)  # the fence rolled the data back
    if how == "end":
        assert result == [JobStatus.FAILED]
        assert done.status == "failed" and done.error_code == "cleared_by_operator"
        assert done.messages[-1]["text"] == "Task status set by an administrator"
    else:
        assert result == [JobStatus.CANCELLED]
        assert done.status == "cancelled" and done.error_code == "cancelled"
    assert done.finished_at is not None and done.counters == {}
    # Now the lock is free.
    runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")


def test_ending_a_queued_job_ends_it_at_once(runtime: Runtime) -> None:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")
    runtime.jobs.end(job.id, JobStatus.FAILED, "cleared", "cleared_by_operator")
    assert get(runtime, job.id).status == "failed"
    runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")


def _expire(runtime: Runtime, job_id: str) -> None:
    with runtime.db.write() as s:
        s.execute(update(Job).where(Job.id == job_id)
                  .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_a_worker_whose_job_was_taken_over_cannot_commit(runtime: Runtime) -> None:
    job, t, result = start(runtime)
    _expire(runtime, job.id)  # its lease ran out (a long pause, a partition)
    assert reap(runtime.db) == [job.id]
    assert claim(runtime.db, job.id, "another-worker", runtime.settings) is not None
    GATE.set()
    t.join(10)
    assert result == [None]  # the first worker lost the job...
    assert not data_written(runtime, job.id)  # ...and committed nothing
    taken = get(runtime, job.id)
    assert taken.status == "running" and taken.worker_id == "another-worker"
    assert taken.attempt == 2


def test_the_same_worker_id_on_a_later_claim_does_not_own_an_earlier_one(
    runtime: Runtime,
) -> None:
    """The fence is the claim (worker and attempt), not the worker id alone."""
    job, t, result = start(runtime)
    running = get(runtime, job.id)
    _expire(runtime, job.id)
    reap(runtime.db)
    assert claim(runtime.db, job.id, str(running.worker_id), runtime.settings) is not None
    GATE.set()
    t.join(10)
    assert result == [None] and not data_written(runtime, job.id)


def test_reaper_ends_a_job_asked_to_stop_instead_of_rerunning_it(runtime: Runtime) -> None:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")
    assert claim(runtime.db, job.id, "dead-worker", runtime.settings) is not None
    runtime.jobs.end(job.id, JobStatus.FAILED, "cleared", "cleared_by_operator")
    assert get(runtime, job.id).status == "running"  # the worker might still be writing
    _expire(runtime, job.id)
    assert reap(runtime.db) == [job.id]
    done = get(runtime, job.id)
    assert done.status == "failed" and done.error_code == "cleared_by_operator"
    runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")


def test_reaper_hands_back_at_once_a_job_whose_worker_process_is_gone(
    runtime: Runtime,
) -> None:
    """A killed server's jobs, seen from the next server on the same host: no need to wait
    out the lease when the worker's process no longer exists."""
    import os
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    runtime.executor.paused = True  # type: ignore[attr-defined]
    dead = runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:1")
    alive = runtime.jobs.submit("test.fenced_write", {}, lock_key="thing:2")
    host = socket.gethostname()
    assert claim(runtime.db, dead.id, f"{host}:{gone.pid}:1", runtime.settings) is not None
    assert claim(runtime.db, alive.id, f"{host}:{os.getpid()}:1", runtime.settings) is not None
    assert reap(runtime.db) == [dead.id]  # (both leases are still good)
    assert get(runtime, dead.id).status == "queued"
    assert get(runtime, alive.id).status == "running"
