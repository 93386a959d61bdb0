"""Reference data the migration seeds: commodities and units."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from sheaf.errors import NotFound
from sheaf.runtime import Runtime, get_runtime
from sheaf.utility import models as m
from sheaf.utility import wire
from sheaf.utility.api.deps import IdPath, caller

router = APIRouter(tags=["EnergyCAP reference data"], dependencies=[Depends(caller)])


@router.get("/api/v3/commodity")
@router.get("/api/v202304/commodity")
def get_commodities(runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Every commodity with its use rollup unit."""
    with runtime.db.read() as session:
        rows = session.execute(select(m.Commodity).order_by(m.Commodity.commodity_id)).scalars()
        return [wire.commodity(session, c) for c in rows]


@router.get("/api/v3/commodity/{commodityId}")
@router.get("/api/v202304/commodity/{commodityId}")
def get_commodity(commodityId: IdPath, runtime: Runtime = Depends(get_runtime)  # noqa: N803
                  ) -> dict[str, Any]:
    """One commodity."""
    with runtime.db.read() as session:
        c = session.get(m.Commodity, commodityId)
        if c is None:
            raise NotFound(f"Commodity {commodityId} was not found")
        return wire.commodity(session, c)


@router.get("/api/v3/unit")
@router.get("/api/v202305/unit")
def get_units(runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Every unit. Units of one type convert exactly (the factors are exact decimals)."""
    with runtime.db.read() as session:
        return [wire.unit(u) for u in
                session.execute(select(m.Unit).order_by(m.Unit.unit_id)).scalars()]


# the SDK's own spellings of some of these paths (EnergyCAP's routes ignore case)
SDK_PATHS = {"place": "/api/v3/place/placetype", "observation": "/api/v3/observationtype"}


def _types_endpoint(kind: str) -> None:
    def list_types(runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
        with runtime.db.read() as session:
            rows = session.execute(select(m.TypeCode).where(m.TypeCode.kind == kind)
                                   .order_by(m.TypeCode.type_id)).scalars()
            return [wire.type_child(t, kind) or {} for t in rows]

    list_types.__doc__ = f"Every {kind} type (seeded)."
    router.add_api_route(f"/api/v3/{kind}Type", list_types, methods=["GET"],
                         name=f"get_{kind}_types")
    if kind in SDK_PATHS:
        router.add_api_route(SDK_PATHS[kind], list_types, methods=["GET"],
                             name=f"get_{kind}_types_sdk")


for _kind in ("place", "meter", "account", "observation"):
    _types_endpoint(_kind)


@router.get("/api/v3/costCenter")
@router.get("/api/v3/costcenter")
def get_cost_centers(runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Cost centers (the root one is seeded)."""
    with runtime.db.read() as session:
        return [{"costCenterId": c.cost_center_id, "costCenterCode": c.cost_center_code,
                 "costCenterInfo": c.cost_center_info}
                for c in session.execute(select(m.CostCenter)
                                         .order_by(m.CostCenter.cost_center_id)).scalars()]


@router.get("/api/v3/vendor")
def get_vendors(runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Vendors (the internal vendor and the utility are seeded)."""
    with runtime.db.read() as session:
        return [wire.vendor_child(v) or {}
                for v in session.execute(select(m.Vendor).order_by(m.Vendor.vendor_id)).scalars()]
