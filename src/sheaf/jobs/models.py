"""The job row (single source of truth for a run) and its event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from sheaf.kit.base import Base, UTCDateTime, new_id, utcnow

ACTIVE_SQL = "status IN ('queued', 'running')"
# The same condition for queries: SQLite uses a partial index only where the query repeats
# its condition, and with bound values (status IN (?, ?)) it cannot know that it does: it
# walked every queued job instead (a thousand of them under load).
IS_ACTIVE = text(f"job.{ACTIVE_SQL}")


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (
        # A key is one client's: the same key from another client is another request.
        UniqueConstraint("idempotency_client", "idempotency_key"),
        # One active job per lock key: how "an aggregation is already running" is known.
        Index(
            "uq_job_active_lock_key",
            "lock_key",
            unique=True,
            sqlite_where=text(ACTIVE_SQL),
            postgresql_where=text(ACTIVE_SQL),
        ),
        Index("ix_job_status_run_after", "status", "run_after"),
        Index("ix_job_subject", "subject_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # who sent the key, and a digest of the request it came with (see JobService.submit)
    idempotency_client: Mapped[str | None] = mapped_column(String(64))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    lock_key: Mapped[str | None] = mapped_column(String(200))
    # What the job is about (a source id, a member guid): for per-subject listings.
    subject_id: Mapped[str | None] = mapped_column(String(64))
    launcher: Mapped[str] = mapped_column(String(200), default="System")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    worker_id: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    progress_current: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_message: Mapped[str | None] = mapped_column(String(500))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What a job asked to stop while running ends as (cancelled, or failed when an operator
    # set it to Error) once its worker has stopped: its lock is held until then.
    end_status: Mapped[str | None] = mapped_column(String(16))

    error_code: Mapped[str | None] = mapped_column(String(64))
    # [{"level": "info"|"warning"|"error", "key": str, "text": str}]
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    counters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobEvent(Base):
    __tablename__ = "job_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
