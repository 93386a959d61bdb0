"""MX-shaped guids (``USR-``, ``MBR-``, ``ACT-``, ...) that grow in time order.

The hex after the prefix is a UUID-shaped 128-bit value whose first 48 bits are the
milliseconds since the epoch (as in UUIDv7), so rows created later sort later and bulk
inserts append to their indexes.
"""

from __future__ import annotations

import os
import time


def new_guid(prefix: str) -> str:
    return f"{prefix}-{_ordered_hex()}"


def new_guids(prefix: str, count: int) -> list[str]:
    """``count`` guids in increasing order (one clock read, a counter below it)."""
    ms = time.time_ns() // 1_000_000
    seed = int.from_bytes(os.urandom(8), "big") & ((1 << 40) - 1)
    out = []
    for i in range(count):
        value = (ms << 80) | ((seed + i) << 40) | int.from_bytes(os.urandom(5), "big")
        out.append(f"{prefix}-{_format(value)}")
    return out


def _ordered_hex() -> str:
    ms = time.time_ns() // 1_000_000
    return _format((ms << 80) | int.from_bytes(os.urandom(10), "big"))


def _format(value: int) -> str:
    h = f"{value & ((1 << 128) - 1):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
