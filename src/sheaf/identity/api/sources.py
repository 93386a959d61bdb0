"""/v3/sources and their schemas."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import and_, select
from starlette.concurrency import run_in_threadpool

from sheaf.auth.models import Credential
from sheaf.auth.tokens import Principal
from sheaf.errors import BadRequest, Forbidden, NotFound
from sheaf.identity import service
from sheaf.identity.api import wire
from sheaf.identity.api.deps import (
    administered_source,
    check_group,
    groups_of,
    managed_by,
    reach,
    source_admin,
    workgroups,
)
from sheaf.identity.models import Source, SourceSchema
from sheaf.kit.base import new_id
from sheaf.kit.filters import Field as FilterField
from sheaf.kit.filters import boolean, fetch_page, page, parse_filters, parse_sorters
from sheaf.kit.jsonbody import PATCH_ERRORS, json_patch, problem, read_json
from sheaf.runtime import Runtime, get_runtime

router = APIRouter(tags=["sources"], dependencies=[Depends(administered_source)])

SOURCE_FILTERS = {
    "id": FilterField(Source.id, frozenset({"eq", "in"})),
    "name": FilterField(Source.name, frozenset({"eq", "in", "co", "sw"})),
    "authoritative": FilterField(Source.authoritative, frozenset({"eq"}), boolean),
    "connector": FilterField(Source.connector, frozenset({"eq", "in"})),
}
SOURCE_SORTERS = {"name": Source.name, "id": Source.id, "created": Source.created,
                  "modified": Source.modified}


class CorrelationPair(BaseModel):
    accountAttribute: str = Field(min_length=1)
    identityAttribute: str = Field(min_length=1)


class OwnerRef(BaseModel):
    type: Literal["IDENTITY"] = "IDENTITY"
    id: str
    name: str | None = None


class WorkgroupRef(BaseModel):
    type: Literal["GOVERNANCE_GROUP"] = "GOVERNANCE_GROUP"
    id: str = Field(min_length=1, max_length=64)
    name: str | None = None


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    owner: OwnerRef | None = None
    managementWorkgroup: WorkgroupRef | None = None
    connector: str
    connectorAttributes: dict[str, Any] = Field(default_factory=dict)
    deleteThreshold: int = Field(default=10, ge=0, le=100)
    authoritative: bool = False

    @field_validator("connectorAttributes")
    @classmethod
    def storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Stored as given and sent back on every read: it must stay renderable JSON."""
        if (why := problem(value)) is not None:
            raise ValueError(f"connectorAttributes cannot be stored: {why}")
        return value


class AttributeIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    type: Literal["STRING", "LONG", "INT", "BOOLEAN", "DATE"] = "STRING"
    description: str | None = None
    isMulti: bool = False
    isEntitlement: bool = False
    isGroup: bool = False


class SchemaIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(default="account", min_length=1, max_length=64)
    nativeObjectType: str = Field(default="User", min_length=1, max_length=64)
    identityAttribute: str = Field(min_length=1, max_length=128)
    displayAttribute: str = Field(min_length=1, max_length=128)
    attributes: list[AttributeIn] = Field(default_factory=list)


def _group(body: SourceIn) -> dict[str, Any] | None:
    return body.managementWorkgroup.model_dump() if body.managementWorkgroup else None


def _source_values(body: SourceIn) -> dict[str, Any]:
    if body.connector != service.DELIMITED_FILE:
        raise BadRequest(f"Connector '{body.connector}' is not available; this server "
                         f"aggregates '{service.DELIMITED_FILE}' sources")
    attributes = dict(body.connectorAttributes)
    pairs = _correlation(attributes.pop("correlation", None))
    delimiter = attributes.get("delimiter", ",")
    # The CSV reader splits bytes: a delimiter is one ASCII character (tab included).
    if (not isinstance(delimiter, str) or len(delimiter) != 1 or not delimiter.isascii()
            or delimiter in '"\n\r'):
        raise BadRequest("connectorAttributes.delimiter must be one ASCII character other "
                         "than a quote or a line break, such as ',' ';' '|' or a tab; "
                         f"got {delimiter!r}")
    return {
        "name": body.name, "description": body.description,
        "owner": body.owner.model_dump() if body.owner else None,
        "management_workgroup": _group(body),
        "connector": body.connector, "connector_attributes": attributes,
        "delete_threshold": body.deleteThreshold, "authoritative": body.authoritative,
        "correlation": pairs,
    }


