"""The server under test: a ``sheaf serve`` subprocess and the HTTP client that drives it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.identity.procfs import process_tree, status_kib

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SHEAF = REPO / ".venv" / "bin" / "sheaf"

# How often a phase polls its task. Kept here, not in run.py, so report.py can record it
# without importing run.py, which imports report.py.
COMPLETION_POLL_S = 0.02
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class BenchError(RuntimeError):
    """The server did something that stops this size from being measured."""


# --------------------------------------------------------------------------- server


class SheafServer:
    """A ``sheaf serve`` subprocess in its own session, so stopping it reaches its children."""

    def __init__(
        self, sheaf: Path, data_dir: Path, port: int, log_path: Path, env: dict[str, str],
        args: Sequence[str] = (),
    ) -> None:
        self.sheaf = sheaf
        self.args = list(args)  # more ``sheaf serve`` options, e.g. --workers 2
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.env = {**os.environ, **env, "SHEAF_DATA_DIR": str(data_dir)}
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_handle: Any = None

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait for ``/healthz``; the log file gets stdout and stderr."""
        self._log_handle = self.log_path.open("wb")
        cmd = [str(self.sheaf), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               *self.args]
        self.process = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise BenchError(
                        f"server exited with {self.process.returncode} before becoming healthy:\n"
                        + self.log_tail()
                    )
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise BenchError(f"server not healthy after {timeout:.0f}s:\n" + self.log_tail())

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run a ``sheaf`` CLI command against the same data dir."""
        return subprocess.run(
            [str(self.sheaf), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def peak_hwm_bytes(self) -> int:
        """VmHWM summed over the live tree: an upper bound that catches spikes between samples."""
        if self.process is None or self.process.poll() is not None:
            return 0
        return sum(status_kib(pid, b"VmHWM:") for pid in process_tree(self.pid)) * 1024

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM the server's process group, then SIGKILL it after ``grace`` seconds."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log_handle is not None:
            self._log_handle.close()
        return self.process.returncode


def free_port() -> int:
    """An ephemeral loopback port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- API client


def describe(response: httpx.Response) -> str:
    return (
        f"HTTP {response.status_code} {response.request.method} {response.request.url}: "
        + (response.text[:2000])
    )


class Api:
    """The few calls the benchmark needs; refreshes the token before it expires."""

    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.http = httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT)
        self._token = ""
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        """A valid access token; the latency probe thread calls this too, hence the lock."""
        with self._lock:
            return self._token_locked()

    def _token_locked(self) -> str:
        if time.monotonic() > self._expires_at - 120:
            response = self.http.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
            )
            if response.status_code != 200:
                raise BenchError("token request failed: " + describe(response))
            body = response.json()
            self._token = body["access_token"]
            self._expires_at = time.monotonic() + float(body.get("expires_in") or 600)
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}

    def create_source(self) -> str:
        response = self.http.post(
            "/v3/sources",
            headers=self.headers(),
            json={"name": "bench", "connector": "delimited-file", "deleteThreshold": 100},
        )
        if response.status_code != 201:
            raise BenchError("create source: " + describe(response))
        return str(response.json()["id"])

    def task_status(self, task_id: str) -> httpx.Response:
        return self.http.get(f"/v2025/task-status/{task_id}", headers=self.headers())

    def close(self) -> None:
        self.http.close()


def server_fingerprint() -> dict[str, Any]:
    """Which server code was measured: sheaf's source changes between runs during development,
    so a hash of ``src/sheaf`` (plus git HEAD when there is one) identifies it."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted((REPO / "src" / "sheaf").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return {
        "src_sha256": digest.hexdigest(),
        "src_files": len(files),
        "git_head": head.stdout.strip() if head.returncode == 0 else None,
    }
