"""A delimited file's records, read strictly by Python's csv module and named by line.

The exact, slow pass over a file, on paths that need no speed: the identity load and the
bill import name the line of a fault with it, and an API process refuses an upload cut
short mid-row with it (``unfinished_row``). Nothing here loads polars or Arrow, which an
API process otherwise never needs (some 80 MiB each). A file is a path, or its bytes.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

Source = Path | bytes  # a file, or the whole of one in memory

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


def usable(delimiter: str) -> bool:
    return len(delimiter) == 1 and delimiter.isascii() and delimiter not in '"\r\n'


def _text(source: Source) -> TextIO:
    if isinstance(source, bytes):
        return io.TextIOWrapper(io.BytesIO(source), encoding="utf-8-sig", newline="")
    return source.open(encoding="utf-8-sig", newline="")


def records(path: Source, delimiter: str, *, header: bool = False, blank: bool = False,
            ) -> Iterator[tuple[int, list[str]]]:
    """(starting line, fields) of each data record (and of the header, if asked). Blank
    lines are skipped, as Arrow does, unless ``blank`` (polars reads one as a row of
    nulls). Raises Malformed on bad quoting, InvalidFile on text that is not UTF-8."""
    with _text(path) as f:
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
                raise undecodable(path) from None
            if (fields or blank) and (header or start > 1):
                yield start, fields
            start = reader.line_num + 1


class Malformed(Exception):
    """A record the csv module cannot read; ``problem`` names its line."""

    def __init__(self, problem: str, *, unclosed: bool) -> None:
        super().__init__(problem)
        self.problem = problem
        self.unclosed = unclosed  # a quote still open at the end of the file


def _malformed(path: Source, delimiter: str, start: int, line: int, error: str) -> Malformed:
    if "unexpected end of data" in error:
        opened = _opening_quote_line(path, delimiter, start)
        return Malformed(f"line {opened}: a quoted field opened on this line is never "
                         f"closed {QUOTE_HINT}", unclosed=True)
    if "expected after" in error:
        return Malformed(f"line {line}: a quoted field has text after its closing quote "
                         f'(as in "abc"def); put the whole value in quotes {QUOTE_HINT}',
                         unclosed=False)
    return Malformed(f"line {line}: {error}", unclosed=False)


def _opening_quote_line(path: Source, delimiter: str, start: int) -> int:
    """The line where the quote left open at the end of the file opened, reading the
    record that starts at line ``start`` field by field as the csv module does."""
    opened, quoted, field_start = start, False, True
    with _text(path) as f:
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


def undecodable(path: Source) -> InvalidFile:
    """The refusal of a file that is not UTF-8, naming the line of its first bad byte."""
    data = path if isinstance(path, bytes) else path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return InvalidFile(
            "The file is not UTF-8 text (with or without a byte order mark)",
            [f"line {line}: byte 0x{data[exc.start]:02x} cannot be decoded"],
        )
    return InvalidFile("The file is not UTF-8 text (with or without a byte order mark)")


def looks_like_utf16(head: bytes) -> bool:
    """UTF-16 text: a byte order mark, or (mostly ASCII text) a NUL in every other byte."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    sample = head[:4096]
    pairs = len(sample) // 2
    zeros = sorted((sample[0::2].count(0), sample[1::2].count(0)))
    return pairs >= 2 and zeros[1] > pairs / 2 and zeros[0] < pairs / 10


def unfinished_row(path: Path, delimiter: str) -> str | None:
    """Where the file ends in the middle of a row, or None: its last byte is not a line
    break and its last record is incomplete, with a quoted field still open or fewer
    fields than the header. (A cut inside the last field cannot be told from a shorter
    value.) Other faults are left to the load, which names them.

    A file ending in a line break costs one byte read. Otherwise the last line is counted
    from the file's tail when the file has no quotes; with quotes the last record may span
    lines, and the csv module reads the file to find it.
    """
    if not usable(delimiter):  # the load refuses the file, saying why
        return None
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(HEADER_BYTES)
        f.seek(max(size - 1, 0))
        if f.read(1) in (b"", b"\n", b"\r"):
            return None
    separator = delimiter.encode()
    quotes, nuls, newlines = _counts(path)
    if nuls or looks_like_utf16(head):
        return None
    if quotes == 0:
        with path.open("rb") as f:
            f.seek(max(size - BLOCK_SIZE, 0))
            tail = f.read()
        cut = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
        if cut < 0:  # one line (the header), or a last line too long to be a record
            return None
        first = head.removeprefix(BOM).splitlines()[0]
        found, expected = tail[cut + 1:].count(separator) + 1, first.count(separator) + 1
        if found < expected:
            return (f"line {newlines + 1}: {found} fields where the header has "
                    f"{expected}, and no line break after it")
        return None
    try:
        first_last = list(_last_two(records(path, delimiter, header=True)))
    except Malformed as bad:
        return bad.problem.replace(" is never closed", " is still open at the end of the file",
                                   1) if bad.unclosed else None
    except InvalidFile:
        return None
    if len(first_last) < 2:
        return None
    (_, header), (line, fields) = first_last
    if len(fields) < len(header):
        return (f"line {line}: {len(fields)} fields where the header has {len(header)}, "
                "and no line break after it")
    return None


def _counts(path: Path) -> tuple[int, int, int]:
    """Quote, NUL and newline bytes in the file, a block at a time (bytes.count runs at
    memory speed; csvbytes does it with polars, for the loads)."""
    quotes = nuls = newlines = 0
    with path.open("rb") as f:
        while block := f.read(BLOCK_SIZE):
            quotes += block.count(b'"')
            nuls += block.count(0)
            newlines += block.count(b"\n")
    return quotes, nuls, newlines


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
