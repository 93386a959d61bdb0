"""Fixtures for the EnergyCAP dialect: API keys, reference ids, a small campus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sheaf.auth.energycap import create_key
from sheaf.runtime import Runtime


@pytest.fixture
def make_key(runtime: Runtime) -> Callable[..., dict[str, str]]:
    def make(user: str = "admin", *permissions: str) -> dict[str, str]:
        with runtime.db.write() as session:
            _, _, key = create_key(session, f"key-{user}", user, list(permissions))
        return {"ECI-ApiKey": key}

    return make


@pytest.fixture
def ec(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Headers of an administrator's key."""
    return make_key("admin")


class Api:
    """Small helpers over the EnergyCAP endpoints, asserting success."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers, **kw)
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json() if response.content and expect != 204 else None

    def ref(self, path: str, key: str, code_key: str, code: str) -> int:
        rows = self.call("GET", path)
        return int(next(r[key] for r in rows if r[code_key] == code))

    def unit(self, code: str) -> int:
        return self.ref("/api/v3/unit", "unitId", "unitCode", code)

    def commodity(self, code: str) -> int:
        return self.ref("/api/v3/commodity", "commodityId", "commodityCode", code)

    def type_id(self, kind: str, code: str) -> int:
        return self.ref(f"/api/v3/{kind}Type", f"{kind}TypeId", f"{kind}TypeCode", code)

    def place(self, code: str, parent: int | None = None) -> int:
        root = parent or self.call("GET", "/api/v3/place",
                                   params={"filter": "placeCode equals 'ROOT'"})[0]["placeId"]
        body = {"placeCode": code, "placeInfo": code, "parentPlaceId": root,
                "placeTypeId": self.type_id("place", "BUILDING")}
        return int(self.call("POST", "/api/v3/place", json=body)["placeId"])

    def meter(self, code: str, place: int, commodity: str = "ELECTRIC",
              unit: str | None = None, hidden: bool = True) -> int:
        body = {"meterCode": code, "meterInfo": code, "commodityId": self.commodity(commodity),
                "placeId": place, "address": {"country": "US"},
                "meterTypeId": self.type_id("meter", "HIDDEN" if hidden else "STANDARD")}
        if unit:
            body["useUnitId"] = self.unit(unit)
        return int(self.call("POST", "/api/v3/meter", json=body)["meterId"])

    def account(self, code: str, meters: list[int]) -> int:
        body = {"accountCode": code, "accountInfo": code,
                "accountTypeId": self.type_id("account", "STANDARD"),
                "costCenterId": self.call("GET", "/api/v3/costCenter")[0]["costCenterId"],
                "vendorId": self.ref("/api/v3/vendor", "vendorId", "vendorCode", "UTILITY"),
                "country": "US"}
        account = int(self.call("POST", "/api/v3/account", json=body)["accountId"])
        if meters:
            self.call("POST", "/api/v3/accountmeter",
                      json=[{"accountId": account, "meterId": m, "rateId": 1} for m in meters])
        return account

    def bill(self, account: int, meter: int, period: int, use: Any, cost: Any,
             unit: str | None = None) -> int:
        year, month = divmod(period, 100)
        line: dict[str, Any] = {"observationTypeId": self.type_id("observation", "USE"),
                                "value": use, "cost": cost, "caption": "Use"}
        if unit:
            line["valueUnitId"] = self.unit(unit)
        body = {"accountId": account, "billingPeriod": period, "manualEntry": True,
                "beginDate": f"{year}-{month:02d}-01T00:00:00",
                "endDate": f"{year}-{month:02d}-28T00:00:00",
                "meters": [{"meterId": meter, "bodyLines": [line]}]}
        return int(self.call("POST", "/api/v3/bill", json=body)["billId"])


@pytest.fixture
def api(client: TestClient, ec: dict[str, str]) -> Api:
    return Api(client, ec)


@pytest.fixture
def campus(api: Api) -> dict[str, Any]:
    """A building with two hidden electric meters on one account, and an aggregate."""
    place = api.place("HALL")
    m1 = api.meter("E1", place)
    m2 = api.meter("E2", place, unit="MWh")
    account = api.account("UTIL-1", [m1, m2])
    details = api.call("PUT", f"/api/v202203/utilityPlatform/place/{place}/aggregateMeter",
                       json={"beginPeriod": 202401, "sourceMeterIds": [m1, m2],
                             "commodityId": api.commodity("ELECTRIC"),
                             "aggregateMeterInfo": "Hall total"})
    version = details["version"]
    return {"place": place, "m1": m1, "m2": m2, "account": account, "version": version,
            "agg_account": version["account"]["accountId"],
            "agg_meter": version["meter"]["meterId"]}


def aggregate_bills(api: Api, account: int, void: bool | None = False) -> list[dict[str, Any]]:
    f = f"accountId equals '{account}'" + ("" if void is None else f" and void equals '{void}'")
    return list(api.call("GET", "/api/v3/bill", params={"filter": f}))
