"""A columnar copy of each source's stored accounts, so the next aggregation can diff
without reading 10^6 rows back out of the database.

The database stays the truth. The copy is (id, native_identity, content_hash,
identity_id) as Parquet, named by a generation token that the aggregation writes to the
source row in the same transaction as the accounts. It is used only while its
generation matches the source's; anything else (a crash between commit and write, a
deleted file, an older copy) falls back to reading the database.

A worker also keeps the copies it last wrote or read, a few million rows at most: the next
run of the same source then need not read the file again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from sheaf.kit.files import private_dir, private_file

if TYPE_CHECKING:  # (polars is imported where a copy is read: the API only drops copies)
    import polars as pl

log = logging.getLogger(__name__)

REMEMBERED_ROWS = 2_000_000  # about 150 MB of keys
# Beside each copy, the account id at every PAGE_STEP-th position of the source's accounts
# in id order: where deep account pages start (identity.api.anchors). Sorted here by
# bytes, which is SQLite's order for the column (BINARY); a PostgreSQL collation may
# order otherwise, so only SQLite servers read them.
PAGE_STEP = 1000
_recent: OrderedDict[tuple[Path, str], tuple[str, pl.DataFrame]] = OrderedDict()
_recent_lock = threading.Lock()


def _remember(root: Path, source_id: str, generation: str, frame: pl.DataFrame) -> None:
    with _recent_lock:
        _recent.pop((root, source_id), None)
        if frame.height > REMEMBERED_ROWS:
            return
        _recent[(root, source_id)] = (generation, frame)
        while sum(f.height for _, f in _recent.values()) > REMEMBERED_ROWS:
            _recent.popitem(last=False)


def _recall(root: Path, source_id: str, generation: str) -> pl.DataFrame | None:
    with _recent_lock:
        generation_and_frame = _recent.get((root, source_id))
        if generation_and_frame is None or generation_and_frame[0] != generation:
            return None
        _recent.move_to_end((root, source_id))
        return generation_and_frame[1]


def _forget(root: Path, source_id: str) -> None:
    with _recent_lock:
        _recent.pop((root, source_id), None)


def _path(root: Path, source_id: str, generation: str) -> Path:
    return root / "snapshots" / source_id / f"{generation}.parquet"


def load(root: Path, source_id: str, generation: str | None) -> pl.DataFrame | None:
    if generation is None:
        return None
    remembered = _recall(root, source_id, generation)
    if remembered is not None:
        return remembered
    import polars as pl

    from sheaf.identity.engine import STORED_SCHEMA

    path = _path(root, source_id, generation)
    try:
        frame = pl.read_parquet(path)
    except (FileNotFoundError, OSError, pl.exceptions.PolarsError):
        return None
    if dict(frame.schema) != STORED_SCHEMA:
        return None
    _remember(root, source_id, generation, frame)
    return frame


def save(root: Path, source_id: str, generation: str, state: pl.DataFrame) -> None:
    """Write the copy for ``generation``; ``prune`` drops the others once it is current.
    Failure only costs speed."""
    from sheaf.identity.engine import STORED_SCHEMA

    path = _path(root, source_id, generation)
    try:
        private_dir(path.parent)
        tmp = path.with_suffix(".part")
        private_file(tmp, truncate=True)  # created 0600: polars keeps the mode it finds
        copy = state.select(list(STORED_SCHEMA))
        copy.write_parquet(tmp, compression="lz4")
        os.replace(tmp, path)
        _remember(root, source_id, generation, copy)
        keys = copy["native_identity"].sort().gather_every(PAGE_STEP).to_list()
        tmp = _keys_path(root, source_id, generation).with_suffix(".part")
        private_file(tmp, truncate=True)
        tmp.write_text(json.dumps({"step": PAGE_STEP, "keys": keys}))
        os.replace(tmp, _keys_path(root, source_id, generation))
    except OSError:
        log.warning("could not write the account snapshot of source %s", source_id,
                    exc_info=True)


def _keys_path(root: Path, source_id: str, generation: str) -> Path:
    return root / "snapshots" / source_id / f"{generation}.keys.json"


def page_keys(root: Path, source_id: str, generation: str | None, step: int
              ) -> list[str] | None:
    """The page keys the aggregation of ``generation`` wrote (every ``step``-th account id
    in byte order), or None when there are none for it."""
    if generation is None:
        return None
    try:
        found = json.loads(_keys_path(root, source_id, generation).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("step") != step:
        return None
    keys = found.get("keys")
    return keys if isinstance(keys, list) and all(isinstance(k, str) for k in keys) else None


def prune(root: Path, source_id: str, keep: str | None) -> None:
    """Drop every copy of the source's accounts but generation ``keep`` (all, and the
    folder, for None)."""
    folder = root / "snapshots" / source_id
    if not folder.is_dir():
        return
    for old in folder.iterdir():
        if keep is None or old.name not in (f"{keep}.parquet", f"{keep}.keys.json"):
            old.unlink(missing_ok=True)
    if keep is None:
        with contextlib.suppress(OSError):  # (a copy being written meanwhile keeps it)
            folder.rmdir()


def drop(root: Path, source_id: str) -> None:
    _forget(root, source_id)
    prune(root, source_id, keep=None)
