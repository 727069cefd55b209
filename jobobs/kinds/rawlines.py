"""The records of an import's files as their own bytes: the raw line and line number of a
reject.

DuckDB's reader places the lines it rejects (line number, byte position, its text of the
line); a record is read from the file at that position and kept only when it is the line
DuckDB gave. A value that its column would round is rejected after the reader, which does
not place rows: its record is found by counting records as DuckDB does (a blank line counts
but holds no record, quoted line breaks belong to their record, a quote opens a quoted
field only at the field's start) and kept only when its fields are the row's values.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import duckdb

from jobobs.db.sql import ident
from jobobs.kinds.sources import ImportOptions, file_format

_UNDECODED = re.compile("[\udc80-\udcff]")


def shown(text: str) -> str:
    """Text read with bytes that did not decode as surrogates, those bytes written as
    ``\\xe9``: what DuckDB gives for such a line has the delimiter after the byte
    swallowed."""
    return _UNDECODED.sub(lambda byte: f"\\x{ord(byte.group()) - 0xDC00:02x}", text)


def opened(path: str) -> BinaryIO | None:
    """The file's bytes as DuckDB reads them, or None when Python cannot (zstd)."""
    if path.endswith(".zst"):
        return None
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def codec(encoding: str) -> str | None:
    """Python's name of a DuckDB encoding, or None when Python has none."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return None


def text_lines(stream: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """The lines of ``stream`` with their line ends, which may be LF, CRLF or CR."""
    name = codec(encoding)
    return io.TextIOWrapper(stream, encoding="utf-8-sig" if name == "utf-8" else name,
                            errors="surrogateescape", newline="")


def split_record(text: str, options: ImportOptions) -> tuple[list[str], bool]:
    """The fields of CSV record ``text`` as DuckDB reads them, and whether it ends inside a
    quoted field (its line end then belongs to a value). A quote opens a quoted field
    only at the field's start; elsewhere it is a character like any other."""
    quote, escape, delimiter = options.quote, options.escape, options.delimiter
    fields: list[str] = []
    value: list[str] = []
    at, start, quoted = 0, True, False
    while at < len(text):
        char, after = text[at], text[at + 1:at + 2]
        if quoted and escape and char == escape and after and after in (quote, escape):
            value.append(after)
            at += 2
            continue
        if text.startswith(delimiter, at) and not quoted:
            fields.append("".join(value))
            value, start = [], True
            at += len(delimiter)
            continue
        if quoted and char == quote:
            quoted = False
        elif start and quote and char == quote:
            quoted = True
        else:
            value.append(char)
        start = False
        at += 1
    fields.append("".join(value))
    return fields, quoted


def whole_record(options: ImportOptions) -> re.Pattern[str]:
    """A pattern that text matches when it ends outside a quoted field (as
    ``split_record`` reads it): ``split_record`` is too slow for every line of a file."""
    quote, escape, delimiter = (re.escape(c) for c in (options.quote, options.escape,
                                                        options.delimiter))
    free = f"(?:(?!{delimiter}).)"
    if not escape:
        body, after = f"[^{quote}]*", f"{free}*"
    elif escape == quote:
        body, after = f"(?:[^{quote}]|{quote}{quote})*", f"(?:(?!{quote}){free}+)?"
    else:
        body = f"(?:[^{quote}{escape}]|{escape}[{quote}{escape}]|{escape}(?![{quote}{escape}]))*"
        after = f"{free}*"
    field = f"(?:{quote}{body}{quote}{after}|(?:(?!{quote}){free}+)?)"
    return re.compile(f"{field}(?:{delimiter}{field})*", re.DOTALL)


def csv_records(lines: Iterable[str], options: ImportOptions) -> Iterator[tuple[int, str]]:
    """The records of CSV ``lines`` with the line number DuckDB gives them: a blank line
    counts but holds no record; a record with quoted line breaks counts as one."""
    number, record = 0, ""
    whole = whole_record(options) if options.quote else None
    for line in lines:
        record += line
        text = record.rstrip("\r\n")
        if whole and options.quote in record and not whole.fullmatch(text):
            continue  # a quoted line break: the record goes on
        number += 1
        if text:
            yield number, text
        record = ""
    if record:
        yield number + 1, record.rstrip("\r\n")


def record_at(path: str, position: int, options: ImportOptions) -> str | None:
    """The record at DuckDB's ``line_byte_position``, which is one past the end of the
    line before (blank lines may come first); None when the bytes cannot be read."""
    if codec(options.encoding) != "utf-8":
        return None  # DuckDB counts the bytes of other encodings after converting them
    stream = opened(path)
    if stream is None:
        return None
    with stream:
        stream.seek(max(position - 1, 0))
        return next((text for _, text in csv_records(text_lines(stream, "utf-8"), options)),
                    None)


def like_duckdb(record: str, duckdb_line: str) -> bool:
    """Whether ``record`` (bytes that did not decode as surrogates) is the line DuckDB
    gave as ``duckdb_line``, which has a ``?`` for each byte it could not decode and
    sometimes swallows the character after it."""
    marked = duckdb_line.lstrip("\r\n")
    kept = [char for char in marked if char != "?"]
    plain = [char for char in record if not _UNDECODED.match(char)]
    chars = iter(plain)
    return all(char in chars for char in kept) and \
        len(plain) - len(kept) <= marked.count("?")


