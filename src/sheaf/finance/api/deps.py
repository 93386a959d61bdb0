"""What MX endpoints share: Basic auth, query booleans, paging, dates, JSON bodies."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from sheaf.auth.deps import spend
from sheaf.auth.mx import BasicVerifier
from sheaf.errors import BadRequest, Unauthorized
from sheaf.kit.base import utcnow
from sheaf.runtime import Runtime, get_runtime

PLATFORM_MEDIA = "application/vnd.mx.api.v1+json"
NEXUS_MEDIA = "application/vnd.mx.nexus.v1+json"
DEFAULT_PER_PAGE = 25
BUCKET = "mx"  # the Platform API's rate-limit budget

verifier = BasicVerifier()  # (its cache is shared with the fast path)


class PlatformJSON(JSONResponse):
    media_type = PLATFORM_MEDIA


class NexusJSON(JSONResponse):
    media_type = NEXUS_MEDIA


def no_content() -> Response:
    return Response(status_code=204)


async def mx_client(request: Request, runtime: Runtime = Depends(get_runtime)) -> str:
    """The Platform API client: HTTP Basic ``client_id:api_key``."""
    header = request.headers.get("authorization", "")
    client_id = await run_in_threadpool(verifier.client_for, runtime.db, header)
    if client_id is None:
        raise Unauthorized("HTTP Basic credentials client_id:api_key are missing or wrong")
    await spend(runtime, client_id, BUCKET)
    return client_id


def flag(request: Request, name: str, default: bool = True,
         body: dict[str, Any] | None = None) -> bool:
    """A boolean from the query (any case: the SDK sends True/False) or a JSON body."""
    raw = request.query_params.get(name)
    if raw is None and body is not None and name in body:
        value = body[name]
        if isinstance(value, bool):
            return value
        raw = str(value)
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise BadRequest(f"{name} must be true or false, not {raw!r}")


def paging(request: Request) -> tuple[int, int]:
    """(page, records_per_page): page from 1; records_per_page 10..1000 (fewer reads as
    10, more falls back to the default 25, as MX does); anything not a positive whole
    number is refused."""
    def positive(name: str, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a whole number, not {raw!r}") from None
        if value < 1:
            raise BadRequest(f"{name} must be 1 or more, not {value}")
        if value > 2**31:
            raise BadRequest(f"{name} is too large: {value}")
        return value

    page = positive("page", 1)
    per_page = positive("records_per_page", DEFAULT_PER_PAGE)
    if per_page > 1000:
        per_page = DEFAULT_PER_PAGE
    return page, max(per_page, 10)


def date_range(request: Request) -> tuple[str, str]:
    """from_date (default 120 days ago) and to_date (default 5 days ahead), YYYY-MM-DD,
    both included. Days are UTC days (MX's), not the server's local ones."""
    today = utcnow().date()

    def parse(name: str, default: date) -> date:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a date as YYYY-MM-DD, not {raw!r}") from None

    start = parse("from_date", today - timedelta(days=120))
    end = parse("to_date", today + timedelta(days=5))
    if start > end:
        raise BadRequest(f"from_date {start} is after to_date {end}")
    return start.isoformat(), end.isoformat()


async def json_body(request: Request, root: str | None = None,
                    required: bool = True) -> dict[str, Any]:
    """The request's JSON object; with ``root`` the object under that key (a body that is
    not rooted is accepted as the object itself, as Nexus does)."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest("A JSON body is required" + (f": {{\"{root}\": {{...}}}}"
                                                          if root else ""))
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    if root is None:
        return body
    inner = body.get(root, body)
    if not isinstance(inner, dict):
        raise BadRequest(f"{root} must be a JSON object")
    return inner
