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

A re-run whose inputs have not changed is not computed again. Every run reads the
inputs' mark first (``mark``: a count of changes kept by triggers, and the highest bill
and bill-line ids); a run whose commit finds the mark as it read it records the mark
its own writes leave. A later task over the same periods and places that reads that
same mark has the same outcome, with every bill already standing: it copies the
earlier task's per-version outcome and writes no bill, instead of reading millions of
source lines to find that out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Connection, or_, select, text, true, update
from sqlalchemy.orm import Session

from sheaf.config import Settings
from sheaf.db import Database
from sheaf.jobs import faults
from sheaf.jobs import repository as jobs_repository
from sheaf.jobs.errors import JobCancelled, JobLost
from sheaf.jobs.models import Job
from sheaf.kit import arrow_read, bulk
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
        with db.read() as session:
            earlier = _same_outcome(session, task_id, first, last, place,
                                    read_at := mark(session.connection()))
        if earlier is not None:
            progress(0, None, f"Nothing the outcome depends on changed since task {earlier}")
        # (False when something changed between that read and the commit: computed then)
        if earlier is None or not _carry_over(db, task_id, job_id, claim, earlier, read_at):
            progress(0, None, f"Summing source bills for {first}..{last}")
            faults.reached("utility-summing")
            with db.read() as session:
                conn = session.connection()
                plan = _plan(conn, first, last, place, mark(conn))
            progress(plan.targets, plan.targets,
                     f"Writing {plan.outcomes.height} aggregate bills")
            faults.reached("utility-writing")
            _commit(db, task_id, job_id, claim, plan)
    progress(0, None, "Auditing the new bills")
    faults.reached("utility-auditing")
    audit(db, settings, task_id)
    progress(1, 1, "Audited")
    with db.read() as session:
        task = session.get(m.ChargebackTask, task_id)
        assert task is not None
        return RunResult({"billsCreated": task.bills_created, "billsVoided": task.bills_voided,
                          "failedVersions": task.failed_versions,
                          "billingPeriods": f"{task.begin_period}..{task.billing_period}"},
                         task.failed_versions)


@dataclass
class Plan:
    """What a run will write: one outcome per target (engine.OUTCOME_SCHEMA) and, per
    outcome, the aggregate bills standing now for its account and period."""

    targets: int
    outcomes: pl.DataFrame
    # account_id, period, bill_id, use_micro, cost_micro
    standing: pl.DataFrame
    read_at: str  # the inputs' mark, read in the same snapshot


# The inputs' mark: what the change-counting triggers have counted (updates and deletes
# of bills, lines, versions, sources, meters, places, units; on PostgreSQL inserts too),
# and the highest bill and line ids (inserts, on SQLite). Equal marks: equal inputs.
_MARK = ("SELECT (SELECT changes FROM utility_source_state WHERE id = 1), "
         "(SELECT COALESCE(MAX(bill_id), 0) FROM utility_bill), "
         "(SELECT COALESCE(MAX(bodyline_id), 0) FROM utility_bill_line)")


def mark(conn: Connection, lock: bool = False) -> str:
    """The inputs' mark. ``lock`` (in a write): PostgreSQL holds the counter's row until
    the commit, so no counted change can land between this read and the commit."""
    if lock and conn.dialect.name == "postgresql":
        conn.execute(text("INSERT INTO utility_source_state (id, changes) VALUES (1, 0) "
                          "ON CONFLICT (id) DO NOTHING"))
        conn.execute(text("SELECT changes FROM utility_source_state WHERE id = 1 FOR UPDATE"))
    changes, bill, line = conn.execute(text(_MARK)).one()
    return f"{changes}:{bill}:{line}"


def _same_outcome(session: Session, task_id: int, first: int, last: int, place: int | None,
                  read_at: str) -> int | None:
    """The latest task over the same periods and places whose outcome holds at
    ``read_at``, if any."""
    t = m.ChargebackTask
    return session.execute(
        select(t.task_id).where(
            t.task_id != task_id, t.source_mark == read_at, t.begin_period == first,
            t.billing_period == last, t.reversed_date.is_(None),
            t.scope_place_id.is_(None) if place is None else t.scope_place_id == place)
        .order_by(t.task_id.desc()).limit(1)).scalar()


