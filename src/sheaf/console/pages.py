"""Console pages. Plain HTML with escaping; refreshes itself while jobs run."""

from __future__ import annotations

import base64
from contextlib import suppress
from html import escape

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from sheaf.auth import credentials
from sheaf.identity.models import Account, Identity, Source
from sheaf.jobs import live
from sheaf.jobs.models import Job
from sheaf.runtime import Runtime, get_runtime


def console_user(request: Request, runtime: Runtime = Depends(get_runtime)) -> str:
    """HTTP Basic with an API client's id and secret: the browser asks for them once."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    client_id = secret = ""
    if scheme.lower() == "basic":
        with suppress(ValueError, UnicodeDecodeError):
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    if client_id:
        with runtime.db.read() as session:
            if credentials.verify(session, client_id, secret) is not None:
                return client_id
    raise HTTPException(
        status_code=401, detail="Sign in with an API client id and secret",
        headers={"WWW-Authenticate": 'Basic realm="sheaf console"'},
    )


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
def overview(runtime: Runtime = Depends(get_runtime)) -> HTMLResponse:
    with runtime.db.read() as session:
        sources = session.execute(
            select(Source, func.count(Account.id))
            .outerjoin(Account, Account.source_id == Source.id)
            .group_by(Source.id).order_by(Source.name)
        ).all()
        identities = session.execute(select(func.count()).select_from(Identity)).scalar_one()
        jobs = list(session.execute(
            select(Job).order_by(Job.created_at.desc()).limit(50)
        ).scalars())
    rows = "".join(
        f"<tr><td>{escape(s.name)}</td><td><code>{s.id}</code></td><td>{n}</td>"
        f"<td>{'yes' if s.authoritative else 'no'}</td><td>{s.delete_threshold}%</td>"
        f"<td>{s.last_aggregated or '-'}</td></tr>"
        for s, n in sources
    )
    # (a running aggregation's rows written are kept beside the database: jobs.live)
    job_rows = "".join(_job_row(live.overlay(j, runtime.settings.data_dir)) for j in jobs)
    body = (
        f"<h2>Sources</h2><table><tr><th>name</th><th>id</th><th>accounts</th>"
        f"<th>authoritative</th><th>delete threshold</th><th>last aggregated</th></tr>{rows}"
        f"</table><p>{identities} identities</p>"
        f"<h2>Jobs</h2><table><tr><th>id</th><th>type</th><th>status</th><th>progress</th>"
        f"<th>counters</th><th>messages</th><th>created</th></tr>{job_rows}</table>"
    )
    active = any(j.status in ("queued", "running") for j in jobs)
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
