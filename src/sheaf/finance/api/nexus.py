"""MX Nexus: per-user sessions, no user guid in the paths.

``GET /{client_id}/users/{user_id}/api_token`` with ``MD-API-KEY`` answers a one-time API
token (10 minutes); ``POST /sessions`` with ``MD-API-TOKEN`` answers a session token;
every other call sends ``MD-SESSION-TOKEN``, which lasts ``session_ttl_seconds`` from its
last use; an expired or unknown one answers 401 with code 4011. A session sees only its
own user's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from sheaf.auth import mx
from sheaf.errors import Forbidden, NotFound, Unauthorized
from sheaf.finance import repository, service
from sheaf.finance.api import docs
from sheaf.finance.api import nexus_wire as wire
from sheaf.finance.api.deps import NexusJSON, date_range, flag, json_body, paging
from sheaf.finance.errors import SessionExpired
from sheaf.finance.models import (
    FinAccount,
    FinHolding,
    FinTransaction,
    FinUser,
    Institution,
    Member,
)
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["finance: MX Nexus"], default_response_class=NexusJSON)


@dataclass(frozen=True)
class NexusUser:
    client_id: str
    user: FinUser


def _session_user(runtime: Runtime, token: str) -> NexusUser:
    ttl = runtime.settings.finance.session_ttl_seconds
    with runtime.db.write() as session:
        found = mx.use_session(session, token, ttl) if token else None
        user = session.get(FinUser, found[1]) if found else None
    if found is None or user is None or user.client_id != found[0]:
        raise SessionExpired("The session has expired or is unknown; create a new one with "
                             "POST /sessions")
    return NexusUser(found[0], user)


async def session_user(request: Request, runtime: Runtime = Depends(get_runtime)) -> NexusUser:
    """The user of the MD-SESSION-TOKEN's session (whose clock restarts)."""
    token = request.headers.get("md-session-token", "").strip()
    return await run_in_threadpool(_session_user, runtime, token)


# -- tokens and sessions -------------------------------------------------------------------

def _api_token(runtime: Runtime, request: Request, client_id: str, user_id: str) -> str:
    key = request.headers.get("md-api-key", "")
    if not key or not mx.BasicVerifier.verify(runtime.db, client_id, key):
        raise Unauthorized("MD-API-KEY is missing or is not this client's api key")
    with runtime.db.write() as session:
        user = repository.user_by_id(session, client_id, user_id)
        if user is None:
            raise NotFound(f"User {user_id} was not found for client {client_id}")
        return mx.issue_api_token(session, client_id, user.guid,
                                  runtime.settings.finance.api_token_ttl_seconds)


@router.get("/{client_id}/users/{user_id}/api_token", response_model=None)
@router.get("/{client_id}/users/{user_id}/api_token.json", response_model=None,
            include_in_schema=False)
@router.get("/{client_id}/users/{user_id}/api_token.xml", response_model=None,
            include_in_schema=False)
def get_api_token(client_id: str, user_id: str, request: Request,
                  runtime: Runtime = Depends(get_runtime)) -> Response:
    """A one-time API token for a user (by guid or partner id), valid 10 minutes."""
    token = _api_token(runtime, request, client_id, user_id)
    if request.url.path.endswith(".xml"):
        return Response(f"<api_token><token>{token}</token></api_token>",
                        media_type="application/vnd.moneydesktop.sso.v3+xml")
    return NexusJSON({"api_token": {"token": token}},
                     media_type="application/vnd.moneydesktop.sso.v3+json")


@router.post("/sessions")
def create_session(request: Request, runtime: Runtime = Depends(get_runtime)) -> NexusJSON:
    """Spend an MD-API-TOKEN on a session: ``{"session": {"token": ...}}``."""
    api_token = request.headers.get("md-api-token", "").strip()
    with runtime.db.write() as session:
        opened = mx.open_session(session, api_token,
                                 runtime.settings.finance.session_ttl_seconds) \
            if api_token else None
    if opened is None:
        raise Unauthorized("MD-API-TOKEN is missing, unknown, already used or expired; "
                           "get a new one from /{client_id}/users/{user_id}/api_token")
    return NexusJSON({"session": {"token": opened[0]}})


# -- members -------------------------------------------------------------------------------