_SOURCE_LINES = (
    # every bill line in the range that counts (neither void nor an accrual); polars keeps
    # the source meters'. One pass over the lines in storage order with a lookup of each
    # bill (SQLite keeps CROSS JOIN's order) is a few times cheaper than starting from the
    # source meters through the meter index (a random read per line).
    "SELECT l.meter_id, b.billing_period, "
    "CASE WHEN l.observation_type_id = ? AND l.value_micro IS NOT NULL THEN l.unit_id END, "
    "CASE WHEN l.observation_type_id = ? THEN COALESCE(l.value_micro, 0) ELSE 0 END, "
    "l.cost_micro "
    "FROM utility_bill_line l CROSS JOIN utility_bill b WHERE b.bill_id = l.bill_id "
    "AND b.billing_period BETWEEN ? AND ? AND b.void = ? AND b.accrual = ?")
_LINE_SCHEMA = {"meter_id": pl.Int64, "period": pl.Int64, "unit_id": pl.Int64,
                "use_micro": pl.Int64, "cost_micro": pl.Int64}
# aggregate bills with their use (one line each); _STANDING picks those a run compares
# with and replaces, and the audits compare with
_AGGREGATE_BILLS = (
    "SELECT b.bill_id, b.account_id, b.billing_period, b.version_id, "
    "(SELECT COALESCE(SUM(l.value_micro), 0) FROM utility_bill_line l "
    " WHERE l.bill_id = b.bill_id), b.total_cost_micro FROM utility_bill b ")
_AGGREGATE_SCHEMA = {"bill_id": pl.Int64, "account_id": pl.Int64, "period": pl.Int64,
                     "version_id": pl.Int64, "use": pl.Int64, "cost": pl.Int64}
_STANDING = _AGGREGATE_BILLS + (
    # (every bill a run made has its version: the partial index on version_id finds
    # them without reading the millions of source bills)
    "WHERE b.version_id IS NOT NULL AND b.task_id IS NOT NULL "
    "AND b.void = ? AND b.billing_period BETWEEN ? AND ?")


def _plan(conn: Connection, first: int, last: int, place: int | None, read_at: str) -> Plan:
    """``place``: only the aggregate meters in its subtree (the submitting user's reach).
    The source bills are read once as a frame and summed by polars per version, period
    and unit, in exact integers."""
    v, am = m.CalculatedVersion, m.Meter
    in_reach = true() if place is None else v.meter_id.in_(
        select(am.meter_id).where(am.place_id.in_(scope.subtree(place))))
    versions = pl.DataFrame(conn.execute(
        select(v.version_id, v.account_id, v.meter_id, am.use_unit_id, v.begin_period,
               v.end_period)
        .join(am, am.meter_id == v.meter_id)
        .where(v.begin_period <= last, or_(v.end_period.is_(None), v.end_period >= first),
               in_reach)).all(),
        schema={"version_id": pl.Int64, "account_id": pl.Int64, "meter_id": pl.Int64,
                "unit_id": pl.Int64, "begin": pl.Int64, "end": pl.Int64}, orient="row")
    sources = bulk.fetch_frame(conn, "SELECT version_id, meter_id FROM utility_version_source",
                               [], {"version_id": pl.Int64, "source_id": pl.Int64}
                               ).join(versions.select("version_id"), on="version_id",
                                      how="semi")
    targets = versions.join(pl.DataFrame({"period": periods.between(first, last)},
                                         schema={"period": pl.Int64}), how="cross").filter(
        (pl.col("begin") <= pl.col("period"))
        & (pl.col("end").is_null() | (pl.col("period") <= pl.col("end")))).join(
        sources.group_by("version_id").agg(pl.len().cast(pl.Int64).alias("sources")),
        on="version_id", how="left").with_columns(pl.col("sources").fill_null(0)).select(
        "version_id", "account_id", "meter_id", "unit_id", "period", "sources")
    use_type = conn.execute(select(m.TypeCode.type_id).where(
        m.TypeCode.kind == "observation", m.TypeCode.code == "USE")).scalar_one()
    # (read in Arrow by a child process: its snapshot may be a moment later than this
    # one, and the commit's check of the mark read above then keeps it from counting)
    lines = arrow_read.fetch_frame(
        conn, _SOURCE_LINES, [use_type, use_type, first, last, False, False], _LINE_SCHEMA,
        rows=conn.execute(text("SELECT COALESCE(MAX(bodyline_id), 0) FROM utility_bill_line"
                               )).scalar_one())
    key = ["version_id", "period"]
    counted = lines.lazy().rename({"meter_id": "source_id"}).join(
        sources.lazy(), on="source_id").join(targets.lazy().select(key), on=key, how="semi")
    sums, present = pl.collect_all([  # (the join is made once for both)
        counted.group_by("version_id", "period", "unit_id").agg(
            pl.col("use_micro").sum(), pl.col("cost_micro").sum()),
        counted.group_by(key).agg(pl.col("source_id").n_unique().cast(pl.Int64)
                                  .alias("found"))])
    del lines
    units = {uid: engine.UnitInfo(code, dim, Decimal(factor)) for uid, code, dim, factor in
             conn.execute(select(m.Unit.unit_id, m.Unit.unit_code, m.Unit.dimension,
                                 m.Unit.factor))}
    outcomes = engine.compute_frame(targets, sums, present, units)
    standing = bulk.fetch_frame(conn, _STANDING, [False, first, last], _AGGREGATE_SCHEMA
                                  ).join(targets.select("account_id").unique(),
                                         on="account_id", how="semi").select(
        "account_id", "period", "bill_id", pl.col("use").alias("old_use"),
        pl.col("cost").alias("old_cost"))
    return Plan(targets.height, outcomes, standing, read_at)


