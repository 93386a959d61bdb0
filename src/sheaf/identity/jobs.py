"""Job handlers of the identity domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from sheaf.blobs import BlobStore
from sheaf.jobs.context import JobContext
from sheaf.jobs.errors import JobCancelled, JobFailed
from sheaf.jobs.registry import JobOutcome, job_handler

if TYPE_CHECKING:
    from sheaf.identity.aggregation import AggregationResult

LOAD_ACCOUNTS = "identity.load_accounts"


@job_handler(LOAD_ACCOUNTS, max_attempts=3)
def load_accounts(ctx: JobContext) -> JobOutcome:
    """Aggregate one uploaded snapshot into a source's accounts."""
    # (imported here: it brings polars, and API processes import this module for its name)
    from sheaf.identity.aggregation import AggregationRefused, aggregate

    payload = ctx.payload
    blobs = BlobStore(ctx.settings.blob_dir)
    file = blobs.path(payload["blob"])
    if not file.exists():
        raise JobFailed("file_missing", "The uploaded file is no longer available")

    def progress(current: int, total: int | None, message: str) -> None:
        ctx.progress(current, total, message, force=True)  # (each phase's start)

    def writing(current: int, total: int | None, message: str) -> None:
        # the rows written, at most every progress interval, from inside the write
        # transaction (on SQLite, beside the database: see jobs.live)
        ctx.progress(current, total, message, in_transaction=True)

    def record(session: Session, result: AggregationResult) -> None:
        # The task's outcome commits with the accounts, fenced on this worker still
        # owning the job: a crash just after the commit cannot rerun an applied load.
        ctx.finish(session, _outcome(result))

    try:
        result = aggregate(
            ctx.db, ctx.settings, payload["source_id"], file,
            optimize=not payload.get("disable_optimization", False), progress=progress,
            record=record, writing=writing,
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
    # (any other error is retried, and the retry needs the file; a job lost to another
    # worker leaves the file to that worker)
    blobs.delete(payload["blob"])
    return _outcome(result)


def _outcome(result: AggregationResult) -> JobOutcome:
    messages = [{"level": "warning", "key": "aggregation_warning", "text": w}
                for w in result.warnings]
    return JobOutcome(warning=bool(result.warnings), messages=messages, counters=result.counters)
