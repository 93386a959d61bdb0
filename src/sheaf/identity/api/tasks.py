"""Following aggregations: task-status (every version) and account-aggregation status."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import ColumnElement, and_, bindparam, case, func, select, true
from sqlalchemy.orm import Session

from sheaf.errors import BadRequest, Forbidden, NotFound
from sheaf.identity.api import wire
from sheaf.identity.api.deps import managed_by, reach, require_managed, task_reach, task_writer
from sheaf.identity.jobs import LOAD_ACCOUNTS
from sheaf.identity.models import Source
from sheaf.jobs import live
from sheaf.jobs.models import IS_ACTIVE, Job
from sheaf.jobs.states import JobStatus
from sheaf.kit.filters import Field, fetch_page, page, parse_filters, parse_sorters
from sheaf.kit.jsonbody import read_json
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["task-management"])

VERSIONS = ("beta", "v2024", "v2025", "v2026")
JOB_TYPES = {LOAD_ACCOUNTS: wire.TASK_DEFINITION_TYPE}
TASK_TYPES = {
    "CLOUD_ACCOUNT_AGGREGATION", "CLOUD_GROUP_AGGREGATION", "CLOUD_PROCESS_UNCORRELATED_ACCOUNTS",
    "CLOUD_REFRESH_ROLE", "SOURCE_APPLICATION_DISCOVERY", "AI_AGENT_AGGREGATION",
    "APPLICATION_DISCOVERY", "MACHINE_IDENTITY_AGGREGATION", "MACHINE_IDENTITY_DELETION",
    "ACCOUNT_DELETION", "CLOUD_ENTITLEMENT_IMPORT", "CLOUD_UNCORRELATED_REFRESH",
    "CLOUD_IDENTITY_AGGREGATION", "CLOUD_ATTRIBUTE_SYNCHRONIZATION", "IDENTITY_REFRESH",
}
COMPLETION = {"SUCCESS", "WARNING", "ERROR", "TERMINATED", "TEMPERROR"}

completion_expr = case(
    (Job.status == "succeeded", "SUCCESS"),
    (Job.status == "warning", "WARNING"),
    (Job.status == "cancelled", "TERMINATED"),
    (and_(Job.status == "failed", Job.error_code == "crashed"), "TEMPERROR"),
    (Job.status == "failed", "ERROR"),
    else_=None,
)
type_expr = case(*((Job.type == k, v) for k, v in JOB_TYPES.items()), else_=None)


def _enum(name: str, allowed: set[str]) -> Any:
    def convert(value: Any) -> Any:
        if value not in allowed:
            raise BadRequest(f"Error converting Enumerated string ({name}) value ({value})")
        return value

    return convert


TASK_FILTERS = {
    "id": Field(Job.id, frozenset({"eq", "in"})),
    "sourceId": Field(Job.subject_id, frozenset({"eq", "in"})),
    "completionStatus": Field(completion_expr, frozenset({"eq", "in", "isnull"}),
                              _enum("completionStatus", COMPLETION)),
    "type": Field(type_expr, frozenset({"eq", "in"}), _enum("type", TASK_TYPES)),
    "launcher": Field(Job.launcher, frozenset({"eq", "in"})),
}
TASK_SORTERS = {"created": Job.created_at, "id": Job.id}
IDENTITY_JOBS = Job.type.in_(list(JOB_TYPES))


def _render(session: Session, jobs: list[Job], data_dir: Path) -> list[dict[str, Any]]:
    ids = {j.payload.get("source_id") for j in jobs} - {None}
    rows = session.execute(select(Source.id, Source.name).where(Source.id.in_(ids)))
    names = dict(rows.all())
    return [wire.task_status(j, names.get(str(j.payload.get("source_id"))),
                             live.latest(data_dir, j)) for j in jobs]


def _job(session: Session, task_id: str, groups: frozenset[str] | None,
         what: str = "TaskStatus") -> Job:
    """The task, if it exists and ``groups`` (see deps.task_reach) reach its source."""
    job = session.get(Job, task_id)
    if job is None or job.type not in JOB_TYPES:
        raise NotFound(f"{what} with the given id {task_id} was not found")
    if groups is not None:
        source = session.get(Source, job.subject_id) if job.subject_id else None
        if source is None:
            raise Forbidden(f"Task {task_id} is not about a source this SOURCE_SUBADMIN "
                            "administers")
        require_managed(source, groups)
    return job


def reached_tasks(groups: frozenset[str] | None) -> ColumnElement[bool]:
    """Jobs about a source ``groups`` (see deps.task_reach) reach."""
    if groups is None:
        return true()
    return Job.subject_id.in_(select(Source.id).where(managed_by(groups)))


# The read clients poll (often a hundred at a time): one Core statement for the job, its
# source's name and its source's group, on a pooled connection. Loading an ORM Job and
# then its source's name in a session cost about six times the CPU.
# (One statement object, its id bound at execution: SQLAlchemy computes its cache key once
# instead of for a new statement per request.)
_ONE_TASK = select(
    *Job.__table__.c, Source.name.label("source_name"),
    Source.management_workgroup.label("source_workgroup"),
).outerjoin(Source, Source.id == Job.subject_id).where(Job.id == bindparam("task_id"))


def read_task(runtime: Runtime, task_id: str, groups: frozenset[str] | None,
              what: str = "TaskStatus") -> tuple[Job, str | None]:
    """``_job`` without a session: the job (a row with every Job column under its
    attribute name, which is all the wire shapes read) and its source's name."""
    with runtime.db.one() as conn:
        row = conn.execute(_ONE_TASK, {"task_id": task_id}).first()
    if row is None or row.type not in JOB_TYPES:
        raise NotFound(f"{what} with the given id {task_id} was not found")
    if groups is not None:
        if row.source_name is None:  # no source (Source.name is never null)
            raise Forbidden(f"Task {task_id} is not about a source this SOURCE_SUBADMIN "
                            "administers")
        require_managed(Source(id=row.subject_id, management_workgroup=row.source_workgroup),
                        groups)
    return cast(Job, row), row.source_name


