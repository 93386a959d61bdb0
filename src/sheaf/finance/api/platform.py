"""The MX Platform API (v20111101), as mx-platform-python 1.12.0 speaks it.

HTTP Basic ``client_id:api_key``; a client sees only the users it created, and their
members and data. Endpoints are thin: the rules are in ``finance.service``.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from sheaf.errors import BadRequest, NotFound, PayloadTooLarge
from sheaf.finance import repository, service
from sheaf.finance.api import docs, wire
from sheaf.finance.api.deps import (
    PlatformJSON,
    date_range,
    flag,
    json_body,
    mx_client,
    no_content,
    paging,
)
from sheaf.finance.models import (
    FinAccount,
    FinHolding,
    FinTransaction,
    FinUser,
    Institution,
    Member,
)
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["finance: MX Platform API"], default_response_class=PlatformJSON)


def _listed(key: str, items: list[dict[str, Any]], page: int, per_page: int,
            total: int) -> PlatformJSON:
    return PlatformJSON({key: items, "pagination": wire.pagination(page, per_page, total)})


def member_view(session: Session, member: Member, user: FinUser) -> dict[str, Any]:
    institution = service.get_institution(session, member.institution_code)
    busy = bool(service.being_aggregated(session, [member.guid]))
    return wire.member_json(member, user, institution, being_aggregated=busy,
                            status=service.effective_status(member))


# -- users ---------------------------------------------------------------------------------

@router.post("/users", openapi_extra=docs.USER_BODY)
async def create_user(request: Request, runtime: Runtime = Depends(get_runtime),
                      client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Create a user (200, as the SDK expects)."""
    fields = _fields(await json_body(request, "user"), {"id", "email", "metadata"},
                     {"is_disabled"})
    with runtime.db.write() as session:
        user = service.create_user(session, client_id, fields)
        return PlatformJSON({"user": wire.user_json(user)})


@router.get("/users", openapi_extra=docs.params(docs.PAGE))
def list_users(request: Request, runtime: Runtime = Depends(get_runtime),
               client_id: str = Depends(mx_client)) -> PlatformJSON:
    """The client's users, oldest first."""
    page, per_page = paging(request)
    query = select(FinUser).where(FinUser.client_id == client_id).order_by(FinUser.guid)
    if email := request.query_params.get("email"):
        query = query.where(FinUser.email == email)
    if ident := request.query_params.get("id"):
        query = query.where(FinUser.id == ident)
    with runtime.db.read() as session:
        users, total = repository.page(session, query, page, per_page)
    return _listed("users", [wire.user_json(u) for u in users], page, per_page, total)


@router.get("/users/{user_guid}")
def read_user(user_guid: str, runtime: Runtime = Depends(get_runtime),
              client_id: str = Depends(mx_client)) -> PlatformJSON:
    """One user."""
    with runtime.db.read() as session:
        return PlatformJSON({"user": wire.user_json(service.get_user(session, client_id,
                                                                      user_guid))})


