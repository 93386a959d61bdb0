"""Aggregations in real worker processes: the default local executor, and what happens
when a worker process dies in the middle of an aggregation."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import polars as pl
import pytest

from sheaf.config import Settings
from sheaf.identity import service
from sheaf.identity.models import Account
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime
from tests.workers import in_worker_processes, started, wait_for


@pytest.fixture
def process_runtime(settings: Settings) -> Iterator[Runtime]:
    settings = in_worker_processes(settings)
    settings.identity.max_upload_bytes = 1 << 30
    with started(settings) as rt:
        yield rt


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




def account_count(rt: Runtime) -> int:
    from sqlalchemy import func, select

    with rt.db.read() as s:
        return int(s.execute(select(func.count()).select_from(Account)).scalar_one())


def test_aggregation_runs_in_a_worker_process(process_runtime: Runtime) -> None:
    rt = process_runtime
    blob = service.store_file(rt, io.BytesIO(csv_bytes(1000)))
    job = service.load_accounts(rt, source(rt), blob, disable_optimization=False, launcher="t")
    done = wait_for(rt, job.id, lambda j: j.finished_at is not None)
    assert done.status == "succeeded" and done.counters["created"] == 1000
    assert done.worker_id is not None
    worker = int(done.worker_id.split(":")[1])
    assert worker != os.getpid()
    # at a lower CPU priority than the API process that started it
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert rt.settings.jobs.worker_nice == 10
    assert os.getpriority(os.PRIO_PROCESS, worker) == min(19, ours + 10)


def test_killed_worker_leaves_nothing_half_done_and_the_job_is_rerun(
    process_runtime: Runtime,
) -> None:
    rt = process_runtime
    n = 300_000
    blob = service.store_file(rt, io.BytesIO(csv_bytes(n)))
    job = service.load_accounts(rt, source(rt), blob, disable_optimization=False, launcher="t")
    running = wait_for(rt, job.id, lambda j: (j.progress_message or "").startswith("Applying"))
    assert running.worker_id is not None
    os.kill(int(running.worker_id.split(":")[1]), signal.SIGKILL)  # mid-write
    assert account_count(rt) == 0  # the open transaction died with the process
    done = wait_for(rt, job.id, lambda j: j.finished_at is not None, timeout=120)
    assert done.status == "succeeded", done.messages
    assert done.attempt == 2
    assert done.counters["created"] == n and account_count(rt) == n


# -- worker processes live and die with their server ---------------------------------

def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            parents.setdefault(st[1], []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pids: set[int]) -> set[int]:
    return {p for p in pids if (st := _stat(p)) is not None and st[0] != "Z"}


def wait_gone(pids: set[int], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = running(pids)
    assert not left, {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in left}


def spawned_children() -> set[int]:
    """This process's multiprocessing children (worker processes, resource tracker)."""
    return {p for p in running(descendants(os.getpid()))
            if b"multiprocessing" in Path(f"/proc/{p}/cmdline").read_bytes()}


