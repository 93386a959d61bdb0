"""Access is scoped: a user limited to a place's subtree never sees, changes or aggregates
another's places, meters, accounts, bills, batches or tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from sheaf.auth.energycap import create_key
from sheaf.runtime import Runtime
from sheaf.utility import models as m
from tests.utility.conftest import Api

EXEC = "/api/v202203/utilityPlatform/aggregations/exec"


def scoped(client: TestClient, runtime: Runtime, user: str, place_code: str) -> Api:
    with runtime.db.write() as session:
        place = session.execute(select(m.Place.place_id).where(
            m.Place.place_code == place_code)).scalar_one()
        _, _, key = create_key(session, f"key-{user}", user, [], place)
    return Api(client, {"ECI-ApiKey": key})


def building(api: Api, code: str) -> dict[str, Any]:
    place = api.place(code)
    meters = [api.meter(f"{code}-M{i}", place) for i in range(2)]
    account = api.account(f"{code}-A", meters)
    for meter in meters:
        api.bill(account, meter, 202405, 10, 2)
    version = api.call("PUT", f"/api/v202203/utilityPlatform/place/{place}/aggregateMeter",
                       json={"beginPeriod": 202401, "sourceMeterIds": meters,
                             "commodityId": api.commodity("ELECTRIC"),
                             "aggregateMeterInfo": code})["version"]
    return {"place": place, "meters": meters, "account": account, "version": version}


def test_users_see_only_their_subtree(api: Api, client: TestClient, runtime: Runtime,
                                      make_key: Callable[..., dict[str, str]]) -> None:
    a, b = building(api, "EAST"), building(api, "WEST")
    east, west = scoped(client, runtime, "east", "EAST"), scoped(client, runtime, "west", "WEST")
    # lists
    assert [p["placeCode"] for p in east.call("GET", "/api/v3/place")] == ["EAST"]
    assert {x["meterCode"] for x in east.call("GET", "/api/v3/meter")} == {
        "EAST-M0", "EAST-M1", f"AGGREGATE-{a['version']['meter']['meterId']}"}
    assert "WEST-A" not in {x["accountCode"] for x in east.call("GET", "/api/v3/account")}
    assert {x["account"]["accountCode"] for x in east.call("GET", "/api/v3/bill")} == {"EAST-A"}
    # direct reads of the other's rows are 404s
    east.call("GET", f"/api/v3/place/{b['place']}", expect=404)
    east.call("GET", f"/api/v3/meter/{b['meters'][0]}", expect=404)
    east.call("GET", f"/api/v3/account/{b['account']}", expect=404)
    west_bill = west.call("GET", "/api/v3/bill")[0]["billId"]
    east.call("GET", f"/api/v3/bill/{west_bill}", expect=404)
    east.call("GET", f"/api/v3/meter/{b['version']['meter']['meterId']}/calculatedBill",
              expect=404)
    # and writing under them is refused, naming the field
    out = east.call("POST", "/api/v3/meter", expect=400, json={
        "meterCode": "SNEAK", "meterInfo": "x", "commodityId": api.commodity("ELECTRIC"),
        "placeId": b["place"], "meterTypeId": api.type_id("meter", "HIDDEN")})
    assert [e["field"] for e in out["errors"]] == ["placeId"]
    out = east.call("PUT", f"/api/v202203/utilityPlatform/place/{b['place']}/aggregateMeter",
                    expect=400, json={"beginPeriod": 202401, "sourceMeterIds": b["meters"],
                                      "commodityId": api.commodity("ELECTRIC"),
                                      "aggregateMeterInfo": "x"})
    assert "placeId" in [e["field"] for e in out["errors"]]
    out = east.call("POST", "/api/v3/accountmeter", expect=400,
                    json=[{"accountId": a["account"], "meterId": b["meters"][0]}])
    assert [e["field"] for e in out["errors"]] == ["[0].meterId"]
    east.call("POST", "/api/v202203/utilityPlatform/billImport", expect=401,
              files={"file": ("b.csv", b"x", "text/csv")})

    # an aggregation by east covers east's aggregate meter only
    task = east.call("POST", EXEC, json={"billingPeriod": 202405})
    assert east.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")[
        "numberOfBillsCreated"] == 1
    assert api.call("GET", "/api/v3/bill", params={
        "filter": f"accountId equals '{b['version']['account']['accountId']}'"}) == []
    # west neither sees nor reverses east's task, nor its batch
    west.call("GET", f"/api/v3/chargebackTask/{task['taskId']}", expect=404)
    west.call("POST", f"/api/v3/chargebackTask/{task['taskId']}/void", expect=404)
    assert west.call("GET", "/api/v3/chargebackTask") == []
    west.call("GET", f"/api/v3/batch/{task['batch']['batchId']}", expect=404)
    assert west.call("GET", "/api/v3/batch") == []
    # the administrator sees everything
    assert len(api.call("GET", "/api/v3/chargebackTask")) == 1
    assert {p["placeCode"] for p in api.call("GET", "/api/v3/place")} == {"ROOT", "EAST",
                                                                           "WEST"}
