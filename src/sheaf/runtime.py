"""The long-lived objects a running sheaf shares: settings, database, executor, jobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from sheaf.auth.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from sheaf.blobs import BlobStore
from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs.executors import Executor, make_executor
from sheaf.jobs.service import JobService


@dataclass
class Runtime:
    settings: Settings
    db: Database
    executor: Executor
    jobs: JobService
    blobs: BlobStore
    limiter: Limiter = field(init=False)

    def __post_init__(self) -> None:
        auth = self.settings.auth
        store = auth.rate_limit_store
        if store == "auto":
            store = "redis" if self.settings.jobs.executor == "dramatiq" else "process"
        if store == "redis":
            self.limiter = RedisRateLimiter(self.settings.jobs.broker_url,
                                            auth.rate_limit_requests,
                                            auth.rate_limit_window_seconds)
        else:
            self.limiter = RateLimiter(auth.rate_limit_requests,
                                       auth.rate_limit_window_seconds)

    @classmethod
    def build(cls, settings: Settings, executor: Executor | None = None) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.db_url)
        executor = executor or make_executor(db, settings)
        jobs = JobService(db, executor, settings.jobs.max_attempts, settings.data_dir)
        return cls(settings, db, executor, jobs, BlobStore(settings.blob_dir))

    def close(self) -> None:
        self.executor.shutdown(graceful=True)
        self.db.dispose()


async def get_runtime(request: Request) -> Runtime:
    # (async: a plain attribute read is not worth a thread-pool hop on every request)
    return request.app.state.runtime  # type: ignore[no-any-return]
