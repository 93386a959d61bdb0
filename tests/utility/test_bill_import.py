"""Bulk bill import: columnar, all-or-nothing, line-numbered errors, replace-if-changed."""

from __future__ import annotations

from typing import Any

from tests.utility.conftest import Api

HEADER = ("place_code,commodity_code,account_code,meter_code,billing_period,begin_date,"
          "end_date,use,use_unit,cost\n")
URL = "/api/v202203/utilityPlatform/billImport"


def post(api: Api, text: str, expect: int = 200) -> Any:
    return api.call("POST", URL, expect=expect,
                    files={"file": ("bills.csv", text.encode(), "text/csv")})


def test_import_creates_everything_then_replaces_only_changes(api: Api) -> None:
    rows = (HEADER
            + "B1,ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,100.5,kWh,10.25\n"
            + "B1,ELECTRIC,A1,M2,202401,2024-01-01,2024-02-01,2,MWh,20\n"
            + "B2,WATER,A2,W1,202401,2024-01-01,2024-02-01,3,kGAL,-1.5\n")
    counts = post(api, rows)
    assert counts == {"rows": 3, "placesCreated": 2, "accountsCreated": 2, "metersCreated": 3,
                      "accountMetersCreated": 3, "billsCreated": 3, "billsReplaced": 0,
                      "billsUnchanged": 0}
    meters = api.call("GET", "/api/v3/meter", params={"filter": "meterCode equals 'M1'"})
    assert meters[0]["meterType"]["meterTypeCode"] == "HIDDEN"
    assert meters[0]["place"]["placeCode"] == "B1"
    assert post(api, rows)["billsUnchanged"] == 3
    changed = rows.replace("100.5,kWh,10.25", "100.5,kWh,10.26")
    again = post(api, changed)
    assert (again["billsReplaced"], again["billsUnchanged"], again["billsCreated"]) == (1, 2, 0)
    bills = api.call("GET", "/api/v3/bill")
    assert len(bills) == 3
    assert sorted(b["totalCost"] for b in bills) == [-1.5, 10.26, 20.0]


def test_bad_rows_are_named_and_nothing_is_written(api: Api) -> None:
    rows = (HEADER
            + "B1,ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,1,kWh,1\n"
            + "B1,ELECTRIC,A1,M1,202413,2024-01-01,2023-12-01,1.1234567,kWh,x\n"
            + "B1,ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,1,kWh,1\n"
            + ",ELECTRIC,A1,M3,202402,2024-01-01,2024-02-01,1,kWh,1\n")
    out = post(api, rows, expect=400)
    messages = [e["message"] for e in out["errors"]]
    assert all(e["field"] == "file" for e in out["errors"])
    assert messages[0].startswith("line 3: billing_period is not")
    assert "end_date is before begin_date" in messages[0]
    assert "use is not a decimal" in messages[0] and "cost is not a decimal" in messages[0]
    assert messages[1] == ("line 4: repeats the bill of an earlier row (same account, meter "
                           "and billing period)")
    assert messages[2] == "line 5: place_code is empty"
    assert api.call("GET", "/api/v3/bill") == []
    assert api.call("GET", "/api/v3/meter") == []

    unknown = post(api, HEADER + "B1,GAS,A1,M1,202401,2024-01-01,2024-02-01,1,kWhx,1\n",
                   expect=400)
    assert [e["message"] for e in unknown["errors"]] == [
        "line 2: use_unit is not a known unit code, commodity_code is not a known commodity"]
    cut = post(api, HEADER + 'B1,ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,1,kWh,"1',
               expect=400)  # (a quote never closed: the file was cut)
    [why] = [e["message"] for e in cut["errors"]]
    assert why.startswith("line 2: a quoted field opened on this line is never closed")
    assert "\n" not in why and "infer_schema" not in why
    header = post(api, "a,b\n1,2\n", expect=400)
    assert header["errors"][0]["message"].startswith("line 1: the header must be")
    assert post(api, HEADER, expect=200)["rows"] == 0


def test_a_bad_quote_or_a_quoted_line_break_is_named_by_the_files_own_line(api: Api) -> None:
    good = "B1,ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,1,kWh,1\n"
    opened = post(api, HEADER + good + 'B1,ELECTRIC,"A2,M2,202401,2024-01-01,2024-02-01,'
                  '1,kWh,1\n' + good.replace("M1", "M3"), expect=400)
    assert [e["message"] for e in opened["errors"]][0].startswith(
        "line 3: a quoted field opened on this line is never closed")
    trailing = post(api, HEADER + good + 'B1,ELECTRIC,"A"2,M2,202401,2024-01-01,2024-02-01,'
                    '1,kWh,1\n', expect=400)
    assert [e["message"] for e in trailing["errors"]][0].startswith(
        "line 3: a quoted field has text after its closing quote")
    # A quoted value holding a line break: the rows after it start a line later.
    spanning = (HEADER + '"B1\nnorth",ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,1,kWh,1\n'
                + "\n"  # (a blank line is a row of nulls: named as such, on its line)
                + "B1,ELECTRIC,A1,M2,202401,2024-01-01,bad,1,kWh,1\n")
    out = post(api, spanning, expect=400)
    assert [e["message"] for e in out["errors"]] == [
        "line 4: place_code is empty, commodity_code is empty, account_code is empty, "
        "meter_code is empty, billing_period is empty, begin_date is empty, end_date is "
        "empty, use is empty, use_unit is empty, cost is empty, billing_period is not a "
        "YYYYMM billing period between 190001 and 300001, begin_date is not an ISO date "
        "(YYYY-MM-DD), end_date is not an ISO date (YYYY-MM-DD), use is not a decimal with "
        "at most 6 decimal places, cost is not a decimal with at most 6 decimal places",
        "line 5: end_date is not an ISO date (YYYY-MM-DD)"]
    # ... and so in the checks made against what is stored
    post(api, HEADER + good)
    elsewhere = post(api, HEADER + '"B2\nsouth",ELECTRIC,A9,M9,202401,2024-01-01,2024-02-01,'
                     '1,kWh,1\nB9,ELECTRIC,A1,M1,202402,2024-02-01,2024-03-01,1,kWh,1\n',
                     expect=400)
    assert [e["message"] for e in elsewhere["errors"]] == [
        "line 4: the meter exists at another place"]
    assert len(api.call("GET", "/api/v3/bill")) == 1
    # Bytes that are not UTF-8 (polars reads them leniently) leave the count of rows.
    latin = api.call("POST", URL, expect=400, files={"file": ("bills.csv", (
        HEADER + '"B\xe9",ELECTRIC,A1,M1,202401,2024-01-01,bad,1,kWh,1\n').encode("latin-1"),
        "text/csv")})
    assert [e["message"] for e in latin["errors"]] == [
        "line 2: end_date is not an ISO date (YYYY-MM-DD)"]


def test_existing_meter_elsewhere_is_refused(api: Api) -> None:
    post(api, HEADER + "B1,ELECTRIC,A1,M1,202401,2024-01-01,2024-02-01,1,kWh,1\n")
    out = post(api, HEADER + "B9,ELECTRIC,A1,M1,202402,2024-02-01,2024-03-01,1,kWh,1\n",
               expect=400)
    assert out["errors"][0]["message"] == "line 2: the meter exists at another place"
    assert api.call("GET", "/api/v3/place", params={"filter": "placeCode equals 'B9'"}) == []
