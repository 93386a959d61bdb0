"""The periodic pass every job-running server makes, whatever its executor.

It reaps jobs whose lease expired, re-offers queued jobs whose time has come (retries
after backoff, jobs left queued by a restart): the database, not a process's memory,
decides what is pending. It also checkpoints SQLite's WAL and sweeps orphaned uploads.
Every step is safe to run on several servers at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from sheaf.blobs import BlobStore
from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import repository
from sheaf.jobs.reaper import reap

log = logging.getLogger(__name__)

# Uploads stored but not yet submitted as a job get this long before they count as orphans.
BLOB_GRACE_SECONDS = 3600


class Maintenance:
    """``offer`` gets each queued job that has been ready for ``waited`` seconds or more."""

    def __init__(
        self, db: Database, settings: Settings, offer: Callable[[str], None], waited: float = 0
    ) -> None:
        self.db = db
        self.settings = settings
        self.offer = offer
        self.waited = waited
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        log.info("job maintenance every %gs in process %d",
                 self.settings.jobs.reaper_interval_seconds, os.getpid())
        self._thread = threading.Thread(target=self._loop, name="sheaf-maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def run_once(self) -> None:
        reap(self.db)
        self.db.checkpoint()
        with self.db.read() as session:
            ready = repository.ready_ids(session, waited=self.waited)
            needed = repository.active_payload_values(session, "blob")
        # Files of jobs that ended without cleaning up (crashed, cancelled, set to Error
        # by an operator).
        BlobStore(self.settings.blob_dir).sweep(needed, older_than=BLOB_GRACE_SECONDS)
        for job_id in ready:
            self.offer(job_id)

    def _loop(self) -> None:
        first = True
        while first or not self._stop.wait(self.settings.jobs.reaper_interval_seconds):
            first = False
            try:
                self.run_once()
            except Exception:
                log.exception("job maintenance pass failed")
