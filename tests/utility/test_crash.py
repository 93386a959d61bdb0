"""SIGKILL a worker process at several points of an aggregation: the data is exactly
before or after, the task tells the truth, and the re-run ends with no duplicate."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from sheaf.auth.energycap import create_key, verify_key
from sheaf.config import Settings
from sheaf.jobs import faults
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime
from sheaf.utility import aggregates, bill_import, schemas, tasks
from sheaf.utility import models as m
from tests.workers import in_worker_processes, started, wait_for

AGGREGATES, SOURCES, PERIOD = 200, 4, 202403


@pytest.fixture
def process_runtime(settings: Settings, request: pytest.FixtureRequest,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    # The worker stays a second at the phase the test kills it in (the worker process
    # inherits this): polling for a phase of a few milliseconds missed it on a busy machine.
    monkeypatch.setenv(faults.PAUSE_ENV,
                       f"utility-{request.node.callspec.params['kill_at'].lower()}:1")
    settings = in_worker_processes(settings)
    with started(settings) as rt:
        yield rt


def campus(rt: Runtime) -> Any:
    lines = ["place_code,commodity_code,account_code,meter_code,billing_period,begin_date,"
             "end_date,use,use_unit,cost"]
    for a in range(AGGREGATES):
        for s in range(SOURCES):
            for month in (1, 2, 3):
                lines.append(f"P{a},ELECTRIC,A{a},M{a}-{s},2024{month:02d},2024-{month:02d}-01,"
                             f"2024-{month:02d}-28,{100 + a + s}.5,kWh,{10 + month}.01")
    bill_import.import_bills(rt.db, ("\n".join(lines) + "\n").encode())
    with rt.db.write() as session:
        _, _, key = create_key(session, "crash", "crash", [])
    with rt.db.read() as session:
        who = verify_key(session, key)
    assert who is not None
    with rt.db.write() as session:
        meters = session.execute(select(m.Meter.meter_code, m.Meter.meter_id, m.Meter.place_id,
                                        m.Meter.commodity_id)).all()
        by_place: dict[int, list[int]] = {}
        for _, meter_id, place_id, _ in meters:
            by_place.setdefault(place_id, []).append(meter_id)
        for place_id, ids in by_place.items():
            aggregates.upsert(session, who, place_id, schemas.UpsertAggregateMeter.model_validate(
                {"beginPeriod": 202401, "sourceMeterIds": ids, "commodityId": meters[0][3],
                 "aggregateMeterInfo": f"Total {place_id}"}))
    return who




def state(rt: Runtime, task_id: int) -> tuple[dict[str, Any], int, int]:
    """The task as a client sees it, its bills, and the most standing aggregate bills any
    (account, period) has (1 means no duplicate)."""
    with rt.db.read() as session:
        view = tasks.view(session, tasks.get(session, task_id))
        bills = session.execute(select(func.count()).select_from(m.Bill).where(
            m.Bill.task_id == task_id)).scalar_one()
        per_period = select(func.count().label("n")).where(
            m.Bill.task_id.is_not(None), m.Bill.void.is_(False)).group_by(
            m.Bill.account_id, m.Bill.billing_period).subquery()
        most = session.execute(select(func.coalesce(func.max(per_period.c.n), 0))).scalar_one()
    return view, bills, most


@pytest.mark.parametrize("kill_at", ["Summing", "Writing", "Auditing"])
def test_sigkill_leaves_before_or_after(process_runtime: Runtime, kill_at: str) -> None:
    rt = process_runtime
    who = campus(rt)
    expected = AGGREGATES * 3
    task_id = tasks.submit(rt, who, schemas.AggregationSettings.model_validate(
        {"billingPeriod": PERIOD}))
    with rt.db.read() as session:
        job_id = tasks.get(session, task_id).job_id
    assert job_id is not None
    running = wait_for(rt, job_id, lambda j: (j.progress_message or "").startswith(kill_at)
                   or j.finished_at is not None)
    assert running.finished_at is None, "the run ended before it could be killed"
    if running.finished_at is None:
        assert running.worker_id is not None
        os.kill(int(running.worker_id.split(":")[1]), signal.SIGKILL)
        killed_at = utcnow()
        time.sleep(0.3)
        view, bills, most = state(rt, task_id)
        assert most <= 1
        if bills == 0:  # not applied: nothing written, and the task says so
            assert view["status"] in ("Queued", "Processing")
            assert view["numberOfBillsCreated"] == 0
        else:  # applied: every bill, and the count says so; Completed once audited
            assert bills == expected == view["numberOfBillsCreated"]
            assert view["numberOfAnalyzingBills"] in (0, expected)
            assert view["status"] in ("Queued", "Processing", "Completed")
            assert view["status"] != "Completed" or view["numberOfAnalyzingBills"] == 0
    done = wait_for(rt, job_id, lambda j: j.finished_at is not None)
    assert done.status == "succeeded", done.messages
    # the reaper gave the killed run to a new worker (unless the run, its audit being the
    # last few milliseconds, ended before the kill landed)
    assert done.attempt == 2 or (done.finished_at is not None
                                 and done.finished_at <= killed_at)
    view, bills, most = state(rt, task_id)
    assert view["status"] == "Completed" and view["numberOfBillsCreated"] == expected
    assert bills == expected and most == 1 and view["numberOfAnalyzingBills"] == 0
    # and an unchanged re-run writes nothing
    again = tasks.submit(rt, who, schemas.AggregationSettings.model_validate(
        {"billingPeriod": PERIOD}))
    with rt.db.read() as session:
        rerun_job = tasks.get(session, again).job_id
    assert rerun_job is not None
    wait_for(rt, rerun_job, lambda j: j.finished_at is not None)
    view, bills, most = state(rt, again)
    assert view["numberOfBillsCreated"] == 0 and bills == 0 and most == 1
