"""The quick parse (polars, for simple files) must read exactly what the strict parse
(Arrow) reads, or step aside."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sheaf.identity import csvfile

COLUMNS = ["id", "name", "mail"]
field = st.text(alphabet=st.sampled_from(list("ab é\t;")), max_size=4)
line = st.lists(field, min_size=0, max_size=5).map(",".join)
ending = st.sampled_from(["\n", "\r\n"])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(st.lists(st.tuples(line, ending), max_size=8))
def test_quick_and_strict_parses_agree(tmp_path: Path, lines: list[tuple[str, str]]) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(",".join(COLUMNS) + "\n" + "".join(a + b for a, b in lines), newline="")

    quick = csvfile._quick_parse(path, ",", COLUMNS)
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
    quick = csvfile._quick_parse(path, ";", ["id", "name"])
    assert quick is not None and quick.rows() == [("a", None), ("b", "B")]
    assert csvfile._quick_parse(path, ",", ["id;name"]) is None  # one column: strict


def test_a_ragged_file_without_quotes_still_names_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("id,name,mail\na,A,a@x\nb,B\nc,C,c@x,extra\n")
    with pytest.raises(csvfile.InvalidFile) as caught:
        csvfile.read(path, max_field_bytes=1024)
    assert caught.value.problems[:2] == [
        "line 3: 2 fields where the header has 3", "line 4: 4 fields where the header has 3"]
