"""One client for a jobobs database, wherever it lives.

``connect()`` finds the server that owns the database (its discovery file, or
``JOBOBS_URL``/``JOBOBS_TOKEN``) and talks to it through Quack; with no server it opens the
file itself, in a runtime of this process. Either way the same ``Client`` answers questions
as DataFrames (the query functions of ``jobobs.access.queries``), submits jobs and makes control
requests.

>>> client = jobobs.connect("jobs.duckdb")          # doctest: +SKIP
>>> job_id = client.submit_import("data/*.csv", table="customers")  # doctest: +SKIP
>>> client.wait(job_id).status                       # doctest: +SKIP
<Status.FINISHED: 'finished'>
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobobs.access import queries, submissions
from jobobs.access.analyst import Link
from jobobs.db import endpoint as endpoints
from jobobs.db import readonly
from jobobs.db.quack import Remote
from jobobs.db.store import purge_statements, ts
from jobobs.execution.handle import JobInfo, missing
from jobobs.execution.runtime import Runtime
from jobobs.execution.submissions import submit_spec
from jobobs.kinds import watermarks
from jobobs.kinds.rejects import export_rejects, replay_options, write_frame
from jobobs.model.definition import JobFunction
from jobobs.model.errors import IllegalRequest, JobDefinitionError, JobNotFound, JobobsError
from jobobs.model.requests import check_request, current_user
from jobobs.model.retries import Retry
from jobobs.model.states import ACTIVE, Status

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_DB = "jobobs.duckdb"


class _Local:
    """The database opened here, in a runtime this process owns (or was given)."""

    def __init__(self, runtime: Any, owned: bool):
        self.runtime, self.owned = runtime, owned
        self.where = runtime.store.path

    def con(self) -> Any:
        return self.runtime.store.reader()

    def submit(self, spec: dict[str, Any], by: str) -> int:
        handle = submit_spec(self.runtime, spec, actor=by)
        self.runtime.flush()
        return handle.id

    def request(self, job_id: int, command: str, by: str) -> int:
        return self.runtime.request(job_id, command, by=by)

    def schedule(self, request: dict[str, Any], by: str) -> tuple[str, int | None]:
        with self.runtime.ledger.lock:
            done = self.runtime.schedules.apply(request, by)
        self.runtime.flush()
        return done

    def ack(self, alert_id: int, by: str) -> str:
        return self.runtime.store.acknowledge(alert_id, by=by, now=self.runtime.clock())

    def purge(self, before: datetime) -> dict[str, int]:
        self.runtime.flush()
        return self.runtime.store.purge(before=before.replace(tzinfo=UTC).timestamp())

    def reset_watermark(self, name: str) -> dict[str, Any]:
        self.runtime.flush()  # the jobs' statuses as the runtime knows them
        with self.runtime.store.transaction() as con:
            return watermarks.reset(con, name)

    def close(self) -> None:
        if self.owned:
            self.runtime.close()


class _Served:
    """A jobobs server, through Quack: reads are whole queries run on the server; writes
    are rows in ``job_commands`` that its runtime carries out."""

    def __init__(self, address: str, token: str,
                 find: Callable[[], tuple[str, str] | None] | None = None):
        self.remote = Remote(address, token, find)
        self.where = address

    def con(self) -> Any:
        return self.remote

    def _insert(self, job_id: int | None, command: str, by: str, spec: str | None) -> int:
        (command_id,) = self.remote.execute(
            """INSERT INTO job_commands (id, job_id, command, requested_at, requested_by, spec)
               VALUES (nextval('command_id_seq'), ?, ?, ?, ?, ?) RETURNING id""",
            [job_id, command, ts(time.time()), by, spec],
        ).fetchone()
        return command_id

    def submit(self, spec: dict[str, Any], by: str) -> int:
        command_id = self._insert(None, "submit", by, submissions.encode(spec))
        outcome, job_id = acknowledged(self.remote, command_id, timeout=30.0)
        if job_id is None:
            raise JobDefinitionError(outcome.removeprefix("refused: "))
        return job_id

    def request(self, job_id: int, command: str, by: str) -> int:
        check_request(job_id, command, _status(self.remote, job_id))
        return self._insert(job_id, command, by, None)

    def schedule(self, request: dict[str, Any], by: str) -> tuple[str, int | None]:
        command_id = self._insert(None, "schedule", by, submissions.encode(request))
        return acknowledged(self.remote, command_id, timeout=30.0)

    def ack(self, alert_id: int, by: str) -> str:
        command_id = self._insert(None, "ack", by, str(alert_id))
        return acknowledged(self.remote, command_id, timeout=30.0)[0]

    def purge(self, before: datetime) -> dict[str, int]:
        """The same deletes as a local purge, one statement at a time (each repeatable)."""
        return {what: self.remote.execute(sql, params).fetchone()[0]
                for what, sql, params in purge_statements(before)}

    def reset_watermark(self, name: str) -> dict[str, Any]:
        return watermarks.reset(self.remote, name)

    def close(self) -> None:
        self.remote.close()


class _Analyst:
    """A jobobs server, with the analyst token: reads only (``jobobs.access.analyst``)."""

    def __init__(self, url: str, token: str):
        self.link = Link(url, token)
        self.where = self.link.address

    def con(self) -> Any:
        return self.link

    def _refuse(self, what: str) -> Any:
        raise JobobsError(f"an analyst token only reads; it cannot {what}")

    def submit(self, spec: dict[str, Any], by: str) -> int:
        return self._refuse("submit jobs")

    def request(self, job_id: int, command: str, by: str) -> int:
        return self._refuse(f"{command} jobs")

    def schedule(self, request: dict[str, Any], by: str) -> tuple[str, int | None]:
        return self._refuse(f"{request['verb']} schedules")

    def ack(self, alert_id: int, by: str) -> str:
        return self._refuse("acknowledge alerts")

    def purge(self, before: datetime) -> dict[str, int]:
        return self._refuse("purge the history")

    def reset_watermark(self, name: str) -> dict[str, Any]:
        return self._refuse("reset watermarks")

    def close(self) -> None:
        self.link.close()


def _status(con: Any, job_id: int) -> str:
    row = con.execute("SELECT status FROM jobs WHERE id = ?", [job_id]).fetchone()
    if row is None:
        raise JobNotFound(job_id)
    return row[0]


def acknowledged(con: Any, command_id: int, timeout: float) -> tuple[str, int | None]:
    """Wait until the runtime has carried out a request; return (outcome, job id)."""
    deadline = time.monotonic() + timeout
    while True:
        row = con.execute(
            "SELECT handled_at, outcome, job_id FROM job_commands WHERE id = ?", [command_id]
        ).fetchone()
        if row is not None and row[0] is not None:
            return row[1], row[2]
        if time.monotonic() >= deadline:
            raise TimeoutError(f"request {command_id} was not carried out within {timeout} s; "
                               "is the runtime that owns the database running?")
        time.sleep(0.02)


class Client:
    """Questions, submissions and control requests for one jobobs database."""

    def __init__(self, backend: _Local | _Served | _Analyst, *, actor: str | None = None):
        self._backend = backend
        self.actor = actor or current_user()

    @classmethod
    def embedded(cls, runtime: Any, *, actor: str | None = None) -> Client:
        """A client of a runtime running in this process (a notebook's, a server's)."""
        return cls(_Local(runtime, owned=False), actor=actor)

    @property
    def where(self) -> str:
        """The server's address, or the database file."""
        return self._backend.where

    @property
    def served(self) -> bool:
        return not isinstance(self._backend, _Local)

    def connection(self) -> Any:
        """What the query functions take: a cursor here, or the server's connection."""
        return self._backend.con()

    # -- questions ---------------------------------------------------------------------

    def jobs(self, **filters: Any) -> pd.DataFrame:
        """Jobs newest first; filters are ``queries.jobs``' (status, kind, name, since,
        limit, offset)."""
        return queries.jobs(self.connection(), **filters)

    def job(self, job_id: int) -> pd.DataFrame:
        """One job's row, with its spec (JobNotFound if there is none)."""
        frame = queries.job(self.connection(), job_id)
        if frame.empty:
            raise JobNotFound(job_id)
        return frame

    def info(self, job_id: int) -> JobInfo:
        """One job's row as a dict (its status a ``Status``)."""
        return _info(self.job(job_id))

    def journal(self, job_id: int, after: int | None = None, level: str | None = None,
                limit: int = 1000) -> pd.DataFrame:
        return queries.journal(self.connection(), job_id, after=after or 0, level=level,
                               limit=limit)

    def rejects(self, job_id: int, limit: int | None = None) -> pd.DataFrame:
        return queries.rejects(self.connection(), job_id, limit=limit)

    def transitions(self, job_id: int) -> pd.DataFrame:
        return queries.transitions(self.connection(), job_id)

    def commands(self, job_id: int) -> pd.DataFrame:
        return queries.commands(self.connection(), job_id)

    def status_counts(self) -> pd.DataFrame:
        return queries.status_counts(self.connection())

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Answer one read-only query (SELECT, FROM, WITH, DESCRIBE, EXPLAIN...) over the
        history; ``?`` placeholders take ``params``. QueryRefused for anything else (see
        ``jobobs.db.readonly``)."""
        checked = readonly.check(query)
        return self.connection().execute(checked, params or []).df()

    # -- submissions ---------------------------------------------------------------------

    def submit(self, function: str | JobFunction, *args: Any, name: str | None = None,
               **kwargs: Any) -> int:
        """Submit a Python job (``module:function`` or a ``@job``); return its id."""
        return self._backend.submit(submissions.python_spec(function, *args, name=name,
                                                            **kwargs), self.actor)

    def submit_import(self, source: str | list[str], table: str, *, name: str | None = None,
                      **options: Any) -> int:
        """Submit an import (options as ``ImportOptions``); return its id."""
        return self._backend.submit(submissions.import_spec(source, table, name=name,
                                                            **options), self.actor)

    def submit_export(self, to: str, *, name: str | None = None, **options: Any) -> int:
        """Submit an export of ``query=`` or ``table=`` to a file; return its id."""
        return self._backend.submit(submissions.export_spec(to, name=name, **options),
                                    self.actor)

    def replay(self, job_id: int, corrected: str, *, name: str | None = None) -> int:
        """Import a corrected rejects file (from ``rejects --to``) with the options of import
        ``job_id``, as a new job whose parent is that one; return its id."""
        row = self.job(job_id).iloc[0].to_dict()
        options = replay_options(row, corrected, name=name)
        return self.submit_import(options.pop("source"), options.pop("table"), **options)

    def export_rejects(self, job_id: int, path: str) -> int:
        """Write a job's rejects to a CSV file to fix and replay; return how many. Through
        a server the rows come over and the file is written here, by this process."""
        self.job(job_id)
        if self.served:
            return write_frame(queries.rejects(self.connection(), job_id), path)
        return export_rejects(self.connection(), job_id, os.path.abspath(path))

    # -- differential exports' watermarks ------------------------------------------------

    def watermarks(self) -> pd.DataFrame:
        """Every differential export's watermark: column, value, the rows remembered at
        it, the export that moved it, and the last file of that name."""
        return watermarks.listing(self.connection())

    def watermark(self, name: str) -> dict[str, Any]:
        """One watermark as a dict (JobobsError if there is none)."""
        return watermarks.show(self.connection(), name)

    def reset_watermark(self, name: str) -> dict[str, Any]:
        """Forget a watermark, so the next run of the export sends every row; return it
        as it was. Refused while an export of that name is queued or running, and with an
        analyst token."""
        return self._backend.reset_watermark(name)

    # -- control ---------------------------------------------------------------------------

    def request(self, job_id: int, command: str, *, by: str | None = None,
                timeout: float = 10.0) -> str:
        """Make a control request and wait until the runtime has carried it out; return
        the status it led to. IllegalRequest when the job's status refuses it."""
        command_id = self._backend.request(job_id, command, by or self.actor)
        outcome, _ = acknowledged(self.connection(), command_id, timeout)
        if outcome.startswith("ignored: the job is "):
            raise IllegalRequest(job_id, command, outcome.removeprefix("ignored: the job is "))
        if outcome.startswith("ignored"):
            raise JobobsError(f"job {job_id}: cannot {command}: "
                              f"{outcome.removeprefix('ignored: ')}")
        return outcome

    def start(self, job_id: int, **how: Any) -> str:
        return self.request(job_id, "start", **how)

    def pause(self, job_id: int, **how: Any) -> str:
        return self.request(job_id, "pause", **how)

    def resume(self, job_id: int, **how: Any) -> str:
        return self.request(job_id, "resume", **how)

    def cancel(self, job_id: int, **how: Any) -> str:
        return self.request(job_id, "cancel", **how)

    def retry(self, job_id: int, **how: Any) -> str:
        """Run a failed job again from its last checkpoint (its automatic retries anew)."""
        return self.request(job_id, "retry", **how)

    def retry_failed(self, error: str, *, since: datetime | None = None,
                     until: datetime | None = None, exact: bool = False,
                     **how: Any) -> list[int]:
        """Retry every failed job in one error group, as ``analytics.failures`` lists them
        for the jobs that failed from ``since`` to ``until``: ``error`` is the group's
        error, or (unless ``exact``) a part of it that names one group; return their
        ids."""
        from jobobs.access.analytics import failed_in_group  # loads pandas

        ids = failed_in_group(self.connection(), error, since, until, exact=exact)
        for job_id in ids:
            self.request(job_id, "retry", **how)
        return ids

    # -- schedules ---------------------------------------------------------------------------

    def schedule(self, name: str, job: dict[str, Any], *, cron: str | None = None,
                 every: str | float | None = None, tz: str = "UTC", overlap: str = "skip",
                 catch_up: str = "one", retry: Retry | int | dict[str, Any] | None = None,
                 enabled: bool = True, by: str | None = None) -> dict[str, Any]:
        """Add a schedule that submits ``job`` (a spec: ``jobobs.import_spec(...)``,
        ``export_spec`` or ``python_spec``) on a cron expression in ``tz``, or ``every``
        interval (``30s``, ``5m``, ``1h``, or seconds); return it as ``schedule_info`` does.
        Its runs never overlap (``overlap="queue"``: a tick waits for the last run); after
        downtime the missed ticks run once (``catch_up="none"``, ``"all"``). ``retry``
        retries each run's failures from its last checkpoint."""
        request = submissions.schedule_request(
            name, job, cron=cron, every=every, tz=tz, overlap=overlap, catch_up=catch_up,
            retry=retry, enabled=enabled)
        self._schedule(request, by)
        return self.schedule_info(name)

    def schedules(self) -> pd.DataFrame:
        """Every schedule: when it runs next, its last run and that job's status."""
        return queries.schedules(self.connection())

    def schedule_info(self, name: str) -> dict[str, Any]:
        """One schedule as a dict (JobobsError if there is none)."""
        frame = queries.schedules(self.connection(), name=name)
        if frame.empty:
            raise JobobsError(f"there is no schedule named {name!r}")
        return {k: (None if missing(v) else v) for k, v in frame.iloc[0].to_dict().items()}

    def schedule_log(self, name: str, limit: int = 100) -> pd.DataFrame:
        """What a schedule did, newest first: runs made, ticks skipped or missed, changes."""
        return queries.schedule_log(self.connection(), name, limit=limit)

    def pause_schedule(self, name: str, by: str | None = None) -> str:
        return self._schedule(submissions.schedule_request(name, verb="pause"), by)[0]

    def resume_schedule(self, name: str, by: str | None = None) -> str:
        return self._schedule(submissions.schedule_request(name, verb="resume"), by)[0]

    def remove_schedule(self, name: str, by: str | None = None) -> str:
        return self._schedule(submissions.schedule_request(name, verb="remove"), by)[0]

    def run_schedule(self, name: str, by: str | None = None) -> int | None:
        """Run a schedule's job now (its next tick stays when it was); return the job's id,
        or None when it waits for the last run to end (``overlap="queue"``)."""
        return self._schedule(submissions.schedule_request(name, verb="run"), by)[1]

    def _schedule(self, request: dict[str, Any], by: str | None) -> tuple[str, int | None]:
        outcome, job_id = self._backend.schedule(request, by or self.actor)
        if outcome.startswith("refused: "):
            raise JobobsError(outcome.removeprefix("refused: "))
        if outcome.startswith("ignored: "):
            raise JobobsError(f"schedule {request['name']}: "
                              f"{outcome.removeprefix('ignored: ')}")
        return outcome, job_id

    # -- alerts --------------------------------------------------------------------------------

    def alerts(self, *, open_only: bool = False, job_id: int | None = None,
               limit: int = 200) -> pd.DataFrame:
        """Alerts the server's rules opened, newest first (``open_only``: not resolved)."""
        return queries.alerts(self.connection(), open_only=open_only, job_id=job_id,
                              limit=limit)

    def ack(self, alert_id: int, *, by: str | None = None) -> str:
        """Acknowledge an alert (it stays open until its condition ends); return
        ``"acknowledged"``, or why not (``ignored: ...``); JobobsError if there is none."""
        if isinstance(alert_id, bool) or not isinstance(alert_id, int) or not (
                0 < alert_id < 2 ** 63):
            raise JobobsError(f"an alert's id is a positive number, not {alert_id!r}")
        outcome = self._backend.ack(alert_id, by or self.actor)
        if outcome.startswith("refused: "):
            raise JobobsError(outcome.removeprefix("refused: "))
        return outcome

    def wait(self, job_id: int, timeout: float | None = None, progress: bool = True,
             interval: float = 0.2) -> JobInfo:
        """Wait until the job stops (finished, failed, paused...) with no request pending;
        show a progress bar (tqdm: a widget in notebooks, a bar in terminals)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _bar(job_id) if progress else None
        try:
            while True:
                row, pending = _snapshot(self.connection(), job_id)
                if bar is not None:
                    _show(bar, row)
                if Status(row["status"]) not in ACTIVE and not pending:
                    return self.info(job_id)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"job {job_id} is still {row['status']} after "
                                       f"{timeout} s")
                time.sleep(interval)
        finally:
            if bar is not None:
                bar.close()

    def purge(self, older_than: timedelta) -> dict[str, int]:
        """Delete journal lines, rejects and ended jobs older than ``older_than`` (jobs that
        can still run keep theirs); return how many rows of each went."""
        now = datetime.now(UTC).replace(tzinfo=None)
        # an age beyond the calendar's first day: nothing is that old
        before = now - min(older_than, now - datetime.min)
        return self._backend.purge(before)

    closed = False  # until close(): a dashboard over a closed client stops refreshing

    def close(self) -> None:
        self.closed = True
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<jobobs.Client {'server' if self.served else 'file'} {self.where}>"


def _info(frame: pd.DataFrame) -> JobInfo:
    row = {k: (None if missing(v) else v) for k, v in frame.iloc[0].to_dict().items()}
    return JobInfo(row)


def _snapshot(con: Any, job_id: int) -> tuple[dict[str, Any], int]:
    row = con.execute(
        """SELECT status, progress_current, progress_total, processed, rejected,
                  (SELECT count(*) FROM job_commands c
                   WHERE c.job_id = j.id AND c.handled_at IS NULL) AS pending
           FROM jobs j WHERE id = ?""",
        [job_id],
    ).fetchone()
    if row is None:
        raise JobNotFound(job_id)
    keys = ("status", "progress_current", "progress_total", "processed", "rejected")
    return dict(zip(keys, row[:5])), row[5]


def _bar(job_id: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=None, desc=f"job {job_id}", unit="", leave=True)


def _show(bar: Any, row: dict[str, Any]) -> None:
    total, current = row["progress_total"], row["progress_current"]
    if total and bar.total != total:
        bar.total = total
    if current is not None:
        bar.n = current
    bar.set_postfix_str(f"{Status(row['status']).label}, {row['rejected']} rejected",
                        refresh=False)
    bar.refresh()


def connect(db: str | None = None, *, url: str | None = None, token: str | None = None,
            analyst_token: str | None = None, workers: int = 4,
            actor: str | None = None) -> Client:
    """A client for ``db`` (default ``$JOBOBS_DB``, then ``./jobobs.duckdb``): through its
    server when one runs (``url``/``$JOBOBS_URL`` names one), else on the file. With an
    analyst token (``$JOBOBS_ANALYST_TOKEN``) and no server token, ``url`` is the
    dashboard's address and the client only reads."""
    url = url or os.environ.get("JOBOBS_URL")
    token = token or os.environ.get("JOBOBS_TOKEN")
    analyst_token = analyst_token or os.environ.get("JOBOBS_ANALYST_TOKEN")
    if analyst_token and not token:
        if not url:
            raise JobobsError("an analyst token needs the server's dashboard address "
                              "(JOBOBS_URL=http://HOST:PORT/)")
        return Client(_Analyst(url, analyst_token), actor=actor)
    if url:
        if not token:
            raise JobobsError("a server address needs its token (JOBOBS_TOKEN)")
        return Client(_Served(_address(url), token), actor=actor)
    db = db or os.environ.get("JOBOBS_DB") or DEFAULT_DB
    server = endpoints.read(db)
    if server is not None:
        def find() -> tuple[str, str] | None:  # after a restart: the new server's
            again = endpoints.read(db)
            return (again.quack, again.token) if again is not None else None

        return Client(_Served(server.quack, server.token, find), actor=actor)
    return Client(_Local(Runtime(db, workers=workers), owned=True), actor=actor)


def _address(url: str) -> str:
    """``quack:HOST:PORT``, from that or ``HOST:PORT`` or ``http://HOST:PORT``."""
    text = url.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
    return text if text.startswith("quack:") else f"quack:{text}"


__all__ = ["Client", "connect"]