def _changes(plan: Plan) -> tuple[pl.DataFrame, pl.Series]:
    """The outcomes that need a new bill (no standing bill, or one whose use or cost
    differs, or more than one) and the standing bills those replace."""
    key = ["account_id", "period"]
    standing = plan.standing.group_by(key).agg(
        pl.len().alias("standing"), pl.col("old_use").first(), pl.col("old_cost").first())
    due = plan.outcomes.filter(pl.col("error").is_null()).join(standing, on=key, how="left")
    unchanged = ((pl.col("standing") == 1) & (pl.col("old_use") == pl.col("use_micro"))
                 & (pl.col("old_cost") == pl.col("cost_micro")))
    new = due.filter(~unchanged.fill_null(False)).drop("standing", "old_use", "old_cost")
    replaced = plan.standing.join(new.select(key), on=key, how="semi")["bill_id"]
    return new, replaced


def _fence(session: Session, job_id: str, claim: tuple[str, int], now: datetime) -> None:
    """Go on only if this claim still runs the job and nobody asked it to stop (the row
    stays locked until the commit, so neither can change before the data lands)."""
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


def _carry_over(db: Database, task_id: int, job_id: str, claim: tuple[str, int],
                earlier: int, read_at: str) -> bool:
    """Give the task ``earlier``'s outcome, no bill made or voided; False (nothing
    written) if the inputs changed since ``read_at``."""
    now = utcnow()
    with db.write() as session:
        _fence(session, job_id, claim, now)
        conn = session.connection()
        if mark(conn, lock=True) != read_at:
            return False
        before = session.get(m.ChargebackTask, earlier)
        task = session.get(m.ChargebackTask, task_id)
        assert before is not None and task is not None
        empty = "'[]'::json" if conn.dialect.name == "postgresql" else "'[]'"
        conn.execute(text(
            "INSERT INTO utility_task_version (task_id, version_id, billing_period, bill_ids, "
            f"error_message, missing_sources) SELECT :task, version_id, billing_period, {empty}, "
            "error_message, missing_sources FROM utility_task_version WHERE task_id = :earlier "
            "ORDER BY id"), {"task": task_id, "earlier": earlier})
        task.bills_created = task.bills_voided = 0
        task.failed_versions = before.failed_versions
        task.status, task.job_id = before.status, job_id
        task.task_end = now
        task.source_mark = read_at
    return True


