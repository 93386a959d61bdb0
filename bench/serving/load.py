"""Load generators: ``timed.py`` (the default), or ``wrk`` (Debian's package) on request.

Each runs ``connections`` keep-alive connections for ``seconds`` against one path (or,
for account pages, a random offset each request) and reports requests, errors and the
latency percentiles. The timed client's percentiles are over every request; wrk's are
not, and they overweight slow answers by orders of magnitude (see timed.py). wrk costs
the server less CPU, and stays here to compare with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.serving import timed

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


def run_together(wrk: str | None, base_url: str, loads: list[tuple[Target, int]],
                 seconds: float, threads: int = 2) -> list[LoadResult]:
    """Run every (target, connections) at once for ``seconds``: through wrk when given,
    else the timed client."""
    if wrk is not None:
        runs = [WrkRun(wrk, base_url, target, connections, seconds,
                       threads if len(loads) == 1 else 1)
                for target, connections in loads]
        return [run.result() for run in runs]
    answers = timed.run(base_url, [timed.Load(
        target.name, "GET", [target.path],
        {"Authorization": f"Bearer {target.token}", "Accept": "application/json"},
        connections, offset_below=target.random_offset_below, ok_below=300)
        for target, connections in loads], seconds)
    return [LoadResult(name=r.name, tool="timed", connections=r.connections,
                       seconds=r.seconds, requests=r.requests, errors=r.errors,
                       p50_ms=r.ms(50), p99_ms=r.ms(99), max_ms=r.max_ms) for r in answers]
