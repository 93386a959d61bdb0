"""Reading a delimited-file snapshot into a polars frame, strictly.

The common file (no quotes, no blank lines, every line with the header's field count) is
read by polars' own parser, the fastest there is. Whether a file is that simple is
decided by counting its bytes, not by trusting the parser: polars pads a short line with
nulls instead of refusing it. Any other file goes to Arrow's CSV reader, which is strict
about field counts and quoting. Everything that goes wrong is reported with the file's
physical line numbers. Arrow does not know them, so they are worked out on the error path
only, by a second, plain pass with Python's csv module over the same file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

MAX_REPORTED = 10
# Arrow parses blocks in parallel; a record may not be longer than a block.
BLOCK_SIZE = 4 << 20
BOM = codecs.BOM_UTF8


class InvalidFile(Exception):
    """The file cannot be loaded; ``problems`` name line numbers where they are known."""

    def __init__(self, summary: str, problems: list[str] | None = None) -> None:
        self.summary = summary
        self.problems = problems or []
        text = summary if not self.problems else f"{summary}: {'; '.join(self.problems)}"
        super().__init__(text)


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
        for index, (line, _fields) in enumerate(_records(self.path, self.delimiter)):
            if index in wanted:
                found[index] = line
                if len(found) == len(wanted):
                    break
        return [found[r] for r in row_indexes]


def _records(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(starting line, fields) of each data record, blank lines skipped as Arrow does."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        next(reader, None)  # header
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:  # a quote that is never closed (or stray text after one)
                raise _Unclosed(start) from None
            if fields:
                yield start, fields
            start = reader.line_num + 1


class _Unclosed(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def read(path: Path, *, delimiter: str = ",", max_field_bytes: int) -> ParsedFile:
    with path.open("rb") as f:
        head = f.read(len(BOM) + 1)
    if not head or head == BOM or (head.startswith(BOM) and len(head) == len(BOM)):
        raise InvalidFile("The file is empty: it needs a header line and one line per account")
    columns = _header(path, delimiter)
    frame = _quick_parse(path, delimiter, columns)
    if frame is None:
        strict = pl.from_arrow(_parse(path, delimiter, columns))
        assert isinstance(strict, pl.DataFrame)
        frame = strict
    if frame.height == 0:
        raise InvalidFile("The file has a header but no accounts")
    parsed = ParsedFile(path, delimiter, frame, columns)
    _check_field_sizes(parsed, max_field_bytes)
    return parsed


@dataclass(frozen=True)
class _ByteCounts:
    delimiters: int
    quotes: int


def _byte_counts(path: Path, delimiter: bytes) -> _ByteCounts:
    """Delimiter and quote bytes in the file, counted by polars over a memory map (about
    0.03 s per 100 MB; a Python loop over the bytes takes a quarter of a second)."""
    with pa.memory_map(str(path)) as source:
        data = source.read_buffer()
        octets = pl.Series(pa.Array.from_buffers(pa.uint8(), data.size, [None, data]))
        counts = pl.select(
            delimiters=(octets == delimiter[0]).sum(), quotes=(octets == ord('"')).sum()
        ).row(0)
        del octets, data
    return _ByteCounts(*counts)


def _quick_parse(path: Path, delimiter: str, columns: list[str]) -> pl.DataFrame | None:
    """The file read by polars, or None when it needs the strict parse.

    Without quotes, a line's field count is its delimiter count plus one. polars refuses
    a line with too many fields, so if the file holds exactly (lines read) x (fields - 1)
    delimiters, no line has too few either, and no blank line was read as a row.
    """
    separator = delimiter.encode()
    if len(columns) < 2 or len(separator) != 1:
        return None
    counts = _byte_counts(path, separator)
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


def _header(path: Path, delimiter: str) -> list[str]:
    with path.open("rb") as f:
        head = f.read(1 << 20)
    try:
        # a multi-byte character cut at the chunk's end cannot be in the first line
        text = head.decode("utf-8-sig", errors="strict" if len(head) < 1 << 20 else "ignore")
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except UnicodeDecodeError:
        raise _explain(path, "not UTF-8") from None
    except (csv.Error, StopIteration):
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
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return InvalidFile(
            "The file is not UTF-8 text (with or without a byte order mark)",
            [f"line {line}: byte 0x{data[exc.start]:02x} cannot be decoded"],
        )
    if "straddling" in arrow_message or "block" in arrow_message:
        return InvalidFile(f"A single record is too long to read (over {BLOCK_SIZE >> 20} MiB)")
    return InvalidFile(f"The file could not be parsed: {arrow_message}")


def _ragged(path: Path, delimiter: str, expected: int, count: int) -> InvalidFile:
    problems = []
    try:
        for line, fields in _records(path, delimiter):
            if len(fields) != expected:
                problems.append(f"line {line}: {len(fields)} fields where the header has "
                                f"{expected}")
                if len(problems) == MAX_REPORTED:
                    break
    except _Unclosed as unclosed:
        problems.append(f"line {unclosed.line}: a quoted field is never closed or is malformed")
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
