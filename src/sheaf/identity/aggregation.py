"""One account aggregation: parse the snapshot, diff, correlate, apply atomically."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import pyarrow as pa
from sqlalchemy import Connection, update
from sqlalchemy.orm import Session

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.identity import csvfile, frames, repository, snapshots
from sheaf.identity.correlation import Correlated, correlate, new_ids
from sheaf.identity.engine import (
    HASH_SCHEME,
    NO_REHASH,
    STORED_SCHEMA,
    AccountDiff,
    AccountSchema,
    confirm_updates,
    diff,
    encode,
    snapshot,
)
from sheaf.identity.models import Source, SourceSchema
from sheaf.jobs import faults
from sheaf.kit import bulk
from sheaf.kit.base import new_id, utcnow

log = logging.getLogger(__name__)


class _Laps:
    """Seconds spent in each stage, for the log: where an aggregation's time went."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.laps: list[tuple[str, float]] = []

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps.append((stage, now - self.last))
        self.last = now

    def __str__(self) -> str:
        total = sum(s for _, s in self.laps)
        return f"{total:.2f} s (" + ", ".join(f"{n} {s:.2f}" for n, s in self.laps) + ")"


class AggregationRefused(Exception):
    """The file or the source cannot be aggregated; nothing was changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SourceChanged(Exception):
    """Another aggregation of the source committed while this one ran: nothing was written,
    and a rerun (the job core retries) diffs against the accounts as they are now."""


@dataclass
class AggregationResult:
    counters: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class Progress(Protocol):
    """Where the aggregation reports how far it has got (the job context, in a job), in
    the units of the phase it is in: rows read, rows to compare, rows written of rows to
    write."""

    def __call__(self, current: int, total: int | None, message: str) -> None: ...


# Called inside the write transaction with the run's result, to record the run's outcome
# with its data (the job's fenced end, see JobContext.finish); raising rolls it all back.
Record = Callable[[Session, "AggregationResult"], None]


def aggregate(
    db: Database,
    settings: Settings,
    source_id: str,
    file: Path,
    *,
    optimize: bool,
    progress: Progress,
    record: Record | None = None,
    writing: Progress | None = None,
) -> AggregationResult:
    """``writing`` (optional) is told the rows written of rows to write from inside the
    write transaction, batch by batch (where a job keeps them, see jobs.live)."""
    with db.read() as session:
        source = repository.get_source(session, source_id)
        schema_row = repository.account_schema(session, source_id)
    if source is None or schema_row is None:
        raise AggregationRefused("source_not_found", f"Source {source_id} no longer exists")

    laps = _Laps()
    progress(0, None, "Reading file")
    delimiter = str((source.connector_attributes or {}).get("delimiter", ","))
    try:
        parsed = csvfile.read(
            file, delimiter=delimiter, max_field_bytes=settings.identity.max_field_bytes
        )
    except csvfile.InvalidFile as exc:
        raise AggregationRefused("invalid_file", str(exc)) from None
    schema, learned = _schema_for(schema_row, parsed.columns)
    snap = snapshot(parsed.frame, schema)
    accounts, ignored = snap.accounts, snap.ignored_rows
    # Only line numbers are needed from the file now: let the parsed rows go.
    parsed = replace(parsed, frame=parsed.frame.clear())
    del snap
    pa.default_memory_pool().release_unused()
    warnings = []
    if ignored:
        lines = parsed.line_numbers(ignored[: csvfile.MAX_REPORTED])
        warnings.append(
            f"{len(ignored)} rows have no value for the account ID attribute "
            f"'{schema.identity_attribute}' and were ignored (lines "
            f"{', '.join(map(str, lines))}{', ...' if len(ignored) > len(lines) else ''})"
        )
    laps("parse")
    faults.reached("parse")
    progress(0, accounts.height, f"Comparing {accounts.height:,} rows with stored accounts")

    stored = snapshots.load(settings.data_dir, source_id, source.snapshot_generation)
    have_copy = stored is not None
    with db.read() as session:
        conn = session.connection()
        if stored is None:
            stored = frames.stored_accounts(conn, source_id)
        laps("load copy")
        result = diff(accounts, stored)
        laps("diff")
        faults.reached("diff")
        del accounts
        trusted = source.hash_scheme == HASH_SCHEME
        rehash = NO_REHASH
        if not trusted:
            result, rehash = confirm_updates(
                result, frames.stored_texts(conn, result.updated["id"].to_list())
            )
        candidates = _correlation_candidates(result, optimize)
        correlated = correlate(conn, candidates, source.correlation or [], source.authoritative)

    laps("correlate")
    removed = result.removed
    if removed.height and _over_threshold(source, stored.height, removed.height, settings):
        share = 100 * removed.height / stored.height
        warnings.append(
            f"Account removal skipped: {removed.height} of {stored.height} accounts "
            f"({share:.1f}%) are missing from the file, more than the source's delete "
            f"threshold of {source.delete_threshold}%. No account was removed."
        )
        removed = removed.clear()

    changes = result.created.height + result.updated.height + removed.height
    # A run that writes no account row leaves the stored copy valid as it is.
    writes = changes + rehash.height + correlated.links.height + correlated.new_identities.height
    kept_generation = source.snapshot_generation if have_copy and not writes else None
    generation = kept_generation or new_id()
    # Every stored hash now comes from the current function, unless accounts whose removal
    # was skipped kept hashes of an unknown one.
    scheme = HASH_SCHEME if trusted or removed.height == result.removed.height else None
    planned = _plan(result, removed, rehash, correlated, optimize)
    laps("plan")
    # ("Applying" is what the aggregation-status endpoint reads as ACCOUNTS_COLLECTED)
    applying = f"Applying {changes:,} account changes"
    to_write = planned.rows()
    progress(0, to_write, applying)

    def written(rows: int) -> None:
        if writing is not None:
            writing(rows, to_write, applying)

    counters = {
        "applications": source.name,
        "total": result.total,
        "optimizedAggregation": "enabled" if optimize else "disabled",
        "ignored": len(ignored),
        "optimized": result.unchanged.height if optimize else 0,
        "created": result.created.height,
        "updated": result.updated.height,
        "deleted": removed.height,
        "identitiesCreated": correlated.new_identities.height,
        "identitiesCorrelated": correlated.links.height,
    }
    outcome = AggregationResult(counters, warnings)
    _commit(db, settings, source, planned, generation, scheme,
            save_copy=kept_generation is None,
            learned=(schema_row, learned) if learned is not None else None,
            record=(lambda session: record(session, outcome)) if record else None,
            written=written)
    laps("write")
    log.info("source %s aggregated in %s", source_id, laps)
    return outcome


def _schema_for(
    row: SourceSchema, columns: list[str]
) -> tuple[AccountSchema, list[dict[str, Any]] | None]:
    """The account schema to read with, and the attribute list learned from the header
    when the schema had none yet."""
    learned: list[dict[str, Any]] | None = None
    attributes: list[dict[str, Any]]
    if not row.attributes:
        learned = [{"name": c, "type": "STRING", "isMulti": False, "isEntitlement": False,
                    "isGroup": False, "description": None} for c in columns]
        attributes = learned
    else:
        attributes = row.attributes
    names = [str(a["name"]) for a in attributes]
    if row.identity_attribute not in columns:
        raise AggregationRefused(
            "invalid_file",
            f"The file has no column '{row.identity_attribute}', the source's account ID "
            f"attribute. Its header has: {', '.join(columns)}",
        )
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise AggregationRefused(
            "invalid_file",
            f"The header has columns that are not in the source's account schema: "
            f"{', '.join(unknown)}. Add them to the schema or remove them from the file",
        )
    # A missing column would blank its attribute on every account: dropping an attribute
    # is a schema change, made on purpose, not a side effect of a short file.
    missing = [n for n in names if n not in columns]
    if missing:
        raise AggregationRefused(
            "invalid_file",
            f"The file has no column for these attributes of the source's account schema: "
            f"{', '.join(missing)}. Add the columns to the file (blank values are allowed), "
            f"or remove the attributes from the schema first",
        )
    multi = frozenset(str(a["name"]) for a in attributes if a.get("isMulti"))
    return AccountSchema(row.identity_attribute, row.display_attribute, names, multi), learned


def _correlation_candidates(result: AccountDiff, optimize: bool) -> pl.DataFrame:
    """New accounts, changed uncorrelated ones; every uncorrelated one without optimization
    (disabling optimization is how SailPoint users ask for correlation to be re-examined)."""
    cols = ["native_identity", "name", "record"]
    frames = [result.created.select(cols),
              result.updated.filter(pl.col("identity_id").is_null()).select(cols)]
    if not optimize:
        uncorrelated = result.unchanged.filter(pl.col("identity_id").is_null())
        frames.append(result.records(uncorrelated).select(cols))
    return pl.concat(frames)


def _over_threshold(source: Source, stored: int, removed: int, s: Settings) -> bool:
    if stored <= s.identity.delete_threshold_min_accounts:
        return False
    return 100 * removed > source.delete_threshold * stored


def _commit(
    db: Database,
    settings: Settings,
    source: Source,
    plan: _Plan,
    generation: str,
    hash_scheme: str | None,
    *,
    save_copy: bool,
    learned: tuple[SourceSchema, list[dict[str, Any]]] | None,
    record: Callable[[Session], None] | None,
    written: Callable[[int], None] | None = None,
) -> None:
    """Write the plan in one transaction and, beside it, the copy the next run diffs with.

    ``record`` writes the run's outcome last in that transaction (fenced on the job, so a
    run that is no longer its job's own rolls back here, having changed nothing).

    The copy is written while the database is: it is named by a generation that only this
    commit makes current, so a failed run leaves an unused file, never a wrong copy.
    """
    with ThreadPoolExecutor(1) as background:
        copying = background.submit(
            snapshots.save, settings.data_dir, source.id, generation, plan.state
        ) if save_copy else None
        try:
            # Accounts reference their source, which this transaction checks first, and
            # identities, which are never deleted: SQLite need not check every row.
            with db.write(trusted_references=True) as session:
                # The diff is only right against the accounts it was computed from: the
                # generation read at the start must still be current (every commit moves
                # it), else another run committed in between and this one starts over.
                read = source.snapshot_generation
                found = session.execute(
                    update(Source).where(
                        Source.id == source.id,
                        Source.snapshot_generation.is_(None) if read is None
                        else Source.snapshot_generation == read)
                    .values(last_aggregated=utcnow(), snapshot_generation=generation,
                            hash_scheme=hash_scheme)
                )
                if found.rowcount != 1:  # type: ignore[attr-defined]
                    if session.get(Source, source.id) is None:
                        raise AggregationRefused(
                            "source_not_found", f"Source {source.id} was deleted during the run")
                    raise SourceChanged(f"Source {source.id}'s accounts changed during the run")
                _write(session.connection(), source.id, plan, written)
                if learned is not None:
                    schema_row = session.merge(learned[0])
                    schema_row.attributes = learned[1]
                    schema_row.modified = utcnow()
                if record is not None:
                    record(session)
            faults.reached("committed")
        except BaseException as exc:
            if copying is not None:
                wait([copying])
                snapshots.prune(settings.data_dir, source.id, keep=source.snapshot_generation)
            if _integrity_error(exc):
                # The diff disagreed with the database, so the copy it came from cannot be
                # trusted (it never should happen): the retry reads the database itself.
                snapshots.drop(settings.data_dir, source.id)
            raise
        if copying is not None:
            copying.result()
            snapshots.prune(settings.data_dir, source.id, keep=generation)
    if plan.created.height or plan.removed.height:  # the table's shape changed
        db.refresh_statistics()


def _integrity_error(exc: BaseException) -> bool:
    """A constraint failure, from SQLAlchemy or from a driver's own executemany (PEP 249
    names the class IntegrityError in every driver)."""
    return any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)


@dataclass(frozen=True)
class _Plan:
    """Everything one aggregation writes, worked out before the write transaction."""

    new_identities: pl.DataFrame  # id, name, attributes (JSON text)
    created: pl.DataFrame  # id, native_identity, name, record, content_hash, identity_id
    updated: pl.DataFrame  # + attributes (JSON text), identity_id, new_identity
    relinked: pl.DataFrame  # identity_id, id: unchanged accounts linked anew
    rehash: pl.DataFrame  # content_hash, id
    removed: pl.DataFrame  # id
    state: pl.DataFrame  # STORED_SCHEMA: the source's accounts as they will stand

    def rows(self) -> int:
        """Rows the write changes (its progress total)."""
        return sum(f.height for f in (self.new_identities, self.created, self.updated,
                                      self.relinked, self.rehash, self.removed))


def _plan(
    result: AccountDiff,
    removed: pl.DataFrame,
    rehash: pl.DataFrame,
    correlated: Correlated,
    optimize: bool,
) -> _Plan:
    new_identities = correlated.new_identities
    # identity for each correlated account: a found link, else its new identity
    links = pl.concat([
        correlated.links,
        new_identities.select("native_identity", pl.col("id").alias("identity_id")),
    ])
    created = _linked(result.created, links, "identity_id")
    if not created["native_identity"].is_sorted():
        # Ids then grow with the account id, so the primary key and the (source, account
        # id) index both take the new accounts in one ordered sweep (on a first load, at
        # their ends), not at random pages. A file sorted by account id costs nothing.
        created = created.sort("native_identity")
    created = created.select(
        "row", new_ids(created.height).alias("id"), "native_identity", "name", "record",
        "content_hash", "identity_id",
    )
    updated = encode(_linked(result.updated, links, "new_identity"))
    unchanged = result.unchanged
    relinked = pl.DataFrame(schema={"row": pl.UInt32, "identity_id": pl.String,
                                    "id": pl.String})
    if not optimize:
        relinked = unchanged.drop("identity_id").join(links, on="native_identity").select(
            "row", "identity_id", "id")
    # The stored copy in file order (a reload listing the same accounts in the same order
    # then pairs them by position, see engine.diff): the diff's pairs, with the new
    # accounts' ids and every new link written in at their rows.
    paired = result.paired
    ids, identities = paired["id"].clone(), paired["identity_id"].clone()
    if created.height:
        ids.scatter(created["row"], created["id"])
    linked = pl.concat([
        created.select("row", "identity_id"),
        updated.select("row", pl.col("new_identity").alias("identity_id")),
        relinked.select("row", "identity_id"),
    ]).drop_nulls("identity_id")
    if linked.height:
        identities.scatter(linked["row"], linked["identity_id"])
    current = pl.DataFrame([ids, paired["native_identity"], paired["content_hash"], identities])
    kept = result.removed.join(removed.select("id"), on="id", how="anti")
    return _Plan(
        new_identities=new_identities.select("id", "name", "attributes"),
        created=created.drop("row"),
        updated=updated,
        relinked=relinked.drop("row"),
        rehash=rehash.select("content_hash", "id"),
        removed=removed.select("id"),
        state=pl.concat([current, kept.select(*STORED_SCHEMA)]),
    )


def _write(conn: Connection, source_id: str, plan: _Plan,
           written: Callable[[int], None] | None = None) -> None:
    done = 0

    def count(rows: int) -> None:  # rows written so far, for progress
        nonlocal done
        done += rows
        if written is not None and rows:
            written(done)

    now = bulk.timestamp(conn, utcnow())
    stamps = {"created": now, "modified": now}
    bulk.insert_frame(conn, "identity", plan.new_identities,
                      constants={"source_id": source_id, **stamps}, written=count)
    bulk.insert_frame(conn, "account", plan.created,
                      constants={"source_id": source_id, **stamps}, prepare=encode,
                      written=count)
    faults.reached("write")
    # (in id order, which is insertion order: neighbouring rows share pages)
    bulk.execute_frame(
        conn,
        "UPDATE account SET name = ?, attributes = ?, content_hash = ?, "
        "identity_id = COALESCE(?, identity_id), modified = ? WHERE id = ?",
        plan.updated.select("name", "attributes", "content_hash", "new_identity",
                            pl.lit(now).alias("modified"), "id").sort("id"),
    )
    count(plan.updated.height)
    # Authoritative accounts refresh the identities they created.
    bulk.execute_frame(
        conn,
        "UPDATE identity SET name = ?, attributes = ?, modified = ? "
        "WHERE id = ? AND source_id = ?",
        plan.updated.filter(pl.col("identity_id").is_not_null()).select(
            "name", "attributes", pl.lit(now).alias("modified"), "identity_id",
            pl.lit(source_id).alias("source_id"),
        ),
    )
    bulk.execute_frame(conn, "UPDATE account SET identity_id = ?, modified = ? WHERE id = ?",
                       plan.relinked.select("identity_id", pl.lit(now).alias("modified"), "id"))
    count(plan.relinked.height)
    bulk.execute_frame(conn, "UPDATE account SET content_hash = ? WHERE id = ?", plan.rehash)
    count(plan.rehash.height)
    bulk.execute_frame(conn, "DELETE FROM account WHERE id = ?", plan.removed.sort("id"))
    count(plan.removed.height)


def _linked(accounts: pl.DataFrame, links: pl.DataFrame, column: str) -> pl.DataFrame:
    """``accounts`` with the identity each is linked to now (or null) as ``column``."""
    if links.height == 0:  # the usual reload: nothing to join, nothing to copy
        return accounts.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    return accounts.join(links.rename({"identity_id": column}), on="native_identity",
                         how="left")
