"""Response bodies, exactly as the EnergyCAP SDK's models name their fields."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from sheaf.auth.energycap import EnergyCapUser
from sheaf.utility import models as m


def iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return datetime(value.year, value.month, value.day).isoformat()


def micro(value: int | None) -> float | None:
    """A stored millionths value as the SDK's float (JSON number)."""
    return None if value is None else float(Decimal(value) / m.MICRO)


def user_child(session: Session, user_id: int | None) -> dict[str, Any] | None:
    user = session.get(EnergyCapUser, user_id) if user_id is not None else None
    if user is None:
        return None
    return {"userId": user.user_id, "userCode": user.user_code, "fullName": user.full_name}


def unit_child(unit: m.Unit | None) -> dict[str, Any] | None:
    if unit is None:
        return None
    return {"unitId": unit.unit_id, "unitCode": unit.unit_code, "unitInfo": unit.unit_info}


def unit(u: m.Unit) -> dict[str, Any]:
    return {**(unit_child(u) or {}), "unitDisplayName": u.unit_info,
            "unitType": {"unitTypeId": 0, "unitTypeCode": u.dimension.upper(),
                         "unitTypeInfo": u.dimension}}


def commodity_child(c: m.Commodity) -> dict[str, Any]:
    return {"commodityId": c.commodity_id, "commodityCode": c.commodity_code,
            "commodityInfo": c.commodity_info, "commodityIcon": None}


def commodity(session: Session, c: m.Commodity) -> dict[str, Any]:
    return {
        "commodityId": c.commodity_id, "commodityCode": c.commodity_code,
        "commodityInfo": c.commodity_info, "abbreviation": c.abbreviation, "description": None,
        "icon": None, "commodityCategory": {"commodityCategoryId": 0,
                                            "commodityCategoryInfo": c.category},
        "useRollupUnit": unit_child(session.get(m.Unit, c.use_rollup_unit_id)),
        "demandRollupUnit": unit_child(session.get(m.Unit, c.demand_rollup_unit_id))
        if c.demand_rollup_unit_id else None,
        "includeInEnergyReporting": c.category == "Energy",
        "energyReportingUnitConversionMultiplier": None, "inUse": True,
        "isSystemCommodity": True,
    }


def type_child(t: m.TypeCode | None, kind: str) -> dict[str, Any] | None:
    if t is None:
        return None
    child = {f"{kind}TypeId": t.type_id, f"{kind}TypeCode": t.code, f"{kind}TypeInfo": t.info}
    return {**child, "structure": t.code == "BUILDING"} if kind == "place" else child


def place_child(session: Session, p: m.Place | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"placeId": p.place_id, "placeCode": p.place_code, "placeInfo": p.place_info,
            "placeType": type_child(session.get(m.TypeCode, p.place_type_id), "place")}


def place(session: Session, p: m.Place) -> dict[str, Any]:
    parent = session.get(m.Place, p.parent_id) if p.parent_id else None
    return {
        **(place_child(session, p) or {}), "parent": place_child(session, parent),
        "createdDate": iso(p.created_at), "createdBy": user_child(session, p.created_by),
        "modifiedDate": iso(p.created_at), "modifiedBy": user_child(session, p.created_by),
        "size": None if p.floor_area is None else {
            "placeSizeId": p.place_id, "value": float(p.floor_area), "unitCode": "SQFT",
            "unitInfo": "Square feet"},
        "placeDescription": p.description, "energyStarEnabled": False, "places": [],
        "meters": [],
    }


def meter_child(session: Session, meter: m.Meter) -> dict[str, Any]:
    return {
        "meterId": meter.meter_id, "meterCode": meter.meter_code, "meterInfo": meter.meter_info,
        "meterType": type_child(session.get(m.TypeCode, meter.meter_type_id), "meter"),
        "commodity": commodity_child(session.get(m.Commodity, meter.commodity_id)),  # type: ignore[arg-type]
        "active": meter.active, "isCalculatedMeter": meter.is_aggregate,
        "isSplitParentMeter": False, "isSplitChildMeter": False, "serialNumber": None,
    }


def meter(session: Session, meter: m.Meter, accounts: list[tuple[m.AccountMeter, m.Account]]
          ) -> dict[str, Any]:
    return {
        **meter_child(session, meter), "channels": [],
        "accounts": [{**account_child(session, a), "accountMeterId": am.account_meter_id,
                      "startDate": iso(am.begin_date), "endDate": iso(am.end_date)}
                     for am, a in accounts],
        "place": place_child(session, session.get(m.Place, meter.place_id)),
        "address": None, "billEntryNote": None, "includeInEnergyStar": False,
        "createdBy": user_child(session, meter.created_by), "createdDate": iso(meter.created_at),
        "modifiedBy": user_child(session, meter.created_by),
        "modifiedDate": iso(meter.created_at), "properties": {},
        "useUnit": unit_child(session.get(m.Unit, meter.use_unit_id)), "demandUnit": None,
        "meterDescription": meter.description,
    }


def vendor_child(v: m.Vendor | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"vendorId": v.vendor_id, "vendorCode": v.vendor_code, "vendorInfo": v.vendor_info}


def account_child(session: Session, a: m.Account) -> dict[str, Any]:
    return {"accountId": a.account_id, "accountCode": a.account_code,
            "accountInfo": a.account_info,
            "vendor": vendor_child(session.get(m.Vendor, a.vendor_id)), "active": a.active,
            "hasCalculatedMeter": False, "hasSplitParentMeter": False,
            "hasSplitChildMeter": False}


