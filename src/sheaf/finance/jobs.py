"""Job handlers of the finance domain: one job per member aggregation (lock key
``member:<guid>``)."""

from __future__ import annotations

from sheaf.blobs import BlobStore
from sheaf.jobs.context import JobContext
from sheaf.jobs.errors import JobCancelled, JobFailed
from sheaf.jobs.registry import JobOutcome, job_handler

AGGREGATE = "finance.aggregate_member"


@job_handler(AGGREGATE, max_attempts=3)
def aggregate_member(ctx: JobContext) -> JobOutcome:
    """Aggregate one member: log in, gather, reconcile, apply atomically."""
    from sheaf.finance.aggregation import Run, aggregate

    def progress(current: int, total: int | None, message: str) -> None:
        # (throttled like every job's: a member that aggregates in a tenth of a second
        # need not take the database's write lock four more times to say so; the
        # member's own status flags, which MX clients poll, are written as it goes)
        ctx.progress(current, total, message)

    blob = ctx.payload.get("blob")
    try:
        outcome = aggregate(Run(ctx.db, ctx.settings, ctx.job_id, ctx.worker_id), ctx.payload,
                            progress)
    except (JobFailed, JobCancelled):
        _drop(ctx, blob)
        raise
    # (any other error is retried, and the retry needs the uploaded file)
    _drop(ctx, blob)
    return outcome


def _drop(ctx: JobContext, blob: object) -> None:
    if blob:
        BlobStore(ctx.settings.blob_dir).delete(str(blob))
