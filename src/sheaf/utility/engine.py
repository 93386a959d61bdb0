"""The aggregation arithmetic, apart from the database: sums in, bills (or failures) out.

Rounding rule. Source use and cost are stored exactly (millionths). For each aggregate
version and period:

- use: every source use line is converted into the aggregate meter's unit with exact
  rational arithmetic (unit factors are exact decimals), summed, and the sum is rounded
  once to 6 decimal places, half to even;
- cost: the source costs are summed exactly and the sum is rounded once to the cent,
  half to even (banker's rounding, so repeated runs carry no upward bias).

Only meter line items count (account-level charges belong to no meter), of bills that
are neither void nor accruals. A version with no source bill in a period, or with a
source unit that does not convert into the aggregate's unit, fails for that period with
its reason; the others go on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

USE_PLACES = Decimal("0.000001")
COST_PLACES = Decimal("0.01")
MICRO = 1_000_000


@dataclass(frozen=True)
class UnitInfo:
    code: str
    dimension: str
    factor: Decimal  # in the dimension's base unit


@dataclass(frozen=True)
class Target:
    """An aggregate version in force for a period."""

    version_id: int
    account_id: int
    meter_id: int
    unit_id: int
    period: int
    sources: int  # how many source meters it sums


@dataclass(frozen=True)
class SourceSum:
    """Source lines of one version and period in one unit (``unit_id`` None: lines that
    carry cost only)."""

    version_id: int
    period: int
    unit_id: int | None
    use_micro: int
    cost_micro: int


@dataclass(frozen=True)
class Outcome:
    target: Target
    use: Decimal | None = None
    cost: Decimal | None = None
    error: str | None = None
    missing_sources: int = 0

    @property
    def use_micro(self) -> int:
        assert self.use is not None
        return int(self.use * MICRO)

    @property
    def cost_micro(self) -> int:
        assert self.cost is not None
        return int(self.cost * MICRO)


def exact_decimal(value: Fraction, places: Decimal) -> Decimal:
    """``value`` rounded half to even at ``places`` (a power of ten), exactly: integer
    arithmetic only, and a Decimal built from digits (no context precision applies)."""
    digits = -places.as_tuple().exponent  # type: ignore[operator]
    scaled = value * 10**digits
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * remainder
    if twice > scaled.denominator or (twice == scaled.denominator and whole % 2 == 1):
        whole += 1
    return Decimal(f"{whole}E-{digits}")


def compute(targets: list[Target], sums: list[SourceSum], present: dict[tuple[int, int], int],
            units: dict[int, UnitInfo]) -> list[Outcome]:
    """One outcome per target. ``present[(version, period)]``: source meters with a bill."""
    by_target: dict[tuple[int, int], list[SourceSum]] = defaultdict(list)
    for s in sums:
        by_target[(s.version_id, s.period)].append(s)
    outcomes = []
    for t in targets:
        rows = by_target.get((t.version_id, t.period), [])
        found = present.get((t.version_id, t.period), 0)
        if not rows or found == 0:
            outcomes.append(Outcome(t, error=f"No source bills for billing period {t.period}",
                                    missing_sources=t.sources))
            continue
        target_unit = units[t.unit_id]
        use = Fraction(0)
        cost = 0
        error = None
        for s in rows:
            cost += s.cost_micro
            if s.unit_id is None or s.use_micro == 0:
                continue
            unit = units[s.unit_id]
            if unit.dimension != target_unit.dimension:
                error = (f"No unit conversion from {unit.code} to {target_unit.code} "
                         f"(billing period {t.period})")
                break
            use += Fraction(s.use_micro, MICRO) * Fraction(unit.factor) / Fraction(
                target_unit.factor)
        if error is not None:
            outcomes.append(Outcome(t, error=error, missing_sources=t.sources - found))
            continue
        outcomes.append(Outcome(t, use=exact_decimal(use, USE_PLACES),
                                cost=exact_decimal(Fraction(cost, MICRO), COST_PLACES),
                                missing_sources=t.sources - found))
    return outcomes
