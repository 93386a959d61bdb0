"""Job handlers of the finance domain: one job per member aggregation (lock key
``member:<guid>``)."""

from __future__ import annotations

from sheaf.jobs.context import JobContext
from sheaf.jobs.registry import JobOutcome, job_handler

AGGREGATE = "finance.aggregate_member"


@job_handler(AGGREGATE, max_attempts=3)
def aggregate_member(ctx: JobContext) -> JobOutcome:
    """Aggregate one member: log in, gather, reconcile, apply atomically."""
    from sheaf.finance.aggregation import Run, aggregate

    def progress(current: int, total: int | None, message: str) -> None:
        ctx.progress(current, total, message, force=True)

    return aggregate(Run(ctx.db, ctx.settings, ctx.job_id, ctx.worker_id), ctx.payload,
                     progress)
