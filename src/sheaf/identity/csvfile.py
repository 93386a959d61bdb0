"""Reading a delimited-file snapshot into a polars frame, strictly.

The common file (no quotes, no blank lines, every line with the header's field count) is
read by polars' own parser, the fastest there is. Whether a file is that simple is
decided by counting its bytes, not by trusting the parser: polars pads a short line with
nulls instead of refusing it. Any other file goes to Arrow's CSV reader, which is strict
about field counts and quoting. Everything that goes wrong is reported with the file's
physical line numbers. Arrow does not know them, so they are worked out on the error path
only, by a second, plain pass with Python's csv module over the same file.

Neither parser is strict about quoting (Arrow joins ``"abc"def`` into one value and lets
an unclosed quote swallow the rest of the file), so a file with quotes is first checked
byte by byte (``csvbytes.quoting_suspect``), and the csv module, which is strict, names the
line of any fault found.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from sheaf.identity import csvbytes
from sheaf.kit.csvrecords import (
    BLOCK_SIZE,
    BOM,
    HEADER_BYTES,
    QUOTE_HINT,
    QUOTING,
    InvalidFile,
    Malformed,
    looks_like_utf16,
    records,
    undecodable,
    usable,
)

__all__ = ["InvalidFile", "ParsedFile", "read", "MAX_REPORTED"]

MAX_REPORTED = 10

@dataclass(frozen=True)
class ParsedFile:
    path: Path
    delimiter: str
    frame: pl.DataFrame  # every column a string; null for a blank field
    columns: list[str]

    def line_numbers(self, row_indexes: list[int]) -> list[int]:
        """Physical line numbers (1 = header) where the given data rows start."""
        wanted = set(row_indexes)
        found: dict[int, int] = {}
        try:
            for index, (line, _fields) in enumerate(records(self.path, self.delimiter)):
                if index in wanted:
                    found[index] = line
                    if len(found) == len(wanted):
                        break
        except Malformed as bad:  # not after read(), which checked the quoting
            raise InvalidFile(QUOTING, [bad.problem]) from None
        return [found[r] for r in row_indexes]


def _check_quoting(path: Path, delimiter: str) -> None:
    """Refuse a file whose quoting the csv module cannot read, naming the line. The
    byte check passes nearly every valid file; only a suspect one is read line by line."""
    if not csvbytes.quoting_suspect(path, delimiter.encode()):
        return
    try:
        for _ in records(path, delimiter):
            pass
    except Malformed as bad:
        raise InvalidFile(QUOTING, [bad.problem]) from None


def read(path: Path, *, delimiter: str = ",", max_field_bytes: int) -> ParsedFile:
    if not usable(delimiter):  # (a source made before such delimiters were refused)
        raise InvalidFile(
            f"The source's delimiter {delimiter!r} cannot split a file: it must be one ASCII "
            "character other than a quote or a line break. Change the source's "
            "connectorAttributes.delimiter")
    with path.open("rb") as f:
        head = f.read(HEADER_BYTES + 1)
    counts = _delimited_text(path, head, delimiter)
    columns = _header(path, head, delimiter)
    frame = _quick_parse(path, delimiter, columns, counts)
    if frame is None:
        if counts.quotes:
            _check_quoting(path, delimiter)
        strict = pl.from_arrow(_parse(path, delimiter, columns))
        assert isinstance(strict, pl.DataFrame)
        frame = strict
    if frame.height == 0:
        raise InvalidFile("The file has a header but no accounts")
    parsed = ParsedFile(path, delimiter, frame, columns)
    _check_field_sizes(parsed, max_field_bytes)
    return parsed


def _delimited_text(path: Path, head: bytes, delimiter: str) -> csvbytes.ByteCounts:
    """The file's byte counts, once it is known to be delimited UTF-8 text: the parsers
    would read the files refused here as text and fail later with misleading messages."""
    if not head.removeprefix(BOM):
        raise InvalidFile("The file is empty: it needs a header line and one line per account")
    if looks_like_utf16(head):
        raise InvalidFile(
            "The file is not UTF-8 text: it looks like UTF-16 (or UTF-32). Save it as UTF-8 "
            "(in Excel: 'CSV UTF-8'; elsewhere: encoding UTF-8)")
    counts = csvbytes.count(path, delimiter.encode())
    if counts.nuls:
        line = csvbytes.line_of(path, csvbytes.first_offset(path, 0))
        raise InvalidFile(
            f"The file contains NUL bytes at line {line}: it is not plain text. Send a "
            "delimited text file saved as UTF-8")
    if csvbytes.looks_like_json(head):
        raise InvalidFile(
            "The file looks like JSON, not a delimited file: send a CSV file whose first line "
            f"is a header naming the columns, separated by '{delimiter}', and then one line "
            "per account")
    return counts


def _quick_parse(path: Path, delimiter: str, columns: list[str],
                 counts: csvbytes.ByteCounts) -> pl.DataFrame | None:
    """The file read by polars, or None when it needs the strict parse.

    Without quotes, a line's field count is its delimiter count plus one. polars refuses
    a line with too many fields, so if the file holds exactly (lines read) x (fields - 1)
    delimiters, no line has too few either, and no blank line was read as a row.
    """
    if len(columns) < 2 or len(delimiter.encode()) != 1:
        return None
    if counts.quotes:
        return None
    try:
        frame = pl.read_csv(
            path, separator=delimiter, quote_char=None, infer_schema=False,
            raise_if_empty=False,
        )
    except (pl.exceptions.PolarsError, UnicodeDecodeError):
        return None
    if frame.columns != columns:
        return None
    if counts.delimiters != (frame.height + 1) * (len(columns) - 1):
        return None
    return frame


def _parse(path: Path, delimiter: str, columns: list[str]) -> pa.Table:
    """Arrow's parse of the whole file, every column a string, every ragged row reported."""
    invalid: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                null_values=[""],  # a blank field, quoted or not, is null
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _explain(path, str(exc)) from None
    if invalid:
        raise _ragged(path, delimiter, len(columns), len(invalid))
    return table


