"""What an import reads and how: its options, its files, and DuckDB's readers for them.

Also the reject reason codes: DuckDB's reader error types as the short codes people
group by, one row per rejected line; and the exact reading of numbers (a value that an
integer or decimal column could only take rounded is a reject). The raw lines of rejects
are found in the files by records.py.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import duckdb

from jobobs.db.sql import columns_struct, ident, literal, parse_columns, table_name
from jobobs.model.errors import JobobsError

FORMATS = ("csv", "parquet", "json")
MODES = ("append", "replace", "upsert")
POLICIES = ("update", "ignore", "reject")
# What a value its column cannot take does (the seed's error options): the line is
# rejected; the value is set to NULL with a warning reject and the line imported; or the
# import stops.
BAD_VALUES = ("reject", "ignore", "stop")
# DuckDB's reader error types, as the reason codes people group by.
REASONS = {
    "CAST": "cast error",
    "TOO MANY COLUMNS": "too many columns",
    "MISSING COLUMNS": "missing columns",
    "UNQUOTED VALUE": "unquoted value",
    "INVALID UNICODE": "invalid encoding",
    "LINE SIZE OVER MAXIMUM": "line too long",
}


@dataclass
class ImportOptions:
    """What to import and how; checked when the job is submitted."""

    source: str | list[str]
    table: str
    format: str | None = None            # csv, parquet or json; else from the file name
    # name -> type, or DuckDB's column list "id BIGINT, amount DECIMAL(12,2)"; else sniffed
    columns: dict[str, str] | str | None = None
    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    header: bool = True
    encoding: str = "utf-8"
    empty_as_null: bool = True           # a quoted empty CSV field "" is NULL; else ''
    mode: str = "append"                 # append, replace, or upsert on ``key``
    key: list[str] = field(default_factory=list)
    doubles: str = "update"              # a key repeated in the input: last wins
    duplicates: str | None = None        # a key already in the target: by the mode (below)
    max_rejects: int | str | None = 100  # a count, a percentage such as "5%", or None
    on_failure: str = "rollback"         # or "keep": chunks already loaded stay
    dry_run: bool = False
    chunk_rows: int = 500_000
    dataset: str | None = None           # a folder: Parquet files there instead of ``table``
    replay_lines: list[list[Any]] | None = None  # a replay: [file, line] of each source line
    # what a bad value does: one of BAD_VALUES for every column, or by column name
    # ({"amount": "ignore", "*": "stop"}; "*" is every other column, else "reject")
    bad_values: str | dict[str, str] = "reject"

    def __post_init__(self) -> None:
        sources = [self.source] if isinstance(self.source, str) else list(self.source)
        if not sources or not all(isinstance(s, str) and s for s in sources):
            raise JobobsError("source must be a file, a glob or a list of files")
        table_name(self.table)
        for name, value, allowed in (("format", self.format, FORMATS), ("mode", self.mode, MODES),
                                     ("doubles", self.doubles, POLICIES),
                                     ("duplicates", self.duplicates, POLICIES),
                                     ("on_failure", self.on_failure, ("rollback", "keep"))):
            if value is not None and value not in allowed:
                raise JobobsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if isinstance(self.key, str):
            self.key = [self.key]
        if self.mode == "upsert" and not self.key:
            raise JobobsError("mode 'upsert' needs a key")
        self.duplicates = duplicates_policy(self.mode, self.duplicates)
        if self.columns is not None:
            self.columns = parse_columns(self.columns)  # DuckDB's own type names
            missing = [k for k in self.key if k not in self.columns]
            if missing:
                raise JobobsError(f"key column {missing[0]!r} is not among the columns")
        if not isinstance(self.delimiter, str) or not 1 <= len(self.delimiter) <= 4:
            raise JobobsError("delimiter must be one to four characters")
        for name in ("quote", "escape"):
            if not isinstance(getattr(self, name), str) or len(getattr(self, name)) > 1:
                raise JobobsError(f"{name} must be one character, or empty for none")
        if not isinstance(self.empty_as_null, bool):
            raise JobobsError("empty_as_null must be true or false")
        threshold(self.max_rejects, 1)
        self.bad_values = bad_values_policy(self.bad_values, self.columns)
        if not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise JobobsError("chunk_rows must be a positive whole number")
        if self.dataset is not None:
            if not isinstance(self.dataset, str) or not os.path.isdir(self.dataset):
                raise JobobsError(f"the dataset folder {self.dataset} does not exist")
            if self.mode != "append" or (self.key and self.duplicates == "update"):
                raise JobobsError("a Parquet dataset is only added to: mode 'append', and "
                                  "duplicates 'reject' or 'ignore' with a key")


def bad_values_policy(policy: Any, columns: dict[str, str] | None) -> str | dict[str, str]:
    """``bad_values`` checked: one policy, or a policy by column name ("*": the others);
    a named column must be among the declared ``columns`` (when they are declared)."""
    if isinstance(policy, str):
        policy = {"*": policy}
    if not isinstance(policy, dict) or not policy:
        raise JobobsError(f"bad_values must be one of {', '.join(BAD_VALUES)}, or a policy by "
                          "column name")
    for name, value in policy.items():
        if value not in BAD_VALUES:
            raise JobobsError(f"bad_values of {name!r} must be one of {', '.join(BAD_VALUES)}, "
                              f"not {value!r}")
        if columns is not None and name != "*" and name not in columns:
            raise JobobsError(f"bad_values names {name!r}, which is not among the columns")
    return policy["*"] if list(policy) == ["*"] else dict(policy)


def bad_value_policy(options: ImportOptions, column: str) -> str:
    """What a bad value in ``column`` does (see ``ImportOptions.bad_values``)."""
    policy = options.bad_values
    if isinstance(policy, str):
        return policy
    return policy.get(column, policy.get("*", "reject"))


def stop_message(path: str, line: int | None, column: str, message: str) -> str:
    """The error of an import stopped by a bad value in ``column``."""
    return (f"{path}, line {line}: {message}. The import stops at a bad value in {column} "
            f"(bad_values 'stop'); nothing was written")


def warn_ignored(ctx: Any, count: int) -> None:
    """Journal, as a warning, the bad values set to NULL (bad_values 'ignore')."""
    ctx.warn("%d bad values were set to NULL and their lines imported (bad_values 'ignore'); "
             "each is a warning in the rejects", count)


def duplicates_policy(mode: str, policy: str | None) -> str:
    """What a key already in the target gets: appending rejects it unless told otherwise;
    an upsert updates it, which is what upsert means, so any other policy is refused
    rather than stored in the spec and not followed."""
    if mode != "upsert":
        return policy or "reject"
    if policy not in (None, "update"):
        raise JobobsError(f"mode 'upsert' updates the rows whose key is already in the table, "
                          f"so duplicates {policy!r} cannot apply: use mode 'append' with "
                          f"duplicates {policy!r} to keep those rows as they are")
    return "update"


def lines_rejected(path: str, reader_rejects: str) -> str:
    """One row per rejected line of ``path`` from the reader's rejects table: (path, line,
    column_name, reason, raw, message): the column, reason and raw text of the line's
    first error, all three from that error (its column may be NULL: a line too long has
    none), and every error's message. Errors are in the order of their columns, an error
    of the whole line first, then of their place in the line (which DuckDB does not always
    give: not for a value that an ENUM does not hold)."""
    reason = ("CASE first.error_type " + " ".join(
        f"WHEN {literal(k)} THEN {literal(v)}" for k, v in REASONS.items())
        + " ELSE lower(first.error_type) END")
    place = "coalesce(column_idx, 0), coalesce(byte_position, 0)"
    return f"""SELECT {literal(path)} AS path, line, first.column_name, {reason},
        ltrim(first.csv_line, chr(13) || chr(10)), message
        FROM (SELECT line, arg_min({{'column_name': column_name, 'error_type': error_type,
                                     'csv_line': csv_line}}, [{place}]) AS first,
                     string_agg(error_message, '; ' ORDER BY {place}) AS message
              FROM {ident(reader_rejects)} GROUP BY line)"""


def threshold(limit: int | str | None, records: int) -> int | None:
    """The number of rejects allowed among ``records``: a count, "N%" of them, or None."""
    if limit is None:
        return None
    if isinstance(limit, str) and limit.endswith("%"):
        try:
            percent = float(limit[:-1])
        except ValueError:
            percent = -1
        if not 0 <= percent <= 100:
            raise JobobsError(f"max_rejects {limit!r} is not a percentage between 0% and 100%")
        return int(records * percent / 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise JobobsError(f"max_rejects must be a count >= 0, a percentage or None, not {limit!r}")
    return limit


def expand(source: str | list[str]) -> list[str]:
    """The input files, in order; a glob matches sorted, a missing file is an error."""
    files = []
    for pattern in [source] if isinstance(source, str) else source:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise JobobsError(f"no file matches {pattern}")
        for path in matches:
            if os.path.isdir(path):
                raise JobobsError(f"{path} is a directory, not a file")
            if not os.path.exists(path):
                raise JobobsError(f"{path} does not exist")
            if not os.access(path, os.R_OK):
                raise JobobsError(f"{path} cannot be read (permission denied)")
            files.append(path)
    return files


def file_format(path: str, declared: str | None) -> str:
    if declared:
        return declared
    name = path.lower().removesuffix(".gz").removesuffix(".zst")
    for suffix, kind in ((".parquet", "parquet"), (".json", "json"), (".ndjson", "json"),
                         (".jsonl", "json")):
        if name.endswith(suffix):
            return kind
    return "csv"


def reader(path: str, options: ImportOptions, columns: dict[str, str] | None,
           rejects: str | None = None, sniffing: bool = False) -> str:
    """The DuckDB table function that reads one file with the job's options."""
    kind = file_format(path, options.format)
    if kind == "parquet":
        return f"read_parquet({literal(path)})"
    if kind == "json":
        typed = f", columns={columns_struct(columns)}" if columns else ""
        # sniffing, a malformed line is left to the import, which rejects it
        return f"read_json({literal(path)}{typed}{', ignore_errors=true' if sniffing else ''})"
    args = [literal(path), f"header={literal(options.header)}",
            f"delim={literal(options.delimiter)}", f"quote={literal(options.quote)}",
            f"escape={literal(options.escape)}", f"encoding={literal(options.encoding)}"]
    if not options.empty_as_null:
        args.append("allow_quoted_nulls=false")
    if columns:  # declared or already sniffed: nothing is left to guess
        args += [f"columns={columns_struct(columns)}", "auto_detect=false"]
    if rejects:
        args += ["store_rejects=true", f"rejects_table={literal(rejects)}",
                 f"rejects_scan={literal(rejects + '_scan')}"]
    if sniffing:  # the whole file, so that a decimal past any sample is seen
        args += ["ignore_errors=true", "sample_size=-1"]
    return f"read_csv({', '.join(args)})"


