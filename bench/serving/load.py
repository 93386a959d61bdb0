"""Load generators: ``wrk`` (Debian's package) when it is there, else a Python one.

Each runs ``connections`` keep-alive connections for ``seconds`` against one path (or,
for account pages, a random offset each request) and reports requests, errors and the
latency percentiles. wrk is preferred: written in C, it leaves the server most of the
two cores; the asyncio + httpx fallback needs a core of its own for a few hundred
requests a second, so its figures are a floor, not the server's ceiling.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

WRK_TIMEOUT_S = 10  # a slower answer counts as an error (wrk: "timeout")


@dataclass
class Target:
    """What to request: ``path``, or ``path`` + ``&offset=`` a random number below
    ``random_offset_below``."""

    name: str
    path: str
    token: str
    random_offset_below: int = 0


@dataclass
class LoadResult:
    name: str
    tool: str
    connections: int
    seconds: float
    requests: int
    errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1), "error_count": self.error_count}


def find_wrk(install: bool) -> str | None:
    """The wrk binary; with ``install`` and root, ``apt-get install wrk`` when it is
    missing (it is a Debian package, not a PyPI one)."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-q", "wrk"],
                    ["sh", "-c", "apt-get update -q && apt-get install -y -q wrk"]):
        print(f"setup: {' '.join(command)}", flush=True)
        if subprocess.run(command, env=env, capture_output=True, check=False).returncode == 0:
            break
    return shutil.which("wrk")


# wrk's Lua ending every script here: the JSON summary ``wrk_result`` reads.
WRK_SUMMARY = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

# wrk's Lua opening every script here: each thread its own seed for math.random.
WRK_SEEDS = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
"""

# wrk's Lua: headers, a random offset per request where asked, and a JSON summary.
_WRK_SCRIPT = WRK_SEEDS + """function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Accept"] = "application/json"
end
local below = tonumber(os.getenv("BENCH_OFFSET_BELOW") or "0")
function request()
  local path = os.getenv("BENCH_PATH")
  if below > 0 then
    path = path .. "&offset=" .. math.random(0, below - 1)
  end
  return wrk.format("GET", path)
end
""" + WRK_SUMMARY


class WrkRun:
    """One wrk process, started now; ``result()`` waits for it."""

    def __init__(self, wrk: str, base_url: str, target: Target, connections: int,
                 seconds: float, threads: int) -> None:
        self.target = target
        self.connections = connections
        self._dir = tempfile.TemporaryDirectory(prefix="bench-wrk-")
        script = Path(self._dir.name) / "bench.lua"
        script.write_text(_WRK_SCRIPT)
        env = {**os.environ, "BENCH_TOKEN": target.token, "BENCH_PATH": target.path,
               "BENCH_OFFSET_BELOW": str(target.random_offset_below)}
        self._process = subprocess.Popen(
            [wrk, f"-t{max(1, min(threads, connections))}", f"-c{connections}",
             f"-d{max(1, round(seconds))}s", f"--timeout={WRK_TIMEOUT_S}s", "-s", str(script),
             base_url],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def result(self) -> LoadResult:
        output, _ = self._process.communicate()
        self._dir.cleanup()
        return wrk_result(output, self._process.returncode, self.target.name,
                          self.connections)


def wrk_result(output: str, returncode: int, name: str, connections: int) -> LoadResult:
    """The LoadResult of a wrk run whose script ends with WRK_SUMMARY."""
    line = next((x for x in output.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (exit {returncode}):\n" + output[-2000:])
    data = json.loads(line[6:])
    if not data["requests"]:  # (wrk reports 0 ms percentiles for no answers at all)
        data.update(p50_us=None, p99_us=None, max_us=None)
    return LoadResult(
        name=name, tool="wrk", connections=connections,
        seconds=data["duration_us"] / 1e6, requests=data["requests"],
        errors={k: data[k] for k in ("connect", "read", "write", "status", "timeout")},
        p50_ms=_ms(data["p50_us"]), p99_ms=_ms(data["p99_us"]), max_ms=_ms(data["max_us"]))


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000


async def _python_load(base_url: str, target: Target, connections: int,
                       seconds: float) -> LoadResult:
    """The fallback: ``connections`` asyncio clients in this process."""
    latencies: list[float] = []
    errors = {"status": 0, "transport": 0}
    headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=WRK_TIMEOUT_S) as http:
        started = time.perf_counter()
        deadline = started + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                path = target.path
                if target.random_offset_below:
                    path += f"&offset={random.randrange(target.random_offset_below)}"
                sent = time.perf_counter()
                try:
                    response = await http.get(path)
                except httpx.HTTPError:
                    errors["transport"] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 200:
                    errors["status"] += 1

        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    result = LoadResult(name=target.name, tool="python", connections=connections,
                        seconds=elapsed, requests=len(latencies) + errors["transport"],
                        errors=errors)
    if len(latencies) >= 2:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        result.p50_ms, result.p99_ms = cuts[49] * 1000, cuts[98] * 1000
        result.max_ms = max(latencies) * 1000
    return result


def run_together(wrk: str | None, base_url: str, loads: list[tuple[Target, int]],
                 seconds: float, threads: int = 2) -> list[LoadResult]:
    """Run every (target, connections) at once for ``seconds``; wrk if given."""
    if wrk is not None:
        runs = [WrkRun(wrk, base_url, target, connections, seconds,
                       threads if len(loads) == 1 else 1)
                for target, connections in loads]
        return [run.result() for run in runs]

    async def everything() -> list[LoadResult]:
        return list(await asyncio.gather(*(
            _python_load(base_url, target, connections, seconds)
            for target, connections in loads)))

    return asyncio.run(everything())
