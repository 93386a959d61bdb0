"""Reconciling what an institution sent with what is stored, by the institution's ids.

Columnar: a kind's records become one frame (institution id, account id, date, the
record as JSON text, and a content hash of that text), diffed against the stored
(id, guid, hash) frame with joins; a stored record whose hash matches costs no write.
Records missing from the snapshot are deleted (the snapshot is the institution's whole
current view for that kind).

Pending to posted: an institution usually deletes a pending transaction and sends its
posted twin under a new id (the snapshot simply lacks the pending one). Some keep both for
a while; then the pending one is dropped when a posted twin is in the same snapshot. The
match rule: same account, same amount, posted dated 0 to ``TWIN_DAYS`` days after the
pending one, and descriptions at least ``TWIN_SIMILARITY`` alike (difflib's ratio,
case-insensitive). Each posted transaction stands for at most one pending one.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from difflib import SequenceMatcher
from typing import Any

import polars as pl

TWIN_DAYS = 5
TWIN_SIMILARITY = 0.8

Records = list[dict[str, Any]] | pl.DataFrame
# what every kind's records become before diffing (account_id and date may be null)
ENCODED = {"id": pl.String, "account_id": pl.String, "date": pl.String, "data": pl.String,
           "content_hash": pl.String}
STORED = {"id": pl.String, "guid": pl.String, "content_hash": pl.String}


def _hashes(texts: list[str]) -> pl.Series:
    """The content hash of each record's JSON text (which holds every field it sent)."""
    return pl.Series("content_hash", [hashlib.blake2b(t.encode(), digest_size=16).hexdigest()
                                      for t in texts], dtype=pl.String)


def encode(records: Records) -> pl.DataFrame:
    """Records as the ENCODED frame. A frame (a big snapshot) is encoded by polars; a list
    of dicts (small, possibly of differing keys) keeps each record's own keys."""
    if isinstance(records, pl.DataFrame):
        optional = [pl.col(c).cast(pl.String) if c in records.columns
                    else pl.lit(None, dtype=pl.String).alias(c) for c in ("account_id", "date")]
        frame = records.select(pl.col("id").cast(pl.String), *optional,
                               pl.struct(pl.all()).struct.json_encode().alias("data"))
        return frame.with_columns(_hashes(frame["data"].to_list()))
    texts = [json.dumps(r) for r in records]

    def text(key: str) -> list[str | None]:
        return [None if r.get(key) is None else str(r[key]) for r in records]

    return pl.DataFrame({"id": [str(r["id"]) for r in records], "account_id": text("account_id"),
                         "date": text("date"), "data": texts,
                         "content_hash": _hashes(texts)}, schema=ENCODED)


@dataclass
class KindDiff:
    """One kind's changes: ENCODED frames to create, and to update (with the stored
    ``guid``), the guids to delete."""

    created: pl.DataFrame
    updated: pl.DataFrame
    deleted: list[str]
    unchanged: int
    duplicates: int  # records repeating an id already in the snapshot (first kept)

    @property
    def writes(self) -> int:
        return self.created.height + self.updated.height + len(self.deleted)


def diff(incoming: pl.DataFrame, stored: pl.DataFrame) -> KindDiff:
    """``incoming``: ENCODED; ``stored``: STORED (institution id, guid, content hash)."""
    unique = incoming.unique(subset="id", keep="first", maintain_order=True)
    joined = unique.join(stored.rename({"content_hash": "stored_hash"}), on="id", how="left",
                         maintain_order="left")
    created = joined.filter(pl.col("guid").is_null()).drop("guid", "stored_hash")
    updated = joined.filter(pl.col("guid").is_not_null()
                            & (pl.col("content_hash") != pl.col("stored_hash"))
                            ).drop("stored_hash")
    deleted = stored.join(unique.select("id"), on="id", how="anti")["guid"].to_list()
    return KindDiff(created, updated, deleted,
                    unchanged=joined.height - created.height - updated.height,
                    duplicates=incoming.height - unique.height)


def _similar(a: str, b: str) -> bool:
    return SequenceMatcher(None, a.lower(), b.lower()).ratio() >= TWIN_SIMILARITY


def drop_posted_twins_frame(transactions: Records) -> tuple[Records, list[str]]:
    """``drop_posted_twins`` for a frame: only the pending transactions and the posted
    ones sharing an account and amount with one of them go through the rule."""
    if not isinstance(transactions, pl.DataFrame):
        return drop_posted_twins(transactions)
    if "status" not in transactions.columns:
        return transactions, []
    key = [pl.col("account_id").cast(pl.String), pl.col("amount").cast(pl.String)]
    pending = transactions.filter(pl.col("status") == "PENDING")
    if pending.height == 0:
        return transactions, []
    keys = pending.select(key)
    candidates = transactions.with_columns(*key).join(keys.unique(), on=["account_id", "amount"],
                                                      how="semi", maintain_order="left")
    _, dropped = drop_posted_twins(candidates.to_dicts())
    if not dropped:
        return transactions, []
    return transactions.filter(~pl.col("id").cast(pl.String).is_in(dropped)), dropped


def drop_posted_twins(transactions: list[dict[str, Any]]
                      ) -> tuple[list[dict[str, Any]], list[str]]:
    """The transactions without pending ones whose posted twin is among them, and the
    dropped pending ids."""
    if not any(t.get("status") == "PENDING" for t in transactions):
        return transactions, []
    posted: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in transactions:
        if t.get("status") != "PENDING":
            posted[(str(t["account_id"]), str(t["amount"]))].append(t)
    if not posted:
        return transactions, []
    used: set[int] = set()
    dropped: set[str] = set()
    for t in transactions:
        if t.get("status") != "PENDING":
            continue
        day = date.fromisoformat(str(t["date"]))
        for candidate in posted.get((str(t["account_id"]), str(t["amount"])), ()):
            if id(candidate) in used:
                continue
            gap = (date.fromisoformat(str(candidate["date"])) - day).days
            if 0 <= gap <= TWIN_DAYS and _similar(str(t.get("description") or ""),
                                                   str(candidate.get("description") or "")):
                used.add(id(candidate))
                dropped.add(str(t["id"]))
                break
    if not dropped:
        return transactions, []
    kept = [t for t in transactions if str(t["id"]) not in dropped]
    return kept, sorted(dropped)
