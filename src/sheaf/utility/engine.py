"""The aggregation arithmetic, apart from the database: sums in, bills (or failures) out.

Rounding rule. Source use and cost are stored exactly (millionths). For each aggregate
version and period:

- use: every source use line is converted into the aggregate meter's unit with exact
  rational arithmetic (unit factors are exact decimals), summed, and the sum is rounded
  once to 6 decimal places, half to even;
- cost: the source costs are summed exactly and the sum is rounded once to the cent,
  half to even (banker's rounding, so repeated runs carry no upward bias).

``compute_frame`` is the same arithmetic over polars frames, for a run's many thousands
of targets: a target whose every source use is already in the aggregate's unit (the
usual case) is summed column-wise in exact integers (Int128, so no sum wraps); the rest
(another unit, no source bill, a sum past 64 bits) go through ``compute`` one by one.

Only meter line items count (account-level charges belong to no meter), of bills that
are neither void nor accruals. A version with no source bill in a period, or with a
source unit that does not convert into the aggregate's unit, fails for that period with
its reason; the others go on (and, in compute_frame, one whose sum does not fit a bill's
64-bit integer of millionths).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import polars as pl

USE_PLACES = Decimal("0.000001")
COST_PLACES = Decimal("0.01")
MICRO = 1_000_000
CENT_MICRO = 10_000
_INT64 = 2**63 - 1
# the frame compute_frame answers
OUTCOME_SCHEMA = {"version_id": pl.Int64, "period": pl.Int64, "account_id": pl.Int64,
                  "meter_id": pl.Int64, "unit_id": pl.Int64, "use_micro": pl.Int64,
                  "cost_micro": pl.Int64, "error": pl.String, "missing_sources": pl.Int64}


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


def storable(o: Outcome) -> Outcome:
    """``o``, or its failure if its use or cost does not fit the 64-bit integer of
    millionths a bill stores."""
    if o.error is not None or (abs(o.use_micro) <= _INT64 and abs(o.cost_micro) <= _INT64):
        return o
    return Outcome(o.target, error=f"The sum of the source bills for billing period "
                                   f"{o.target.period} is too large to store",
                   missing_sources=o.missing_sources)


def compute_frame(targets: pl.DataFrame, sums: pl.DataFrame, present: pl.DataFrame,
                  units: dict[int, UnitInfo]) -> pl.DataFrame:
    """``compute`` over frames. ``targets``: version_id, account_id, meter_id, unit_id,
    period, sources; ``sums``: version_id, period, unit_id (null: cost-only lines),
    use_micro, cost_micro; ``present``: version_id, period, found. One row per target
    (OUTCOME_SCHEMA); ``error`` null where a bill is due."""
    key = ["version_id", "period"]
    wide = pl.col("use_micro").cast(pl.Int128), pl.col("cost_micro").cast(pl.Int128)
    per_target = sums.join(targets.select(*key, pl.col("unit_id").alias("want")), on=key
                           ).group_by(key).agg(
        wide[0].filter(pl.col("unit_id") == pl.col("want")).sum().alias("use"),
        wide[1].sum().alias("cost"),
        # a use in another unit needs a conversion (or fails): the one-by-one path
        (pl.col("unit_id").is_not_null() & (pl.col("use_micro") != 0)
         & (pl.col("unit_id") != pl.col("want"))).any().alias("other_unit"))
    joined = targets.join(per_target, on=key, how="left").join(present, on=key, how="left")
    regular = (pl.col("cost").is_not_null() & (pl.col("found").fill_null(0) > 0)
               & ~pl.col("other_unit") & (pl.col("use").abs() <= _INT64)
               & (pl.col("cost").abs() <= _INT64 - CENT_MICRO))  # (rounding may add a cent)
    simple = joined.filter(regular)
    cents = pl.col("cost") // CENT_MICRO
    twice_rest = 2 * (pl.col("cost") - cents * CENT_MICRO)
    rounded = cents + ((twice_rest > CENT_MICRO)
                       | ((twice_rest == CENT_MICRO) & (cents % 2 == 1))).cast(pl.Int128)
    done = simple.select(
        *key, "account_id", "meter_id", "unit_id", pl.col("use").cast(pl.Int64).alias("use_micro"),
        (rounded * CENT_MICRO).cast(pl.Int64).alias("cost_micro"),
        pl.lit(None, pl.String).alias("error"),
        (pl.col("sources") - pl.col("found")).cast(pl.Int64).alias("missing_sources"))
    rest = joined.filter(~regular.fill_null(False))
    if rest.height == 0:
        return done.cast(OUTCOME_SCHEMA)  # type: ignore[arg-type]
    rest_sums = sums.join(rest.select(key), on=key, how="semi")
    outcomes = compute(
        [Target(*row) for row in rest.select("version_id", "account_id", "meter_id", "unit_id",
                                             "period", "sources").iter_rows()],
        [SourceSum(*row) for row in rest_sums.select("version_id", "period", "unit_id",
                                                     "use_micro", "cost_micro").iter_rows()],
        {(v, p): n for v, p, n in present.join(rest.select(key), on=key, how="semi")
         .iter_rows()}, units)
    slow = pl.DataFrame([(o.target.version_id, o.target.period, o.target.account_id,
                          o.target.meter_id, o.target.unit_id,
                          None if o.error else o.use_micro, None if o.error else o.cost_micro,
                          o.error, o.missing_sources) for o in map(storable, outcomes)],
                        schema=OUTCOME_SCHEMA, orient="row")
    return pl.concat([done.cast(OUTCOME_SCHEMA), slow])  # type: ignore[arg-type]
