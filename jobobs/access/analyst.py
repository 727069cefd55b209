"""The analyst credential: a second token, which can only read.

The server's token opens the whole database (Quack runs any SQL), so analysts get their
own: ``jobobs serve`` keeps it in a file beside the database (``DB.analyst-token``; made on
the first start, mode 600, or 640 and the group of ``--analyst-group``; kept across
restarts; delete it and restart to change it) and answers ``POST /api/sql`` on the
dashboard's port for whoever sends it as a bearer token::

    curl -H "Authorization: Bearer $(cat jobs.duckdb.analyst-token)" \\
         -H "Accept: application/json" --data '{"query": "FROM job_runs LIMIT 5"}' \\
         http://127.0.0.1:5006/api/sql

The server checks each query with ``jobobs.db.readonly`` (a refusal is a 400 that says why),
runs it on a read cursor of the runtime's store, two at once (others wait their turn), for
at most ``TIMEOUT`` seconds and ``MAX_ROWS`` rows, and answers an Arrow IPC stream (typed
columns that pandas and DuckDB read without converting rows) or, when asked, JSON rows.

``Link`` is the analysts' side: the connection that ``jobobs.connect(url=...,
analyst_token=...)`` reads through, so the query functions, the notebooks and ``jobobs
sql``/``list``/``show`` work with the analyst token.
"""

from __future__ import annotations

import hmac
import http.client
import json
import os
import secrets
import stat
import threading
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa
import tornado.web
from tornado.ioloop import IOLoop

from jobobs.db import quack, readonly
from jobobs.model.errors import JobobsError, QueryRefused, one_line

PATH = "/api/sql"
ARROW = "application/vnd.apache.arrow.stream"
TIMEOUT = 60.0             # seconds a query may run before it is interrupted
MAX_ROWS = 1_000_000       # rows an answer may hold
MAX_BYTES = 128 * 2**20    # and bytes of Arrow data
MAX_QUERY = 100_000        # characters of SQL a request may send


def token_path(db: str) -> str:
    return os.path.abspath(db) + ".analyst-token"


def load_token(path: str, group: str | None = None) -> str:
    """The token kept in ``path``; a new one written there when there is none (mode 600,
    or 640 and owned by ``group`` when given). A file everyone may read is refused."""
    try:
        with open(path, encoding="utf-8") as file:
            token = file.read().strip()
            mode = os.fstat(file.fileno()).st_mode
    except FileNotFoundError:
        return _new_token(path, group)
    except OSError as error:
        raise JobobsError(f"cannot read the analyst token file {path}: {error}") from None
    if mode & stat.S_IROTH:
        raise JobobsError(f"the analyst token file {path} is readable by everyone; "
                          f"chmod o-r it first")
    if len(token) < 16:
        raise JobobsError(f"the analyst token in {path} is too short (16 characters at least)")
    if group is not None:
        _share(path, group)
    return token


def _new_token(path: str, group: str | None) -> str:
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    if group is not None:
        _share(path, group)
    return token


def _share(path: str, group: str) -> None:
    """Let ``group`` read the token file, and no one else but its owner."""
    import grp  # Unix only, like groups

    try:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    except KeyError:
        raise JobobsError(f"there is no group {group!r}") from None
    except PermissionError:
        raise JobobsError(f"cannot give {path} to the group {group!r}: you are not in "
                          "it") from None
    os.chmod(path, 0o640)


# -- the server side -------------------------------------------------------------------


class Route:
    """``POST /api/sql`` for analysts: read-only queries on ``store``'s read cursors."""

    def __init__(self, store: Any, token: str, *, threads: int = 2,
                 timeout: float = TIMEOUT, max_rows: int = MAX_ROWS):
        self.store, self.token = store, token.encode()
        self.timeout, self.max_rows = timeout, max_rows
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="jobobs-analyst")
        self.running: set[Any] = set()
        self.lock = threading.Lock()
        self.closed = False

    def pattern(self) -> tuple[str, type, dict[str, Any]]:
        """The route, for Tornado's (and so Panel's) ``extra_patterns``."""
        return PATH, SqlHandler, {"route": self}

    def authorized(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  self.token)

    def answer(self, query: str, as_json: bool) -> bytes:
        """The result of ``query`` as Arrow IPC (or JSON rows); QueryRefused, JobobsError
        or duckdb.Error when it cannot be given."""
        query = readonly.check(query)
        cursor = self.store.reader()  # this pool thread's own
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            cursor.interrupt()

        timer = threading.Timer(self.timeout, expire)
        with self.lock:
            self.running.add(cursor)
        timer.start()
        try:
            table = self._fetch(_execute(cursor, query))
        except duckdb.InterruptException:
            if expired.is_set():
                raise JobobsError(f"the query ran longer than {self.timeout:g} s and was "
                                  "stopped") from None
            raise
        finally:
            timer.cancel()
            with self.lock:
                self.running.discard(cursor)
        if as_json:
            try:
                return table.to_pandas().to_json(orient="records", date_format="iso",
                                                 date_unit="ms").encode()
            except ValueError as error:  # columns of the same name
                raise JobobsError(f"cannot answer in JSON: {error}") from None
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    def _fetch(self, reader: pa.RecordBatchReader) -> pa.Table:
        batches, rows, size = [], 0, 0
        for batch in reader:
            rows, size = rows + batch.num_rows, size + batch.nbytes
            if rows > self.max_rows or size > MAX_BYTES:
                raise JobobsError(f"the answer is larger than {self.max_rows:,} rows or "
                                  f"{MAX_BYTES // 2**20} MB; filter, aggregate or add a LIMIT")
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=reader.schema)

    def close(self) -> None:
        """Stop the queries that run and refuse new ones (before the store closes)."""
        with self.lock:
            self.closed = True
            for cursor in self.running:
                cursor.interrupt()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _execute(cursor: Any, query: str) -> pa.RecordBatchReader:
    # Python's replacement scans look up bare table names among the calling frame's
    # variables: this frame holds nothing they would take.
    return cursor.execute(query).to_arrow_reader(100_000)


