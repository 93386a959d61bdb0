"""Bills, batches and audit flags: create_bill, get_bills, get_bill, open_batch,
get_batches, get_batch, update_batch_status, close_batch, get_flag, edit_flag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select, update

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.errors import NotFound
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime, get_runtime
from sheaf.utility import models as m
from sheaf.utility import schemas, scope, service, wire
from sheaf.utility.api.deps import (
    IdPath,
    Paging,
    bills_and_batches_create,
    bills_and_batches_manage,
    bills_and_batches_view,
)
from sheaf.utility.api.filters import FilterField, boolean, integer, parse
from sheaf.utility.errors import field_error

router = APIRouter(tags=["EnergyCAP bills and batches"])

BILL_FILTERS = {
    "billId": FilterField(m.Bill.bill_id, integer),
    "billingPeriod": FilterField(m.Bill.billing_period, integer),
    "accountId": FilterField(m.Bill.account_id, integer),
    "accountCode": FilterField(
        select(m.Account.account_code).where(m.Account.account_id == m.Bill.account_id)
        .scalar_subquery()),
    "batchId": FilterField(m.Bill.batch_id, integer),
    "void": FilterField(m.Bill.void, boolean),
    "accrual": FilterField(m.Bill.accrual, boolean),
    "analyzing": FilterField(m.Bill.analyzing, boolean),
    "chargebackTaskId": FilterField(m.Bill.task_id, integer),
}
BATCH_FILTERS = {
    "batchId": FilterField(m.Batch.batch_id, integer),
    "batchCode": FilterField(m.Batch.batch_code),
    "batchStatus": FilterField(m.Batch.status),
    "userId": FilterField(m.Batch.user_id, integer),
}


@router.post("/api/v3/bill")
def create_bill(body: schemas.BillCreate, runtime: Runtime = Depends(get_runtime),
                who: EnergyCapPrincipal = Depends(bills_and_batches_create)
                ) -> dict[str, int]:
    """Create a bill in the caller's open batch (opened when missing)."""
    with runtime.db.write() as session:
        return {"billId": service.create_bill(session, who, body).bill_id}


@router.get("/api/v3/bill")
def get_bills(response: Response, paging: Paging = Depends(),
              filter: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
              who: EnergyCapPrincipal = Depends(bills_and_batches_view)
              ) -> list[dict[str, Any]]:
    """Bills, paged, with EnergyCAP's filter syntax (billingPeriod, accountId, batchId,
    void, ...)."""
    conditions = [*parse(filter, BILL_FILTERS), scope.bills(who)]
    with runtime.db.read() as session:
        rows = paging.rows(session, response, m.Bill, m.Bill.bill_id, conditions)
        return [wire.bill(session, b) for b in rows]


@router.get("/api/v3/bill/{billId}")
def get_bill(billId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
             who: EnergyCapPrincipal = Depends(bills_and_batches_view)) -> dict[str, Any]:
    """One bill."""
    with runtime.db.read() as session:
        return wire.bill(session, scope.visible(session, who, m.Bill, billId, "Bill"))


# -- batches -----------------------------------------------------------------------------
def _batch(session: Any, batch: m.Batch) -> dict[str, Any]:
    return wire.batch(session, batch, service.batch_counts(session, [batch.batch_id])
                      [batch.batch_id])


@router.post("/api/v3/batch")
def open_batch(body: schemas.BatchCreate, runtime: Runtime = Depends(get_runtime),
               who: EnergyCapPrincipal = Depends(bills_and_batches_create)
               ) -> dict[str, Any]:
    """Open a batch for the caller (one open batch per user)."""
    with runtime.db.write() as session:
        return _batch(session, service.open_batch(session, who, body))


@router.get("/api/v3/batch")
def get_batches(response: Response, paging: Paging = Depends(),
                filter: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
                who: EnergyCapPrincipal = Depends(bills_and_batches_view)
                ) -> list[dict[str, Any]]:
    """Batches, paged, with EnergyCAP's filter syntax."""
    conditions = [*parse(filter, BATCH_FILTERS), scope.own(who, m.Batch.user_id)]
    with runtime.db.read() as session:
        rows = paging.rows(session, response, m.Batch, m.Batch.batch_id, conditions)
        counts = service.batch_counts(session, [b.batch_id for b in rows])
        return [wire.batch(session, b, counts[b.batch_id]) for b in rows]