@contextmanager
def served(settings: Settings, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real `sheaf serve` on a free loopback port, on the test's data and database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full = {k: v for k, v in os.environ.items() if not k.startswith("SHEAF_")}
    full.update({
        "SHEAF_DATA_DIR": str(settings.data_dir),
        "SHEAF_AUTH__JWT_SECRET": str(settings.auth.jwt_secret),
        "SHEAF_JOBS__WORKERS": "1", "SHEAF_JOBS__LEASE_SECONDS": "2",
        "SHEAF_JOBS__HEARTBEAT_SECONDS": "0.5", "SHEAF_JOBS__REAPER_INTERVAL_SECONDS": "0.2",
        **env,
    })
    if settings.database_url:
        full["SHEAF_DATABASE_URL"] = settings.database_url
    sheaf = Path(sys.executable).parent / "sheaf"
    with (settings.data_dir / "serve.log").open("ab") as log:  # (kept for a failure's story)
        server = subprocess.Popen(
            # (one API process: these tests follow the job executor's worker processes,
            # which run beside it; several API processes: tests/test_serve_workers.py)
            [str(sheaf), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--log-level", "warning"],
            env=full, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, "sheaf serve exited at start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "sheaf serve did not start"
            time.sleep(0.2)
        yield server
    finally:
        family = descendants(server.pid) if server.poll() is None else set()
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in running(family):
            os.kill(pid, signal.SIGKILL)


def queued_load(settings: Settings, n: int) -> tuple[Runtime, str, str]:
    """A load-accounts job left queued in the database (the test's runtime runs nothing):
    the server picks it up when it starts."""
    rt = Runtime.build(settings)
    rt.executor.paused = True  # type: ignore[attr-defined]
    source_id = source(rt)
    blob = service.store_file(rt, io.BytesIO(csv_bytes(n)))
    job = service.load_accounts(rt, source_id, blob, disable_optimization=False, launcher="t")
    return rt, source_id, job.id


def comparing(job: Job) -> bool:
    return job.status == "running" and (job.progress_message or "").startswith("Comparing")


def test_a_server_stopped_by_sigterm_mid_load_hands_the_job_back_and_leaves_no_process(
    settings: Settings,
) -> None:
    rt, _, job_id = queued_load(settings, 2000)
    try:
        with served(settings, SHEAF_TEST_PAUSE_AT="diff:120",
                    SHEAF_JOBS__SHUTDOWN_GRACE_SECONDS="0") as server:
            wait_for(rt, job_id, comparing)  # in its worker process, paused after the diff
            family = descendants(server.pid)
            assert len(running(family)) >= 2  # the worker and multiprocessing's tracker
            server.send_signal(signal.SIGTERM)
            # (uvicorn re-raises the signal once it has shut down cleanly)
            assert server.wait(timeout=60) in (0, -signal.SIGTERM)
            wait_gone(family)
        job = rt.jobs.get(job_id)
        assert job is not None and job.status == "queued", job.status
        assert job.attempt == 0  # (a server stopping is not the job's failed attempt)
        assert account_count(rt) == 0
        # The next start runs it to its end.
        with served(settings) as server:
            done = wait_for(rt, job_id, lambda j: j.finished_at is not None)
            assert done.status == "succeeded" and done.counters["created"] == 2000
            family = descendants(server.pid)
            server.send_signal(signal.SIGTERM)
            # (uvicorn re-raises the signal once it has shut down cleanly)
            assert server.wait(timeout=60) in (0, -signal.SIGTERM)
            wait_gone(family)
        assert account_count(rt) == 2000
    finally:
        rt.close()


def test_a_killed_server_leaves_no_worker_and_its_job_is_rerun_after_a_restart(
    settings: Settings,
) -> None:
    rt, _, job_id = queued_load(settings, 2000)
    try:
        long_lease = {"SHEAF_JOBS__LEASE_SECONDS": "600", "SHEAF_JOBS__HEARTBEAT_SECONDS": "5"}
        with served(settings, SHEAF_TEST_PAUSE_AT="diff:120", **long_lease) as server:
            wait_for(rt, job_id, comparing)
            family = descendants(server.pid)
            assert len(running(family)) >= 2
            server.kill()
            server.wait()
            wait_gone(family)  # the worker died with its server, and so did the tracker
        assert account_count(rt) == 0
        # The next server on this host sees the job's worker process is gone: it need not
        # wait out the lease (ten minutes here) to requeue and run it.
        with served(settings, **long_lease):
            done = wait_for(rt, job_id, lambda j: j.finished_at is not None)
        assert done.status == "succeeded" and done.attempt == 2, done.messages
        assert done.counters["created"] == 2000 and account_count(rt) == 2000
    finally:
        rt.close()


def test_an_idle_worker_killed_is_replaced_and_no_job_is_blamed(
    process_runtime: Runtime, caplog: pytest.LogCaptureFixture,
) -> None:
    rt = process_runtime
    source_id = source(rt)
    first = service.load_accounts(rt, source_id, service.store_file(
        rt, io.BytesIO(csv_bytes(10))), disable_optimization=False, launcher="t")
    assert wait_for(rt, first.id, lambda j: j.finished_at is not None).status == "succeeded"
    workers = {p for p in spawned_children()
               if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()}
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    wait_gone(workers)
    caplog.clear()
    blob = service.store_file(rt, io.BytesIO(csv_bytes(20)))
    job = service.load_accounts(rt, source_id, blob, disable_optimization=False, launcher="t")
    done = wait_for(rt, job.id, lambda j: j.finished_at is not None)
    assert done.status == "succeeded" and done.attempt == 1
    # (the first job may have been killed between its commit and its answer, and be named:
    # it had finished, so nothing is handed back; the next job must not be blamed)
    assert job.id not in caplog.text
