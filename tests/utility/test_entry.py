"""Reference data, places, meters, accounts, links, bills and batches over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.utility.conftest import Api


def test_reference_data_is_seeded(api: Api) -> None:
    commodities = {c["commodityCode"]: c for c in api.call("GET", "/api/v3/commodity")}
    assert {"ELECTRIC", "NATURALGAS", "WATER"} <= set(commodities)
    assert commodities["ELECTRIC"]["useRollupUnit"]["unitCode"] == "kWh"
    assert api.call("GET", "/api/v202304/commodity") == list(commodities.values())
    units = {u["unitCode"] for u in api.call("GET", "/api/v202305/unit")}
    assert {"kWh", "MWh", "THERM", "GAL", "CCF"} <= units
    root = api.call("GET", "/api/v3/place", params={"filter": "placeCode equals 'ROOT'"})
    assert len(root) == 1 and root[0]["parent"] is None
    assert [v["vendorCode"] for v in api.call("GET", "/api/v3/vendor")] == ["INTERNAL",
                                                                            "UTILITY"]
    assert {t["meterTypeCode"] for t in api.call("GET", "/api/v3/meterType")} >= {
        "HIDDEN", "AGGREGATE"}


def test_data_entry_round_trip(api: Api, client: TestClient) -> None:
    place = api.place("HALL")
    meter = api.meter("M1", place)
    account = api.account("A1", [meter])
    got = api.call("GET", f"/api/v3/account/{account}")
    assert [m["meterId"] for m in got["meters"]] == [meter]
    assert api.call("GET", f"/api/v3/meter/{meter}")["accounts"][0]["accountId"] == account
    bill = api.bill(account, meter, 202401, "1234.5", "99.99")
    body = api.call("GET", f"/api/v3/bill/{bill}")
    assert body["totalCost"] == 99.99 and body["billingPeriod"] == 202401
    assert body["batch"]["batchCode"].startswith("admin-")
    response = client.get("/api/v3/bill", headers=api.headers,
                          params={"filter": f"accountId equals '{account}'", "pageSize": 1})
    assert response.status_code == 200
    assert response.headers["TotalNumberOfRecords"] == "1"
    assert response.headers["PageSize"] == "1" and response.headers["TotalPages"] == "1"


def test_paging_headers_and_cap(api: Api, client: TestClient) -> None:
    place = api.place("P")
    for i in range(3):
        api.meter(f"M{i}", place)
    response = client.get("/api/v3/meter", headers=api.headers,
                          params={"pageSize": 2, "pageNumber": 2})
    assert [m["meterCode"] for m in response.json()] == ["M2"]
    assert response.headers["TotalNumberOfRecords"] == "3"
    assert response.headers["TotalPages"] == "2" and response.headers["PageNumber"] == "2"
    capped = client.get("/api/v3/meter", headers=api.headers, params={"pageSize": 5000})
    assert capped.headers["PageSize"] == "1000"


def test_filter_operators(api: Api) -> None:
    place = api.place("F")
    for code in ("ALPHA", "BETA", "GAMMA"):
        api.meter(code, place)
    def codes(f: str) -> list[str]:
        return [m["meterCode"] for m in api.call("GET", "/api/v3/meter", params={"filter": f})]
    assert codes("meterCode one of 'ALPHA'|'GAMMA'") == ["ALPHA", "GAMMA"]
    assert codes(f"meterCode like 'ET' and placeId equals '{place}'") == ["BETA"]
    assert codes("meterCode not equals 'BETA'") == ["ALPHA", "GAMMA"]
    bad = api.call("GET", "/api/v3/meter", expect=400, params={"filter": "meterCode is 'x'"})
    assert bad["errors"][0]["field"] == "filter"
    bad = api.call("GET", "/api/v3/meter", expect=400, params={"filter": "nope equals 'x'"})
    assert "unknown filter field" in bad["errors"][0]["message"]


def test_bad_input_names_every_field(api: Api) -> None:
    body = {"placeCode": "x" * 33, "placeInfo": 5, "parentPlaceId": "abc"}
    out = api.call("POST", "/api/v3/place", expect=400, json=body)
    fields = {e["field"] for e in out["errors"]}
    assert {"placeCode", "placeInfo", "parentPlaceId", "placeTypeId"} <= fields
    out = api.call("POST", "/api/v3/place", expect=400, json={
        "placeCode": "OK", "placeInfo": "OK", "parentPlaceId": 999, "placeTypeId": 999})
    assert {e["field"] for e in out["errors"]} == {"parentPlaceId", "placeTypeId"}
    assert api.call("GET", "/api/v3/place", params={"filter": "placeCode equals 'OK'"}) == []


def test_bill_validation(api: Api) -> None:
    place = api.place("B")
    meter = api.meter("BM", place)
    other = api.meter("OTHER", place)
    account = api.account("BA", [meter])
    body = {"accountId": account, "billingPeriod": 202413, "manualEntry": True,
            "beginDate": "2024-02-01T00:00:00", "endDate": "2024-01-01T00:00:00",
            "meters": [{"meterId": other, "bodyLines": [
                {"observationTypeId": 999, "value": "1.0000001", "caption": "x"}]}]}
    out = api.call("POST", "/api/v3/bill", expect=400, json=body)
    assert {e["field"] for e in out["errors"]} == {
        "billingPeriod", "endDate", "meters[0].meterId", "meters[0].bodyLines[0].observationTypeId",
        "meters[0].bodyLines[0].value"}
    assert api.call("GET", "/api/v3/bill") == []


def test_batches_one_open_per_user_and_pending_voids(api: Api) -> None:
    place = api.place("C")
    meter = api.meter("CM", place)
    account = api.account("CA", [meter])
    first = api.call("POST", "/api/v3/batch", json={"batchCode": "B1"})
    assert first["batchStatus"] == "Open" and first["isOpen"]
    refused = api.call("POST", "/api/v3/batch", expect=400, json={"batchCode": "B2"})
    assert refused["errors"][0]["field"] == "closeExistingBatch"
    second = api.call("POST", "/api/v3/batch",
                      json={"batchCode": "B2", "closeExistingBatch": True})
    assert api.call("GET", f"/api/v3/batch/{first['batchId']}")["batchStatus"] == "Closed"
    bill = api.bill(account, meter, 202402, 10, 5)
    assert api.call("GET", f"/api/v3/bill/{bill}")["batch"]["batchId"] == second["batchId"]
    api.call("PUT", f"/api/v202206/batch/{second['batchId']}/status", expect=204,
             json={"batchStatus": "Pending"})
    assert api.call("GET", f"/api/v3/bill/{bill}")["void"] is True
    api.call("PUT", f"/api/v202206/batch/{first['batchId']}/status", expect=204,
             json={"batchStatus": "Open"})
    again = api.call("PUT", f"/api/v202206/batch/{second['batchId']}/status", expect=400,
                     json={"batchStatus": "Open"})
    assert again["errors"][0]["field"] == "batchStatus"
    closed = api.call("PUT", f"/api/v3/batch/close/{second['batchId']}")
    assert closed["batchStatus"] == "Closed" and closed["billCount"] == 1
    assert api.call("GET", f"/api/v3/bill/{bill}")["void"] is False
    listed = api.call("GET", "/api/v3/batch", params={"filter": "batchStatus equals 'Open'"})
    assert [b["batchId"] for b in listed] == [first["batchId"]]
