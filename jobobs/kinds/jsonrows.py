"""The rows of JSON, newline-delimited JSON and Parquet files, each value cast by DuckDB and
checked, so that a value its column cannot take is a reject at its line, not a failed job.

A newline-delimited file is read as lines of text (DuckDB's CSV reader with no delimiter
or quote), numbered as the file's lines (a blank line counts but holds no record); a JSON
array, or objects spread over several lines, is read one record at a time and numbered by
record (such a file that is not JSON as a whole fails); a Parquet file by its row number.
Each value is taken by name (JSON keys match as ``read_json`` matches them, case and all)
and cast with ``TRY_CAST``; a value is bad when it is there but the cast gives NULL, when
an integer or decimal column could take it only rounded, or when a nested value (STRUCT,
LIST, MAP) has an element that does not fit. A line that is not JSON, or not an object,
is bad as a whole.

What a bad value does is its column's ``bad_values`` policy: "reject" and "stop" reject the
line (one reject naming the column, with every bad value's message), "ignore" stages the
row with NULL there and records a warning for the value. A reject's raw text is the line,
or for an array's record or a Parquet row the row as JSON text.

Everything is vectorized SQL: the rows go to the staging table in one statement, the bad
ones marked in its three ``_inexact`` columns, then they are moved to the staged rejects
and the marks cleared, in the same transaction.
"""

from __future__ import annotations

import gzip
import json
import re
from typing import Any, Protocol

import duckdb

from jobobs.db.sql import StatementProgress, ident, literal
from jobobs.execution.context import JobContext
from jobobs.kinds.sources import (
    ImportOptions,
    bad_message,
    bad_value_policy,
    file_format,
    is_number,
    lines_rejected,
    rounds,
)
from jobobs.model.errors import JobobsError

# The staged rejects' columns, as this module fills them.
REJECT_COLUMNS = "(file, path, line, column_name, reason, raw, message, level)"
# The longest line of a newline-delimited file (read_json's largest object by default).
# (The line reader's buffer_size is left alone: set, DuckDB's reader may lose a line.)
MAX_LINE = 16 * 1024 * 1024
WHITESPACE = "' \t\r'"
# Four control characters, which JSON text never holds unescaped.
DELIMITER = "\x01\x02\x03\x04"


class Staging(Protocol):
    """What a file is read for: an import's run (importing.Import)."""

    ctx: JobContext
    options: ImportOptions
    cursor: duckdb.DuckDBPyConnection
    stage: str
    stage_rejects: str


def stage_file(run: Staging, index: int, path: str, columns: dict[str, str]) -> None:
    """Read file ``index`` (JSON, newline-delimited JSON or Parquet) into the run's staging
    tables, replacing what an earlier try of it staged: its rows into ``run.stage``, its
    bad lines and values into ``run.stage_rejects``. One transaction, interrupted by a
    pause."""
    cur, ctx = run.cursor, run.ctx
    lines = f"_jobobs_json_rejects_{ctx.job_id}"
    rows = Rows(cur, path, run.options, columns, lines)
    source = (f"({rows.sql()})" if rows.shape == "parquet" else  # numbered by the reader
              f"(SELECT row_number() OVER () AS _n, * FROM ({rows.sql()})) WHERE NOT _skip")
    insert = (f"INSERT INTO {run.stage} (_file, _row, {', '.join(ident(c) for c in columns)}, "
              f"_inexact, _inexact_message, _inexact_values) SELECT {index}, _n, "
              + ", ".join(f"_o{i}" for i in range(len(columns))) + f", _m1, _m2, _m3 FROM {source}")
    with ctx.interruptible(cur.interrupt):
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(f"DELETE FROM {run.stage} WHERE _file >= ?", [index])
            cur.execute(f"DELETE FROM {run.stage_rejects} WHERE file >= ?", [index])
            with StatementProgress(cur, lambda percent: None, lambda: ctx.stop_requested):
                cur.execute(insert)
            ctx.check_interrupt()
            if rows.shape == "lines":
                unreadable_lines(cur, run, index, path, lines)
            place_rejects(cur, run, index, path)
            ctx.check_interrupt()
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise


def unreadable_lines(cur: duckdb.DuckDBPyConnection, run: Staging, index: int, path: str,
                     lines: str) -> None:
    """The lines the line reader could not give (not UTF-8, too long): staged rejects, and
    the staged rows after them moved to their own line (the reader numbered the lines it
    gave)."""
    if cur.execute(f"SELECT count(*) FROM {ident(lines)}").fetchone()[0]:
        cur.execute(f"""UPDATE {run.stage} s SET _row = s._row + (SELECT count(*) FROM
            (SELECT line - row_number() OVER (ORDER BY line) AS before FROM
             (SELECT DISTINCT line FROM {ident(lines)})) r WHERE r.before < s._row)
            WHERE _file = {index}""")
        # as a CSV file's rejected lines, with no column: the line reader has one
        cur.execute(f"""INSERT INTO {run.stage_rejects} {REJECT_COLUMNS} SELECT {index},
            path, line, NULL, reason, raw, message, 'error'
            FROM ({lines_rejected(path, lines)}) r(path, line, c, reason, raw, message)""")
    cur.execute(f"DROP TABLE {ident(lines)}")
    cur.execute(f"DROP TABLE {ident(lines + '_scan')}")


def place_rejects(cur: duckdb.DuckDBPyConnection, run: Staging, index: int, path: str) -> None:
    """Move the staged rows of file ``index`` marked bad (see ``Rows.sql``) into the staged
    rejects: a rejected line as one error, a kept row's bad values as one warning each;
    then the rejected rows out of the staging table and the marks off the kept ones."""
    stage, where = run.stage, f"_file = {index} AND _inexact"
    cur.execute(f"""INSERT INTO {run.stage_rejects} {REJECT_COLUMNS} SELECT {index},
        {literal(path)}, _row, _inexact_values[2], _inexact_values[1], _inexact_message,
        _inexact_values[3], 'error' FROM {stage} WHERE {where} = 'error'""")
    cur.execute(f"""INSERT INTO {run.stage_rejects} {REJECT_COLUMNS} SELECT {index},
        {literal(path)}, _row, v[i], v[1], raw, v[i + 1], 'warning' FROM (SELECT _row,
        _inexact_message AS raw, _inexact_values AS v,
        unnest(generate_series(2, len(_inexact_values) - 1, 2)) AS i
        FROM {stage} WHERE {where} = 'warning') WHERE v[i] IS NOT NULL""")
    cur.execute(f"DELETE FROM {stage} WHERE {where} = 'error'")
    cur.execute(f"""UPDATE {stage} SET _inexact = NULL, _inexact_message = NULL,
        _inexact_values = NULL WHERE {where} IS NOT NULL""")


class Check:
    """How one column's value is read: ``cast``, SQL of the column's value; ``bad``, SQL of
    whether the file's value is bad, over it and the cast value (named _vN), or None when
    no value is; ``message``, SQL of a bad value's message."""

    def __init__(self, cast: str, bad: str | None = None, message: str = "NULL"):
        self.cast, self.bad, self.message = cast, bad, message