def keep_raw_bytes(cur: duckdb.DuckDBPyConnection, path: str, reader_rejects: str,
                   table: str, options: ImportOptions) -> None:
    """Give the rejects of ``path`` in ``table`` that DuckDB found badly encoded their
    record from the file's bytes: read where DuckDB says the line starts, and kept only
    when it is the line DuckDB gave (else DuckDB's text stays)."""
    found = cur.execute(
        f"SELECT line, min(line_byte_position), arg_min(csv_line, byte_position) FROM "
        f"{ident(reader_rejects)} WHERE error_type IN ('INVALID ENCODING', "
        "'INVALID UNICODE') GROUP BY line").fetchall()
    raws = {}
    for line, position, duckdb_line in found:
        record = record_at(path, position, options)
        if record is not None and like_duckdb(record, duckdb_line):
            raws[line] = shown(record)
    if raws:
        cur.executemany(f"UPDATE {table} SET raw = ? WHERE path = ? AND line = ?",
                        [[raw, path, line] for line, raw in raws.items()])


def located_rows(cur: duckdb.DuckDBPyConnection, path: str, options: ImportOptions,
                 columns: dict[str, str], wide: dict[str, str],
                 rows: list[tuple[int, list[str | None]]],
                 reader_rejects: str | None) -> list[tuple[int, int, str | None]]:
    """(row, line, raw) of each of the reader's output ``rows`` of ``path`` (numbered from
    1, with their values as text; ``wide`` as in ``wide_columns``): the rejects of values that
    their column would round, which DuckDB does not place. A CSV record is found by
    counting records as DuckDB does and kept when its text fields are the row's; else
    the line is counted from the lines DuckDB rejected and the raw line is the values
    joined. A JSON row is at its line (newline-delimited, when the line holds the row's
    numbers) or its row number; a Parquet row at its row number, with no raw line."""
    values = dict(rows)
    kind = file_format(path, options.format)
    if kind == "parquet":
        return [(row, row, None) for row in values]
    names, read = list(columns), {**columns, **wide}
    if kind == "json":
        found = json_lines(path, values, names, [i for i, n in enumerate(names) if n in wide])
        return [(row, *found.get(row, (row, None))) for row in values]
    rejected = sorted(line for (line,) in cur.execute(
        f"SELECT DISTINCT line FROM {ident(reader_rejects)}").fetchall())
    text = [i for i, name in enumerate(names) if read[name].upper() == "VARCHAR"]
    found = csv_lines(path, values, text, set(rejected), options)
    first = 1 if options.header else 0
    return [(row, *found.get(row, (counted_line(row, rejected, first), joined(v, options))))
            for row, v in values.items()]


def csv_lines(path: str, rows: dict[int, list[str | None]], text: list[int],
              rejected: set[int], options: ImportOptions) -> dict[int, tuple[int, str]]:
    """The line and record of each output row in ``rows`` whose ``text`` fields are the
    record's own: the header and the lines DuckDB rejected give no row."""
    found: dict[int, tuple[int, str]] = {}
    stream = opened(path) if rows and codec(options.encoding) else None
    if stream is None:
        return found
    row, last = 0, max(rows)
    with text_lines(stream, options.encoding) as lines:
        records = csv_records(lines, options)
        if options.header:
            next(records, None)
        for number, record in records:
            if number in rejected:
                continue
            row += 1
            values = rows.get(row)
            fields = split_record(record, options)[0] if values is not None else []
            if values is not None and len(fields) == len(values) and all(
                    fields[i] == (values[i] or "") for i in text):
                found[row] = (number, shown(record))
            if row >= last:
                break
    return found


def json_lines(path: str, rows: dict[int, list[str | None]], names: list[str],
               numbers: list[int]) -> dict[int, tuple[int, str]]:
    """The line and text of each output row in ``rows`` of a newline-delimited JSON file
    (the row-th line that is not blank) whose object holds the row's ``numbers``; none
    for a JSON array."""
    found: dict[int, tuple[int, str]] = {}
    stream = opened(path) if rows else None
    if stream is None:
        return found
    row, last = 0, max(rows)
    with io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if not row and line.lstrip().startswith("["):
                return found
            row += 1
            values = rows.get(row)
            if values is not None and holds(line, names, values, numbers):
                found[row] = (number, line.rstrip("\r\n"))
            if row >= last:
                break
    return found


def holds(line: str, names: list[str], values: list[str | None], numbers: list[int]) -> bool:
    """Whether JSON ``line`` is an object with the ``numbers`` of ``values`` (by name)."""
    try:
        record = json.loads(line, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return False
    if not isinstance(record, dict):
        return False
    fields = {str(key).lower(): value for key, value in record.items()}
    return all(same_number(fields.get(names[i].lower()), values[i]) for i in numbers)


def same_number(value: Any, text: str | None) -> bool:
    if value is None or text is None:
        return value is None and text is None
    try:
        return Decimal(str(value)) == Decimal(text)
    except ArithmeticError:
        return str(value) == text


def counted_line(row: int, rejected: list[int], first: int) -> int:
    """The line of output ``row`` counted from the header and the ``rejected`` lines (in
    order) alone: a guess, for a file whose bytes Python cannot read."""
    line = row + first
    for number in rejected:
        if number <= line:
            line += 1
    return line


def joined(values: list[str | None], options: ImportOptions) -> str:
    """``values`` as one CSV line, quoted where needed: the raw line of a reject whose
    record was not found in the file."""
    quote, escape, delimiter = options.quote, options.escape or options.quote, options.delimiter

    def field(value: str | None) -> str:
        if value is None:
            return ""
        if not quote or (value and not any(
                part in value for part in (delimiter, quote, "\n", "\r"))):
            return value
        if escape != quote:
            value = value.replace(escape, escape + escape)
        return quote + value.replace(quote, escape + quote) + quote

    return delimiter.join(field(value) for value in values)
