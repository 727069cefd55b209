"""Small SQL helpers: quoting names, and values as literals where DuckDB takes no parameter
(table functions' and COPY's options, a query sent whole through Quack)."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

from jobobs.model.errors import JobobsError

DECIMAL_DIGITS = 38  # the most digits a DuckDB DECIMAL holds
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?(\[\])?$")


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


def column_type(name: str, sql_type: str) -> str:
    """A column type, checked to be a plain type name (``DECIMAL(10,2)``, ``VARCHAR[]``)."""
    if not isinstance(sql_type, str) or not _TYPE.match(sql_type.strip()):
        raise JobobsError(f"column {name!r}: {sql_type!r} is not a column type")
    return sql_type.strip()


def columns_struct(columns: dict[str, str]) -> str:
    """``{'id': 'BIGINT', ...}`` for a reader's ``columns`` option."""
    return "{" + ", ".join(f"{literal(n)}: {literal(column_type(n, t))}"
                           for n, t in columns.items()) + "}"


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
