"""Reference data the migration seeds: units (with exact conversion factors), commodities,
place / meter / account / observation types, the root place and cost center, vendors.

Plain literals, inserted with Core statements (no ORM), so the migration that seeds them
keeps working whatever the models become. ``seed`` is idempotent: it inserts what is
missing, so a test that empties the tables can call it again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, column, func, insert, select, table

# code, name, dimension, factor in the dimension's base unit (J, m3, W, USD, ft2).
# Every factor is exact: the BTU is the International Table BTU, 1055.05585262 J.
UNITS = [
    ("kWh", "Kilowatt-hours", "energy", "3600000"),
    ("MWh", "Megawatt-hours", "energy", "3600000000"),
    ("Wh", "Watt-hours", "energy", "3600"),
    ("BTU", "British thermal units", "energy", "1055.05585262"),
    ("kBTU", "Thousand BTU", "energy", "1055055.85262"),
    ("MMBTU", "Million BTU", "energy", "1055055852.62"),
    ("THERM", "Therms", "energy", "105505585.262"),
    ("DTH", "Dekatherms", "energy", "1055055852.62"),
    ("GJ", "Gigajoules", "energy", "1000000000"),
    ("TONHR", "Ton-hours", "energy", "12660670.23144"),
    ("M3", "Cubic meters", "volume", "1"),
    ("L", "Liters", "volume", "0.001"),
    ("GAL", "Gallons", "volume", "0.003785411784"),
    ("kGAL", "Thousand gallons", "volume", "3.785411784"),
    ("CF", "Cubic feet", "volume", "0.028316846592"),
    ("CCF", "Hundred cubic feet", "volume", "2.8316846592"),
    ("MCF", "Thousand cubic feet", "volume", "28.316846592"),
    ("kW", "Kilowatts", "demand", "1000"),
    ("MW", "Megawatts", "demand", "1000000"),
    ("USD", "US dollars", "currency", "1"),
    ("SQFT", "Square feet", "area", "1"),
]

# code, name, abbreviation, category, use rollup unit, demand rollup unit
COMMODITIES = [
    ("ELECTRIC", "Electric", "Elec", "Energy", "kWh", "kW"),
    ("NATURALGAS", "Natural Gas", "NGas", "Energy", "THERM", None),
    ("WATER", "Water", "Water", "Water", "kGAL", None),
    ("SEWER", "Sewer", "Sewer", "Water", "kGAL", None),
    ("STEAM", "Steam", "Steam", "Energy", "MMBTU", None),
    ("CHILLEDWATER", "Chilled Water", "ChW", "Energy", "TONHR", None),
    ("FUELOIL2", "Fuel Oil #2", "FO2", "Energy", "GAL", None),
]

# kind, code, name
TYPES = [
    ("place", "ORGANIZATION", "Organization"),
    ("place", "BUILDING", "Building"),
    ("place", "CAMPUS", "Campus"),
    ("place", "SITE", "Site"),
    ("meter", "STANDARD", "Standard"),
    ("meter", "HIDDEN", "Hidden"),
    ("meter", "AGGREGATE", "Aggregate"),
    ("account", "STANDARD", "Standard"),
    ("account", "INTERNAL", "Internal"),
    ("observation", "USE", "Use"),
    ("observation", "DEMAND", "Demand"),
    ("observation", "CHARGE", "Other charge"),
]

ROOT_PLACE = ("ROOT", "Organization")
ROOT_COST_CENTER = ("ROOT", "Organization")
# code, name, internal: chargeback accounts belong to the internal vendor; imported
# accounts to the utility's own.
VENDORS = [("INTERNAL", "Internal vendor", True), ("UTILITY", "Utility", False)]

_unit = table("utility_unit", column("unit_id"), column("unit_code"), column("unit_info"),
              column("dimension"), column("factor"))
_commodity = table("utility_commodity", column("commodity_code"), column("commodity_info"),
                   column("abbreviation"), column("category"), column("use_rollup_unit_id"),
                   column("demand_rollup_unit_id"))
_type = table("utility_type", column("type_id"), column("kind"), column("code"), column("info"))
_place = table("utility_place", column("place_code"), column("place_info"), column("parent_id"),
               column("place_type_id"), column("created_at"))
_cost_center = table("utility_cost_center", column("cost_center_code"),
                     column("cost_center_info"), column("parent_id"))
_vendor = table("utility_vendor", column("vendor_code"), column("vendor_info"),
                column("internal"))


def seed(conn: Connection) -> None:
    """Insert whatever reference row is missing."""
    have = set(conn.execute(select(_unit.c.unit_code)).scalars())
    rows: list[dict[str, Any]] = [{"unit_code": c, "unit_info": n, "dimension": d, "factor": f}
            for c, n, d, f in UNITS if c not in have]
    if rows:
        conn.execute(insert(_unit), rows)
    units = dict(conn.execute(select(_unit.c.unit_code, _unit.c.unit_id)).all())
    have = set(conn.execute(select(_commodity.c.commodity_code)).scalars())
    rows = [{"commodity_code": c, "commodity_info": n, "abbreviation": a, "category": cat,
             "use_rollup_unit_id": units[u], "demand_rollup_unit_id": units.get(dm or "")}
            for c, n, a, cat, u, dm in COMMODITIES if c not in have]
    if rows:
        conn.execute(insert(_commodity), rows)
    have_types = set(conn.execute(select(_type.c.kind, _type.c.code)).all())
    rows = [{"kind": k, "code": c, "info": n} for k, c, n in TYPES if (k, c) not in have_types]
    if rows:
        conn.execute(insert(_type), rows)
    organization = conn.execute(select(_type.c.type_id).where(
        _type.c.kind == "place", _type.c.code == "ORGANIZATION")).scalar_one()
    if conn.execute(select(func.count()).select_from(_place).where(
            _place.c.place_code == ROOT_PLACE[0])).scalar_one() == 0:
        conn.execute(insert(_place).values(
            place_code=ROOT_PLACE[0], place_info=ROOT_PLACE[1], parent_id=None,
            place_type_id=organization, created_at=func.current_timestamp()))
    if conn.execute(select(func.count()).select_from(_cost_center).where(
            _cost_center.c.cost_center_code == ROOT_COST_CENTER[0])).scalar_one() == 0:
        conn.execute(insert(_cost_center).values(
            cost_center_code=ROOT_COST_CENTER[0], cost_center_info=ROOT_COST_CENTER[1]))
    have = set(conn.execute(select(_vendor.c.vendor_code)).scalars())
    rows = [{"vendor_code": c, "vendor_info": n, "internal": i} for c, n, i in VENDORS
            if c not in have]
    if rows:
        conn.execute(insert(_vendor), rows)

