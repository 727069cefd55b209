"""DuckDB's Quack protocol: serving a jobobs database, and querying it from another process.

The extensions come from the PyPI packages ``duckdb-extension-quack`` and
``duckdb-extension-httpfs`` (pinned with duckdb) and are loaded by file path, never
installed from the network. A client sends whole queries to the server
(``quack_query_by_name``), so filters and aggregates run where the data is. Quack takes no
query parameters, so ``bind`` renders them as SQL literals (``sql.literal``), by type.

Quack's server speaks plain HTTP, and serves only on a loopback name unless told
otherwise (``allow_other_hostname``); its client speaks HTTPS to any other name, so a
client of a jobobs server reached by another name turns SSL off (``attach``). Two
servers may bind the same port (the extension shares it), so ``serve`` first makes sure
that no other program listens there, and holds the port for this process while it serves.
"""

from __future__ import annotations

import errno
import glob
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from jobobs.db.sql import literal
from jobobs.model.errors import JobobsError, one_line

CATALOG = "jobobs_server"
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # the names Quack serves and reaches unasked
_ports: dict[str, socket.socket | None] = {}  # address -> what holds its port while it is served


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
        con.execute(f"LOAD {literal(extension_path(package))}")


def uri(host: str, port: int) -> str:
    return f"quack:{host}:{port}"


def loopback(host: str) -> bool:
    return host.strip("[]") in LOOPBACK


def serve(con: duckdb.DuckDBPyConnection, host: str, port: int, token: str) -> str:
    """Serve the database of ``con`` on host:port to clients holding ``token``; refuse a
    port another program (another jobobs server) listens on."""
    load(con)
    address = uri(host, port)
    held = hold(host, port)
    other = "" if loopback(host) else ", allow_other_hostname = true"
    try:
        con.execute(f"CALL quack_serve({literal(address)}, token = {literal(token)}{other})")
    except duckdb.Error as error:
        if held is not None:
            held.close()
        raise JobobsError(f"cannot serve Quack on {host}:{port}: {one_line(error)}") from None
    _ports[address] = held
    return address


def hold(host: str, port: int) -> socket.socket | None:
    """Claim ``port`` for this process, refusing it when another program listens there.

    A name in Linux's abstract socket namespace holds the port among the jobobs servers of
    the machine (two starting at once cannot both pass); a bind without port sharing then
    finds any program listening on it (Quack itself shares ports, so it would not)."""
    claim = None
    try:
        if sys.platform.startswith("linux"):
            claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            claim.bind(f"\0jobobs-quack-port-{port}")
        for family, kind, proto, _, where in _addresses(host, port):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
                try:
                    probe.bind(where)
                except OSError as error:
                    if error.errno == errno.EADDRINUSE:
                        raise
    except OSError as error:
        if claim is not None:
            claim.close()
        if error.errno != errno.EADDRINUSE:
            raise
        raise JobobsError(f"cannot serve Quack on {host}:{port}: the port is in use (by "
                          "another jobobs server?); choose another with --quack-port") from None
    return claim


def _addresses(host: str, port: int) -> list[tuple]:
    try:
        return socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                  flags=socket.AI_PASSIVE)
    except OSError:  # a name that does not resolve: Quack says so
        return []


def stop(con: duckdb.DuckDBPyConnection, address: str) -> None:
    try:
        con.execute(f"CALL quack_stop({literal(address)})")
    finally:
        held = _ports.pop(address, None)
        if held is not None:
            held.close()


def attach(con: duckdb.DuckDBPyConnection, address: str, token: str, alias: str) -> None:
    """Attach the jobobs server at ``address`` as ``alias``: over plain HTTP, which is all
    the server speaks, also when it is reached by another name than a loopback one."""
    host = address.removeprefix("quack:").rpartition(":")[0]
    plain = "" if loopback(host) else ", DISABLE_SSL true"
    con.execute(f"ATTACH {literal(address)} AS {alias} (TYPE quack, TOKEN {literal(token)}{plain})")


# -- parameters -----------------------------------------------------------------------



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
            try:
                out.append(literal(params[used]))
            except JobobsError:
                raise JobobsError(f"a query parameter of type {type(params[used]).__name__} "
                                  "cannot be sent to the server") from None
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
            attach(self._con, self.address, self._token, CATALOG)
        except duckdb.Error as error:
            raise _unavailable(self.address, error) from None
        self._attached = True

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        return Result(self, bind(sql, params))

    def run(self, sql: str, fetch: str) -> Any:
        query = f"FROM quack_query_by_name({literal(CATALOG)}, ?)"
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
    text = str(error).lower()
    if "authentication" in text or "token" in text:
        return ServerUnavailable(f"the jobobs server at {address} refused the token")
    return ServerUnavailable(f"no jobobs server answers at {address} ({one_line(error)})")


def _server_error(error: duckdb.Error) -> duckdb.Error:
    """The server's error without the client's wrapper query around it."""
    lines = [line for line in str(error).splitlines() if "quack_query_by_name" not in line]
    message = "\n".join(lines).strip().removeprefix("Invalid Input Error: ")
    return type(error)(message)