def _correlation(value: Any) -> list[dict[str, str]]:
    """connectorAttributes.correlation: a list of attribute pairs, the first match wins."""
    expected = ("connectorAttributes.correlation must be a list of "
                '{"accountAttribute": "...", "identityAttribute": "..."} pairs')
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{expected}; got {type(value).__name__}")
    try:
        return [CorrelationPair.model_validate(p).model_dump() for p in value]
    except ValidationError as exc:
        raise BadRequest(f"{expected}: " + "; ".join(
            f"item {e['loc'][0] if e['loc'] else ''}: {e['msg']}" for e in exc.errors(
                include_url=False))) from None


def _schema_values(body: SchemaIn) -> dict[str, Any]:
    names = [a.name for a in body.attributes]
    if len(set(names)) != len(names):
        raise BadRequest("Schema attribute names must be unique")
    for attr in (body.identityAttribute, body.displayAttribute):
        if names and attr not in names:
            raise BadRequest(f"'{attr}' is not one of the schema's attributes")
    return {
        "name": body.name, "native_object_type": body.nativeObjectType,
        "identity_attribute": body.identityAttribute,
        "display_attribute": body.displayAttribute,
        "attributes": [a.model_dump() for a in body.attributes],
    }


@router.get("/v3/sources")
def list_sources(
    response: Response,
    limit: int | None = Query(None), offset: int | None = Query(None),
    count: bool = Query(False), filters: str | None = Query(None),
    sorters: str | None = Query(None), runtime: Runtime = Depends(get_runtime),
    for_subadmin: str | None = Query(None, alias="for-subadmin"),
    who: Principal = Depends(source_admin),
) -> list[dict[str, Any]]:
    """List sources, with the standard filters, sorters and paging. `for-subadmin` (`me`,
    or a client id) keeps the sources that SOURCE_SUBADMIN administers; a SOURCE_SUBADMIN
    must pass it."""
    limit, offset = page(limit, offset)
    groups = _listed_groups(runtime, who, for_subadmin)
    where = and_(parse_filters(filters, SOURCE_FILTERS), managed_by(groups))
    order = parse_sorters(sorters, SOURCE_SORTERS, [Source.created, Source.id])
    with runtime.db.read() as session:
        rows = [source for (source,) in fetch_page(
            session, select(Source), Source, where, order, limit, offset, count, response)]
        schemas = _schemas_by_source(session, [r.id for r in rows])
    return [wire.source(r, schemas.get(r.id, [])) for r in rows]


def _listed_groups(runtime: Runtime, who: Principal, for_subadmin: str | None
                   ) -> frozenset[str] | None:
    groups = workgroups(runtime, who.client_id, who.authorities)
    if for_subadmin in (None, "me", who.client_id):
        if groups is not None and for_subadmin is None:
            raise Forbidden("A SOURCE_SUBADMIN lists sources with for-subadmin=me: it sees "
                            "only the sources its governance groups manage")
        return groups
    if groups is not None:
        raise Forbidden("A SOURCE_SUBADMIN may list only its own sources (for-subadmin=me)")
    with runtime.db.read() as session:
        other = session.get(Credential, for_subadmin)
    if other is None:
        raise BadRequest(f"for-subadmin: there is no client {for_subadmin}")
    return groups_of(other, frozenset(other.authorities))


def _schemas_by_source(session: Any, ids: list[str]) -> dict[str, list[SourceSchema]]:
    out: dict[str, list[SourceSchema]] = {}
    if ids:
        for s in session.execute(select(SourceSchema).where(SourceSchema.source_id.in_(ids))
                                 .order_by(SourceSchema.created)).scalars():
            out.setdefault(s.source_id, []).append(s)
    return out


