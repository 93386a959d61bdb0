"""Identity queries on single objects (the bulk frames an aggregation reads are in
``frames``, which needs polars: an API process never loads it)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sheaf.identity.models import Account, Source, SourceSchema


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
