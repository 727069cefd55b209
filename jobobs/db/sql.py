"""Small SQL helpers for the job kinds: quoting names and values that DuckDB's table
functions take as literals (their options cannot all be bound as parameters)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from jobobs.model.errors import JobobsError

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
    """A SQL literal for a string, number, boolean or None."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


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
