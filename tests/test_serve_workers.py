"""A real ``sheaf serve --workers 2``: jobs, SSE, rate limits and maintenance keep their
guarantees with several API processes on one port."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sheaf.auth import credentials
from sheaf.config import Settings
from sheaf.db import Database
from tests.fixtures.database import PG_URL

pytestmark = pytest.mark.skipif(
    PG_URL is not None, reason="the process model does not depend on the database; "
    "this runs in the SQLite pass")

SHEAF = Path(sys.executable).parent / "sheaf"
BUDGET = 30  # requests per client and API version in the (long) window below


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    db: Database

    def token(self, name: str) -> str:
        with self.db.write() as session:
            cred, secret = credentials.create(session, name, ["ORG_ADMIN"])
            client_id = cred.client_id
        response = httpx.post(f"{self.url}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": secret})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serve(data: Path, **env_extra: str) -> Iterator[Server]:
    port = _free_port()
    log = data / "server.log"
    env = {**os.environ, "SHEAF_DATA_DIR": str(data),
           "SHEAF_AUTH__RATE_LIMIT_REQUESTS": str(BUDGET),
           "SHEAF_AUTH__RATE_LIMIT_WINDOW_SECONDS": "600",
           # only the hand-off from the API process can start a job within the test
           "SHEAF_JOBS__REAPER_INTERVAL_SECONDS": "600",
           "SHEAF_JOBS__ISOLATION": "thread", **env_extra}
    env.pop("SHEAF_DATABASE_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SHEAF), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while len(_api_pids(log)) < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        _wait_healthy(url)
        db = Database(Settings(data_dir=data).db_url)
        yield Server(url, process, log, db)
        db.dispose()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with _serve(tmp_path_factory.mktemp("serve-workers")) as running:
        yield running


def _api_pids(log: Path) -> list[int]:
    """API processes that finished starting, in order (uvicorn logs each)."""
    text = log.read_text(errors="replace")
    started = re.findall(r"Started server process \[(\d+)\]", text)
    return [int(p) for p in started][:text.count("Application startup complete")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is not alive
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    return True


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} not healthy"
        time.sleep(0.2)


def _events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    kind = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


def test_jobs_from_every_api_process_run_on_the_servers_executor_and_stream(
        server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.token('jobs')}"}
    tasks = []
    for n in range(4):  # new connections: the kernel spreads them over both processes
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
            source = http.post("/v3/sources", json={"name": f"S{n}", "deleteThreshold": 100,
                                                    "connector": "delimited-file"})
            assert source.status_code == 201, source.text
            load = http.post(f"/v2025/sources/{source.json()['id']}/load-accounts",
                             files={"file": ("a.csv", b"id,name\na1,Ann\na2,Bob\n", "text/csv")})
            assert load.status_code == 202, load.text
            tasks.append(load.json()["task"]["id"])
    for task in tasks:
        with httpx.Client(base_url=server.url, headers=auth, timeout=60) as http:
            with http.stream("GET", f"/api/jobs/{task}/events",
                             params={"interval": 0.1}) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                kinds = []
                for kind, body in _events(stream):
                    kinds.append(kind)
                    if kind == "end":
                        assert body["status"] == "succeeded", body
                        break
            assert kinds[-1] == "end"
            status = http.get(f"/v2025/task-status/{task}")
            assert status.status_code == 200
            assert status.json()["completionStatus"] == "SUCCESS"
            assert status.json()["attributes"]["created"] == 2


def test_the_rate_limit_is_one_budget_across_the_api_processes(server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.token('limited')}"}
    codes = []
    for _ in range(2 * BUDGET):  # each on a new connection, so both processes answer some
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
            codes.append(http.get("/beta/task-status").status_code)
    assert codes.count(200) == BUDGET
    assert codes.count(429) == BUDGET
    assert set(codes[BUDGET:]) == {429}


def test_maintenance_and_the_executor_run_once_in_the_supervisor(server: Server) -> None:
    text = server.log.read_text(errors="replace")
    passes = re.findall(r"job maintenance every \S+ in process (\d+)", text)
    assert passes == [str(server.process.pid)]
    api = _api_pids(server.log)
    assert len(api) >= 2 and server.process.pid not in api


def test_an_api_process_that_dies_is_replaced(server: Server) -> None:
    victim = _api_pids(server.log)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while len([p for p in _api_pids(server.log) if p != victim and _alive(p)]) < 2:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.2)
    _wait_healthy(server.url)


def test_killing_the_supervisor_takes_its_api_processes_with_it(tmp_path: Path) -> None:
    with _serve(tmp_path) as running:
        api = _api_pids(running.log)
        os.kill(running.process.pid, signal.SIGKILL)
        running.process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in api):
            assert time.monotonic() < deadline, f"API processes {api} outlived the supervisor"
            time.sleep(0.2)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{running.url}/healthz", timeout=5)


def test_a_burst_of_hand_offs_larger_than_the_socket_queue_loses_none(tmp_path: Path) -> None:
    """Linux queues 10 datagrams for a unix socket by default: an API process submitting
    more than that before the supervisor reads must still hand every job over at once,
    not leave the rest to the maintenance pass."""
    import socket

    from sheaf.serving import RelayExecutor

    path = str(tmp_path / "relay.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        relay = RelayExecutor(path)
        ids = [f"{n:032x}" for n in range(60)]
        for job_id in ids:  # nobody reads yet: the queue fills up
            relay.submit(job_id)
        listener.settimeout(10)
        got = [listener.recv(64).decode() for _ in ids]
        relay.shutdown()
    assert sorted(got) == ids
