"""Free-form JSON from clients (JSON Patch bodies, connectorAttributes): parsed safely,
bounded in depth, only values that can be written back out as JSON, and JSON Patch
operations checked one by one.

json.loads recurses once per nesting level, and so do deepcopy, pydantic and the response
encoder after it: a body nested a few thousand levels deep would end in RecursionError
(a 500) somewhere. No document this server accepts is nested more than a few levels, so
anything deeper than MAX_DEPTH is refused up front with a 400. NaN and Infinity parse in
Python but are not JSON: stored, they would make every later answer fail to render.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonpatch
from fastapi import Request

from sheaf.errors import BadRequest

MAX_DEPTH = 32


def problem(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Why ``value`` cannot be taken as JSON data, or None (walks it without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a JSON number"
        if isinstance(item, dict | list):
            if depth > limit:
                return f"it is nested more than {limit} levels deep"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: Request) -> Any:
    """The request's JSON body, or a 400 saying what is wrong with it."""
    body = await request.body()
    try:
        value = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise BadRequest(f"The JSON body is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if (why := problem(value)) is not None:
        raise BadRequest(f"The JSON body cannot be used: {why}")
    return value


PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")
# What jsonpatch raises for a well-formed patch that does not fit the document (a missing
# member, an index past the end, a step into a string, ...).
PATCH_ERRORS = (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError,
                IndexError, TypeError, ValueError, AttributeError)
_BAD_ESCAPE = re.compile(r"~(?![01])")


def json_patch(doc: Any) -> jsonpatch.JsonPatch:
    """An RFC 6902 patch, each operation checked so that a malformed one is a 400 naming it.
    The whole document (path "") cannot be replaced: fields are patched one by one."""
    if not isinstance(doc, list) or not doc:
        raise BadRequest('The body must be a non-empty JSON Patch array, e.g. '
                         '[{"op": "replace", "path": "/description", "value": "HR feed"}]')
    for n, op in enumerate(doc):
        if not isinstance(op, dict) or op.get("op") not in PATCH_OPS:
            raise BadRequest(f"Patch operation {n}: must be an object whose 'op' is one of "
                             f"{', '.join(PATCH_OPS)}")
        for key in ("path", "from") if op["op"] in ("move", "copy") else ("path",):
            pointer = op.get(key)
            if not isinstance(pointer, str) or not pointer.startswith("/"):
                raise BadRequest(f"Patch operation {n}: '{key}' must be a JSON Pointer string "
                                 f"starting with '/', such as /description; got {pointer!r}")
            if _BAD_ESCAPE.search(pointer):
                raise BadRequest(f"Patch operation {n}: in '{key}' {pointer!r}, '~' must be "
                                 "followed by 0 (for ~) or 1 (for /)")
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(f"Patch operation {n}: '{op['op']}' needs a 'value'")
    try:
        return jsonpatch.JsonPatch(doc)
    except PATCH_ERRORS as exc:
        raise BadRequest(f"The body is not a valid JSON Patch: {exc}") from None
