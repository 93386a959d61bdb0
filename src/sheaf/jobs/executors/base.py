"""The executor contract (after Airflow's): carry job ids, never decide state."""

from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    def start(self) -> None:
        """Begin taking work (and recover queued jobs left by a previous run)."""

    def submit(self, job_id: str) -> None:
        """Arrange for ``run_job(job_id)`` to be called soon, at least once."""

    def shutdown(self, graceful: bool = True) -> None:
        """Stop taking work; with ``graceful``, wait for running jobs."""
