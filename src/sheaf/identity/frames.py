"""The bulk frames an aggregation reads from the database (polars, beneath the ORM)."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection

from sheaf.identity.engine import STORED_SCHEMA
from sheaf.kit import bulk


def stored_accounts(conn: Connection, source_id: str) -> pl.DataFrame:
    return bulk.fetch_frame(
        conn,
        "SELECT id, native_identity, content_hash, identity_id FROM account WHERE source_id = ?",
        [source_id],
        STORED_SCHEMA,
    )


def stored_texts(conn: Connection, ids: list[str]) -> pl.DataFrame:
    return bulk.fetch_by_ids(
        conn,
        "SELECT id, attributes FROM account WHERE id IN ({ids})",
        ids,
        {"id": pl.String, "attributes": pl.String},
    )


def identity_values(conn: Connection, attribute: str) -> pl.DataFrame:
    """(identity id, value of one identity attribute), oldest identity first."""
    path = '$."' + attribute.replace('"', "") + '"'
    if conn.dialect.name == "sqlite":
        sql = (
            "SELECT id, json_extract(attributes, ?) AS value FROM identity "
            "WHERE json_type(attributes, ?) = 'text' ORDER BY created, id"
        )
        params = [path, path]
    else:
        sql = (
            "SELECT id, attributes::jsonb ->> ? AS value FROM identity "
            "WHERE jsonb_typeof(attributes::jsonb -> ?) = 'string' ORDER BY created, id"
        )
        params = [attribute, attribute]
    return bulk.fetch_frame(conn, sql, params, {"id": pl.String, "value": pl.String})
