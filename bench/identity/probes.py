"""What the benchmark watches while a load runs: server RSS, CPU use, task-status latency under
load, and (optionally) a py-spy profile of the server."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.identity.procfs import (
    CLK_TCK,
    machine_busy_seconds,
    process_tree,
    stat_fields,
    status_kib,
    tree_rss_bytes,
)
from bench.identity.server import HTTP_TIMEOUT

RSS_INTERVAL_S = 0.05
LATENCY_MAX_REQUESTS = 200_000
PROFILE_RATE = 50  # py-spy samples per second; low enough not to skew the timings much


# --------------------------------------------------------------------------- memory and CPU


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
        return cls(machine_busy_seconds(), server / CLK_TCK, times.user + times.system)


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


def wait_for_server_idle(
    server_pid: int, max_wait: float, busy_cores: float = 0.1, window: float = 0.25
) -> float:
    """Seconds until the server tree uses < ``busy_cores`` over a ``window`` (at most
    ``max_wait``): the work a load leaves behind after its task completes, such as the WAL
    checkpoint after a big write. Each phase then starts on an idle server, and what the
    previous one left behind is reported rather than charged to the next."""
    started = time.monotonic()
    while True:
        before = CpuSnapshot.take(server_pid).server
        time.sleep(window)
        busy = (CpuSnapshot.take(server_pid).server - before) / window
        waited = time.monotonic() - started
        if busy < busy_cores or waited >= max_wait:
            return waited - window


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
            rss = sum(status_kib(pid, b"VmRSS:") for pid in pids) * 1024
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
