"""The columnar copy of stored accounts must always equal the table it stands for."""

from __future__ import annotations

import polars as pl
import pytest

from sheaf.identity import frames, snapshots
from sheaf.identity.models import Source
from sheaf.runtime import Runtime

HEADER = "id,name,email\n"


def copy_and_table(runtime: Runtime, source_id: str) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    with runtime.db.read() as session:
        generation = session.get(Source, source_id).snapshot_generation  # type: ignore[union-attr]
        table = frames.stored_accounts(session.connection(), source_id)
    copy = snapshots.load(runtime.settings.data_dir, source_id, generation)
    return copy, table


def same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.sort("native_identity").equals(b.sort("native_identity"))


def test_copy_tracks_every_kind_of_change(runtime, make_source, load) -> None:
    pairs = [{"accountAttribute": "email", "identityAttribute": "email"}]
    hr = make_source("HR", authoritative=True, connectorAttributes={"correlation": pairs})
    src = make_source("Apps", deleteThreshold=10, connectorAttributes={"correlation": pairs})
    rows = [f"u{i},User {i},u{i}@x.org\n" for i in range(20)]
    load(src["id"], HEADER + "".join(rows))
    copy, table = copy_and_table(runtime, src["id"])
    assert copy is not None and same(copy, table) and table.height == 20
    # updates, a creation, and a removal blocked by the delete threshold
    changed = [r.replace("x.org", "y.org") for r in rows[:3]] + ["n1,New,n1@x.org\n"]
    task = load(src["id"], HEADER + "".join(changed))
    assert task["completionStatus"] == "WARNING"
    copy, table = copy_and_table(runtime, src["id"])
    assert copy is not None and same(copy, table) and table.height == 21
    # identities appear; re-examining correlation relinks unchanged accounts
    load(hr["id"], HEADER + "".join(rows[5:10]))
    task = load(src["id"], HEADER + "".join(rows[5:10]), disable=True)
    assert task["attributes"]["identitiesCorrelated"] == 5
    copy, table = copy_and_table(runtime, src["id"])
    assert copy is not None and same(copy, table)
    assert table["identity_id"].null_count() < table.height


def test_missing_copy_falls_back_to_the_table(runtime, make_source, load) -> None:
    source = make_source()
    load(source["id"], HEADER + "a,A,a@x.org\nb,B,b@x.org\n")
    snapshots.drop(runtime.settings.data_dir, source["id"])
    task = load(source["id"], HEADER + "a,A,a@x.org\nc,C,c@x.org\n")
    attrs = task["attributes"]
    assert (attrs["optimized"], attrs["created"], attrs["deleted"]) == (1, 1, 1)
    copy, table = copy_and_table(runtime, source["id"])
    assert copy is not None and same(copy, table)


def test_stale_generation_is_ignored(runtime, make_source, load) -> None:
    source = make_source()
    load(source["id"], HEADER + "a,A,a@x.org\n")
    assert snapshots.load(runtime.settings.data_dir, source["id"], "0" * 32) is None


def test_a_run_that_writes_nothing_keeps_the_copy(runtime, make_source, load) -> None:
    source = make_source()
    body = HEADER + "a,A,a@x.org\nb,B,b@x.org\n"
    load(source["id"], body)
    with runtime.db.read() as session:
        before = session.get(Source, source["id"]).snapshot_generation  # type: ignore[union-attr]
    load(source["id"], body)
    with runtime.db.read() as session:
        after = session.get(Source, source["id"]).snapshot_generation  # type: ignore[union-attr]
    assert after == before
    load(source["id"], HEADER + "a,A,a@y.org\nb,B,b@x.org\n")
    copy, table = copy_and_table(runtime, source["id"])
    assert copy is not None and same(copy, table)
    with runtime.db.read() as session:
        changed = session.get(Source, source["id"]).snapshot_generation  # type: ignore[union-attr]
    assert changed != before


