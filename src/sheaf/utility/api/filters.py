"""EnergyCAP's ``filter`` syntax: ``field operator 'value'`` clauses joined by ``and``.

Operators: equals, not equals, less than, greater than, less than equal, greater than
equal, like, not like, one of 'a'|'b', not one of, between 'a'|'b', not between. Every
value is single-quoted ('' inside a value is a quote).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, not_

from sheaf.utility.errors import field_error

OPERATORS = ["not equals", "equals", "less than equal", "greater than equal", "less than",
             "greater than", "not like", "like", "not one of", "one of", "not between",
             "between"]
_CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z][\w.]*)\s+(?P<op>" + "|".join(o.replace(" ", r"\s+") for o in OPERATORS)
    + r")\s+(?P<values>'(?:[^']|'')*'(?:\s*\|\s*'(?:[^']|'')*')*)\s*", re.IGNORECASE)
_VALUE = re.compile(r"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class FilterField:
    column: Any
    convert: Callable[[str], Any] = str


def integer(value: str) -> int:
    number = int(value)
    if not -(2**31) <= number < 2**31:  # EnergyCAP's integers are 32-bit
        raise ValueError("out of range")
    return number


def boolean(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError("not true or false")
    return value.lower() == "true"


def parse(text: str | None, fields: dict[str, FilterField]) -> list[ColumnElement[bool]]:
    """SQL conditions for ``text``; 400 naming the filter when it cannot be read."""
    if not text or not text.strip():
        return []
    conditions: list[ColumnElement[bool]] = []
    known = {k.lower(): (k, v) for k, v in fields.items()}
    for part in re.split(r"\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)", text.strip(),
                         flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise field_error("filter", f"cannot read the clause {part!r}: expected "
                                        "field operator 'value'")
        name = match["field"].lower()
        if name not in known:
            raise field_error("filter", f"unknown filter field {match['field']!r}; known: "
                                        + ", ".join(sorted(fields)))
        key, field = known[name]
        op = " ".join(match["op"].lower().split())
        try:
            values = [field.convert(v.replace("''", "'"))
                      for v in _VALUE.findall(match["values"])]
        except ValueError:
            raise field_error("filter", f"a value for {key} has the wrong type") from None
        conditions.append(_condition(field.column, op, values, key))
    return conditions


def _condition(col: Any, op: str, values: list[Any], key: str) -> ColumnElement[bool]:
    many = op.endswith("one of") or op.endswith("between")
    if not many and len(values) != 1:
        raise field_error("filter", f"{key} {op} takes one value")
    if op.endswith("between") and len(values) != 2:
        raise field_error("filter", f"{key} {op} takes two values 'a'|'b'")
    value = values[0]
    conditions: dict[str, Callable[[], ColumnElement[bool]]] = {
        "equals": lambda: col == value,
        "not equals": lambda: col != value,
        "less than": lambda: col < value,
        "greater than": lambda: col > value,
        "less than equal": lambda: col <= value,
        "greater than equal": lambda: col >= value,
        "like": lambda: col.like(f"%{value}%"),
        "not like": lambda: not_(col.like(f"%{value}%")),
        "one of": lambda: col.in_(values),
        "not one of": lambda: not_(col.in_(values)),
        "between": lambda: and_(col >= values[0], col <= values[1]),
        "not between": lambda: not_(and_(col >= values[0], col <= values[1])),
    }
    return conditions[op]()