def _member(session: Session, who: NexusUser, member_guid: str) -> Member:
    return service.get_member(session, who.user, member_guid)


def _view(runtime: Runtime, who: NexusUser, guids: list[str]) -> list[dict[str, Any]]:
    with runtime.db.read() as session:
        members = [_member(session, who, g) for g in guids]
        busy = service.being_aggregated(session, guids)
        institutions = {i.code: i for i in session.execute(select(Institution).where(
            Institution.code.in_({m.institution_code for m in members}))).scalars()}
        return [wire.member_json(m, institutions[m.institution_code],
                                 being_aggregated=m.guid in busy,
                                 job_id=busy.get(m.guid, m.job_id),
                                 status=service.effective_status(m)) for m in members]


def _member_guids(runtime: Runtime, who: NexusUser) -> list[str]:
    with runtime.db.read() as session:
        return list(session.execute(select(Member.guid).where(
            Member.user_guid == who.user.guid).order_by(Member.guid)).scalars())


@router.get("/members")
def list_members(runtime: Runtime = Depends(get_runtime),
                 who: NexusUser = Depends(session_user)) -> NexusJSON:
    """The session user's members."""
    return NexusJSON({"members": _view(runtime, who, _member_guids(runtime, who))})


async def _aggregate(request: Request, runtime: Runtime, who: NexusUser,
                     guids: list[str], *, every: bool = False) -> list[dict[str, Any]]:
    body = await json_body(request, None, required=False)
    transactions = flag(request, "include_transactions", body=body)
    holdings = flag(request, "include_holdings", body=body)
    for guid in guids:
        try:
            await run_in_threadpool(service.aggregate, runtime, who.client_id, guid,
                                    include_transactions=transactions,
                                    include_holdings=holdings)
        except Forbidden:
            if not every:  # (aggregate-all skips members not opted into PFM)
                raise
    return await run_in_threadpool(_view, runtime, who, guids)


async def aggregate_all(request: Request, runtime: Runtime = Depends(get_runtime),
                        who: NexusUser = Depends(session_user)) -> NexusJSON:
    """Aggregate every member of the session user."""
    guids = await run_in_threadpool(_member_guids, runtime, who)
    return NexusJSON({"members": await _aggregate(request, runtime, who, guids, every=True)})


async def aggregate_member(member_guid: str, request: Request,
                           runtime: Runtime = Depends(get_runtime),
                           who: NexusUser = Depends(session_user)) -> NexusJSON:
    """Start an aggregation (200 with the member); include_holdings and
    include_transactions as query parameters or JSON body (default true). A member whose
    use_cases lack PFM answers 403."""
    await run_in_threadpool(_view, runtime, who, [member_guid])  # 404 before anything else
    return NexusJSON({"member": (await _aggregate(request, runtime, who, [member_guid]))[0]})


# GET and POST each, under their own operation ids (/members/aggregate before
# /members/{member_guid}, which would take it otherwise)
for _method in ("GET", "POST"):
    router.add_api_route("/members/aggregate", aggregate_all, methods=[_method],
                         openapi_extra=docs.params(docs.INCLUDES),
                         operation_id=f"aggregate_all_members_{_method.lower()}")
    for _verb in ("aggregate", "refresh"):
        router.add_api_route(f"/members/{{member_guid}}/{_verb}", aggregate_member,
                             methods=[_method], openapi_extra=docs.params(docs.INCLUDES),
                             operation_id=f"{_verb}_member_nexus_{_method.lower()}")


@router.get("/members/{member_guid}")
def read_member(member_guid: str, runtime: Runtime = Depends(get_runtime),
                who: NexusUser = Depends(session_user)) -> NexusJSON:
    """One member: connection_status and connection_status_id, is_being_aggregated."""
    return NexusJSON({"member": _view(runtime, who, [member_guid])[0]})


