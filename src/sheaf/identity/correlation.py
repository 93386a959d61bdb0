"""Linking accounts to identities, in bulk.

Each correlation pair compares an account attribute with an identity attribute; the
first pair that matches wins, and among identities sharing a value the oldest wins
(SailPoint correlates "to the first identity"). On an authoritative source an account
that matches nobody creates an identity of its own.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
from sqlalchemy import Connection

from sheaf.identity import frames
from sheaf.identity.engine import encode
from sheaf.kit import ids


@dataclass(frozen=True)
class Correlated:
    links: pl.DataFrame  # native_identity, identity_id: links to existing identities
    new_identities: pl.DataFrame  # id, name, attributes (JSON text), native_identity


def correlate(
    conn: Connection, candidates: pl.DataFrame, pairs: list[dict[str, str]], authoritative: bool
) -> Correlated:
    """``candidates`` has native_identity, name and the attributes ``record`` struct."""
    pending = candidates.select("native_identity", "name", "record")
    record = pending.schema["record"]
    assert isinstance(record, pl.Struct)
    fields = {f.name: f.dtype for f in record.fields}
    found: list[pl.DataFrame] = []
    for pair in pairs:
        if pending.height == 0:
            break
        account_attr, identity_attr = pair["accountAttribute"], pair["identityAttribute"]
        if fields.get(account_attr) != pl.String:  # absent, or multi-valued: cannot match
            continue
        values = pending.with_columns(
            value=pl.col("record").struct.field(account_attr)
        ).filter(pl.col("value").is_not_null())
        if values.height == 0:
            continue
        identities = frames.identity_values(conn, identity_attr).unique(
            "value", keep="first", maintain_order=True
        )
        hits = values.join(identities.rename({"id": "identity_id"}), on="value", how="inner")
        found.append(hits.select("native_identity", "identity_id"))
        pending = pending.join(hits.select("native_identity"), on="native_identity", how="anti")
    links = (
        pl.concat(found)
        if found
        else pl.DataFrame(schema={"native_identity": pl.String, "identity_id": pl.String})
    )
    if authoritative and pending.height:
        new = encode(pending).with_columns(id=new_ids(pending.height)).select(
            "id", "name", "attributes", "native_identity"
        )
    else:
        new = pl.DataFrame(
            schema={"id": pl.String, "name": pl.String, "attributes": pl.String,
                    "native_identity": pl.String}
        )
    return Correlated(links, new)


def new_ids(n: int) -> pl.Series:
    """n unique time-ordered 32-hex ids (``sheaf.kit.ids``), increasing with the row,
    made columnar (a call per row is too slow at 10^6): rows written in frame order
    append to the primary-key index."""
    if n == 0:
        return pl.Series("id", [], dtype=pl.String)
    prefix, first = ids.reserve(n)
    counter = array("Q", range(first, first + n))
    if sys.byteorder == "little":
        counter.byteswap()  # big-endian, so the hex reads most significant digit first
    raw = pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), n, [None, pa.py_buffer(counter)])
    suffix = pl.Series(raw.cast(pa.binary())).bin.encode("hex")
    return (prefix + suffix).alias("id")
