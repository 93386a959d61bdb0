"""A re-run whose inputs did not change has the earlier task's outcome without computing
it again; any change to what the outcome depends on, by any writer, is computed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from sheaf.runtime import Runtime
from sheaf.utility import aggregation
from tests.fixtures.database import PG_URL
from tests.utility.conftest import Api, aggregate_bills

EXEC = "/api/v202203/utilityPlatform/aggregations/exec"


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the source bills were read and summed (the inline executor runs
    the job in this process)."""
    calls: list[int] = []
    real = aggregation._plan

    def counted(*args: Any) -> aggregation.Plan:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(aggregation, "_plan", counted)
    return calls


def run(api: Api, period: int = 202403) -> dict[str, Any]:
    task = api.call("POST", EXEC, json={"billingPeriod": period})
    return dict(api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}"))


def per_version(api: Api, campus: dict[str, Any], task_id: int) -> list[tuple[Any, ...]]:
    rows = api.call("GET", f"/api/v3/account/{campus['agg_account']}/meter/"
                           f"{campus['agg_meter']}/calculatedBill/"
                           f"{campus['version']['versionId']}/chargebackTask")
    return sorted(((r["billingPeriod"], r["errorMessage"], r["destinationBillIds"])
                   for r in rows if r["taskId"] == task_id), key=lambda row: row[0])


def test_unchanged_rerun_carries_the_outcome_over(api: Api, campus: dict[str, Any],
                                                  plans: list[int]) -> None:
    api.bill(campus["account"], campus["m1"], 202403, "1000.5", "100.10")
    first = run(api)
    assert (first["numberOfBillsCreated"], first["numberOfFailedVersions"]) == (1, 2)
    [bill] = aggregate_bills(api, campus["agg_account"])
    again = run(api)
    assert len(plans) == 1  # the second run read no source bill
    assert again["status"] == first["status"] == "CompletedWithErrors"
    assert (again["numberOfBillsCreated"], again["numberOfFailedVersions"]) == (0, 2)
    assert [b["billId"] for b in aggregate_bills(api, campus["agg_account"])] == [bill["billId"]]
    before = per_version(api, campus, first["taskId"])
    assert per_version(api, campus, again["taskId"]) == [
        (period, error, []) for period, error, _ in before]
    assert [ids for _, _, ids in before] == [[], [], [bill["billId"]]]
    # and from that one a third
    assert run(api)["numberOfFailedVersions"] == 2 and len(plans) == 1
    # another range is another question (its 202403 bill stands: none made)
    assert run(api, 202404)["numberOfBillsCreated"] == 0 and len(plans) == 2


def _new_bill(api: Api, rt: Runtime, c: dict[str, Any]) -> None:
    api.bill(c["account"], c["m2"], 202403, "1", "5")


def _raw_line_update(api: Api, rt: Runtime, c: dict[str, Any]) -> None:
    with rt.db.write() as session:  # a writer that is not the API's
        session.execute(text("UPDATE utility_bill_line SET cost_micro = 7000000 "
                             "WHERE meter_id = :m"), {"m": c["m1"]})


def _raw_delete(api: Api, rt: Runtime, c: dict[str, Any]) -> None:
    with rt.db.write() as session:
        session.execute(text("DELETE FROM utility_bill WHERE bill_id IN (SELECT bill_id FROM "
                             "utility_bill_line WHERE meter_id = :m)"), {"m": c["m1"]})


def _import_change(api: Api, rt: Runtime, c: dict[str, Any]) -> None:
    csv = ("place_code,commodity_code,account_code,meter_code,billing_period,begin_date,"
           "end_date,use,use_unit,cost\nHALL,ELECTRIC,UTIL-1,E1,202403,2024-03-01,"
           "2024-03-28,1000.5,kWh,100.11\n")
    counts = api.call("POST", "/api/v202203/utilityPlatform/billImport",
                      files={"file": ("bills.csv", csv.encode(), "text/csv")})
    assert counts["billsReplaced"] == 1


def _sources_changed(api: Api, rt: Runtime, c: dict[str, Any]) -> None:
    api.call("PUT", f"/api/v202203/utilityPlatform/place/{c['place']}/aggregateMeter",
             json={"aggregateMeterId": c["agg_meter"], "beginPeriod": 202401,
                   "sourceMeterIds": [c["m2"]], "commodityId": api.commodity("ELECTRIC"),
                   "aggregateMeterInfo": "Hall total"})


def _aggregate_bill_voided(api: Api, rt: Runtime, c: dict[str, Any]) -> None:
    with rt.db.write() as session:
        session.execute(text("UPDATE utility_bill SET void = :v WHERE account_id = :a"),
                        {"v": True, "a": c["agg_account"]})


def _unit_factor(api: Api, rt: Runtime, c: dict[str, Any]) -> None:
    with rt.db.write() as session:  # (m1 reads in kWh, the aggregate's unit: no change
        session.execute(text("UPDATE utility_unit SET factor = factor "  # of result, but
                             "WHERE unit_code = 'MWh'"))  # a counted change all the same)


