"""One aggregation run (a chargeback task of type Calculation), inside its job.

1. Read the versions in force in the task's periods, the sums of their source meters'
   bills (grouped in SQL, exact integers) and the aggregate bills standing now.
2. Work out every period's bill in engine.compute.
3. Write, in one transaction fenced on still owning the job: new bills (analyzing), the
   bills they replace voided, each version's outcome, and the task's status and
   counters. A crash before that commit leaves everything as it was and the task
   unapplied; after it, a re-run finds the task applied and writes nothing again.
4. Audit the new bills (a second transaction): flags, and ``analyzing`` cleared.

Re-running a period is safe: an aggregate bill whose use and cost are unchanged is kept
(no write); a changed one is voided and a new bill created. Never a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import repository as jobs_repository
from sheaf.jobs.errors import JobCancelled, JobLost
from sheaf.jobs.models import Job
from sheaf.kit.base import utcnow
from sheaf.utility import engine, periods, scope
from sheaf.utility import models as m

log = logging.getLogger(__name__)
Progress = Callable[[int, int | None, str], None]


@dataclass
class RunResult:
    counters: dict[str, Any]
    failed: int


def run(db: Database, settings: Settings, task_id: int, job_id: str, claim: tuple[str, int],
        progress: Progress) -> RunResult:
    """``claim``: the (worker id, attempt) that runs the job, which the commit is fenced on."""
    with db.read() as session:
        task = session.get(m.ChargebackTask, task_id)
        if task is None:
            raise LookupError(f"chargeback task {task_id} does not exist")
        applied = task.status is not None
        first, last, place = task.begin_period, task.billing_period, task.scope_place_id
    if not applied:
        progress(0, None, f"Summing source bills for {first}..{last}")
        with db.read() as session:
            targets, outcomes, standing = _plan(session.connection(), first, last, place)
        progress(len(targets), len(targets), f"Writing {len(outcomes)} aggregate bills")
        _commit(db, task_id, job_id, claim, outcomes, standing)
    progress(0, None, "Auditing the new bills")
    audit(db, settings, task_id)
    progress(1, 1, "Audited")
    with db.read() as session:
        task = session.get(m.ChargebackTask, task_id)
        assert task is not None
        return RunResult({"billsCreated": task.bills_created, "billsVoided": task.bills_voided,
                          "failedVersions": task.failed_versions,
                          "billingPeriods": f"{task.begin_period}..{task.billing_period}"},
                         task.failed_versions)


def _plan(conn: Connection, first: int, last: int, place: int | None
          ) -> tuple[list[engine.Target], list[engine.Outcome], dict[tuple[int, int], Any]]:
    """``place``: only the aggregate meters in its subtree (the submitting user's reach)."""
    v, am = m.CalculatedVersion, m.Meter
    in_reach = true() if place is None else v.meter_id.in_(
        select(am.meter_id).where(am.place_id.in_(scope.subtree(place))))
    versions = conn.execute(
        select(v.version_id, v.account_id, v.meter_id, v.begin_period, v.end_period,
               am.use_unit_id, select(func.count()).where(m.VersionSource.version_id ==
                                                          v.version_id).scalar_subquery())
        .join(am, am.meter_id == v.meter_id)
        .where(v.begin_period <= last, or_(v.end_period.is_(None), v.end_period >= first),
               in_reach)
        .order_by(v.version_id)).all()
    span = periods.between(first, last)
    targets = [engine.Target(vid, acct, meter, unit, p, count)
               for vid, acct, meter, begin, end, unit, count in versions
               for p in span if begin <= p and (end is None or p <= end)]
    wanted = {(t.version_id, t.period) for t in targets}
    vs, line, bill, obs = m.VersionSource, m.BillLine, m.Bill, m.TypeCode
    is_use = and_(obs.code == "USE", line.value_micro.is_not(None))
    source_rows = (
        select(vs.version_id, bill.billing_period, line.meter_id,
               case((is_use, line.unit_id), else_=None).label("unit_id"),
               func.coalesce(func.sum(case((is_use, line.value_micro), else_=0)), 0),
               func.coalesce(func.sum(line.cost_micro), 0))
        .join(line, line.meter_id == vs.meter_id)
        .join(bill, bill.bill_id == line.bill_id)
        .join(obs, obs.type_id == line.observation_type_id)
        .where(bill.billing_period.between(first, last), bill.void.is_(False),
               bill.accrual.is_(False), vs.version_id.in_(
                   select(v.version_id).where(v.begin_period <= last,
                                              or_(v.end_period.is_(None),
                                                  v.end_period >= first), in_reach)))
        .group_by(vs.version_id, bill.billing_period, line.meter_id,
                  case((is_use, line.unit_id), else_=None)))
    sums: dict[tuple[int, int, int | None], list[int]] = {}
    present: dict[tuple[int, int], set[int]] = {}
    for version_id, period, meter_id, unit_id, use, cost in conn.execute(source_rows):
        if (version_id, period) not in wanted:
            continue
        acc = sums.setdefault((version_id, period, unit_id), [0, 0])
        acc[0] += int(use)
        acc[1] += int(cost)
        present.setdefault((version_id, period), set()).add(meter_id)
    units = {uid: engine.UnitInfo(code, dim, Decimal(factor)) for uid, code, dim, factor in
             conn.execute(select(m.Unit.unit_id, m.Unit.unit_code, m.Unit.dimension,
                                 m.Unit.factor))}
    outcomes = engine.compute(
        targets, [engine.SourceSum(vid, p, u, use, cost)
                  for (vid, p, u), (use, cost) in sums.items()],
        {k: len(s) for k, s in present.items()}, units)
    # the aggregate bills standing now: (account, period) -> (bill id, use, cost)
    use_line = (select(func.coalesce(func.sum(line.value_micro), 0))
                .where(line.bill_id == bill.bill_id).scalar_subquery())
    accounts = {t.account_id for t in targets}
    standing: dict[tuple[int, int], Any] = {}
    rows = conn.execute(
        select(bill.account_id, bill.billing_period, bill.bill_id, use_line,
               bill.total_cost_micro)
        .where(bill.task_id.is_not(None), bill.void.is_(False),
               bill.billing_period.between(first, last)))
    for account_id, period, bill_id, use, cost in rows:
        if account_id in accounts:
            standing.setdefault((account_id, period), []).append((bill_id, int(use), int(cost)))
    return targets, outcomes, standing


def _commit(db: Database, task_id: int, job_id: str, claim: tuple[str, int],
            outcomes: list[engine.Outcome], standing: dict[tuple[int, int], Any]) -> None:
    now = utcnow()
    with db.write() as session:
        # The fence: this claim still runs the job and nobody asked it to stop (the row
        # stays locked until the commit, so neither can change before the data lands).
        owned = session.execute(
            update(Job).where(Job.id == job_id, *jobs_repository.owned_by(*claim),
                              Job.cancel_requested_at.is_(None)).values(updated_at=now)
            .execution_options(synchronize_session=False))
        if owned.rowcount != 1:  # type: ignore[attr-defined]
            job = jobs_repository.get(session, job_id)
            if job is not None and job.status == "running" and (
                    job.worker_id, job.attempt) == claim:
                raise JobCancelled()
            raise JobLost(f"job {job_id} is no longer this worker's: nothing written")
        task = session.get(m.ChargebackTask, task_id)
        assert task is not None
        batch = session.get(m.Batch, task.batch_id) if task.batch_id else None
        use_type = session.execute(select(m.TypeCode.type_id).where(
            m.TypeCode.kind == "observation", m.TypeCode.code == "USE")).scalar_one()
        new_bills: list[tuple[engine.Outcome, dict[str, Any]]] = []
        voided: list[int] = []
        records: list[dict[str, Any]] = []
        for o in outcomes:
            t = o.target
            record = {"task_id": task_id, "version_id": t.version_id, "billing_period": t.period,
                      "bill_ids": [], "error_message": o.error,
                      "missing_sources": o.missing_sources}
            records.append(record)
            if o.error is not None:
                continue
            old = standing.get((t.account_id, t.period), [])
            if len(old) == 1 and old[0][1] == o.use_micro and old[0][2] == o.cost_micro:
                continue  # unchanged: no write
            voided.extend(b[0] for b in old)
            new_bills.append((o, record))
        if voided:
            for start in range(0, len(voided), 500):
                session.execute(update(m.Bill).where(m.Bill.bill_id.in_(voided[start:start + 500]))
                                .values(void=True, modified_at=now))
            # what a reversal of this task un-voids
            session.execute(insert(m.TaskVoided), [{"task_id": task_id, "bill_id": b}
                                                   for b in voided])
        if new_bills:
            ids = _insert_bills(session, task, batch, new_bills, use_type, now)
            for (_, record), bill_id in zip(new_bills, ids, strict=True):
                record["bill_ids"] = [bill_id]
        if records:
            session.execute(insert(m.TaskVersion), records)
        failed = sum(1 for o in outcomes if o.error is not None)
        task.bills_created = len(new_bills)
        task.bills_voided = len(voided)
        task.failed_versions = failed
        task.status = "CompletedWithErrors" if failed else "Completed"
        task.task_end = now


def _insert_bills(session: Session, task: m.ChargebackTask, batch: m.Batch | None,
                  new_bills: list[tuple[engine.Outcome, dict[str, Any]]], use_type: int,
                  now: Any) -> list[int]:
    def account_period() -> int | None:
        if batch is None or batch.account_period_year is None:
            return None
        return batch.account_period_year * 100 + (batch.account_period_number or 1)

    rows = []
    for o, _ in new_bills:
        begin = periods.first_day(o.target.period)
        rows.append({
            "account_id": o.target.account_id, "batch_id": task.batch_id,
            "billing_period": o.target.period, "account_period": account_period(),
            "begin_date": begin, "end_date": _next_month(begin),
            "total_cost_micro": o.cost_micro, "estimated": False, "void": False,
            "accrual": False, "analyzing": True, "held": False,
            "statement_date": batch.statement_date if batch else None,
            "due_date": batch.due_date if batch else None,
            "next_reading": batch.next_reading if batch else None,
            "control_code": batch.control_code if batch else None,
            "invoice_number": batch.invoice_number if batch else None,
            "note": None, "task_id": task.task_id, "version_id": o.target.version_id,
            "created_by": task.user_id, "created_at": now, "modified_at": now})
    ids = list(session.execute(insert(m.Bill).returning(m.Bill.bill_id,
                                                        sort_by_parameter_order=True),
                               rows).scalars())
    session.execute(insert(m.BillLine), [
        {"bill_id": bill_id, "meter_id": o.target.meter_id, "observation_type_id": use_type,
         "caption": "Aggregated use", "value_micro": o.use_micro,
         "unit_id": o.target.unit_id, "cost_micro": o.cost_micro}
        for (o, _), bill_id in zip(new_bills, ids, strict=True)])
    return ids


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def audit(db: Database, settings: Settings, task_id: int) -> None:
    """Audit the task's bills still analyzing: flag a use or cost far from the prior
    period's aggregate bill, zero use with a cost, and missing source bills; then clear
    ``analyzing``. One transaction: a crash leaves them analyzing for the re-run."""
    limit = Decimal(settings.utility.audit_variance_percent) / 100
    with db.write() as session:
        bill, line = m.Bill, m.BillLine
        use_of = (select(func.coalesce(func.sum(line.value_micro), 0))
                  .where(line.bill_id == bill.bill_id).scalar_subquery())
        rows = session.execute(
            select(bill.bill_id, bill.account_id, bill.billing_period, bill.version_id,
                   use_of, bill.total_cost_micro)
            .where(bill.task_id == task_id, bill.analyzing.is_(True))).all()
        if not rows:
            return
        missing = {(v, p): n for v, p, n in session.execute(
            select(m.TaskVersion.version_id, m.TaskVersion.billing_period,
                   m.TaskVersion.missing_sources).where(m.TaskVersion.task_id == task_id))}
        accounts = {r[1] for r in rows}
        wanted = {(r[1], periods.add_months(r[2], -1)) for r in rows}
        low, high = min(p for _, p in wanted), max(p for _, p in wanted)
        priors: dict[tuple[int, int], tuple[int, int]] = {}
        for account_id, period, use, cost in session.execute(
                select(bill.account_id, bill.billing_period, use_of, bill.total_cost_micro)
                .where(bill.task_id.is_not(None), bill.void.is_(False),
                       bill.billing_period.between(low, high))
                .order_by(bill.bill_id)):
            if account_id in accounts:
                priors[(account_id, period)] = (int(use), int(cost))  # the newest wins
        flags = []
        for bill_id, account_id, period, version_id, use, cost in rows:
            prior = priors.get((account_id, periods.add_months(period, -1)))
            if use == 0 and cost != 0:
                flags.append((bill_id, "Zero use with cost",
                              "The bill has a cost but no use"))
            if prior is not None:
                for name, now_value, before in (("Use", use, prior[0]), ("Cost", cost, prior[1])):
                    if before and abs(Decimal(now_value - before) / abs(before)) > limit:
                        flags.append((bill_id, f"{name} variance",
                                      f"{name} differs from the prior period's by more "
                                      f"than {settings.utility.audit_variance_percent}%"))
            absent = missing.get((version_id, period), 0)
            if absent:
                flags.append((bill_id, "Missing source bills",
                              f"{absent} source meter(s) had no bill in period {period}"))
        if flags:
            session.execute(insert(m.Flag), [
                {"bill_id": b, "issue": issue, "description": text, "resolved": False,
                 "created_at": utcnow()} for b, issue, text in flags])
        session.execute(update(bill).where(bill.task_id == task_id, bill.analyzing.is_(True))
                        .values(analyzing=False))
