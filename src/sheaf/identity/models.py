"""Sources, their account schema, accounts and identities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sheaf.kit.base import Base, UTCDateTime, new_id, utcnow


class Source(Base):
    __tablename__ = "source"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    connector: Mapped[str] = mapped_column(String(64), default="delimited-file")
    # delimiter and other connector settings, as SailPoint's connectorAttributes
    connector_attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # {"type": "GOVERNANCE_GROUP", "id", "name"}: whose SOURCE_SUBADMINs administer it
    management_workgroup: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    authoritative: Mapped[bool] = mapped_column(Boolean, default=False)
    delete_threshold: Mapped[int] = mapped_column(Integer, default=10)
    # [{"accountAttribute": "email", "identityAttribute": "email"}, ...], first match wins
    correlation: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_aggregated: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # names the columnar copy of this source's accounts that matches the table (snapshots.py)
    snapshot_generation: Mapped[str | None] = mapped_column(String(32))
    # the hash function every stored account hash of this source comes from, when known
    # (engine.HASH_SCHEME); only then is a hash mismatch trusted without a second look
    hash_scheme: Mapped[str | None] = mapped_column(String(64))


class SourceSchema(Base):
    __tablename__ = "source_schema"
    __table_args__ = (UniqueConstraint("source_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source_id: Mapped[str] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="account")
    native_object_type: Mapped[str] = mapped_column(String(64), default="User")
    identity_attribute: Mapped[str] = mapped_column(String(128))
    display_attribute: Mapped[str] = mapped_column(String(128))
    # [{"name", "type", "isMulti", "isEntitlement", "isGroup", "description"}]
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Identity(Base):
    __tablename__ = "identity"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256))
    # canonical JSON text, written in bulk by aggregations
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    source_id: Mapped[str | None] = mapped_column(
        ForeignKey("source.id", ondelete="SET NULL"), index=True
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(Base):
    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("source_id", "native_identity"),
        # Uncorrelated accounts (often most of them) need no entry.
        Index("ix_account_identity_id", "identity_id",
              sqlite_where=text("identity_id IS NOT NULL"),
              postgresql_where=text("identity_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"))
    native_identity: Mapped[str] = mapped_column(String(512))
    name: Mapped[str] = mapped_column(String(512))
    # canonical JSON text of the attributes, in schema order; content_hash is its hash
    attributes: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[int] = mapped_column(BigInteger)
    identity_id: Mapped[str | None] = mapped_column(
        ForeignKey("identity.id", ondelete="SET NULL")
    )
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
