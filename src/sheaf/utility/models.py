"""The utility domain's tables: reference data, places, accounts, meters, bills, batches,
calculated-bill versions, chargeback tasks and audit flags.

Ids are integers (EnergyCAP's are): autoincrement hands them out in order. Use and cost
are stored as integers of millionths (``*_micro``) so every sum in SQL is exact on SQLite
as on PostgreSQL; conversion and rounding happen once, in Python, with Decimal (see
engine.py for the rounding rule).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sheaf.auth import energycap as _users  # noqa: F401  (energycap_user, referenced below)
from sheaf.kit.base import Base, UTCDateTime, utcnow

MICRO = 1_000_000


# -- reference data (seeded by the migration, see reference.py) ----------------------------
class Unit(Base):
    __tablename__ = "utility_unit"

    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_code: Mapped[str] = mapped_column(String(16), unique=True)
    unit_info: Mapped[str] = mapped_column(String(32))
    # what the unit measures (energy, volume, demand, currency, area, ...): units convert
    # only within one dimension
    dimension: Mapped[str] = mapped_column(String(16))
    # this unit in the dimension's base unit (J, m3, W, ...), as an exact decimal string
    factor: Mapped[str] = mapped_column(String(40))


class Commodity(Base):
    __tablename__ = "utility_commodity"

    commodity_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    commodity_code: Mapped[str] = mapped_column(String(32), unique=True)
    commodity_info: Mapped[str] = mapped_column(String(50))
    abbreviation: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    use_rollup_unit_id: Mapped[int] = mapped_column(ForeignKey("utility_unit.unit_id"))
    demand_rollup_unit_id: Mapped[int | None] = mapped_column(ForeignKey("utility_unit.unit_id"))


class TypeCode(Base):
    """Place, meter and account types and observation types: code + name per kind."""

    __tablename__ = "utility_type"
    __table_args__ = (UniqueConstraint("kind", "code"),)

    type_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # place, meter, account, observation
    code: Mapped[str] = mapped_column(String(32))
    info: Mapped[str] = mapped_column(String(64))


# -- places, cost centers, vendors, accounts, meters ---------------------------------------
class Place(Base):
    __tablename__ = "utility_place"

    place_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    place_code: Mapped[str] = mapped_column(String(32), unique=True)
    place_info: Mapped[str] = mapped_column(String(50))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("utility_place.place_id"),
                                                  index=True)
    place_type_id: Mapped[int] = mapped_column(ForeignKey("utility_type.type_id"))
    floor_area: Mapped[int | None] = mapped_column(BigInteger)  # square feet
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CostCenter(Base):
    __tablename__ = "utility_cost_center"

    cost_center_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cost_center_code: Mapped[str] = mapped_column(String(32), unique=True)
    cost_center_info: Mapped[str] = mapped_column(String(50))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("utility_cost_center.cost_center_id"))


class Vendor(Base):
    __tablename__ = "utility_vendor"

    vendor_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vendor_code: Mapped[str] = mapped_column(String(32), unique=True)
    vendor_info: Mapped[str] = mapped_column(String(50))
    internal: Mapped[bool] = mapped_column(Boolean, default=False)


class Account(Base):
    __tablename__ = "utility_account"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_code: Mapped[str] = mapped_column(String(50), unique=True)
    account_info: Mapped[str] = mapped_column(String(50))
    account_type_id: Mapped[int] = mapped_column(ForeignKey("utility_type.type_id"))
    cost_center_id: Mapped[int] = mapped_column(ForeignKey("utility_cost_center.cost_center_id"))
    vendor_id: Mapped[int] = mapped_column(ForeignKey("utility_vendor.vendor_id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Meter(Base):
    __tablename__ = "utility_meter"

    meter_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_code: Mapped[str] = mapped_column(String(32), unique=True)
    meter_info: Mapped[str] = mapped_column(String(50))
    meter_type_id: Mapped[int] = mapped_column(ForeignKey("utility_type.type_id"))
    commodity_id: Mapped[int] = mapped_column(ForeignKey("utility_commodity.commodity_id"))
    place_id: Mapped[int] = mapped_column(ForeignKey("utility_place.place_id"), index=True)
    use_unit_id: Mapped[int] = mapped_column(ForeignKey("utility_unit.unit_id"))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    is_aggregate: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountMeter(Base):
    __tablename__ = "utility_account_meter"
    __table_args__ = (UniqueConstraint("account_id", "meter_id"),)

    account_meter_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("utility_account.account_id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("utility_meter.meter_id"), index=True)
    begin_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)


# -- batches and bills ---------------------------------------------------------------------
class Batch(Base):
    __tablename__ = "utility_batch"
    __table_args__ = (Index("ix_utility_batch_user_status", "user_id", "status"),)

    batch_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_code: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("energycap_user.user_id"))
    status: Mapped[str] = mapped_column(String(16), default="Open")  # Open, Pending, Closed
    start_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # defaults every bill added to the batch takes
    statement_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_reading: Mapped[datetime | None] = mapped_column(UTCDateTime)
    control_code: Mapped[str | None] = mapped_column(String(255))
    invoice_number: Mapped[str | None] = mapped_column(String(255))
    account_period_number: Mapped[int | None] = mapped_column(Integer)
    account_period_year: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(255))


class Bill(Base):
    __tablename__ = "utility_bill"
    __table_args__ = (Index("ix_utility_bill_account_period", "account_id", "billing_period"),
                      Index("ix_utility_bill_task", "task_id"),
                      # aggregate bills only: source bills (the millions) have no version
                      Index("ix_utility_bill_version", "version_id",
                            sqlite_where=text("version_id IS NOT NULL"),
                            postgresql_where=text("version_id IS NOT NULL")),
                      # a task's bills still analyzing (counted on every poll of a task)
                      Index("ix_utility_bill_analyzing", "task_id",
                            sqlite_where=text("analyzing = 1"),
                            postgresql_where=text("analyzing")))

    bill_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("utility_account.account_id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("utility_batch.batch_id"), index=True)
    billing_period: Mapped[int] = mapped_column(Integer)
    account_period: Mapped[int | None] = mapped_column(Integer)
    begin_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    total_cost_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    void: Mapped[bool] = mapped_column(Boolean, default=False)
    accrual: Mapped[bool] = mapped_column(Boolean, default=False)
    analyzing: Mapped[bool] = mapped_column(Boolean, default=False)
    # voided because its batch is Pending (un-voided when the batch moves on)
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    statement_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_reading: Mapped[datetime | None] = mapped_column(UTCDateTime)
    control_code: Mapped[str | None] = mapped_column(String(255))
    invoice_number: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    # the chargeback task that generated it (and the version, for the per-version view)
    task_id: Mapped[int | None] = mapped_column(Integer)
    version_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BillLine(Base):
    """A bill's line item: on a meter (``meter_id`` set) or on the account."""

    __tablename__ = "utility_bill_line"
    __table_args__ = (Index("ix_utility_bill_line_meter", "meter_id", "bill_id"),)

    bodyline_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("utility_bill.bill_id", ondelete="CASCADE"),
                                         index=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("utility_meter.meter_id"))
    observation_type_id: Mapped[int] = mapped_column(ForeignKey("utility_type.type_id"))
    caption: Mapped[str | None] = mapped_column(String(32))
    value_micro: Mapped[int | None] = mapped_column(BigInteger)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("utility_unit.unit_id"))
    cost_micro: Mapped[int] = mapped_column(BigInteger, default=0)


