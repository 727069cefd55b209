"""The job database file and the runtime's records in it: opening and migrating it, writing
the runtime's batches (job rows, transitions, journal lines, rejects, handled commands) in
one transaction, recording control requests, reading rows back, and retention.

It is not the only writer. On the same file, through ``Store.transaction`` or a cursor of
their own: the job kinds write their data (staging and target tables, rejects in bulk,
exports' runs and watermarks; ``steps`` describes those that commit with a checkpoint); the
runtime applies and deletes the ``job_reports`` of jobs on Dask workers. Through Quack,
from other processes: a client of a server records submissions and requests in
``job_commands``; a job on a Dask worker appends its ``job_reports``, and writes its
import's inbox table and its export's runs.

Writes run under one lock on one connection; readers use a cursor per thread
(``Store.reader``). Rows arrive with times as epoch seconds and are stored as naive UTC
``TIMESTAMP``s. A few rows go in as one ``VALUES`` statement, many as one Arrow scan: on
DuckDB an Arrow scan costs a few milliseconds however small, a bound row much less.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from jobobs.db import schema
from jobobs.db.endpoint import in_use
from jobobs.db.schema import (
    JOB_COLUMNS,
    SCHEDULE_COLUMNS,
    SCHEDULE_LOG_COLUMNS,
    TRANSITION_COLUMNS,
)
from jobobs.model.errors import JobNotFound, JobobsError, RuntimeClosed
from jobobs.model.rows import JOURNAL_COLUMNS, REJECT_COLUMNS
from jobobs.model.states import ACTIVE, TERMINAL

SMALL_BATCH = 16
JOB_TIMES = frozenset(c for c in JOB_COLUMNS if c.endswith("_at"))
SCHEDULE_TIMES = frozenset(c for c in SCHEDULE_COLUMNS if c.endswith("_at"))
_EPOCH = datetime(1970, 1, 1)


def ts(epoch: float | None) -> datetime | None:
    """Epoch seconds to the naive-UTC datetime stored in TIMESTAMP columns."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def epoch(value: datetime | None) -> float | None:
    """A stored naive-UTC datetime back to epoch seconds."""
    return None if value is None else (value - _EPOCH).total_seconds()


def _arrow(columns: Sequence[str], rows: Sequence[Sequence], times: frozenset[str]) -> pa.Table:
    data = {}
    for name, values in zip(columns, zip(*rows)):
        if name in times:
            data[name] = pa.array([None if v is None else int(v * 1e6) for v in values],
                                  pa.timestamp("us"))
        else:
            data[name] = pa.array(values)
    return pa.table(data)


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str],
            rows: Sequence[Sequence], times: frozenset[str], verb: str = "INSERT") -> None:
    """Insert rows in one statement."""
    names = ", ".join(columns)
    if len(rows) <= SMALL_BATCH:
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        timed = [name in times for name in columns]
        params = [ts(v) if timed[i] else v for row in rows for i, v in enumerate(row)]
        con.execute(f"{verb} INTO {table} ({names}) VALUES {', '.join([marks] * len(rows))}",
                    params)
    else:
        batch = _arrow(columns, rows, times)  # noqa: F841 - read by the query below
        con.execute(f"{verb} INTO {table} ({names}) SELECT {names} FROM batch")


def _update_jobs(con: duckdb.DuckDBPyConnection, updates: Sequence[dict[str, Any]]) -> None:
    """Set changed columns of existing job rows; each dict has ``id`` and the columns."""
    if len(updates) <= 2:
        for values in updates:
            columns = [c for c in values if c != "id"]
            con.execute(
                f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                [ts(values[c]) if c in JOB_TIMES else values[c] for c in columns]
                + [values["id"]],
            )
        return
    columns = sorted({c for values in updates for c in values} - {"id"})
    # A job missing a column in this batch keeps its stored value.
    rows = [[values["id"], *(values.get(c) for c in columns),
             *(c in values for c in columns)] for values in updates]
    flags = [f"set_{c}" for c in columns]
    batch = _arrow(["id", *columns, *flags], rows, JOB_TIMES)  # noqa: F841
    sets = ", ".join(f"{c} = CASE WHEN b.set_{c} THEN b.{c} ELSE jobs.{c} END" for c in columns)
    con.execute(f"UPDATE jobs SET {sets} FROM batch b WHERE jobs.id = b.id")