def get_task_status(id: str, runtime: Runtime = Depends(get_runtime),
                    groups: frozenset[str] | None = Depends(task_reach)) -> Response:
    """One task's status."""
    # (In the thread pool, not on the event loop, although the read takes about 0.1 ms:
    # inline, a hundred pollers kept the loop so busy that account pages, in threads,
    # starved. Rendered here: FastAPI would first validate the dict against the
    # annotation.)
    job, source_name = read_task(runtime, id, groups)
    return JSONResponse(wire.task_status(job, source_name,
                                         live.latest(runtime.settings.data_dir, job)))


def list_task_status(
    response: Response,
    limit: int | None = Query(None), offset: int | None = Query(None),
    count: bool = Query(False), filters: str | None = Query(None),
    sorters: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
    groups: frozenset[str] | None = Depends(task_reach),
) -> list[dict[str, Any]]:
    """Task statuses; `filters=completionStatus isnull` lists the ones still running."""
    limit, offset = page(limit, offset)
    where = and_(IDENTITY_JOBS, reached_tasks(groups), parse_filters(filters, TASK_FILTERS))
    order = parse_sorters(sorters, TASK_SORTERS, [Job.created_at, Job.id])
    with runtime.db.read() as session:
        jobs = [job for (job,) in fetch_page(
            session, select(Job), Job, where, order, limit, offset, count, response)]
        return _render(session, jobs, runtime.settings.data_dir)


