"""Runs each job in the submitting thread: deterministic, for tests and scripts."""

from __future__ import annotations

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs.runner import run_job


class InlineExecutor:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.paused = False
        self.pending: list[str] = []

    def start(self) -> None:
        pass

    def submit(self, job_id: str) -> None:
        # A paused executor lets tests look at a job while it is still queued.
        if self.paused:
            self.pending.append(job_id)
            return
        run_job(self.db, job_id, self.settings)

    def drain(self) -> None:
        self.paused = False
        pending, self.pending = self.pending, []
        for job_id in pending:
            run_job(self.db, job_id, self.settings)

    def shutdown(self, graceful: bool = True) -> None:
        pass
