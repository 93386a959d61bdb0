"""Serving benchmark: one real ``sheaf serve`` under 100 concurrent clients (issue 10).

Scenarios, each bounded in time (``--duration``), on loopback:

- status: ``GET /v2025/task-status/{id}`` of a finished load, 100 connections, nothing
  else running. Target: >= 1,000 req/s with p99 <= 200 ms.
- pages: one request at a time for an account page (250) at a few offsets, for reference.
- mixed: while a first load of N accounts into a second source runs, 100 connections
  poll its task status and ``--page-connections`` read pages of the first source's N
  accounts at random offsets. Targets: 0 errors, status p99 <= 300 ms, pages p99 <= 500 ms.

The load generator shares the machine with the server: ``timed.py``, which times every
request (``--load-generator wrk`` for wrk, installed with apt-get when missing and run as
root; its percentiles overweight slow answers, see timed.py). Prints a table and writes
JSON (default ``bench/serving/results/latest.json``).

    .venv/bin/python -m bench.serving.run                     # 1M accounts, 10 s a scenario
    .venv/bin/python -m bench.serving.run --accounts 10k --duration 2     # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.identity import generate
from bench.identity.probes import CpuSnapshot
from bench.identity.server import (
    DEFAULT_SHEAF,
    Api,
    BenchError,
    SheafServer,
    describe,
    free_port,
    server_fingerprint,
)
from bench.serving.load import LoadResult, Target, find_wrk, run_together

RESULTS = Path(__file__).resolve().parent / "results"
PAGE = 250  # SailPoint's largest page
TARGETS = {  # issue 10, on this 2-core machine with the load generator on it too
    "status": {"rps": 1000.0, "status_p99_ms": 200.0},
    "mixed": {"errors": 0, "status_p99_ms": 300.0, "pages_p99_ms": 500.0},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=lambda t: generate.parse_sizes(t)[0],
                        default=1_000_000, help="accounts per load (10k, 100k, 1m, ...)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds a scenario")
    parser.add_argument("--connections", type=int, default=100, help="task-status clients")
    parser.add_argument("--page-connections", type=int, default=10,
                        help="account-page clients in the mixed scenario")
    parser.add_argument("--workers", type=int, default=None,
                        help="sheaf serve --workers (default: sheaf's, the core count)")
    parser.add_argument("--load-generator", choices=("timed", "wrk"), default="timed")
    parser.add_argument("--no-install", action="store_true",
                        help="do not apt-get install wrk when it is missing")
    parser.add_argument("--data-dir", type=Path, default=generate.DEFAULT_DATA_DIR)
    parser.add_argument("--sheaf", type=Path, default=DEFAULT_SHEAF)
    parser.add_argument("--port", type=int, default=0, help="default: a free one")
    parser.add_argument("--timeout", type=float, default=600.0, help="for each load")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep the server's data dir")
    return parser.parse_args(argv)


def create_source(api: Api, name: str) -> str:
    response = api.http.post("/v3/sources", headers=api.headers(), json={
        "name": name, "connector": "delimited-file", "deleteThreshold": 100})
    if response.status_code != 201:
        raise BenchError("create source: " + describe(response))
    return str(response.json()["id"])


def submit_load(api: Api, source_id: str, path: Path) -> str:
    with path.open("rb") as handle:
        response = api.http.post(
            f"/v2025/sources/{source_id}/load-accounts", headers=api.headers(),
            files={"file": (path.name, handle, "text/csv")},
            data={"disableOptimization": "false"})
    if response.status_code != 202:
        raise BenchError("load-accounts: " + describe(response))
    return str(response.json()["task"]["id"])


def wait_for_task(api: Api, task_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.task_status(task_id)
        if response.status_code != 200:
            raise BenchError("task-status: " + describe(response))
        task: dict[str, Any] = response.json()
        if task.get("completionStatus") is not None:
            return task
        time.sleep(0.2)
    raise BenchError(f"task {task_id} not complete after {timeout:.0f}s")


def check_load(task: dict[str, Any], accounts: int) -> None:
    created = (task.get("attributes") or {}).get("created")
    if task.get("completionStatus") != "SUCCESS" or created != accounts:
        raise BenchError(f"load ended {task.get('completionStatus')} with created={created}, "
                         f"expected SUCCESS and {accounts}: {task.get('messages')}")


def page_path(source_id: str) -> str:
    return f"/v3/accounts?limit={PAGE}&filters=" + quote(f'sourceId eq "{source_id}"')


def page_probe(api: Api, source_id: str, accounts: int) -> list[dict[str, Any]]:
    """One request at a time at a few offsets: the median of three, in ms."""
    rows = []
    for offset in sorted({0, accounts // 4, accounts // 2, max(0, accounts - PAGE)}):
        took = []
        for _ in range(3):
            started = time.perf_counter()
            response = api.http.get(page_path(source_id) + f"&offset={offset}",
                                    headers=api.headers())
            took.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200 or not response.json():
                raise BenchError(f"page at offset {offset}: " + describe(response))
        rows.append({"offset": offset, "ms": round(statistics.median(took), 1)})
    return rows


def completed_at(task: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(task["completed"]).replace("Z", "+00:00")).timestamp()


def run(args: argparse.Namespace) -> dict[str, Any]:
    manifest = generate.ensure(args.accounts, args.data_dir)
    base_file = generate.paths_for(args.accounts, args.data_dir)[0]
    wrk = find_wrk(not args.no_install) if args.load_generator == "wrk" else None
    if wrk is None and args.load_generator == "wrk":
        raise BenchError("wrk not found (apt-get install wrk)")
    tool = args.load_generator
    print(f"load generator: {tool}; {args.accounts:,} accounts; {args.duration:g} s a scenario",
          flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    serve_args = ["--log-level", "warning"]
    if args.workers:
        serve_args += ["--workers", str(args.workers)]
    server = SheafServer(args.sheaf, workdir / "data", args.port or free_port(),
                         workdir / "server.log", {"SHEAF_AUTH__RATE_LIMIT_REQUESTS": "0"},
                         serve_args)
    report: dict[str, Any] = {
        "accounts": args.accounts, "duration_s": args.duration, "tool": tool,
        "workers": args.workers or len(os.sched_getaffinity(0)),
        "connections": args.connections, "page_connections": args.page_connections,
        "server": server_fingerprint(), "manifest_seed": manifest.seed,
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    try:
        server.start()
        made = server.cli("credentials", "create", "serving-bench", "--authority",
                          "ORG_ADMIN", "--json")
        if made.returncode != 0:
            raise BenchError("credentials create: " + made.stderr)
        cred = json.loads(made.stdout.strip().splitlines()[-1])
        api = Api(server.base_url, cred["client_id"], cred["client_secret"])
        token = api.token()

        first = create_source(api, "serving-pages")
        first_task = submit_load(api, first, base_file)
        check_load(wait_for_task(api, first_task, args.timeout), args.accounts)
        status = Target("task-status", f"/v2025/task-status/{first_task}", token)
        run_together(wrk, server.base_url, [(status, args.connections)], min(2, args.duration))

        report["loadavg_before_status"] = os.getloadavg()
        before = CpuSnapshot.take(server.pid)
        (alone,) = run_together(wrk, server.base_url, [(status, args.connections)],
                                args.duration)
        report["status"] = {**alone.to_json(), **cpu(before, CpuSnapshot.take(server.pid),
                                                     alone)}
        report["pages_one_at_a_time"] = page_probe(api, first, args.accounts)

        second = create_source(api, "serving-load")
        report["loadavg_before_mixed"] = os.getloadavg()
        loading = submit_load(api, second, base_file)
        window_start = time.time()
        before = CpuSnapshot.take(server.pid)
        polled, paged = run_together(wrk, server.base_url, [
            (Target("task-status (loading)", f"/v2025/task-status/{loading}", token),
             args.connections),
            (Target("account pages", page_path(first), token,
                    random_offset_below=max(1, args.accounts - PAGE + 1)),
             args.page_connections),
        ], args.duration)
        window_end = time.time()
        used = cpu(before, CpuSnapshot.take(server.pid), polled, paged)
        task = wait_for_task(api, loading, args.timeout)
        check_load(task, args.accounts)
        overlap = max(0.0, min(window_end, completed_at(task)) - window_start)
        report["mixed"] = {"status": polled.to_json(), "pages": paged.to_json(),
                           "load_overlap_s": round(overlap, 2),
                           "window_s": round(window_end - window_start, 2), **used}
        api.close()
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            report["workdir"] = str(workdir)
    report["checks"] = checks(alone, polled, paged)
    return report


def cpu(before: CpuSnapshot, after: CpuSnapshot, *loads: LoadResult) -> dict[str, Any]:
    """What the scenario cost: the server's CPU per request is the figure that does not
    depend on what else the machine was doing (its req/s does)."""
    seconds = max(load.seconds for load in loads)
    requests = sum(load.requests for load in loads)
    server = after.server - before.server
    return {
        "server_cpu_s": round(server, 2),
        "server_cpu_ms_per_request": round(1000 * server / requests, 3) if requests else None,
        "machine_busy_cores": round((after.machine_busy - before.machine_busy) / seconds, 2),
        "bench_cpu_s": round(after.bench - before.bench, 2),
    }


def checks(alone: LoadResult, polled: LoadResult, paged: LoadResult) -> list[dict[str, Any]]:
    def check(what: str, value: float | None, limit: float, at_least: bool = False
              ) -> dict[str, Any]:
        ok = value is not None and (value >= limit if at_least else value <= limit)
        return {"check": what, "value": None if value is None else round(value, 1),
                "target": f"{'>=' if at_least else '<='} {limit:g}", "ok": ok}

    status, mixed = TARGETS["status"], TARGETS["mixed"]
    return [
        check("status: req/s", alone.rps, status["rps"], at_least=True),
        check("status: p99 ms", alone.p99_ms, status["status_p99_ms"]),
        check("status: errors", alone.error_count, 0),
        check("mixed: errors", polled.error_count + paged.error_count, mixed["errors"]),
        check("mixed: account pages answered", paged.requests, 1, at_least=True),
        check("mixed: task-status p99 ms", polled.p99_ms, mixed["status_p99_ms"]),
        check("mixed: account pages p99 ms", paged.p99_ms, mixed["pages_p99_ms"]),
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_report(report: dict[str, Any]) -> None:
    rows = [("status alone", report["status"]), ("mixed: task-status", report["mixed"]["status"]),
            ("mixed: account pages", report["mixed"]["pages"])]
    print(f"\nsheaf serve --workers {report['workers']}, {report['tool']}, "
          f"{report['accounts']:,} accounts, {report['duration_s']:g} s a scenario")
    print(f"{'scenario':<22}{'conns':>6}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
          f"{'max ms':>10}{'errors':>8}")
    for name, r in rows:
        print(f"{name:<22}{r['connections']:>6}{r['rps']:>10,.0f}{_ms(r['p50_ms']):>10}"
              f"{_ms(r['p99_ms']):>10}{_ms(r['max_ms']):>10}{r['error_count']:>8}")
    mixed, alone = report["mixed"], report["status"]
    print(f"the load ran {mixed['load_overlap_s']:g} s of the {mixed['window_s']:g} s mixed "
          "window")
    print(f"server CPU per request: {alone['server_cpu_ms_per_request']} ms alone; busy cores "
          f"(whole machine): {alone['machine_busy_cores']} alone, "
          f"{mixed['machine_busy_cores']} mixed")
    print("pages one at a time: " + ", ".join(
        f"offset {p['offset']:,}: {p['ms']:g} ms" for p in report["pages_one_at_a_time"]))
    for c in report["checks"]:
        print(f"  {'met   ' if c['ok'] else 'MISSED'} {c['check']}: {c['value']} "
              f"(target {c['target']})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