def _commit(db: Database, task_id: int, job_id: str, claim: tuple[str, int], plan: Plan
            ) -> None:
    now = utcnow()
    new, voided = _changes(plan)
    with db.write() as session:
        _fence(session, job_id, claim, now)
        conn = session.connection()
        unchanged = mark(conn, lock=True) == plan.read_at
        task = session.get(m.ChargebackTask, task_id)
        assert task is not None
        batch = session.get(m.Batch, task.batch_id) if task.batch_id else None
        stamp = bulk.timestamp(conn, now)
        if voided.len():
            bulk.execute_frame(conn, "UPDATE utility_bill SET void = ?, modified_at = ? "
                                     "WHERE bill_id = ?",
                               pl.DataFrame({"void": True, "at": stamp, "bill_id": voided}))
            # what a reversal of this task un-voids
            bulk.insert_frame(conn, "utility_task_voided", pl.DataFrame({"bill_id": voided}),
                              constants={"task_id": str(task_id)})
        ids = _insert_bills(conn, task, batch, new, stamp)
        records = plan.outcomes.join(ids, on=["version_id", "period"], how="left").select(
            "version_id", pl.col("period").alias("billing_period"),
            pl.when(pl.col("bill_id").is_null()).then(pl.lit("[]"))
            .otherwise(pl.format("[{}]", "bill_id")).alias("bill_ids"),
            pl.col("error").alias("error_message"), "missing_sources")
        bulk.insert_frame(conn, "utility_task_version", records,
                          constants={"task_id": str(task_id)})
        failed = int(plan.outcomes["error"].is_not_null().sum())
        task.bills_created = new.height
        task.bills_voided = voided.len()
        task.failed_versions = failed
        task.status = "CompletedWithErrors" if failed else "Completed"
        # (the job may have started before its submitter recorded it on the task: the task
        # reads as its job until the job ends, so it must know its job from here on)
        task.job_id = job_id
        task.task_end = now
        # what this outcome holds for: the inputs as read, with this run's own writes
        task.source_mark = mark(conn) if unchanged else None


def _insert_bills(conn: Connection, task: m.ChargebackTask, batch: m.Batch | None,
                  new: pl.DataFrame, stamp: str) -> pl.DataFrame:
    """The new aggregate bills (analyzing until audited) and their use lines, with the
    batch's defaults; answers version_id, period, bill_id."""
    if new.height == 0:
        return pl.DataFrame(schema={"version_id": pl.Int64, "period": pl.Int64,
                                    "bill_id": pl.Int64})
    sqlite = conn.dialect.name == "sqlite"
    false, true_ = ("0", "1") if sqlite else ("false", "true")
    constants = {"batch_id": task.batch_id, "task_id": task.task_id,
                 "created_by": task.user_id, "estimated": false, "void": false,
                 "accrual": false, "analyzing": true_, "held": false, "created_at": stamp,
                 "modified_at": stamp}
    if batch is not None:
        if batch.account_period_year is not None:
            constants["account_period"] = (batch.account_period_year * 100
                                           + (batch.account_period_number or 1))
        for name in ("statement_date", "due_date", "next_reading"):
            if (value := getattr(batch, name)) is not None:
                constants[name] = bulk.timestamp(conn, value)
        for name in ("control_code", "invoice_number"):
            constants[name] = getattr(batch, name)
    span = sorted(set(new["period"].to_list()))
    dates = pl.DataFrame({"period": span, "begin_date": [periods.first_day(p) for p in span],
                          "end_date": [periods.first_day(periods.add_months(p, 1))
                                       for p in span]},
                         schema={"period": pl.Int64, "begin_date": pl.Date,
                                 "end_date": pl.Date})
    first = bulk.reserve_ids(conn, "utility_bill", "bill_id", new.height)
    new = new.with_columns((pl.int_range(0, new.height) + first).alias("bill_id")).join(
        dates, on="period", maintain_order="left")
    bulk.insert_frame(conn, "utility_bill", new.select(
        "bill_id", "account_id", pl.col("period").alias("billing_period"), "begin_date",
        "end_date", pl.col("cost_micro").alias("total_cost_micro"), "version_id"),
        constants={k: str(v) for k, v in constants.items() if v is not None})
    use_type = conn.execute(select(m.TypeCode.type_id).where(
        m.TypeCode.kind == "observation", m.TypeCode.code == "USE")).scalar_one()
    bulk.insert_frame(conn, "utility_bill_line", new.select(
        "bill_id", "meter_id", pl.col("use_micro").alias("value_micro"), "unit_id",
        "cost_micro"), constants={"observation_type_id": str(use_type),
                                  "caption": "Aggregated use"})
    return new.select("version_id", "period", "bill_id")


