"""Drive the official EnergyCapSdk 8.2309.4878 (run by its own virtualenv's python).

Reads {"base_url", "api_key", "bad_key", "ids": {...}} from stdin, runs the issue's
compatibility list through the SDK's own calls and models, and prints one JSON summary
of what the SDK parsed. A failing call records its HTTP status instead of stopping.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from energycap.sdk import EnergyCapApi
from energycap.sdk import models as m
from msrest.exceptions import HttpOperationError


def status_of(call: Any) -> int:
    try:
        call()
    except HttpOperationError as exc:
        return int(exc.response.status_code)
    return 200


def main() -> None:
    spec = json.loads(sys.stdin.read())
    api = EnergyCapApi(spec["base_url"])
    api.config.headers["ECI-ApiKey"] = spec["api_key"]
    ids = spec["ids"]
    out: dict[str, Any] = {}

    commodities = api.get_commodities()
    electric = next(c for c in commodities if c.commodity_code == "ELECTRIC")
    out["electric_rollup_unit"] = electric.use_rollup_unit.unit_code
    units = {u.unit_code: u.unit_id for u in api.get_units()}
    out["units"] = sorted(units)
    place_types = {t.place_type_code: t.place_type_id for t in api.get_place_types()}
    observation = {t.observation_type_code: t.observation_type_id
                   for t in api.get_observation_types()}
    root = api.get_places(filter="placeCode equals 'ROOT'")[0]
    cost_center = api.get_cost_centers()[0]
    vendor = next(v for v in api.get_vendors() if v.vendor_code == "UTILITY")

    place = api.create_place(m.PlaceCreate(
        place_code="SDK-HALL", place_info="SDK Hall", parent_place_id=root.place_id,
        place_type_id=place_types["BUILDING"]))
    out["place"] = {"placeId": place.place_id, "parent": place.parent.place_code}
    meters = [api.create_meter(m.MeterCreate(
        meter_code=f"SDK-E{i}", meter_info=f"Electric {i}", commodity_id=electric.commodity_id,
        place_id=place.place_id, address=m.RequiredAddressChild(country="US"),
        meter_type_id=ids["hidden_meter_type"], use_unit_id=units["kWh" if i else "MWh"]))
        for i in range(2)]
    out["meters"] = [(x.meter_code, x.use_unit.unit_code, x.meter_type.meter_type_code)
                     for x in meters]
    account = api.create_account(m.AccountCreate(
        account_code="SDK-ACCT", account_info="SDK account",
        account_type_id=ids["standard_account_type"], cost_center_id=cost_center.cost_center_id,
        vendor_id=vendor.vendor_id, country="US"))
    links = api.create_account_meter([m.AccountMeterRequest(
        account_id=account.account_id, meter_id=x.meter_id, rate_id=0) for x in meters])
    out["links"] = [(link.account.account_code, link.meter.meter_code) for link in links]
    out["account_meters"] = [x.meter_code for x in api.get_account(account.account_id).meters]

    api.open_batch(m.BatchCreate(batch_code="SDK-ENTRY"))
    bill_ids = []
    for period, values in ((202401, ("1.5", "1000")), (202402, ("2", "1200"))):
        year, month = divmod(period, 100)
        for meter, use in zip(meters, values, strict=True):
            bill = api.create_bill(body=m.BillCreate(
                account_id=account.account_id, billing_period=period, manual_entry=True,
                begin_date=f"{year}-{month:02d}-01T00:00:00",
                end_date=f"{year}-{month + 1:02d}-01T00:00:00",
                meters=[m.BillMeterCreate(meter_id=meter.meter_id, body_lines=[
                    m.BillMeterBodyLineCreate(observation_type_id=observation["USE"],
                                              value=float(use), cost=12.34,
                                              caption="Use")])]))
            bill_ids.append(bill.bill_id)
    got = api.get_bill(bill_ids[0])
    out["bill"] = {"period": got.billing_period, "cost": got.total_cost,
                   "batch": got.batch.batch_code, "account": got.account.account_code}
    raw = api.get_bills(filter=f"accountId equals '{account.account_id}'", page_size=3,
                        raw=True)
    out["bills_page"] = {"count": len(raw.output),
                         "total": raw.response.headers.get("TotalNumberOfRecords"),
                         "pages": raw.response.headers.get("TotalPages")}

    details = api.upsert_aggregate_meter(place.place_id, m.UpsertAggregateMeterRequest(
        begin_period=202401, source_meter_ids=[x.meter_id for x in meters],
        commodity_id=electric.commodity_id, aggregate_meter_info="SDK total"))
    version = details.version
    out["version"] = {"begin": version.begin_period, "type": version.chargeback_type,
                      "sums": [x.meter_code for x in
                               details.use.use_calculation.sum.sum_meters]}

    task = api.execute_processor_aggregations(m.ChargebackProcessorSettingsForAggregations(
        billing_period=202402, note="from the SDK", batch_settings=m.BatchCreate(
            batch_code="SDK-AGG", close_existing_batch=True, invoice_number="INV-1")))
    deadline = time.monotonic() + 60
    # (Completed once its bills are written; they are analyzing until the audits ran)
    while ((task.status in ("Queued", "Processing") or task.number_of_analyzing_bills)
           and time.monotonic() < deadline):
        time.sleep(0.2)
        task = api.get_chargeback_task(task.task_id)
    out["task"] = {"type": task.chargeback_type, "status": task.status,
                   "created": task.number_of_bills_created,
                   "failed": task.number_of_failed_versions, "comment": task.comment,
                   "batch": task.batch.batch_code, "user": task.user.user_code,
                   "period": task.billing_period, "analyzing": task.number_of_analyzing_bills,
                   "flags": task.number_of_unresolved_flags}
    aggregate_bills = api.get_bills(
        filter=f"accountId equals '{version.account.account_id}' and void equals 'false'")
    out["aggregate_bills"] = sorted((b.billing_period, b.total_cost, b.invoice_number)
                                    for b in aggregate_bills)
    out["tasks_listed"] = [t.task_id for t in api.get_chargeback_tasks(
        filter="billingPeriod equals '202402'")]
    out["empty_body_status"] = api.execute_processor_aggregations().status is not None
    per_version = api.get_calculated_bill_chargeback_task_by_version(
        version.account.account_id, version.meter.meter_id, version.version_id)
    out["per_version_bills"] = sorted(sum((v.destination_bill_ids or [] for v in per_version
                                           if v.task_id == task.task_id), []))
    api.void_chargeback_task(task.task_id)
    reversed_task = api.get_chargeback_task(task.task_id)
    out["reversed_by"] = reversed_task.reversed_by.user_code
    out["void_again"] = status_of(lambda: api.void_chargeback_task(task.task_id))
    out["after_void"] = len(api.get_bills(
        filter=f"accountId equals '{version.account.account_id}' and void equals 'false'"))

    batches = api.get_batches(filter="batchCode equals 'SDK-AGG'")
    out["batch"] = {"status": batches[0].batch_status, "bills": batches[0].bill_count}
    api.update_batch_status(batches[0].batch_id,
                            m.UpdateBatchStatusRequest(batch_status="Pending"))
    out["pending"] = api.get_batch(batches[0].batch_id).batch_status
    closed = api.close_batch(batches[0].batch_id)
    out["closed"] = closed.batch_status

    bad = EnergyCapApi(spec["base_url"])
    bad.config.headers["ECI-ApiKey"] = spec["bad_key"]
    out["bad_key_status"] = status_of(bad.get_commodities)
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except HttpOperationError as exc:  # say what the server answered
        print(exc.response.status_code, exc.response.text, file=sys.stderr)
        raise
