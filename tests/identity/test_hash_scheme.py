"""A hash mismatch is double-checked against the stored text unless the source's hashes are
known to come from the current hash function."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update

from sheaf.identity import snapshots
from sheaf.identity.engine import HASH_SCHEME
from sheaf.identity.models import Source
from sheaf.runtime import Runtime

BODY = "id,name,email\na,A,a@x.org\nb,B,b@x.org\nc,C,c@x.org\n"


def scheme(runtime: Runtime, source_id: str) -> str | None:
    with runtime.db.read() as session:
        return session.get(Source, source_id).hash_scheme  # type: ignore[union-attr]


def forge_hash(runtime: Runtime, source_id: str, account: str) -> None:
    """Make one stored hash disagree with its (unchanged) text, as a polars upgrade would."""
    with runtime.db.write() as session:
        session.execute(text("UPDATE account SET content_hash = content_hash + 1 "
                             "WHERE source_id = :s AND native_identity = :a"),
                        {"s": source_id, "a": account})
    snapshots.drop(runtime.settings.data_dir, source_id)  # the copy would still agree


def counts(task: dict[str, Any]) -> tuple[int, int]:
    return task["attributes"]["optimized"], task["attributes"]["updated"]


def test_unknown_hashes_are_confirmed_then_trusted(runtime, make_source, load) -> None:
    source = make_source()
    load(source["id"], BODY)
    assert scheme(runtime, source["id"]) == HASH_SCHEME
    # hashes of an unknown function: the mismatch is checked, found identical, rewritten
    with runtime.db.write() as session:
        session.execute(update(Source).where(Source.id == source["id"]).values(hash_scheme=None))
    forge_hash(runtime, source["id"], "b")
    assert counts(load(source["id"], BODY)) == (3, 0)
    assert scheme(runtime, source["id"]) == HASH_SCHEME
    assert counts(load(source["id"], BODY)) == (3, 0)  # the rewritten hash now matches
    # hashes of the current function are taken at their word: no text is read back
    forge_hash(runtime, source["id"], "c")
    assert counts(load(source["id"], BODY)) == (2, 1)


def test_accounts_kept_past_the_threshold_keep_the_scheme_unknown(
    runtime, make_source, load
) -> None:
    source = make_source(deleteThreshold=10)
    rows = [f"u{i},U{i},u{i}@x.org\n" for i in range(20)]
    load(source["id"], "id,name,email\n" + "".join(rows))
    with runtime.db.write() as session:
        session.execute(update(Source).where(Source.id == source["id"]).values(hash_scheme=None))
    task = load(source["id"], "id,name,email\n" + "".join(rows[:10]))  # half missing: kept
    assert task["completionStatus"] == "WARNING"
    assert scheme(runtime, source["id"]) is None
    load(source["id"], "id,name,email\n" + "".join(rows))  # every account seen again
    assert scheme(runtime, source["id"]) == HASH_SCHEME
