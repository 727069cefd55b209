"""Small SQL helpers: quoting names, values as literals where DuckDB takes no parameter
(table functions' and COPY's options, a query sent whole through Quack), and declared
columns read by DuckDB."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

import duckdb

from jobobs.model.errors import JobobsError

DECIMAL_DIGITS = 38  # the most digits a DuckDB DECIMAL holds


def ident(name: str) -> str:
    """A quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def table_name(name: str) -> str:
    """A quoted, possibly qualified table name: ``customers``, ``main.customers``,
    ``other_db.main.customers``."""
    parts = str(name).split(".")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise JobobsError(f"{name!r} is not a table name (use table, schema.table or "
                          "database.schema.table)")
    return ".".join(ident(part) for part in parts)


def literal(value: object) -> str:
    """A SQL literal of ``value``, by its type (never by its text), holding exactly the
    value DuckDB gets when it is bound as a parameter: None, bool, int, float (NaN and the
    infinities too), Decimal, str, datetime, date, time, timedelta, and lists of these.
    Numbers are in parentheses, so ``10-`` and ``-5`` never make the comment ``10--5``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Integral):
        return f"({int(value)})"
    if isinstance(value, Decimal) and value.is_finite():
        return _decimal(value)
    if isinstance(value, (Real, Decimal)):
        # DuckDB parses text to DOUBLE exactly; a number in SQL goes through DECIMAL first
        return f"(CAST({_text(repr(float(value)))} AS DOUBLE))"
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"{kind} {_text(value.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {_text(value.isoformat())}"
    if isinstance(value, dt.time):
        return f"TIME {_text(value.isoformat())}"
    if isinstance(value, dt.timedelta):
        return f"to_microseconds({value // dt.timedelta(microseconds=1)})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise JobobsError(f"a value of type {type(value).__name__} cannot be written as SQL")


def _text(text: str) -> str:
    """A string literal; a NUL, which SQL text cannot hold, is spliced in with chr(0)."""
    if "\x00" in text:
        return "(" + " || chr(0) || ".join(_text(part) for part in text.split("\x00")) + ")"
    return "'" + text.replace("'", "''") + "'"


def _decimal(value: Decimal) -> str:
    """A finite Decimal as a DECIMAL of its own width and scale (DuckDB's widest holds 38
    digits; a wider one is a DOUBLE, as DuckDB binds it)."""
    _, digits, exponent = value.as_tuple()
    scale = max(-int(exponent), 0)
    width = max(len(digits) + int(exponent), 0) + scale
    if width > DECIMAL_DIGITS:
        return f"(CAST({_text(repr(float(value)))} AS DOUBLE))"
    return f"(CAST({_text(format(value, 'f'))} AS DECIMAL({max(width, 1)}, {scale})))"


def parse_columns(columns: str | dict[str, str]) -> dict[str, str]:
    """Declared columns as DuckDB reads them: name -> DuckDB's own type name, from a
    table's column list (``'id BIGINT, "first name" VARCHAR, amount DECIMAL(12,2)'``) or
    from a name -> type dict. Any type DuckDB has is taken (``STRUCT(a INT, b VARCHAR[])``,
    ``MAP(VARCHAR, INT)``, ``ENUM('a', 'b')``), an unknown one is refused with DuckDB's
    message, and so is anything but names and types (see ``_declared``)."""
    if isinstance(columns, str):
        try:
            return dict(_declared(columns))
        except JobobsError as error:
            raise JobobsError(f"{columns!r} is not 'name TYPE': {error}") from None
    if not isinstance(columns, dict) or not all(isinstance(n, str) and n for n in columns):
        raise JobobsError("columns must be 'name TYPE, ...' or a dict of name -> type")
    for name, kind in columns.items():
        if not isinstance(kind, str) or not kind.strip():
            raise JobobsError(f"column {name!r}: {kind!r} is not a column type")
    if not columns:
        return {}
    try:
        declared = _declared(", ".join(f"{ident(n)} {t}" for n, t in columns.items()))
        if [name for name, _ in declared] == list(columns):
            return dict(declared)
        whole = JobobsError(f"{columns!r} is not a name -> type dict")
    except JobobsError as error:
        whole = JobobsError(f"{columns!r}: {error}")
    for name, kind in columns.items():  # the column at fault, by name
        try:
            alone = [n for n, _ in _declared(f"{ident(name)} {kind}")]
            why = "" if alone == [name] else " (it declares other columns)"
        except JobobsError as error:
            why = f" ({error})"
        if why:
            raise JobobsError(f"column {name!r}: {kind!r} is not a column type{why}")
    raise whole  # each column alone is fine: two names that differ only in case


@functools.lru_cache(maxsize=256)
def _declared(text: str) -> tuple[tuple[str, str], ...]:
    """The names and types of the column list ``text``, read by DuckDB in a ``CREATE
    TABLE`` of a throwaway in-memory database that cannot reach files. The text must stay
    inside the statement's parentheses (by DuckDB's tokens: a ``CREATE TABLE ... AS
    SELECT`` is one CREATE statement too), be one statement, and declare nothing but names
    and types: the table is the one its names and types alone make (no default,
    constraint, collation or generated column). An error says why, in DuckDB's words
    where DuckDB refused it."""
    depth = 0
    for start, kind in duckdb.tokenize(text):
        if kind == duckdb.token_type.operator and text[start] in "()":
            depth += 1 if text[start] == "(" else -1
            if depth < 0:
                break
    if depth != 0:
        raise JobobsError("its parentheses do not pair")
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        try:
            statements = con.extract_statements(f"CREATE TABLE _declared ({text}\n)")
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.CREATE:
                raise JobobsError("it holds more than columns")
            con.execute(statements[0])
        except duckdb.Error as error:
            raise JobobsError(clear(error)) from None
        columns = tuple(con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = "
            "'_declared' ORDER BY column_index").fetchall())
        con.execute("CREATE TABLE _plain (" + ", ".join(
            f"{ident(name)} {kind}" for name, kind in columns) + ")")
        made = dict(con.execute("SELECT table_name, sql.substr(strpos(sql, '(')) FROM "
                                "duckdb_tables()").fetchall())
        if made["_declared"] != made["_plain"]:
            raise JobobsError("it declares more than names and types (a default, a "
                              "constraint or a collation)")
        return columns
    finally:
        con.close()


def columns_struct(columns: dict[str, str]) -> str:
    """``{'id': 'BIGINT', ...}`` for a reader's ``columns`` option; the types checked by
    DuckDB (``parse_columns``)."""
    return "{" + ", ".join(f"{literal(n)}: {literal(t)}"
                           for n, t in parse_columns(columns).items()) + "}"


def clear(error: Exception) -> str:
    """DuckDB's message without its advice list: the first lines up to a blank one."""
    text = str(error).strip().split("\n\n")[0]
    return " ".join(line.strip() for line in text.splitlines()[:3])


class StatementProgress:
    """While a statement runs on ``cursor``, pass DuckDB's own estimate of its progress
    (percent) to ``report`` every quarter second, and interrupt it when ``stop()`` says so
    (a request that came just before the statement started, which DuckDB did not see)."""

    def __init__(self, cursor: Any, report: Callable[[float], None],
                 stop: Callable[[], object] = lambda: False):
        self.cursor, self.report, self.stop = cursor, report, stop
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll, name="jobobs-progress", daemon=True)

    def __enter__(self) -> StatementProgress:
        self.cursor.execute("SET enable_progress_bar = true")
        self.cursor.execute("SET enable_progress_bar_print = false")
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def poll(self) -> None:
        while not self.done.wait(0.25):
            if self.stop():
                self.cursor.interrupt()
            percent = self.cursor.query_progress()
            if percent >= 0:
                self.report(percent)
