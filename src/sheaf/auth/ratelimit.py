"""Per-client request budget per API version, like SailPoint's gateway; also the budget
of failed sign-ins (see auth/signin.py).

One API process keeps the budget in memory. Several API servers (scaled-out mode) share
it in Redis, or each would grant the full budget. Both are sliding windows: a request is
refused while ``requests`` others from the same client and API version fell within the
last ``window_seconds``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections import deque
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class Limiter(Protocol):
    blocking: bool  # whether hit() waits on the network (then it runs off the event loop)

    def hit(self, client_id: str, bucket: str) -> int | None:
        """Record a request; None if allowed, else the seconds to wait."""
        ...

    def check(self, client_id: str, bucket: str) -> int | None:
        """What ``hit`` would answer, without recording anything."""
        ...

    def reserve(self, client_id: str, bucket: str) -> tuple[int | None, str]:
        """``hit``, and a handle to take the recorded hit back with ``give_back``."""
        ...

    def give_back(self, client_id: str, bucket: str, handle: str) -> None:
        """Forget a hit recorded by ``reserve`` (no-op if it has left the window)."""
        ...


class RateLimiter:
    """The budget of one process."""

    blocking = False

    def __init__(self, requests: int, window_seconds: float) -> None:
        self.requests = requests
        self.window = window_seconds
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self.clock = time.monotonic  # (tests move time forward by replacing it)

    # Keys can be chosen by callers (a client id that failed to sign in): past this many,
    # the ones with nothing left in their window are dropped.
    SWEEP_ABOVE = 10_000

    def hit(self, client_id: str, bucket: str) -> int | None:
        return self._take(client_id, bucket, record=True)

    def check(self, client_id: str, bucket: str) -> int | None:
        return self._take(client_id, bucket, record=False)

    def reserve(self, client_id: str, bucket: str) -> tuple[int | None, str]:
        now = self.clock()
        return self._take(client_id, bucket, record=True, now=now), repr(now)

    def give_back(self, client_id: str, bucket: str, handle: str) -> None:
        with self._lock:
            hits = self._hits.get((client_id, bucket))
            with contextlib.suppress(ValueError):
                if hits is not None:
                    hits.remove(float(handle))

    def _take(self, client_id: str, bucket: str, record: bool,
              now: float | None = None) -> int | None:
        if self.requests <= 0:
            return None
        now = self.clock() if now is None else now
        with self._lock:
            hits = self._hits.get((client_id, bucket)) or deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.requests:
                return max(1, math.ceil(hits[0] + self.window - now))
            if record:
                if len(self._hits) >= self.SWEEP_ABOVE:
                    self._sweep(now)
                hits.append(now)
                self._hits[(client_id, bucket)] = hits
            return None

    def _sweep(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]


# One sorted set of request times per client and bucket, trimmed to the window and
# checked and added to atomically; Redis's own clock, so servers' clocks need not agree.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
if ARGV[4] == 'check' then
  return false
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return false
"""


class RedisRateLimiter:
    """The budget shared by every server using the same Redis. If Redis cannot be
    reached, requests are let through (and logged): the limit protects the service, it
    must not take it down."""

    blocking = True

    def __init__(self, url: str, requests: int, window_seconds: float,
                 prefix: str = "sheaf:ratelimit:") -> None:
        self.requests = requests
        self.window = window_seconds
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self._redis.register_script(_HIT)

    def hit(self, client_id: str, bucket: str) -> int | None:
        return self._take(client_id, bucket, "hit")

    def check(self, client_id: str, bucket: str) -> int | None:
        return self._take(client_id, bucket, "check")

    def reserve(self, client_id: str, bucket: str) -> tuple[int | None, str]:
        handle = uuid.uuid4().hex
        return self._take(client_id, bucket, "hit", handle), handle

    def give_back(self, client_id: str, bucket: str, handle: str) -> None:
        if self.requests <= 0:
            return
        try:
            self._redis.zrem(f"{self.prefix}{client_id}:{bucket}", handle)
        except redis.RedisError as exc:
            log.warning("rate limit hit not given back, Redis unavailable: %s", exc)

    def _take(self, client_id: str, bucket: str, mode: str,
              handle: str | None = None) -> int | None:
        if self.requests <= 0:
            return None
        try:
            wait = self._script(keys=[f"{self.prefix}{client_id}:{bucket}"],
                                args=[self.window, self.requests,
                                      handle or uuid.uuid4().hex, mode])
        except redis.RedisError as exc:
            log.warning("rate limit not checked, Redis unavailable: %s", exc)
            return None
        return None if wait is None else max(1, math.ceil(float(wait)))