class Rows:
    """The SQL that reads one file's rows for the staging table, with its bad values."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, path: str, options: ImportOptions,
                 columns: dict[str, str], rejects: str):
        self.cur, self.path, self.options, self.rejects = cur, path, options, rejects
        self.names = list(columns)
        canonical = cur.execute("SELECT " + ", ".join(
            f"typeof(NULL::{t})" for t in columns.values())).fetchone()
        self.kinds = dict(zip(self.names, canonical))
        self.shape = shape(cur, path, options)

    def sql(self) -> str:
        """SELECT a row's place (Parquet: _n, its row number; JSON: _skip, whether the line
        is blank, numbered as read in order), the columns' values (_oN), and what
        goes to the staging table's ``_inexact`` columns: _m1 ('error': the line is
        rejected, 'warning': it is kept with NULLs), _m2 (the raw text) and _m3 (for an
        error [reason, column, message]; for a warning [reason, then the column and
        message of each bad value, NULLs where a value is good])."""
        if self.shape == "parquet":
            source, raw, checks = self.parquet()
            place, problem, problem_message = "_n", "NULL", "NULL"
        else:
            place = "_skip"
            source, raw, checks = self.json()
            problem = "_problem"
            problem_message = ("CASE _problem WHEN 'invalid json' THEN 'Malformed JSON' "
                               "WHEN 'not an object' THEN 'Expected OBJECT, but got ' || "
                               "json_type(_text) END")
        policy = {name: bad_value_policy(self.options, name) for name in self.names}
        checked = [i for i, check in enumerate(checks) if check.bad is not None]
        rejecting = [i for i in checked if policy[self.names[i]] != "ignore"]
        ignored = [i for i in checked if policy[self.names[i]] == "ignore"]
        # the column a rejected line is filed under: a stop first, which fails the job
        named = sorted(rejecting, key=lambda i: (policy[self.names[i]] != "stop", i))
        rejected = " OR ".join([f"{problem} IS NOT NULL", *(f"_b{i}" for i in rejecting)])
        warned = " OR ".join([f"_b{i}" for i in ignored] or ["false"])
        column = ("CASE " + " ".join(f"WHEN _b{i} THEN {literal(self.names[i])}"
                                     for i in named) + " END") if named else "NULL"
        messages = ", ".join(f"CASE WHEN _b{i} THEN {checks[i].message} END"
                             for i in checked) or "NULL"
        warnings = "".join(f", CASE WHEN _b{i} THEN {literal(self.names[i])} END, "
                           f"CASE WHEN _b{i} THEN {checks[i].message} END" for i in ignored)
        values = ", ".join((f"CAST(CASE WHEN _b{i} THEN NULL ELSE _v{i} END AS {kind})"
                            if i in checked else f"_v{i}") + f" AS _o{i}"
                           for i, kind in enumerate(self.kinds.values()))
        casts = ", ".join(f"{check.cast} AS _v{i}" for i, check in enumerate(checks))
        bads = "".join(f", {checks[i].bad} AS _b{i}" for i in checked)
        return f"""SELECT {place}, {values},
            CASE WHEN _rejected THEN 'error' WHEN _warned THEN 'warning' END AS _m1,
            CASE WHEN _rejected OR _warned THEN {raw} END AS _m2,
            CASE WHEN _rejected THEN [coalesce({problem}, 'cast error'),
                      CASE WHEN {problem} IS NULL THEN {column} END,
                      coalesce({problem_message}, concat_ws('; ', {messages}))]
                 WHEN _warned THEN ['cast error'{warnings}] END AS _m3
            FROM (SELECT *, {rejected} AS _rejected, {warned} AS _warned
                  FROM (SELECT *{bads} FROM (SELECT *, {casts} FROM {source})))"""

    # -- JSON ------------------------------------------------------------------------

    def json(self) -> tuple[str, str, list[Check]]:
        """The source of ``sql`` for a JSON file (_text, a line or a record; _skip, when it
        is blank; _problem, when it is not JSON or not an object; _j, its object, each
        column's value as text or, for nested and JSON columns, as JSON), the raw text
        and the checks."""
        spec = json.dumps({name: "JSON" if nested(kind) or kind == "JSON" else "VARCHAR"
                           for name, kind in self.kinds.items()})
        if self.shape == "lines":
            text = f"(SELECT line AS _text FROM {self.line_reader()})"
        else:
            fmt = "array" if self.shape == "array" else "unstructured"
            text = (f"(SELECT json::VARCHAR AS _text FROM read_json_objects("
                    f"{literal(self.path)}, format={literal(fmt)}))")
        # an object's line starts with {: the other tests are made on the few others
        skip = (f"CASE WHEN _text IS NULL THEN true WHEN starts_with(_text, '{{') THEN false "
                f"ELSE trim(_text, {WHITESPACE}) = '' END")
        problem = """CASE WHEN _skip OR (starts_with(_text, '{') AND json_valid(_text)) THEN NULL
            WHEN NOT json_valid(_text) THEN 'invalid json'
            WHEN json_type(_text) <> 'OBJECT' THEN 'not an object' END"""
        source = f"""(SELECT _text, _skip, _problem, CASE WHEN _problem IS NULL AND NOT _skip
            THEN from_json(_text, {literal(spec)}) END AS _j FROM (SELECT *, {problem} AS
            _problem FROM (SELECT *, {skip} AS _skip FROM {text})))"""
        raw = "_text" if self.shape == "lines" else "json(_text)"
        return source, raw, [self.json_check(i, name, kind) for i, (name, kind)
                             in enumerate(self.kinds.items())]

    def json_check(self, i: int, name: str, kind: str) -> Check:
        """Column ``name`` from JSON: its value as text, or as JSON when nested."""
        value = f"struct_extract(_j, {literal(name)})"
        if kind in ("VARCHAR", "JSON"):
            return Check(value)
        shown = bad_message(name, kind, f"'string \"' || {value} || '\"'", f"_v{i}")
        if not nested(kind):
            return Check(f"TRY_CAST({value} AS {kind})", bad_text(value, kind, i), shown)
        # cast only what fits: a MAP's key that does not fails even TRY_CAST
        cast = (f"CASE WHEN {json_bad(value, self.cur.sqltype(kind), 0)} THEN NULL "
                f"ELSE TRY_CAST({value} AS {carrier(kind)}) END")
        return Check(cast, f"{value} IS NOT NULL AND _v{i} IS NULL", shown)

    def line_reader(self) -> str:
        """The file's lines (see ``lines``), those it cannot read in the rejects table."""
        return lines(self.path, f"store_rejects=true, rejects_table={literal(self.rejects)}, "
                                f"rejects_scan={literal(self.rejects + '_scan')}")

    # -- Parquet ---------------------------------------------------------------------

    def parquet(self) -> tuple[str, str, list[Check]]:
        """The source of ``sql`` for a Parquet file (_n and the file's columns as _cN), the
        raw text (the row as JSON) and the checks: a column of the file's own type is
        taken as it is."""
        relation = self.cur.sql(f"SELECT * FROM read_parquet({literal(self.path)}) LIMIT 0")
        own = {name.lower(): (i, str(kind)) for i, (name, kind) in
               enumerate(zip(relation.columns, relation.types))}
        aliased = ", ".join(f"{ident(name)} AS _c{i}" for i, name in enumerate(relation.columns))
        source = (f"(SELECT file_row_number + 1 AS _n, {aliased} FROM "
                  f"read_parquet({literal(self.path)}, file_row_number=true))")
        raw = "to_json({" + ", ".join(f"{literal(name)}: _c{i}" for i, name in
                                      enumerate(relation.columns)) + "})"
        checks = []
        for i, (name, kind) in enumerate(self.kinds.items()):
            if name.lower() not in own:
                raise JobobsError(f'{self.path} has no column "{name}"')
            at, source_kind = own[name.lower()]
            value = f"_c{at}"
            if source_kind == kind:
                checks.append(Check(value))
                continue
            cast = f"TRY_CAST({value} AS {kind})"
            if nested(kind):  # checked as JSON: no element NULL or rounded by the cast
                fits = json_bad(f"to_json({value})", self.cur.sqltype(kind), 0)
                cast = (f"CASE WHEN {fits} THEN NULL ELSE "
                        f"try(CAST({value} AS {kind}))::{carrier(kind)} END")
                bad = f"{value} IS NOT NULL AND _v{i} IS NULL"
            elif source_kind == "VARCHAR":
                bad = bad_text(value, kind, i)
            else:  # a number of another type: the same once cast back
                rounded = f"_v{i}::{source_kind} <> {value}" if is_number(kind) else "false"
                bad = (f"CASE WHEN {value} IS NULL THEN false WHEN _v{i} IS NULL THEN true "
                       f"ELSE {rounded} END")
            shown = (f"'string \"' || {value} || '\"'" if source_kind == "VARCHAR"
                     else f"'{source_kind} ' || {value}::VARCHAR")
            checks.append(Check(cast, bad, bad_message(name, kind, shown, f"_v{i}")))
        return source, raw, checks


def lines(path: str, rejects: str) -> str:
    """The lines of ``path`` as text, numbered as the file's lines when read in order (a
    blank line is a NULL; a line ends at LF or CRLF, and at a CR alone as in DuckDB's CSV
    reader), through DuckDB's CSV reader with no quote and a delimiter no JSON holds;
    ``rejects``: what becomes of a line it cannot read (not UTF-8, longer than MAX_LINE)."""
    return (f"read_csv({literal(path)}, columns={{'line': 'VARCHAR'}}, header=false, "
            f"auto_detect=false, delim={literal(DELIMITER)}, quote='', escape='', "
            f"strict_mode=false, new_line='\\r\\n', max_line_size={MAX_LINE}, {rejects})")


def shape(cur: duckdb.DuckDBPyConnection, path: str, options: ImportOptions) -> str:
    """How a file's rows are read: "parquet"; "array" (a JSON array) and "records" (JSON
    objects spread over several lines), by record; "lines" (newline-delimited JSON), by
    line. Told by the file's first line that is not blank: an object that does not end on
    it is spread over lines."""
    if file_format(path, options.format) == "parquet":
        return "parquet"
    first = first_line(cur, path).strip()
    if first.startswith("["):
        return "array"
    return "records" if first.startswith("{") and not whole_object(first) else "lines"


def whole_object(line: str) -> bool:
    """Whether ``line`` is a JSON object on its own (else its object goes on below)."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def first_line(cur: duckdb.DuckDBPyConnection, path: str) -> str:
    """The first line of ``path`` that is not blank (its first 64 KB at most)."""
    if path.endswith(".zst"):  # Python has no zstd: DuckDB's own reading of it
        found = cur.execute(f"SELECT line FROM {lines(path, 'ignore_errors=true')} "
                            f"WHERE trim(line, {WHITESPACE}) <> '' LIMIT 1").fetchone()
        return found[0][:65536] if found else ""
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        for line in iter(lambda: stream.readline(65536), b""):
            if line.strip():
                return line.decode("utf-8", errors="replace").lstrip("\ufeff")
    return ""


# -- what a column takes ---------------------------------------------------------------

def nested(kind: str) -> bool:
    return kind.startswith(("STRUCT", "MAP", "UNION")) or kind.endswith("]")


def carrier(kind: str) -> str:
    """``kind`` with its fixed-size arrays as lists: DuckDB's CASE takes no ARRAY, so a
    value is carried as a list and cast back to ``kind`` last."""
    return re.sub(r"\[\d+\]", "[]", kind)


def bad_text(text: str, kind: str, i: int) -> str:
    """SQL: whether ``text`` is a bad value of a column of type ``kind`` whose value is
    _v``i``: there, but NULL once cast, or rounded."""
    return (f"CASE WHEN {text} IS NULL THEN false WHEN _v{i} IS NULL THEN true "
            f"ELSE {rounds(text, kind)} END")


def json_bad(value: str, kind: duckdb.DuckDBPyType, depth: int) -> str:
    """SQL: whether JSON ``value`` holds something that type ``kind`` takes only as NULL
    or rounded, at any depth (a missing key or a JSON null is no such thing)."""
    name = str(kind)
    if name in ("VARCHAR", "JSON"):
        return "false"
    element, is_a = f"_e{depth}", f"json_type({value}) <>"
    if kind.id == "struct":
        shape, inner = f"{is_a} 'OBJECT'", " OR ".join(
            json_bad(f"({value} -> {literal(path_of(field))})", child, depth + 1)
            for field, child in kind.children)
    elif kind.id in ("list", "array"):
        shape = f"{is_a} 'ARRAY'"
        if kind.id == "array":
            shape += f" OR json_array_length({value}) <> {kind.children[1][1]}"
        inner = (f"coalesce(list_bool_or(list_transform(CAST({value} AS JSON[]), lambda "
                 f"{element}: {json_bad(element, kind.children[0][1], depth + 1)})), false)")
    elif kind.id == "map":
        key, child = kind.children[0][1], kind.children[1][1]
        shape = f"{is_a} 'OBJECT'"
        inner = (f"coalesce(list_bool_or(list_transform(map_values(CAST({value} AS "
                 f"MAP(VARCHAR, JSON))), lambda {element}: "
                 f"{json_bad(element, child, depth + 1)})), false)")
        if str(key) != "VARCHAR":
            inner += (f" OR coalesce(list_bool_or(list_transform(json_keys({value}), lambda "
                      f"{element}: TRY_CAST({element} AS {key}) IS NULL OR "
                      f"{rounds(element, str(key))})), false)")
    else:
        shape = f"TRY_CAST({value} AS {name}) IS NULL"
        inner = rounds(f"({value} ->> '$')", name)
    return (f"CASE WHEN {value} IS NULL OR json_type({value}) = 'NULL' THEN false "
            f"WHEN {shape} THEN true ELSE {inner} END")


def path_of(key: str) -> str:
    """The JSON path of an object's ``key``."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
