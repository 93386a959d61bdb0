"""The aggregate equals the sum of its sources, for any bills and units (hypothesis),
computed independently here with Decimal at high precision."""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sheaf.utility import engine
from sheaf.utility.reference import UNITS
from tests.utility.conftest import Api

FACTORS = {code: Decimal(f) for code, _, dim, f in UNITS if dim == "energy"}
ENERGY = sorted(FACTORS)

amounts = st.decimals(min_value=Decimal("-1e8"), max_value=Decimal("1e8"), places=6,
                      allow_nan=False, allow_infinity=False)
costs = st.decimals(min_value=Decimal("-1e8"), max_value=Decimal("1e8"), places=2,
                    allow_nan=False, allow_infinity=False)
bills = st.lists(st.tuples(st.sampled_from(ENERGY), amounts, costs), min_size=1, max_size=8)


def expected(rows: list[tuple[str, Decimal, Decimal]], target: str) -> tuple[Decimal, Decimal]:
    with localcontext() as ctx:
        ctx.prec = 80
        use = sum((value * FACTORS[unit] / FACTORS[target] for unit, value, _ in rows),
                  Decimal(0))
        cost = sum((c for _, _, c in rows), Decimal(0))
        return (use.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN),
                cost.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


@given(rows=bills, target=st.sampled_from(ENERGY))
def test_engine_sum_is_exact(rows: list[tuple[str, Decimal, Decimal]], target: str) -> None:
    ids = {code: i for i, code in enumerate(ENERGY)}
    units = {i: engine.UnitInfo(code, "energy", FACTORS[code]) for code, i in ids.items()}
    sums = [engine.SourceSum(1, 202401, ids[u], int(v * 1_000_000), int(c * 1_000_000))
            for u, v, c in rows]
    [out] = engine.compute([engine.Target(1, 1, 1, ids[target], 202401, len(rows))], sums,
                           {(1, 202401): len(rows)}, units)
    assert (out.use, out.cost) == expected(rows, target)


@given(st.fractions(), st.integers(min_value=0, max_value=8))
def test_rounding_is_half_even(value: Fraction, places: int) -> None:
    step = Decimal(1).scaleb(-places)
    with localcontext() as ctx:
        ctx.prec = 200
        want = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            step, rounding=ROUND_HALF_EVEN)
    assert engine.exact_decimal(value, step) == want


_periods = itertools.count()


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(ENERGY), amounts, costs, st.booleans()),
                     min_size=1, max_size=5))
def test_aggregate_bill_equals_sum_of_source_bills(
        api: Api, rows: list[tuple[str, Decimal, Decimal, bool]]) -> None:
    """End to end: bills entered over HTTP in any energy unit, on either source meter."""
    if not hasattr(api, "campus"):
        place = api.place("PROP")
        meters = [api.meter("S1", place), api.meter("S2", place)]
        account = api.account("SRC", meters)
        details = api.call("PUT", f"/api/v202203/utilityPlatform/place/{place}/aggregateMeter",
                           json={"beginPeriod": 190001, "sourceMeterIds": meters,
                                 "commodityId": api.commodity("ELECTRIC"),
                                 "aggregateMeterInfo": "Total"})
        api.campus = (meters, account, details["version"]["account"]["accountId"])  # type: ignore[attr-defined]
    meters, account, aggregate_account = api.campus  # type: ignore[attr-defined]
    n = next(_periods)
    period = 200001 + (n // 12) * 100 + n % 12
    for unit, value, cost, second in rows:
        api.bill(account, meters[int(second)], period, str(value), str(cost), unit=unit)
    task: Any = api.call("POST", "/api/v202203/utilityPlatform/aggregations/exec",
                         json={"billingPeriod": period})
    assert api.call("GET", f"/api/v3/chargebackTask/{task['taskId']}")[
        "numberOfBillsCreated"] == 1
    [bill] = api.call("GET", "/api/v3/bill", params={
        "filter": f"accountId equals '{aggregate_account}' and billingPeriod equals '{period}' "
                  "and void equals 'false'"})
    use, cost = expected([(u, v, c) for u, v, c, _ in rows], "kWh")
    assert Decimal(str(bill["totalCost"])) == cost
    assert api.client.get(f"/api/v3/bill/{bill['billId']}", headers=api.headers
                          ).json()["totalCost"] == float(cost)
    stored = _use_of(api, bill["billId"])
    assert stored == use


def _use_of(api: Api, bill_id: int) -> Decimal:
    from sheaf.utility import models as m

    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        from sqlalchemy import select

        micro = session.execute(select(m.BillLine.value_micro).where(
            m.BillLine.bill_id == bill_id)).scalar_one()
    return Decimal(micro) / 1_000_000


source_rows = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2),
                                 st.sampled_from([None, *range(len(ENERGY))]),
                                 st.integers(-10**15, 10**15), st.integers(-10**15, 10**15)),
                       max_size=12)


@given(rows=source_rows, wants=st.lists(st.integers(0, len(ENERGY) - 1), min_size=3,
                                        max_size=3),
       found=st.lists(st.integers(0, 3), min_size=9, max_size=9))
def test_the_column_wise_engine_equals_the_one_by_one(
        rows: list[tuple[int, int, int | None, int, int]], wants: list[int],
        found: list[int]) -> None:
    """compute_frame (polars, exact integers) gives what compute gives, bill for bill and
    failure for failure: same units or not, cost-only lines, no source bills, sums past
    what a bill stores."""
    units = {i: engine.UnitInfo(code, "energy", FACTORS[code]) for i, code in enumerate(ENERGY)}
    periods = [202401, 202402, 202403]
    targets = [engine.Target(v, 100 + v, 200 + v, wants[v - 1], p, 3)
               for v in (1, 2, 3) for p in periods]
    sums = [engine.SourceSum(v, periods[p], u, use, cost) for v, p, u, use, cost in rows]
    present = {(t.version_id, t.period): n for t, n in zip(targets, found, strict=True)}
    want = sorted(
        (o.target.version_id, o.target.period, None if o.error else o.use_micro,
         None if o.error else o.cost_micro, o.error, o.missing_sources)
        for o in map(engine.storable, engine.compute(targets, sums, present, units)))
    frame = engine.compute_frame(
        pl.DataFrame([(t.version_id, t.account_id, t.meter_id, t.unit_id, t.period, t.sources)
                      for t in targets], schema=["version_id", "account_id", "meter_id",
                                                 "unit_id", "period", "sources"],
                     orient="row"),
        pl.DataFrame([(s.version_id, s.period, s.unit_id, s.use_micro, s.cost_micro)
                      for s in sums], schema={"version_id": pl.Int64, "period": pl.Int64,
                                              "unit_id": pl.Int64, "use_micro": pl.Int64,
                                              "cost_micro": pl.Int64}, orient="row"),
        pl.DataFrame([(v, p, n) for (v, p), n in present.items()],
                     schema=["version_id", "period", "found"], orient="row"), units)
    got = sorted(frame.select("version_id", "period", "use_micro", "cost_micro", "error",
                              "missing_sources").iter_rows())
    assert got == want
