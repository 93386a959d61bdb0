"""Reading results: /v3/accounts and identities."""

from __future__ import annotations

from typing import Any, Literal, cast

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import and_, exists, select

from sheaf.identity import service
from sheaf.identity.api import anchors, wire
from sheaf.identity.api.deps import identity_reader, managed_by, reach, require_managed
from sheaf.identity.models import Account, Identity, Source
from sheaf.kit.filters import (
    Field,
    boolean,
    fetch_page,
    page,
    parse_filters,
    parse_sorters,
    timestamp,
)
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["accounts"])
ANCHORS = anchors.Anchors()  # (this process's, for every source)

ACCOUNT_FILTERS = {
    "id": Field(Account.id, frozenset({"eq", "in"})),
    "identityId": Field(Account.identity_id, frozenset({"eq", "in", "isnull", "pr"})),
    "name": Field(Account.name, frozenset({"eq", "in", "sw"})),
    "nativeIdentity": Field(Account.native_identity, frozenset({"eq", "in", "sw"})),
    "sourceId": Field(Account.source_id, frozenset({"eq", "in"})),
    "uncorrelated": Field(Account.identity_id.is_(None), frozenset({"eq"}), boolean),
    "created": Field(Account.created, frozenset({"eq", "gt", "lt", "ge", "le"}), timestamp),
    "modified": Field(Account.modified, frozenset({"eq", "gt", "lt", "ge", "le"}), timestamp),
}
ACCOUNT_SORTERS = {"id": Account.id, "name": Account.name, "created": Account.created,
                   "modified": Account.modified, "sourceId": Account.source_id,
                   "identityId": Account.identity_id, "nativeIdentity": Account.native_identity}

correlated = exists().where(Account.identity_id == Identity.id)
IDENTITY_FILTERS = {
    "id": Field(Identity.id, frozenset({"eq", "in"})),
    "name": Field(Identity.name, frozenset({"eq", "sw"})),
    "alias": Field(Identity.name, frozenset({"eq", "sw"})),
    "correlated": Field(correlated, frozenset({"eq"}), boolean),
}
IDENTITY_SORTERS = {"name": Identity.name, "alias": Identity.name, "id": Identity.id}


@router.get("/v3/accounts")
def list_accounts(
    response: Response,
    limit: int | None = Query(None), offset: int | None = Query(None),
    count: bool = Query(False), filters: str | None = Query(None),
    sorters: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
    groups: frozenset[str] | None = Depends(reach),
) -> Response:
    """Accounts, e.g. `filters=sourceId eq "..."`; `count=true` sets X-Total-Count. A
    SOURCE_SUBADMIN sees the accounts of the sources it administers."""
    limit, offset = page(limit, offset)
    where = parse_filters(filters, ACCOUNT_FILTERS)
    if groups is not None:
        where = and_(where, Account.source_id.in_(select(Source.id).where(managed_by(groups))))
    # By source, then account id: the order of the (source_id, native_identity) index, so a
    # page of a source's accounts is read from the index instead of sorting all of them.
    order = parse_sorters(sorters, ACCOUNT_SORTERS, [Account.source_id, Account.native_identity])
    source_id = anchors.one_source(filters) if sorters is None else None
    with runtime.db.read() as session:
        # Plain rows (every Account column under its attribute name, which is all
        # wire.account reads), not ORM objects: 250 of those took twice the time to load.
        stmt = (select(*Account.__table__.c, Identity.name.label("identity_name"))
                .outerjoin(Identity, Identity.id == Account.identity_id))
        start = None
        if source_id is not None:  # (a deep page starts from a remembered key)
            begins = ANCHORS.start(session, source_id, offset, runtime.settings.data_dir)
            if begins is None:  # past the source's last account: an empty page
                limit, offset = 0, 0
            elif begins[0] is not None:
                start, offset = Account.native_identity >= begins[0], begins[1]
        rows = fetch_page(session, stmt, Account, where, order, limit, offset, count, response,
                          key=Account.id, start=start)
        sources = {s.id: s for s in session.execute(
            select(Source).where(Source.id.in_({r.source_id for r in rows}))).scalars()}
    # (rendered here: FastAPI would first validate every account against the annotation)
    return Response(
        wire.accounts_text((cast(Account, r), sources.get(r.source_id), r.identity_name)
                           for r in rows),
        media_type="application/json", headers=response.headers)


@router.get("/v3/accounts/{id}")
def get_account(id: str, runtime: Runtime = Depends(get_runtime),
                groups: frozenset[str] | None = Depends(reach)) -> dict[str, Any]:
    """One account."""
    account, source = service.get_account(runtime, id)
    require_managed(source, groups)
    name = service.get_identity(runtime, account.identity_id).name if account.identity_id else None
    return wire.account(account, source, name)


def list_identities(
    response: Response,
    limit: int | None = Query(None), offset: int | None = Query(None),
    count: bool = Query(False), filters: str | None = Query(None),
    sorters: str | None = Query(None),
    defaultFilter: Literal["CORRELATED_ONLY", "NONE"] = Query("CORRELATED_ONLY"),
    runtime: Runtime = Depends(get_runtime),
) -> list[dict[str, Any]]:
    """Identities; by default only those with a correlated account."""
    limit, offset = page(limit, offset)
    where = parse_filters(filters, IDENTITY_FILTERS)
    if defaultFilter == "CORRELATED_ONLY":
        where = where & correlated
    # By id (the primary key's order) unless asked: sorting by name would sort every
    # identity for each page, 0.25 s a page at 10^5 identities.
    order = parse_sorters(sorters, IDENTITY_SORTERS, [Identity.id])
    with runtime.db.read() as session:
        rows = fetch_page(session, select(Identity), Identity, where, order, limit, offset,
                          count, response)
    return [wire.identity(identity) for (identity,) in rows]


def get_identity(id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One identity."""
    return wire.identity(service.get_identity(runtime, id))


for version in ("beta", "v2024", "v2025", "v2026"):
    router.add_api_route(f"/{version}/identities", list_identities, methods=["GET"],
                         dependencies=[Depends(identity_reader)], name=f"list_identities_{version}")
    router.add_api_route(f"/{version}/identities/{{id}}", get_identity, methods=["GET"],
                         dependencies=[Depends(identity_reader)], name=f"get_identity_{version}")
