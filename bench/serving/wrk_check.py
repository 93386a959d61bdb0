"""Why the benchmarks time requests themselves: wrk against the timed client on an app
whose latencies are known.

A bare ASGI app (no sheaf) answers 0.5% of requests after 500 ms and the rest at once, in
two uvicorn processes. At most 0.5% of the requests can take 500 ms, so every
percentile up to p99 must be well under a millisecond or two, and by Little's law the
mean latency is at most (connections / requests per second). Both load generators run
against it in turn and their figures are printed side by side.

    .venv/bin/python -m bench.serving.wrk_check          # needs wrk (apt-get install wrk)
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.identity.server import free_port  # noqa: E402
from bench.serving import timed  # noqa: E402
from bench.serving.load import find_wrk  # noqa: E402

SLOW_SHARE, SLOW_S, CONNECTIONS, SECONDS = 0.005, 0.5, 50, 10


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if random.random() < SLOW_SHARE:
        await asyncio.sleep(SLOW_S)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


_WRK_SCRIPT = """function done(summary, latency, requests)
  io.write(string.format("requests %d mean %.2f p50 %.2f p90 %.2f p99 %.2f\\n",
    summary.requests, latency.mean / 1000, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
"""


def main() -> int:
    wrk = find_wrk(install=False)
    if wrk is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.serving.wrk_check:app", "--port", str(port),
         "--workers", "2", "--log-level", "warning"],
        cwd=Path(__file__).resolve().parents[2])
    try:
        time.sleep(3)
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(_WRK_SCRIPT)
            script.flush()
            out = subprocess.run([wrk, "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s",
                                  script.name, f"http://127.0.0.1:{port}/"],
                                 capture_output=True, text=True, check=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("requests "))
        fields = line.split()
        w = {fields[i]: float(fields[i + 1]) for i in range(0, len(fields), 2)}
        (t,) = timed.run(f"http://127.0.0.1:{port}",
                         [timed.Load("check", "GET", ["/"], {}, CONNECTIONS)], SECONDS)
    finally:
        server.terminate()
        server.wait()
    print(f"{SLOW_SHARE:.1%} of answers after {SLOW_S * 1000:.0f} ms, {CONNECTIONS} "
          f"connections, {SECONDS} s")
    print(f"{'':8}{'req/s':>10}{'mean ms':>10}{'Little ms':>11}{'p50':>9}{'p90':>9}{'p99':>9}")
    for name, rps, mean, p50, p90, p99 in (
            ("wrk", w["requests"] / SECONDS, w["mean"], w["p50"], w["p90"], w["p99"]),
            ("timed", t.rps, t.mean_ms or 0, t.ms(50) or 0, t.ms(90) or 0, t.ms(99) or 0)):
        print(f"{name:<8}{rps:>10,.0f}{mean:>10.2f}{CONNECTIONS / rps * 1000:>11.2f}"
              f"{p50:>9.2f}{p90:>9.2f}{p99:>9.2f}")
    print("(Little ms: the largest mean latency those connections allow at that rate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