@router.post("/v3/sources", status_code=201)
def create_source(body: SourceIn, runtime: Runtime = Depends(get_runtime),
                  groups: frozenset[str] | None = Depends(reach)) -> dict[str, Any]:
    """Create a delimited-file source with an account schema (account ID attribute `id`,
    display attribute `name`, attributes learned from the first file's header until set)."""
    check_group(_group(body), groups)
    source = service.create_source(
        runtime, _source_values(body),
        {"name": "account", "native_object_type": "User", "identity_attribute": "id",
         "display_attribute": "name", "attributes": []},
    )
    return wire.source(source, service.schemas(runtime, source.id))


@router.get("/v3/sources/{id}")
def get_source(id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One source."""
    return wire.source(service.get_source(runtime, id), service.schemas(runtime, id))


@router.put("/v3/sources/{id}")
def replace_source(id: str, body: SourceIn, runtime: Runtime = Depends(get_runtime),
                   groups: frozenset[str] | None = Depends(reach)) -> dict[str, Any]:
    """Replace a source's settings (name, description, owner, managing governance group,
    connector attributes with correlation and delimiter, delete threshold, authoritative)."""
    check_group(_group(body), groups)
    current = service.get_source(runtime, id)
    if body.connector != current.connector:
        raise BadRequest("A source's connector cannot change")
    service.update_source(runtime, id, _source_values(body))
    return get_source(id, runtime)


@router.patch("/v3/sources/{id}")
async def patch_source(id: str, request: Request, runtime: Runtime = Depends(get_runtime),
                       groups: frozenset[str] | None = Depends(reach)) -> dict[str, Any]:
    """Change a source with JSON Patch, e.g. replace /deleteThreshold or
    /connectorAttributes/correlation."""
    ops = json_patch(await read_json(request))
    current = await run_in_threadpool(get_source, id, runtime)
    try:
        patched = ops.apply(current)
    except PATCH_ERRORS as exc:
        raise BadRequest(f"The patch does not apply: {exc}") from None
    readonly = ("id", "type", "connector", "connectorClass", "created", "schemas")
    changed = [k for k in readonly if patched.get(k) != current.get(k)]
    if changed:
        raise BadRequest(f"These fields cannot change: {', '.join(changed)}")
    try:
        body = SourceIn.model_validate(patched)
    except ValidationError as exc:
        raise BadRequest("The patched source is not valid: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    return await run_in_threadpool(replace_source, id, body, runtime, groups)


@router.delete("/v3/sources/{id}", status_code=202)
def delete_source(id: str, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Delete a source with its accounts (identities stay)."""
    source = service.get_source(runtime, id)
    service.delete_source(runtime, id)
    return {"type": "TASK_RESULT", "id": new_id(), "name": f"Delete source {source.name}"}


@router.get("/v3/sources/{sourceId}/schemas")
def list_schemas(sourceId: str, runtime: Runtime = Depends(get_runtime)) -> list[dict[str, Any]]:
    """A source's schemas (delimited-file sources have an `account` schema)."""
    return [wire.schema(s) for s in service.schemas(runtime, sourceId)]


@router.post("/v3/sources/{sourceId}/schemas", status_code=201)
def create_schema(sourceId: str, body: SchemaIn,
                  runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Add a schema to a source."""
    return wire.schema(service.put_schema(runtime, sourceId, None, _schema_values(body)))


@router.get("/v3/sources/{sourceId}/schemas/{schemaId}")
def get_schema(sourceId: str, schemaId: str,
               runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """One schema of a source."""
    for s in service.schemas(runtime, sourceId):
        if s.id == schemaId:
            return wire.schema(s)
    raise NotFound(f"Schema {schemaId} was not found on source {sourceId}")


@router.put("/v3/sources/{sourceId}/schemas/{schemaId}")
def replace_schema(sourceId: str, schemaId: str, body: SchemaIn,
                   runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:
    """Replace a schema: account ID and display attributes, attributes, multi-valued flags."""
    return wire.schema(service.put_schema(runtime, sourceId, schemaId, _schema_values(body)))
