"""Identity load-accounts benchmark: a real sheaf server, driven over HTTP like a SailPoint client.

For each size it starts a fresh server (SQLite in a temporary data dir), creates a credential,
a token and a delimited-file source, then times three loads from request start to task
completion: the first load, an unchanged re-load, and a re-load of the changed file (1% of rows
with one attribute changed, 0.5% removed). Each time is compared with what polars alone needs to
``read_csv`` the same file, the task counters are checked exactly, the server's process tree RSS
is sampled every 50 ms, and during the first load a thread polls task status back-to-back to
measure its latency under load. Results go to a table on stdout and to JSON.

Usage::

    .venv/bin/python -m bench.identity.run --sizes 10000,100000,1000000

Exit status: 0 all good, 1 a load failed or its counters were wrong, 2 a target was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.identity import generate  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_SHEAF = REPO / ".venv" / "bin" / "sheaf"
DEFAULT_JSON = HERE / "results" / "latest.json"

# Targets apply at 1M rows; smaller sizes are reported against them for information only,
# because fixed per-request costs dominate there.
TARGET_SIZE = 1_000_000
TARGET_RATIO = {"first": 15.0, "unchanged": 5.0, "changed": 6.0}
TARGET_PEAK_RSS_BYTES = 1536 * 1024 * 1024  # 1.5 GiB
TARGET_STATUS_P99_S = 0.100

RSS_INTERVAL_S = 0.05
COMPLETION_POLL_S = 0.05
LATENCY_MAX_REQUESTS = 200_000
PROFILE_RATE = 50  # py-spy samples per second; low enough not to skew the timings much
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class BenchError(RuntimeError):
    """The server did something that stops this size from being measured."""


# --------------------------------------------------------------------------- process memory


def _ppid_map() -> dict[int, int]:
    """pid -> ppid for every process (no /proc/<pid>/task/*/children on this kernel)."""
    result: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) is not None:
            result[int(entry.name)] = int(fields[1])
    return result


def stat_fields(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat after the command name (state, ppid, ...), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses; fields after the last ')' are fixed.
    return stat[stat.rfind(b")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """The root pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _ppid_map().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _status_kib(pid: int, key: bytes) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_bytes(root: int) -> int:
    """Sum of VmRSS over the process tree."""
    return sum(_status_kib(pid, b"VmRSS:") for pid in process_tree(root)) * 1024


_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSnapshot:
    """CPU seconds so far: whole machine (busy: all but idle and iowait), the server tree,
    and this benchmark process."""

    machine_busy: float
    server: float
    bench: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSnapshot:
        server = 0
        for pid in process_tree(server_pid):
            if (fields := stat_fields(pid)) is not None:
                server += int(fields[11]) + int(fields[12])  # utime + stime, all threads
        times = os.times()
        return cls(machine_busy_seconds(), server / _CLK_TCK, times.user + times.system)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / _CLK_TCK


def wait_for_quiet(max_wait: float, busy_cores: float = 0.25, window: float = 3.0) -> float:
    """Wait (at most ``max_wait`` s) for a window in which the machine uses < ``busy_cores``.

    Timings on a shared 2-core box swing by 2x when something else runs; waiting for a quiet
    moment is cheaper than re-running. Returns the busy cores seen in the last window.
    """
    deadline = time.monotonic() + max_wait
    busy = float("nan")
    while True:
        before = machine_busy_seconds()
        time.sleep(window)
        busy = (machine_busy_seconds() - before) / window
        if busy < busy_cores or time.monotonic() >= deadline:
            return busy


def cpu_usage(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Where the machine's CPU went during a phase; ``others`` is noise from other work."""
    server = after.server - before.server
    bench = after.bench - before.bench
    busy = after.machine_busy - before.machine_busy
    return {
        "server_s": round(server, 2),
        "bench_s": round(bench, 2),
        "others_s": round(max(0.0, busy - server - bench), 2),
    }


class MemorySampler(threading.Thread):
    """Samples the server tree's RSS every 50 ms; keeps an overall and a per-phase peak."""

    def __init__(self, root_pid: int, interval: float = RSS_INTERVAL_S) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.peak = 0
        self.phase_peak = 0
        self.samples = 0
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        pids: list[int] = []
        while not self._stop_event.wait(self.interval):
            # Re-scan /proc for the tree once a second; reading VmRSS is the cheap part.
            if self.samples % 20 == 0:
                pids = process_tree(self.root_pid)
            rss = sum(_status_kib(pid, b"VmRSS:") for pid in pids) * 1024
            with self._lock:
                self.samples += 1
                self.peak = max(self.peak, rss)
                self.phase_peak = max(self.phase_peak, rss)

    def take_phase_peak(self) -> int:
        """Return the peak since the last call and start a new phase."""
        with self._lock:
            peak, self.phase_peak = self.phase_peak, tree_rss_bytes(self.root_pid)
        return peak

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


# --------------------------------------------------------------------------- server


class SheafServer:
    """A ``sheaf serve`` subprocess in its own session, so stopping it reaches its children."""

    def __init__(
        self, sheaf: Path, data_dir: Path, port: int, log_path: Path, env: dict[str, str]
    ) -> None:
        self.sheaf = sheaf
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
        cmd = [str(self.sheaf), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
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
        return sum(_status_kib(pid, b"VmHWM:") for pid in process_tree(self.pid)) * 1024

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


def _describe(response: httpx.Response) -> str:
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
                raise BenchError("token request failed: " + _describe(response))
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
            raise BenchError("create source: " + _describe(response))
        return str(response.json()["id"])

    def task_status(self, task_id: str) -> httpx.Response:
        return self.http.get(f"/v2025/task-status/{task_id}", headers=self.headers())

    def close(self) -> None:
        self.http.close()


# --------------------------------------------------------------------------- latency probe


@dataclass
class LatencyStats:
    """Task-status latency seen by a back-to-back poller."""

    count: int = 0
    p50_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None
    mean_s: float | None = None
    non_200: dict[str, int] = field(default_factory=dict)
    errors: int = 0


class LatencyProbe(threading.Thread):
    """Polls one task's status back-to-back on its own connection until told to stop.

    Bounded by a request count and a deadline; loopback only, so it cannot hammer anything
    but the server under test.
    """

    def __init__(
        self, base_url: str, token: Callable[[], str], task_id: str, deadline: float
    ) -> None:
        super().__init__(name="status-probe", daemon=True)
        self.base_url = base_url
        self.token = token
        self.task_id = task_id
        self.deadline = deadline
        self.latencies: list[float] = []
        self.non_200: Counter[str] = Counter()
        self.errors = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        url = f"/v2025/task-status/{self.task_id}"
        with httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT) as client:
            for n in range(LATENCY_MAX_REQUESTS):
                if self._stop_event.is_set() or time.monotonic() > self.deadline:
                    return
                if n % 500 == 0:  # the token may expire during a long load
                    headers = {"Authorization": f"Bearer {self.token()}"}
                started = time.perf_counter()
                try:
                    response = client.get(url, headers=headers)
                except httpx.HTTPError:
                    self.errors += 1
                    time.sleep(0.01)
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code == 200:
                    self.latencies.append(elapsed)
                else:
                    self.non_200[str(response.status_code)] += 1
                    if response.status_code == 429:
                        time.sleep(0.05)

    def stop(self) -> LatencyStats:
        self._stop_event.set()
        self.join(timeout=30)
        stats = LatencyStats(non_200=dict(self.non_200), errors=self.errors)
        values = sorted(self.latencies)
        if values:
            stats.count = len(values)
            stats.p50_s = values[len(values) // 2]
            stats.p99_s = values[min(len(values) - 1, int(len(values) * 0.99))]
            stats.max_s = values[-1]
            stats.mean_s = statistics.fmean(values)
        return stats


# --------------------------------------------------------------------------- py-spy (optional)


class Profiler:
    """Optional ``py-spy record`` of the server tree during one phase (raw collapsed stacks)."""

    def __init__(self, py_spy: Path | None, pid: int, output: Path) -> None:
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        if py_spy is None:
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--nonblocking",
                "--idle",
                "--threads",
                "--rate",
                str(PROFILE_RATE),
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> dict[str, list[dict[str, Any]]] | None:
        """Stop recording and summarise it."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        return summarise_profile(self.output)


_IDLE_LEAVES = ("select (", "wait (threading", "get (queue", "epoll", "sleep", "_worker (")


def summarise_profile(path: Path, top: int = 12) -> dict[str, list[dict[str, Any]]]:
    """Wall seconds per frame from collapsed stacks (recorded with ``--idle``).

    ``job``: the worker thread while it runs a job, inclusive per sheaf/polars/sqlalchemy frame,
    so the aggregation's phases show up with their wall time (waits on SQLite included).
    ``other``: every other thread, minus samples whose leaf is an idle wait.
    """
    if not path.exists():
        return {}
    buckets: dict[str, Counter[str]] = {"job": Counter(), "other": Counter()}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if "run_job (" in stack:
            bucket = buckets["job"]
        elif any(leaf in frames[-1] for leaf in _IDLE_LEAVES):
            continue
        else:
            bucket = buckets["other"]
        bucket["(all samples)"] += count
        seen: set[str] = set()
        for frame in frames:
            if any(k in frame for k in ("sheaf/", "polars/", "sqlalchemy/", "multipart")):
                # "func (/path/to/module.py:123)" -> "func (module.py:123)"
                name = frame.split(" (")[0] + " (" + frame.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    bucket[name] += count
    return {
        key: [
            {"frame": frame, "seconds": round(n / PROFILE_RATE, 2)}
            for frame, n in counter.most_common(top)
        ]
        for key, counter in buckets.items()
    }


# --------------------------------------------------------------------------- phases


@dataclass
class PhaseResult:
    """One timed load and everything checked about it."""

    size: int
    phase: str
    file: str
    rows_in_file: int
    file_bytes: int
    seconds: float | None = None
    accepted_seconds: float | None = None
    polars_read_seconds: float | None = None
    ratio: float | None = None
    target_ratio: float | None = None
    target_enforced: bool = False
    ratio_ok: bool | None = None
    completion_status: str | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    counters_ok: bool | None = None
    peak_rss_bytes: int | None = None
    status_latency: LatencyStats | None = None
    task_id: str | None = None
    task: dict[str, Any] | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    loadavg_before: tuple[float, float, float] | None = None
    busy_cores_before: float | None = None
    problems: list[str] = field(default_factory=list)
    profile: dict[str, list[dict[str, Any]]] | None = None


COUNTER_KEYS = ("total", "optimized", "created", "updated", "deleted")


def expected_counters(phase: str, manifest: generate.DatasetManifest) -> dict[str, int]:
    """What the task must report: exact, because the data is generated with exact counts."""
    n = manifest.rows
    if phase == "first":
        return {"total": n, "optimized": 0, "created": n, "updated": 0, "deleted": 0}
    if phase == "unchanged":
        return {"total": n, "optimized": n, "created": 0, "updated": 0, "deleted": 0}
    kept = manifest.changed_file_rows
    return {
        "total": kept,
        "optimized": kept - manifest.changed_rows,
        "created": 0,
        "updated": manifest.changed_rows,
        "deleted": manifest.removed_rows,
    }


def polars_read_seconds(path: Path, repeats: int = 3) -> float:
    """Best of ``repeats`` ``pl.read_csv`` runs: the floor the server is compared with."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        frame = pl.read_csv(path)
        best = min(best, time.perf_counter() - started)
        del frame
    return best


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def run_phase(
    *,
    api: Api,
    server: SheafServer,
    sampler: MemorySampler,
    source_id: str,
    phase: str,
    path: Path,
    manifest: generate.DatasetManifest,
    baseline: float,
    probe_latency: bool,
    timeout: float,
    py_spy: Path | None,
    profile_dir: Path,
    wait_idle: float,
) -> PhaseResult:
    """Upload one file, wait for its task, and check the result."""
    size = manifest.rows
    result = PhaseResult(
        size=size,
        phase=phase,
        file=path.name,
        rows_in_file=manifest.changed_file_rows if phase == "changed" else size,
        file_bytes=path.stat().st_size,
        polars_read_seconds=baseline,
        target_ratio=TARGET_RATIO[phase],
        target_enforced=size >= TARGET_SIZE,
        expected=expected_counters(phase, manifest),
    )
    headers = api.headers()  # fetch a fresh token outside the timed window
    payload = path.read_bytes()  # read outside the timed window too: we time the server
    if wait_idle > 0:
        result.busy_cores_before = round(wait_for_quiet(wait_idle), 2)
    sampler.take_phase_peak()
    result.loadavg_before = os.getloadavg()
    cpu_before = CpuSnapshot.take(server.pid)
    profiler = Profiler(py_spy, server.pid, profile_dir / f"pyspy-{size}-{phase}.txt")
    probe: LatencyProbe | None = None
    try:
        started = time.perf_counter()
        response = api.http.post(
            f"/v2025/sources/{source_id}/load-accounts",
            headers=headers,
            files={"file": (path.name, payload, "text/csv")},
            data={"disableOptimization": "false"},
            timeout=httpx.Timeout(max(timeout, 60.0), connect=10.0),
        )
        result.accepted_seconds = time.perf_counter() - started
        if response.status_code != 202:
            raise BenchError("load-accounts: " + _describe(response))
        body = response.json()
        task_id = (body.get("task") or {}).get("id")
        if body.get("success") is not True or not task_id:
            raise BenchError("load-accounts 202 without success/task id: " + response.text[:2000])
        result.task_id = task_id
        if probe_latency:
            probe = LatencyProbe(api.base_url, api.token, task_id, time.monotonic() + timeout)
            probe.start()
        deadline = time.monotonic() + timeout
        task: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            status = api.task_status(task_id)
            if status.status_code == 429:
                time.sleep(float(status.headers.get("Retry-After", "1")))
                continue
            if status.status_code != 200:
                raise BenchError("task-status: " + _describe(status))
            task = status.json()
            if task.get("completionStatus") is not None:
                break
            time.sleep(COMPLETION_POLL_S)
        else:
            raise BenchError(f"task {task_id} not complete after {timeout:.0f}s: {task}")
        result.seconds = time.perf_counter() - started
        result.cpu = cpu_usage(cpu_before, CpuSnapshot.take(server.pid))
    finally:
        if probe is not None:
            result.status_latency = probe.stop()
        result.profile = profiler.stop()
        result.peak_rss_bytes = sampler.take_phase_peak()

    assert task is not None  # the loop above either broke with a task or raised
    result.task = task
    result.completion_status = task.get("completionStatus")
    attributes = task.get("attributes") or {}
    result.counters = {key: attributes.get(key) for key in COUNTER_KEYS}
    result.counters_ok = all(
        _as_int(result.counters[key]) == want for key, want in result.expected.items()
    )
    if result.completion_status != "SUCCESS":
        result.problems.append(
            f"completionStatus={result.completion_status!r}, messages={task.get('messages')}"
        )
    if not result.counters_ok:
        result.problems.append(
            f"counters {result.counters} != expected {result.expected} (task {task_id})"
        )
    result.ratio = result.seconds / baseline if baseline > 0 else None
    result.ratio_ok = result.ratio is not None and result.ratio <= TARGET_RATIO[phase]
    return result


@dataclass
class SizeResult:
    """All phases for one size plus the server-wide checks."""

    size: int
    phases: list[PhaseResult] = field(default_factory=list)
    peak_rss_bytes: int | None = None
    peak_hwm_bytes: int | None = None
    rss_samples: int = 0
    server_data_dir: str | None = None
    server_log: str | None = None
    server_exit_code: int | None = None
    error: str | None = None
    server_log_tail: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)


def run_size(
    size: int, args: argparse.Namespace, manifest: generate.DatasetManifest, log_dir: Path
) -> SizeResult:
    """Fresh server, credential, token and source; then the three timed loads."""
    base = args.data_dir / manifest.base_file
    changed = args.data_dir / manifest.changed_file
    if args.wait_idle > 0:
        wait_for_quiet(args.wait_idle)
    baselines = {"base": polars_read_seconds(base), "changed": polars_read_seconds(changed)}
    data_dir = Path(tempfile.mkdtemp(prefix=f"sheaf-bench-{size}-"))
    log_path = log_dir / f"server-{size}.log"
    env = {}
    if args.rate_limit is not None:
        env["SHEAF_AUTH__RATE_LIMIT_REQUESTS"] = str(args.rate_limit)
    server = SheafServer(args.sheaf, data_dir, args.port or free_port(), log_path, env)
    outcome = SizeResult(size=size, server_data_dir=str(data_dir), server_log=str(log_path))
    sampler: MemorySampler | None = None
    api: Api | None = None
    try:
        server.start()
        sampler = MemorySampler(server.pid)
        sampler.start()
        created = server.cli(
            "credentials", "create", "identity-client", "--authority", "ORG_ADMIN", "--json"
        )
        if created.returncode != 0:
            raise BenchError(
                f"credentials create exited {created.returncode}: {created.stdout}{created.stderr}"
            )
        text = created.stdout
        credential = json.loads(text[text.index("{") : text.rindex("}") + 1])
        api = Api(server.base_url, credential["client_id"], credential["client_secret"])
        source_id = api.create_source()
        plan = [
            ("first", base, "base"),
            ("unchanged", base, "base"),
            ("changed", changed, "changed"),
        ]
        for phase, path, which in plan:
            print(f"  {size:>9,} {phase:<9} ...", end="", flush=True, file=sys.stderr)
            result = run_phase(
                api=api,
                server=server,
                sampler=sampler,
                source_id=source_id,
                phase=phase,
                path=path,
                manifest=manifest,
                baseline=baselines[which],
                probe_latency=phase == "first" and not args.no_status_probe,
                timeout=args.phase_timeout,
                py_spy=args.py_spy,
                profile_dir=log_dir,
                wait_idle=args.wait_idle,
            )
            outcome.phases.append(result)
            print(f" {result.seconds:.2f}s", file=sys.stderr)
            for problem in result.problems:
                print(f"\n!!! {size} {phase}: {problem}\n", file=sys.stderr)
    except (BenchError, httpx.HTTPError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        print(f"\n!!! size {size} aborted: {outcome.error}\n", file=sys.stderr)
    finally:
        if api is not None:
            api.close()
        if sampler is not None:
            outcome.peak_hwm_bytes = server.peak_hwm_bytes()
            sampler.stop()
            outcome.peak_rss_bytes = sampler.peak
            outcome.rss_samples = sampler.samples
        outcome.server_exit_code = server.stop()
        if outcome.error or any(p.problems for p in outcome.phases):
            outcome.server_log_tail = server.log_tail(120)
        if not args.keep:
            _remove_tree(data_dir)
            outcome.server_data_dir = None
    outcome.checks = size_checks(outcome)
    return outcome


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def size_checks(outcome: SizeResult) -> list[dict[str, Any]]:
    """Targets for one size; enforced only at the target size."""
    enforced = outcome.size >= TARGET_SIZE
    checks: list[dict[str, Any]] = []
    for phase in outcome.phases:
        checks.append(
            {
                "check": f"{phase.phase} ratio",
                "value": phase.ratio,
                "target": phase.target_ratio,
                "ok": phase.ratio_ok,
                "enforced": enforced,
            }
        )
    checks.append(
        {
            "check": "peak server RSS bytes",
            "value": outcome.peak_rss_bytes,
            "target": TARGET_PEAK_RSS_BYTES,
            "ok": outcome.peak_rss_bytes is not None
            and outcome.peak_rss_bytes <= TARGET_PEAK_RSS_BYTES,
            "enforced": enforced,
        }
    )
    first = next((p for p in outcome.phases if p.phase == "first"), None)
    p99 = first.status_latency.p99_s if first and first.status_latency else None
    checks.append(
        {
            "check": "task-status p99 seconds (during first load)",
            "value": p99,
            "target": TARGET_STATUS_P99_S,
            "ok": p99 is not None and p99 <= TARGET_STATUS_P99_S,
            "enforced": enforced,
        }
    )
    return checks


# --------------------------------------------------------------------------- report


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _seconds(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cpu(cpu: dict[str, float]) -> str:
    if not cpu:
        return "-"
    return f"{cpu['server_s']:.1f} / {cpu['others_s']:.1f}"


def _verdict(ok: bool | None, enforced: bool) -> str:
    if ok is None:
        return "-"
    word = "pass" if ok else "FAIL"
    return word if enforced else f"({word.lower()})"


def table_rows(sizes: list[SizeResult]) -> list[list[str]]:
    """Rows for the printed table; memory and latency are per size, shown on each phase."""
    rows: list[list[str]] = []
    for outcome in sizes:
        checks = {c["check"]: c for c in outcome.checks}
        mem = checks["peak server RSS bytes"]
        lat = checks["task-status p99 seconds (during first load)"]
        if not outcome.phases:
            rows.append([f"{outcome.size:,}", "ERROR", *["-"] * (len(HEADERS) - 2)])
        for phase in outcome.phases:
            stats = phase.status_latency
            latency = (
                f"{_ms(stats.p50_s)}/{_ms(stats.p99_s)}/{_ms(stats.max_s)} (n={stats.count})"
                if stats
                else "-"
            )
            if stats and phase.phase == "first":
                latency += " " + _verdict(lat["ok"], lat["enforced"])
            counters = "ok" if phase.counters_ok else "MISMATCH"
            if phase.completion_status != "SUCCESS":
                counters = f"{phase.completion_status} / {counters}"
            rows.append(
                [
                    f"{outcome.size:,}",
                    phase.phase,
                    "-" if phase.seconds is None else f"{phase.seconds:.2f}",
                    "-"
                    if phase.polars_read_seconds is None
                    else f"{phase.polars_read_seconds:.3f}",
                    "-" if phase.ratio is None else f"{phase.ratio:.1f}x",
                    f"<= {phase.target_ratio:g}x",
                    _verdict(phase.ratio_ok, phase.target_enforced),
                    f"{_mb(phase.peak_rss_bytes)} / {_mb(outcome.peak_rss_bytes)} "
                    + _verdict(mem["ok"], mem["enforced"]),
                    latency,
                    _cpu(phase.cpu),
                    counters,
                ]
            )
    return rows


HEADERS = [
    "size",
    "phase",
    "seconds",
    "polars s",
    "ratio",
    "target",
    "result",
    "peak RSS MiB (phase / run)",
    "status p50/p99/max ms",
    "CPU s server/others",
    "counters",
]


def print_table(sizes: list[SizeResult]) -> None:
    """A rich table when rich is importable, else aligned plain text."""
    rows = table_rows(sizes)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
        print("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    else:
        table = Table(title="sheaf identity load-accounts benchmark")
        for header in HEADERS:
            justify = "left" if header in ("phase", "counters") else "right"
            table.add_column(header, justify=justify)  # type: ignore[arg-type]
        for row in rows:
            styled = [f"[bold red]{c}[/]" if ("FAIL" in c or "MISMATCH" in c) else c for c in row]
            table.add_row(*styled)
        Console(width=220).print(table)
    print(
        f"targets at {TARGET_SIZE:,} rows: ratios as shown, peak RSS <= "
        f"{TARGET_PEAK_RSS_BYTES / 2**30:.1f} GiB, task-status p99 <= "
        f"{TARGET_STATUS_P99_S * 1000:.0f} ms; (lower-case) = informational at smaller sizes.\n"
        "CPU 'others' = CPU used by processes other than the server and this benchmark during "
        "the phase: if it is large, the machine was busy and the timings are noisy."
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


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


def write_json(
    path: Path,
    sizes: list[SizeResult],
    manifests: dict[int, generate.DatasetManifest],
    args: argparse.Namespace,
) -> None:
    """Everything measured, plus enough context (machine, versions, data) to compare runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "polars": pl.__version__,
        },
        "server": server_fingerprint(),
        "settings": {
            "rate_limit_requests": args.rate_limit,
            "rss_interval_s": RSS_INTERVAL_S,
            "completion_poll_s": COMPLETION_POLL_S,
            "py_spy": str(args.py_spy) if args.py_spy else None,
            "wait_idle_s": args.wait_idle,
            "status_probe": not args.no_status_probe,
        },
        "targets": {
            "size": TARGET_SIZE,
            "ratio": TARGET_RATIO,
            "peak_rss_bytes": TARGET_PEAK_RSS_BYTES,
            "status_p99_s": TARGET_STATUS_P99_S,
        },
        "datasets": {str(k): asdict(v) for k, v in manifests.items()},
        "sizes": _jsonable(sizes),
    }
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=generate.parse_sizes, default=list(generate.DEFAULT_SIZES))
    parser.add_argument("--data-dir", type=Path, default=generate.DEFAULT_DATA_DIR)
    parser.add_argument("--keep", action="store_true", help="keep each server's data dir")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument("--sheaf", type=Path, default=DEFAULT_SHEAF, help="sheaf executable")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="SHEAF_AUTH__RATE_LIMIT_REQUESTS for the server; 0 (default) disables the "
        "SailPoint-style 100 req/10 s budget, which a back-to-back poller would exhaust",
    )
    parser.add_argument(
        "--phase-timeout", type=float, default=1800.0, help="seconds allowed per load"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="py-spy executable: record the server during each phase (perturbs timings)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="before the baseline and each phase, wait up to this many seconds for the "
        "machine to be nearly idle (< 0.25 busy cores over 3 s); 0 (default) does not wait",
    )
    parser.add_argument(
        "--no-status-probe",
        action="store_true",
        help="skip the back-to-back task-status poller during the first load, to see how much "
        "the polling itself slows the load down (the p99 check then fails: nothing measured)",
    )
    parser.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every size, print the table, write JSON; exit 1 on errors, 2 on missed targets."""
    args = parse_args(argv)
    if not args.sheaf.exists():
        print(f"sheaf executable not found: {args.sheaf}", file=sys.stderr)
        return 1
    # SIGTERM (e.g. from a CI timeout) must still run the finally blocks that stop the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log_dir = args.json.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    manifests: dict[int, generate.DatasetManifest] = {}
    sizes: list[SizeResult] = []
    for size in args.sizes:
        started = time.perf_counter()
        manifests[size] = generate.ensure(size, args.data_dir, args.seed)
        print(
            f"data {size:,}: ready in {time.perf_counter() - started:.2f}s "
            f"(generated in {manifests[size].generation_seconds:.2f}s)",
            file=sys.stderr,
        )
    for size in args.sizes:
        sizes.append(run_size(size, args, manifests[size], log_dir))
        write_json(args.json, sizes, manifests, args)  # partial results survive a crash
    print_table(sizes)
    for outcome in sizes:
        if outcome.error:
            print(f"\n{outcome.size:,}: ABORTED: {outcome.error}")
        for phase in outcome.phases:
            for problem in phase.problems:
                print(f"\n{outcome.size:,} {phase.phase}: PROBLEM: {problem}")
        if outcome.server_log_tail:
            print(f"\nserver log tail ({outcome.server_log}):\n{outcome.server_log_tail}")
    print(f"\nresults: {args.json}")
    broken = any(o.error or any(p.problems for p in o.phases) for o in sizes)
    missed = any(c["enforced"] and not c["ok"] for o in sizes for c in o.checks)
    return 1 if broken else 2 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
