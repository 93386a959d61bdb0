"""Errors the EnergyCAP dialect answers with: 400 naming every failing field.

The body is ``{"message": ..., "errors": [{"field": ..., "message": ...}]}`` (EnergyCAP
publishes no error model; this is the ASP.NET Web API shape its stack produces).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse

from sheaf.errors import BadRequest, RateLimited, SheafError

# /api/v3/..., /api/v202203/...: EnergyCAP's versioned paths (not sheaf's /api/jobs).
PATH = re.compile(r"^/api/v\d")


class FieldErrors(BadRequest):
    """A request with one or more bad fields; nothing was written."""

    def __init__(self, fields: list[tuple[str, str]], message: str | None = None) -> None:
        self.fields = fields
        super().__init__(message or "The request is invalid: " + "; ".join(
            f"{f}: {m}" for f, m in fields))


def field_error(field: str, message: str) -> FieldErrors:
    return FieldErrors([(field, message)])


class FieldCheck:
    """Collects every failing field before refusing the request."""

    def __init__(self) -> None:
        self.fields: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.fields.append((field, message))

    def raise_any(self) -> None:
        if self.fields:
            raise FieldErrors(self.fields)


def from_validation(errors: Sequence[Any]) -> FieldErrors:
    """FastAPI's validation errors as EnergyCAP field errors (``body`` dropped from the
    location, list indexes kept: ``sourceMeterIds[2]``)."""
    fields = []
    for err in errors:
        where = ""
        loc = tuple(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        for part in loc:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else
                                                                str(part))
        fields.append((where or "body", str(err.get("msg"))))
    return FieldErrors(fields)


def render(exc: SheafError) -> JSONResponse:
    """``{"message", "errors": [{"field", "message"}]}`` with the error's status."""
    fields = exc.fields if isinstance(exc, FieldErrors) else []
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(status_code=exc.status_code, headers=headers, content={
        "message": exc.message, "errors": [{"field": f, "message": msg} for f, msg in fields]})
