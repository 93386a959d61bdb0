"""The inside of a worker process: one database engine, every job handler registered."""

from __future__ import annotations

import importlib
import logging

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs.runner import run_job

# Modules whose import registers job handlers. The job core imports no domain by name
# elsewhere; this list is where the process learns what it may be asked to run.
HANDLER_MODULES = ["sheaf.identity.jobs", "sheaf.utility.jobs"]

_db: Database | None = None
_settings: Settings | None = None


def start(settings_json: str) -> None:
    global _db, _settings
    logging.basicConfig(level=logging.INFO)
    _settings = Settings.model_validate_json(settings_json)
    _db = Database(_settings.db_url)
    for module in HANDLER_MODULES:
        importlib.import_module(module)


def ready() -> bool:
    return _db is not None


def run(job_id: str) -> str | None:
    assert _db is not None and _settings is not None, "worker.start was not called"
    status = run_job(_db, job_id, _settings)
    return status.value if status else None
