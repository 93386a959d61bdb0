"""The aggregate-endpoint probe: ``POST /users/{u}/members/{m}/aggregate`` on random
members from ``connections`` clients back to back, with ``wrk`` when it is there (written
in C: the load generator then leaves the server the machine's cores; 50 Python threads
in one process spend more CPU and GIL waits than the server does per request, and their
waits count as latency). Without wrk, Python threads (``python_probe``)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path

from bench.serving.load import WRK_TIMEOUT_S, LoadResult

# one member path per line (BENCH_PATHS), Basic auth (BENCH_BASIC); summary as serving's
_SCRIPT = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
local paths = {}
function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
  for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
  wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
  wrk.headers["Accept"] = "application/vnd.mx.api.v1+json"
end
function request()
  return wrk.format("POST", paths[math.random(1, #paths)])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def wrk_probe(wrk: str, base_url: str, auth: tuple[str, str], paths: list[str],
              connections: int, seconds: float, threads: int = 2) -> LoadResult:
    """``connections`` wrk connections POSTing to random ``paths`` for ``seconds``;
    errors["status"] counts answers of 400 and above (the endpoint answers 202)."""
    with tempfile.TemporaryDirectory(prefix="bench-finance-wrk-") as tmp:
        script, listing = Path(tmp) / "probe.lua", Path(tmp) / "paths.txt"
        script.write_text(_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        done = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             f"--timeout={WRK_TIMEOUT_S}s", "-s", str(script), base_url],
            env={**os.environ, "BENCH_PATHS": str(listing), "BENCH_BASIC": basic},
            capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (exit {done.returncode}):\n"
                           + (done.stdout + done.stderr)[-2000:])
    data = json.loads(line[6:])
    answered = bool(data["requests"])  # (wrk reports 0 percentiles for no answers at all)
    return LoadResult(
        name="aggregate", tool="wrk", connections=connections,
        seconds=data["duration_us"] / 1e6, requests=data["requests"],
        errors={k: data[k] for k in ("connect", "read", "write", "status", "timeout")},
        p50_ms=data["p50_us"] / 1000 if answered else None,
        p99_ms=data["p99_us"] / 1000 if answered else None,
        max_ms=data["max_us"] / 1000 if answered else None)