# -- calculated bills (aggregate meters) and chargeback tasks ------------------------------
class CalculatedVersion(Base):
    __tablename__ = "utility_calculated_version"
    __table_args__ = (UniqueConstraint("account_id", "meter_id", "begin_period"),)

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_info: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("utility_account.account_id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("utility_meter.meter_id"), index=True)
    begin_period: Mapped[int] = mapped_column(Integer)
    end_period: Mapped[int | None] = mapped_column(Integer)


class VersionSource(Base):
    """A meter whose bills a version sums (an aggregate's use and cost calculation)."""

    __tablename__ = "utility_version_source"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("utility_calculated_version.version_id", ondelete="CASCADE"),
        primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("utility_meter.meter_id"), primary_key=True)


class ChargebackTask(Base):
    __tablename__ = "utility_chargeback_task"

    task_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str | None] = mapped_column(String(32), index=True)
    chargeback_type: Mapped[str] = mapped_column(String(16), default="Calculation")
    user_id: Mapped[int] = mapped_column(ForeignKey("energycap_user.user_id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("utility_batch.batch_id"))
    billing_period: Mapped[int] = mapped_column(Integer)
    begin_period: Mapped[int] = mapped_column(Integer)
    # the place whose subtree's aggregate meters the run covers (the user's topmost place)
    scope_place_id: Mapped[int | None] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)
    # set by the run's commit, in the transaction that writes its bills: None until then
    # (the status is then read from the job: Queued, Processing, Failed)
    status: Mapped[str | None] = mapped_column(String(32))
    bills_created: Mapped[int] = mapped_column(Integer, default=0)
    bills_voided: Mapped[int] = mapped_column(Integer, default=0)
    failed_versions: Mapped[int] = mapped_column(Integer, default=0)
    task_begin: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    task_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversed_by: Mapped[int | None] = mapped_column(ForeignKey("energycap_user.user_id"))
    reversed_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the inputs' mark (aggregation.mark) its outcome holds for: set when nothing else
    # changed them between the run's read and its commit
    source_mark: Mapped[str | None] = mapped_column(String(64))


class SourceState(Base):
    """One row: how many changes that can alter an aggregation's result the database has
    seen, counted by triggers (migration d8f2b4c61e07 lists them)."""

    __tablename__ = "utility_source_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    changes: Mapped[int] = mapped_column(BigInteger)


class TaskVersion(Base):
    """What one task did with one version: bills made, or why it failed."""

    __tablename__ = "utility_task_version"
    __table_args__ = (Index("ix_utility_task_version_version", "version_id", "task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("utility_chargeback_task.task_id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int] = mapped_column(Integer)
    billing_period: Mapped[int] = mapped_column(Integer)
    bill_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    error_message: Mapped[str | None] = mapped_column(Text)
    # source meters without a bill in the period (an audit flags the aggregate bill)
    missing_sources: Mapped[int] = mapped_column(Integer, default=0)


class TaskVoided(Base):
    """A bill a task's run voided (its sum changed and a new bill replaced it): reversing
    the task un-voids these, so the data is as it was before the run."""

    __tablename__ = "utility_task_voided"
    __table_args__ = (Index("ix_utility_task_voided_bill", "bill_id"),)

    task_id: Mapped[int] = mapped_column(
        ForeignKey("utility_chargeback_task.task_id", ondelete="CASCADE"), primary_key=True)
    bill_id: Mapped[int] = mapped_column(
        ForeignKey("utility_bill.bill_id", ondelete="CASCADE"), primary_key=True)


class Flag(Base):
    """An audit's finding on a bill."""

    __tablename__ = "utility_flag"

    flag_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("utility_bill.bill_id", ondelete="CASCADE"),
                                         index=True)
    issue: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
