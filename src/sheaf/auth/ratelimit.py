"""Per-client request budget per API version, like SailPoint's gateway (in-process)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class RateLimiter:
    def __init__(self, requests: int, window_seconds: float) -> None:
        self.requests = requests
        self.window = window_seconds
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, client_id: str, bucket: str) -> int | None:
        """Record a request; None if allowed, else the seconds to wait."""
        if self.requests <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault((client_id, bucket), deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.requests:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            return None
