"""Billing periods: YYYYMM integers, stepped by calendar month."""

from __future__ import annotations

from datetime import date

LOWEST, HIGHEST = 190001, 300001


def problem(period: int) -> str | None:
    """Why ``period`` is not a billing period, or None."""
    if not LOWEST <= period <= HIGHEST:
        return f"must be a billing period between {LOWEST} and {HIGHEST} (YYYYMM)"
    if not 1 <= period % 100 <= 12:
        return "the month (last two digits) must be between 01 and 12"
    return None


def add_months(period: int, months: int) -> int:
    index = (period // 100) * 12 + (period % 100 - 1) + months
    return (index // 12) * 100 + index % 12 + 1


def span(end: int, count: int) -> list[int]:
    """``count`` periods ending with ``end``, oldest first."""
    return [add_months(end, -n) for n in range(count - 1, -1, -1)]


def between(first: int, last: int) -> list[int]:
    """Every period from ``first`` to ``last``, both included."""
    out, p = [], first
    while p <= last:
        out.append(p)
        p = add_months(p, 1)
    return out


def first_day(period: int) -> date:
    return date(period // 100, period % 100, 1)


def of(day: date) -> int:
    return day.year * 100 + day.month