def _write_batch(
    con: duckdb.DuckDBPyConnection, *, new_jobs: Sequence[Sequence] = (),
    updates: Sequence[dict[str, Any]] = (), transitions: Sequence[Sequence] = (),
    lines: Sequence[Sequence] = (), rejects: Sequence[Sequence] = (),
    handled: Sequence[tuple[int, str, float, int | None]] = (),
    rewinds: Sequence[tuple[int, int]] = (),
    schedules: Sequence[tuple[str, Any]] = (), schedule_lines: Sequence[Sequence] = (),
    atomic: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> None:
    """The runtime's batch: new job rows, changed columns, transitions, journal lines,
    rejects, handled commands (with their outcome), rewound rejects, and schedules'
    rows (``("put", row)`` in SCHEDULE_COLUMNS' order, or ``("drop", name)``) and log
    lines."""
    for job_id, keep in rewinds:  # before atomic: it may add rejects past ``keep``
        con.execute("DELETE FROM rejects WHERE job_id = ? AND seq > ?", [job_id, keep])
    if atomic is not None:
        atomic(con)
    if new_jobs:
        _insert(con, "jobs", JOB_COLUMNS, new_jobs, JOB_TIMES)
    if updates:
        _update_jobs(con, updates)
    if transitions:
        _insert(con, "job_transitions", TRANSITION_COLUMNS, transitions,
                frozenset({"changed_at"}))
    if lines:
        _insert(con, "journal", JOURNAL_COLUMNS, lines, frozenset({"logged_at"}))
    if rejects:
        _insert(con, "rejects", REJECT_COLUMNS, rejects, frozenset({"rejected_at"}))
    if len(handled) <= 2:
        for command_id, outcome, at, job_id in handled:
            con.execute(
                """UPDATE job_commands SET handled_at = ?, outcome = ?,
                   job_id = coalesce(?, job_id) WHERE id = ?""",
                [ts(at), outcome, job_id, command_id],
            )
    elif handled:  # one statement: a flood of submissions is handled a hundred at a time
        batch = _arrow(("id", "outcome", "handled_at", "job_id"),  # noqa: F841
                       [(c, o, at, j) for c, o, at, j in handled], frozenset({"handled_at"}))
        con.execute("""UPDATE job_commands SET handled_at = b.handled_at, outcome = b.outcome,
                       job_id = coalesce(b.job_id, job_commands.job_id)
                       FROM batch b WHERE job_commands.id = b.id""")
    for what, row in schedules:  # a few rows, in the order they changed
        if what == "drop":
            con.execute("DELETE FROM schedules WHERE name = ?", [row])
        else:
            _insert(con, "schedules", SCHEDULE_COLUMNS, [row], SCHEDULE_TIMES,
                    verb="INSERT OR REPLACE")
    if schedule_lines:
        _insert(con, "schedule_log", SCHEDULE_LOG_COLUMNS, schedule_lines,
                frozenset({"logged_at"}))


def _open(path: str) -> duckdb.DuckDBPyConnection:
    """Connect to the file; a lock another process holds is one line naming it (its server,
    and how to connect instead)."""
    try:
        con = duckdb.connect(path)
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        raise JobobsError(in_use(path, str(error))) from None
    # now() and the like in UTC, as every stored time is, for every cursor and Quack client
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    return con


class Store:
    """A jobobs database file, opened and migrated."""

    def __init__(self, path: str = ":memory:"):
        self.path = path
        self.closed = False
        self.con = _open(path)
        self.lock = threading.RLock()
        self._local = threading.local()
        with self.lock:
            schema.migrate(self.con)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.con.close()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread, for read-only queries."""
        if self.closed:
            raise RuntimeClosed()
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.con.cursor()
        return cursor

    @contextmanager
    def transaction(self):
        with self.lock:
            if self.closed:
                raise RuntimeClosed()
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    # -- the batch the runtime writes --------------------------------------------

    def write(self, *, atomic: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
              **batch: Sequence) -> None:
        """Write one batch (see ``_write_batch``) in one transaction, so a job's status and
        its history, and a checkpoint and the rejects before it, are never seen apart.
        ``atomic`` runs first in the same transaction: a job's own writes (rows into a
        target table) commit with the checkpoint that records them, or not at all."""
        if not (atomic or any(batch.values())):
            return
        with self.transaction() as con:
            _write_batch(con, atomic=atomic, **batch)

    def probe(self, **batch: Sequence) -> Exception | None:
        """Write a batch and roll it back: the error it raises, or None if it could be
        written (how the ledger finds the rows a batch cannot store)."""
        with self.lock:
            if self.closed:
                raise RuntimeClosed()
            self.con.execute("BEGIN TRANSACTION")
            try:
                _write_batch(self.con, **batch)
            except Exception as error:
                return error
            finally:
                self.con.execute("ROLLBACK")
        return None

    # -- reads -------------------------------------------------------------------

    def job(self, job_id: int) -> dict[str, Any]:
        """The job's stored row (times as epoch seconds); JobNotFound if there is none."""
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", [job_id])
        if not rows:
            raise JobNotFound(job_id)
        return rows[0]

    def active_jobs(self) -> list[dict[str, Any]]:
        return self._rows(
            f"SELECT * FROM jobs WHERE status IN ({', '.join('?' * len(ACTIVE))}) ORDER BY id",
            [s.value for s in ACTIVE],
        )

    def _rows(self, sql: str, params: list) -> list[dict[str, Any]]:
        cursor = self.reader()
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [{n: epoch(v) if n in JOB_TIMES else v for n, v in zip(names, row)}
                for row in cursor.fetchall()]

    def retries_waiting(self) -> list[tuple[int, float]]:
        """Queued jobs waiting for a retry: (id, when, as epoch seconds)."""
        return [(job_id, epoch(at)) for job_id, at in self.reader().execute(
            "SELECT id, retry_at FROM jobs WHERE status = 'queued' AND retry_at IS NOT NULL"
        ).fetchall()]

    def max_id(self) -> int:
        """The highest job id given: of the jobs, or of a purged one an alert still names
        (a new job never takes the id of one an alert is about)."""
        return self.reader().execute(
            """SELECT greatest((SELECT coalesce(max(id), 0) FROM jobs),
                               (SELECT coalesce(max(job_id), 0) FROM alerts))""").fetchone()[0]

    def max_seq(self, table: str, job_id: int) -> int:
        assert table in ("journal", "rejects")
        return self.reader().execute(
            f"SELECT coalesce(max(seq), 0) FROM {table} WHERE job_id = ?", [job_id]
        ).fetchone()[0]

    def pending_commands(
        self, job_id: int | None = None, limit: int | None = None,
    ) -> list[tuple[int, int | None, str, str, str | None]]:
        """Unhandled commands: (id, job_id, command, requested_by, spec); control requests
        first, then submissions (a ``submit`` has no job yet and carries the job's spec),
        each oldest first; at most ``limit``."""
        return self.reader().execute(
            """SELECT id, job_id, command, requested_by, spec FROM job_commands
               WHERE handled_at IS NULL AND (? IS NULL OR job_id = ?)
               ORDER BY command = 'submit', id LIMIT ?""",
            [job_id, job_id, limit],
        ).fetchall()

    # -- requests and retention ----------------------------------------------------

    def status(self, job_id: int) -> str:
        row = self.reader().execute("SELECT status FROM jobs WHERE id = ?", [job_id]).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return row[0]

    def request(self, job_id: int, command: str, *, by: str, now: float) -> int:
        """Record a control request for the runtime to carry out; return its id."""
        with self.lock:
            (command_id,) = self.con.execute(
                """INSERT INTO job_commands (id, job_id, command, requested_at, requested_by)
                   VALUES (nextval('command_id_seq'), ?, ?, ?, ?) RETURNING id""",
                [job_id, command, ts(now), by],
            ).fetchone()
        return command_id

    def signal(self, job_id: int, command: str, *, by: str, now: float, outcome: str) -> None:
        """Record a request the runtime makes of a job on a worker (``shutdown``), handled
        when made: the worker reads it."""
        with self.lock:
            self.con.execute(
                """INSERT INTO job_commands (id, job_id, command, requested_at, requested_by,
                   handled_at, outcome) VALUES (nextval('command_id_seq'), ?, ?, ?, ?, ?, ?)""",
                [job_id, command, ts(now), by, ts(now), outcome])

    def acknowledge(self, alert_id: int, *, by: str, now: float) -> str:
        """Mark an alert seen by ``by``: the outcome of an ``ack`` request (an alert
        acknowledged before keeps who did it first)."""
        with self.transaction() as con:
            row = con.execute("SELECT acknowledged_by FROM alerts WHERE id = ?",
                              [alert_id]).fetchone()
            if row is None:
                return f"refused: there is no alert {alert_id}"
            if row[0] is not None:
                return f"ignored: alert {alert_id} was acknowledged by {row[0]}"
            con.execute("UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? "
                        "WHERE id = ?", [ts(now), by, alert_id])
        return "acknowledged"

    def last_command_id(self) -> int:
        return self.reader().execute("SELECT coalesce(max(id), 0) FROM job_commands"
                                     ).fetchone()[0]

    def has_reports(self) -> bool:
        return bool(self.reader().execute("SELECT count(*) FROM job_reports").fetchone()[0])

    def purge(self, *, before: float) -> dict[str, int]:
        """Delete journal lines and rejects older than ``before`` of jobs that have ended,
        and ended jobs that finished before it with all their rows (in one transaction).
        A job that can still run (paused, shut down...) keeps its rows, so a resume finds
        the rejects its checkpoint counted."""
        with self.transaction() as con:
            return {what: con.execute(sql, params).fetchone()[0]
                    for what, sql, params in purge_statements(ts(before))}