@router.get("/api/v3/batch/{batchId}")
def get_batch(batchId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
              who: EnergyCapPrincipal = Depends(bills_and_batches_view)) -> dict[str, Any]:
    """One batch with its bill count, running total, flags and analyzing bills."""
    with runtime.db.read() as session:
        return _batch(session, scope.visible(session, who, m.Batch, batchId, "Batch"))


@router.put("/api/v202206/batch/{batchId}/status", status_code=204)
def update_batch_status(batchId: IdPath, body: schemas.UpdateBatchStatus,  # noqa: N803
                        runtime: Runtime = Depends(get_runtime),
                        who: EnergyCapPrincipal = Depends(bills_and_batches_manage)
                        ) -> Response:
    """Open, Pending (voids the batch's bills) or Closed (un-voids them from Pending)."""
    with runtime.db.write() as session:
        service.set_batch_status(session, who, batchId, body)
    return Response(status_code=204)


@router.put("/api/v3/batch/close/{batchId}")
def close_batch(batchId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
                who: EnergyCapPrincipal = Depends(bills_and_batches_manage)
                ) -> dict[str, Any]:
    """Close a batch."""
    with runtime.db.write() as session:
        closed = schemas.UpdateBatchStatus.model_validate({"batchStatus": "Closed"})
        service.set_batch_status(session, who, batchId, closed)
        return _batch(session, scope.visible(session, who, m.Batch, batchId, "Batch"))


# -- flags -------------------------------------------------------------------------------
FLAG_STATUSES = {1: "Unresolved", 2: "Resolved"}


def _flag(session: Any, bill_id: int) -> dict[str, Any]:
    issues = session.execute(select(m.Flag).where(m.Flag.bill_id == bill_id)
                             .order_by(m.Flag.flag_id)).scalars().all()
    if not issues:
        raise NotFound(f"Bill {bill_id} has no flag")
    resolved = all(i.resolved for i in issues)
    return {
        "flagId": issues[0].flag_id, "flagType": {"flagTypeId": 1, "flagTypeInfo": "Audit"},
        "flagStatus": {"flagStatusId": 2 if resolved else 1,
                       "flagStatusInfo": FLAG_STATUSES[2 if resolved else 1]},
        "createdBy": None, "createdDate": wire.iso(issues[0].created_at),
        "modifiedBy": None, "modifiedDate": wire.iso(issues[-1].created_at),
        "costRecovery": None, "flagEvents": [], "assignees": [],
        "flagIssues": [{"flagIssueTypeId": i.flag_id, "flagIssueTypeInfo": i.issue,
                        "flagIssueTypeDescription": i.description,
                        "flagIssueCategory": "Resolved" if i.resolved else "Audit"}
                       for i in issues],
    }


def _bill_entity(entityType: str) -> None:  # noqa: N803
    if entityType.lower() != "bill":
        raise field_error("entityType", "only bill flags exist here")


@router.get("/api/v3/flag/{entityType}/{entityId}")
def get_flag(entityType: str, entityId: IdPath, runtime: Runtime = Depends(get_runtime),  # noqa: N803
             who: EnergyCapPrincipal = Depends(bills_and_batches_view)) -> dict[str, Any]:
    """A bill's audit flag: the issues its audits found."""
    _bill_entity(entityType)
    with runtime.db.read() as session:
        scope.visible(session, who, m.Bill, entityId, "Bill")
        return _flag(session, entityId)


@router.put("/api/v3/flag/{entityType}/{entityId}")
def edit_flag(entityType: str, entityId: IdPath, body: dict[str, Any],  # noqa: N803
              runtime: Runtime = Depends(get_runtime),
              who: EnergyCapPrincipal = Depends(bills_and_batches_manage)
              ) -> dict[str, Any]:
    """Resolve (flagStatusId 2) or reopen (1) a bill's flag."""
    _bill_entity(entityType)
    status = body.get("flagStatusId")
    if status not in FLAG_STATUSES:
        raise field_error("flagStatusId", "must be 1 (Unresolved) or 2 (Resolved)")
    with runtime.db.write() as session:
        scope.visible(session, who, m.Bill, entityId, "Bill")
        _flag(session, entityId)
        session.execute(update(m.Flag).where(m.Flag.bill_id == entityId)
                        .values(resolved=status == 2))
        session.execute(update(m.Bill).where(m.Bill.bill_id == entityId)
                        .values(modified_at=utcnow()))
        return _flag(session, entityId)
