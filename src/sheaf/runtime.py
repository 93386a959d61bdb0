"""The long-lived objects a running sheaf shares: settings, database, executor, jobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from sheaf.auth.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from sheaf.auth.signin import SignInGuard
from sheaf.blobs import BlobStore
from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs.executors import Executor, make_executor
from sheaf.jobs.service import JobService
from sheaf.kit.files import private_dir, warn_if_shared


@dataclass
class Runtime:
    settings: Settings
    db: Database
    executor: Executor
    jobs: JobService
    blobs: BlobStore
    limiter: Limiter = field(init=False)
    sign_in_guard: SignInGuard = field(init=False)

    def __post_init__(self) -> None:
        auth = self.settings.auth
        self.limiter = self._limiter(auth.rate_limit_requests, auth.rate_limit_window_seconds,
                                     "ratelimit:")
        window = auth.sign_in_failure_window_seconds
        self.sign_in_guard = SignInGuard(
            by_client=self._limiter(auth.sign_in_failures_per_client, window,
                                    "sign-in:client:"),
            by_address=self._limiter(auth.sign_in_failures_per_address, window,
                                     "sign-in:address:"),
        )

    def _limiter(self, requests: int, window: float, redis_prefix: str) -> Limiter:
        auth = self.settings.auth
        store = auth.rate_limit_store
        if store == "auto":
            store = "redis" if self.settings.jobs.executor == "dramatiq" else "process"
        if store == "redis":
            return RedisRateLimiter(self.settings.jobs.broker_url, requests, window,
                                    prefix=auth.redis_key_prefix + redis_prefix)
        return RateLimiter(requests, window)

    @classmethod
    def build(cls, settings: Settings, executor: Executor | None = None) -> Runtime:
        private_dir(settings.data_dir)
        warn_if_shared(settings.data_dir)
        db = Database(settings.db_url)
        executor = executor or make_executor(db, settings)
        jobs = JobService(db, executor, settings.jobs.max_attempts)
        return cls(settings, db, executor, jobs, BlobStore(settings.blob_dir))

    def close(self) -> None:
        self.executor.shutdown(graceful=True)
        self.db.dispose()


async def get_runtime(request: Request) -> Runtime:
    # (async: a plain attribute read is not worth a thread-pool hop on every request)
    return request.app.state.runtime  # type: ignore[no-any-return]
