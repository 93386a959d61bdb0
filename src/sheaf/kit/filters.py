"""SailPoint's collection parameters: ``filters``, ``sorters``, ``limit``/``offset``.

Filter grammar (V3 standard collection parameters): comparisons ``field op value`` with
ops eq, ne, in, sw, co, gt, lt, ge, le, isnull, pr; combined with ``and`` (binds tighter),
``or``, ``not`` and parentheses. Values are quoted strings, numbers, true/false, null,
ISO-8601 date-times (quoted or not), or a parenthesised list for ``in``.

Each field says what its values are (``text``, ``boolean``, ``timestamp`` or an enum), so a
value of the wrong kind is a 400 naming the field, never a database error. A filter is
bounded (MAX_TERMS comparisons, MAX_DEPTH nesting, MAX_LIST values in one ``in``): the
parser and SQL compilers recurse, and a deeper filter is not a real query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVarTuple

from fastapi import Response
from sqlalchemy import ColumnElement, Row, Select, and_, func, not_, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement as Column

from sheaf.errors import BadRequest

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)'
    r"|(?P<date>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)"
    r"|(?P<word>[A-Za-z_][\w.]*)|(?P<num>-?\d+(?:\.\d+)?))"
)
Ts = TypeVarTuple("Ts")
OPS = {"eq", "ne", "in", "sw", "co", "gt", "lt", "ge", "le", "isnull", "pr"}
MAX_TERMS = 100   # comparisons in one filter
MAX_DEPTH = 32    # nested parentheses and `not`s
MAX_LIST = 1000   # values in one `in (...)`


def text(value: Any) -> Any:
    """A string field takes a quoted string (or null)."""
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"expects a quoted string such as \"{value}\"")
    return value


def boolean(value: Any) -> Any:
    if value is not None and not isinstance(value, bool):
        raise BadRequest("expects true or false")
    return value


def timestamp(value: Any) -> Any:
    """ISO-8601 (``2024-05-01``, ``2024-05-01T14:36:52.775Z``); no zone means UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            try:  # (a zone offset can push 9999-12-31 past the last representable instant)
                return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            except OverflowError:
                pass
    raise BadRequest(f"expects an ISO-8601 date-time such as 2024-05-01T14:36:52Z; got {value!r}")


