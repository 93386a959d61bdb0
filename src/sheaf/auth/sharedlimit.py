"""The rate-limit budget shared by the API processes of one ``sheaf serve --workers N``.

Each client's sliding window is a ring of request times in a memory-mapped file (on
tmpfs where there is one) that every API process of the server maps, guarded by an
``flock`` (between processes) and a mutex (between threads: a lock on a file belongs to
its open file, not to a thread). The same rule as ``RateLimiter``: a request is refused
while ``requests`` others from the same client and API version fell within the last
``window_seconds``. Times come from CLOCK_MONOTONIC, one clock for every process.

A fixed number of slots, each reused once its client has been quiet for a whole window.
If every slot is busy (more distinct clients inside one window than slots), requests
are let through and a warning is logged: the limit protects the service, it must not
take it down (``RedisRateLimiter`` does the same when Redis is away).

No library offers a cross-process in-memory store for this (``limits`` keeps memory
per process, or goes to Redis / Memcached / MongoDB).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"sheafrl1"
_HEADER = struct.Struct("<8sII")  # magic, slots, depth (ring length)
HEADER_BYTES = 64
_SLOT_HEAD = struct.Struct("<16sII")  # key digest, ring start, hits in the ring
MAX_BYTES = 64 << 20
MAX_SLOTS = 65536  # (callers choose keys: failed sign-ins name any client id)
_UNUSED = bytes(16)


def _slot_bytes(depth: int) -> int:
    return _SLOT_HEAD.size + 8 * depth


def create(path: Path, largest_budget: int) -> None:
    """Make an empty store at ``path`` for limiters of up to ``largest_budget`` requests
    a window (each slot keeps that many request times)."""
    depth = max(1, largest_budget)
    slots = max(16, min(MAX_SLOTS, MAX_BYTES // _slot_bytes(depth)))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # (sparse: pages appear as slots are first used)
        os.ftruncate(fd, HEADER_BYTES + slots * _slot_bytes(depth))
        os.pwrite(fd, _HEADER.pack(MAGIC, slots, depth), 0)
    finally:
        os.close(fd)


class SharedRateLimiter:
    """One process's view of the store ``create`` made, for one limiter: ``prefix``
    keeps its clients apart from another limiter's in the same store."""

    blocking = False

    def __init__(self, path: Path, requests: int, window_seconds: float,
                 prefix: str = "") -> None:
        self.requests = requests
        self.window = window_seconds
        self.prefix = prefix
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, 0)
        magic, self._slots, self._depth = _HEADER.unpack_from(self._map, 0)
        if magic != MAGIC or self._depth < max(1, requests):
            raise ValueError(f"{path} is not a rate-limit store for {requests} requests")
        self._stride = _slot_bytes(self._depth)
        self._times = memoryview(self._map).cast("d")  # (slots are 8-byte aligned)
        self._lock = threading.Lock()
        self._full_warned = 0.0

    def hit(self, client_id: str, bucket: str) -> int | None:
        return self._take(client_id, bucket, record=True)

    def check(self, client_id: str, bucket: str) -> int | None:
        """What ``hit`` would answer, without recording anything."""
        return self._take(client_id, bucket, record=False)

    def reserve(self, client_id: str, bucket: str) -> tuple[int | None, str]:
        """``hit``, and the time it recorded, for ``give_back``."""
        now = time.monotonic()
        return self._take(client_id, bucket, record=True, now=now), repr(now)

    def give_back(self, client_id: str, bucket: str, handle: str) -> None:
        """Take out the hit ``reserve`` recorded at ``handle`` (if still in the ring)."""
        if self.requests <= 0:
            return
        key, then = self._key(client_id, bucket), float(handle)
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self._remove(key, then)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _key(self, client_id: str, bucket: str) -> bytes:
        return hashlib.blake2b(f"{self.prefix}{client_id}\0{bucket}".encode(),
                               digest_size=16).digest()

    def _take(self, client_id: str, bucket: str, record: bool,
              now: float | None = None) -> int | None:
        if self.requests <= 0:
            return None
        key = self._key(client_id, bucket)
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                return self._hit(key, time.monotonic() if now is None else now, record)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _remove(self, key: bytes, then: float) -> None:
        start = int.from_bytes(key[:8], "little") % self._slots
        for probe in range(self._slots):
            offset = HEADER_BYTES + ((start + probe) % self._slots) * self._stride
            owner, head, count = _SLOT_HEAD.unpack_from(self._map, offset)
            if owner == _UNUSED:
                return
            if owner != key:
                continue
            times, depth = self._times, self._depth
            ring = [self._at(offset, (head + i) % depth) for i in range(count)]
            for i, at in enumerate(ring):
                if times[at] == then:  # close the gap: the ring stays in time order
                    for j in range(i, count - 1):
                        times[ring[j]] = times[ring[j + 1]]
                    _SLOT_HEAD.pack_into(self._map, offset, key, head, count - 1)
                    return
            return

    def _hit(self, key: bytes, now: float, record: bool) -> int | None:
        start = int.from_bytes(key[:8], "little") % self._slots
        stale = now - self.window
        free = None
        for probe in range(self._slots):
            slot = (start + probe) % self._slots
            offset = HEADER_BYTES + slot * self._stride
            owner, head, count = _SLOT_HEAD.unpack_from(self._map, offset)
            if owner == key:
                return self._record(offset, key, head, count, now, record)
            if owner == _UNUSED:  # slots are never emptied: the key is not further along
                free = offset if free is None else free
                break
            if free is None and (count == 0 or self._newest(offset, head, count) <= stale):
                free = offset  # quiet for a whole window: reusable
        if not record:  # (no slot: nothing recorded, nothing to refuse)
            return None
        if free is None:
            if now - self._full_warned > 60:
                self._full_warned = now
                log.warning("rate limit not checked: more than %d clients within one window",
                            self._slots)
            return None
        return self._record(free, key, 0, 0, now, record)

    def _newest(self, offset: int, head: int, count: int) -> float:
        return float(self._times[self._at(offset, (head + count - 1) % self._depth)])

    def _at(self, offset: int, index: int) -> int:
        return (offset + _SLOT_HEAD.size) // 8 + index

    def _record(self, offset: int, key: bytes, head: int, count: int, now: float,
                record: bool = True) -> int | None:
        times, depth = self._times, self._depth
        while count and times[self._at(offset, head)] <= now - self.window:
            head, count = (head + 1) % depth, count - 1
        if count >= self.requests:
            oldest = times[self._at(offset, head)]
            _SLOT_HEAD.pack_into(self._map, offset, key, head, count)
            return max(1, math.ceil(oldest + self.window - now))
        if not record:
            return None
        times[self._at(offset, (head + count) % depth)] = now
        _SLOT_HEAD.pack_into(self._map, offset, key, head, count + 1)
        return None

    def close(self) -> None:
        self._times.release()
        self._map.close()
        os.close(self._fd)