class SqlHandler(tornado.web.RequestHandler):
    """One analyst query: ``{"query": "..."}`` in, Arrow IPC (or JSON when the Accept
    header asks for it) out; errors are ``{"error": "...", "refused": bool}``."""

    def initialize(self, route: Route) -> None:
        self.route = route

    def check_xsrf_cookie(self) -> None:
        """No cookie authorizes this route, only a header a browser never adds by itself."""

    async def post(self) -> None:
        if not self.route.authorized(self.request.headers.get("Authorization", "")):
            self.set_header("WWW-Authenticate", 'Bearer realm="jobobs"')
            return self._error(401, "this route needs the analyst token "
                                    "(Authorization: Bearer ...)")
        if len(self.request.body) > MAX_QUERY:
            return self._error(413, f"a query is at most {MAX_QUERY:,} characters")
        try:
            query = json.loads(self.request.body)["query"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, 'send {"query": "SELECT ..."} as JSON')
        as_json = "application/json" in self.request.headers.get("Accept", "")
        if self.route.closed:
            return self._error(503, "the server is stopping")
        try:
            body = await IOLoop.current().run_in_executor(self.route.pool, self.route.answer,
                                                          query, as_json)
        except QueryRefused as refused:
            return self._error(400, str(refused), refused=True)
        except (JobobsError, duckdb.Error) as error:
            return self._error(400, one_line(error))
        self.set_header("Content-Type", "application/json" if as_json else ARROW)
        self.finish(body)

    def _error(self, status: int, message: str, refused: bool = False) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "refused": refused}))


# -- the analysts' side ------------------------------------------------------------------


class Link:
    """A connection to a jobobs server with the analyst token, shaped like a DuckDB
    connection for the query functions: ``execute(sql, params)`` runs on the server."""

    def __init__(self, url: str, token: str, timeout: float = TIMEOUT + 30):
        base = url.strip().rstrip("/")
        if base.startswith("quack:"):
            raise JobobsError("an analyst token goes to the dashboard's address "
                              "(http://HOST:PORT/), not to Quack's")
        if "://" not in base:
            base = f"http://{base}"
        self.address, self._token, self.timeout = base + PATH, token, timeout
        self._where = urllib.parse.urlsplit(self.address)
        self._http: http.client.HTTPConnection | None = None  # kept open between queries
        self._con = duckdb.connect()  # turns answers into frames and rows as Quack's are
        self._lock = threading.Lock()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> quack.Result:
        return quack.Result(self, quack.bind(sql, params))

    def run(self, sql: str, fetch: str) -> Any:
        table = self.query(sql)
        with self._lock:
            return getattr(self._con.from_arrow(table), fetch)()

    def query(self, sql: str) -> pa.Table:
        """The result of ``sql`` as an Arrow table."""
        body = json.dumps({"query": sql}).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": ARROW,
                   "Content-Type": "application/json"}
        with self._lock:
            for attempt in (1, 2):  # a query only reads: sending it again is harmless
                try:
                    connection = self._connection()
                    connection.request("POST", self._where.path, body, headers)
                    response = connection.getresponse()
                    status, answer = response.status, response.read()
                    break
                except (http.client.HTTPException, OSError) as error:
                    self._disconnect()  # the server restarted, or closed an idle connection
                    if attempt == 2:
                        raise quack.ServerUnavailable(f"no jobobs server answers at "
                                                      f"{self.address} ({error})") from None
        if status != 200:
            raise _refusal(self.address, status, answer)
        return pa.ipc.open_stream(answer).read_all()

    def _connection(self) -> http.client.HTTPConnection:
        if self._http is None:
            kind = (http.client.HTTPSConnection if self._where.scheme == "https"
                    else http.client.HTTPConnection)
            self._http = kind(self._where.hostname, self._where.port, timeout=self.timeout)
        return self._http

    def _disconnect(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def close(self) -> None:
        with self._lock:
            self._disconnect()
            self._con.close()


def _refusal(address: str, status: int, body: bytes) -> JobobsError:
    if status == 401:
        return quack.ServerUnavailable(f"the jobobs server at {address} refused the "
                                       "analyst token")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict) or not answer.get("error"):
        return JobobsError(f"the jobobs server at {address} answered HTTP {status}")
    if answer.get("refused"):
        return QueryRefused(answer["error"])
    return JobobsError(answer["error"])
