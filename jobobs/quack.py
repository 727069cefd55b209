"""DuckDB's Quack protocol: serving a jobobs database, and querying it from another process.

The extensions come from the PyPI packages ``duckdb-extension-quack`` and
``duckdb-extension-httpfs`` (pinned with duckdb) and are loaded by file path, never
installed from the network. A client sends whole queries to the server
(``quack_query_by_name``), so filters and aggregates run where the data is. Quack takes no
query parameters, so ``bind`` renders them as SQL literals, quoted by type.
"""

from __future__ import annotations

import datetime as dt
import glob
import math
import os
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

import duckdb

from jobobs.errors import JobobsError

CATALOG = "jobobs_server"


class ServerUnavailable(JobobsError):
    """No jobobs server answers at the address, or it refused the token."""


def extension_path(package: str) -> str:
    """The ``.duckdb_extension`` file shipped in a PyPI extension package."""
    import importlib

    try:
        module = importlib.import_module(f"duckdb_extension_{package}")
    except ImportError:
        raise JobobsError(f"the package duckdb-extension-{package} is not installed; "
                          "reinstall jobobs") from None
    folder = os.path.join(os.path.dirname(module.__file__), "extensions",
                          f"v{duckdb.__version__}")
    found = glob.glob(os.path.join(folder, f"{package}.duckdb_extension"))
    if not found:
        raise JobobsError(f"duckdb-extension-{package} has no build for DuckDB "
                          f"{duckdb.__version__}; install the matching version")
    return found[0]


def load(con: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs (Quack's transport, needed by servers and clients) and quack."""
    for package in ("httpfs", "quack"):
        con.execute(f"LOAD {quote(extension_path(package))}")


def uri(host: str, port: int) -> str:
    return f"quack:{host}:{port}"


def serve(con: duckdb.DuckDBPyConnection, host: str, port: int, token: str) -> str:
    """Serve the database of ``con`` on host:port to clients holding ``token``."""
    load(con)
    address = uri(host, port)
    try:
        con.execute(f"CALL quack_serve({quote(address)}, token = {quote(token)})")
    except duckdb.Error as error:
        raise JobobsError(f"cannot serve Quack on {host}:{port}: "
                          f"{str(error).splitlines()[0]}") from None
    return address


def stop(con: duckdb.DuckDBPyConnection, address: str) -> None:
    con.execute(f"CALL quack_stop({quote(address)})")


# -- literals ------------------------------------------------------------------------


def quote(text: str) -> str:
    """A string literal; a NUL, which SQL text cannot hold, is spliced in with chr(0)."""
    if "\x00" in text:
        return "(" + " || chr(0) || ".join(quote(part) for part in text.split("\x00")) + ")"
    return "'" + text.replace("'", "''") + "'"


def literal(value: Any) -> str:
    """A SQL literal for a Python value, by its type (never by its text)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    # numbers in parentheses: "10-?" with -5 must not become the comment "10--5"
    if isinstance(value, Integral):
        return f"({int(value)})"
    if isinstance(value, Decimal):
        return f"({value}::DECIMAL)" if value.is_finite() else f"({quote(str(value))}::DOUBLE)"
    if isinstance(value, Real):
        number = float(value)
        return f"({repr(number) if math.isfinite(number) else quote(str(number))}::DOUBLE)"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"{kind} {quote(value.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {quote(value.isoformat())}"
    if isinstance(value, dt.time):
        return f"TIME {quote(value.isoformat())}"
    if isinstance(value, dt.timedelta):
        return f"to_microseconds({int(value / dt.timedelta(microseconds=1))})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise JobobsError(f"a query parameter of type {type(value).__name__} cannot be sent to "
                      "the server")


def bind(sql: str, params: Sequence[Any] | None) -> str:
    """``sql`` with each ``?`` placeholder (outside quotes and comments) replaced by the
    literal of the next parameter."""
    params = list(params or [])
    out: list[str] = []
    i, used, n = 0, 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif char == "?":
            if used >= len(params):
                raise JobobsError(f"the query has more placeholders than the {len(params)} "
                                  "parameters given")
            out.append(literal(params[used]))
            used += 1
            i += 1
        else:
            out.append(char)
            i += 1
    if used != len(params):
        raise JobobsError(f"the query has {used} placeholders but {len(params)} parameters "
                          "were given")
    return "".join(out)


# -- the client side -------------------------------------------------------------------


class Result:
    """A query sent on demand, in the shape of a DuckDB result (``df``, ``fetchall``)."""

    def __init__(self, remote: Remote, sql: str):
        self._remote, self._sql = remote, sql

    def df(self):
        return self._remote.run(self._sql, "df")

    def fetchall(self) -> list[tuple]:
        return self._remote.run(self._sql, "fetchall")

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None


class Remote:
    """A connection to a jobobs server, shaped like a DuckDB connection for the query
    functions: ``execute(sql, params)`` runs the whole query on the server.

    After a server restart the attached catalog answers "Invalid connection id"; the
    connection then attaches again (asking ``find`` for the new server's address and
    token, when given) and retries once.
    """

    def __init__(self, address: str, token: str,
                 find: Callable[[], tuple[str, str] | None] | None = None):
        self.address, self._token, self._find = address, token, find
        self._lock = threading.Lock()
        self._con = duckdb.connect()
        self._attached = False
        try:
            load(self._con)
            self._attach()
        except BaseException:
            self._con.close()
            raise

    def _attach(self) -> None:
        try:
            self._con.execute(f"ATTACH {quote(self.address)} AS {CATALOG} "
                              f"(TYPE quack, TOKEN {quote(self._token)})")
        except duckdb.Error as error:
            raise _unavailable(self.address, error) from None
        self._attached = True

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        return Result(self, bind(sql, params))

    def run(self, sql: str, fetch: str) -> Any:
        query = f"FROM quack_query_by_name({quote(CATALOG)}, ?)"
        with self._lock:
            if not self._attached:  # a reattach failed earlier (the server was restarting)
                self._reattach()
            for attempt in (1, 2):
                try:
                    return getattr(self._con.execute(query, [sql]), fetch)()
                except duckdb.Error as error:
                    text = str(error)
                    if attempt == 1 and lost(text):
                        self._reattach()
                        continue
                    if lost(text):
                        raise _unavailable(self.address, error) from None
                    raise _server_error(error) from None
        raise AssertionError("unreachable")

    def _reattach(self) -> None:
        self._attached = False
        try:
            self._con.execute(f"DETACH {CATALOG}")
        except duckdb.Error:
            pass
        found = self._find() if self._find is not None else None
        if found is not None:
            self.address, self._token = found
        self._attach()

    def close(self) -> None:
        with self._lock:
            self._con.close()


def lost(text: str) -> bool:
    """The transport's errors: the server restarted, or is not there."""
    lowered = text.lower()
    return any(words in lowered for words in (
        "invalid connection id", "could not connect", "failed to send message",
        "connection refused"))


def _unavailable(address: str, error: duckdb.Error) -> ServerUnavailable:
    text = str(error)
    if "authentication" in text.lower() or "token" in text.lower():
        return ServerUnavailable(f"the jobobs server at {address} refused the token")
    return ServerUnavailable(f"no jobobs server answers at {address} "
                             f"({text.splitlines()[0]})")


def _server_error(error: duckdb.Error) -> duckdb.Error:
    """The server's error without the client's wrapper query around it."""
    lines = [line for line in str(error).splitlines() if "quack_query_by_name" not in line]
    message = "\n".join(lines).strip().removeprefix("Invalid Input Error: ")
    return type(error)(message)
