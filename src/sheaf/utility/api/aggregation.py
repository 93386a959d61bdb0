"""Aggregate meters, calculated-bill versions, the aggregation processor and chargeback
tasks."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Response
from sqlalchemy import case, func, or_, select

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.errors import NotFound
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime, get_runtime
from sheaf.utility import aggregates, schemas, scope, tasks, wire
from sheaf.utility import models as m
from sheaf.utility.api.deps import (
    IdPath,
    Paging,
    chargeback_reversals_manage,
    chargebacks_manage,
    chargebacks_module_view,
    chargebacks_run,
    meters_create,
)
from sheaf.utility.api.filters import FilterField, integer, parse

router = APIRouter(tags=["EnergyCAP aggregation and chargeback tasks"])

# (tasks.status_of in SQL, over the tasks outer-joined to their jobs)
status_expr = case(
    (m.ChargebackTask.status.is_not(None)
     & or_(Job.status.is_(None), Job.status.not_in(tasks.ACTIVE_JOB)), m.ChargebackTask.status),
    *((Job.status == k, v) for k, v in tasks.JOB_STATUS.items()), else_="Queued")
TASK_FILTERS = {
    "billingPeriod": FilterField(m.ChargebackTask.billing_period, integer),
    "calculateBillTaskStatus": FilterField(status_expr),
    "status": FilterField(status_expr),
    "taskId": FilterField(m.ChargebackTask.task_id, integer),
    "chargebackType": FilterField(m.ChargebackTask.chargeback_type),
}


@router.put("/api/v202203/utilityPlatform/place/{placeId}/aggregateMeter")
def upsert_aggregate_meter(placeId: IdPath, body: schemas.UpsertAggregateMeter,  # noqa: N803
                           runtime: Runtime = Depends(get_runtime),
                           who: EnergyCapPrincipal = Depends(meters_create)
                           ) -> dict[str, Any]:
    """Create or update an aggregate meter (on its own account) with a calculated-bill
    version from ``beginPeriod`` summing ``sourceMeterIds`` (same commodity and place)."""
    with runtime.db.write() as session:
        version = aggregates.upsert(session, who, placeId, body)
        return wire.calculated_details(session, version,
                                       aggregates.has_bills(session, version.version_id),
                                       aggregates.sources(session, version.version_id))


def _versions(session: Any, *where: Any) -> list[dict[str, Any]]:
    rows = session.execute(select(m.CalculatedVersion).where(*where)
                           .order_by(m.CalculatedVersion.begin_period)).scalars().all()
    return [wire.version(session, v, aggregates.has_bills(session, v.version_id)) for v in rows]


@router.get("/api/v3/account/{accountId}/meter/{meterId}/calculatedBill")
def get_calculated_bill_version_history(
        accountId: IdPath, meterId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
        who: EnergyCapPrincipal = Depends(chargebacks_module_view)) -> list[dict[str, Any]]:
    """An account-meter's calculated-bill versions, oldest first."""
    with runtime.db.read() as session:
        scope.visible(session, who, m.Meter, meterId, "Meter")
        return _versions(session, m.CalculatedVersion.account_id == accountId,
                         m.CalculatedVersion.meter_id == meterId)


@router.get("/api/v3/meter/{meterId}/calculatedBill")
def get_calculated_bills(meterId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
                         who: EnergyCapPrincipal = Depends(chargebacks_module_view)
                         ) -> list[dict[str, Any]]:
    """A meter's calculated-bill versions, on any account."""
    with runtime.db.read() as session:
        scope.visible(session, who, m.Meter, meterId, "Meter")
        return _versions(session, m.CalculatedVersion.meter_id == meterId)


def _version(session: Any, who: EnergyCapPrincipal, account_id: int, meter_id: int,
             version_id: int) -> m.CalculatedVersion:
    scope.visible(session, who, m.Meter, meter_id, "Meter")
    version = session.get(m.CalculatedVersion, version_id)
    if version is None or version.account_id != account_id or version.meter_id != meter_id:
        raise NotFound(f"Calculated bill version {version_id} was not found on account "
                       f"{account_id} and meter {meter_id}")
    return version  # type: ignore[no-any-return]


@router.get("/api/v3/account/{accountId}/meter/{meterId}/calculatedBill/{versionId}")
def get_calculate_bill_details(
        accountId: IdPath, meterId: IdPath, versionId: IdPath,  # noqa: N803
        runtime: Runtime = Depends(get_runtime),
        who: EnergyCapPrincipal = Depends(chargebacks_module_view)) -> dict[str, Any]:
    """One version: its use and cost are the sum of its source meters."""
    with runtime.db.read() as session:
        version = _version(session, who, accountId, meterId, versionId)
        return wire.calculated_details(session, version,
                                       aggregates.has_bills(session, versionId),
                                       aggregates.sources(session, versionId))


@router.get("/api/v3/account/{accountId}/meter/{meterId}/calculatedBill/{versionId}"
            "/chargebackTask")