@router.put("/members/{member_guid}", openapi_extra=docs.MEMBER_UPDATE)
async def update_member(member_guid: str, request: Request,
                        runtime: Runtime = Depends(get_runtime),
                        who: NexusUser = Depends(session_user)) -> NexusJSON:
    """Update a member (body rooted as {"member": ...} or not); new credentials start an
    aggregation unless skip_aggregation."""
    fields = await json_body(request, "member")
    skip = fields.get("skip_aggregation") is True or \
        request.query_params.get("skip_aggregation", "").lower() == "true"

    def update() -> bool:
        with runtime.db.write() as session:
            return service.update_member(session, runtime, _member(session, who, member_guid),
                                         fields)

    if await run_in_threadpool(update) and not skip:
        await run_in_threadpool(service.aggregate, runtime, who.client_id, member_guid)
    return NexusJSON({"member": (await run_in_threadpool(_view, runtime, who,
                                                         [member_guid]))[0]})


@router.put("/members/{member_guid}/resume", openapi_extra=docs.RESUME)
async def resume(member_guid: str, request: Request, runtime: Runtime = Depends(get_runtime),
                 who: NexusUser = Depends(session_user)) -> NexusJSON:
    """Answer a CHALLENGED member's questions; 405 when it is not CHALLENGED."""
    fields = await json_body(request, "member")
    await run_in_threadpool(service.resume, runtime, who.client_id, who.user, member_guid,
                            fields.get("challenges"))
    return NexusJSON({"member": (await run_in_threadpool(_view, runtime, who,
                                                         [member_guid]))[0]})


@router.delete("/members/{member_guid}")
def delete_member(member_guid: str, runtime: Runtime = Depends(get_runtime),
                  who: NexusUser = Depends(session_user)) -> NexusJSON:
    """Delete a member and its data (200 with {}, as Nexus DELETEs answer)."""
    service.delete_member(runtime, who.client_id, who.user.guid, member_guid)
    return NexusJSON({})


# -- data ----------------------------------------------------------------------------------

@router.get("/accounts", openapi_extra=docs.params(docs.PAGE))
def list_accounts(request: Request, runtime: Runtime = Depends(get_runtime),
                  who: NexusUser = Depends(session_user)) -> NexusJSON:
    """The session user's accounts."""
    page, per_page = paging(request)
    query = select(FinAccount).where(FinAccount.user_guid == who.user.guid) \
        .order_by(FinAccount.guid)
    with runtime.db.read() as session:
        rows, total = repository.page(session, query, page, per_page)
    return NexusJSON({"accounts": [wire.account_json(a) for a in rows],
                      "pagination": _pages(page, per_page, total)})


@router.get("/transactions", openapi_extra=docs.params(docs.PAGE, docs.DATES))
def list_transactions(request: Request, runtime: Runtime = Depends(get_runtime),
                      who: NexusUser = Depends(session_user)) -> NexusJSON:
    """The session user's transactions: ``account_guid`` / ``account_guids[]``, from_date
    (default 120 days ago), to_date (default 5 days ahead), newest first."""
    page, per_page = paging(request)
    start, end = date_range(request)
    accounts = request.query_params.getlist("account_guids[]")
    if one := request.query_params.get("account_guid"):
        accounts.append(one)
    query = select(FinTransaction).where(FinTransaction.user_guid == who.user.guid,
                                         FinTransaction.date >= start,
                                         FinTransaction.date <= end)
    if accounts:
        query = query.where(FinTransaction.account_guid.in_(accounts))
    query = query.order_by(FinTransaction.date.desc(), FinTransaction.guid)
    with runtime.db.read() as session:
        rows, total = repository.page(session, query, page, per_page)
    return NexusJSON({"transactions": [wire.transaction_json(t) for t in rows],
                      "pagination": _pages(page, per_page, total)})


@router.get("/holdings", openapi_extra=docs.params(docs.PAGE))
def list_holdings(request: Request, runtime: Runtime = Depends(get_runtime),
                  who: NexusUser = Depends(session_user)) -> NexusJSON:
    """The session user's holdings."""
    page, per_page = paging(request)
    query = select(FinHolding).where(FinHolding.user_guid == who.user.guid) \
        .order_by(FinHolding.guid)
    with runtime.db.read() as session:
        rows, total = repository.page(session, query, page, per_page)
    return NexusJSON({"holdings": [wire.holding_json(h) for h in rows],
                      "pagination": _pages(page, per_page, total)})


def _pages(page: int, per_page: int, total: int) -> dict[str, int]:
    return {"current_page": page, "per_page": per_page, "total_entries": total,
            "total_pages": (total + per_page - 1) // per_page}
