"""``jobobs serve``: one process owns the database and serves it.

It runs the runtime, the Panel dashboard and a Quack endpoint for other processes (the
CLI, notebooks, the DuckDB shell, workers), both bound to 127.0.0.1 unless told
otherwise, and writes the discovery file clients find it by. SIGTERM and SIGINT stop it
gracefully: running jobs reach ``shutdown`` at a safe point, the endpoints close, the
discovery file goes. With a retention, it purges the history older than it every hour.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from jobobs.db import endpoint as endpoints
from jobobs.db import files, quack
from jobobs.db.store import Store, purge_statements, ts
from jobobs.execution.loop import Repeated
from jobobs.model.errors import JobobsError, one_line

log = logging.getLogger(__name__)
WILDCARDS = ("0.0.0.0", "::", "")  # hosts that mean every interface
PURGE_EVERY = 3600.0  # seconds between the purges of a retention
PURGED = {"jobs": "jobs", "journal": "journal lines", "rejects": "rejects",
          "transitions": "transitions", "commands": "requests"}  # as a purge's line says


def serve(db: str, *, host: str = "127.0.0.1", port: int = 5006, quack_port: int = 9494,
          workers: int | None = None, on_ready: Callable[[Any], None] | None = None,
          echo: Callable[[str], None] = print,
          users: dict[str, dict[str, str]] | None = None, session_hours: float = 12.0,
          export_dirs: list[str] | None = None, stall_timeout: float | None = 600.0,
          executor: Any = None, analyst_token_file: str | None = None,
          analyst_group: str | None = None, retention: timedelta | None = None,
          purge_every: float = PURGE_EVERY) -> None:
    """Serve ``db`` until SIGTERM or SIGINT; with ``users``, the dashboard asks people to
    sign in (``jobobs.access.users.read``), for sessions of ``session_hours``, and only operators
    may act. ``on_ready(runtime)`` runs once all is served
    (the demo submits its jobs there). Exports may write under ``export_dirs`` only
    (default: the current folder). A job with no sign of life for ``stall_timeout``
    seconds is failed and its worker replaced. With ``executor`` (a
    ``jobobs.dask.executor.DaskExecutor``) jobs run on its Dask cluster, ``workers`` at once
    (None: as many as the cluster has threads), and report back through Quack. Analysts
    read through ``POST /api/sql`` with the token in ``analyst_token_file`` (default
    ``DB.analyst-token``; made when missing, readable by ``analyst_group`` if given).
    With ``retention``, jobs that ended longer ago than it are purged with their rows
    (``jobobs purge``'s deletes) once served and then every ``purge_every`` seconds."""
    from jobobs.access import analyst
    from jobobs.execution.runtime import Runtime

    files.owner_only()  # the database, its WAL, the scratch folder: the owner's only
    try:
        running = endpoints.read(db)
        if running is not None:
            raise JobobsError(endpoints.already_running(running))
        rt = Runtime(db, workers=workers, handle_signals=False,
                     export_dirs=export_dirs or [os.getcwd()], stall_timeout=stall_timeout,
                     executor=executor)
        rt.role = "the server"
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    token = secrets.token_urlsafe(32)
    address = server = endpoint = analysts = purging = None
    try:
        token_file = analyst_token_file or analyst.token_path(db)
        analysts = analyst.Route(rt.store, analyst.load_token(token_file, analyst_group))
        with rt.store.lock:
            address = quack.serve(rt.store.con, host, quack_port, token)
        if executor is not None:  # workers elsewhere reach a wildcard address by name
            reachable = socket.getfqdn() if host in WILDCARDS else host
            executor.bind(quack.uri(reachable, quack_port), token,
                          scratch=os.path.abspath(db) + ".scratch")
        server = _dashboard(rt, host, port, users, session_hours, routes=[analysts.pattern()])
        endpoint = endpoints.Endpoint(
            pid=os.getpid(), host=socket.gethostname(), quack=address,
            dashboard=f"http://{host}:{port}/", token=token, db=os.path.abspath(db),
        )
        path = endpoints.write(endpoint)
        readers = f"you and the group {analyst_group}" if analyst_group else "you only"
        runs_on = "" if executor is None else (
            f"  Dask       jobs run on {executor.scheduler}, {rt.workers} at once; imports stage "
            f"in {executor.scratch}\n")
        echo(f"jobobs is serving {endpoint.db}\n"
             f"  dashboard  {endpoint.dashboard}\n"
             f"  Quack      {address} (its token is in {path}, readable by you only)\n"
             f"  analysts   POST {endpoint.dashboard}api/sql, read-only, with the token in "
             f"{token_file} (readable by {readers})\n"
             f"{runs_on}"
             f"{'' if retention is None else '  retention  ' + kept(retention, purge_every)}"
             f"  terminal   jobobs list --db {db}    jobobs sql 'FROM job_runs' --db {db}\n"
             f"  notebook   client = jobobs.connect({db!r}); client.jobs()\n"
             f"  DuckDB     ATTACH '{address}' AS jobs_server (TOKEN '<token>');  "
             f"see README, \"One server, many clients\"\n"
             "Stop it with Ctrl-C.")
        if not quack.loopback(host):
            echo(exposed(host, port, quack_port, signed_in=users is not None))
        if retention is not None:
            purging = Retention(rt.store, retention, every=purge_every, clock=rt.clock,
                                echo=echo)
            purging.start()
        if on_ready is not None:
            on_ready(rt)
        _run_until_signal(server)
    finally:
        if purging is not None:
            purging.stop()
        if server is not None:
            server.stop()
        if analysts is not None:
            analysts.close()

        def stop_quack() -> None:  # after the jobs, so Dask workers report their last batch
            if address is not None:
                with rt.store.lock:
                    quack.stop(rt.store.con, address)

        rt.close(before_store_closes=stop_quack)
        if endpoint is not None:
            endpoints.remove(endpoint)


def span(seconds: float) -> str:
    """A length of time as people say it: 30 days, 12 hours, 90 s."""
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds:g} s"


