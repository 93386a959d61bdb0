"""The job core against a real database: transitions, locks, leases, cancellation, retries."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from sheaf.jobs import repository
from sheaf.jobs.context import JobContext
from sheaf.jobs.errors import JobFailed
from sheaf.jobs.models import Job
from sheaf.jobs.reaper import reap
from sheaf.jobs.registry import JobOutcome, job_handler
from sheaf.jobs.runner import claim, run_job
from sheaf.jobs.service import LockHeld
from sheaf.jobs.states import JobStatus
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime

CALLS: list[str] = []
GATE = threading.Event()
STARTED = threading.Event()


@job_handler("test.echo")
def echo(ctx: JobContext) -> JobOutcome:
    CALLS.append(ctx.job_id)
    return JobOutcome(counters={"echo": ctx.payload.get("n")})


@job_handler("test.flaky", max_attempts=3, backoff_seconds=0)
def flaky(ctx: JobContext) -> JobOutcome:
    if ctx.attempt < 2:
        raise RuntimeError("transient")
    return JobOutcome(messages=[{"level": "warning", "key": "w", "text": "late"}], warning=True)


@job_handler("test.refuse")
def refuse(ctx: JobContext) -> JobOutcome:
    raise JobFailed("invalid_input", "bad input on line 3")


@job_handler("test.wait")
def wait(ctx: JobContext) -> JobOutcome:
    STARTED.set()
    for i in range(400):
        ctx.progress(i, 400, "waiting", force=True)
        if GATE.wait(0.01):
            break
    return JobOutcome()


def submit(runtime: Runtime, type_: str = "test.echo", **kw: object) -> Job:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    return runtime.jobs.submit(type_, {"n": 1}, **kw)  # type: ignore[arg-type]


def status(runtime: Runtime, job_id: str) -> str:
    job = runtime.jobs.get(job_id)
    assert job is not None
    return job.status


def test_transition_is_compare_and_set(runtime: Runtime) -> None:
    job = submit(runtime)
    with runtime.db.write() as s:
        assert repository.transition(s, job.id, JobStatus.RUNNING)
        assert not repository.transition(s, job.id, JobStatus.RUNNING)  # already running
        assert repository.transition(s, job.id, JobStatus.SUCCEEDED, finished_at=utcnow())
        assert not repository.transition(s, job.id, JobStatus.FAILED)  # terminal stays put
    with pytest.raises(ValueError), runtime.db.write() as s:
        repository.transition(s, job.id, JobStatus.SUCCEEDED, from_=[JobStatus.QUEUED])
    with runtime.db.read() as s:
        events = [(e.from_status, e.to_status) for e in repository.events(s, job.id)]
    assert events == [(None, "queued"), ("queued", "running"), ("running", "succeeded")]


def test_run_job_records_outcome_and_runs_once(runtime: Runtime) -> None:
    job = submit(runtime)
    assert run_job(runtime.db, job.id, runtime.settings) == JobStatus.SUCCEEDED
    assert run_job(runtime.db, job.id, runtime.settings) is None  # no second run
    done = runtime.jobs.get(job.id)
    assert done is not None and done.counters == {"echo": 1} and done.attempt == 1
    assert done.finished_at is not None and done.lease_expires_at is None


def test_one_active_job_per_lock_key(runtime: Runtime) -> None:
    first = submit(runtime, lock_key="source:1")
    with pytest.raises(LockHeld) as held:
        submit(runtime, lock_key="source:1")
    assert held.value.holder_id == first.id
    other = submit(runtime, lock_key="source:2")  # other keys are free
    runtime.executor.drain()  # type: ignore[attr-defined]
    assert status(runtime, first.id) == status(runtime, other.id) == "succeeded"
    submit(runtime, lock_key="source:1")  # released once the holder ended


def test_database_enforces_the_lock_key(runtime: Runtime) -> None:
    from sqlalchemy.exc import IntegrityError

    submit(runtime, lock_key="source:9")
    with pytest.raises(IntegrityError), runtime.db.write() as s:
        s.add(Job(id="f" * 32, type="test.echo", status="queued", payload={}, lock_key="source:9",
                  messages=[], counters={}))


def test_idempotency_key_returns_the_same_job(runtime: Runtime) -> None:
    a = submit(runtime, idempotency_key="k1")
    b = submit(runtime, idempotency_key="k1")
    c = submit(runtime, idempotency_key="k2")
    assert a.id == b.id != c.id


def test_expected_failure_is_not_retried(runtime: Runtime) -> None:
    job = submit(runtime, "test.refuse")
    assert run_job(runtime.db, job.id, runtime.settings) == JobStatus.FAILED
    done = runtime.jobs.get(job.id)
    assert done is not None and done.error_code == "invalid_input" and done.attempt == 1
    assert done.messages[0]["text"] == "bad input on line 3"


def test_unexpected_error_retries_with_backoff(runtime: Runtime) -> None:
    job = submit(runtime, "test.flaky")
    assert run_job(runtime.db, job.id, runtime.settings) == JobStatus.QUEUED
    assert run_job(runtime.db, job.id, runtime.settings) == JobStatus.WARNING
    done = runtime.jobs.get(job.id)
    assert done is not None and done.attempt == 2 and done.messages[0]["text"] == "late"


def test_retry_waits_for_run_after(runtime: Runtime) -> None:
    job = submit(runtime)
    with runtime.db.write() as s:
        s.execute(update(Job).where(Job.id == job.id)
                  .values(run_after=utcnow() + timedelta(hours=1)))
    assert claim(runtime.db, job.id, "w", runtime.settings) is None
    with runtime.db.read() as s:
        assert job.id not in repository.ready_ids(s)


def _kill_worker(runtime: Runtime, job_id: str) -> None:
    """Claim as a worker that then dies: its lease is left to expire."""
    assert claim(runtime.db, job_id, "dead-worker", runtime.settings) is not None
    with runtime.db.write() as s:
        s.execute(update(Job).where(Job.id == job_id)
                  .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_reaper_requeues_a_dead_workers_job(runtime: Runtime) -> None:
    job = submit(runtime)
    _kill_worker(runtime, job.id)
    assert reap(runtime.db) == [job.id]
    assert status(runtime, job.id) == "queued"
    assert reap(runtime.db) == []
    assert run_job(runtime.db, job.id, runtime.settings) == JobStatus.SUCCEEDED
    done = runtime.jobs.get(job.id)
    assert done is not None and done.attempt == 2


def test_reaper_fails_a_job_out_of_attempts_as_crashed(runtime: Runtime) -> None:
    job = submit(runtime)
    with runtime.db.write() as s:
        s.execute(update(Job).where(Job.id == job.id).values(max_attempts=1))
    _kill_worker(runtime, job.id)
    reap(runtime.db)
    done = runtime.jobs.get(job.id)
    assert done is not None and done.status == "failed" and done.error_code == "crashed"
    assert "dead-worker" in done.messages[-1]["text"]


def test_live_lease_is_not_reaped(runtime: Runtime) -> None:
    job = submit(runtime)
    claim(runtime.db, job.id, "alive", runtime.settings)
    assert reap(runtime.db) == []
    assert status(runtime, job.id) == "running"


def test_heartbeat_renews_the_lease(runtime: Runtime) -> None:
    GATE.clear()
    STARTED.clear()
    job = submit(runtime, "test.wait")
    t = threading.Thread(target=run_job, args=(runtime.db, job.id, runtime.settings))
    t.start()
    assert STARTED.wait(5)
    leases = []
    for _ in range(3):  # heartbeat_seconds is 0.2 in tests: it must keep beating
        job_now = runtime.jobs.get(job.id)
        assert job_now is not None
        leases.append(job_now.lease_expires_at)
        time.sleep(0.6)
    GATE.set()
    t.join(10)
    assert leases[0] < leases[1] < leases[2]  # type: ignore[operator]
    assert status(runtime, job.id) == "succeeded"


def test_cancel_queued_job(runtime: Runtime) -> None:
    job = submit(runtime)
    runtime.jobs.cancel(job.id)
    assert status(runtime, job.id) == "cancelled"
    assert run_job(runtime.db, job.id, runtime.settings) is None


def test_cancel_running_job_stops_at_a_safe_point(runtime: Runtime) -> None:
    GATE.clear()
    STARTED.clear()
    job = submit(runtime, "test.wait")
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(
        run_job(runtime.db, job.id, runtime.settings)))
    t.start()
    assert STARTED.wait(5)
    runtime.jobs.cancel(job.id)
    t.join(10)
    assert result == [JobStatus.CANCELLED]
    assert status(runtime, job.id) == "cancelled"


def test_throttled_progress_writes_at_most_once_per_interval(runtime: Runtime) -> None:
    job = submit(runtime)
    claimed = claim(runtime.db, job.id, "w", runtime.settings)
    assert claimed is not None
    settings = runtime.settings.model_copy(deep=True)
    settings.jobs.progress_interval_seconds = 60
    ctx = JobContext(runtime.db, claimed, "w", settings)
    ctx.progress(1, 10, "one")
    ctx.progress(2, 10, "two")  # inside the interval: not written
    current = runtime.jobs.get(job.id)
    assert current is not None
    assert (current.progress_current, current.progress_message) == (1, "one")
    ctx.progress(3, 10, "three", force=True)
    current = runtime.jobs.get(job.id)
    assert current is not None and current.progress_current == 3


def test_blob_sweep_keeps_what_active_jobs_need(runtime: Runtime) -> None:
    import io
    import os

    from sheaf.blobs import BlobStore

    blobs = BlobStore(runtime.settings.blob_dir)
    needed, _ = blobs.put_stream(io.BytesIO(b"a"), 10)
    orphan, _ = blobs.put_stream(io.BytesIO(b"b"), 10)
    fresh, _ = blobs.put_stream(io.BytesIO(b"c"), 10)
    partial, handle = blobs.open_new()
    handle.close()
    runtime.executor.paused = True  # type: ignore[attr-defined]  # the job stays queued
    runtime.jobs.submit("test.echo", {"blob": needed})
    old = time.time() - 7200
    for key in (needed, orphan):
        os.utime(blobs.path(key), (old, old))
    os.utime(blobs.root / partial, (old, old))
    with runtime.db.read() as s:
        keep = repository.active_payload_values(s, "blob")
    assert keep == {needed}
    gone = blobs.sweep(keep, older_than=3600)
    assert sorted(gone) == sorted([orphan, partial])
    assert blobs.path(needed).exists() and blobs.path(fresh).exists()
