"""Deep account pages of one source without OFFSET's walk.

SailPoint pages by offset. ``OFFSET n`` makes the database step through n index entries
for every page: at offset 10^6 of a source's accounts that is most of 0.2 s (SQLite),
for each of ten clients reading random pages. So each API process remembers, per source,
the account id (native identity) at every ``STEP``-th position of the page order; a page
at offset n starts at the key of position ``n // STEP`` and skips fewer than STEP entries.

The positions hold while the source's accounts are the same set: only an aggregation's
commit changes that set (it moves ``Source.snapshot_generation`` in the same transaction),
and deleting the source removes them all. So the keys are kept per generation, read in
the same read transaction as the page. On SQLite the aggregation that made a generation
wrote its keys beside its snapshot (``snapshots.page_keys``), so they are read once from
there. Otherwise (PostgreSQL, whose collation may order the ids differently; a copy not
written yet) they are found lazily: position k costs one query that skips STEP entries
from position k - 1's key, the first time any page needs it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from sheaf.identity import snapshots
from sheaf.identity.models import Account, Source

STEP = snapshots.PAGE_STEP
SOURCES_KEPT = 64  # sources whose keys a process remembers (each: 8 KiB per 10^6 accounts)
# the one filter the keys serve: a single source's accounts (what clients page through)
ONE_SOURCE = re.compile(r'\s*sourceId\s+eq\s+"([^"\\]*)"\s*')


def one_source(filters: str | None) -> str | None:
    """The source id when ``filters`` selects exactly one source's accounts."""
    found = ONE_SOURCE.fullmatch(filters) if filters else None
    return found.group(1) if found else None


class Anchors:
    def __init__(self) -> None:
        # (source id, generation) -> the keys found so far, and whether they reach the end
        self._keys: dict[tuple[str, str | None], tuple[list[str], bool]] = {}
        self._lock = threading.Lock()

    def start(self, session: Session, source_id: str, offset: int,
              data_dir: Path | None = None) -> tuple[str | None, int] | None:
        """Where the page at ``offset`` begins: a key to start from (inclusive; None for
        the first) and the entries to skip from there. None: past the last account.
        ``data_dir``: where the aggregations wrote their keys (SQLite only)."""
        if offset < STEP:
            return None, offset
        generation = session.execute(
            select(Source.snapshot_generation).where(Source.id == source_id)).scalar()
        at = offset // STEP
        keys, complete = self._keys.get((source_id, generation), ([], False))
        if not complete and data_dir is not None and session.get_bind().dialect.name == "sqlite":
            written = snapshots.page_keys(data_dir, source_id, generation, STEP)
            if written is not None:
                keys, complete = written, True
                self._remember(source_id, generation, keys, complete)
        # One thread at a time looks further; it walks about what OFFSET would have. The
        # others do not wait for it: they start from the furthest key known so far.
        if at >= len(keys) and not complete and self._lock.acquire(blocking=False):
            try:
                keys, complete = self._extend(session, source_id, list(keys), at)
                self._remember(source_id, generation, keys, complete)
            finally:
                self._lock.release()
        if at < len(keys):
            return keys[at], offset % STEP
        if complete:
            return None if keys else (None, offset)
        return (keys[-1], offset - (len(keys) - 1) * STEP) if keys else (None, offset)

    def _remember(self, source_id: str, generation: str | None, keys: list[str],
                  complete: bool) -> None:
        self._keys.pop((source_id, generation), None)
        if len(self._keys) >= SOURCES_KEPT:
            self._keys.pop(next(iter(self._keys)))  # the least recently found
        self._keys[(source_id, generation)] = keys, complete

    @staticmethod
    def _extend(session: Session, source_id: str, keys: list[str], at: int
                ) -> tuple[list[str], bool]:
        """``keys`` up to position ``at``, and whether the source ends before it."""
        ordered = (select(Account.native_identity).where(Account.source_id == source_id)
                   .order_by(Account.native_identity).limit(1))
        while len(keys) <= at:
            query = (ordered.where(Account.native_identity >= keys[-1]).offset(STEP) if keys
                     else ordered)
            key = session.execute(query).scalar()
            if key is None:
                return keys, True
            keys.append(key)
        return keys, False
