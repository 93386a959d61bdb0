"""The scaled-out executor against a real Redis: job ids go through the broker to a worker
sharing the database, and the job core, not the broker, decides what runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from sheaf.app import create_app
from sheaf.config import Settings
from sheaf.jobs.executors.distributed import DramatiqExecutor, serve_worker
from sheaf.runtime import Runtime
from tests.conftest import issue_token
from tests.jobs.test_api_and_executors import wait_for
from tests.jobs.test_core import CALLS

# Not skipped when Redis is down: `make test` starts it, and a missing broker must fail.
REDIS_URL = os.environ.get("SHEAF_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def scaled_settings(settings: Settings) -> Iterator[Settings]:
    settings = settings.model_copy(deep=True)
    settings.jobs.executor = "dramatiq"
    settings.jobs.broker_url = REDIS_URL
    settings.jobs.queue = f"sheaf-test-{uuid.uuid4().hex[:8]}"  # this test's own queue
    settings.jobs.reaper_interval_seconds = 0.1
    yield settings
    flush_queue(settings.jobs.queue)


def flush_queue(queue: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"dramatiq:*{queue}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def scaled_runtime(scaled_settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(scaled_settings)
    yield runtime
    runtime.close()  # an app given a runtime leaves closing it (and its maintenance) to us


class Worker:
    """``sheaf worker`` in a thread of the test process, so test handlers are registered."""

    def __init__(self, settings: Settings, threads: int = 2) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=serve_worker, args=(settings, threads, self.stop))

    def __enter__(self) -> Worker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def test_jobs_travel_through_redis_to_a_worker(
    scaled_settings: Settings, scaled_runtime: Runtime
) -> None:
    runtime = scaled_runtime
    assert isinstance(runtime.executor, DramatiqExecutor)
    CALLS.clear()
    with Worker(scaled_settings):
        jobs = [runtime.jobs.submit("test.echo", {"n": i}) for i in range(10)]
        for job in jobs:
            assert wait_for(runtime, job.id, "succeeded") == "succeeded"
    assert sorted(CALLS) == sorted(j.id for j in jobs)


def test_a_message_delivered_twice_runs_the_job_once(
    scaled_settings: Settings, scaled_runtime: Runtime
) -> None:
    runtime = scaled_runtime
    CALLS.clear()
    job = runtime.jobs.submit("test.echo", {"n": 1})
    runtime.executor.submit(job.id)  # a second delivery, as after a broker redelivery
    with Worker(scaled_settings):
        wait_for(runtime, job.id, "succeeded")
        time.sleep(0.5)  # give the duplicate its chance to (wrongly) run again
    assert [job.id] == CALLS
    assert runtime.jobs.get(job.id).attempt == 1  # type: ignore[union-attr]


def test_a_retry_is_delivered_again_after_its_backoff(
    scaled_settings: Settings, scaled_runtime: Runtime
) -> None:
    # test.flaky fails its first attempt; the job core requeues it, and the worker sends
    # its id again, delayed by the backoff.
    runtime = scaled_runtime
    with Worker(scaled_settings):
        job = runtime.jobs.submit("test.flaky", {})
        assert wait_for(runtime, job.id, "warning", "failed") == "warning"  # its outcome
    assert runtime.jobs.get(job.id).attempt == 2  # type: ignore[union-attr]


def test_a_lost_message_is_sent_again_by_the_maintenance_pass(
    scaled_settings: Settings,
) -> None:
    scaled_settings.jobs.lease_seconds = 1  # re-sent once queued this long
    runtime = Runtime.build(scaled_settings)
    CALLS.clear()
    try:
        job = runtime.jobs.submit("test.echo", {"n": 1})
        flush_queue(scaled_settings.jobs.queue)  # as if Redis restarted empty
        runtime.executor.start()
        with Worker(scaled_settings):
            assert wait_for(runtime, job.id, "succeeded") == "succeeded"
    finally:
        runtime.close()
    assert [job.id] == CALLS


def test_load_accounts_end_to_end_in_scaled_out_mode(
    scaled_settings: Settings, scaled_runtime: Runtime
) -> None:
    runtime = scaled_runtime
    with Worker(scaled_settings), TestClient(create_app(runtime=runtime)) as client:
        auth = {"Authorization": f"Bearer {issue_token(client, runtime)}"}
        source = client.post("/v3/sources", headers=auth, json={
            "name": "HR", "connector": "delimited-file"}).json()
        response = client.post(
            f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
            files={"file": ("hr.csv", b"id,name\nu1,Ada\nu2,Grace\n", "text/csv")})
        assert response.status_code == 202, response.text
        task_id = response.json()["task"]["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            task = client.get(f"/v2025/task-status/{task_id}", headers=auth).json()
            if task["completionStatus"]:
                break
            time.sleep(0.05)
        assert task["completionStatus"] == "SUCCESS", task
        assert task["attributes"]["created"] == 2
        accounts = client.get("/v3/accounts", headers=auth,
                              params={"filters": f'sourceId eq "{source["id"]}"'}).json()
        assert sorted(a["nativeIdentity"] for a in accounts) == ["u1", "u2"]


def test_sheaf_worker_command_runs_load_accounts_and_stops_on_sigterm(
    scaled_settings: Settings, scaled_runtime: Runtime
) -> None:
    """The real `sheaf worker` process: its own imports register the identity handler,
    and SIGTERM ends it cleanly."""
    env = {**os.environ, "SHEAF_DATA_DIR": str(scaled_settings.data_dir),
           "SHEAF_JOBS__BROKER_URL": REDIS_URL, "SHEAF_JOBS__QUEUE": scaled_settings.jobs.queue}
    if scaled_settings.database_url:
        env["SHEAF_DATABASE_URL"] = scaled_settings.database_url
    sheaf = Path(sys.executable).parent / "sheaf"
    worker = subprocess.Popen([str(sheaf), "worker", "--threads", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        runtime = scaled_runtime
        with TestClient(create_app(runtime=runtime)) as client:
            auth = {"Authorization": f"Bearer {issue_token(client, runtime)}"}
            source = client.post("/v3/sources", headers=auth, json={
                "name": "HR", "connector": "delimited-file"}).json()
            task_id = client.post(
                f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                files={"file": ("hr.csv", b"id,name\nu1,Ada\n", "text/csv")},
            ).json()["task"]["id"]
            job = wait_for(runtime, task_id, "succeeded", "failed", timeout=60)
        assert job == "succeeded"
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output.decode()
        assert b"SIGTERM" in output
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