@dataclass(frozen=True)
class Field:
    column: Any  # a column or SQL expression
    ops: frozenset[str]
    # checks (and converts) a filter value; raises BadRequest saying what the field expects
    convert: Callable[[Any], Any] = text


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise BadRequest(f"Invalid filter at character {pos + 1}: {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str, fields: dict[str, Field]) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.fields = fields
        self.depth = 0
        self.terms = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise BadRequest("Invalid filter: it ends too early")
        self.i += 1
        return tok

    def parse(self) -> ColumnElement[bool]:
        expr = self.or_()
        if self.peek() is not None:
            raise BadRequest(f"Invalid filter: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return expr

    def or_(self) -> ColumnElement[bool]:
        parts = [self.and_()]
        while (tok := self.peek()) and tok == ("word", "or"):
            self.take()
            parts.append(self.and_())
        return or_(*parts) if len(parts) > 1 else parts[0]

    def and_(self) -> ColumnElement[bool]:
        parts = [self.term()]
        while (tok := self.peek()) and tok == ("word", "and"):
            self.take()
            parts.append(self.term())
        return and_(*parts) if len(parts) > 1 else parts[0]

    def nested(self, parse: Callable[[], ColumnElement[bool]]) -> ColumnElement[bool]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise BadRequest(f"Invalid filter: it nests parentheses or 'not' more than "
                             f"{MAX_DEPTH} deep")
        inner = parse()
        self.depth -= 1
        return inner

    def term(self) -> ColumnElement[bool]:
        kind, text = self.take()
        if kind == "lp":
            inner = self.nested(self.or_)
            if self.take()[0] != "rp":
                raise BadRequest("Invalid filter: missing ')'")
            return inner
        if (kind, text) == ("word", "not"):
            return not_(self.nested(self.term))
        if kind != "word":
            raise BadRequest(f"Invalid filter: expected a field name, found {text!r}")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise BadRequest(f"Invalid filter: it has more than {MAX_TERMS} comparisons; "
                             "use 'in' for a list of values, or several requests")
        field = self.fields.get(text)
        if field is None:
            raise BadRequest(f"Filtering is not supported for field '{text}'; supported: "
                             f"{', '.join(sorted(self.fields))}")
        _, op = self.take()
        if op not in OPS:
            raise BadRequest(f"Invalid filter: unknown operator '{op}'")
        if op not in field.ops:
            raise BadRequest(f"Filtering on '{text}' does not support '{op}'; supported: "
                             f"{', '.join(sorted(field.ops))}")
        col: Column[Any] = field.column
        if op == "isnull":
            return col.is_(None)
        if op == "pr":
            return col.is_not(None)
        if op == "in":
            return col.in_([self.convert(text, field, v) for v in self.list_()])
        value = self.convert(text, field, self.value())
        if op == "eq" and isinstance(value, datetime):
            # Answers show times to the millisecond: `eq` matches that millisecond.
            start = value.replace(microsecond=value.microsecond // 1000 * 1000)
            return and_(col >= start, col < start + timedelta(milliseconds=1))
        return {
            "eq": lambda: col == value if value is not None else col.is_(None),
            "ne": lambda: col != value,
            "sw": lambda: col.startswith(str(value), autoescape=True),
            "co": lambda: col.contains(str(value), autoescape=True),
            "gt": lambda: col > value,
            "lt": lambda: col < value,
            "ge": lambda: col >= value,
            "le": lambda: col <= value,
        }[op]()

    @staticmethod
    def convert(name: str, field: Field, value: Any) -> Any:
        try:
            return field.convert(value)
        except BadRequest as exc:
            if exc.message.startswith("Error converting"):  # (SailPoint's own words)
                raise
            raise BadRequest(f"Invalid filter: '{name}' {exc.message}") from None

    def list_(self) -> list[Any]:
        if self.take()[0] != "lp":
            raise BadRequest("Invalid filter: 'in' needs a list such as (\"a\",\"b\")")
        values = [self.value()]
        while (tok := self.take())[0] == "comma":
            values.append(self.value())
            if len(values) > MAX_LIST:
                raise BadRequest(f"Invalid filter: an 'in' list holds at most {MAX_LIST} values")
        if tok[0] != "rp":
            raise BadRequest("Invalid filter: missing ')' after the list")
        return values

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "date":
            return text
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word" and text in ("true", "false"):
            return text == "true"
        if kind == "word" and text == "null":
            return None
        raise BadRequest(f"Invalid filter: expected a value, found {text!r}")


def parse_filters(text: str | None, fields: dict[str, Field]) -> ColumnElement[bool]:
    if not text or not text.strip():
        return true()
    return _Parser(text, fields).parse()


def parse_sorters(text: str | None, columns: dict[str, Any], default: list[Any]) -> list[Any]:
    """The ORDER BY for SailPoint's ``sorters`` (``name,-created``), then ``default``: it
    ends in a unique key, so rows that tie on the requested fields still page stably."""
    if not text or not text.strip():
        return default
    order, seen = [], set()
    for part in (p.strip() for p in text.split(",")):
        name = part.removeprefix("-")
        if name not in columns:
            raise BadRequest(f"Sorting is not supported for field '{name[:64]}'; supported: "
                             f"{', '.join(sorted(columns))}")
        if name in seen:  # (and so at most one term a field: a bounded ORDER BY)
            raise BadRequest(f"sorters names '{name}' more than once")
        seen.add(name)
        order.append(columns[name].desc() if part.startswith("-") else columns[name].asc())
    return order + default


MAX_OFFSET = 2**63 - 1  # the databases' OFFSET is a signed 64-bit integer


def page(limit: int | None, offset: int | None, maximum: int = 250) -> tuple[int, int]:
    limit = maximum if limit is None else limit
    offset = 0 if offset is None else offset
    if not 0 <= limit <= maximum:
        raise BadRequest(f"limit must be between 0 and {maximum}; got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise BadRequest(f"offset must be between 0 and {MAX_OFFSET}; got {offset}")
    return limit, offset


def fetch_page(
    session: Session, stmt: Select[*Ts], counted: Any, where: ColumnElement[bool],
    order: list[Any], limit: int, offset: int, count: bool, response: Response,
    key: Any = None, start: ColumnElement[bool] | None = None,
) -> list[Row[*Ts]]:
    """One page of ``stmt``; with ``count``, the total of ``counted`` rows matching
    ``where`` goes into the X-Total-Count header, as SailPoint's ``count=true`` asks.

    ``key`` (a unique column of ``counted``): the page's keys are found first, by a query
    of that column alone, and only those rows are then read with ``stmt``'s joins. A
    deep offset then skips index entries, not joined rows: at offset 10^5 of a source's
    accounts, 18 ms instead of 64 ms (SQLite). ``where`` and ``order`` may then refer
    to ``counted``'s table only, and ``order`` must be total (end in a unique key).

    ``start`` (with ``key``): where in ``order`` the page's keys are looked for from,
    ``offset`` then counting from there; not part of the total.
    """
    if key is not None:
        scope = where if start is None else and_(where, start)
        keys = (select(key).select_from(counted).where(scope).order_by(*order).limit(limit)
                .offset(offset).correlate(None))  # (a scope of its own, not the page's)
        page = stmt.where(key.in_(keys)).order_by(*order)
    else:
        page = stmt.where(where).order_by(*order).limit(limit).offset(offset)
    rows = list(session.execute(page))
    if count:
        total = session.execute(select(func.count()).select_from(counted).where(where))
        response.headers["X-Total-Count"] = str(total.scalar_one())
    return rows
