"""``jobobs serve``: one process owns the database and serves it.

It runs the runtime, the Panel dashboard and a Quack endpoint for other processes (the
CLI, notebooks, the DuckDB shell, workers), both bound to 127.0.0.1 unless told
otherwise, and writes the discovery file clients find it by. SIGTERM and SIGINT stop it
gracefully: running jobs reach ``shutdown`` at a safe point, the endpoints close, the
discovery file goes. With a retention, it purges the history older than it every hour.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from jobobs.db import endpoint as endpoints
from jobobs.db import files, quack
from jobobs.execution.retention import PURGE_EVERY, span
from jobobs.model.errors import JobobsError

WILDCARDS = ("0.0.0.0", "::", "")  # hosts that mean every interface


def serve(db: str, *, host: str = "127.0.0.1", port: int = 5006, quack_port: int = 9494,
          workers: int | None = None, on_ready: Callable[[Any], None] | None = None,
          echo: Callable[[str], None] = print,
          users: dict[str, dict[str, str]] | None = None, session_hours: float = 12.0,
          export_dirs: list[str] | None = None, stall_timeout: float | None = 600.0,
          executor: Any = None, analyst_token_file: str | None = None,
          analyst_group: str | None = None, retention: timedelta | None = None,
          purge_every: float = PURGE_EVERY, alerts: Sequence[Any] | None = None,
          alert_every: float = 5.0) -> None:
    """Serve ``db`` until SIGTERM or SIGINT; with ``users``, the dashboard asks people to
    sign in (``jobobs.access.users.read``), for sessions of ``session_hours``, and only operators
    may act. ``on_ready(runtime)`` runs once all is served
    (the demo submits its jobs there). Exports may write under ``export_dirs`` only
    (default: the current folder). A job with no sign of life for ``stall_timeout``
    seconds is failed and its worker replaced. With ``executor`` (a
    ``jobobs.dask.executor.DaskExecutor``) jobs run on its Dask cluster, ``workers`` at once
    (None: as many as the cluster has threads), and report back through Quack. Analysts
    read through ``POST /api/sql`` with the token in ``analyst_token_file`` (default
    ``DB.analyst-token``; made when missing, readable by ``analyst_group`` if given);
    Prometheus scrapes ``GET /metrics`` with the same token (``jobobs.access.metrics``).
    With ``retention``, jobs that ended longer ago than it are purged with their rows
    (``jobobs purge``'s deletes) once served and then every ``purge_every`` seconds.
    ``alerts`` are the alert rules (``jobobs.access.alertrules``; default: failed, shut
    down and slower than usual jobs), evaluated every ``alert_every`` seconds; their
    targets, checked already, are sent each alert (``jobobs.access.notify``)."""
    from jobobs.access import alerting, alertrules, analyst, metrics
    from jobobs.execution.runtime import Runtime

    files.owner_only()  # the database, its WAL, the scratch folder: the owner's only
    try:
        running = endpoints.read(db)
        if running is not None:
            raise JobobsError(endpoints.already_running(running))
        rt = Runtime(db, workers=workers, handle_signals=False,
                     export_dirs=export_dirs or [os.getcwd()], stall_timeout=stall_timeout,
                     executor=executor, retention=retention, purge_every=purge_every,
                     on_purge=echo, run_schedules=True)
        rt.role = "the server"
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    token = secrets.token_urlsafe(32)
    address = server = endpoint = analysts = scrapes = watch = notifier = None
    rules = list(alertrules.DEFAULT_RULES if alerts is None else alerts)
    try:
        token_file = analyst_token_file or analyst.token_path(db)
        analysts = analyst.Route(rt.store, analyst.load_token(token_file, analyst_group))
        scrapes = metrics.Route(metrics.Metrics(rt.store, rt.ledger, rt.clock),
                                analysts.authorized)  # the analyst token reads them
        with rt.store.lock:
            address = quack.serve(rt.store.con, host, quack_port, token)
        if executor is not None:  # workers elsewhere reach a wildcard address by name
            reachable = socket.getfqdn() if host in WILDCARDS else host
            executor.bind(quack.uri(reachable, quack_port), token,
                          scratch=os.path.abspath(db) + ".scratch")
        server = _dashboard(rt, host, port, users, session_hours,
                            routes=[analysts.pattern(), scrapes.pattern()])
        endpoint = endpoints.Endpoint(
            pid=os.getpid(), host=socket.gethostname(), quack=address,
            dashboard=f"http://{host}:{port}/", token=token, db=os.path.abspath(db),
        )
        if any(rule.notify for rule in rules):
            public = socket.getfqdn() if host in WILDCARDS else host  # links others open
            notifier = notify_from(rt, f"http://{public}:{port}/", hide=(token, endpoint.db))
        watch = alerting.Watch(rt.store, rules, clock=rt.clock, every=alert_every,
                               send=None if notifier is None else notifier.send).start()
        readers = f"you and the group {analyst_group}" if analyst_group else "you only"
        runs_on = "" if executor is None else (
            f"  Dask       jobs run on {executor.scheduler}, {rt.workers} at once; imports stage "
            f"in {executor.scratch}\n")
        echo(f"jobobs is serving {endpoint.db}\n"
             f"  dashboard  {endpoint.dashboard}\n"
             f"  Quack      {address} (its token is in {endpoints.path_for(db)}, readable by "
             "you only)\n"
             f"  analysts   POST {endpoint.dashboard}api/sql, read-only, with the token in "
             f"{token_file} (readable by {readers})\n"
             f"  metrics    GET {endpoint.dashboard}metrics for Prometheus, with that token\n"
             f"{runs_on}"
             f"  alerts     {watching(rules)}\n"
             f"{'' if retention is None else '  retention  ' + kept(retention, purge_every)}"
             f"  terminal   jobobs list --db {db}    jobobs sql 'FROM job_runs' --db {db}\n"
             f"  notebook   client = jobobs.connect({db!r}); client.jobs()\n"
             f"  DuckDB     ATTACH '{address}' AS jobs_server (TOKEN '<token>');  "
             f"see README, \"One server, many clients\"\n"
             "Stop it with Ctrl-C.")
        if not quack.loopback(host):
            echo(exposed(host, port, quack_port, signed_in=users is not None))

        def announce() -> None:  # last: a client that finds the endpoint finds it all served
            endpoints.write(endpoint)
            if on_ready is not None:
                on_ready(rt)

        _run_until_signal(server, announce)
    finally:
        if server is not None:
            server.stop()
        if watch is not None:
            watch.close()
        if notifier is not None:  # what is under way is tried; the rest recorded dropped
            notifier.close(timeout=10)
        if analysts is not None:
            analysts.close()
        if scrapes is not None:
            scrapes.close()

        def stop_quack() -> None:  # after the jobs, so Dask workers report their last batch
            if address is not None:
                with rt.store.lock:
                    quack.stop(rt.store.con, address)

        rt.close(before_store_closes=stop_quack)
        if endpoint is not None:
            endpoints.remove(endpoint)


def notify_from(rt: Any, dashboard: str, hide: Sequence[str]) -> Any:
    """The server's notifier: each outcome is a row of ``notifications``."""
    from jobobs.access.notify import Notifier

    def record(row: dict[str, Any]) -> None:
        with rt.store.transaction() as con:
            (number,) = con.execute("SELECT coalesce(max(id), 0) + 1 FROM notifications"
                                    ).fetchone()
            con.execute(f"INSERT INTO notifications ({', '.join(['id', *row])}) "
                        f"VALUES ({', '.join('?' * (len(row) + 1))})", [number, *row.values()])

    return Notifier(record, dashboard_url=dashboard, hide=hide)


def watching(rules: Sequence[Any]) -> str:
    """The banner's line of the alert rules."""
    targets = {url for rule in rules for url in rule.notify}
    told = (f"sent to {len(targets)} target{'s' if len(targets) != 1 else ''}" if targets
            else "shown in the dashboard and `jobobs alerts` (no --notify target)")
    names = ", ".join(rule.name for rule in rules[:5]) + (", ..." if len(rules) > 5 else "")
    return f"{len(rules)} rule{'s' if len(rules) != 1 else ''} ({names}); {told}"


def kept(retention: timedelta, every: float) -> str:
    """The banner's line of a retention."""
    often = span(every)
    if every >= 60 and often.startswith("1 "):  # every hour, every 2 hours, every 1 s
        often = often[2:]
    return (f"jobs that ended over {span(retention.total_seconds())} ago are purged with "
            f"their journal lines and rejects, now and every {often}\n")


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
    from bokeh.settings import settings

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
    # Bokeh's checks of a new session's models only log warnings (tabs built when opened
    # are empty layouts, by design), and take ~40 ms before each page is sent.
    settings.perform_document_validation.set_value(False)
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


def _run_until_signal(server: Any, announce: Callable[[], None]) -> None:
    """Handle SIGTERM and SIGINT, then ``announce()`` the server and serve until one comes."""
    loop = server.io_loop
    _quiet_disconnects(loop)

    def stop(number: int, frame: object) -> None:
        loop.add_callback_from_signal(loop.stop)

    previous = {n: signal.signal(n, stop) for n in (signal.SIGTERM, signal.SIGINT)}
    try:
        announce()
        loop.start()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
