"""Aggregations in real worker processes: the default local executor, and what happens
when a worker process dies in the middle of an aggregation."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator

import polars as pl
import pytest

from sheaf.config import Settings
from sheaf.identity import service
from sheaf.identity.models import Account
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime


@pytest.fixture
def process_runtime(settings: Settings) -> Iterator[Runtime]:
    settings = settings.model_copy(deep=True)
    settings.jobs.executor = "local"
    settings.jobs.isolation = "process"
    settings.jobs.workers = 1
    settings.jobs.lease_seconds = 3
    settings.jobs.heartbeat_seconds = 0.5
    settings.jobs.reaper_interval_seconds = 0.2
    settings.identity.max_upload_bytes = 1 << 30
    rt = Runtime.build(settings)
    rt.executor.start()
    yield rt
    rt.close()


def csv_bytes(n: int) -> bytes:
    frame = pl.DataFrame({"id": [f"u{i:07d}" for i in range(n)]}).with_columns(
        name="User " + pl.col("id"), email=pl.col("id") + "@example.org")
    out = io.BytesIO()
    frame.write_csv(out)
    return out.getvalue()


def source(rt: Runtime) -> str:
    created = service.create_source(
        rt, {"name": "S", "connector": "delimited-file", "connector_attributes": {},
             "delete_threshold": 100, "authoritative": False, "correlation": [],
             "owner": None, "description": None},
        {"name": "account", "native_object_type": "User", "identity_attribute": "id",
         "display_attribute": "name", "attributes": []})
    return created.id


def wait(rt: Runtime, job_id: str, until: object, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = rt.jobs.get(job_id)
        assert job is not None
        if until(job):  # type: ignore[operator]
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never got there: {rt.jobs.get(job_id)}")


def account_count(rt: Runtime) -> int:
    from sqlalchemy import func, select

    with rt.db.read() as s:
        return int(s.execute(select(func.count()).select_from(Account)).scalar_one())


def test_aggregation_runs_in_a_worker_process(process_runtime: Runtime) -> None:
    rt = process_runtime
    blob = service.store_file(rt, io.BytesIO(csv_bytes(1000)))
    job = service.load_accounts(rt, source(rt), blob, disable_optimization=False, launcher="t")
    done = wait(rt, job.id, lambda j: j.finished_at is not None)
    assert done.status == "succeeded" and done.counters["created"] == 1000
    assert done.worker_id is not None
    assert int(done.worker_id.split(":")[1]) != os.getpid()


def test_killed_worker_leaves_nothing_half_done_and_the_job_is_rerun(
    process_runtime: Runtime,
) -> None:
    rt = process_runtime
    n = 300_000
    blob = service.store_file(rt, io.BytesIO(csv_bytes(n)))
    job = service.load_accounts(rt, source(rt), blob, disable_optimization=False, launcher="t")
    running = wait(rt, job.id, lambda j: (j.progress_message or "").startswith("Applying"))
    assert running.worker_id is not None
    os.kill(int(running.worker_id.split(":")[1]), signal.SIGKILL)  # mid-write
    assert account_count(rt) == 0  # the open transaction died with the process
    done = wait(rt, job.id, lambda j: j.finished_at is not None, timeout=120)
    assert done.status == "succeeded", done.messages
    assert done.attempt == 2
    assert done.counters["created"] == n and account_count(rt) == n