# -- reading values exactly ----------------------------------------------------------------

_NUMBER = re.compile(r"U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DECIMAL\((\d+),(\d+)\)")
_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC|DEC)(?:\((\d+)(?:,(\d+))?\))?")
# Types whose bad text DuckDB's CSV reader takes without a reject (DuckDB 1.5.5): a bad
# TIMESTAMPTZ or TIMETZ becomes NULL, a nested value keeps a NULL where an element was bad
# (and a reject is made at a line past the file's end), a bad GEOMETRY fails the whole read.
_NUMBER_LEAF = re.compile(r"\bU?(?:TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)\b|\bDECIMAL\(\d+,\d+\)")
_UNTRUSTED = re.compile(r"(?:STRUCT|MAP|UNION)\(.*|.*\[\d*\]|.*WITH TIME ZONE|GEOMETRY",
                        re.DOTALL)


def wide_type(kind: str) -> str | None:
    """The type to read a column of type ``kind`` (DuckDB's own name) with, when DuckDB's
    reader cannot be trusted with it: integers take "10.75" as 11 and DECIMAL(12,2) takes
    "10.755" as 10.76; the ``_UNTRUSTED`` types lose bad values. Such a column is read as
    text and checked (``fits``); a wide DECIMAL would do for numbers, but DuckDB's reader
    parses it a hundred times slower."""
    return "VARCHAR" if _NUMBER.fullmatch(kind) or _UNTRUSTED.fullmatch(kind) else None


