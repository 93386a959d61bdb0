"""Chargeback tasks: submitting an aggregation, reading tasks, reversing them.

A task row holds what EnergyCAP's ``ChargebackTaskResponse`` shows; its job row holds
the run. Until the run commits, the task's status is read from its job (Queued,
Processing, Failed); the commit writes Completed or CompletedWithErrors with the bills.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.errors import BadRequest, NotFound
from sheaf.jobs.models import Job
from sheaf.jobs.service import LockHeld, active_holder
from sheaf.jobs.states import ACTIVE
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime
from sheaf.utility import models as m
from sheaf.utility import periods, schemas, scope, service, wire
from sheaf.utility.errors import field_error
from sheaf.utility.jobs import AGGREGATE

# One aggregation at a time: versions may share source meters and accounts.
LOCK_KEY = "utility-aggregation:all"
JOB_STATUS = {"queued": "Queued", "running": "Processing", "failed": "Failed",
              "cancelled": "Failed", "succeeded": "Completed", "warning": "CompletedWithErrors"}


def current_period(now: datetime | None = None) -> int:
    return periods.of((now or utcnow()).date())


def submit(runtime: Runtime, who: EnergyCapPrincipal,
           body: schemas.AggregationSettings | None, periods_count: int | None = None) -> int:
    """Record the task (and its batch) and queue its job; returns the task id.
    ``periods_count`` overrides the configured number of periods (the CLI's --periods)."""
    body = body or schemas.AggregationSettings.model_validate({})
    end = body.billing_period if body.billing_period is not None else current_period()
    if (why := periods.problem(end)) is not None:
        raise field_error("billingPeriod", why)
    count = periods_count or runtime.settings.utility.aggregation_periods
    first = periods.add_months(end, -(count - 1))
    with runtime.db.write() as session:
        if (holder := active_holder(session, LOCK_KEY)) is not None:
            raise BadRequest(f"An aggregation is already running (job {holder}); try again "
                             "when it has ended")
        batch = (service.open_batch(session, who, body.batch_settings)
                 if body.batch_settings is not None else service.batch_for_bills(session, who))
        task = m.ChargebackTask(
            chargeback_type="Calculation", user_id=who.user_id, batch_id=batch.batch_id,
            billing_period=end, begin_period=first, scope_place_id=who.topmost_place_id,
            comment=body.note, task_begin=utcnow(),
            settings={"billingPeriod": end, "beginPeriod": first, "note": body.note,
                      "batchSettings": body.batch_settings.model_dump(mode="json",
                                                                      by_alias=True)
                      if body.batch_settings else None})
        session.add(task)
        session.flush()
        task_id = task.task_id
    try:
        job = runtime.jobs.submit(AGGREGATE, {"task_id": task_id}, lock_key=LOCK_KEY,
                                  subject_id=str(task_id), launcher=who.user_code)
        job_id = job.id
    except LockHeld as held:  # lost a race with another submission
        job_id = runtime.jobs.refuse(
            AGGREGATE, {"task_id": task_id}, code="aggregation_running",
            message=f"An aggregation is already running (job {held.holder_id})",
            subject_id=str(task_id), launcher=who.user_code).id
    with runtime.db.write() as session:
        session.execute(update(m.ChargebackTask).where(m.ChargebackTask.task_id == task_id)
                        .values(job_id=job_id))
    return task_id


# A task's outcome commits before its job audits the new bills and ends: until the job has
# ended (and let go of the lock) the task reads as its job does, so a client that waits
# for Completed can submit the next run at once.
ACTIVE_JOB = tuple(sorted(s.value for s in ACTIVE))  # (the job core's, as column values)


def status_of(session: Session, task: m.ChargebackTask) -> str:
    job = session.get(Job, task.job_id) if task.job_id else None
    if task.status is not None and (job is None or job.status not in ACTIVE_JOB):
        return task.status
    return JOB_STATUS.get(job.status, "Queued") if job else "Queued"


def _counts(session: Session, task_id: int) -> tuple[int, int]:
    # Both are read on every poll of a task: the first through the partial index of
    # analyzing bills (``= true``, the index's own condition, so SQLite uses it), the
    # second from the unresolved flags (few) rather than the task's bills (10^5 in a run).
    analyzing = session.execute(select(func.count()).select_from(m.Bill).where(
        m.Bill.task_id == task_id, m.Bill.analyzing == True)).scalar_one()  # noqa: E712
    flags = session.execute(
        select(func.count()).select_from(m.Flag).where(
            m.Flag.resolved.is_(False), exists().where(m.Bill.bill_id == m.Flag.bill_id,
                                                       m.Bill.task_id == task_id))
    ).scalar_one()
    return analyzing, flags


def view(session: Session, task: m.ChargebackTask) -> dict[str, Any]:
    """``ChargebackTaskResponse``."""
    analyzing, flags = _counts(session, task.task_id)
    status = status_of(session, task)
    end = task.task_end
    if end is None and status == "Failed" and task.job_id:
        job = session.get(Job, task.job_id)
        end = job.finished_at if job else None
    return {
        "taskId": task.task_id, "chargebackType": task.chargeback_type,
        "billingPeriod": task.billing_period,
        "batch": wire.batch_child(session.get(m.Batch, task.batch_id))
        if task.batch_id else None,
        "user": wire.user_child(session, task.user_id), "taskBegin": wire.iso(task.task_begin),
        "taskEnd": wire.iso(end), "status": status, "comment": task.comment,
        "settings": task.settings, "numberOfBillsCreated": task.bills_created,
        "numberOfFailedVersions": task.failed_versions,
        "numberOfAnalyzingBills": analyzing, "numberOfUnresolvedFlags": flags,
        "reversedBy": wire.user_child(session, task.reversed_by),
        "reversedDate": wire.iso(task.reversed_date), "workflow": None,
    }


def get(session: Session, task_id: int, who: EnergyCapPrincipal | None = None
        ) -> m.ChargebackTask:
    """The task; with ``who``, only if it is theirs to see."""
    if who is not None:
        return scope.visible(session, who, m.ChargebackTask, task_id,  # type: ignore[no-any-return]
                             "Chargeback task")
    task = session.get(m.ChargebackTask, task_id)
    if task is None:
        raise NotFound(f"Chargeback task {task_id} was not found")
    return task


def reverse(session: Session, who: EnergyCapPrincipal, task_id: int, *, remove: bool) -> None:
    """Void (or delete) every bill the task created and un-void the bills its run voided
    (the ones its new bills replaced), so the data is as before the run. A task is
    reversed once, only after its run applied, and not while a later, unreversed run
    has replaced some of its bills (un-voiding under that run's bills would make
    duplicates): that run is reversed first."""
    task = get(session, task_id, who)
    if task.reversed_date is not None:
        raise BadRequest(f"Chargeback task {task_id} was already reversed on "
                         f"{task.reversed_date.isoformat()}")
    if (status := status_of(session, task)) not in ("Completed", "CompletedWithErrors"):
        raise BadRequest(f"Chargeback task {task_id} is {status}: only a completed task can "
                         "be reversed")
    voided = m.TaskVoided
    later = session.execute(
        select(voided.task_id).join(m.Bill, m.Bill.bill_id == voided.bill_id)
        .where(m.Bill.task_id == task_id, voided.task_id != task_id)
        .order_by(voided.task_id.desc()).limit(1)).scalar()
    if later is not None:
        raise BadRequest(f"Chargeback task {later} replaced bills of chargeback task "
                         f"{task_id}: reverse task {later} first")
    now = utcnow()
    if remove:
        session.execute(delete(m.Bill).where(m.Bill.task_id == task_id))
    else:
        session.execute(update(m.Bill).where(m.Bill.task_id == task_id, m.Bill.void.is_(False))
                        .values(void=True, modified_at=now))
    session.execute(update(m.Bill).where(m.Bill.bill_id.in_(
        select(voided.bill_id).where(voided.task_id == task_id))).values(void=False,
                                                                          modified_at=now))
    session.execute(delete(voided).where(voided.task_id == task_id))
    task.reversed_by = who.user_id
    task.reversed_date = now


def version_views(session: Session, who: EnergyCapPrincipal, version_id: int
                  ) -> list[dict[str, Any]]:
    """``ChargebackTaskVersionResponse`` for each task (``who`` may see) that ran the
    version."""
    rows = session.execute(
        select(m.TaskVersion, m.ChargebackTask)
        .join(m.ChargebackTask, m.ChargebackTask.task_id == m.TaskVersion.task_id)
        .where(m.TaskVersion.version_id == version_id,
               scope.own(who, m.ChargebackTask.user_id))
        .order_by(m.TaskVersion.task_id, m.TaskVersion.billing_period)).all()
    out = []
    for tv, task in rows:
        out.append({**view(session, task), "versionId": tv.version_id,
                    "numberOfBillsCreated": len(tv.bill_ids), "errorMessage": tv.error_message,
                    "destinationBillIds": tv.bill_ids, "sourceBillId": None})
    return out


def failures(session: Session, task_id: int) -> list[tuple[int, int, str]]:
    """(version, billing period, why) of every failed version-period of a task."""
    rows = session.execute(
        select(m.TaskVersion.version_id, m.TaskVersion.billing_period,
               m.TaskVersion.error_message)
        .where(m.TaskVersion.task_id == task_id, m.TaskVersion.error_message.is_not(None))
        .order_by(m.TaskVersion.version_id, m.TaskVersion.billing_period)).all()
    return [(v, p, str(e)) for v, p, e in rows]
