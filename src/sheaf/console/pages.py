"""Console pages. Plain HTML with escaping; refreshes itself while jobs run.

The console shows what the API would show the same client: its credential's authorities
and governance groups decide, through the API's own rules (identity/api/deps.py), which
sources, account counts, jobs and identity counts it sees.
"""

from __future__ import annotations

import base64
from contextlib import suppress
from dataclasses import dataclass
from html import escape

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import ColumnElement, and_, func, select, true
from starlette.concurrency import run_in_threadpool

from sheaf.auth.signin import TooManyFailures, sign_in
from sheaf.auth.tokens import Principal
from sheaf.identity.api.deps import (
    IDENTITY_READERS,
    SOURCE_ADMINS,
    TASK_READERS,
    managed_by,
    sources_of,
    tasks_of,
)
from sheaf.identity.api.tasks import IDENTITY_JOBS, reached_tasks
from sheaf.identity.models import Account, Identity, Source
from sheaf.jobs import live
from sheaf.jobs.models import Job
from sheaf.jobs.states import ACTIVE
from sheaf.runtime import Runtime, get_runtime

# Every page shows tasks at least: a client that may read none cannot use the console.
CONSOLE_READERS = frozenset(TASK_READERS) | frozenset(IDENTITY_READERS)


@dataclass(frozen=True)
class Viewer:
    """The signed-in client, and how far it reaches (None: everything; see deps.py)."""

    who: Principal
    sources: frozenset[str] | None  # governance groups whose sources it reads
    show_sources: bool
    show_identities: bool
    jobs: ColumnElement[bool]  # the jobs it may read


def _challenge(text: str) -> HTTPException:
    return HTTPException(status_code=401, detail=text,
                         headers={"WWW-Authenticate": 'Basic realm="sheaf console"'})


def _basic(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    client_id = secret = ""
    if scheme.lower() == "basic":
        with suppress(ValueError, UnicodeDecodeError):
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    return client_id, secret


def _viewer(runtime: Runtime, client_id: str, secret: str, address: str) -> Viewer:
    try:
        credential = sign_in(runtime.db, runtime.sign_in_guard, client_id, secret, address)
    except TooManyFailures as exc:
        raise HTTPException(status_code=429, detail=str(exc),
                            headers={"Retry-After": str(exc.retry_after)}) from None
    if credential is None:
        raise _challenge("Sign in with an API client id and secret")
    who = Principal(client_id=credential.client_id,
                    authorities=frozenset(credential.authorities),
                    scopes=frozenset(credential.scopes))
    if not who.has_any(CONSOLE_READERS):
        raise HTTPException(
            status_code=403,
            detail=(f"Client {who.client_id} may not use the console: its authorities "
                    f"({', '.join(sorted(who.authorities)) or 'none'}) let it read no "
                    "sources, tasks or identities. The console needs one of "
                    f"{', '.join(sorted(CONSOLE_READERS))}."),
        )
    show_sources = who.has_any(frozenset(SOURCE_ADMINS))
    if "ORG_ADMIN" in who.authorities:
        jobs: ColumnElement[bool] = true()  # every domain's jobs, as /api/jobs shows them
    else:
        jobs = and_(IDENTITY_JOBS, reached_tasks(tasks_of(runtime, who)))
    return Viewer(
        who=who, sources=sources_of(runtime, who) if show_sources else frozenset(),
        show_sources=show_sources, show_identities=who.has_any(frozenset(IDENTITY_READERS)),
        jobs=jobs,
    )


async def console_user(request: Request, runtime: Runtime = Depends(get_runtime)) -> Viewer:
    """HTTP Basic with an API client's id and secret: the browser asks for them once.
    Failed attempts count against the same limits as POST /oauth/token."""
    client_id, secret = _basic(request)
    if not client_id:
        raise _challenge("Sign in with an API client id and secret")
    address = request.client.host if request.client else "-"
    # (scrypt is deliberately slow, and the failure counts may be in Redis: off the loop)
    return await run_in_threadpool(_viewer, runtime, client_id, secret, address)


router = APIRouter(prefix="/console", include_in_schema=False,
                   dependencies=[Depends(console_user)])

STYLE = """
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
td,th{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:left}
.succeeded{color:#17803d}.warning{color:#a66a00}.failed,.cancelled{color:#b42318}.running,.queued{color:#175cd3}
progress{width:10rem}code{font-size:12px}
"""


def _page(title: str, body: str, refresh: bool) -> HTMLResponse:
    meta = '<meta http-equiv="refresh" content="2">' if refresh else ""
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset=utf-8>{meta}<title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>sheaf</h1>{body}</body></html>"
    )


@router.get("")
def root() -> RedirectResponse:
    return RedirectResponse("/console/")


@router.get("/", response_class=HTMLResponse)
def overview(runtime: Runtime = Depends(get_runtime),
             viewer: Viewer = Depends(console_user)) -> HTMLResponse:
    with runtime.db.read() as session:
        sources = session.execute(
            select(Source, func.count(Account.id))
            .outerjoin(Account, Account.source_id == Source.id)
            .where(managed_by(viewer.sources))
            .group_by(Source.id).order_by(Source.name)
        ).all() if viewer.show_sources else []
        identities = session.execute(
            select(func.count()).select_from(Identity)
        ).scalar_one() if viewer.show_identities else None
        jobs = list(session.execute(
            select(Job).where(viewer.jobs).order_by(Job.created_at.desc()).limit(50)
        ).scalars())
    body = ""
    if viewer.show_sources:
        rows = "".join(
            f"<tr><td>{escape(s.name)}</td><td><code>{s.id}</code></td><td>{n}</td>"
            f"<td>{'yes' if s.authoritative else 'no'}</td><td>{s.delete_threshold}%</td>"
            f"<td>{s.last_aggregated or '-'}</td></tr>"
            for s, n in sources
        )
        body += (
            f"<h2>Sources</h2><table><tr><th>name</th><th>id</th><th>accounts</th>"
            f"<th>authoritative</th><th>delete threshold</th><th>last aggregated</th></tr>"
            f"{rows}</table>"
        )
    if identities is not None:
        body += f"<p>{identities} identities</p>"
    # (a running aggregation's rows written are kept beside the database: jobs.live)
    job_rows = "".join(_job_row(live.overlay(j, runtime.settings.data_dir)) for j in jobs)
    body += (
        f"<h2>Jobs</h2><table><tr><th>id</th><th>type</th><th>status</th><th>progress</th>"
        f"<th>counters</th><th>messages</th><th>created</th></tr>{job_rows}</table>"
    )
    active = any(j.status in ACTIVE for j in jobs)
    return _page("sheaf console", body, refresh=active)


def _job_row(job: Job) -> str:
    total = job.progress_total or 0
    bar = (f"<progress value={job.progress_current} max={total}></progress> "
           f"{job.progress_current:,}/{total:,}" if total else "")
    counters = ", ".join(f"{k}={v}" for k, v in job.counters.items() if k != "applications")
    messages = "<br>".join(escape(m["text"]) for m in job.messages)
    return (
        f"<tr><td><code>{job.id}</code></td><td>{escape(job.type)}</td>"
        f"<td class={job.status}>{job.status}</td>"
        f"<td>{bar} {escape(job.progress_message or '')}</td><td>{escape(counters)}</td>"
        f"<td>{messages}</td><td>{job.created_at:%Y-%m-%d %H:%M:%S}</td></tr>"
    )