@router.put("/users/{user_guid}", openapi_extra=docs.USER_BODY)
async def update_user(user_guid: str, request: Request, runtime: Runtime = Depends(get_runtime),
                      client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Change a user's id, email, metadata or is_disabled."""
    fields = _fields(await json_body(request, "user"), {"id", "email", "metadata"},
                     {"is_disabled"})
    with runtime.db.write() as session:
        user = service.update_user(session, service.get_user(session, client_id, user_guid),
                                   fields)
        return PlatformJSON({"user": wire.user_json(user)})


@router.delete("/users/{user_guid}", status_code=204, response_class=Response)
def delete_user(user_guid: str, runtime: Runtime = Depends(get_runtime),
                client_id: str = Depends(mx_client)) -> Response:
    """Delete a user with its members and their data (204)."""
    with runtime.db.write() as session:
        session.delete(service.get_user(session, client_id, user_guid))
    return no_content()


def _fields(body: dict[str, Any], strings: set[str], booleans: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in strings:
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"{key} must be a string")
            if isinstance(value, str) and len(value) > 4000:
                raise BadRequest(f"{key} is longer than 4000 characters")
            out[key] = value
        elif key in booleans:
            if value is not None and not isinstance(value, bool):
                raise BadRequest(f"{key} must be true or false")
            out[key] = value
    return out


# -- institutions --------------------------------------------------------------------------

@router.get("/institutions", openapi_extra=docs.params(docs.PAGE))
def list_institutions(request: Request, runtime: Runtime = Depends(get_runtime),
                      client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Institutions, by code; ``name`` filters on a part of the name."""
    page, per_page = paging(request)
    query = select(Institution).order_by(Institution.code)
    if name := request.query_params.get("name"):
        query = query.where(Institution.name.ilike(f"%{name}%"))
    with runtime.db.read() as session:
        rows, total = repository.page(session, query, page, per_page)
    return _listed("institutions", [wire.institution_json(i) for i in rows], page, per_page,
                   total)


@router.get("/institutions/{institution_code}")
def read_institution(institution_code: str, runtime: Runtime = Depends(get_runtime),
                     client_id: str = Depends(mx_client)) -> PlatformJSON:
    """One institution."""
    with runtime.db.read() as session:
        institution = service.get_institution(session, institution_code)
        return PlatformJSON({"institution": wire.institution_json(institution)})


@router.get("/institutions/{institution_code}/credentials",
            openapi_extra=docs.params(docs.PAGE))
def list_institution_credentials(institution_code: str, request: Request,
                                 runtime: Runtime = Depends(get_runtime),
                                 client_id: str = Depends(mx_client)) -> PlatformJSON:
    """The credential fields a member of this institution is created with."""
    page, per_page = paging(request)
    with runtime.db.read() as session:
        fields = service.get_institution(session, institution_code).credentials
    chosen = fields[(page - 1) * per_page: page * per_page]
    return _listed("credentials", [wire.credential_json(f) for f in chosen], page, per_page,
                   len(fields))


# -- members -------------------------------------------------------------------------------

@router.post("/users/{user_guid}/members", openapi_extra=docs.MEMBER_CREATE)
async def create_member(user_guid: str, request: Request, runtime: Runtime = Depends(get_runtime),
                        client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Create a member with credentials; it aggregates at once unless skip_aggregation
    (202 then, 200 when skipped)."""
    body = await json_body(request, None)
    fields = body.get("member")
    if not isinstance(fields, dict):
        raise BadRequest('The body must be {"member": {"institution_code": ..., '
                         '"credentials": [{"guid": ..., "value": ...}]}}')
    skip = fields.get("skip_aggregation") is True
    with runtime.db.write() as session:
        user = service.get_user(session, client_id, user_guid)
        member = service.create_member(session, runtime, user, fields)
        guid = member.guid
        skip = skip or member.is_manual  # (a statement-file member waits for its file)
    if not skip:
        service.aggregate(runtime, client_id, guid)
    return PlatformJSON(_read_member(runtime, client_id, user_guid, guid),
                        status_code=200 if skip else 202)


def _read_member(runtime: Runtime, client_id: str, user_guid: str, member_guid: str
                 ) -> dict[str, Any]:
    with runtime.db.read() as session:
        user = service.get_user(session, client_id, user_guid)
        return {"member": member_view(session, service.get_member(session, user, member_guid),
                                      user)}


@router.get("/users/{user_guid}/members", openapi_extra=docs.params(docs.PAGE))
def list_members(user_guid: str, request: Request, runtime: Runtime = Depends(get_runtime),
                 client_id: str = Depends(mx_client)) -> PlatformJSON:
    """A user's members, oldest first."""
    page, per_page = paging(request)
    use_case = request.query_params.get("use_case")
    with runtime.db.read() as session:
        user = service.get_user(session, client_id, user_guid)
        query = select(Member).where(Member.user_guid == user.guid).order_by(Member.guid)
        members, total = repository.page(session, query, page, per_page)
        if use_case:
            members = [m for m in members if use_case in (m.use_cases or [])]
        busy = service.being_aggregated(session, [m.guid for m in members])
        institutions = {i.code: i for i in session.execute(select(Institution).where(
            Institution.code.in_({m.institution_code for m in members}))).scalars()}
        items = [wire.member_json(m, user, institutions[m.institution_code],
                                  being_aggregated=m.guid in busy,
                                  status=service.effective_status(m)) for m in members]
    return _listed("members", items, page, per_page, total)


@router.get("/users/{user_guid}/members/{member_guid}")
def read_member(user_guid: str, member_guid: str, runtime: Runtime = Depends(get_runtime),
                client_id: str = Depends(mx_client)) -> PlatformJSON:
    """One member with its connection status and whether it is being aggregated."""
    return PlatformJSON(_read_member(runtime, client_id, user_guid, member_guid))


@router.put("/users/{user_guid}/members/{member_guid}", openapi_extra=docs.MEMBER_UPDATE)
async def update_member(user_guid: str, member_guid: str, request: Request,
                        runtime: Runtime = Depends(get_runtime),
                        client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Update a member; new credentials start an aggregation unless skip_aggregation."""
    fields = await json_body(request, "member")
    with runtime.db.write() as session:
        user = service.get_user(session, client_id, user_guid)
        renewed = service.update_member(session, runtime,
                                        service.get_member(session, user, member_guid), fields)
    if renewed and fields.get("skip_aggregation") is not True:
        service.aggregate(runtime, client_id, member_guid)
    return PlatformJSON(_read_member(runtime, client_id, user_guid, member_guid))


@router.delete("/users/{user_guid}/members/{member_guid}", status_code=204,
               response_class=Response)
def delete_member(user_guid: str, member_guid: str, runtime: Runtime = Depends(get_runtime),
                  client_id: str = Depends(mx_client)) -> Response:
    """Delete a member and its data (204); a running aggregation is cancelled."""
    service.delete_member(runtime, client_id, user_guid, member_guid)
    return no_content()


@router.post("/users/{user_guid}/members/{member_guid}/aggregate", status_code=202,
             openapi_extra=docs.params(docs.INCLUDES))
def aggregate_member(user_guid: str, member_guid: str, request: Request,
                     runtime: Runtime = Depends(get_runtime),
                     client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Start an aggregation (202). While one runs, or inside the minimum interval after a
    success (not for sandbox institutions), 202 again and no new job."""
    return aggregate_answer(runtime, client_id, user_guid, member_guid, request)


def aggregate_answer(runtime: Runtime, client_id: str, user_guid: str, member_guid: str,
                     request: Request) -> PlatformJSON:
    """The aggregate route's answer (the fast path's too: ``api/fastpath.py``)."""
    transactions = flag(request, "include_transactions")
    holdings = flag(request, "include_holdings")
    # (answered from the decision's own read: no second look at the member)
    return aggregated(service.aggregate(
        runtime, client_id, member_guid, user_guid=user_guid,
        include_transactions=transactions, include_holdings=holdings))


def aggregated(done: service.Submitted) -> PlatformJSON:
    assert done.member is not None and done.institution is not None and done.user is not None
    return PlatformJSON({"member": wire.member_json(
        done.member, done.user, done.institution, being_aggregated=done.busy,
        status=service.effective_status(done.member))}, status_code=202)


@router.get("/users/{user_guid}/members/{member_guid}/status")
def read_member_status(user_guid: str, member_guid: str, runtime: Runtime = Depends(get_runtime),
                       client_id: str = Depends(mx_client)) -> PlatformJSON:
    """The aggregation's progress: is_authenticated, has_processed_*, challenges."""
    with runtime.db.read() as session:
        user = service.get_user(session, client_id, user_guid)
        member = service.get_member(session, user, member_guid)
        busy = bool(service.being_aggregated(session, [member.guid]))
        body = wire.status_json(member, being_aggregated=busy,
                                status=service.effective_status(member),
                                challenges=repository.challenges(session, member.guid))
    return PlatformJSON({"member": body})


@router.get("/users/{user_guid}/members/{member_guid}/challenges", response_model=None,
            openapi_extra=docs.params(docs.PAGE))
def list_member_challenges(user_guid: str, member_guid: str, request: Request,
                           runtime: Runtime = Depends(get_runtime),
                           client_id: str = Depends(mx_client)) -> Response:
    """The questions a CHALLENGED member must answer; 204 when it is not challenged."""
    page, per_page = paging(request)
    with runtime.db.read() as session:
        user = service.get_user(session, client_id, user_guid)
        member = service.get_member(session, user, member_guid)
        if service.effective_status(member) != "CHALLENGED":
            return no_content()
        challenges = repository.challenges(session, member.guid)
    chosen = challenges[(page - 1) * per_page: page * per_page]
    return _listed("challenges", [wire.challenge_json(c) for c in chosen], page, per_page,
                   len(challenges))


@router.put("/users/{user_guid}/members/{member_guid}/resume", status_code=202,
            openapi_extra=docs.RESUME)
async def resume_aggregation(user_guid: str, member_guid: str, request: Request,
                             runtime: Runtime = Depends(get_runtime),
                             client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Answer a CHALLENGED member's questions and continue (202); 405 if not CHALLENGED."""
    fields = await json_body(request, "member")
    with runtime.db.read() as session:
        user = service.get_user(session, client_id, user_guid)
    service.resume(runtime, client_id, user, member_guid, fields.get("challenges"))
    return PlatformJSON(_read_member(runtime, client_id, user_guid, member_guid),
                        status_code=202)


# -- gathered data -------------------------------------------------------------------------

def _member_scope(session: Session, client_id: str, user_guid: str, member_guid: str | None
                  ) -> tuple[FinUser, Member | None]:
    user = service.get_user(session, client_id, user_guid)
    member = service.get_member(session, user, member_guid) if member_guid else None
    return user, member


def _accounts(runtime: Runtime, request: Request, client_id: str, user_guid: str,
              member_guid: str | None) -> PlatformJSON:
    page, per_page = paging(request)
    with runtime.db.read() as session:
        user, member = _member_scope(session, client_id, user_guid, member_guid)
        query = select(FinAccount).order_by(FinAccount.guid)
        query = query.where(FinAccount.member_guid == member.guid) if member \
            else query.where(FinAccount.user_guid == user.guid)
        rows, total = repository.page(session, query, page, per_page)
        members = {m.guid: m for m in session.execute(select(Member).where(
            Member.guid.in_({a.member_guid for a in rows}))).scalars()}
        institutions = {i.code: i for i in session.execute(select(Institution).where(
            Institution.code.in_({m.institution_code for m in members.values()}))).scalars()}
        items = [wire.account_json(a, members[a.member_guid],
                                   institutions[members[a.member_guid].institution_code],
                                   user.id) for a in rows]
    return _listed("accounts", items, page, per_page, total)


@router.get("/users/{user_guid}/members/{member_guid}/accounts",
            openapi_extra=docs.params(docs.PAGE))
def list_member_accounts(user_guid: str, member_guid: str, request: Request,
                         runtime: Runtime = Depends(get_runtime),
                         client_id: str = Depends(mx_client)) -> PlatformJSON:
    """A member's accounts."""
    return _accounts(runtime, request, client_id, user_guid, member_guid)


@router.get("/users/{user_guid}/accounts", openapi_extra=docs.params(docs.PAGE))
def list_user_accounts(user_guid: str, request: Request, runtime: Runtime = Depends(get_runtime),
                       client_id: str = Depends(mx_client)) -> PlatformJSON:
    """Every account of a user's members."""
    return _accounts(runtime, request, client_id, user_guid, None)


def _one(session: Session, model: type[repository.Gathered], user: FinUser, guid: str,
         kind: str) -> repository.Gathered:
    found = repository.of_user(session, model, user.guid, guid)
    if found is None:
        raise NotFound(f"{kind} {guid} was not found for user {user.guid}")
    return found


@router.get("/users/{user_guid}/accounts/{account_guid}")
def read_account(user_guid: str, account_guid: str, runtime: Runtime = Depends(get_runtime),
                 client_id: str = Depends(mx_client)) -> PlatformJSON:
    """One of a user's accounts."""
    with runtime.db.read() as session:
        user = service.get_user(session, client_id, user_guid)
        account = _one(session, FinAccount, user, account_guid, "Account")
        member = service.get_member(session, user, account.member_guid)
        institution = service.get_institution(session, member.institution_code)
        return PlatformJSON({"account": wire.account_json(account, member, institution,
                                                          user.id)})


def transactions_page(session: Session, query: Select[Any], page: int, per_page: int,
                      user: FinUser) -> tuple[list[dict[str, Any]], int]:
    rows, total = repository.page(session, query, page, per_page)
    ids = dict(session.execute(select(FinAccount.guid, FinAccount.id).where(
        FinAccount.guid.in_({t.account_guid for t in rows}))).all())
    return [wire.transaction_json(t, ids.get(t.account_guid), user.id) for t in rows], total


def _transactions(runtime: Runtime, request: Request, client_id: str, user_guid: str,
                  member_guid: str | None) -> PlatformJSON:
    page, per_page = paging(request)
    start, end = date_range(request)
    with runtime.db.read() as session:
        user, member = _member_scope(session, client_id, user_guid, member_guid)
        query = select(FinTransaction).where(FinTransaction.date >= start,
                                             FinTransaction.date <= end)
        query = query.where(FinTransaction.member_guid == member.guid) if member \
            else query.where(FinTransaction.user_guid == user.guid)
        query = query.order_by(FinTransaction.date.desc(), FinTransaction.guid)
        items, total = transactions_page(session, query, page, per_page, user)
    return _listed("transactions", items, page, per_page, total)


@router.get("/users/{user_guid}/members/{member_guid}/transactions",
            openapi_extra=docs.params(docs.PAGE, docs.DATES))
def list_transactions_by_member(user_guid: str, member_guid: str, request: Request,
                                runtime: Runtime = Depends(get_runtime),
                                client_id: str = Depends(mx_client)) -> PlatformJSON:
    """A member's transactions from from_date (default 120 days ago) to to_date (default
    5 days ahead), newest first."""
    return _transactions(runtime, request, client_id, user_guid, member_guid)


@router.get("/users/{user_guid}/transactions",
            openapi_extra=docs.params(docs.PAGE, docs.DATES))
def list_transactions(user_guid: str, request: Request, runtime: Runtime = Depends(get_runtime),
                      client_id: str = Depends(mx_client)) -> PlatformJSON:
    """A user's transactions in the date range, newest first."""
    return _transactions(runtime, request, client_id, user_guid, None)


@router.get("/users/{user_guid}/transactions/{transaction_guid}")
def read_transaction(user_guid: str, transaction_guid: str,
                     runtime: Runtime = Depends(get_runtime),
                     client_id: str = Depends(mx_client)) -> PlatformJSON:
    """One of a user's transactions (whatever its date)."""
    with runtime.db.read() as session:
        user = service.get_user(session, client_id, user_guid)
        found = _one(session, FinTransaction, user, transaction_guid, "Transaction")
        items, _ = transactions_page(session, select(FinTransaction).where(
            FinTransaction.guid == found.guid), 1, 1, user)
    return PlatformJSON({"transaction": items[0]})


def _holdings(runtime: Runtime, request: Request, client_id: str, user_guid: str,
              member_guid: str, key: str) -> PlatformJSON:
    page, per_page = paging(request)
    with runtime.db.read() as session:
        _, member = _member_scope(session, client_id, user_guid, member_guid)
        assert member is not None
        query = select(FinHolding).where(FinHolding.member_guid == member.guid) \
            .order_by(FinHolding.guid)
        rows, total = repository.page(session, query, page, per_page)
    render = wire.holding_json if key == "investment_holdings" else wire.legacy_holding_json
    return _listed(key, [render(h) for h in rows], page, per_page, total)


@router.get("/users/{user_guid}/members/{member_guid}/investment_holdings",
            openapi_extra=docs.params(docs.PAGE))
def list_holdings_by_member(user_guid: str, member_guid: str, request: Request,
                            runtime: Runtime = Depends(get_runtime),
                            client_id: str = Depends(mx_client)) -> PlatformJSON:
    """A member's investment holdings (SDK 1.9.1 and later)."""
    return _holdings(runtime, request, client_id, user_guid, member_guid,
                     "investment_holdings")


@router.get("/users/{user_guid}/members/{member_guid}/holdings",
            openapi_extra=docs.params(docs.PAGE))
def list_legacy_holdings_by_member(user_guid: str, member_guid: str, request: Request,
                                   runtime: Runtime = Depends(get_runtime),
                                   client_id: str = Depends(mx_client)) -> PlatformJSON:
    """A member's holdings in the older shape (SDKs up to 1.9.0)."""
    return _holdings(runtime, request, client_id, user_guid, member_guid, "holdings")


@router.post("/users/{user_guid}/members/{member_guid}/statement_file", status_code=202)
async def upload_statement_file(user_guid: str, member_guid: str, request: Request,
                                runtime: Runtime = Depends(get_runtime),
                                client_id: str = Depends(mx_client)) -> PlatformJSON:
    """(sheaf) Aggregate an OFX / QFX statement file into a member of the
    ``statement_file`` institution: the body is the file, or a multipart ``file`` part.
    The file is the member's whole current view: records it lacks are removed."""
    with runtime.db.read() as session:
        service.get_member(session, service.get_user(session, client_id, user_guid),
                           member_guid)
    data = await _statement_bytes(request, runtime.settings.finance.max_statement_bytes)
    blob, _ = await run_in_threadpool(runtime.blobs.put_stream, BytesIO(data), len(data) + 1)
    await run_in_threadpool(service.aggregate, runtime, client_id, member_guid, blob=blob)
    return PlatformJSON(await run_in_threadpool(_read_member, runtime, client_id, user_guid,
                                                member_guid), status_code=202)


async def _statement_bytes(request: Request, limit: int) -> bytes:
    if int(request.headers.get("content-length") or 0) > limit:
        raise PayloadTooLarge(f"A statement file may be at most {limit} bytes "
                              "(SHEAF_FINANCE__MAX_STATEMENT_BYTES)")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_part_size=limit)
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise BadRequest("The multipart body has no file part named 'file'")
        data = await part.read()
    else:
        data = await request.body()
    if not data.strip():
        raise BadRequest("The statement file is empty")
    if len(data) > limit:
        raise PayloadTooLarge(f"A statement file may be at most {limit} bytes "
                              "(SHEAF_FINANCE__MAX_STATEMENT_BYTES)")
    return data
