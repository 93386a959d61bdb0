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

import codecs
import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from sheaf.identity import csvbytes

MAX_REPORTED = 10
# Arrow parses blocks in parallel; a record may not be longer than a block.
BLOCK_SIZE = 4 << 20
BOM = codecs.BOM_UTF8
# The header is read from the file's first MiB.
HEADER_BYTES = 1 << 20
QUOTING = "A quoted field is malformed"
QUOTE_HINT = ('(a value holding the delimiter, a line break or a quote is put in quotes, '
              'and a quote inside it is written twice: "say ""hi""")')
# The csv module refuses a field over 128 KiB by default; the line-number pass must read
# every field the parsers accepted (the field-size limit is reported once lines are known).
csv.field_size_limit(sys.maxsize)


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
        try:
            for index, (line, _fields) in enumerate(_records(self.path, self.delimiter)):
                if index in wanted:
                    found[index] = line
                    if len(found) == len(wanted):
                        break
        except _Malformed as bad:  # not after read(), which checked the quoting
            raise InvalidFile(QUOTING, [bad.problem]) from None
        return [found[r] for r in row_indexes]


def _records(path: Path, delimiter: str, *, header: bool = False,
             ) -> Iterator[tuple[int, list[str]]]:
    """(starting line, fields) of each data record (and of the header, if asked), blank
    lines skipped as Arrow does. Raises _Malformed on bad quoting, InvalidFile on text
    that is not UTF-8."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        start = 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _malformed(path, delimiter, start, reader.line_num, str(exc)) from None
            except UnicodeDecodeError:
                raise _explain(path, "not UTF-8") from None
            if fields and (header or start > 1):
                yield start, fields
            start = reader.line_num + 1


class _Malformed(Exception):
    """A record the csv module cannot read; ``problem`` names its line."""

    def __init__(self, problem: str, *, unclosed: bool) -> None:
        super().__init__(problem)
        self.problem = problem
        self.unclosed = unclosed  # a quote still open at the end of the file


def _malformed(path: Path, delimiter: str, start: int, line: int, error: str) -> _Malformed:
    if "unexpected end of data" in error:
        opened = _opening_quote_line(path, delimiter, start)
        return _Malformed(f"line {opened}: a quoted field opened on this line is never "
                          f"closed {QUOTE_HINT}", unclosed=True)
    if "expected after" in error:
        return _Malformed(f"line {line}: a quoted field has text after its closing quote "
                          f'(as in "abc"def); put the whole value in quotes {QUOTE_HINT}',
                          unclosed=False)
    return _Malformed(f"line {line}: {error}", unclosed=False)


def _opening_quote_line(path: Path, delimiter: str, start: int) -> int:
    """The line where the quote left open at the end of the file opened, reading the
    record that starts at line ``start`` field by field as the csv module does."""
    opened, quoted, field_start = start, False, True
    with path.open(encoding="utf-8-sig", newline="") as f:
        for number, line in enumerate(f, 1):
            if number < start:
                continue
            i = 0
            while i < len(line):
                if quoted:
                    q = line.find('"', i)
                    if q < 0:
                        break
                    if line.startswith('"', q + 1):  # a doubled quote: still inside
                        i = q + 2
                        continue
                    quoted, field_start, i = False, False, q + 1
                elif field_start and line[i] == '"':
                    quoted, opened, i = True, number, i + 1
                else:
                    d = line.find(delimiter, i)
                    field_start, i = True, (len(line) if d < 0 else d + 1)
    return opened


def _check_quoting(path: Path, delimiter: str) -> None:
    """Refuse a file whose quoting the csv module cannot read, naming the line. The
    byte check passes nearly every valid file; only a suspect one is read line by line."""
    if not csvbytes.quoting_suspect(path, delimiter.encode()):
        return
    try:
        for _ in _records(path, delimiter):
            pass
    except _Malformed as bad:
        raise InvalidFile(QUOTING, [bad.problem]) from None


def _usable(delimiter: str) -> bool:
    return len(delimiter) == 1 and delimiter.isascii() and delimiter not in '"\r\n'


def read(path: Path, *, delimiter: str = ",", max_field_bytes: int) -> ParsedFile:
    if not _usable(delimiter):  # (a source made before such delimiters were refused)
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
    if csvbytes.looks_like_utf16(head):
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
        raise _explain(path, "not UTF-8") from None
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
    except _Malformed as bad:
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


def unfinished_row(path: Path, delimiter: str) -> str | None:
    """Where the file ends in the middle of a row, or None: its last byte is not a line
    break and its last record is incomplete, with a quoted field still open or fewer
    fields than the header. (A cut inside the last field cannot be told from a shorter
    value.) Other faults are left to the load, which names them.

    A file ending in a line break costs one byte read. Otherwise the last line is counted
    from the file's tail when the file has no quotes; with quotes the last record may span
    lines, and the csv module reads the file to find it.
    """
    if not _usable(delimiter):  # the load refuses the file, saying why
        return None
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(HEADER_BYTES)
        f.seek(max(size - 1, 0))
        if f.read(1) in (b"", b"\n", b"\r"):
            return None
    separator = delimiter.encode()
    counts = csvbytes.count(path, separator)
    if counts.nuls or csvbytes.looks_like_utf16(head):
        return None
    if counts.quotes == 0:
        with path.open("rb") as f:
            f.seek(max(size - BLOCK_SIZE, 0))
            tail = f.read()
        cut = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
        if cut < 0:  # one line (the header), or a last line too long to be a record
            return None
        first = head.removeprefix(BOM).splitlines()[0]
        found, expected = tail[cut + 1:].count(separator) + 1, first.count(separator) + 1
        if found < expected:
            return (f"line {counts.newlines + 1}: {found} fields where the header has "
                    f"{expected}, and no line break after it")
        return None
    try:
        records = list(_last_two(_records(path, delimiter, header=True)))
    except _Malformed as bad:
        return bad.problem.replace(" is never closed", " is still open at the end of the file",
                                   1) if bad.unclosed else None
    except InvalidFile:
        return None
    if len(records) < 2:
        return None
    (_, header), (line, fields) = records[0], records[-1]
    if len(fields) < len(header):
        return (f"line {line}: {len(fields)} fields where the header has {len(header)}, "
                "and no line break after it")
    return None


def _last_two(records: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """The first record and the last one (just one record if the file has one)."""
    first = next(records, None)
    if first is None:
        return
    yield first
    last = None
    for record in records:
        last = record
    if last is not None:
        yield last
