"""The columnar reconcile engine: file snapshot -> accounts -> diff against what is stored.

Pure functions on polars frames, so they can be property-tested without a database.
An account's attributes are a struct in schema order (multi-valued attributes as lists),
stored as canonical JSON text; its content hash is a hash of the struct, so an unchanged
account is recognised without encoding anything. polars promises that hash only within one
version, so a source remembers which hash function wrote its hashes (``HASH_SCHEME``).
Unless that is the current one, a mismatch is confirmed against the stored text before it
counts as an update: a polars upgrade can never report phantom updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

HASH_SEED = 0x5EAF
HASH_SCHEME = f"polars {pl.__version__} seed {HASH_SEED:#x}"
NO_REHASH = pl.DataFrame(schema={"id": pl.String, "content_hash": pl.Int64})
ACCOUNT_COLUMNS = ["native_identity", "name", "record", "content_hash"]
STORED_SCHEMA = {
    "id": pl.String,
    "native_identity": pl.String,
    "content_hash": pl.Int64,
    "identity_id": pl.String,
}


@dataclass(frozen=True)
class AccountSchema:
    identity_attribute: str
    display_attribute: str
    attributes: list[str]
    multi_valued: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Snapshot:
    accounts: pl.DataFrame  # ACCOUNT_COLUMNS, one row per account
    ignored_rows: list[int] = field(default_factory=list)  # row numbers with no account id


@dataclass(frozen=True)
class AccountDiff:
    incoming: pl.DataFrame  # what was diffed: ACCOUNT_COLUMNS
    created: pl.DataFrame  # row + ACCOUNT_COLUMNS
    updated: pl.DataFrame  # row + ACCOUNT_COLUMNS + id, identity_id
    # STORED_SCHEMA + row, the account's row in ``incoming``. Records are not copied for
    # unchanged accounts (usually nearly all of them): an optimized run never reads them.
    unchanged: pl.DataFrame
    removed: pl.DataFrame  # STORED_SCHEMA
    # STORED_SCHEMA, row i for incoming account i: its stored id and identity (null for a
    # new account) and its incoming hash; what the stored copy becomes, before new ids
    paired: pl.DataFrame

    @property
    def total(self) -> int:
        return self.created.height + self.updated.height + self.unchanged.height

    def records(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The incoming accounts (ACCOUNT_COLUMNS) at ``rows["row"]``."""
        return _gather(self.incoming, rows["row"])


def snapshot(frame: pl.DataFrame, schema: AccountSchema) -> Snapshot:
    """Turn parsed rows (all strings, null for a blank field) into one row per account.

    Rows sharing an account id merge: a multi-valued attribute collects the distinct
    values in file order, a single-valued one keeps its first non-blank value.
    """
    key = schema.identity_attribute
    attrs = schema.attributes
    multi = [a for a in attrs if a in schema.multi_valued]
    missing = [a for a in attrs if a not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(a) for a in missing)
    frame = frame.select(attrs)
    # Filtering copies every column, so it is done only when there is something to drop.
    blank_rows = frame.select(pl.arg_where(pl.col(key).is_null()))[key].to_list()
    if blank_rows:
        frame = frame.filter(pl.col(key).is_not_null())

    # Files are usually sorted by account id (SailPoint asks for it): one comparison of
    # neighbours then proves there are no repeats, and the diff may merge-join.
    increasing = _strictly_increasing(frame[key])
    any_repeated = not increasing and bool(frame[key].is_duplicated().any())
    repeated = frame[key].is_duplicated() if any_repeated else None
    single = frame.filter(~repeated) if repeated is not None else frame
    if multi:
        single = single.with_columns(
            pl.when(pl.col(a).is_null())
            .then(pl.lit([], dtype=pl.List(pl.String)))
            .otherwise(pl.concat_list(pl.col(a)))
            .alias(a)
            for a in multi
        )
    if not any_repeated:
        return _finish(single, schema, blank_rows, increasing)
    merged = (
        frame.filter(repeated)  # type: ignore[arg-type]
        .group_by(key, maintain_order=True)
        .agg(
            [
                pl.col(a).drop_nulls().unique(maintain_order=True)
                if a in multi
                else pl.col(a).drop_nulls().first()
                for a in attrs
                if a != key
            ]
        )
        .select(attrs)
    )
    return _finish(pl.concat([single, merged], how="vertical_relaxed"), schema, blank_rows)


def _strictly_increasing(ids: pl.Series) -> bool:
    return ids.len() < 2 or bool((ids.slice(1) > ids.slice(0, ids.len() - 1)).all())


def _finish(
    accounts: pl.DataFrame, schema: AccountSchema, blank_rows: list[int], increasing: bool = False
) -> Snapshot:
    key, display, attrs = schema.identity_attribute, schema.display_attribute, schema.attributes
    if display in schema.multi_valued:
        name = pl.col(display).list.first()
    elif display in attrs:
        name = pl.col(display)
    else:
        name = pl.lit(None, dtype=pl.String)
    native_identity = pl.col(key).set_sorted() if increasing else pl.col(key)
    accounts = accounts.select(
        native_identity.alias("native_identity"),
        pl.coalesce(name, pl.col(key)).alias("name"),
        pl.struct(attrs).alias("record"),
    ).with_columns(content_hash=pl.col("record").hash(seed=HASH_SEED).reinterpret(signed=True))
    return Snapshot(accounts, blank_rows)