def account(session: Session, a: m.Account, meters: list[tuple[m.AccountMeter, m.Meter]]
            ) -> dict[str, Any]:
    center = session.get(m.CostCenter, a.cost_center_id)
    return {
        **account_child(session, a), "accountMeterId": None,
        "accountType": type_child(session.get(m.TypeCode, a.account_type_id), "account"),
        "costCenter": {"costCenterId": center.cost_center_id,
                       "costCenterCode": center.cost_center_code,
                       "costCenterInfo": center.cost_center_info} if center else None,
        "hasCalculatedMeter": any(mt.is_aggregate for _, mt in meters),
        "meters": [{"accountMeterId": am.account_meter_id, "meterId": mt.meter_id,
                    "meterCode": mt.meter_code, "meterInfo": mt.meter_info,
                    "startDate": iso(am.begin_date), "endDate": iso(am.end_date),
                    "serialNumber": None} for am, mt in meters],
        "createdBy": user_child(session, a.created_by), "createdDate": iso(a.created_at),
        "modifiedBy": user_child(session, a.created_by), "modifiedDate": iso(a.created_at),
        "accountDescription": a.description, "auditEnabled": True,
    }


def batch_child(b: m.Batch | None) -> dict[str, Any] | None:
    return None if b is None else {"batchId": b.batch_id, "batchCode": b.batch_code}


def batch(session: Session, b: m.Batch, counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "batchId": b.batch_id, "batchCode": b.batch_code, "isOpen": b.status == "Open",
        "batchStatus": b.status, "startDate": iso(b.start_date), "endDate": iso(b.end_date),
        "billCount": counts.get("bills", 0), "runningTotal": micro(counts.get("total", 0)),
        "statementDate": iso(b.statement_date), "dueDate": iso(b.due_date),
        "nextReading": iso(b.next_reading), "controlCode": b.control_code,
        "invoiceNumber": b.invoice_number, "accountPeriodName": None,
        "accountPeriodNumber": b.account_period_number,
        "accountPeriodYear": b.account_period_year, "note": b.note,
        "createdBy": user_child(session, b.user_id), "flagCount": counts.get("flags", 0),
        "analyzingCount": counts.get("analyzing", 0), "hasImportedBills": False,
    }


def bill(session: Session, b: m.Bill) -> dict[str, Any]:
    acct = session.get(m.Account, b.account_id)
    return {
        "billId": b.bill_id, "batch": batch_child(session.get(m.Batch, b.batch_id))
        if b.batch_id else None,
        "account": account_child(session, acct) if acct else None,
        "beginDate": iso(b.begin_date), "endDate": iso(b.end_date),
        "billingPeriod": b.billing_period, "accountPeriod": b.account_period,
        "totalCost": micro(b.total_cost_micro), "estimated": b.estimated, "approved": False,
        "exported": False, "statementDate": iso(b.statement_date), "dueDate": iso(b.due_date),
        "nextReading": iso(b.next_reading), "controlCode": b.control_code,
        "invoiceNumber": b.invoice_number, "createdBy": user_child(session, b.created_by),
        "createdDate": iso(b.created_at), "modifiedBy": user_child(session, b.created_by),
        "modifiedDate": iso(b.modified_at), "void": b.void, "dirty": False,
        "importVerified": False, "accrual": b.accrual, "accrualReversed": False,
        "exportHold": False, "glExported": False, "fromVendor": b.task_id is None,
        "hasBeenSplit": False, "billNote": b.note, "reversalDetails": None,
        "excludedFromAccruals": False, "analyzing": b.analyzing,
    }


def version(session: Session, v: m.CalculatedVersion, has_bills: bool) -> dict[str, Any]:
    acct = session.get(m.Account, v.account_id)
    mt = session.get(m.Meter, v.meter_id)
    return {
        "versionId": v.version_id, "versionInfo": v.version_info,
        "chargebackType": "Calculation", "beginPeriod": v.begin_period,
        "endPeriod": v.end_period,
        "account": {**account_child(session, acct),
                    "accountType": type_child(session.get(m.TypeCode, acct.account_type_id),
                                              "account")} if acct else None,
        "meter": meter_child(session, mt) if mt else None, "workflow": None,
        "hasBills": has_bills,
    }


def calculated_details(session: Session, v: m.CalculatedVersion, has_bills: bool,
                       sources: list[m.Meter]) -> dict[str, Any]:
    meters = sources
    sums = [meter_child(session, x) for x in meters if x is not None]
    calculation = {"sum": {"sumMeters": sums, "sumMeterGroups": []},
                   "subtract": {"subtractMeters": [], "subtractMeterGroups": []}}
    return {
        "version": version(session, v, has_bills),
        "use": {"readingsFromChannel": None, "fixedAmount": None, "copyUseFromMeter": None,
                "useCalculation": calculation, "calendarizedUseCalculation": None,
                "readingsFromWatticsDataPoint": None},
        "cost": {"rateSchedule": None, "fixedUnitCost": None, "unitCostFromMeter": None,
                 "fixedAmount": None, "copyCostFromMeter": None,
                 "costCalculation": calculation, "calendarizedCostCalculation": None},
        "demand": None, "meterLineItems": [], "accountLineItems": [],
    }
