"""The demo campus: buildings, hidden meters, accounts, a year of bills (through the bulk
import) and two aggregate meters."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.runtime import Runtime
from sheaf.utility import aggregates, bill_import, periods, schemas
from sheaf.utility import models as m

# building, commodity, unit, meters (code, base monthly use), monthly cost per unit of use
BUILDINGS = [
    ("SCIENCE-HALL", "ELECTRIC", "kWh", [("SCI-E1", 42_000), ("SCI-E2", 18_500),
                                         ("SCI-E3", 7_250)], Decimal("0.1125")),
    ("LIBRARY", "NATURALGAS", "THERM", [("LIB-G1", 1_900), ("LIB-G2", 640)], Decimal("0.97")),
]
SEASON = [Decimal(x) for x in ("1.18", "1.12", "1.0", "0.9", "0.86", "0.95", "1.1", "1.14",
                               "1.0", "0.92", "0.97", "1.08")]


def campus_csv(last_period: int) -> bytes:
    """Twelve months of bills ending with ``last_period``, one row per meter bill."""
    rows = ["place_code,commodity_code,account_code,meter_code,billing_period,begin_date,"
            "end_date,use,use_unit,cost"]
    for place, commodity, unit, meters, rate in BUILDINGS:
        for code, base in meters:
            for period in periods.span(last_period, 12):
                begin = periods.first_day(period)
                end = periods.first_day(periods.add_months(period, 1))
                use = (Decimal(base) * SEASON[begin.month - 1]).quantize(Decimal("0.01"))
                cost = (use * rate).quantize(Decimal("0.01"))
                rows.append(f"{place},{commodity},{place}-UTIL,{code},{period},{begin},{end},"
                            f"{use},{unit},{cost}")
    return ("\n".join(rows) + "\n").encode()


def build(rt: Runtime, who: EnergyCapPrincipal, last_period: int) -> bool:
    """Create the campus unless it exists; True if it was created."""
    with rt.db.read() as session:
        exists = session.execute(select(m.Place.place_id).where(
            m.Place.place_code == BUILDINGS[0][0])).first()
    if exists:
        return False
    bill_import.import_bills(rt.db, campus_csv(last_period), who.user_id)
    with rt.db.write() as session:
        for place_code, _, _, meters, _ in BUILDINGS:
            place = session.execute(select(m.Place).where(
                m.Place.place_code == place_code)).scalar_one()
            sources = session.execute(select(m.Meter).where(
                m.Meter.meter_code.in_([code for code, _ in meters]))
                .order_by(m.Meter.meter_id)).scalars().all()
            aggregates.upsert(session, who, place.place_id,
                              schemas.UpsertAggregateMeter.model_validate({
                                  "beginPeriod": periods.span(last_period, 12)[0],
                                  "sourceMeterIds": [s.meter_id for s in sources],
                                  "commodityId": sources[0].commodity_id,
                                  "aggregateMeterInfo": f"{place_code} total"}))
    return True