def _header(path: Path, head: bytes, delimiter: str) -> list[str]:
    """The column names, from the file's first HEADER_BYTES (+ 1) bytes."""
    if len(head) > HEADER_BYTES and not any(b in head[:HEADER_BYTES] for b in (b"\n", b"\r")):
        raise InvalidFile(
            f"The first line is longer than {HEADER_BYTES >> 20} MiB; it must be a header "
            f"naming the columns, separated by '{delimiter}'. Is this a delimited text file, "
            "with lines ending in line breaks?")
    head = head[:HEADER_BYTES]
    try:
        # a multi-byte character cut at the chunk's end cannot be in the first line
        text = head.decode("utf-8-sig", errors="strict" if len(head) < HEADER_BYTES else "ignore")
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                                 strict=True))
    except UnicodeDecodeError:
        raise undecodable(path) from None
    except csv.Error as exc:
        if "expected after" in str(exc):
            raise InvalidFile(QUOTING, [
                f'line 1: a quoted field has text after its closing quote (as in "abc"def); '
                f"put the whole value in quotes {QUOTE_HINT}"]) from None
        raise InvalidFile("The first line must be a header naming the columns, and any "
                          f"quote in it closed {QUOTE_HINT}") from None
    except StopIteration:
        raise InvalidFile("The first line must be a header naming the columns") from None
    names = [n.strip() for n in header]
    if not any(names):
        raise InvalidFile("The first line must be a header naming the columns")
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise InvalidFile("The header has unnamed columns", [f"column {i}" for i in blank])
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dupes:
        raise InvalidFile("The header names a column more than once", dupes)
    if header != names:
        raise InvalidFile("Column names in the header must not start or end with spaces")
    return names


def _explain(path: Path, arrow_message: str) -> InvalidFile:
    not_utf8 = undecodable(path)
    if not_utf8.problems:
        return not_utf8
    if "straddling" in arrow_message or "block" in arrow_message:
        return InvalidFile(f"A single record is too long to read (over {BLOCK_SIZE >> 20} MiB)")
    return InvalidFile(f"The file could not be parsed: {arrow_message}")


def _ragged(path: Path, delimiter: str, expected: int, count: int) -> InvalidFile:
    problems = []
    try:
        for line, fields in records(path, delimiter):
            if len(fields) != expected:
                problems.append(f"line {line}: {len(fields)} fields where the header has "
                                f"{expected}")
                if len(problems) == MAX_REPORTED:
                    break
    except Malformed as bad:
        problems.append(bad.problem)
    if not problems:
        problems.append(f"{count} lines could not be split into {expected} fields")
    elif count > len(problems):
        problems.append(f"and {count - len(problems)} more")
    return InvalidFile("Some lines do not match the header", problems)


def _check_field_sizes(parsed: ParsedFile, limit: int) -> None:
    frame = parsed.frame
    longest = frame.select(pl.all().str.len_bytes().max())
    too_long = [c for c in parsed.columns if (longest[c][0] or 0) > limit]
    if not too_long:
        return
    hits = (
        frame.with_row_index("_row")
        .filter(pl.any_horizontal(pl.col(c).str.len_bytes() > limit for c in too_long))
        .head(MAX_REPORTED)
    )
    rows = hits["_row"].to_list()
    problems = []
    for row, line in zip(rows, parsed.line_numbers(rows), strict=True):
        cols = [c for c in too_long if len(frame[c][row].encode()) > limit]
        problems.append(f"line {line}: {', '.join(cols)}")
    raise InvalidFile(f"Some fields are longer than the limit of {limit} bytes", problems)