def encode(accounts: pl.DataFrame) -> pl.DataFrame:
    """Replace the ``record`` struct with its canonical JSON text, ``attributes``."""
    return accounts.with_columns(
        attributes=pl.col("record").struct.json_encode()
    ).drop("record")


def diff(incoming: pl.DataFrame, stored: pl.DataFrame) -> AccountDiff:
    """Classify incoming accounts against stored ones (id, native_identity, content_hash,
    identity_id). Updates are hash-based here; see ``confirm_updates``.

    Only the narrow key columns are joined; the wide attribute records are then picked by
    row number for created and updated accounts only.
    """
    if stored.height == 0:
        # A first load: every account is new, and there is nothing to join with.
        return AccountDiff(
            incoming=incoming, created=incoming.with_row_index("row"),
            updated=_pick(incoming, _NO_ROWS), unchanged=stored.with_row_index("row"),
            removed=stored,
            paired=incoming.select(
                pl.lit(None, dtype=pl.String).alias("id"), "native_identity", "content_hash",
                pl.lit(None, dtype=pl.String).alias("identity_id"),
            ),
        )
    if incoming["native_identity"].equals(stored["native_identity"]):
        # The same accounts in the same order as the stored copy (a reload of an unchanged
        # or only edited file): pair them by position instead of joining.
        if incoming["content_hash"].equals(stored["content_hash"]):
            # Nothing changed: every stored row is unchanged as it is, without copying it.
            return AccountDiff(
                incoming=incoming, created=_pick(incoming, _NO_ROWS.select("row")),
                updated=_pick(incoming, _NO_ROWS), unchanged=stored.with_row_index("row"),
                removed=stored.clear(), paired=stored,
            )
        keys = incoming.select("native_identity", "content_hash").with_row_index("row")
        joined = pl.concat([keys, _stored_side(stored).drop("native_identity")],
                           how="horizontal")
    else:
        left, right = incoming, stored
        if incoming["native_identity"].is_sorted() and stored["native_identity"].is_sorted():
            # Files sorted by account id, as SailPoint asks, and the copy stored in file
            # order: flagged as sorted, both sides are merge-joined, several times faster.
            left, right = (
                frame.with_columns(pl.col("native_identity").set_sorted())
                for frame in (incoming, stored)
            )
        joined = (
            left.lazy().select("native_identity", "content_hash").with_row_index("row")
            .join(_stored_side(right).lazy(), on="native_identity", how="full", coalesce=True)
            .collect()
        )
    present = pl.col("row").is_not_null()
    known = pl.col("stored").is_not_null()
    same = pl.col("content_hash") == pl.col("stored_hash")
    created = joined.filter(present & ~known).select("row")
    paired = joined.filter(present)
    if not paired["row"].is_sorted():  # (a hash join's order; pairing and merging keep it)
        paired = paired.sort("row")
    return AccountDiff(
        incoming=incoming,
        created=(
            incoming.with_row_index("row") if created.height == incoming.height
            else _pick(incoming, created)
        ),
        updated=_pick(incoming, joined.filter(present & known & ~same)
                      .select("row", "id", "identity_id")),
        unchanged=joined.filter(present & known & same).select("row", *STORED_SCHEMA),
        removed=joined.filter(~present).select(
            "id", "native_identity", pl.col("stored_hash").alias("content_hash"), "identity_id"
        ),
        paired=paired.select(*STORED_SCHEMA),
    )


_NO_ROWS = pl.DataFrame(schema={"row": pl.UInt32, "id": pl.String, "identity_id": pl.String})


def _stored_side(stored: pl.DataFrame) -> pl.DataFrame:
    return stored.rename({"content_hash": "stored_hash"}).with_columns(stored=pl.lit(True))


def _pick(incoming: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """The incoming accounts at ``rows["row"]``, with the columns of ``rows`` first."""
    return pl.concat([rows, _gather(incoming, rows["row"])], how="horizontal")


def _gather(incoming: pl.DataFrame, index: pl.Series) -> pl.DataFrame:
    """The incoming accounts at ``index``."""
    if not index.len():  # (even an empty gather from a many-chunk struct copies it all)
        return incoming.clear()
    # The record struct is gathered field by field, then rebuilt: a few times faster than
    # gathering the struct from the parser's many chunks.
    record = incoming["record"].struct.unnest()[index].to_struct("record")
    return incoming.drop("record")[index].with_columns(record).select(incoming.columns)


def confirm_updates(
    result: AccountDiff, stored_text: pl.DataFrame
) -> tuple[AccountDiff, pl.DataFrame]:
    """Move hash mismatches whose stored text is identical to ``unchanged``.

    ``stored_text`` has id and attributes for the ``updated`` rows. Returns the corrected
    diff and the rows whose stored hash only needs rewriting (id, content_hash).
    """
    if result.updated.height == 0:
        return result, NO_REHASH
    checked = result.updated.join(
        stored_text.rename({"attributes": "stored_text"}), on="id", how="left"
    ).with_columns(same=pl.col("record").struct.json_encode() == pl.col("stored_text"))
    rehash = checked.filter(pl.col("same"))
    updated = checked.filter(~pl.col("same").fill_null(False)).drop("stored_text", "same")
    unchanged = pl.concat([result.unchanged, rehash.select(result.unchanged.columns)])
    fixed = replace(result, updated=updated, unchanged=unchanged)
    return fixed, rehash.select("id", "content_hash")