def audit(db: Database, settings: Settings, task_id: int) -> None:
    """Audit the task's bills still analyzing: flag a use or cost far from the prior
    period's aggregate bill, zero use with a cost, and missing source bills; then clear
    ``analyzing``. One transaction: a crash leaves them analyzing for the re-run. The
    checks are column-wise; a variance is compared exactly, in integers:
    |now - before| * 100 > percent * |before|."""
    percent = settings.utility.audit_variance_percent
    with db.write() as session:
        conn = session.connection()
        rows = bulk.fetch_frame(conn, _AGGREGATE_BILLS + "WHERE b.task_id = ? AND "
                                  "b.analyzing = ?", [task_id, True], _AGGREGATE_SCHEMA)
        if rows.height == 0:
            return
        low, high = rows["period"].min(), rows["period"].max()
        newest = bulk.fetch_frame(
            conn, _STANDING,
            [False, periods.add_months(int(low), -1), int(high)],  # type: ignore[arg-type]
            _AGGREGATE_SCHEMA).sort("bill_id").group_by("account_id", "period").agg(
            pl.col("use").last().alias("prior_use"), pl.col("cost").last().alias("prior_cost"))
        missing = bulk.fetch_frame(
            conn, "SELECT version_id, billing_period, missing_sources FROM "
                  "utility_task_version WHERE task_id = ? AND missing_sources > 0", [task_id],
            {"version_id": pl.Int64, "period": pl.Int64, "absent": pl.Int64})
        month = pl.col("period") % 100
        audited = rows.with_columns(
            pl.when(month == 1).then(pl.col("period") - 89).otherwise(pl.col("period") - 1)
            .alias("prior_period")).join(
            newest.rename({"period": "prior_period"}), on=["account_id", "prior_period"],
            how="left").join(missing, on=["version_id", "period"], how="left")

        def far(now: str, before: str) -> pl.Expr:
            change = (pl.col(now).cast(pl.Int128) - pl.col(before).cast(pl.Int128)).abs()
            return ((pl.col(before) != 0)
                    & (change * 100 > pl.col(before).cast(pl.Int128).abs() * percent))

        over = f"differs from the prior period's by more than {percent}%"
        found = [
            ((pl.col("use") == 0) & (pl.col("cost") != 0), pl.lit("Zero use with cost"),
             pl.lit("The bill has a cost but no use")),
            (far("use", "prior_use"), pl.lit("Use variance"), pl.lit(f"Use {over}")),
            (far("cost", "prior_cost"), pl.lit("Cost variance"), pl.lit(f"Cost {over}")),
            (pl.col("absent") > 0, pl.lit("Missing source bills"),
             pl.format("{} source meter(s) had no bill in period {}", "absent", "period"))]
        flags = pl.concat([
            audited.filter(when.fill_null(False)).select(
                "bill_id", pl.lit(order).alias("order"), issue.alias("issue"),
                text.alias("description"))
            for order, (when, issue, text) in enumerate(found)]).sort("bill_id", "order")
        sqlite = conn.dialect.name == "sqlite"
        bulk.insert_frame(conn, "utility_flag", flags.select("bill_id", "issue", "description"),
                          constants={"resolved": "0" if sqlite else "false",
                                     "created_at": bulk.timestamp(conn, utcnow())})
        session.execute(update(m.Bill).where(m.Bill.task_id == task_id,
                                             m.Bill.analyzing.is_(True))
                        .values(analyzing=False))
