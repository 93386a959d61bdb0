"""The OpenAPI document, made to say what the server really does.

FastAPI's generated document knows the routes but not how they authenticate, what
load-accounts and /oauth/token read from their bodies (both parse the request
themselves), what they answer, or which errors they give: it advertises a 422 that
validation never returns (sheaf answers 400 in the dialect's envelope). ``install``
post-processes the generated document once: security schemes, request bodies, response
schemas, each path's real error responses, and summaries people read.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

DESCRIPTION = (
    "Self-hosted aggregation server. The identity domain speaks SailPoint Identity Security "
    "Cloud's API (sources, load-accounts, task status, accounts, identities), so the "
    "official SDKs work unchanged. Get a token from `POST /oauth/token` "
    "(client_credentials) with a client id and secret from `sheaf credentials create`, and "
    "send it as `Authorization: Bearer ...` (the **Authorize** button does both)."
)

TAGS = [
    {"name": "auth", "description": "OAuth 2 client credentials."},
    {"name": "sources", "description": "Delimited-file sources and their account schemas "
                                       "(SailPoint v3)."},
    {"name": "load-accounts", "description": "Aggregate a source from an uploaded CSV "
                                             "snapshot; every path SailPoint clients use."},
    {"name": "task-management", "description": "Follow aggregations as SailPoint tasks."},
    {"name": "accounts", "description": "Aggregated accounts and identities."},
    {"name": "jobs", "description": "sheaf's native job API (every domain's runs)."},
    {"name": "meta", "description": "Health."},
]

_MESSAGE = {"type": "object", "properties": {
    "locale": {"type": "string", "example": "en-US"},
    "localeOrigin": {"type": "string", "example": "DEFAULT"},
    "text": {"type": "string"}}}

SCHEMAS: dict[str, Any] = {
    "ErrorResponseDto": {
        "type": "object", "description": "SailPoint's error body.",
        "properties": {
            "detailCode": {"type": "string", "example": "400.1 Bad Request Content"},
            "trackingId": {"type": "string"},
            "messages": {"type": "array", "items": _MESSAGE},
            "causes": {"type": "array", "items": _MESSAGE}},
        "required": ["detailCode", "trackingId", "messages"]},
    "Unauthorized": {
        "type": "object", "description": "A missing, expired or invalid bearer token.",
        "properties": {"error": {"type": "string", "example": "JWT validation failed"}},
        "required": ["error"]},
    "RateLimited": {
        "type": "object", "description": "Over the client's rate limit (see Retry-After).",
        "properties": {"message": {"type": "string", "example": " Rate Limit Exceeded "}}},
    "NativeError": {
        "type": "object", "description": "The native job API's error body.",
        "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}}}}},
    "OAuthError": {
        "type": "object", "description": "RFC 6749 section 5.2.",
        "properties": {"error": {"type": "string", "example": "invalid_client"},
                       "error_description": {"type": "string"}}},
    "TokenResponse": {
        "type": "object",
        "properties": {
            "access_token": {"type": "string"}, "token_type": {"type": "string",
                                                                "example": "bearer"},
            "expires_in": {"type": "integer"}, "scope": {"type": "string"},
            "tenant_id": {"type": "string"}, "jti": {"type": "string"}},
        "required": ["access_token", "token_type", "expires_in"]},
    "TaskMessage": {"type": "object", "additionalProperties": True},
    "LoadAccountsTask": {
        "type": "object", "description": "The 202 answer of load-accounts.",
        "properties": {
            "success": {"type": "boolean"},
            "task": {"type": "object", "properties": {
                "id": {"type": "string", "description": "Follow it at task-status/{id}."},
                "type": {"type": "string", "example": "QUARTZ"},
                "name": {"type": "string"}, "launcher": {"type": "string"},
                "created": {"type": "string", "format": "date-time"},
                "completionStatus": {"type": "string", "nullable": True},
                "messages": {"type": "array", "items": {"$ref":
                                                        "#/components/schemas/TaskMessage"}},
                "attributes": {"type": "object", "additionalProperties": True}}}}},
    "TaskStatus": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "type": {"type": "string", "example": "QUARTZ"},
            "uniqueName": {"type": "string"}, "launcher": {"type": "string"},
            "target": {"type": "object", "additionalProperties": True},
            "created": {"type": "string", "format": "date-time"},
            "launched": {"type": "string", "format": "date-time", "nullable": True},
            "completed": {"type": "string", "format": "date-time", "nullable": True},
            "completionStatus": {"type": "string", "nullable": True,
                                 "enum": ["SUCCESS", "WARNING", "ERROR", "TERMINATED",
                                          "TEMPERROR", None]},
            "progress": {"type": "string", "nullable": True},
            "percentComplete": {"type": "integer"},
            "messages": {"type": "array", "items": {"$ref": "#/components/schemas/TaskMessage"}},
            "attributes": {"type": "object", "additionalProperties": True,
                           "description": "Counters: total, optimized, created, updated, "
                                          "deleted, ignored, identitiesCreated, ..."}}},
    "Source": {
        "type": "object", "additionalProperties": True,
        "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "description": {"type": "string", "nullable": True},
            "connector": {"type": "string", "example": "delimited-file"},
            "authoritative": {"type": "boolean"}, "deleteThreshold": {"type": "integer"},
            "connectorAttributes": {"type": "object", "additionalProperties": True},
            "managementWorkgroup": {"type": "object", "nullable": True,
                                    "additionalProperties": True},
            "created": {"type": "string", "format": "date-time"},
            "modified": {"type": "string", "format": "date-time"}}},
    "Schema": {"type": "object", "additionalProperties": True, "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "identityAttribute": {"type": "string"}, "displayAttribute": {"type": "string"},
        "attributes": {"type": "array", "items": {"type": "object",
                                                  "additionalProperties": True}}}},
    "Account": {"type": "object", "additionalProperties": True, "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "nativeIdentity": {"type": "string"}, "sourceId": {"type": "string"},
        "identityId": {"type": "string", "nullable": True},
        "attributes": {"type": "object", "additionalProperties": True}}},
    "Identity": {"type": "object", "additionalProperties": True, "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "attributes": {"type": "object", "additionalProperties": True}}},
    "Job": {"type": "object", "additionalProperties": True, "properties": {
        "id": {"type": "string"}, "type": {"type": "string"}, "status": {
            "type": "string", "enum": ["queued", "running", "succeeded", "warning", "failed",
                                       "cancelled"]},
        "progress": {"type": "object", "properties": {
            "current": {"type": "integer"}, "total": {"type": "integer", "nullable": True},
            "message": {"type": "string", "nullable": True}}},
        "counters": {"type": "object", "additionalProperties": True},
        "messages": {"type": "array", "items": {"type": "object",
                                                "additionalProperties": True}}}},
}

def _nullable_31(schema: Any) -> Any:
    """OpenAPI 3.1 (what FastAPI writes) has no ``nullable``: null is a type."""
    if isinstance(schema, list):
        return [_nullable_31(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable_31(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


SCHEMAS = _nullable_31(SCHEMAS)

SECURITY_SCHEMES = {
    "oauth2": {"type": "oauth2", "description": "Client credentials from "
               "`sheaf credentials create`.",
               "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {
                   "sp:scopes:all": "Everything the credential's authorities allow"}}}},
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "A token from POST /oauth/token."},
}

_TOKEN_FORM = {
    "type": "object", "required": ["grant_type", "client_id", "client_secret"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string"}, "client_secret": {"type": "string",
                                                           "format": "password"}}}

_UPLOAD = {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "The source's accounts as a CSV snapshot (UTF-8, header "
                                "first); accounts missing from it are removed."},
        "disableOptimization": {"type": "string", "enum": ["true", "false"],
                                "default": "false",
                                "description": "'true' re-examines unchanged accounts "
                                               "(and re-runs correlation)."}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(path: str, method: str) -> dict[str, dict[str, Any]]:
    """The error responses an operation really gives, in its dialect's envelopes."""
    if path == "/oauth/token":
        return {"400": _json(_ref("OAuthError"), "grant_type is not client_credentials"),
                "401": _json(_ref("OAuthError"), "Unknown client or wrong secret"),
                "429": {**_json(_ref("OAuthError"), "Too many failed sign-ins"),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}
    if path.startswith("/api/jobs"):
        native = _ref("NativeError")
        out = {"400": _json(native, "A bad parameter"),
               "401": _json(native, "No valid bearer token"),
               "403": _json(native, "The credential is not ORG_ADMIN")}
        if "{" in path:
            out["404"] = _json(native, "No such job")
        if path.endswith("/cancel"):
            out["409"] = _json(native, "The job has already ended")
        return out
    dto = _ref("ErrorResponseDto")
    out = {"400": _json(dto, "The request is not valid (the messages say why)"),
           "401": _json(_ref("Unauthorized"), "No valid bearer token"),
           "403": _json(dto, "The credential's authorities do not allow this")}
    if "{" in path:
        out["404"] = _json(dto, "No such object (or not one this credential administers)")
    if (path == "/v3/sources" and method == "post") or (
            path.startswith("/v3/sources/") and method in ("put", "patch", "delete", "post")):
        out["409"] = _json(dto, "A source with that name exists, or the source is busy")
    if "load-accounts" in path or "loadAccounts" in path:
        out["413"] = _json(dto, "The upload is larger than SHEAF_IDENTITY__MAX_UPLOAD_BYTES")
    out["429"] = {**_json(_ref("RateLimited"), "Over the rate limit"),
                  "headers": {"Retry-After": {"schema": {"type": "integer"},
                                              "description": "Seconds to wait"}}}
    return out


_SUCCESS_SCHEMAS = [
    (re.compile(r"load-accounts|loadAccounts"), "LoadAccountsTask"),
    (re.compile(r"task-status(/v1)?/pending-tasks$"), "[TaskStatus]"),
    (re.compile(r"task-status(/v1)?/\{[^}]+\}$"), "TaskStatus"),
    (re.compile(r"task-status(/v1)?$"), "[TaskStatus]"),
    (re.compile(r"^/v3/sources/\{[^}]+\}/schemas/\{"), "Schema"),
    (re.compile(r"^/v3/sources/\{[^}]+\}/schemas$"), "[Schema]"),
    (re.compile(r"^/v3/sources/\{[^}]+\}$"), "Source"),
    (re.compile(r"^/v3/sources$"), "[Source]"),
    (re.compile(r"^/v3/accounts/\{"), "Account"),
    (re.compile(r"^/v3/accounts$"), "[Account]"),
    (re.compile(r"/identities/\{"), "Identity"),
    (re.compile(r"/identities$"), "[Identity]"),
    (re.compile(r"^/api/jobs/\{job_id\}(/cancel)?$"), "Job"),
    (re.compile(r"^/api/jobs$"), "[Job]"),
    (re.compile(r"^/oauth/token$"), "TokenResponse"),
]


def _success_schema(path: str, method: str) -> dict[str, Any] | None:
    for pattern, name in _SUCCESS_SCHEMAS:
        if pattern.search(path):
            if name.startswith("["):  # a collection: listed by GET, one made by POST
                item = _ref(name[1:-1])
                return {"type": "array", "items": item} if method == "get" else item
            return _ref(name)
    return None


_VERSION = re.compile(r"^/(beta|v\d+)/|^/[a-z-]+/(v1)(/|$)|^/(cc)/api/")
_VERSION_WORD = re.compile(r"^/?(beta|v\d+|cc)$", re.IGNORECASE)


def summary(generated: str, path: str) -> str:
    """'Load accounts (v2025)' for FastAPI's 'Load Accountsv2025': sentence case, the API
    version from the path. A summary written by hand (it has a '(') is kept."""
    if "(" in generated:
        return generated
    words = [w for w in generated.split() if not _VERSION_WORD.match(w)]
    text = " ".join(words).capitalize()
    found = _VERSION.search(path)
    version = next((g for g in found.groups() if g and g != "/"), None) if found else None
    return f"{text} ({version})" if version else text


def install(app: FastAPI) -> None:
    """Post-process the generated document once, when it is first asked for."""

    def document() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        with warnings.catch_warnings():
            # (a GET+HEAD route gets one operation id twice: made unique below)
            warnings.filterwarnings("ignore", message="Duplicate Operation ID")
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes,
                              tags=app.openapi_tags)
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas.update(SCHEMAS)
        components["securitySchemes"] = SECURITY_SCHEMES
        seen: set[str] = set()
        for path, operations in doc.get("paths", {}).items():
            for method, op in operations.items():
                _fix(path, method, op)
                if op.get("operationId") in seen:
                    op["operationId"] = f"{op['operationId']}_{method}"
                seen.add(op.get("operationId", ""))
        app.openapi_schema = doc
        return doc

    app.openapi = document  # type: ignore[method-assign]


