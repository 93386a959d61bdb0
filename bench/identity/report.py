"""The results table on stdout and the JSON file."""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from bench.identity import generate
from bench.identity.probes import RSS_INTERVAL_S
from bench.identity.results import (
    TARGET_PEAK_RSS_BYTES,
    TARGET_RATIO,
    TARGET_SIZE,
    TARGET_STATUS_P99_S,
    SizeResult,
    summarize,
)
from bench.identity.server import COMPLETION_POLL_S, server_fingerprint


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


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
    repeated = any(o.run > 1 for o in sizes)
    for outcome in sizes:
        size = f"{outcome.size:,}" + (f" #{outcome.run}" if repeated else "")
        checks = {c["check"]: c for c in outcome.checks}
        mem = checks["peak server RSS bytes"]
        lat = checks["task-status p99 seconds (during first load)"]
        if not outcome.phases:
            rows.append([size, "ERROR", *["-"] * (len(HEADERS) - 2)])
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
                    size,
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
                    "-" if phase.settle_seconds is None else f"{phase.settle_seconds:.2f}",
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
    "settle s",
    "counters",
]


def print_table(sizes: list[SizeResult]) -> None:
    """Every run's phases, then what the figures mean."""
    _print("sheaf identity load-accounts benchmark", HEADERS, table_rows(sizes))
    print(
        f"targets at {TARGET_SIZE:,} rows: ratios as shown, peak RSS <= "
        f"{TARGET_PEAK_RSS_BYTES / 2**30:.1f} GiB, task-status p99 <= "
        f"{TARGET_STATUS_P99_S * 1000:.0f} ms; (lower-case) = informational at smaller sizes.\n"
        "CPU 'others' = CPU used by processes other than the server and this benchmark during "
        "the phase: if it is large, the machine was busy and the timings are noisy.\n"
        "settle s = how long the server stayed busy after the task completed (the WAL "
        "checkpoint of what the load wrote); the next phase starts once it is idle."
    )


SUMMARY_HEADERS = [
    "size",
    "phase",
    "runs",
    "median s",
    "range s",
    "median ratio",
    "range",
    "target",
    "met in",
    "result",
]


def summary_rows(summary: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f"{s['size']:,}",
            s["phase"],
            str(s["runs"]),
            f"{s['median_seconds']:.2f}",
            f"{s['min_seconds']:.2f}-{s['max_seconds']:.2f}",
            f"{s['median_ratio']:.1f}x",
            f"{s['min_ratio']:.1f}x-{s['max_ratio']:.1f}x",
            f"<= {s['target_ratio']:g}x",
            f"{s['runs_meeting_target']}/{s['runs']}",
            _verdict(s["ok"], s["enforced"]),
        ]
        for s in summary
    ]


def print_summary(summary: list[dict[str, Any]]) -> None:
    """Median and range over the repeated runs; the verdict goes by the median."""
    _print("over repeated runs (each on a fresh server)", SUMMARY_HEADERS, summary_rows(summary))


def _print(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A rich table when rich is importable, else aligned plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    else:
        table = Table(title=title)
        for header in headers:
            justify = "left" if header in ("phase", "counters") else "right"
            table.add_column(header, justify=justify)  # type: ignore[arg-type]
        for row in rows:
            styled = [f"[bold red]{c}[/]" if ("FAIL" in c or "MISMATCH" in c) else c for c in row]
            table.add_row(*styled)
        Console(width=220).print(table)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


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
            "repeat": args.repeat,
        },
        "targets": {
            "size": TARGET_SIZE,
            "ratio": TARGET_RATIO,
            "peak_rss_bytes": TARGET_PEAK_RSS_BYTES,
            "status_p99_s": TARGET_STATUS_P99_S,
        },
        "datasets": {str(k): asdict(v) for k, v in manifests.items()},
        "sizes": _jsonable(sizes),
        "summary": summarize(sizes),
    }
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
