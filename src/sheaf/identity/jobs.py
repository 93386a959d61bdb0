"""Job handlers of the identity domain."""

from __future__ import annotations

from sheaf.blobs import BlobStore
from sheaf.identity.aggregation import AggregationRefused, aggregate
from sheaf.jobs.context import JobContext
from sheaf.jobs.errors import JobCancelled, JobFailed
from sheaf.jobs.registry import JobOutcome, job_handler

LOAD_ACCOUNTS = "identity.load_accounts"


@job_handler(LOAD_ACCOUNTS, max_attempts=3)
def load_accounts(ctx: JobContext) -> JobOutcome:
    """Aggregate one uploaded snapshot into a source's accounts."""
    payload = ctx.payload
    blobs = BlobStore(ctx.settings.blob_dir)
    file = blobs.path(payload["blob"])
    if not file.exists():
        raise JobFailed("file_missing", "The uploaded file is no longer available")

    def progress(current: int, total: int | None, message: str, *,
                 in_transaction: bool = False) -> None:
        # Each phase's start and end are recorded; the rows written in between, at most
        # every progress interval (on SQLite, beside the database: see jobs.live).
        ctx.progress(current, total, message, force=not in_transaction,
                     in_transaction=in_transaction)

    try:
        result = aggregate(
            ctx.db, ctx.settings, payload["source_id"], file,
            optimize=not payload.get("disable_optimization", False), progress=progress,
        )
    except AggregationRefused as refused:
        blobs.delete(payload["blob"])
        ctx.clear_live_progress()
        raise JobFailed(refused.code, refused.message) from None
    except JobCancelled:
        blobs.delete(payload["blob"])
        ctx.clear_live_progress()
        raise
    except BaseException:
        # (a retry starts from its own numbers; after success the kept ones are the last
        # word until the job's end is recorded, and ignored after it)
        ctx.clear_live_progress()
        raise
    # (any other error is retried, and the retry needs the file)
    blobs.delete(payload["blob"])
    messages = [{"level": "warning", "key": "aggregation_warning", "text": w}
                for w in result.warnings]
    return JobOutcome(warning=bool(result.warnings), messages=messages, counters=result.counters)
