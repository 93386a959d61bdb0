"""Aggregate meters, the aggregation processor, re-runs, reversal, audits, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sheaf.jobs.models import Job
from sheaf.runtime import Runtime
from sheaf.utility import aggregation, tasks
from sheaf.utility import models as m
from sheaf.utility.api.aggregation import status_expr
from tests.utility.conftest import Api, aggregate_bills

EXEC = "/api/v202203/utilityPlatform/aggregations/exec"


def test_upsert_creates_meter_account_and_version(api: Api, campus: dict[str, Any]) -> None:
    version = campus["version"]
    assert version["chargebackType"] == "Calculation" and version["beginPeriod"] == 202401
    assert version["endPeriod"] is None and version["hasBills"] is False
    assert version["meter"]["isCalculatedMeter"] is True
    assert version["account"]["accountInfo"] == "Hall total"
    details = api.call("GET", f"/api/v3/account/{campus['agg_account']}/meter/"
                              f"{campus['agg_meter']}/calculatedBill/{version['versionId']}")
    sums = details["use"]["useCalculation"]["sum"]["sumMeters"]
    assert [m["meterId"] for m in sums] == [campus["m1"], campus["m2"]]
    # a later version ends the first one the month before it begins
    api.call("PUT", f"/api/v202203/utilityPlatform/place/{campus['place']}/aggregateMeter",
             json={"aggregateMeterId": campus["agg_meter"], "beginPeriod": 202407,
                   "sourceMeterIds": [campus["m1"]], "commodityId": api.commodity("ELECTRIC"),
                   "aggregateMeterInfo": "Renamed"})
    history = api.call("GET", f"/api/v3/account/{campus['agg_account']}/meter/"
                              f"{campus['agg_meter']}/calculatedBill")
    assert [(v["beginPeriod"], v["endPeriod"]) for v in history] == [(202401, 202406),
                                                                     (202407, None)]
    assert api.call("GET", f"/api/v3/meter/{campus['agg_meter']}")["meterInfo"] == "Renamed"
    assert len(api.call("GET", f"/api/v3/meter/{campus['agg_meter']}/calculatedBill")) == 2


def test_aggregation_sums_converts_and_reruns_safely(api: Api, campus: dict[str, Any]) -> None:
    acct, m1, m2 = campus["account"], campus["m1"], campus["m2"]
    api.bill(acct, m1, 202403, "1000.5", "100.10")
    api.bill(acct, m2, 202403, "2.25", "200.05")  # MWh: 2250 kWh
    task = api.call("POST", EXEC, json={"billingPeriod": 202403, "note": "first"})
    assert task["chargebackType"] == "Calculation" and task["comment"] == "first"
    assert task["billingPeriod"] == 202403 and task["user"]["userCode"] == "admin"
    task = api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")
    assert task["status"] == "CompletedWithErrors"  # 202401, 202402 have no source bills
    assert task["numberOfBillsCreated"] == 1 and task["numberOfFailedVersions"] == 2
    assert task["numberOfAnalyzingBills"] == 0
    [bill] = aggregate_bills(api, campus["agg_account"])
    assert bill["totalCost"] == 300.15 and bill["billingPeriod"] == 202403
    assert bill["beginDate"].startswith("2024-03-01") and bill["endDate"].startswith("2024-04-01")
    assert bill["batch"] == task["batch"]

    # unchanged: nothing written
    again = api.call("POST", EXEC, json={"billingPeriod": 202403})
    again = api.call("GET", f"/api/v3/chargebackTask/{again['taskId']}")
    assert again["numberOfBillsCreated"] == 0
    assert [b["billId"] for b in aggregate_bills(api, campus["agg_account"])] == [bill["billId"]]

    # changed: the old bill is voided and one new bill made, never a duplicate
    api.bill(acct, m1, 202403, "1", "0.01")
    third = api.call("POST", EXEC, json={"billingPeriod": 202403})
    third = api.call("GET", f"/api/v3/chargebackTask/{third['taskId']}")
    assert third["numberOfBillsCreated"] == 1
    [new] = aggregate_bills(api, campus["agg_account"])
    assert new["totalCost"] == 300.16 and new["billId"] != bill["billId"]
    assert aggregate_bills(api, campus["agg_account"], void=True)[0]["billId"] == bill["billId"]

    per_version = api.call(
        "GET", f"/api/v3/account/{campus['agg_account']}/meter/{campus['agg_meter']}/"
               f"calculatedBill/{campus['version']['versionId']}/chargebackTask")
    mine = [v for v in per_version if v["taskId"] == third["taskId"]]
    assert [v["destinationBillIds"] for v in mine if v["destinationBillIds"]] == [
        [new["billId"]]]
    assert {v["errorMessage"] for v in mine if v["errorMessage"]} == {
        "No source bills for billing period 202401", "No source bills for billing period 202402"}


def test_reversal_void_then_refused(api: Api, campus: dict[str, Any]) -> None:
    api.bill(campus["account"], campus["m1"], 202405, 10, 1)
    task = api.call("POST", EXEC, json={"billingPeriod": 202405})
    api.call("POST", f"/api/v3/chargebackTask/{task['taskId']}/void", expect=204)
    got = api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")
    assert got["reversedBy"]["userCode"] == "admin" and got["reversedDate"]
    assert aggregate_bills(api, campus["agg_account"]) == []
    again = api.call("POST", f"/api/v3/chargebackTask/{task['taskId']}/delete", expect=400)
    assert "already reversed" in again["message"]
    # after a reversal a run makes the bill again
    rerun = api.call("POST", EXEC, json={"billingPeriod": 202405})
    assert api.call("GET", f"/api/v3/chargebackTask/{rerun['taskId']}")[
        "numberOfBillsCreated"] == 1
    api.call("POST", f"/api/v3/chargebackTask/{rerun['taskId']}/delete", expect=204)
    assert aggregate_bills(api, campus["agg_account"], void=None) != []  # the voided one
    assert all(b["void"] for b in aggregate_bills(api, campus["agg_account"], void=None))


def test_reversal_restores_the_bills_its_run_voided(api: Api, campus: dict[str, Any]) -> None:
    acct, m1, agg = campus["account"], campus["m1"], campus["agg_account"]
    api.bill(acct, m1, 202405, 10, 1)
    first = api.call("POST", EXEC, json={"billingPeriod": 202405})
    [original] = aggregate_bills(api, agg)
    api.bill(acct, m1, 202405, 5, 2)  # the sum changes: a re-run replaces the bill
    second = api.call("POST", EXEC, json={"billingPeriod": 202405})
    [replacement] = aggregate_bills(api, agg)
    assert replacement["billId"] != original["billId"] and replacement["totalCost"] == 3.0

    # voiding the re-run brings back the bill it voided: the data is as before it
    api.call("POST", f"/api/v3/chargebackTask/{second['taskId']}/void", expect=204)
    assert [b["billId"] for b in aggregate_bills(api, agg)] == [original["billId"]]

    # a later run replaces the original again; the first task cannot be reversed
    # before it (un-voiding under the later run's bill would make a duplicate)
    third = api.call("POST", EXEC, json={"billingPeriod": 202405})
    refused = api.call("POST", f"/api/v3/chargebackTask/{first['taskId']}/void", expect=400)
    assert f"reverse task {third['taskId']} first" in refused["message"]
    assert api.call("GET", f"/api/v3/chargebackTask/{first['taskId']}")["reversedDate"] is None
    # deleting the later run restores the original too; then the first can go
    api.call("POST", f"/api/v3/chargebackTask/{third['taskId']}/delete", expect=204)
    assert [b["billId"] for b in aggregate_bills(api, agg)] == [original["billId"]]
    api.call("POST", f"/api/v3/chargebackTask/{first['taskId']}/void", expect=204)
    assert aggregate_bills(api, agg) == []
    assert {b["billId"] for b in aggregate_bills(api, agg, void=None)} == {
        original["billId"], replacement["billId"]}


def test_audits_flag_and_flags_resolve(api: Api, campus: dict[str, Any]) -> None:
    acct, m1, m2 = campus["account"], campus["m1"], campus["m2"]
    api.bill(acct, m1, 202401, 100, 10)
    api.bill(acct, m2, 202401, "0.1", 10)
    api.bill(acct, m1, 202402, 1000, 10)  # use far from the prior period; m2 missing
    api.bill(acct, m1, 202403, 0, 25)  # zero use with cost
    api.bill(acct, m2, 202403, 0, 5)
    task = api.call("POST", EXEC, json={"billingPeriod": 202403})
    task = api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")
    bills = {b["billingPeriod"]: b for b in aggregate_bills(api, campus["agg_account"])}
    assert set(bills) == {202401, 202402, 202403}
    assert not any(b["analyzing"] for b in bills.values())
    issues = {p: {i["flagIssueTypeInfo"] for i in
                  api.call("GET", f"/api/v3/flag/bill/{b['billId']}")["flagIssues"]}
              for p, b in bills.items() if p != 202401}
    assert issues == {202402: {"Use variance", "Missing source bills"},
                      202403: {"Zero use with cost", "Use variance", "Cost variance"}}
    assert task["numberOfUnresolvedFlags"] == 5
    api.call("GET", f"/api/v3/flag/bill/{bills[202401]['billId']}", expect=404)
    resolved = api.call("PUT", f"/api/v3/flag/bill/{bills[202402]['billId']}",
                        json={"flagStatusId": 2})
    assert resolved["flagStatus"]["flagStatusInfo"] == "Resolved"
    task = api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")
    assert task["numberOfUnresolvedFlags"] == 3


def test_unit_without_conversion_fails_the_version(api: Api, campus: dict[str, Any]) -> None:
    api.bill(campus["account"], campus["m1"], 202406, 5, 1, unit="GAL")
    task = api.call("POST", EXEC, json={"billingPeriod": 202406})
    task = api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")
    assert task["numberOfBillsCreated"] == 0 and task["numberOfFailedVersions"] == 3
    workbook = api.client.get(f"/api/v3/chargebackTask/{task['taskId']}/errorOutput",
                              headers=api.headers)
    assert workbook.status_code == 200
    from io import BytesIO

    from openpyxl import load_workbook

    rows = list(load_workbook(BytesIO(workbook.content)).active.values)  # type: ignore[union-attr]
    assert rows[0] == ("Task", "Version", "Version name", "Billing period", "Error")
    assert rows[-1][3:] == (202406, "No unit conversion from GAL to kWh (billing period 202406)")


def test_batches_of_a_run(api: Api, campus: dict[str, Any]) -> None:
    api.bill(campus["account"], campus["m1"], 202407, 5, 1)  # opens the user's batch
    refused = api.call("POST", EXEC, expect=400, json={
        "billingPeriod": 202407, "batchSettings": {"batchCode": "AGG-JULY"}})
    assert refused["errors"][0]["field"] == "closeExistingBatch"
    task = api.call("POST", EXEC, json={
        "billingPeriod": 202407, "batchSettings": {
            "batchCode": "AGG-JULY", "closeExistingBatch": True, "invoiceNumber": "INV-7",
            "controlCode": "CC", "accountPeriodYear": 2024, "accountPeriodNumber": 7}})
    assert task["batch"]["batchCode"] == "AGG-JULY"
    [bill] = aggregate_bills(api, campus["agg_account"])
    assert bill["invoiceNumber"] == "INV-7" and bill["controlCode"] == "CC"
    assert bill["accountPeriod"] == 202407
    listed = api.call("GET", "/api/v3/chargebackTask",
                      params={"filter": "billingPeriod equals '202407' and "
                                        "status one of 'Completed'|'CompletedWithErrors'"})
    assert [t["taskId"] for t in listed] == [task["taskId"]]
    edited = api.call("PUT", f"/api/v3/chargebackTask/{task['taskId']}",
                      json={"comment": "checked"})
    assert edited["comment"] == "checked"


def test_empty_body_runs_the_current_period(client: TestClient, ec: dict[str, str],
                                            campus: dict[str, Any]) -> None:
    response = client.post(EXEC, headers=ec)
    assert response.status_code == 200, response.text
    assert response.json()["billingPeriod"] >= 202612


@pytest.mark.parametrize(("body", "fields"), [
    ({"billingPeriod": 189912}, {"billingPeriod"}),
    ({"billingPeriod": 202413}, {"billingPeriod"}),
    ({"billingPeriod": "soon", "note": 5}, {"billingPeriod", "note"}),
    ({"batchSettings": {"batchCode": "x" * 256, "accountPeriodYear": 1800}},
     {"batchSettings.batchCode", "batchSettings.accountPeriodYear"}),
    ({"batchSettings": {}}, {"batchSettings.batchCode"}),
    ([1, 2], {"body"}),
])
def test_exec_bad_input(api: Api, runtime: Runtime, body: Any, fields: set[str]) -> None:
    out = api.call("POST", EXEC, expect=400, json=body)
    assert {e["field"] for e in out["errors"]} == fields, out
    assert api.call("GET", "/api/v3/chargebackTask") == []
    assert api.call("GET", "/api/v3/batch") == []


def test_upsert_bad_input(api: Api, campus: dict[str, Any]) -> None:
    other_place = api.place("ELSEWHERE")
    gas = api.meter("G1", campus["place"], commodity="NATURALGAS")
    far = api.meter("E9", other_place)
    out = api.call("PUT", f"/api/v202203/utilityPlatform/place/{campus['place']}/aggregateMeter",
                   expect=400, json={"beginPeriod": 202400, "sourceMeterIds": [gas, far, 999],
                                     "commodityId": api.commodity("ELECTRIC"),
                                     "aggregateMeterInfo": "x"})
    assert {e["field"] for e in out["errors"]} == {
        "beginPeriod", "sourceMeterIds[0]", "sourceMeterIds[1]", "sourceMeterIds[2]"}
    out = api.call("PUT", "/api/v202203/utilityPlatform/place/999/aggregateMeter", expect=400,
                   json={"beginPeriod": 202401, "sourceMeterIds": [],
                         "commodityId": 999, "aggregateMeterInfo": "y" * 51})
    assert {e["field"] for e in out["errors"]} == {"sourceMeterIds", "aggregateMeterInfo"}


def test_task_reads_as_its_job_until_the_job_ends(api: Api, runtime: Runtime,
                                                   campus: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The outcome commits before the audit: a client that sees Completed (or reverses)
    must find the job ended and its lock free, not a 400 "already running"."""
    api.bill(campus["account"], campus["m1"], 202403, 10, 1)
    seen: list[tuple[str, str]] = []
    real = aggregation.audit

    def auditing(db: Any, settings: Any, task_id: int) -> None:
        with db.read() as session:
            task = session.get(m.ChargebackTask, task_id)
            listed = session.execute(select(status_expr).select_from(m.ChargebackTask)
                                     .outerjoin(Job, Job.id == m.ChargebackTask.job_id)
                                     .where(m.ChargebackTask.task_id == task_id)).scalar_one()
            seen.append((tasks.status_of(session, task), listed))
        real(db, settings, task_id)

    monkeypatch.setattr(aggregation, "audit", auditing)
    task = api.call("POST", EXEC, json={"billingPeriod": 202403})
    assert seen == [("Processing", "Processing")]
    assert api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")["status"] == (
        "CompletedWithErrors")
    listed = api.call("GET", "/api/v3/chargebackTask",
                      params={"filter": "status equals 'CompletedWithErrors'"})
    assert [t["taskId"] for t in listed] == [task["taskId"]]
