"""The finance domain's tables.

Records gathered from an institution keep the institution's own id (``id``, unique per
member) beside sheaf's guid, a content hash of what the institution sent (an unchanged
record costs no write) and the wire fields as JSON. Money is kept as decimal strings in
that JSON, rounded half-even to the cent by the connectors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sheaf.kit.base import Base, UTCDateTime, utcnow


class FinUser(Base):
    __tablename__ = "fin_user"
    __table_args__ = (UniqueConstraint("client_id", "id"),)

    guid: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("mx_client.client_id", ondelete="CASCADE"), index=True)
    id: Mapped[str | None] = mapped_column(String(200))  # the partner's own id
    email: Mapped[str | None] = mapped_column(String(320))
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[str | None] = mapped_column("metadata", Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Institution(Base):
    """Where a member's data comes from; ``connector`` names the code that fetches it
    (sandbox, ofx, file) and ``config`` its settings (URL, org, fid; sandbox size...)."""

    __tablename__ = "fin_institution"

    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    guid: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    connector: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [{"guid", "field_name", "label", "type", "field_type", "display_order"}]
    credentials: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Member(Base):
    __tablename__ = "fin_member"
    __table_args__ = (Index("ix_fin_member_user", "user_guid", "guid"),)

    guid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_guid: Mapped[str] = mapped_column(ForeignKey("fin_user.guid", ondelete="CASCADE"))
    institution_code: Mapped[str] = mapped_column(ForeignKey("fin_institution.code"))
    id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[str | None] = mapped_column("metadata", Text)
    # Fernet token of {field_name: value}; never returned, never logged
    credentials: Mapped[str | None] = mapped_column(Text)
    use_cases: Mapped[list[str] | None] = mapped_column(JSON)
    background_aggregation_is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_oauth: Mapped[bool] = mapped_column(Boolean, default=False)
    is_manual: Mapped[bool] = mapped_column(Boolean, default=False)
    connection_status: Mapped[str | None] = mapped_column(String(32))
    connection_status_message: Mapped[str | None] = mapped_column(Text)
    aggregated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    successfully_aggregated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    challenge_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_authenticated: Mapped[bool] = mapped_column(Boolean, default=False)
    has_processed_accounts: Mapped[bool] = mapped_column(Boolean, default=False)
    has_processed_transactions: Mapped[bool] = mapped_column(Boolean, default=False)
    has_processed_account_numbers: Mapped[bool] = mapped_column(Boolean, default=False)
    # the last aggregation job: whether it is queued or running is is_being_aggregated
    job_id: Mapped[str | None] = mapped_column(String(32))
    # successful aggregations so far (the sandbox posts pending transactions on the next)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Challenge(Base):
    __tablename__ = "fin_challenge"

    guid: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_guid: Mapped[str] = mapped_column(
        ForeignKey("fin_member.guid", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    field_name: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32))
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    image_data: Mapped[str | None] = mapped_column(Text)
    image_options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    answer: Mapped[str | None] = mapped_column(Text)  # sealed like credentials
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class _Gathered:
    """Columns every gathered record has."""

    guid: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(200))
    user_guid: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FinAccount(_Gathered, Base):
    __tablename__ = "fin_account"
    __table_args__ = (UniqueConstraint("member_guid", "id"),
                      Index("ix_fin_account_user", "user_guid", "guid"))

    member_guid: Mapped[str] = mapped_column(ForeignKey("fin_member.guid", ondelete="CASCADE"))


class FinTransaction(_Gathered, Base):
    __tablename__ = "fin_transaction"
    __table_args__ = (UniqueConstraint("member_guid", "id"),
                      Index("ix_fin_transaction_member_date", "member_guid", "date"),
                      Index("ix_fin_transaction_user_date", "user_guid", "date"))

    member_guid: Mapped[str] = mapped_column(ForeignKey("fin_member.guid", ondelete="CASCADE"))
    account_guid: Mapped[str] = mapped_column(
        ForeignKey("fin_account.guid", ondelete="CASCADE"), index=True)
    date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, what date filters use


class FinHolding(_Gathered, Base):
    __tablename__ = "fin_holding"
    __table_args__ = (UniqueConstraint("member_guid", "id"),)

    member_guid: Mapped[str] = mapped_column(ForeignKey("fin_member.guid", ondelete="CASCADE"))
    account_guid: Mapped[str] = mapped_column(
        ForeignKey("fin_account.guid", ondelete="CASCADE"), index=True)
