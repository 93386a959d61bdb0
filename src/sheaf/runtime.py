"""The long-lived objects a running sheaf shares: settings, database, executor, jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from sheaf.auth.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from sheaf.auth.sharedlimit import SharedRateLimiter
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
    # the budget store this server's API processes share (sheaf.serving), if several
    shared_limits: Path | None = None
    # whether closing empties SQLite's WAL: the process that runs the jobs does; an API
    # process beside it must not wait on a running job for that (sheaf.serving)
    checkpoint_on_close: bool = True
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

    def _limiter(self, requests: int, window: float, prefix: str) -> Limiter:
        """A sliding-window limiter kept where the settings say; ``prefix`` tells its
        keys from another limiter's in a shared store (Redis, or the memory a server's
        API processes share)."""
        if rate_limit_store(self.settings) == "redis":
            return RedisRateLimiter(self.settings.jobs.broker_url, requests, window,
                                    prefix=self.settings.auth.redis_key_prefix + prefix)
        if self.shared_limits is not None:
            return SharedRateLimiter(self.shared_limits, requests, window, prefix=prefix)
        return RateLimiter(requests, window)

    @classmethod
    def build(cls, settings: Settings, executor: Executor | None = None,
              shared_limits: Path | None = None) -> Runtime:
        private_dir(settings.data_dir)
        warn_if_shared(settings.data_dir)
        db = Database(settings.db_url)
        executor = executor or make_executor(db, settings)
        jobs = JobService(db, executor, settings.jobs.max_attempts, settings.data_dir)
        return cls(settings, db, executor, jobs, BlobStore(settings.blob_dir), shared_limits)

    def close(self) -> None:
        self.executor.shutdown(graceful=True)
        self.db.dispose(checkpoint=self.checkpoint_on_close)


def rate_limit_store(settings: Settings) -> str:
    """Where the budget is kept: "redis" or "process" (this server's memory)."""
    store = settings.auth.rate_limit_store
    if store == "auto":
        return "redis" if settings.jobs.executor == "dramatiq" else "process"
    return store


def largest_budget(settings: Settings) -> int:
    """The most requests any limiter of a Runtime counts in one window."""
    auth = settings.auth
    return max(auth.rate_limit_requests, auth.sign_in_failures_per_client,
               auth.sign_in_failures_per_address)


async def get_runtime(request: Request) -> Runtime:
    # (async: a plain attribute read is not worth a thread-pool hop on every request)
    return request.app.state.runtime  # type: ignore[no-any-return]
