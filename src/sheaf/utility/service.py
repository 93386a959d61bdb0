"""Data entry rules: places, meters, accounts, account-meter links, bills, batches.

Functions take the caller's session and never commit; a failing check raises
FieldErrors naming every bad field before anything is written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Integer, cast, func, select, update
from sqlalchemy.orm import Session

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.errors import NotFound
from sheaf.kit.base import utcnow
from sheaf.utility import models as m
from sheaf.utility import periods, schemas, scope
from sheaf.utility.errors import FieldCheck, field_error

FAR_FUTURE = date(2099, 12, 31)


def to_micro(value: Decimal | float | None) -> int:
    """Millionths, exactly (a value with more than 6 decimals is refused by the caller)."""
    if value is None:
        return 0
    return int(Decimal(str(value)) * m.MICRO)


def amount_problem(value: Decimal | float | None) -> str | None:
    """Why ``value`` cannot be stored exactly as millionths, or None."""
    if value is None:
        return None
    number = Decimal(str(value))
    if not number.is_finite():
        return "is not a number"
    if abs(number) >= 10**12:
        return "must be less than 10^12 in size"
    if number != number.quantize(Decimal("0.000001")):
        return "has more than 6 decimal places"
    return None


def type_id(session: Session, kind: str, code: str) -> int:
    return session.execute(select(m.TypeCode.type_id).where(
        m.TypeCode.kind == kind, m.TypeCode.code == code)).scalar_one()


def _type_ok(session: Session, kind: str, type_id: int) -> bool:
    found = session.get(m.TypeCode, type_id)
    return found is not None and found.kind == kind


# -- places ------------------------------------------------------------------------------
def create_place(session: Session, who: EnergyCapPrincipal, body: schemas.PlaceCreate
                 ) -> m.Place:
    check = FieldCheck()
    if not scope.can_see(session, who, m.Place, body.parent_place_id):
        check.add("parentPlaceId", f"place {body.parent_place_id} does not exist")
    if not _type_ok(session, "place", body.place_type_id):
        check.add("placeTypeId", f"place type {body.place_type_id} does not exist")
    if session.execute(select(m.Place.place_id).where(
            m.Place.place_code == body.place_code)).first():
        check.add("placeCode", f"a place with code {body.place_code!r} already exists")
    check.raise_any()
    place = m.Place(place_code=body.place_code, place_info=body.place_info,
                    parent_id=body.parent_place_id, place_type_id=body.place_type_id,
                    floor_area=body.floor_area, description=body.place_description,
                    created_by=who.user_id, created_at=utcnow())
    session.add(place)
    session.flush()
    return place


def root_place(session: Session) -> m.Place:
    return session.execute(select(m.Place).where(m.Place.parent_id.is_(None))
                           .order_by(m.Place.place_id)).scalars().first()  # type: ignore[return-value]


# -- meters ------------------------------------------------------------------------------
def create_meter(session: Session, who: EnergyCapPrincipal, body: schemas.MeterCreate,
                 *, aggregate: bool = False) -> m.Meter:
    check = FieldCheck()
    commodity = session.get(m.Commodity, body.commodity_id)
    if commodity is None:
        check.add("commodityId", f"commodity {body.commodity_id} does not exist")
    if not scope.can_see(session, who, m.Place, body.place_id):
        check.add("placeId", f"place {body.place_id} does not exist")
    meter_type = session.get(m.TypeCode, body.meter_type_id)
    if meter_type is None or meter_type.kind != "meter":
        check.add("meterTypeId", f"meter type {body.meter_type_id} does not exist")
    if body.use_unit_id is not None and session.get(m.Unit, body.use_unit_id) is None:
        check.add("useUnitId", f"unit {body.use_unit_id} does not exist")
    if session.execute(select(m.Meter.meter_id).where(
            m.Meter.meter_code == body.meter_code)).first():
        check.add("meterCode", f"a meter with code {body.meter_code!r} already exists")
    check.raise_any()
    assert commodity is not None and meter_type is not None
    meter = m.Meter(
        meter_code=body.meter_code, meter_info=body.meter_info,
        meter_type_id=body.meter_type_id, commodity_id=body.commodity_id,
        place_id=body.place_id, use_unit_id=body.use_unit_id or commodity.use_rollup_unit_id,
        hidden=meter_type.code == "HIDDEN", is_aggregate=aggregate,
        description=body.meter_description, created_by=who.user_id, created_at=utcnow())
    session.add(meter)
    session.flush()
    return meter


def meter_accounts(session: Session, meter_id: int) -> list[tuple[m.AccountMeter, m.Account]]:
    rows = session.execute(
        select(m.AccountMeter, m.Account).join(m.Account,
                                               m.Account.account_id == m.AccountMeter.account_id)
        .where(m.AccountMeter.meter_id == meter_id).order_by(m.AccountMeter.account_meter_id))
    return [(am, a) for am, a in rows]


# -- accounts ----------------------------------------------------------------------------
def create_account(session: Session, who: EnergyCapPrincipal, body: schemas.AccountCreate
                   ) -> m.Account:
    check = FieldCheck()
    if not _type_ok(session, "account", body.account_type_id):
        check.add("accountTypeId", f"account type {body.account_type_id} does not exist")
    if session.get(m.CostCenter, body.cost_center_id) is None:
        check.add("costCenterId", f"cost center {body.cost_center_id} does not exist")
    if session.get(m.Vendor, body.vendor_id) is None:
        check.add("vendorId", f"vendor {body.vendor_id} does not exist")
    for i, meter_id in enumerate(body.meters or []):
        if not scope.can_see(session, who, m.Meter, meter_id):
            check.add(f"meters[{i}]", f"meter {meter_id} does not exist")
    if session.execute(select(m.Account.account_id).where(
            m.Account.account_code == body.account_code)).first():
        check.add("accountCode", f"an account with code {body.account_code!r} already exists")
    check.raise_any()
    account = m.Account(
        account_code=body.account_code, account_info=body.account_info,
        account_type_id=body.account_type_id, cost_center_id=body.cost_center_id,
        vendor_id=body.vendor_id, active=True if body.active is None else body.active,
        description=body.account_description, created_by=who.user_id, created_at=utcnow())
    session.add(account)
    session.flush()
    for meter_id in dict.fromkeys(body.meters or []):
        link_meter(session, account.account_id, meter_id, None, None)
    return account


def account_meters(session: Session, account_id: int) -> list[tuple[m.AccountMeter, m.Meter]]:
    rows = session.execute(
        select(m.AccountMeter, m.Meter).join(m.Meter, m.Meter.meter_id == m.AccountMeter.meter_id)
        .where(m.AccountMeter.account_id == account_id).order_by(m.AccountMeter.account_meter_id))
    return [(am, mt) for am, mt in rows]


def link_meter(session: Session, account_id: int, meter_id: int, begin: date | None,
               end: date | None) -> m.AccountMeter:
    check = FieldCheck()
    if session.get(m.Account, account_id) is None:
        raise NotFound(f"Account {account_id} was not found")
    if session.get(m.Meter, meter_id) is None:
        check.add("meterId", f"meter {meter_id} does not exist")
    elif session.execute(select(m.AccountMeter.account_meter_id).where(
            m.AccountMeter.account_id == account_id,
            m.AccountMeter.meter_id == meter_id)).first():
        check.add("meterId", f"meter {meter_id} is already on account {account_id}")
    begin, end = begin or date(2000, 1, 1), end or FAR_FUTURE
    if end < begin:
        check.add("endDate", "must not be before beginDate")
    check.raise_any()
    link = m.AccountMeter(account_id=account_id, meter_id=meter_id, begin_date=begin,
                          end_date=end)
    session.add(link)
    session.flush()
    return link


# -- batches -----------------------------------------------------------------------------
def open_batch_of(session: Session, user_id: int) -> m.Batch | None:
    return session.execute(select(m.Batch).where(
        m.Batch.user_id == user_id, m.Batch.status == "Open")).scalars().first()


def open_batch(session: Session, who: EnergyCapPrincipal, body: schemas.BatchCreate) -> m.Batch:
    """Open a batch for the caller; their open batch is closed if ``closeExistingBatch``,
    else the request is refused (one open batch per user)."""
    current = open_batch_of(session, who.user_id)
    if current is not None:
        if not body.close_existing_batch:
            raise field_error("closeExistingBatch",
                              f"user {who.user_code} already has open batch "
                              f"{current.batch_code!r} ({current.batch_id}); set "
                              "closeExistingBatch to close it")
        current.status, current.end_date = "Closed", utcnow()
    batch = m.Batch(
        batch_code=body.batch_code, user_id=who.user_id, status="Open", start_date=utcnow(),
        statement_date=body.statement_date and _aware(body.statement_date),
        due_date=body.due_date and _aware(body.due_date),
        next_reading=body.next_reading and _aware(body.next_reading),
        control_code=body.control_code, invoice_number=body.invoice_number,
        account_period_number=body.account_period_number,
        account_period_year=body.account_period_year, note=body.note)
    session.add(batch)
    session.flush()
    return batch


def batch_for_bills(session: Session, who: EnergyCapPrincipal) -> m.Batch:
    """The caller's open batch, opened when missing (named user code + date, as
    EnergyCAP Online named them)."""
    current = open_batch_of(session, who.user_id)
    if current is not None:
        return current
    code = f"{who.user_code}-{utcnow():%Y%m%d%H%M%S}"
    return open_batch(session, who, schemas.BatchCreate.model_validate({"batchCode": code}))


def set_batch_status(session: Session, who: EnergyCapPrincipal, batch_id: int,
                     body: schemas.UpdateBatchStatus) -> None:
    """Open / Pending / Closed. Pending voids the batch's bills; leaving Pending un-voids
    them. A user keeps at most one open batch."""
    batch = scope.visible(session, who, m.Batch, batch_id, "Batch")
    status = body.batch_status.capitalize()
    if status not in ("Open", "Pending", "Closed"):
        raise field_error("batchStatus", "must be Open, Pending or Closed")
    if status == "Open" and batch.status != "Open":
        other = open_batch_of(session, batch.user_id)
        if other is not None:
            raise field_error("batchStatus", f"the batch's user already has open batch "
                                             f"{other.batch_id}; close it first")
    if status == "Pending" and batch.status != "Pending":
        session.execute(update(m.Bill).where(m.Bill.batch_id == batch_id,
                                             m.Bill.void.is_(False))
                        .values(void=True, held=True, modified_at=utcnow()))
    elif status != "Pending" and batch.status == "Pending":
        session.execute(update(m.Bill).where(m.Bill.batch_id == batch_id, m.Bill.held.is_(True))
                        .values(void=False, held=False, modified_at=utcnow()))
    batch.status = status
    batch.end_date = utcnow() if status == "Closed" else None
    if body.note is not None:
        batch.note = body.note


def batch_counts(session: Session, batch_ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {i: {} for i in batch_ids}
    if not batch_ids:
        return out
    rows = session.execute(
        select(m.Bill.batch_id, func.count(), func.coalesce(func.sum(m.Bill.total_cost_micro), 0),
               func.coalesce(func.sum(cast(m.Bill.analyzing, Integer)), 0))
        .where(m.Bill.batch_id.in_(batch_ids)).group_by(m.Bill.batch_id))
    for batch_id, bills, total, analyzing in rows:
        out[int(batch_id or 0)] = {"bills": bills, "total": int(total), "analyzing": int(analyzing)}
    flags = session.execute(
        select(m.Bill.batch_id, func.count()).join(m.Flag, m.Flag.bill_id == m.Bill.bill_id)
        .where(m.Bill.batch_id.in_(batch_ids), m.Flag.resolved.is_(False))
        .group_by(m.Bill.batch_id))
    for batch_id, count in flags:
        out[int(batch_id or 0)]["flags"] = count
    return out


# -- bills -------------------------------------------------------------------------------
def _aware(value: datetime) -> datetime:
    """A client's date-time without an offset is taken as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def create_bill(session: Session, who: EnergyCapPrincipal, body: schemas.BillCreate) -> m.Bill:
    check = FieldCheck()
    if (why := periods.problem(body.billing_period)) is not None:
        check.add("billingPeriod", why)
    if body.end_date < body.begin_date:
        check.add("endDate", "must not be before beginDate")
    account = session.get(m.Account, body.account_id)
    if account is None or not scope.can_see(session, who, m.Account, body.account_id):
        account = None
        check.add("accountId", f"account {body.account_id} does not exist")
    linked = {mt.meter_id: mt for _, mt in account_meters(session, body.account_id)} \
        if account else {}
    lines: list[m.BillLine] = []
    for i, bm in enumerate(body.meters):
        meter = linked.get(bm.meter_id)
        if meter is None:
            check.add(f"meters[{i}].meterId", f"meter {bm.meter_id} is not on account "
                                              f"{body.account_id}")
        for j, line in enumerate(bm.body_lines):
            where = f"meters[{i}].bodyLines[{j}]"
            lines.append(_line(session, check, where, line.observation_type_id, bm.meter_id,
                               line.caption, line.value, line.value_unit_id or
                               (meter.use_unit_id if meter else None), line.cost))
    for j, aline in enumerate(body.account_body_lines):
        lines.append(_line(session, check, f"accountBodyLines[{j}]", aline.observation_type_id,
                           None, aline.caption, None, None, aline.cost))
    check.raise_any()
    batch = batch_for_bills(session, who)
    now = utcnow()
    bill = m.Bill(
        account_id=body.account_id, batch_id=batch.batch_id, billing_period=body.billing_period,
        account_period=body.account_period, begin_date=body.begin_date.date(),
        end_date=body.end_date.date(), estimated=bool(body.estimated),
        total_cost_micro=sum(line.cost_micro for line in lines),
        statement_date=_aware(body.statement_date) if body.statement_date
        else batch.statement_date,
        due_date=_aware(body.due_date) if body.due_date else batch.due_date,
        next_reading=_aware(body.next_reading) if body.next_reading else batch.next_reading,
        control_code=body.control_code or batch.control_code,
        invoice_number=body.invoice_number or batch.invoice_number, note=body.note,
        created_by=who.user_id, created_at=now, modified_at=now)
    session.add(bill)
    session.flush()
    for bill_line in lines:
        bill_line.bill_id = bill.bill_id
    session.add_all(lines)
    session.flush()
    return bill


def _line(session: Session, check: FieldCheck, where: str, observation_type_id: int,
          meter_id: int | None, caption: str | None, value: Decimal | float | None,
          unit_id: int | None, cost: Decimal | float | None) -> m.BillLine:
    if not _type_ok(session, "observation", observation_type_id):
        check.add(f"{where}.observationTypeId",
                  f"observation type {observation_type_id} does not exist")
    if unit_id is not None and session.get(m.Unit, unit_id) is None:
        check.add(f"{where}.valueUnitId", f"unit {unit_id} does not exist")
    for name, number in (("value", value), ("cost", cost)):
        if (why := amount_problem(number)) is not None:
            check.add(f"{where}.{name}", why)
    if check.fields:  # (the values may not convert)
        return m.BillLine()
    return m.BillLine(meter_id=meter_id, observation_type_id=observation_type_id,
                      caption=caption, value_micro=None if value is None else to_micro(value),
                      unit_id=unit_id if value is not None else None, cost_micro=to_micro(cost))