def purge_statements(cutoff: datetime) -> list[tuple[str, str, list]]:
    """The deletes of a purge, in order (the jobs last), as (what, sql, params); a
    schedule's log lines go by their age, alerts (and their notifications) by when they
    were resolved."""
    terminal = [s.value for s in TERMINAL]
    marks = ", ".join("?" * len(terminal))
    ended = f"SELECT id FROM jobs WHERE status IN ({marks})"
    purged = f"SELECT id FROM jobs WHERE status IN ({marks}) AND finished_at < ?"
    return [
        *[(table, f"""DELETE FROM {table} WHERE job_id IN ({ended})
                      AND ({at} < ? OR job_id IN ({purged}))""",
           [*terminal, cutoff, *terminal, cutoff])
          for table, at in (("journal", "logged_at"), ("rejects", "rejected_at"))],
        ("transitions", f"DELETE FROM job_transitions WHERE job_id IN ({purged})",
         [*terminal, cutoff]),
        ("commands", f"""DELETE FROM job_commands WHERE job_id IN ({purged})
                         OR (job_id IS NULL AND handled_at < ?)""",  # refused submissions
         [*terminal, cutoff, cutoff]),                               # and schedule requests
        ("schedule_log", "DELETE FROM schedule_log WHERE logged_at < ?", [cutoff]),
        ("notifications", """DELETE FROM notifications WHERE alert_id IN
                             (SELECT id FROM alerts WHERE resolved_at < ?)""", [cutoff]),
        ("alerts", "DELETE FROM alerts WHERE resolved_at < ?", [cutoff]),
        ("jobs", f"DELETE FROM jobs WHERE id IN ({purged})", [*terminal, cutoff]),
    ]
