"""What the tests that run jobs in real worker processes share (crash tests, worker kills,
process isolation)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sheaf.config import Settings
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime


def in_worker_processes(settings: Settings) -> Settings:
    """``settings`` with jobs in one real worker process, and a lease short enough that a
    killed worker's job is taken over within seconds."""
    settings = settings.model_copy(deep=True)
    settings.jobs.executor = "local"
    settings.jobs.isolation = "process"
    settings.jobs.workers = 1
    settings.jobs.lease_seconds = 3
    settings.jobs.heartbeat_seconds = 0.5
    settings.jobs.reaper_interval_seconds = 0.2
    return settings


@contextmanager
def started(settings: Settings) -> Iterator[Runtime]:
    """A runtime with its executor started, closed afterwards."""
    rt = Runtime.build(settings)
    rt.executor.start()
    try:
        yield rt
    finally:
        rt.close()


def wait_for(rt: Runtime, job_id: str, until: Callable[[Job], bool],
             timeout: float = 90) -> Job:
    """The job once ``until`` holds for it (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = rt.jobs.get(job_id)
        assert job is not None
        if until(job):
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never got there: {rt.jobs.get(job_id)}")
