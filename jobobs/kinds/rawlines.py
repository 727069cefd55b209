"""The records of an import's files as their own bytes: the raw line and line number of a
reject.

DuckDB's reader places the lines it rejects (line number, byte position, its text of the
line); a record is read from the file at that position and kept only when it is the line
DuckDB gave. A value its column cannot take as it is is rejected after the reader, which
does not place rows. Where it is no number at all in a number column, DuckDB's reader
places it when it reads the file once more with that column in its own type
(``typed_rejects``). Else its record is found by counting records as DuckDB does (a blank
line counts but holds no record, quoted line breaks belong to their record, a quote opens
a quoted field only at the field's start) and kept only when its fields are the row's
values.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple

import duckdb

from jobobs.db.sql import ident, literal
from jobobs.kinds.sources import (
    ImportOptions,
    bad_value_policy,
    cast_message,
    file_format,
    fits,
    is_number,
    reader,
)

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


class TypedRejects(NamedTuple):
    records: int                  # the file's records: rows read and lines rejected
    lines: list[tuple[int, str, str, str]]  # (line, raw, column, message), in order


def number_columns(columns: dict[str, str], wide: dict[str, str],
                   options: ImportOptions) -> list[str]:
    """The columns read as text for their numbers whose bad values reject the line."""
    return [name for name, source in wide.items() if source == "VARCHAR"
            and is_number(columns[name]) and bad_value_policy(options, name) != "ignore"]


def typed_rejects(cur: duckdb.DuckDBPyConnection, path: str, options: ImportOptions,
                  columns: dict[str, str], wide: dict[str, str],
                  reader_rejects: str) -> TypedRejects | None:
    """Read CSV ``path`` once more with its ``number_columns`` in their own type, for DuckDB's
    reader to place the values there that are no number at all: the lines it rejects then
    and did not in the first read (whose rejects are ``reader_rejects``), each checked to
    hold a value that does not fit its column. None when there is no such column, or a line
    is not as expected (the caller then finds the records itself)."""
    numbers = number_columns(columns, wide, options)
    if not numbers or file_format(path, options.format) != "csv":
        return None
    again = f"{reader_rejects}_typed"
    source = reader(path, options, {**columns, **wide, **{n: columns[n] for n in numbers}},
                    again)
    try:
        counted = ", ".join(f"count({ident(n)})" for n in numbers)
        # fetched whole: DuckDB makes the rejects table when the result is done
        rows = cur.execute(f"SELECT count(*), {counted} FROM {source}").fetchall()[0][0]
        rejected = cur.execute(f"SELECT count(DISTINCT line) FROM {ident(again)}").fetchone()[0]
        lines = cur.execute(f"""SELECT line, ltrim(arg_min(csv_line, byte_position),
            chr(13) || chr(10)), arg_min(column_name, byte_position), string_agg(
            error_message, '; ' ORDER BY byte_position) FROM {ident(again)}
            WHERE line NOT IN (SELECT line FROM {ident(reader_rejects)})
            GROUP BY line ORDER BY line""").fetchall()
        bad_types = cur.execute(f"SELECT count(*) FROM {ident(again)} WHERE line NOT IN "
                                f"(SELECT line FROM {ident(reader_rejects)}) AND NOT "
                                f"(error_type = 'CAST' AND column_name IN "
                                f"({', '.join(literal(n) for n in numbers)}))").fetchone()[0]
    finally:
        for table in (again, again + "_scan"):
            cur.execute(f"DROP TABLE IF EXISTS {ident(table)}")
    texts = None if bad_types else _no_numbers(cur, columns, options, lines)
    if texts is None:
        return None
    return TypedRejects(rows + rejected, [
        (line, raw, column, cast_message(column, text, columns[column]))
        for (line, raw, column, _), text in zip(lines, texts)])


def _no_numbers(cur: duckdb.DuckDBPyConnection, columns: dict[str, str],
                options: ImportOptions, lines: list[tuple[int, str, str, str]]
                ) -> list[str] | None:
    """The text in its column of each record (line, raw, column, message), when each is a
    value that does not fit its column; else None."""
    names, texts, by_column = list(columns), [], {}
    for _, raw, column, _ in lines:
        fields, open_quote = split_record(raw, options)
        if open_quote or len(fields) != len(names) or column not in columns:
            return None
        texts.append(fields[names.index(column)])
        by_column.setdefault(column, []).append(texts[-1])
    if any(cur.execute(f"SELECT count(*) FROM (SELECT unnest(?::VARCHAR[]) AS v) WHERE "
                       f"{fits('v', columns[column])}", [values]).fetchone()[0]
           for column, values in by_column.items()):
        return None
    return texts


def placed_rows(cur: duckdb.DuckDBPyConnection, path: str, options: ImportOptions,
                columns: dict[str, str], wide: dict[str, str],
                rows: list[tuple[int, list[str | None]]],
                reader_rejects: str | None) -> list[tuple[int, int, str | None]]:
    """(row, line, raw) of each of the reader's output ``rows`` (as in ``located_rows``):
    those with a value that is no number at all in a number column placed by DuckDB's
    reader (``typed_rejects``) when they are, in order, the lines it rejects then; the
    others by ``located_rows``."""
    names, flags = list(columns), [False] * len(rows)
    for name in number_columns(columns, wide, options) if rows else ():
        i = names.index(name)
        (no_number,) = cur.execute(f"SELECT list_transform(?::VARCHAR[], v -> v IS NOT NULL "
                                   f"AND TRY_CAST(v AS {columns[name]}) IS NULL)",
                                   [[values[i] for _, values in rows]]).fetchone()
        flags = [a or b for a, b in zip(flags, no_number)]
    flagged = [row for row, flag in zip(rows, flags) if flag]
    typed = (typed_rejects(cur, path, options, columns, wide, reader_rejects)
             if flagged and reader_rejects else None)
    text = [i for i, name in enumerate(columns)
            if {**columns, **wide}[name].upper() == "VARCHAR"]
    if typed is None or len(typed.lines) != len(flagged) or not all(
            same_fields(raw, values, text, options)
            for (_, values), (_, raw, _, _) in zip(flagged, typed.lines)):
        return located_rows(cur, path, options, columns, wide, rows, reader_rejects)
    placed = {row for row, _ in flagged}
    return [(row, line, raw) for (row, _), (line, raw, _, _) in zip(flagged, typed.lines)] + \
        located_rows(cur, path, options, columns, wide,
                     [(row, values) for row, values in rows if row not in placed],
                     reader_rejects)


def same_fields(raw: str, values: list[str | None], text: list[int],
                options: ImportOptions) -> bool:
    """Whether CSV record ``raw`` has the row's ``values`` in its ``text`` fields."""
    fields = split_record(raw, options)[0]
    return len(fields) == len(values) and all(fields[i] == (values[i] or "") for i in text)


