"""Places, meters, accounts and account-meter links: what the SDK's create_place,
create_meter, create_account and create_account_meter call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.runtime import Runtime, get_runtime
from sheaf.utility import models as m
from sheaf.utility import schemas, scope, service, wire
from sheaf.utility.api.deps import (
    IdPath,
    Paging,
    accounts_create,
    accounts_edit,
    accounts_view,
    meters_create,
    meters_view,
    places_create,
    places_view,
)
from sheaf.utility.api.filters import FilterField, boolean, integer, parse
from sheaf.utility.errors import FieldCheck

router = APIRouter(tags=["EnergyCAP places, meters, accounts"])

PLACE_FILTERS = {"placeCode": FilterField(m.Place.place_code),
                 "placeInfo": FilterField(m.Place.place_info),
                 "placeId": FilterField(m.Place.place_id, integer),
                 "parentPlaceId": FilterField(m.Place.parent_id, integer)}
METER_FILTERS = {"meterCode": FilterField(m.Meter.meter_code),
                 "meterInfo": FilterField(m.Meter.meter_info),
                 "meterId": FilterField(m.Meter.meter_id, integer),
                 "placeId": FilterField(m.Meter.place_id, integer),
                 "commodityId": FilterField(m.Meter.commodity_id, integer),
                 "isCalculatedMeter": FilterField(m.Meter.is_aggregate, boolean)}
ACCOUNT_FILTERS = {"accountCode": FilterField(m.Account.account_code),
                   "accountInfo": FilterField(m.Account.account_info),
                   "accountId": FilterField(m.Account.account_id, integer)}


def _page(runtime: Runtime, model: Any, key: Any, conditions: list[Any], paging: Paging,
          response: Response, render: Any) -> list[dict[str, Any]]:
    with runtime.db.read() as session:
        rows = paging.rows(session, response, model, key, conditions)
        return [render(session, row) for row in rows]


# -- places ------------------------------------------------------------------------------
@router.post("/api/v3/place")
def create_place(body: schemas.PlaceCreate, runtime: Runtime = Depends(get_runtime),
                 who: EnergyCapPrincipal = Depends(places_create)
                 ) -> dict[str, Any]:
    """Create a place (building, site, ...) under a parent place."""
    with runtime.db.write() as session:
        return wire.place(session, service.create_place(session, who, body))


@router.get("/api/v3/place")
def get_places(response: Response, paging: Paging = Depends(),
               filter: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
               who: EnergyCapPrincipal = Depends(places_view)) -> list[dict[str, Any]]:
    """Places, paged, with EnergyCAP's filter syntax."""
    return _page(runtime, m.Place, m.Place.place_id,
                 [*parse(filter, PLACE_FILTERS), scope.places(who)], paging, response,
                 wire.place)


@router.get("/api/v3/place/{placeId}")
def get_place(placeId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
              who: EnergyCapPrincipal = Depends(places_view)) -> dict[str, Any]:
    """One place."""
    with runtime.db.read() as session:
        return wire.place(session, scope.visible(session, who, m.Place, placeId, "Place"))


# -- meters ------------------------------------------------------------------------------
def _meter(session: Any, meter: m.Meter) -> dict[str, Any]:
    return wire.meter(session, meter, service.meter_accounts(session, meter.meter_id))


@router.post("/api/v3/meter")
def create_meter(body: schemas.MeterCreate, runtime: Runtime = Depends(get_runtime),
                 who: EnergyCapPrincipal = Depends(meters_create)
                 ) -> dict[str, Any]:
    """Create a meter at a place (a Hidden meter type makes a hidden meter)."""
    with runtime.db.write() as session:
        return _meter(session, service.create_meter(session, who, body))


@router.get("/api/v3/meter")
def get_meters(response: Response, paging: Paging = Depends(),
               filter: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
               who: EnergyCapPrincipal = Depends(meters_view)) -> list[dict[str, Any]]:
    """Meters, paged, with EnergyCAP's filter syntax."""
    return _page(runtime, m.Meter, m.Meter.meter_id,
                 [*parse(filter, METER_FILTERS), scope.meters(who)], paging, response, _meter)


@router.get("/api/v3/meter/{meterId}")
def get_meter(meterId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
              who: EnergyCapPrincipal = Depends(meters_view)) -> dict[str, Any]:
    """One meter with its accounts."""
    with runtime.db.read() as session:
        return _meter(session, scope.visible(session, who, m.Meter, meterId, "Meter"))


# -- accounts ----------------------------------------------------------------------------
def _account(session: Any, account: m.Account) -> dict[str, Any]:
    return wire.account(session, account, service.account_meters(session, account.account_id))


@router.post("/api/v3/account")
def create_account(body: schemas.AccountCreate, runtime: Runtime = Depends(get_runtime),
                   who: EnergyCapPrincipal = Depends(accounts_create)
                   ) -> dict[str, Any]:
    """Create an account (its meters, if listed, are linked from today on)."""
    with runtime.db.write() as session:
        return _account(session, service.create_account(session, who, body))


@router.get("/api/v3/account")
def get_accounts(response: Response, paging: Paging = Depends(),
                 filter: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
                 who: EnergyCapPrincipal = Depends(accounts_view)
                 ) -> list[dict[str, Any]]:
    """Accounts, paged, with EnergyCAP's filter syntax."""
    return _page(runtime, m.Account, m.Account.account_id,
                 [*parse(filter, ACCOUNT_FILTERS), scope.accounts(who)], paging, response,
                 _account)


@router.get("/api/v3/account/{accountId}")
def get_account(accountId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
                who: EnergyCapPrincipal = Depends(accounts_view)) -> dict[str, Any]:
    """One account with its meters."""
    with runtime.db.read() as session:
        return _account(session, scope.visible(session, who, m.Account, accountId, "Account"))


@router.post("/api/v3/accountmeter")
def create_account_meter(body: list[schemas.AccountMeterCreate],
                         runtime: Runtime = Depends(get_runtime),
                         who: EnergyCapPrincipal = Depends(accounts_edit)
                         ) -> list[dict[str, Any]]:
    """Link meters to accounts (all or none)."""
    out = []
    with runtime.db.write() as session:
        check = FieldCheck()
        for i, link in enumerate(body):
            if not scope.can_see(session, who, m.Account, link.account_id):
                check.add(f"[{i}].accountId", f"account {link.account_id} does not exist")
            if not scope.can_see(session, who, m.Meter, link.meter_id):
                check.add(f"[{i}].meterId", f"meter {link.meter_id} does not exist")
        check.raise_any()
        for link in body:
            am = service.link_meter(session, link.account_id, link.meter_id,
                                    link.begin_date.date() if link.begin_date else None,
                                    link.end_date.date() if link.end_date else None)
            account = session.get(m.Account, am.account_id)
            meter = session.get(m.Meter, am.meter_id)
            assert account is not None and meter is not None
            out.append({"accountMeterId": am.account_meter_id,
                        "account": wire.account_child(session, account),
                        "meter": wire.meter_child(session, meter),
                        "beginDate": wire.iso(am.begin_date), "endDate": wire.iso(am.end_date),
                        "generalLedger": None, "vendorType": None, "deregulated": False,
                        "formTemplates": [], "rates": []})
    return out
