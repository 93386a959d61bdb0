"""The inside of a worker process: one database engine, every job handler registered.

A worker process lives only as long as the server that started it: it asks Linux to kill
it when the server thread that owns it ends (PR_SET_PDEATHSIG), and a watchdog thread
checks that its parent is still there (other systems, and the window before prctl).
A worker killed mid-job has committed nothing of that job (see JobContext.finish).
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs.runner import run_job

# Modules whose import registers job handlers. The job core imports no domain by name
# elsewhere; this list is where the process learns what it may be asked to run.
HANDLER_MODULES = ["sheaf.identity.jobs", "sheaf.finance.jobs", "sheaf.utility.jobs"]
# What the handlers import when they run (polars, pyarrow, ofxtools: seconds on a busy
# machine). The handler modules import them lazily, since API processes import those
# modules too; a worker imports them as it starts, so the first job does not wait for them.
WARM_MODULES = ["sheaf.identity.aggregation", "sheaf.finance.aggregation",
                "sheaf.finance.connectors.ofx", "sheaf.finance.connectors.sandbox",
                "sheaf.utility.aggregation", "pyarrow.compute"]

PR_SET_PDEATHSIG = 1
WATCHDOG_SECONDS = 1.0

_db: Database | None = None
_settings: Settings | None = None


def start(settings_json: str) -> None:
    global _db, _settings
    logging.basicConfig(level=logging.INFO)
    _settings = Settings.model_validate_json(settings_json)
    _db = Database(_settings.db_url)
    import_handlers()


def import_handlers() -> None:
    """Register every job handler, and import what the handlers use (a process that runs
    jobs calls this as it starts)."""
    for module in HANDLER_MODULES + WARM_MODULES:
        importlib.import_module(module)


def run(job_id: str) -> str | None:
    assert _db is not None and _settings is not None, "worker.start was not called"
    status = run_job(_db, job_id, _settings)
    return status.value if status else None


def die_with_parent(parent_pid: int) -> None:
    """Exit as soon as the process that started this one is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still applies
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            threading.Event().wait(WATCHDOG_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="sheaf-parent-watchdog", daemon=True).start()


def main(conn: Connection, settings_json: str, parent_pid: int) -> None:
    """A worker process's life: run the job ids its executor thread sends, one at a time,
    answering each with the job's new status; stop at None or when the pipe closes."""
    die_with_parent(parent_pid)
    # Ctrl-C in a terminal reaches the whole process group: the server decides what
    # happens to running jobs, not a KeyboardInterrupt in the middle of one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    start(settings_json)
    assert _settings is not None
    os.nice(_settings.jobs.worker_nice)
    conn.send("ready")
    while True:
        try:
            job_id = conn.recv()
        except (EOFError, OSError):
            return
        if job_id is None:
            return
        try:
            status = run(job_id)
        except Exception:  # the job core records outcomes; this is its own failure
            logging.getLogger(__name__).exception("could not run job %s", job_id)
            status = None
        conn.send(status)
