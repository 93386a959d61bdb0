"""Aggregate meters: a calculated meter on its own account whose bill for a period is
the sum of its source meters' bills, configured as dated versions.

``upsert`` follows EnergyCAP's ``UpsertAggregateMeterV202203``: without an
``aggregateMeterId`` a new meter, account and version are made; with one, the meter's and
account's names are updated and the version beginning at ``beginPeriod`` is created or
replaced. Versions of one meter never overlap: each ends the month before the next begins.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.orm import Session

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.kit.base import utcnow
from sheaf.utility import models as m
from sheaf.utility import periods, schemas, scope, service
from sheaf.utility.errors import FieldCheck


def upsert(session: Session, who: EnergyCapPrincipal, place_id: int,
           body: schemas.UpsertAggregateMeter) -> m.CalculatedVersion:
    check = FieldCheck()
    if not scope.can_see(session, who, m.Place, place_id):
        check.add("placeId", f"place {place_id} does not exist")
    if (why := periods.problem(body.begin_period)) is not None:
        check.add("beginPeriod", why)
    commodity = session.get(m.Commodity, body.commodity_id)
    if commodity is None:
        check.add("commodityId", f"commodity {body.commodity_id} does not exist")
    # one query for every source meter (session.get below then finds them loaded; the
    # list keeps them in the session's weakly-referencing identity map)
    loaded = session.execute(select(m.Meter).where(  # noqa: F841
        m.Meter.meter_id.in_(body.source_meter_ids))).scalars().all()
    for i, meter_id in enumerate(body.source_meter_ids):
        source = session.get(m.Meter, meter_id)
        where = f"sourceMeterIds[{i}]"
        if source is None:
            check.add(where, f"meter {meter_id} does not exist")
            continue
        if source.commodity_id != body.commodity_id:
            check.add(where, f"meter {meter_id} is of another commodity than "
                             f"{body.commodity_id}")
        if source.place_id != place_id:
            check.add(where, f"meter {meter_id} is not at place {place_id}")
        if source.is_aggregate:
            check.add(where, f"meter {meter_id} is itself an aggregate meter")
    link: m.AccountMeter | None = None
    if body.aggregate_meter_id is not None:
        meter = session.get(m.Meter, body.aggregate_meter_id)
        links = service.meter_accounts(session, body.aggregate_meter_id) if meter else []
        if meter is None or not meter.is_aggregate:
            check.add("aggregateMeterId", f"meter {body.aggregate_meter_id} is not an "
                                          "aggregate meter")
        elif len(links) != 1:
            check.add("aggregateMeterId", f"aggregate meter {body.aggregate_meter_id} is on "
                                          f"{len(links)} accounts, not one")
        else:
            link = links[0][0]
            if meter.commodity_id != body.commodity_id:
                check.add("commodityId", "differs from the aggregate meter's commodity")
            if meter.place_id != place_id:
                check.add("placeId", "differs from the aggregate meter's place")
    check.raise_any()
    if link is None:
        link = _new_aggregate(session, who, place_id, body)
    meter = session.get(m.Meter, link.meter_id)
    account = session.get(m.Account, link.account_id)
    assert meter is not None and account is not None
    meter.meter_info = account.account_info = body.aggregate_meter_info
    version = session.execute(select(m.CalculatedVersion).where(
        m.CalculatedVersion.account_id == link.account_id,
        m.CalculatedVersion.meter_id == link.meter_id,
        m.CalculatedVersion.begin_period == body.begin_period)).scalar_one_or_none()
    if version is None:
        version = m.CalculatedVersion(account_id=link.account_id, meter_id=link.meter_id,
                                      begin_period=body.begin_period, version_info="")
        session.add(version)
    version.version_info = body.aggregate_meter_info
    session.flush()
    session.execute(delete(m.VersionSource).where(
        m.VersionSource.version_id == version.version_id))
    session.execute(insert(m.VersionSource), [
        {"version_id": version.version_id, "meter_id": i}
        for i in dict.fromkeys(body.source_meter_ids)])
    _chain(session, link.account_id, link.meter_id)
    return version


def _new_aggregate(session: Session, who: EnergyCapPrincipal, place_id: int,
                   body: schemas.UpsertAggregateMeter) -> m.AccountMeter:
    stamp = utcnow().strftime("%Y%m%d%H%M%S%f")
    meter = service.create_meter(session, who, schemas.MeterCreate.model_validate({
        "meterCode": f"AGG-{stamp}", "meterInfo": body.aggregate_meter_info,
        "commodityId": body.commodity_id, "placeId": place_id,
        "meterTypeId": service.type_id(session, "meter", "AGGREGATE")}), aggregate=True)
    meter.meter_code = f"AGGREGATE-{meter.meter_id}"
    account = service.create_account(session, who, schemas.AccountCreate.model_validate({
        "accountCode": f"AGG-{stamp}", "accountInfo": body.aggregate_meter_info,
        "accountTypeId": service.type_id(session, "account", "INTERNAL"),
        "costCenterId": _root_cost_center(session), "vendorId": _internal_vendor(session)}))
    account.account_code = f"AGGREGATE-{meter.meter_id}"
    session.flush()
    return service.link_meter(session, account.account_id, meter.meter_id, None, None)


def _root_cost_center(session: Session) -> int:
    return session.execute(select(m.CostCenter.cost_center_id).where(
        m.CostCenter.parent_id.is_(None)).order_by(m.CostCenter.cost_center_id)).scalars().first() \
        or 0


def _internal_vendor(session: Session) -> int:
    return session.execute(select(m.Vendor.vendor_id).where(m.Vendor.internal.is_(True))
                           .order_by(m.Vendor.vendor_id)).scalars().first() or 0


def _chain(session: Session, account_id: int, meter_id: int) -> None:
    """Each version ends the month before the next one begins; the last is open-ended."""
    versions = session.execute(select(m.CalculatedVersion).where(
        m.CalculatedVersion.account_id == account_id,
        m.CalculatedVersion.meter_id == meter_id)
        .order_by(m.CalculatedVersion.begin_period)).scalars().all()
    for current, following in zip(versions, [*versions[1:], None], strict=True):
        current.end_period = (periods.add_months(following.begin_period, -1)
                              if following is not None else None)
    session.flush()


def sources(session: Session, version_id: int) -> list[m.Meter]:
    return list(session.execute(
        select(m.Meter).join(m.VersionSource, m.VersionSource.meter_id == m.Meter.meter_id)
        .where(m.VersionSource.version_id == version_id).order_by(m.Meter.meter_id)).scalars())


def has_bills(session: Session, version_id: int) -> bool:
    return bool(session.execute(select(exists().where(
        m.Bill.version_id == version_id))).scalar())
