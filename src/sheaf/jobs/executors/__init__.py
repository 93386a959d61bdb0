"""Executors move job ids to workers; the job row stays the truth."""

from __future__ import annotations

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs.executors.base import Executor
from sheaf.jobs.executors.inline import InlineExecutor
from sheaf.jobs.executors.local import LocalExecutor


def make_executor(db: Database, settings: Settings) -> Executor:
    if settings.jobs.executor == "inline":
        return InlineExecutor(db, settings)
    if settings.jobs.executor == "dramatiq":
        from sheaf.jobs.executors.distributed import DramatiqExecutor

        return DramatiqExecutor(db, settings)
    return LocalExecutor(db, settings)


__all__ = ["Executor", "InlineExecutor", "LocalExecutor", "make_executor"]