def is_number(kind: str) -> bool:
    return bool(_NUMBER.fullmatch(kind) or _DECIMAL.fullmatch(re.sub(r"\s", "", kind.upper())))


def fits(name: str, kind: str, source: str = "VARCHAR") -> str:
    """SQL: true when column ``name`` (read as ``source``) holds a value its column of type
    ``kind`` takes as it is (see ``exact`` for numbers), or none."""
    if source != "VARCHAR" or is_number(kind):
        return exact(name, kind, source)
    column, value = ident(name), f"try(CAST({ident(name)} AS {kind}))"
    doubles = _NUMBER_LEAF.sub("DOUBLE", kind)
    rounded = (f" AND {value}::{doubles} IS NOT DISTINCT FROM try(CAST({column} AS {doubles}))"
               if doubles != kind else "")  # a nested number that its leaf would round
    return f"({column} IS NULL OR ({value} IS NOT NULL{rounded}))"


def converted(name: str, kind: str, source: str, ignored: bool) -> str:
    """SQL: column ``name`` (read as ``source``) in its type ``kind``; NULL where it does not
    fit and its bad values are ``ignored``."""
    value = (f"TRY_CAST({ident(name)} AS {kind})" if is_number(kind) or source != "VARCHAR"
             else f"try(CAST({ident(name)} AS {kind}))")
    return f"CASE WHEN {fits(name, kind, source)} THEN {value} END" if ignored else value


