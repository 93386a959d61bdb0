"""OpenAPI descriptions of what the MX endpoints read by hand (query parameters parsed
leniently, as MX does, and rooted JSON bodies), so /docs and schema fuzzers see them."""

from __future__ import annotations

from typing import Any


def _query(name: str, kind: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": {"type": kind, **extra}}


PAGE = [_query("page", "integer", "Page, from 1.", minimum=1),
        _query("records_per_page", "integer",
               "10 to 1000 (default 25; more falls back to 25).", minimum=1)]
DATES = [_query("from_date", "string", "YYYY-MM-DD; default 120 days ago.", format="date"),
         _query("to_date", "string", "YYYY-MM-DD; default 5 days ahead.", format="date")]
INCLUDES = [_query("include_transactions", "boolean", "Default true; any case."),
            _query("include_holdings", "boolean", "Default true; any case.")]


def _body(root: str, properties: dict[str, Any], required: list[str] | None = None
          ) -> dict[str, Any]:
    inner: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        inner["required"] = required
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": [root], "properties": {root: inner}}}}}}


_CREDENTIALS = {"type": "array", "items": {"type": "object", "required": ["guid", "value"],
                                           "properties": {"guid": {"type": "string"},
                                                          "value": {"type": "string"}}}}
_USER = {"id": {"type": "string"}, "email": {"type": "string"},
         "metadata": {"type": "string"}, "is_disabled": {"type": "boolean"}}
_MEMBER = {"id": {"type": "string"}, "metadata": {"type": "string"},
           "credentials": _CREDENTIALS, "skip_aggregation": {"type": "boolean"},
           "background_aggregation_is_disabled": {"type": "boolean"},
           "use_cases": {"type": "array", "items": {"type": "string",
                                                    "enum": ["PFM", "MONEY_MOVEMENT"]}}}


def params(*groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"parameters": [p for g in groups for p in g]}


USER_BODY = _body("user", _USER)
MEMBER_CREATE = _body("member", {**_MEMBER, "institution_code": {"type": "string"}},
                      ["institution_code", "credentials"])
MEMBER_UPDATE = _body("member", _MEMBER)
RESUME = _body("member", {"challenges": _CREDENTIALS}, ["challenges"])
