"""Bulk bill import: a utility pushes its customers' meter bills as one CSV.

Header ``place_code,commodity_code,account_code,meter_code,billing_period,begin_date,
end_date,use,use_unit,cost``; one row per meter bill; ISO dates; ``use_unit`` a unit
code; ``use`` and ``cost`` decimals with at most 6 decimal places.

Columnar (polars) and all-or-nothing: every bad row is named with its line number and
reason and nothing is written; otherwise, in one transaction, missing places (under the
root place), accounts and hidden meters and their links are created, and one bill per
(account, meter, billing period): a row for a bill that already exists replaces its
values only if they differ.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection, text

from sheaf.db import Database
from sheaf.kit import bulk, csvrecords
from sheaf.kit.base import utcnow
from sheaf.utility import service

COLUMNS = ["place_code", "commodity_code", "account_code", "meter_code", "billing_period",
           "begin_date", "end_date", "use", "use_unit", "cost"]
LIMITS = {"place_code": 32, "account_code": 50, "meter_code": 32}
MAX_REPORTED = 50
_DECIMAL = r"^(-?)(\d{1,12})(?:\.(\d{1,6}))?$"


class ImportRefused(Exception):
    """The file cannot be imported; ``problems`` name lines. Nothing was written."""

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        self.problems = problems
        more = (total or len(problems)) - len(problems)
        super().__init__("The file was not imported: " + "; ".join(problems)
                         + (f"; and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class ImportResult:
    rows: int
    places_created: int
    accounts_created: int
    meters_created: int
    links_created: int
    bills_created: int
    bills_replaced: int
    bills_unchanged: int

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "placesCreated": self.places_created,
                "accountsCreated": self.accounts_created, "metersCreated": self.meters_created,
                "accountMetersCreated": self.links_created, "billsCreated": self.bills_created,
                "billsReplaced": self.bills_replaced, "billsUnchanged": self.bills_unchanged}


def read(data: bytes) -> pl.DataFrame:
    """Parse and check the file; the rows with their line numbers and parsed values."""
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False, has_header=True,
                            encoding="utf8-lossy")
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise ImportRefused([_unreadable(data, exc)]) from None
    header = [c.strip().lstrip("\ufeff") for c in frame.columns]
    if header != COLUMNS:
        raise ImportRefused([f"line 1: the header must be {','.join(COLUMNS)}; it is "
                             f"{','.join(header)}"])
    # ("line" is the row's line while no record spans lines; see _lines)
    frame = frame.rename(dict(zip(frame.columns, COLUMNS, strict=True))).with_columns(
        pl.col(c).str.strip_chars() for c in COLUMNS).with_row_index("line", offset=2)
    period = pl.col("billing_period").cast(pl.Int64, strict=False)
    parsed = frame.with_columns(
        period.alias("period"),
        pl.col("begin_date").str.to_date("%Y-%m-%d", strict=False).alias("begin"),
        pl.col("end_date").str.to_date("%Y-%m-%d", strict=False).alias("end"),
        _micro("use").alias("use_micro"), _micro("cost").alias("cost_micro"))
    checks: list[tuple[pl.Expr, str]] = [
        *((pl.col(c).is_null() | (pl.col(c) == ""), f"{c} is empty") for c in COLUMNS),
        *((pl.col(c).str.len_chars() > n, f"{c} is longer than {n} characters")
          for c, n in LIMITS.items()),
        (pl.col("period").is_null() | ~pl.col("period").is_between(190001, 300001)
         | ~(pl.col("period") % 100).is_between(1, 12),
         "billing_period is not a YYYYMM billing period between 190001 and 300001"),
        (pl.col("begin").is_null(), "begin_date is not an ISO date (YYYY-MM-DD)"),
        (pl.col("end").is_null(), "end_date is not an ISO date (YYYY-MM-DD)"),
        (pl.col("end") < pl.col("begin"), "end_date is before begin_date"),
        (pl.col("use_micro").is_null(), "use is not a decimal with at most 6 decimal places"),
        (pl.col("cost_micro").is_null(), "cost is not a decimal with at most 6 decimal places"),
        (pl.struct("account_code", "meter_code", "period").is_duplicated()
         & (pl.col("line") != pl.col("line").min().over("account_code", "meter_code",
                                                          "period")),
         "repeats the bill of an earlier row (same account, meter and billing period)"),
        (pl.col("place_code").n_unique().over("meter_code") > 1,
         "the meter appears with more than one place in the file"),
        (pl.col("commodity_code").n_unique().over("meter_code") > 1,
         "the meter appears with more than one commodity in the file"),
    ]
    try:
        _refuse_bad(parsed, checks)
    except _BadRows as bad:
        raise bad.refusal(data) from None
    # the text the parsed columns came from is not needed again (a few hundred MB at 10^6)
    return parsed.drop("billing_period", "begin_date", "end_date", "use", "cost")


def _micro(column: str) -> pl.Expr:
    """A decimal string as an exact integer of millionths (null if it is not one)."""
    parts = pl.col(column).str.extract_groups(_DECIMAL)
    whole = parts.struct.field("2").cast(pl.Int64, strict=False)
    fraction = parts.struct.field("3").fill_null("").str.pad_end(6, "0").cast(pl.Int64,
                                                                             strict=False)
    value = whole * 1_000_000 + fraction
    return pl.when(parts.struct.field("1") == "-").then(-value).otherwise(value)


def _unreadable(data: bytes, exc: Exception) -> str:
    """Why polars could not read the file. The csv module names the line of a quote left
    open or followed by text; polars would name neither."""
    try:
        for _ in csvrecords.records(data, ","):
            pass
    except csvrecords.Malformed as bad:
        return bad.problem
    except csvrecords.InvalidFile as bad:
        return str(bad)
    # (polars' first line says what and where; the rest is advice on its own options)
    what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"the file is not a readable CSV: {what} (a field that holds a comma or a "
            "quote is put in quotes, and a quote inside it is written twice)")


def _lines(data: bytes, rows: list[int]) -> list[int]:
    """The lines where the given rows (numbered from 2, as "line") start. They differ only
    after a quoted value holding a line break: then the csv module counts them."""
    if b'"' not in data:
        return rows
    wanted, found = set(rows), {}
    try:
        for row, (line, _fields) in enumerate(csvrecords.records(data, ",", blank=True), 2):
            if row in wanted:
                found[row] = line
                if len(found) == len(wanted):
                    break
    except (csvrecords.Malformed, csvrecords.InvalidFile):
        pass  # (text polars read leniently, bytes that are not UTF-8: the rows' own count)
    return [found.get(row, row) for row in rows]


class _BadRows(Exception):
    """Rows that failed a check, by "line"; the caller, which has the file, turns them
    into the refusal (``_lines``)."""

    def __init__(self, lines: list[int], reasons: list[list[str]], total: int) -> None:
        super().__init__(f"{total} bad rows")
        self.lines, self.reasons, self.total = lines, reasons, total

    def refusal(self, data: bytes) -> ImportRefused:
        return ImportRefused([f"line {line}: {', '.join(why)}" for line, why in zip(
            _lines(data, self.lines), self.reasons, strict=True)], self.total)


def _refuse_bad(frame: pl.DataFrame, checks: list[tuple[pl.Expr, str]]) -> None:
    # One boolean column per check (bits, not a reason string per row); the reasons are
    # spelled out for the failing rows only.
    flags = frame.select("line", *(expr.fill_null(False).alias(f"c{i}")
                                   for i, (expr, _) in enumerate(checks)))
    flags = flags.filter(pl.any_horizontal(pl.exclude("line")))
    if flags.height == 0:
        return
    bad = flags.select("line", *(pl.when(pl.col(f"c{i}")).then(pl.lit(reason))
                                 .otherwise(None).alias(f"c{i}")
                                 for i, (_, reason) in enumerate(checks)))
    reasons = bad.select("line", pl.concat_list(pl.exclude("line")).list.drop_nulls()
                         .alias("why")).filter(pl.col("why").list.len() > 0).sort("line")
    if reasons.height:
        shown = reasons.head(MAX_REPORTED)
        raise _BadRows(shown["line"].to_list(), shown["why"].to_list(), reasons.height)


def import_bills(db: Database, data: bytes, user_id: int | None = None) -> ImportResult:
    rows = read(data)
    if rows.height == 0:
        return ImportResult(0, 0, 0, 0, 0, 0, 0, 0)
    try:
        return _import(db, rows, user_id)
    except _BadRows as bad:  # (the transaction has rolled back: nothing was written)
        raise bad.refusal(data) from None


def _import(db: Database, rows: pl.DataFrame, user_id: int | None) -> ImportResult:
    with db.write() as session:
        conn = session.connection()
        units = _codes(conn, "SELECT unit_code, unit_id FROM utility_unit", "use_unit", "unit_id")
        commodities = _codes(conn, "SELECT commodity_code, commodity_id FROM utility_commodity",
                             "commodity_code", "commodity_id")
        rows = rows.join(units, on="use_unit", how="left").join(commodities,
                                                               on="commodity_code", how="left")
        _refuse_bad(rows, [(pl.col("unit_id").is_null(), "use_unit is not a known unit code"),
                           (pl.col("commodity_id").is_null(),
                            "commodity_code is not a known commodity")])
        rows = rows.drop("use_unit", "commodity_code")
        result = _apply(conn, rows, user_id)
    return result


def _codes(conn: Connection, sql: str, code: str, ident: str) -> pl.DataFrame:
    return bulk.fetch_frame(conn, sql, [], {code: pl.String, ident: pl.Int64})


def _apply(conn: Connection, rows: pl.DataFrame, user_id: int | None) -> ImportResult:
    now = bulk.timestamp(conn, utcnow())
    types: dict[str, int] = dict(conn.execute(text(
        "SELECT kind || ':' || code, type_id FROM utility_type")).all())
    root = conn.execute(text("SELECT place_id FROM utility_place WHERE parent_id IS NULL "
                             "ORDER BY place_id")).scalar()
    cost_center = conn.execute(text("SELECT cost_center_id FROM utility_cost_center WHERE "
                                    "parent_id IS NULL ORDER BY cost_center_id")).scalar()
    vendor = conn.execute(text("SELECT vendor_id FROM utility_vendor WHERE vendor_code = "
                               "'UTILITY'")).scalar()
    stamp = {"created_at": now}

    places = _existing(conn, "utility_place", "place_code", "place_id", rows["place_code"])
    new_places = rows.select("place_code").unique().join(places, on="place_code", how="anti")
    bulk.insert_frame(conn, "utility_place", new_places.select(
        "place_code", pl.col("place_code").alias("place_info")), constants={
        "parent_id": str(root), "place_type_id": str(types["place:BUILDING"]), **stamp})
    places = _existing(conn, "utility_place", "place_code", "place_id", rows["place_code"])

    accounts = _existing(conn, "utility_account", "account_code", "account_id",
                         rows["account_code"])
    new_accounts = rows.select("account_code").unique().join(accounts, on="account_code",
                                                             how="anti")
    bulk.insert_frame(conn, "utility_account", new_accounts.select(
        "account_code", pl.col("account_code").str.slice(0, 50).alias("account_info")),
        constants={"account_type_id": str(types["account:STANDARD"]),
                   "cost_center_id": str(cost_center), "vendor_id": str(vendor),
                   "active": "1" if conn.dialect.name == "sqlite" else "true", **stamp})
    accounts = _existing(conn, "utility_account", "account_code", "account_id",
                         rows["account_code"])

    meters = _meters(conn, rows["meter_code"])
    rows = rows.join(places, on="place_code").join(accounts, on="account_code")
    known = rows.join(meters, on="meter_code", how="inner")
    _refuse_bad(known, [
        (pl.col("place_id") != pl.col("meter_place_id"),
         "the meter exists at another place"),
        (pl.col("commodity_id") != pl.col("meter_commodity_id"),
         "the meter exists with another commodity")])
    rollup = bulk.fetch_frame(conn, "SELECT commodity_id, use_rollup_unit_id FROM "
                              "utility_commodity", [], {"commodity_id": pl.Int64,
                                                        "use_unit_id": pl.Int64})
    new_meters = rows.join(meters, on="meter_code", how="anti").unique("meter_code").join(
        rollup, on="commodity_id")
    false = "0" if conn.dialect.name == "sqlite" else "false"
    bulk.insert_frame(conn, "utility_meter", new_meters.select(
        "meter_code", pl.col("meter_code").alias("meter_info"), "commodity_id", "place_id",
        "use_unit_id"), constants={"meter_type_id": str(types["meter:HIDDEN"]),
                                   "hidden": "1" if false == "0" else "true",
                                   "is_aggregate": false,
                                   "active": "1" if false == "0" else "true", **stamp})
    meters = _meters(conn, rows["meter_code"])
    rows = rows.join(meters.select("meter_code", "meter_id"), on="meter_code").drop(
        "place_code", "account_code", "meter_code")

    pairs = rows.select("account_id", "meter_id").unique()
    links = bulk.fetch_frame(conn, "SELECT account_id, meter_id FROM utility_account_meter",
                             [], {"account_id": pl.Int64, "meter_id": pl.Int64})
    new_links = pairs.join(links, on=["account_id", "meter_id"], how="anti")
    bulk.insert_frame(conn, "utility_account_meter", new_links, constants={
        "begin_date": "2000-01-01", "end_date": service.FAR_FUTURE.isoformat()})

    created, replaced, unchanged = _bills(conn, rows, types["observation:USE"], user_id, now)
    return ImportResult(rows.height, new_places.height, new_accounts.height, new_meters.height,
                        new_links.height, created, replaced, unchanged)


def _existing(conn: Connection, table: str, code: str, ident: str, codes: pl.Series
              ) -> pl.DataFrame:
    found = bulk.fetch_by_ids(conn, f"SELECT {code}, {ident} FROM {table} WHERE {code} IN "
                              "({ids})", codes.unique().to_list(),
                              {code: pl.String, ident: pl.Int64})
    return found


def _meters(conn: Connection, codes: pl.Series) -> pl.DataFrame:
    return bulk.fetch_by_ids(
        conn, "SELECT meter_code, meter_id, place_id, commodity_id FROM utility_meter WHERE "
              "meter_code IN ({ids})", codes.unique().to_list(),
        {"meter_code": pl.String, "meter_id": pl.Int64, "meter_place_id": pl.Int64,
         "meter_commodity_id": pl.Int64})


def _bills(conn: Connection, rows: pl.DataFrame, use_type: int, user_id: int | None,
           now: str) -> tuple[int, int, int]:
    """Insert new bills, replace changed ones in place; returns the three counts."""
    low, high = int(rows["period"].min()), int(rows["period"].max())  # type: ignore[arg-type]
    standing = bulk.fetch_frame(
        conn, "SELECT b.bill_id, b.account_id, l.meter_id, b.billing_period, "
              "CAST(b.begin_date AS TEXT), CAST(b.end_date AS TEXT), l.value_micro, l.unit_id, "
              "l.cost_micro, l.bodyline_id "
              "FROM utility_bill b JOIN utility_bill_line l ON l.bill_id = b.bill_id "
              "WHERE b.task_id IS NULL AND b.void = ? AND b.billing_period BETWEEN ? AND ?",
        [False, low, high],
        {"bill_id": pl.Int64, "account_id": pl.Int64, "meter_id": pl.Int64, "period": pl.Int64,
         "old_begin": pl.String, "old_end": pl.String, "old_use": pl.Int64,
         "old_unit": pl.Int64, "old_cost": pl.Int64, "bodyline_id": pl.Int64})
    standing = standing.unique(["account_id", "meter_id", "period"], keep="first")
    matched = rows.join(standing, on=["account_id", "meter_id", "period"], how="left")
    iso = pl.col("begin").dt.to_string("%Y-%m-%d")
    same = ((pl.col("old_begin").str.slice(0, 10) == iso)
            & (pl.col("old_end").str.slice(0, 10) == pl.col("end").dt.to_string("%Y-%m-%d"))
            & (pl.col("old_use") == pl.col("use_micro")) & (pl.col("old_unit") == pl.col("unit_id"))
            & (pl.col("old_cost") == pl.col("cost_micro")))
    new = matched.filter(pl.col("bill_id").is_null())
    changed = matched.filter(pl.col("bill_id").is_not_null() & ~same.fill_null(False))
    unchanged = matched.height - new.height - changed.height
    if new.height:
        first = bulk.reserve_ids(conn, "utility_bill", "bill_id", new.height)
        new = new.with_columns((pl.int_range(0, new.height) + first).alias("bill_id"))
        false = "0" if conn.dialect.name == "sqlite" else "false"
        bulk.insert_frame(conn, "utility_bill", new.select(
            "bill_id", "account_id", pl.col("period").alias("billing_period"),
            pl.col("begin").alias("begin_date"), pl.col("end").alias("end_date"),
            pl.col("cost_micro").alias("total_cost_micro")), constants={
            "estimated": false, "void": false, "accrual": false, "analyzing": false,
            "held": false, "created_at": now, "modified_at": now,
            **({"created_by": str(user_id)} if user_id else {})})
        bulk.insert_frame(conn, "utility_bill_line", new.select(
            "bill_id", "meter_id", pl.col("use_micro").alias("value_micro"), "unit_id",
            "cost_micro"), constants={"observation_type_id": str(use_type), "caption": "Use"})
    if changed.height:
        bulk.execute_frame(conn, "UPDATE utility_bill SET begin_date = ?, end_date = ?, "
                                 "total_cost_micro = ?, modified_at = ? WHERE bill_id = ?",
                           changed.select("begin", "end", "cost_micro", pl.lit(now), "bill_id"))
        bulk.execute_frame(conn, "UPDATE utility_bill_line SET value_micro = ?, unit_id = ?, "
                                 "cost_micro = ? WHERE bodyline_id = ?",
                           changed.select("use_micro", "unit_id", "cost_micro", "bodyline_id"))
    return new.height, changed.height, unchanged
