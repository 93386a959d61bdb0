"""The quick parse (polars, for simple files) must read exactly what the strict parse
(Arrow) reads, or step aside."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sheaf.identity import csvbytes, csvfile
from sheaf.kit import csvrecords

COLUMNS = ["id", "name", "mail"]
field = st.text(alphabet=st.sampled_from(list("ab é\t;")), max_size=4)
line = st.lists(field, min_size=0, max_size=5).map(",".join)
ending = st.sampled_from(["\n", "\r\n"])


def quick_parse(path: Path, delimiter: str, columns: list[str]) -> pl.DataFrame | None:
    counts = csvbytes.count(path, delimiter.encode())
    return csvfile._quick_parse(path, delimiter, columns, counts)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(st.lists(st.tuples(line, ending), max_size=8))
def test_quick_and_strict_parses_agree(tmp_path: Path, lines: list[tuple[str, str]]) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(",".join(COLUMNS) + "\n" + "".join(a + b for a, b in lines), newline="")

    quick = quick_parse(path, ",", COLUMNS)
    try:
        strict: object = pl.from_arrow(csvfile._parse(path, ",", COLUMNS)).rows()  # type: ignore[union-attr]
    except (pa.ArrowInvalid, csvfile.InvalidFile):
        strict = "error"
    if quick is not None:
        assert quick.rows() == strict
    else:  # only a file polars cannot be trusted with may step aside
        simple = all(a.count(",") == len(COLUMNS) - 1 for a, _ in lines)
        assert not simple


def test_a_simple_file_takes_the_quick_parse(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(b"\xef\xbb\xbfid;name\r\na;\r\nb;B\r\n")
    quick = quick_parse(path, ";", ["id", "name"])
    assert quick is not None and quick.rows() == [("a", None), ("b", "B")]
    assert quick_parse(path, ",", ["id;name"]) is None  # one column: strict


def test_a_ragged_file_without_quotes_still_names_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("id,name,mail\na,A,a@x\nb,B\nc,C,c@x,extra\n")
    with pytest.raises(csvfile.InvalidFile) as caught:
        csvfile.read(path, max_field_bytes=1024)
    assert caught.value.problems[:2] == [
        "line 3: 2 fields where the header has 3", "line 4: 4 fields where the header has 3"]


quoted_text = st.text(alphabet=st.sampled_from(list('a,"\n\r ')), max_size=24)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(quoted_text)
def test_quoting_is_refused_exactly_when_the_csv_module_refuses_it(
    tmp_path: Path, body: str,
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("id,name\n" + body, newline="")
    try:
        list(csv.reader(io.StringIO(body, newline=""), strict=True))
        valid = True
    except csv.Error:
        valid = False
    if not csvbytes.quoting_suspect(path, b","):  # the byte check passes only valid files
        assert valid
    try:
        csvfile._check_quoting(path, ",")
        refused = False
    except csvfile.InvalidFile as exc:
        refused = True
        assert exc.problems and exc.problems[0].startswith("line "), exc
    assert refused == (not valid)


def test_a_quote_inside_an_unquoted_field_is_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text('id,name,disk\na,"A",5" disk\nb,B,"3"\n')
    assert csvbytes.quoting_suspect(path, b",")  # so it is read line by line
    parsed = csvfile.read(path, max_field_bytes=1024)
    assert parsed.frame.rows() == [("a", "A", '5" disk'), ("b", "B", "3")]


def test_a_header_over_one_mib_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(",".join(f"column{i:07d}" for i in range(100_000)) + "\na\n")
    with pytest.raises(csvfile.InvalidFile) as caught:
        csvfile.read(path, max_field_bytes=1024)
    assert "first line is longer than 1 MiB" in str(caught.value)


def test_an_unclosed_quote_names_the_line_it_opened_on(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text('id,name,mail\na,"A\nA",a@x\nb,B,"b@x\nc,C,c@x\n\nd,D,d@x\n')
    with pytest.raises(csvfile.InvalidFile) as caught:
        csvfile.read(path, max_field_bytes=1024)
    assert caught.value.problems[0].startswith("line 4: a quoted field opened on this line "
                                               "is never closed"), caught.value


plain_field = st.text(alphabet=st.sampled_from(list("a b")), max_size=3)
quoted_field = st.text(alphabet=st.sampled_from(list('a,"\n\r ')), max_size=4).map(
    lambda t: '"' + t.replace('"', '""') + '"')
row = st.lists(st.one_of(plain_field, quoted_field), min_size=3, max_size=3).map(",".join)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(st.lists(st.tuples(row, ending), min_size=1, max_size=5))
def test_a_well_quoted_file_reads_as_the_csv_module_reads_it(
    tmp_path: Path, rows: list[tuple[str, str]],
) -> None:
    body = "".join(a + b for a, b in rows)
    path = tmp_path / "accounts.csv"
    path.write_text(",".join(COLUMNS) + "\n" + body, newline="")
    expected = [tuple(f or None for f in r)
                for r in csv.reader(io.StringIO(body, newline=""), strict=True) if r]
    if not expected:
        return
    assert csvfile.read(path, max_field_bytes=1024).frame.rows() == expected


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(quoted_text, st.booleans(), st.integers(1, 5))
def test_the_quote_check_does_not_depend_on_where_slices_end(
    tmp_path: Path, body: str, bom: bool, slice_size: int,
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ('"id",name\n' + body).encode())
    whole = csvbytes.quoting_suspect(path, b",")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csvbytes, "SLICE", slice_size)
        assert csvbytes.quoting_suspect(path, b",") == whole


def test_a_quote_right_after_the_byte_order_mark_opens_a_field(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(b'\xef\xbb\xbf"id","name"\r\n"a","A ""x"""\r\n')
    assert not csvbytes.quoting_suspect(path, b",")
    assert csvfile.read(path, max_field_bytes=1024).frame.rows() == [("a", 'A "x"')]


def cut_short(text: str) -> bool:
    """The reference: the csv module's reading of a file that may end mid-row."""
    if text.endswith(("\n", "\r")):
        return False
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return len(records[-1]) < len(records[0])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(st.lists(st.tuples(row, ending), min_size=1, max_size=4), st.data())
def test_a_file_ends_mid_row_exactly_when_its_last_record_is_incomplete(
    tmp_path: Path, rows: list[tuple[str, str]], data: st.DataObject,
) -> None:
    text = ",".join(COLUMNS) + "\n" + "".join(a + b for a, b in rows)
    cut = data.draw(st.integers(len(COLUMNS[0]) + 1, len(text)))
    path = tmp_path / "accounts.csv"
    path.write_text(text[:cut], newline="")
    problem = csvrecords.unfinished_row(path, ",")
    assert (problem is not None) == cut_short(text[:cut]), (text[:cut], problem)
    if problem is not None:
        assert problem.startswith("line "), problem


@pytest.mark.parametrize("delimiter", ["§", ";;", "", '"'])
def test_a_delimiter_that_cannot_split_a_file_is_a_bad_file_not_a_crash(
    tmp_path: Path, delimiter: str,
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(f"id{delimiter}name\na{delimiter}A\n")
    with pytest.raises(csvfile.InvalidFile) as caught:
        csvfile.read(path, delimiter=delimiter, max_field_bytes=1024)
    assert "connectorAttributes.delimiter" in str(caught.value)
    path.write_text(f'id{delimiter}name\na{delimiter}"A')
    assert csvrecords.unfinished_row(path, delimiter) is None  # the load says why