def get_calculated_bill_chargeback_task_by_version(
        accountId: IdPath, meterId: IdPath, versionId: IdPath,  # noqa: N803
        runtime: Runtime = Depends(get_runtime),
        who: EnergyCapPrincipal = Depends(chargebacks_module_view)) -> list[dict[str, Any]]:
    """What each task did with this version, period by period (bills made, or why not)."""
    with runtime.db.read() as session:
        _version(session, who, accountId, meterId, versionId)
        return tasks.version_views(session, who, versionId)


@router.post("/api/v202203/utilityPlatform/aggregations/exec")
def execute_processor_aggregations(
        body: schemas.AggregationSettings | None = Body(None),
        runtime: Runtime = Depends(get_runtime),
        who: EnergyCapPrincipal = Depends(chargebacks_run)) -> dict[str, Any]:
    """Aggregate every aggregate meter over the billing periods ending with
    ``billingPeriod`` (default: the current one). Answers the task at once; the work runs
    as a job (poll ``GET /api/v3/chargebackTask/{taskId}``). An empty body is valid."""
    task_id = tasks.submit(runtime, who, body)
    with runtime.db.read() as session:
        return tasks.view(session, tasks.get(session, task_id))


@router.get("/api/v3/chargebackTask")
def get_chargeback_tasks(response: Response, paging: Paging = Depends(),
                         filter: str | None = Query(None),
                         runtime: Runtime = Depends(get_runtime),
                         who: EnergyCapPrincipal = Depends(chargebacks_module_view)
                         ) -> list[dict[str, Any]]:
    """Chargeback tasks, newest first; filters on billingPeriod and status."""
    conditions = [*parse(filter, TASK_FILTERS), scope.own(who, m.ChargebackTask.user_id)]
    base = select(m.ChargebackTask).outerjoin(Job, Job.id == m.ChargebackTask.job_id) \
        .where(*conditions)
    with runtime.db.read() as session:
        total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
        rows = session.execute(base.order_by(m.ChargebackTask.task_id.desc())
                               .limit(paging.size).offset(paging.offset)).scalars().all()
        paging.headers(response, total)
        return [tasks.view(session, t) for t in rows]


@router.get("/api/v3/chargebackTask/{taskId}")
def get_chargeback_task(taskId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
                        who: EnergyCapPrincipal = Depends(chargebacks_module_view)
                        ) -> dict[str, Any]:
    """One chargeback task: status, batch, counts of bills, failures, analyzing bills and
    unresolved flags."""
    with runtime.db.read() as session:
        return tasks.view(session, tasks.get(session, taskId, who))


@router.put("/api/v3/chargebackTask/{taskId}")
def update_chargeback_task(taskId: IdPath, body: schemas.ChargebackTaskEdit,  # noqa: N803
                           runtime: Runtime = Depends(get_runtime),
                           who: EnergyCapPrincipal = Depends(chargebacks_manage)
                           ) -> dict[str, Any]:
    """Change a task's comment."""
    with runtime.db.write() as session:
        task = tasks.get(session, taskId, who)
        task.comment = body.comment
        session.flush()
        return tasks.view(session, task)


def _reverse(runtime: Runtime, who: EnergyCapPrincipal, task_id: int, remove: bool
             ) -> Response:
    with runtime.db.write() as session:
        tasks.reverse(session, who, task_id, remove=remove)
    return Response(status_code=204)


@router.post("/api/v3/chargebackTask/{taskId}/void", status_code=204)
def void_chargeback_task(taskId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
                         who: EnergyCapPrincipal = Depends(
                             chargeback_reversals_manage)) -> Response:
    """Void every bill the task created (once; not while it runs)."""
    return _reverse(runtime, who, taskId, remove=False)


@router.post("/api/v3/chargebackTask/{taskId}/delete", status_code=204)
def delete_chargeback_task(taskId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
                           who: EnergyCapPrincipal = Depends(
                               chargeback_reversals_manage)) -> Response:
    """Delete every bill the task created (once; not while it runs)."""
    return _reverse(runtime, who, taskId, remove=True)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/api/v3/chargebackTask/{taskId}/errorOutput",
            responses={200: {"content": {XLSX: {}}}})
def get_chargeback_task_error_file(taskId: IdPath,  # noqa: N803
                                   runtime: Runtime = Depends(get_runtime),
                                   who: EnergyCapPrincipal = Depends(chargebacks_module_view)
                                   ) -> Response:
    """An Excel workbook of the task's failed versions and why they failed."""
    from openpyxl import Workbook

    with runtime.db.read() as session:
        tasks.get(session, taskId, who)
        failures = tasks.failures(session, taskId)
        names = dict(session.execute(
            select(m.CalculatedVersion.version_id, m.CalculatedVersion.version_info)
            .where(m.CalculatedVersion.version_id.in_({v for v, _, _ in failures}))).all())
    book = Workbook()
    sheet = book.active
    sheet.title = "Errors"  # type: ignore[union-attr]
    sheet.append(["Task", "Version", "Version name", "Billing period", "Error"])  # type: ignore[union-attr]
    for version_id, period, why in failures:
        sheet.append([taskId, version_id, names.get(version_id), period, why])  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    return Response(out.getvalue(), media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="chargebackTask-{taskId}-errors.xlsx"'})