def exact(name: str, kind: str, source: str = "VARCHAR") -> str:
    """SQL: true when column ``name`` (read as ``source``) holds a value that ``kind``
    takes as it is: text with no digit past the type's scale other than 0, within its
    range; a number of another type that is the same once cast to ``kind`` and back."""
    column = ident(name)
    if source != "VARCHAR":
        return (f"({column} IS NULL OR coalesce(TRY_CAST({column} AS {kind})::{source} = "
                f"{column}, false))")
    return (f"({column} IS NULL OR (TRY_CAST({column} AS {kind}) IS NOT NULL AND NOT "
            f"{rounds(column, kind)}))")


def rounds(text: str, kind: str) -> str:
    """SQL: whether number ``text`` (an expression), which casts to ``kind``, is rounded by
    the cast: for integers and decimals, a digit past the scale other than 0 (or, with an
    exponent, a number that is not the same as a DOUBLE); never for other types."""
    if not is_number(kind):
        return "false"
    fraction = literal(r"\.\d{" + str(scale(kind)) + r"}\d*[1-9]")
    exponent = f"contains({text}, 'e') OR contains({text}, 'E')"
    return f"""CASE WHEN NOT (contains({text}, '.') OR {exponent}) THEN false
        WHEN {exponent} THEN TRY_CAST({text} AS DOUBLE) <> TRY_CAST({text} AS {kind})::DOUBLE
        ELSE regexp_matches({text}, {fraction}) END"""


def scale(kind: str) -> int:
    """The digits after the point of a column of type ``kind`` as declared (``numeric(12,
    2)``, ``DECIMAL``: DuckDB's DECIMAL(18,3))."""
    match = _DECIMAL.fullmatch(re.sub(r"\s", "", kind.upper()))
    if match is None:
        return 0
    return 3 if match.group(1) is None else int(match.group(2) or 0)


def bad_message(name: str, kind: str, shown: str, cast: str | None) -> str:
    """SQL: the message of a value of column ``name`` that does not fit its type ``kind``,
    in DuckDB's words: ``shown``, SQL of the value as the message shows it; ``cast``, SQL of
    its cast to ``kind``, which says "without rounding" when it is not NULL (None: never)."""
    rounded = (f" || CASE WHEN {cast} IS NULL THEN '' ELSE ' without rounding' END"
               if cast else "")
    return f"{literal(_converting(name))} || {shown} || {literal(' to ' + kind)}{rounded}"


def cast_message(name: str, text: str, kind: str) -> str:
    """The message of ``text`` that column ``name`` of type ``kind`` cannot take."""
    return f'{_converting(name)}string "{text}" to {kind}'


def _converting(name: str) -> str:
    return f'Error when converting column "{name}". Could not convert '


def shown_value(name: str, source: str) -> str:
    """SQL: column ``name`` (read as ``source``) as a cast's message shows it."""
    column = ident(name)
    return f"'string \"' || {column} || '\"'" if source == "VARCHAR" else \
        f"'{source} ' || {column}"


class BadValues(NamedTuple):
    """SQL over the rows of a reader whose ``wide`` columns are read as text: the first
    column whose value does not fit, among those whose bad values reject the line, with its
    message; for a row with a bad value, its values as text, to find its record by
    (``located_rows``); the columns (and messages) whose bad values are ignored."""

    column: str
    message: str
    values: str
    ignored: str
    ignored_messages: str


