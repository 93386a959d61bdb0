"""Identity queries: ORM for single objects, bulk frames for aggregation."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from sheaf.identity.engine import STORED_SCHEMA
from sheaf.identity.models import Account, Source, SourceSchema
from sheaf.kit import bulk


def get_source(session: Session, source_id: str) -> Source | None:
    return session.get(Source, source_id)


def account_schema(session: Session, source_id: str) -> SourceSchema | None:
    return session.execute(
        select(SourceSchema).where(
            SourceSchema.source_id == source_id, SourceSchema.name == "account"
        )
    ).scalar_one_or_none()


def account_count(session: Session, source_id: str) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(Account).where(Account.source_id == source_id)
        ).scalar_one()
    )


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
