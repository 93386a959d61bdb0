"""Job handlers of the utility domain."""

from __future__ import annotations

from sheaf.jobs.context import JobContext
from sheaf.jobs.errors import JobFailed
from sheaf.jobs.registry import JobOutcome, job_handler

AGGREGATE = "utility.aggregate"


@job_handler(AGGREGATE, max_attempts=3)
def aggregate(ctx: JobContext) -> JobOutcome:
    """Run one chargeback task's aggregation (see utility.aggregation)."""
    # (imported here: it brings polars, and API processes import this module for its name)
    from sheaf.utility import aggregation


    def progress(current: int, total: int | None, message: str) -> None:
        ctx.progress(current, total, message, force=True)

    try:
        result = aggregation.run(ctx.db, ctx.settings, int(ctx.payload["task_id"]), ctx.job_id,
                                 (ctx.worker_id, ctx.attempt), progress)
    except LookupError as exc:
        raise JobFailed("task_missing", str(exc)) from None
    messages = []
    if result.failed:
        messages.append({"level": "warning", "key": "failed_versions",
                         "text": f"{result.failed} version-periods failed; see the task's "
                                 "errorOutput"})
    return JobOutcome(warning=bool(result.failed), messages=messages, counters=result.counters)