def kept(retention: timedelta, every: float) -> str:
    """The banner's line of a retention."""
    often = span(every)
    if every >= 60 and often.startswith("1 "):  # every hour, every 2 hours, every 1 s
        often = often[2:]
    return (f"jobs that ended over {span(retention.total_seconds())} ago are purged with "
            f"their journal lines and rejects, now and every {often}\n")


class Retention:
    """Purges the history older than ``age`` on a thread of its own: at once, then every
    ``every`` seconds. Each purge is ``jobobs purge``'s deletes, one statement at a time
    (each its own transaction, and repeatable) on a cursor of its own, outside the store's
    lock, so the runtime's writes go on meanwhile. What it deleted is logged and echoed;
    a purge that fails is logged and the next one tries again."""

    def __init__(self, store: Store, age: timedelta, *, every: float = PURGE_EVERY,
                 clock: Callable[[], float] = time.time,
                 echo: Callable[[str], None] = print):
        if age <= timedelta(0) or every <= 0:
            raise ValueError("a retention and its interval must be longer than 0")
        self.store, self.age, self.every, self.clock, self.echo = store, age, every, clock, echo
        self._stop = threading.Event()
        self._cursor: Any = None
        self._thread = threading.Thread(target=self._loop, name="jobobs-retention",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Purge no more; a purge under way is interrupted (what it deleted stays deleted)."""
        self._stop.set()
        cursor = self._cursor
        if cursor is not None:
            with contextlib.suppress(Exception):  # it may have ended and closed meanwhile
                cursor.interrupt()
        self._thread.join(timeout)

    def purge(self) -> dict[str, int]:
        """Delete what ended before now minus the retention; return the counts."""
        cutoff = ts(self.clock() - self.age.total_seconds())
        self._cursor = cursor = self.store.con.cursor()
        try:
            counts = {}
            for what, sql, params in purge_statements(cutoff):
                if self._stop.is_set():
                    break
                counts[what] = cursor.execute(sql, params).fetchone()[0]
        finally:
            self._cursor = None
            cursor.close()
        said = (f"jobobs: purged what ended before {cutoff:%Y-%m-%d %H:%M:%S} UTC (the "
                f"retention is {span(self.age.total_seconds())}): " + ", ".join(
                    f"{counts[what]} {name}" for what, name in PURGED.items() if what in counts))
        log.info(said)
        if any(counts.values()):
            self.echo(said)
        return counts

    def _loop(self) -> None:
        trouble = Repeated(log, "the retention's purge failed; the next one tries again")
        while not self._stop.is_set():
            try:
                self.purge()
            except Exception as error:
                if self._stop.is_set():  # interrupted as the server stops
                    return
                trouble.failed(error)
                self.echo(f"jobobs: the retention's purge failed: {one_line(error)}; the "
                          f"next one, in {span(self.every)}, tries again")
            else:
                trouble.recovered()
            self._stop.wait(self.every)


def exposed(host: str, port: int, quack_port: int, signed_in: bool) -> str:
    """The warning of a server that others can reach (``host`` is not a loopback one)."""
    warning = (f"WARNING: jobobs listens on {host}, beyond this machine. Quack (port "
               f"{quack_port}) and the dashboard (port {port}) speak plain HTTP: the token, "
               "passwords, queries and answers cross the network unencrypted. Keep them "
               "on a network you trust, or behind an SSH tunnel or a TLS proxy.")
    if signed_in:
        return warning
    line = "!" * 88
    return (f"{line}\n{warning}\nWARNING: no --users: the dashboard asks no one to sign in, "
            "and anyone who reaches it can submit, pause, cancel and start jobs. Give "
            f"--users (see jobobs passwd --help).\n{line}")


def _dashboard(rt: Any, host: str, port: int, users: dict[str, dict[str, str]] | None,
               session_hours: float = 12.0, routes: list[tuple] | None = None) -> Any:
    import panel as pn

    from jobobs.access.client import Client
    from jobobs.dashboard import app
    from jobobs.dashboard.signin import SignIn

    names = {host, "localhost", "127.0.0.1"}
    if host in WILDCARDS:  # every interface: the names others reach it by
        names |= {socket.gethostname(), socket.getfqdn()}
    origins = [f"{name}:{port}" for name in names]
    sign_in = None if users is None else SignIn(users, origins, hours=session_hours)

    def session() -> Any:
        if sign_in is None:
            return app(Client.embedded(rt))
        return sign_in.page(lambda user: app(Client.embedded(rt), roles=sign_in.roles,
                                             user=user))

    options: dict[str, Any] = {} if sign_in is None else {"auth_provider": sign_in}
    options["extra_patterns"] = list(routes or [])  # plain Tornado handlers, own auth
    try:
        server = pn.serve({"/": session}, port=port, address=host, show=False, start=False,
                          title="jobobs", websocket_origin=origins, verbose=False, **options)
    except OSError as error:
        raise JobobsError(f"cannot serve the dashboard on {host}:{port}: {error}") from None
    server.start()
    return server


def _quiet_disconnects(loop: Any) -> None:
    """A browser tab closed while the server wrote to it is not an error worth a traceback."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    def handler(asyncio_loop: Any, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), (StreamClosedError, WebSocketClosedError)):
            return
        asyncio_loop.default_exception_handler(context)

    loop.asyncio_loop.set_exception_handler(handler)


def _run_until_signal(server: Any) -> None:
    loop = server.io_loop
    _quiet_disconnects(loop)

    def stop(number: int, frame: object) -> None:
        loop.add_callback_from_signal(loop.stop)

    previous = {n: signal.signal(n, stop) for n in (signal.SIGTERM, signal.SIGINT)}
    try:
        loop.start()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