def test_a_failed_write_keeps_the_old_copy_and_leaves_no_new_one(
    runtime, make_source, load, monkeypatch, tmp_path
) -> None:
    from sheaf.identity import aggregation

    source = make_source()
    load(source["id"], HEADER + "a,A,a@x.org\nb,B,b@x.org\n")
    copy_before, table_before = copy_and_table(runtime, source["id"])

    def fail_midway(conn, source_id, plan, *rest):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("DELETE FROM account")
        raise RuntimeError("disk full")

    monkeypatch.setattr(aggregation, "_write", fail_midway)
    file = tmp_path / "next.csv"
    file.write_text(HEADER + "a,A,a@y.org\nc,C,c@x.org\n")
    with pytest.raises(RuntimeError, match="disk full"):
        aggregation.aggregate(runtime.db, runtime.settings, source["id"], file,
                              optimize=True, progress=lambda *a, **k: None)
    copy, table = copy_and_table(runtime, source["id"])
    assert table.equals(table_before)  # rolled back
    assert copy is not None and copy.equals(copy_before)
    folder = runtime.settings.data_dir / "snapshots" / source["id"]
    # the new generation's files are gone: only the old one's copy and page keys remain
    assert len({f.name.split(".", 1)[0] for f in folder.iterdir()}) == 1


def test_a_source_deleted_during_the_run_gets_no_accounts(
    runtime, make_source, tmp_path
) -> None:
    # The write skips SQLite's per-row foreign-key checks; it must check the source itself.
    from sqlalchemy import text

    from sheaf.identity import aggregation, service

    source = make_source()
    file = tmp_path / "accounts.csv"
    file.write_text(HEADER + "a,A,a@x.org\nb,B,b@x.org\n")

    def delete_before_writing(current, total, message):  # type: ignore[no-untyped-def]
        if message.startswith("Applying"):
            service.delete_source(runtime, source["id"])

    with pytest.raises(aggregation.AggregationRefused, match="deleted during the run"):
        aggregation.aggregate(runtime.db, runtime.settings, source["id"], file,
                              optimize=True, progress=delete_before_writing)
    with runtime.db.write() as session:
        orphans = session.execute(text("SELECT count(*) FROM account")).scalar()
        if runtime.db.is_sqlite:  # and the pooled connection checks foreign keys again
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert orphans == 0
    assert not (runtime.settings.data_dir / "snapshots" / source["id"]).exists()


def test_a_worker_remembers_recent_copies_within_a_bound(tmp_path, monkeypatch) -> None:
    def keys(n: int) -> pl.DataFrame:
        return pl.DataFrame({"id": [f"i{k}" for k in range(n)],
                             "native_identity": [f"n{k}" for k in range(n)],
                             "content_hash": list(range(n)), "identity_id": [None] * n},
                            schema={"id": pl.String, "native_identity": pl.String,
                                    "content_hash": pl.Int64, "identity_id": pl.String})

    monkeypatch.setattr(snapshots, "REMEMBERED_ROWS", 10)
    snapshots.save(tmp_path, "s1", "g1", keys(4))
    snapshots.save(tmp_path, "s2", "g1", keys(5))
    for file in (tmp_path / "snapshots").rglob("*.parquet"):
        file.unlink()  # what is left comes from memory
    assert snapshots.load(tmp_path, "s1", "g1").equals(keys(4))  # type: ignore[union-attr]
    assert snapshots.load(tmp_path, "s1", "g2") is None  # never for another generation
    snapshots.save(tmp_path, "s3", "g1", keys(3))  # 12 rows: the least recent (s2) goes
    for file in (tmp_path / "snapshots").rglob("*.parquet"):
        file.unlink()
    assert snapshots.load(tmp_path, "s2", "g1") is None
    assert snapshots.load(tmp_path, "s3", "g1") is not None
    snapshots.save(tmp_path, "s4", "g1", keys(11))  # over the bound: not remembered
    (tmp_path / "snapshots" / "s4" / "g1.parquet").unlink()
    assert snapshots.load(tmp_path, "s4", "g1") is None
    snapshots.drop(tmp_path, "s1")  # a deleted source is forgotten
    assert snapshots.load(tmp_path, "s1", "g1") is None