def pending_tasks(
    request: Request, response: Response,
    limit: int | None = Query(None), offset: int | None = Query(None),
    count: bool = Query(False), runtime: Runtime = Depends(get_runtime),
    groups: frozenset[str] | None = Depends(task_reach),
) -> Any:
    """Deprecated: the unfinished tasks (HEAD answers only X-Total-Count)."""
    limit, offset = page(limit, offset)
    where = and_(IDENTITY_JOBS, reached_tasks(groups), IS_ACTIVE)
    with runtime.db.read() as session:
        total = session.execute(select(func.count()).select_from(Job).where(where)).scalar_one()
        jobs = list(session.execute(
            select(Job).where(where).order_by(Job.created_at).limit(limit).offset(offset)
        ).scalars())
        if request.method == "HEAD":
            return Response(status_code=200 if total else 204,
                            headers={"X-Total-Count": str(total)})
        if count:
            response.headers["X-Total-Count"] = str(total)
        return _render(session, jobs, runtime.settings.data_dir)


PATCHABLE = {"/completionStatus", "/completed", "/progress"}
ENDINGS = {"ERROR": JobStatus.FAILED, "TEMPERROR": JobStatus.FAILED,
           "TEMP_ERROR": JobStatus.FAILED, "TERMINATED": JobStatus.CANCELLED}


async def patch_task_status(
    id: str, request: Request, runtime: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Clear a stuck task with JSON Patch, e.g. replace /completionStatus with "Error"."""
    ops = await read_json(request)
    if not isinstance(ops, list) or not ops:
        raise BadRequest("The body must be a non-empty JSON Patch array")
    ending = None
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in ("replace", "add"):
            raise BadRequest("Only 'replace' operations are supported on a task status")
        if not isinstance(op.get("path"), str) or op["path"] not in PATCHABLE:
            raise BadRequest(f"Path {op.get('path')!r} cannot be changed; patchable: "
                             f"{', '.join(sorted(PATCHABLE))}")
        if op["path"] == "/completionStatus":
            value = str(op.get("value", "")).upper()
            if value not in ENDINGS:
                raise BadRequest("completionStatus can only be set to Error, TempError or "
                                 f"Terminated on an unfinished task; got {op.get('value')!r}")
            ending = ENDINGS[value]
    with runtime.db.read() as session:
        job = _job(session, id, None)  # (task_writer: administrators of every source)
    if ending is not None:
        if job.finished_at is not None:
            raise BadRequest(f"Task {id} has already completed "
                             f"({wire.completion_status(job)}); it cannot be changed")
        runtime.jobs.end(id, ending, "Task status set by an administrator",
                         "cleared_by_operator")
    with runtime.db.read() as session:
        return _render(session, [_job(session, id, None)], runtime.settings.data_dir)[0]


def aggregation_status(id: str, runtime: Runtime = Depends(get_runtime),
                       groups: frozenset[str] | None = Depends(reach)) -> dict[str, Any]:
    """In-progress account aggregation status; gone an hour after the aggregation ends."""
    body = wire.aggregation_status(read_task(runtime, id, groups, "Account aggregation")[0])
    if body is None:
        raise NotFound(f"Account aggregation {id} finished more than an hour ago")
    return body


def _routes(prefix: str, suffix: str = "") -> None:
    """Register the task-status family under one path shape."""
    write = [Depends(task_writer)]  # (readers: the endpoints' task_reach)
    base = f"{prefix}/task-status{suffix}"
    if not suffix:
        router.add_api_route(f"{base}/pending-tasks", pending_tasks, methods=["GET", "HEAD"],
                             name=f"pending_tasks_{prefix}")
    router.add_api_route(base, list_task_status, methods=["GET"],
                         name=f"list_task_status_{prefix}{suffix}")
    router.add_api_route(f"{base}/{{id}}", get_task_status, methods=["GET"],
                         name=f"get_task_status_{prefix}{suffix}")
    router.add_api_route(f"{base}/{{id}}", patch_task_status, methods=["PATCH"],
                         dependencies=write, name=f"patch_task_status_{prefix}{suffix}")
    agg = (f"{prefix}/account-aggregations/v1/{{id}}/status" if suffix
           else f"{prefix}/account-aggregations/{{id}}/status")
    router.add_api_route(agg, aggregation_status, methods=["GET"],
                         name=f"aggregation_status_{prefix}{suffix}")


for version in VERSIONS:
    _routes(f"/{version}")
_routes("", "/v1")