# The paths of the SailPoint dialect, the token endpoint and the native job API: what this
# module documents. The MX and EnergyCAP routes declare their own envelopes and security.
_DOCUMENTED_HERE = re.compile(
    r"^/(oauth/token|healthz|api/jobs|v3/|beta/|v20\d\d/|sources/v1|task-status/v1"
    r"|account-aggregations/v1|cc/api/)")


def _fix(path: str, method: str, op: dict[str, Any]) -> None:
    op["summary"] = summary(op.get("summary", ""), path)
    responses = op.setdefault("responses", {})
    if "HTTPValidationError" in str(responses.get("422", "")):
        # FastAPI's own, never returned: every dialect answers bad input with its 400
        del responses["422"]
    if not _DOCUMENTED_HERE.match(path):
        return
    if path == "/oauth/token":
        op["requestBody"] = {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": _TOKEN_FORM}}}
        op["description"] = (op.get("description", "") + "\n\nThe fields may also be sent "
                             "as query parameters.").strip()
    else:
        op["security"] = [] if path == "/healthz" else [{"oauth2": []}, {"bearer": []}]
    if "load-accounts" in path or "loadAccounts" in path:
        op["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": _UPLOAD}}}
    if path == "/healthz":
        return
    schema = _success_schema(path, method) if method in ("get", "post", "put", "patch") else None
    for code, response in responses.items():
        if code.startswith("2") and schema is not None:
            content = response.setdefault("content", {}).setdefault("application/json", {})
            if "$ref" not in content.get("schema", {}):  # (FastAPI's: any object)
                content["schema"] = schema
    for code, response in _errors(path, method).items():
        declared = responses.setdefault(code, response)
        if "content" not in declared:  # (declared by the route, with words only)
            declared.update({k: v for k, v in response.items() if k != "description"})
