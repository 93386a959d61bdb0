"""Free-form JSON from clients (JSON Patch bodies, connectorAttributes): parsed safely,
bounded in depth, and only values that can be written back out as JSON.

json.loads recurses once per nesting level, and so do deepcopy, pydantic and the response
encoder after it: a body nested a few thousand levels deep would end in RecursionError
(a 500) somewhere. No document this server accepts is nested more than a few levels, so
anything deeper than MAX_DEPTH is refused up front with a 400. NaN and Infinity parse in
Python but are not JSON: stored, they would make every later answer fail to render.
"""

from __future__ import annotations

import json
import math
from typing import Any

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
