"""The benchmark's verdict over repeated runs goes by the median, and says how often."""

from __future__ import annotations

from bench.identity.results import PhaseResult, SizeResult, summarize


def _run(run: int, size: int, **seconds: float) -> SizeResult:
    phases = [
        PhaseResult(size=size, phase=phase, file="f.csv", rows_in_file=size, file_bytes=1,
                    seconds=s, polars_read_seconds=0.1, ratio=s / 0.1)
        for phase, s in seconds.items()
    ]
    return SizeResult(size=size, run=run, phases=phases)


def test_summary_takes_the_median_and_counts_the_runs_that_met_the_target() -> None:
    runs = [
        _run(1, 1_000_000, first=4.0, changed=0.55),
        _run(2, 1_000_000, first=1.4, changed=0.65),
        _run(3, 1_000_000, first=5.0, changed=0.58),
        _run(1, 10_000, first=0.3),
    ]
    by_phase = {(s["size"], s["phase"]): s for s in summarize(runs)}
    first = by_phase[(1_000_000, "first")]
    assert (first["runs"], first["median_seconds"], first["min_seconds"],
            first["max_seconds"]) == (3, 4.0, 1.4, 5.0)
    assert round(first["median_ratio"], 6) == 40.0
    assert (first["runs_meeting_target"], first["ok"], first["enforced"]) == (1, False, True)
    changed = by_phase[(1_000_000, "changed")]  # 5.5x, 6.5x, 5.8x against 6x
    assert (changed["runs_meeting_target"], changed["ok"]) == (2, True)
    small = by_phase[(10_000, "first")]
    assert (small["runs"], small["enforced"]) == (1, False)


def test_a_phase_that_was_never_measured_is_left_out() -> None:
    aborted = SizeResult(size=1_000_000, run=1, phases=[
        PhaseResult(size=1_000_000, phase="first", file="f.csv", rows_in_file=1, file_bytes=1)
    ])
    assert summarize([aborted]) == []