# change -> the cost of the 202403 aggregate bill after it (None: no bill)
CHANGES: dict[str, tuple[Callable[[Api, Runtime, dict[str, Any]], None], float | None]] = {
    "a new source bill (API)": (_new_bill, 105.10),
    "a line changed by another writer": (_raw_line_update, 7.0),
    "a source bill deleted": (_raw_delete, 100.10),  # (now a failure: the bill stands)
    "a bill replaced by the import": (_import_change, 100.11),
    "the aggregate's sources changed": (_sources_changed, 100.10),  # (likewise)
    "the aggregate bill voided": (_aggregate_bill_voided, 100.10),
    "a unit updated": (_unit_factor, 100.10),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_is_computed(api: Api, runtime: Runtime, campus: dict[str, Any],
                                  plans: list[int], change: str) -> None:
    act, cost = CHANGES[change]
    api.bill(campus["account"], campus["m1"], 202403, "1000.5", "100.10")
    run(api)
    act(api, runtime, campus)
    run(api)
    assert len(plans) == 2
    bills = aggregate_bills(api, campus["agg_account"])
    assert [b["totalCost"] for b in bills] == ([] if cost is None else [cost])


def test_reversal_is_a_change(api: Api, campus: dict[str, Any], plans: list[int]) -> None:
    api.bill(campus["account"], campus["m1"], 202403, "10", "1")
    first = run(api)
    api.call("POST", f"/api/v3/chargebackTask/{first['taskId']}/void", expect=204)
    assert run(api)["numberOfBillsCreated"] == 1 and len(plans) == 2


def _set_cost(rt: Runtime, meter: int, micro: int) -> None:
    with rt.db.write() as session:
        session.execute(text("UPDATE utility_bill_line SET cost_micro = :c WHERE meter_id = :m"),
                        {"c": micro, "m": meter})


def test_a_change_before_the_carry_over_is_computed(
        api: Api, runtime: Runtime, campus: dict[str, Any], plans: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    api.bill(campus["account"], campus["m1"], 202403, "10", "1")
    run(api)
    real = aggregation._same_outcome

    def racing(*args: Any) -> int | None:
        found = real(*args)
        assert found is not None
        _set_cost(runtime, campus["m1"], 2_000_000)  # after the look, before the commit
        return found

    monkeypatch.setattr(aggregation, "_same_outcome", racing)
    assert run(api)["numberOfBillsCreated"] == 1 and len(plans) == 2
    assert [b["totalCost"] for b in aggregate_bills(api, campus["agg_account"])] == [2.0]
    monkeypatch.setattr(aggregation, "_same_outcome", real)
    assert run(api)["numberOfBillsCreated"] == 0 and len(plans) == 2  # that one holds


def test_a_change_between_read_and_commit_leaves_no_mark(
        api: Api, runtime: Runtime, campus: dict[str, Any], plans: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that read the inputs before a change and committed after it holds for
    neither state: the next run computes."""
    api.bill(campus["account"], campus["m1"], 202403, "10", "1")
    run(api)
    _set_cost(runtime, campus["m1"], 1_500_000)  # (so the next run does not carry over)
    real = aggregation._plan

    def racing(*args: Any) -> aggregation.Plan:
        plan = real(*args)
        _set_cost(runtime, campus["m1"], 3_000_000)
        return plan

    monkeypatch.setattr(aggregation, "_plan", racing)
    assert run(api)["numberOfBillsCreated"] == 1  # the 1.50 it read
    monkeypatch.setattr(aggregation, "_plan", real)
    assert run(api)["numberOfBillsCreated"] == 1
    assert [b["totalCost"] for b in aggregate_bills(api, campus["agg_account"])] == [3.0]


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL's row locks (SQLite has one writer)")
def test_counting_takes_the_counter_before_the_rows(api: Api, runtime: Runtime,
                                                    campus: dict[str, Any]) -> None:
    """An aggregation's commit holds the counter, then changes bills; any other writer
    must queue for the counter before it locks a bill, or the two deadlock."""
    bill = api.bill(campus["account"], campus["m1"], 202403, "10", "1")
    errors: list[BaseException] = []
    with runtime.db.write() as session:
        aggregation.mark(session.connection(), lock=True)  # the commit's first step

        def other_writer() -> None:
            try:
                with runtime.db.write() as other:
                    other.execute(text("UPDATE utility_bill SET void = :v WHERE bill_id = :b"),
                                  {"v": True, "b": bill})
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=other_writer)
        thread.start()
        time.sleep(0.5)  # it waits for the counter, holding no bill
        session.execute(text("UPDATE utility_bill SET void = :v WHERE bill_id = :b"),
                        {"v": False, "b": bill})
    thread.join(timeout=30)
    assert not thread.is_alive() and errors == []
    with runtime.db.read() as session:
        assert session.execute(text("SELECT void FROM utility_bill WHERE bill_id = :b"),
                               {"b": bill}).scalar_one() is True  # the other, second