def first_stop(cur: duckdb.DuckDBPyConnection, table: str, where: str, order: str,
               options: ImportOptions, columns: dict[str, str]) -> tuple | None:
    """(path, line, column, message) of the first rejected line in ``table`` (its rows
    ``where``, in ``order``) with a bad value in a column whose bad values stop the import:
    the column its reject names, or (a line rejected for another error first) one whose
    text in the line's raw CSV fields does not fit. None when there is none."""
    stops = [c for c in columns if bad_value_policy(options, c) == "stop"]
    if not stops:
        return None
    found = cur.execute(f"SELECT path, line, column_name, raw, message FROM {table} WHERE "
                        f"level = 'error' AND {where} ORDER BY {order}").fetchall()
    names, texts = list(columns), {c: {} for c in stops}
    for at, (path, _, column, raw, _) in enumerate(found):
        if column in stops or raw is None or file_format(path, options.format) != "csv":
            continue
        fields, open_quote = split_record(raw, options)
        if not open_quote and len(fields) == len(names):
            for c in stops:
                if fields[names.index(c)]:
                    texts[c][at] = fields[names.index(c)]
    bad: dict[int, tuple[str, str]] = {}
    for c, values in texts.items():
        if values:
            check = f"SELECT list_transform(?::VARCHAR[], v -> {fits('v', columns[c])})"
            (fit,) = cur.execute(check, [list(values.values())]).fetchone()
            for at, ok in zip(values, fit):
                if not ok and at not in bad:
                    bad[at] = (c, values[at])
    for at, (path, line, column, _, message) in enumerate(found):
        if column in stops:
            return path, line, column, message
        if at in bad:
            c, text = bad[at]
            return path, line, c, cast_message(c, text, columns[c])
    return None


def located_rows(cur: duckdb.DuckDBPyConnection, path: str, options: ImportOptions,
                 columns: dict[str, str], wide: dict[str, str],
                 rows: list[tuple[int, list[str | None]]],
                 reader_rejects: str | None) -> list[tuple[int, int, str | None]]:
    """(row, line, raw) of each of the reader's output ``rows`` of CSV ``path`` (numbered
    from 1, with their values as text; ``wide`` as in ``wide_columns``): the rejects of
    values that do not fit their column, which DuckDB does not place. A record is found
    by counting records as DuckDB does and kept when its text fields are the row's; else
    the line is counted from the lines DuckDB rejected and the raw line is the values
    joined. (JSON and Parquet rows are placed by jsonrows.py.)"""
    values = dict(rows)
    names, read = list(columns), {**columns, **wide}
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
            if values is not None and same_fields(record, values, text, options):
                found[row] = (number, shown(record))
            if row >= last:
                break
    return found


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
