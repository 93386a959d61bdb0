"""Progress in real units (read, compare, rows written of rows to write), live while the
write transaction holds SQLite's lock, and the server hand-off the CLI relies on."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from sheaf.config import Settings
from sheaf.identity.aggregation import aggregate
from sheaf.jobs import live
from sheaf.jobs import presence as presence_module
from sheaf.jobs.context import JobContext
from sheaf.jobs.presence import Presence, live_server
from sheaf.jobs.runner import claim
from sheaf.runtime import Runtime

ROWS = 120_001  # more than two of bulk's 50,000-row batches


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None, str, bool]] = []

    def __call__(self, current: int, total: int | None, message: str) -> None:
        self.calls.append((current, total, message, False))

    def writing(self, current: int, total: int | None, message: str) -> None:
        self.calls.append((current, total, message, True))  # (inside the transaction)


def test_a_first_load_reports_rows_written_of_rows_to_write(
    runtime: Runtime, make_source: Any, tmp_path: Path
) -> None:
    source = make_source("Big")
    csv = tmp_path / "big.csv"
    csv.write_text("id,name\n" + "".join(f"u{i},User {i}\n" for i in range(ROWS)))
    progress = Recorder()
    aggregate(runtime.db, runtime.settings, source["id"], csv, optimize=True,
              progress=progress, writing=progress.writing)

    messages = [m for _, _, m, _ in progress.calls]
    assert messages[0] == "Reading file"
    assert f"Comparing {ROWS:,} rows with stored accounts" in messages
    writing = [(c, t) for c, t, _, inside in progress.calls if inside]
    # every batch written is reported, in rows, inside the transaction ...
    assert [c for c, _ in writing] == [50_000, 100_000, ROWS]
    assert {t for _, t in writing} == {ROWS}
    # ... and the write phase starts from nothing: no full bar outside the transaction
    # (the job's end, recorded when it commits, is what says it is done)
    assert progress.calls[-1] == (ROWS, ROWS, f"Applying {ROWS:,} account changes", True)
    applying = [c for c in progress.calls if c[2].startswith("Applying")]
    assert applying[0] == (0, ROWS, f"Applying {ROWS:,} account changes", False)
    assert [c for c in progress.calls if c[0] == c[1] and not c[3]] == []


def _running_context(runtime: Runtime) -> JobContext:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("test.live", {})
    claimed = claim(runtime.db, job.id, "w", runtime.settings)
    assert claimed is not None
    return JobContext(runtime.db, claimed, "w", runtime.settings)


def test_progress_inside_the_write_transaction_does_not_wait_for_it(runtime: Runtime) -> None:
    ctx = _running_context(runtime)
    if not runtime.db.is_sqlite:
        ctx.progress(5, 10, "Applying 10 account changes", in_transaction=True)
        job = runtime.jobs.get(ctx.job_id)
        assert job is not None and job.progress_current == 5  # PostgreSQL: the row itself
        return
    held = threading.Event()
    release = threading.Event()

    def hold_the_write_lock() -> None:  # what an aggregation's write transaction does
        with runtime.db.write() as session:
            session.execute(text("UPDATE job SET updated_at = updated_at"))
            held.set()
            release.wait(30)

    writer = threading.Thread(target=hold_the_write_lock)
    writer.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        ctx.progress(5, 10, "Applying 10 account changes", in_transaction=True)
        assert time.monotonic() - started < 1.0  # (a row update would wait for the lock)
        job = runtime.jobs.get(ctx.job_id)
        assert job is not None
        assert (job.progress_current, job.progress_total) == (5, 10)
    finally:
        release.set()
        writer.join(10)
    # once the transaction is over, progress is the row's again and the file is gone
    ctx.progress(10, 10, "Applied 10 account changes", force=True)
    job = runtime.jobs.get(ctx.job_id)
    assert job is not None and (job.progress_current, job.progress_message) == (
        10, "Applied 10 account changes")
    assert not (runtime.settings.data_dir / "progress" / f"{ctx.job_id}.json").exists()


def test_a_finished_job_ignores_a_leftover_progress_file(runtime: Runtime) -> None:
    runtime.executor.paused = True  # type: ignore[attr-defined]
    job = runtime.jobs.submit("test.live", {})
    live.write(runtime.settings.data_dir, job.id, 3, 9, "stale")
    shown = runtime.jobs.get(job.id)  # queued, not running: the row is the truth
    assert shown is not None and shown.progress_message == "Queued"


def test_presence_offers_queued_jobs_and_is_found_only_while_alive(
    runtime: Runtime, settings: Settings
) -> None:
    assert live_server(settings) is None
    offered: list[str] = []
    presence = Presence(settings, runtime.db, offered.append)
    presence.start()
    try:
        assert live_server(settings) is not None
        other = settings.model_copy(update={"database_url": "sqlite:////elsewhere.db"})
        assert live_server(other) is None  # another database: not this server's jobs
        runtime.executor.paused = True  # type: ignore[attr-defined]
        job = runtime.jobs.submit("test.live", {})
        deadline = time.monotonic() + 5
        while job.id not in offered and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.id in offered  # picked up within a second or so
    finally:
        presence.stop()
    assert live_server(settings) is None
    # a killed server's file (its process gone) is not a live server
    folder = settings.data_dir / "servers"
    folder.mkdir(exist_ok=True)
    alive = {"pid": os.getpid(), "host": socket.gethostname(),
             "database": presence_module._database_digest(settings)}
    (folder / "alive.json").write_text(json.dumps(alive))
    assert live_server(settings) is not None  # (the check below is the pid's, then)
    (folder / "alive.json").unlink()
    (folder / "dead.json").write_text(json.dumps({**alive, "pid": 2**22 + 12345}))
    assert live_server(settings) is None


@pytest.fixture(autouse=True)
def _handler() -> None:
    from sheaf.jobs.registry import JobOutcome, job_handler

    @job_handler("test.live")
    def handler(ctx: JobContext) -> JobOutcome:  # never run: the tests claim by hand
        return JobOutcome()


def test_old_progress_files_are_swept(runtime: Runtime) -> None:
    data_dir = runtime.settings.data_dir
    live.write(data_dir, "a" * 32, 1, 2, "old")
    old = data_dir / "progress" / f"{'a' * 32}.json"
    os.utime(old, (time.time() - live.KEEP_SECONDS - 60,) * 2)
    live.write(data_dir, "b" * 32, 1, 2, "new")
    assert not old.exists() and (data_dir / "progress" / f"{'b' * 32}.json").exists()
