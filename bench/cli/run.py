"""How long CLI commands take, wall clock, from the shell's point of view.

Target (issue 10): `sheaf --help` and `sheaf jobs show ID` under 0.5 s on the 2-core
machine. Each command runs ``--runs`` times in a fresh process against a throwaway data
directory holding the demo's jobs; the table shows the median (and range) of wall and CPU
seconds. hyperfine is used when it is installed (``--no-hyperfine`` to compare), else a
plain loop. JSON goes to bench/cli/results/.

    .venv/bin/python -m bench.cli.run [--runs 15]

Timings are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHEAF = Path(sys.executable).parent / "sheaf"
TARGET_SECONDS = 0.5


def commands(job_id: str) -> list[tuple[str, list[str], bool]]:
    """(label, argv, held to the target)"""
    return [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"], False),
        ("sheaf --help", [str(SHEAF), "--help"], True),
        ("sheaf jobs show PREFIX", [str(SHEAF), "jobs", "show", job_id[:16]], True),
        ("sheaf jobs list", [str(SHEAF), "jobs", "list"], False),
        ("sheaf db upgrade (no-op)", [str(SHEAF), "db", "upgrade"], False),
    ]


def _loop(argv: list[str], runs: int, env: dict[str, str]) -> dict[str, float | list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return {"wall": walls, "cpu": cpus}


def _hyperfine(argv: list[str], runs: int, env: dict[str, str]) -> dict[str, float | list[float]]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(["hyperfine", "--runs", str(runs), "--warmup", "1", "-N",
                        "--export-json", out.name, " ".join(argv)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = json.loads(Path(out.name).read_text())["results"][0]
    return {"wall": result["times"], "cpu": [result["user"] + result["system"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-hyperfine", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    use_hyperfine = shutil.which("hyperfine") is not None and not args.no_hyperfine

    with tempfile.TemporaryDirectory(prefix="sheaf-bench-cli-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHEAF_")}
        env.update(SHEAF_DATA_DIR=data, SHEAF_JOBS__ISOLATION="thread", COLUMNS="120")
        demo = subprocess.run([str(SHEAF), "demo"], env=env, capture_output=True, text=True,
                              check=True)
        job_id = json.loads(demo.stdout.strip().splitlines()[-1])[0]["task_id"]
        rows = []
        for label, argv, held in commands(job_id):
            # (one unmeasured run first: the page cache, not the code, is cold then)
            subprocess.run(argv, env=env, capture_output=True, check=True)
            times = (_hyperfine if use_hyperfine else _loop)(argv, args.runs, env)
            walls = [float(t) for t in times["wall"]]  # type: ignore[union-attr]
            cpus = [float(t) for t in times["cpu"]]  # type: ignore[union-attr]
            rows.append({
                "command": label, "runs": len(walls), "median_wall": statistics.median(walls),
                "min_wall": min(walls), "max_wall": max(walls),
                "median_cpu": statistics.median(cpus), "target": TARGET_SECONDS if held else None,
                "met": statistics.median(walls) < TARGET_SECONDS if held else None,
            })

    print(f"{'command':28} {'runs':>4} {'wall median (range) s':>24} {'cpu s':>7}  target")
    for r in rows:
        verdict = "" if r["target"] is None else (
            f"< {r['target']}: {'met' if r['met'] else 'MISSED'}")
        print(f"{r['command']:28} {r['runs']:>4} {r['median_wall']:>8.3f} "
              f"({r['min_wall']:.3f}-{r['max_wall']:.3f}) {r['median_cpu']:>7.3f}  {verdict}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cli-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"tool": "hyperfine" if use_hyperfine else "loop",
                                "load_average": os.getloadavg(), "results": rows}, indent=2))
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