def bad_values(columns: dict[str, str], wide: dict[str, str],
               options: ImportOptions) -> BadValues:
    rejecting, ignoring = [], []
    # a column whose bad values stop the import is named first, so the stop is seen
    for name, source in sorted(wide.items(),
                               key=lambda item: bad_value_policy(options, item[0]) != "stop"):
        when = f"WHEN NOT {fits(name, columns[name], source)} THEN"
        (ignoring if bad_value_policy(options, name) == "ignore" else rejecting).append(
            (name, when, bad_message(name, columns[name], shown_value(name, source),
                                     f"TRY_CAST({ident(name)} AS {columns[name]})"
                                     if is_number(columns[name]) or source != "VARCHAR"
                                     else None)))
    first = (f"CASE {' '.join(f'{when} {literal(name)}' for name, when, _ in rejecting)} END"
             if rejecting else "NULL::VARCHAR")
    message = (f"CASE {' '.join(f'{when} {m}' for _, when, m in rejecting)} END"
               if rejecting else "NULL::VARCHAR")

    def listed(items: list[str]) -> str:
        return (f"nullif(list_filter([{', '.join(items)}], x -> x IS NOT NULL), [])"
                if items else "NULL::VARCHAR[]")

    ignored = listed([f"CASE {when} {literal(name)} END" for name, when, _ in ignoring])
    messages = listed([f"CASE {when} {m} END" for _, when, m in ignoring])
    values = ", ".join(f"{ident(name)}::VARCHAR" for name in columns)
    return BadValues(first, message, f"CASE WHEN {first} IS NOT NULL OR {ignored} IS NOT "
                     f"NULL THEN [{values}] END", ignored, messages)


# -- rejects' lines -------------------------------------------------------------------

def relocate(cur: duckdb.DuckDBPyConnection, table: str, path: str,
             options: ImportOptions) -> None:
    """A replay's rejects in ``table`` at the file and line of the original input, not
    of the helper file that holds the replayed lines."""
    if not options.replay_lines:
        return
    first = 2 if options.header else 1  # the helper's line of the first replayed line
    lines = [line for (line,) in cur.execute(
        f"SELECT DISTINCT line FROM {table} WHERE path = ?", [path]).fetchall()]
    moves = [[*options.replay_lines[line - first], path, line] for line in lines
             if 0 <= line - first < len(options.replay_lines)]
    if moves:
        cur.executemany(f"UPDATE {table} SET path = ?, line = ? WHERE path = ? AND line = ?",
                        moves)


REPLAY_SUFFIX = ".lines.csv"


def remove_replay_file(options: ImportOptions) -> None:
    """A replay reads the lines to replay from a file written for it (see rejects.py),
    which nobody needs once the job has ended."""
    path = options.source
    if options.replay_lines and isinstance(path, str) and path.endswith(REPLAY_SUFFIX):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def choose_columns(cursor: duckdb.DuckDBPyConnection, files: list[str],
                   options: ImportOptions, target: str | None) -> tuple[str, dict[str, str]]:
    """The file read for its columns and the columns: sniffed from the whole first file that
    has any bytes, each taking the type of the ``target``'s column of the same name when
    the target is added to (a re-import must not narrow or widen what is there; names
    match whatever their case, as DuckDB's do)."""
    path = next((f for f in files if os.path.getsize(f)), files[0])
    relation = cursor.sql(f"SELECT * FROM {reader(path, options, None, sniffing=True)} LIMIT 0")
    columns = dict(zip(relation.columns, (str(t) for t in relation.types)))
    if target is not None:
        existing = cursor.sql(f"SELECT * FROM {target} LIMIT 0")
        types = {name.lower(): str(t) for name, t in zip(existing.columns, existing.types)}
        columns = {name: types.get(name.lower(), kind) for name, kind in columns.items()}
    return path, columns


def wide_columns(cursor: duckdb.DuckDBPyConnection, path: str, options: ImportOptions,
                 columns: dict[str, str]) -> dict[str, str]:
    """The columns of a CSV file read as text, then checked (see ``wide_type`` and
    ``fits``), by name: also a column whose bad values are ignored, for the line to reach
    the check. (JSON and Parquet files are read by jsonrows.py.)"""
    kinds = canonical(cursor, columns)
    return {name: "VARCHAR" for name, kind in kinds.items() if wide_type(kind) or (
        bad_value_policy(options, name) == "ignore" and kind not in ("VARCHAR", "BLOB"))}


def canonical(cursor: duckdb.DuckDBPyConnection, columns: dict[str, str]) -> dict[str, str]:
    """The columns' types as DuckDB names them (``int`` is INTEGER, ``numeric`` is
    DECIMAL(18,3)), which the checks of ``fits`` read."""
    if not columns:
        return {}
    kinds = cursor.execute("SELECT " + ", ".join(
        f"typeof(NULL::{t})" for t in columns.values())).fetchone()
    return dict(zip(columns, kinds))
