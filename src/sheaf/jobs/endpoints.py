"""The native job API: /api/jobs, cancel, and live progress as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from sheaf.auth.deps import require
from sheaf.errors import BadRequest, NotFound
from sheaf.jobs import repository
from sheaf.jobs.models import Job
from sheaf.jobs.states import TERMINAL, JobStatus
from sheaf.jobs.views import job_json
from sheaf.runtime import Runtime, get_runtime

# Jobs of every domain and every client, and cancelling them: the tenant administrator's.
router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(require("ORG_ADMIN"))])


def _get(runtime: Runtime, job_id: str) -> Job:
    job = runtime.jobs.get(job_id)
    if job is None:
        raise NotFound(f"Job {job_id} was not found")
    return job


@router.get("")
def list_jobs(
    status: str | None = Query(None), type: str | None = Query(None),
    limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=2**63 - 1),
    runtime: Runtime = Depends(get_runtime),
) -> list[dict[str, Any]]:
    """Jobs, newest first, optionally by status and type."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    if status:
        if status not in {s.value for s in JobStatus}:
            raise BadRequest(f"status must be one of {', '.join(s.value for s in JobStatus)}")
        query = query.where(Job.status == status)
    if type:
        query = query.where(Job.type == type)
    with runtime.db.read() as session:
        return [job_json(j) for j in session.execute(query).scalars()]


@router.get("/{job_id}")
def get_job(job_id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One job with its progress and outcome."""
    return job_json(_get(runtime, job_id))


@router.post("/{job_id}/cancel", status_code=202)
def cancel_job(job_id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Cancel a queued job, or ask a running one to stop at its next safe point."""
    job = runtime.jobs.cancel(job_id)
    if job is None:
        raise NotFound(f"Job {job_id} was not found")
    return job_json(job)


@router.get("/{job_id}/events")
async def job_events(
    job_id: str, request: Request, runtime: Runtime = Depends(get_runtime),
    interval: float = Query(0.5, ge=0.05, le=10),
) -> StreamingResponse:
    """Server-Sent Events: `progress` whenever the job changes, then `end` with its outcome."""
    await run_in_threadpool(_get, runtime, job_id)

    async def stream() -> AsyncIterator[str]:
        last = None
        while True:
            job = await run_in_threadpool(_get, runtime, job_id)
            body = job_json(job)
            if body != last:
                last = body
                kind = "end" if JobStatus(job.status) in TERMINAL else "progress"
                stamp = job.updated_at.timestamp()
                yield f"event: {kind}\nid: {stamp}\ndata: {json.dumps(body)}\n\n"
                if kind == "end":
                    return
            if await request.is_disconnected():
                return
            await asyncio.sleep(interval)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.get("/{job_id}/history")
def job_history(job_id: str, runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """Every status change of a job, oldest first."""
    _get(runtime, job_id)
    with runtime.db.read() as session:
        return [{"at": e.at.isoformat(), "from": e.from_status, "to": e.to_status,
                 "message": e.message} for e in repository.events(session, job_id)]
