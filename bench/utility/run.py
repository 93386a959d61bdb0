"""Benchmark of the utility domain against a real ``sheaf serve`` (SQLite by default).

    .venv/bin/python bench/utility/run.py                     # the issue's size
    .venv/bin/python bench/utility/run.py --smoke              # 20 x 3 x 12, to see it works
    .venv/bin/python bench/utility/run.py --aggregates 1000    # a tenth

N aggregate meters x S source meters x P periods of source bills, loaded by the bulk
import; then the P-period aggregation (``--repeat`` times, the task deleted between: each
makes every bill), as many unchanged re-runs (must create no bill), and a re-run after
re-importing with 1% of the source bills changed. Prints medians and writes
JSON (``--out``); peak memory is the server tree's VmHWM (summed over its processes: an
upper bound). The aggregate meters are set up over HTTP (about 10 minutes at full size on
a shared machine; not a measured figure).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.identity.server import (  # noqa: E402
    DEFAULT_SHEAF,
    BenchError,
    SheafServer,
    free_port,
    server_fingerprint,
)

LAST_PERIOD = 202412
EXEC = "/api/v202203/utilityPlatform/aggregations/exec"


def periods(count: int) -> list[int]:
    out, p = [], LAST_PERIOD
    for _ in range(count):
        out.append(p)
        p = p - 1 if p % 100 > 1 else p - 100 + 11
    return sorted(out)


def bills_csv(path: Path, aggregates: int, sources: int, period_count: int,
              changed: float = 0.0) -> int:
    """Write the source bills; ``changed`` of them (a fraction) get another cost. Returns
    how many (aggregate, period) sums the change touches."""
    spans = periods(period_count)
    frame = pl.DataFrame({"a": pl.int_range(0, aggregates, eager=True)}).join(
        pl.DataFrame({"s": pl.int_range(0, sources, eager=True)}), how="cross").join(
        pl.DataFrame({"period": spans}), how="cross")
    frame = frame.with_row_index("n").with_columns(
        (pl.col("n") % max(1, round(1 / changed)) == 0 if changed else pl.lit(False))
        .alias("changed"))
    month = (pl.col("period") % 100).cast(pl.String).str.zfill(2)
    year = (pl.col("period") // 100).cast(pl.String)
    out = frame.select(
        ("P" + pl.col("a").cast(pl.String)).alias("place_code"),
        pl.lit("ELECTRIC").alias("commodity_code"),
        ("A" + pl.col("a").cast(pl.String)).alias("account_code"),
        ("M" + pl.col("a").cast(pl.String) + "-" + pl.col("s").cast(pl.String))
        .alias("meter_code"),
        pl.col("period").alias("billing_period"),
        (year + "-" + month + "-01").alias("begin_date"),
        (year + "-" + month + "-28").alias("end_date"),
        ((pl.col("n") % 997) + 100).cast(pl.String).alias("use"),
        pl.lit("kWh").alias("use_unit"),
        (((pl.col("n") % 89) + 10).cast(pl.String) + pl.when(pl.col("changed"))
         .then(pl.lit(".77")).otherwise(pl.lit(".25"))).alias("cost"))
    out.write_csv(path)
    return frame.filter("changed").select("a", "period").unique().height


def wait_task(http: httpx.Client, headers: dict[str, str], task_id: int,
              timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = http.get(f"/api/v3/chargebackTask/{task_id}", headers=headers).json()
        if task["status"] not in ("Queued", "Processing"):
            return dict(task)
        time.sleep(0.05)
    raise BenchError(f"task {task_id} did not end in {timeout} s")


def aggregate(http: httpx.Client, headers: dict[str, str], timeout: float) -> tuple[float, Any]:
    started = time.perf_counter()
    # (no retry: a task reads Completed only once its job has ended and let go of the lock)
    response = http.post(EXEC, headers=headers, json={"billingPeriod": LAST_PERIOD})
    if response.status_code != 200:
        raise BenchError(f"exec: {response.status_code} {response.text[:500]}")
    task = wait_task(http, headers, int(response.json()["taskId"]), timeout)
    return time.perf_counter() - started, task


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sheaf-bench-utility-"))
    env = {"SHEAF_UTILITY__AGGREGATION_PERIODS": str(args.periods),
           "SHEAF_AUTH__RATE_LIMIT_REQUESTS": "0"}
    server = SheafServer(Path(args.sheaf), work / "data", free_port(), work / "server.log", env)
    server.start()
    figures: dict[str, Any] = {"aggregates": args.aggregates, "sources": args.sources,
                               "periods": args.periods,
                               "source_bills": args.aggregates * args.sources * args.periods}
    try:
        made = server.cli("credentials", "create", "bench", "--dialect", "energycap", "--json")
        if made.returncode != 0:
            raise BenchError(made.stderr)
        headers = {"ECI-ApiKey": json.loads(made.stdout)["api_key"]}
        http = httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(3600.0))
        csv = work / "bills.csv"
        bills_csv(csv, args.aggregates, args.sources, args.periods)

        started = time.perf_counter()
        with csv.open("rb") as handle:
            response = http.post("/api/v202203/utilityPlatform/billImport", headers=headers,
                                 files={"file": ("bills.csv", handle, "text/csv")})
        if response.status_code != 200:
            raise BenchError(f"import: {response.status_code} {response.text[:500]}")
        figures["import_s"] = time.perf_counter() - started

        started = time.perf_counter()
        # Every place with its meters, read from the server's database: listing 200k
        # meters through GET /api/v3/meter pages (several queries per meter) would take
        # longer than everything measured here, and it is not what this measures.
        with closing(sqlite3.connect(f"file:{work / 'data' / 'sheaf.db'}?mode=ro",
                                     uri=True)) as db:
            places: dict[int, list[int]] = {}
            for place, meter in db.execute("SELECT place_id, meter_id FROM utility_meter "
                                           "WHERE NOT is_aggregate ORDER BY meter_id"):
                places.setdefault(place, []).append(meter)
        electric = next(c["commodityId"] for c in http.get(
            "/api/v3/commodity", headers=headers).json() if c["commodityCode"] == "ELECTRIC")

        def upsert(item: tuple[int, list[int]]) -> None:
            place, meters = item
            r = http.put(f"/api/v202203/utilityPlatform/place/{place}/aggregateMeter",
                         headers=headers, json={"beginPeriod": periods(args.periods)[0],
                                                "sourceMeterIds": meters,
                                                "commodityId": electric,
                                                "aggregateMeterInfo": f"total {place}"})
            if r.status_code != 200:
                raise BenchError(f"upsert: {r.status_code} {r.text[:500]}")

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(upsert, places.items()))
        figures["aggregate_meters_setup_s"] = time.perf_counter() - started

        expected = args.aggregates * args.periods
        samples: list[float] = []
        task: dict[str, Any] = {}
        for _ in range(args.repeat):
            if task:  # the previous run's bills deleted: this one makes them all again
                gone = http.post(f"/api/v3/chargebackTask/{task['taskId']}/delete",
                                 headers=headers)
                if gone.status_code != 204:
                    raise BenchError(f"delete: {gone.status_code} {gone.text[:500]}")
            seconds, task = aggregate(http, headers, args.timeout)
            if task["numberOfBillsCreated"] != expected:
                raise BenchError(f"the aggregation made {task['numberOfBillsCreated']} bills, "
                                 f"not {expected}: {task}")
            samples.append(seconds)
        figures["aggregation_s"] = statistics.median(samples)
        figures["aggregation_runs_s"] = samples
        figures["aggregation_bills"] = expected

        samples = []
        for _ in range(args.repeat):
            seconds, task = aggregate(http, headers, args.timeout)
            if task["numberOfBillsCreated"] != 0:
                raise BenchError(f"an unchanged re-run made {task['numberOfBillsCreated']} "
                                 "bills")
            samples.append(seconds)
        figures["unchanged_rerun_s"] = statistics.median(samples)
        figures["unchanged_rerun_runs_s"] = samples

        touched = bills_csv(csv, args.aggregates, args.sources, args.periods, changed=0.01)
        started = time.perf_counter()
        with csv.open("rb") as handle:
            response = http.post("/api/v202203/utilityPlatform/billImport", headers=headers,
                                 files={"file": ("bills.csv", handle, "text/csv")})
        figures["changed_import_s"] = time.perf_counter() - started
        figures["changed_import"] = response.json()
        seconds, task = aggregate(http, headers, args.timeout)
        figures["changed_rerun_s"] = seconds
        figures["changed_rerun_bills"] = task["numberOfBillsCreated"]
        if task["numberOfBillsCreated"] != touched:
            raise BenchError(f"the 1% re-run made {task['numberOfBillsCreated']} bills, "
                             f"not {touched}")
        figures["peak_memory_mib"] = server.peak_hwm_bytes() / 2**20
        figures["server"] = server_fingerprint()
    finally:
        server.stop()
    return figures


def _runs(samples: list[float]) -> str:
    return "median of " + ", ".join(f"{x:.2f}" for x in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aggregates", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--periods", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3,
                        help="aggregations and unchanged re-runs timed (medians shown); each "
                             "aggregation after the first follows a delete of the last one")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--sheaf", default=str(DEFAULT_SHEAF))
    parser.add_argument("--out", default="bench/utility/results.json")
    parser.add_argument("--smoke", action="store_true",
                        help="20 aggregate meters x 3 sources x 12 periods, a quick check")
    args = parser.parse_args()
    if args.smoke:
        args.aggregates, args.sources = 20, 3
    figures = run(args)
    rows = [("source bills", f"{figures['source_bills']:,}"),
            ("bulk import", f"{figures['import_s']:.2f} s"),
            ("aggregate meters (HTTP upserts)", f"{figures['aggregate_meters_setup_s']:.2f} s"),
            (f"{args.periods}-period aggregation", f"{figures['aggregation_s']:.2f} s"
             f" ({figures['aggregation_bills']:,} bills; {_runs(figures['aggregation_runs_s'])})"),
            ("unchanged re-run (0 bills)", f"{figures['unchanged_rerun_s']:.2f} s"
             f" ({_runs(figures['unchanged_rerun_runs_s'])})"),
            ("1% changed: import", f"{figures['changed_import_s']:.2f} s"),
            ("1% changed: re-run", f"{figures['changed_rerun_s']:.2f} s"
             f" ({figures['changed_rerun_bills']:,} bills)"),
            ("peak memory (server tree VmHWM)", f"{figures['peak_memory_mib']:.0f} MiB")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
