"""Progress a running job cannot write to its own row, kept beside the database.

On SQLite an aggregation's write is one transaction holding the database's only write
lock for seconds: a progress update in another transaction would wait for it (and a
deadlocked wait is what it would be, since the same job holds the lock). So while it
writes, a job records "rows written of rows to write" in a small file in the data
directory, replaced atomically, and whoever reads a running job's progress (the CLI, the
console, the SSE events) lays that file over the row. PostgreSQL needs none of this: the
job row is not locked by the aggregation's transaction, so progress goes to the row.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from sheaf.jobs.models import Job
from sheaf.jobs.states import JobStatus


def _path(data_dir: Path, job_id: str) -> Path:
    return data_dir / "progress" / f"{job_id}.json"


KEEP_SECONDS = 24 * 3600  # a finished job's file is ignored, then swept after this


def write(data_dir: Path, job_id: str, current: int, total: int | None, message: str) -> None:
    path = _path(data_dir, job_id)
    if not path.exists():  # a job's first write: sweep files of long-finished jobs
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep(path.parent)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"current": current, "total": total, "message": message}))
    os.replace(partial, path)  # (readers see the old numbers or the new, never half)


def _sweep(folder: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for old in folder.iterdir():
        with suppress(OSError):  # (another process may sweep the same file)
            if old.stat().st_mtime < cutoff:
                old.unlink()


def clear(data_dir: Path, job_id: str) -> None:
    _path(data_dir, job_id).unlink(missing_ok=True)


class Latest(NamedTuple):
    current: int
    total: int | None
    message: str


def latest(data_dir: Path, job: Job) -> Latest | None:
    """A running job's latest numbers from its file, if it keeps one (else the row's are
    the truth)."""
    if job.status != JobStatus.RUNNING.value:
        return None
    try:
        found = json.loads(_path(data_dir, job.id).read_text())
        return Latest(int(found["current"]), found["total"], str(found["message"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none (the usual case), or being replaced: the row's is fine


def overlay(job: Job, data_dir: Path) -> Job:
    """``job`` (detached from its session) with a running job's latest progress in it."""
    found = latest(data_dir, job)
    if found is not None:
        # (a detached instance: these values are shown, never flushed)
        job.progress_current, job.progress_total, job.progress_message = found
    return job
