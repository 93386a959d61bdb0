"""The aggregate-endpoint probe: ``POST /users/{u}/members/{m}/aggregate`` on random
members from ``connections`` clients back to back, with ``wrk`` when it is there (written
in C: the load generator then leaves the server the machine's cores; 50 Python threads
in one process spend more CPU and GIL waits than the server does per request, and their
waits count as latency). Without wrk, Python threads (``python_probe``)."""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from pathlib import Path

from bench.serving.load import WRK_SEEDS, WRK_SUMMARY, WRK_TIMEOUT_S, LoadResult, wrk_result

# one member path per line (BENCH_PATHS), Basic auth (BENCH_BASIC)
_SCRIPT = WRK_SEEDS + """local paths = {}
function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
  for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
  wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
  wrk.headers["Accept"] = "application/vnd.mx.api.v1+json"
end
function request()
  return wrk.format("POST", paths[math.random(1, #paths)])
end
""" + WRK_SUMMARY


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
    return wrk_result(done.stdout + done.stderr, done.returncode, "aggregate", connections)
