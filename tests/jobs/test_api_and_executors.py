"""The native job API and the local executor (a long job must not stall HTTP)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.app import create_app
from sheaf.config import Settings
from sheaf.jobs.models import Job
from sheaf.jobs.states import JobStatus
from sheaf.runtime import Runtime
from tests.conftest import issue_token
from tests.jobs.test_core import GATE, STARTED


@pytest.fixture
def local_runtime(settings: Settings) -> Iterator[Runtime]:
    settings = settings.model_copy(deep=True)
    settings.jobs.executor = "local"
    settings.jobs.isolation = "thread"  # the handlers and their events live in this process
    settings.jobs.reaper_interval_seconds = 0.2
    rt = Runtime.build(settings)
    yield rt
    GATE.set()
    rt.close()


def wait_for(runtime: Runtime, job_id: str, *statuses: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runtime.jobs.get(job_id)
        if job is not None and job.status in statuses:
            return job.status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not reach {statuses}")


@contextmanager
def waiting_job(runtime: Runtime) -> Iterator[tuple[TestClient, dict[str, str], Job]]:
    """A served app and a `test.wait` job that is running until GATE is set."""
    GATE.clear()
    STARTED.clear()
    with TestClient(create_app(runtime=runtime)) as client:
        headers = {"Authorization": f"Bearer {issue_token(client, runtime)}"}
        job = runtime.jobs.submit("test.wait", {})
        assert STARTED.wait(5)
        yield client, headers, job


def test_long_job_does_not_stall_http(local_runtime: Runtime) -> None:
    with waiting_job(local_runtime) as (client, headers, job):
        started = time.monotonic()
        for _ in range(20):
            assert client.get("/healthz").status_code == 200
            r = client.get(f"/api/jobs/{job.id}", headers=headers)
            assert r.json()["status"] == "running"
        assert time.monotonic() - started < 5
        assert r.json()["progress"]["total"] == 400
        GATE.set()
        assert wait_for(local_runtime, job.id, "succeeded") == "succeeded"


def test_local_executor_picks_up_jobs_left_queued(settings: Settings) -> None:
    # A job queued while no worker ran (e.g. before a restart) runs once one starts.
    settings = settings.model_copy(deep=True)
    settings.jobs.executor = "local"
    settings.jobs.isolation = "thread"  # the handlers and their events live in this process
    first = Runtime.build(settings)
    first.executor.submit = lambda job_id: None  # type: ignore[method-assign]
    job = first.jobs.submit("test.echo", {"n": 5})
    first.db.dispose()
    second = Runtime.build(settings)
    second.executor.start()
    try:
        assert wait_for(second, job.id, "succeeded") == "succeeded"
    finally:
        second.close()


def test_jobs_api_list_get_cancel(client: TestClient, auth: dict[str, str],
                                  runtime: Runtime) -> None:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("test.echo", {"n": 2})
    r = client.get("/api/jobs", headers=auth, params={"status": "queued"})
    assert [j["id"] for j in r.json()] == [job.id]
    assert client.get("/api/jobs", headers=auth, params={"status": "nope"}).status_code == 400
    r = client.post(f"/api/jobs/{job.id}/cancel", headers=auth)
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    history = client.get(f"/api/jobs/{job.id}/history", headers=auth).json()
    assert [h["to"] for h in history] == ["queued", "cancelled"]
    missing = client.get("/api/jobs/0000", headers=auth)
    assert missing.status_code == 404 and "error" in missing.json()
    assert client.get("/api/jobs").status_code == 401


def test_jobs_api_is_the_tenant_administrators(client: TestClient, runtime: Runtime,
                                               make_token: Any) -> None:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("test.echo", {"n": 2})
    for authority in ("SOURCE_ADMIN", "SOURCE_SUBADMIN", "HELPDESK"):
        headers = {"Authorization": f"Bearer {make_token(authority)}"}
        for method, path in [("GET", "/api/jobs"), ("GET", f"/api/jobs/{job.id}"),
                             ("GET", f"/api/jobs/{job.id}/history"),
                             ("GET", f"/api/jobs/{job.id}/events"),
                             ("POST", f"/api/jobs/{job.id}/cancel")]:
            r = client.request(method, path, headers=headers)
            assert r.status_code == 403, (authority, method, path, r.text)
            assert "ORG_ADMIN" in r.json()["error"]["message"]
    assert runtime.jobs.get(job.id).status == "queued"  # type: ignore[union-attr]


def test_events_stream_progress_until_the_end(local_runtime: Runtime) -> None:
    with waiting_job(local_runtime) as (client, headers, job):
        events = []
        with client.stream("GET", f"/api/jobs/{job.id}/events", headers=headers,
                           params={"interval": 0.05}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line.removeprefix("data: "))))
                    if len(events) == 2:
                        GATE.set()
                    if kind == "end":
                        break
        assert events[0][0] == "progress" and events[0][1]["status"] == "running"
        assert events[-1][0] == "end" and events[-1][1]["status"] == JobStatus.SUCCEEDED.value
        currents = [e[1]["progress"]["current"] for e in events[:-1]]
        assert currents == sorted(currents)


def test_two_servers_sharing_a_database_run_each_job_once(settings: Settings) -> None:
    from tests.jobs.test_core import CALLS

    settings = settings.model_copy(deep=True)
    settings.jobs.executor = "local"
    settings.jobs.isolation = "thread"  # the handlers and their events live in this process
    settings.jobs.reaper_interval_seconds = 0.05
    first, second = Runtime.build(settings), Runtime.build(settings)
    # Both see every job: the second through its maintenance loop, the first directly.
    second.executor.start()
    first.executor.start()
    CALLS.clear()
    try:
        jobs = [first.jobs.submit("test.echo", {"n": i}) for i in range(30)]
        for job in jobs:
            wait_for(first, job.id, "succeeded")
    finally:
        first.close()
        second.close()
    assert sorted(CALLS) == sorted(j.id for j in jobs)  # each exactly once
