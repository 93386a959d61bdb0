"""A job as JSON: the native API's and `sheaf jobs show`'s shape (no web imports here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sheaf.jobs.states import ACTIVE

if TYPE_CHECKING:  # (not imported: `sheaf jobs show` formats plain rows with this too)
    from sheaf.jobs.models import Job


def job_json(job: Job) -> dict[str, Any]:
    def iso(v: Any) -> str | None:
        return v.isoformat() if v is not None else None

    return {
        "id": job.id, "type": job.type, "status": job.status, "attempt": job.attempt,
        "max_attempts": job.max_attempts, "lock_key": job.lock_key,
        "subject_id": job.subject_id, "launcher": job.launcher,
        "created_at": iso(job.created_at), "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at), "heartbeat_at": iso(job.heartbeat_at),
        "cancel_requested": job.cancel_requested_at is not None,
        # what a job asked to stop ends as once its worker has stopped
        "ending_as": job.end_status if job.status in ACTIVE else None,
        "progress": {"current": job.progress_current, "total": job.progress_total,
                     "message": job.progress_message},
        "error_code": job.error_code, "messages": job.messages, "counters": job.counters,
    }
