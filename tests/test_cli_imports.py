"""`sheaf --help` and the read-only commands never load the web stack, polars or Alembic
(their import is most of the seconds every command used to take; bench/cli times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sheaf.config import Settings
from sheaf.jobs.states import JobStatus
from sheaf.runtime import Runtime

HEAVY = ("fastapi", "starlette", "uvicorn", "polars", "pyarrow", "alembic", "dramatiq",
         "redis", "sheaf.app", "sheaf.identity.aggregation", "sheaf.runtime")

PROBE = """
import sys
from sheaf.cli import app
sys.argv = ["sheaf", *sys.argv[1:]]
try:
    app()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
heavy = [m for m in {heavy!r} if m in sys.modules]
print("EXIT", code, "HEAVY", ",".join(heavy) or "-", file=sys.stderr)
"""


def _imports(settings: Settings, *argv: str, also: tuple[str, ...] = ()) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEAF_")}
    env["SHEAF_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["SHEAF_DATABASE_URL"] = settings.database_url
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=also or HEAVY), *argv],
                          env=env,
                          capture_output=True, text=True, timeout=120)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("EXIT"), done.stderr
    _, code, _, heavy = last.split()
    return code, heavy


@pytest.mark.parametrize("argv", [["--help"], ["jobs", "--help"], ["jobs", "list"],
                                  ["jobs", "show", "PREFIX"], ["jobs", "watch", "PREFIX"]])
def test_light_commands_do_not_import_the_heavy_stack(
    settings: Settings, runtime: Runtime, argv: list[str]
) -> None:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("identity.load_accounts", {"source_id": "s", "blob": None})
    runtime.jobs.end(job.id, JobStatus.FAILED, "stopped by the test", "test")
    argv = [a.replace("PREFIX", job.id[:7]) for a in argv]
    code, heavy = _imports(settings, *argv)
    assert code in ("0", "1", "None"), code  # (watch of a failed job exits 1)
    assert heavy == "-", f"sheaf {' '.join(argv)} imported {heavy}"
    if argv[:2] == ["jobs", "show"] and settings.database_url is None:
        # the default database: not even SQLAlchemy (its import alone is most of 0.5 s)
        _, orm = _imports(settings, *argv, also=("sqlalchemy", "pydantic_settings"))
        assert orm == "-", orm


def test_jobs_show_says_the_same_either_way(settings: Settings, runtime: Runtime) -> None:
    if settings.database_url is not None:
        pytest.skip("the quick path is the default SQLite database's")
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("identity.load_accounts", {"source_id": "s", "blob": None})
    runtime.jobs.end(job.id, JobStatus.FAILED, "stopped by the test", "test")
    quick = _show(settings, job.id[:6], {})
    ordinary = _show(settings, job.id[:6], {"SHEAF_DATABASE_URL": settings.db_url})
    assert json.loads(quick) == json.loads(ordinary)
    assert json.loads(quick)["messages"][0]["text"] == "stopped by the test"


def _show(settings: Settings, prefix: str, extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHEAF_")}
    env.update(SHEAF_DATA_DIR=str(settings.data_dir), **extra)
    done = subprocess.run([sys.executable, "-m", "sheaf", "jobs", "show", prefix], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_probe_sees_heavy_imports(settings: Settings) -> None:
    # (so the test above cannot pass by looking in the wrong place; a bad port ends the
    # server at once, with a message and no traceback)
    code, heavy = _imports(settings, "serve", "--port", "-1")
    assert code == "1" and "uvicorn" in heavy
