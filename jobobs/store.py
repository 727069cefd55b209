"""The one place that writes: jobs and their transitions, batched journal lines and rejects,
progress, checkpoints, commands, heartbeats and retention.

Every write runs under one lock on one connection, in a transaction; readers use their own
cursors (see ``Store.reader``). Time is a parameter: every method takes ``now`` as epoch
seconds and callers pass their clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from jobobs import schema
from jobobs.errors import IllegalTransition, JobNotFound
from jobobs.records import JOURNAL_COLUMNS, REJECT_COLUMNS, JournalLine, Reject
from jobobs.states import ACTIVE, TERMINAL, TRANSITIONS, Status, check_transition

PROGRESS_COLUMNS = (
    "job_id", "total", "processed", "succeeded", "rejected", "warnings", "duplicates",
    "progress_current", "progress_total", "eta_at", "has_warning",
)


def ts(epoch: float | None) -> datetime | None:
    """Epoch seconds to the naive-UTC datetime stored in TIMESTAMP columns."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)

_PROGRESS_SET = (*PROGRESS_COLUMNS[1:], "updated_at")
_SET_FROM_BATCH = ", ".join(f"{column} = p.{column}" for column in _PROGRESS_SET)
_SET_FROM_PARAMS = ", ".join(f"{column} = ?" for column in _PROGRESS_SET)

# Below this many rows a multi-row VALUES statement is cheaper than an Arrow scan.
SMALL_BATCH = 16


def _arrow(rows: Sequence[tuple], columns: Sequence[str], times: frozenset[int]) -> pa.Table:
    data = {}
    for index, (name, values) in enumerate(zip(columns, zip(*rows))):
        if index in times:
            data[name] = pa.array([None if v is None else int(v * 1e6) for v in values],
                                  pa.timestamp("us"))
        else:
            data[name] = pa.array(values)
    return pa.table(data)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[tuple],
            columns: Sequence[str], times: frozenset[int]) -> None:
    """Insert rows in one statement: VALUES for a few rows, an Arrow scan for many."""
    if len(rows) <= SMALL_BATCH:
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        params = [ts(v) if i in times else v for row in rows for i, v in enumerate(row)]
        con.execute(f"INSERT INTO {table} VALUES {', '.join([marks] * len(rows))}", params)
    else:
        batch = _arrow(rows, columns, times)  # noqa: F841 - read by the query below
        con.execute(f"INSERT INTO {table} SELECT * FROM batch")


_PREDECESSORS: dict[Status, tuple[str, ...]] = {
    new: tuple(old.value for old, nxt in TRANSITIONS.items() if new in nxt) for new in Status
}


class Store:
    """A jobobs database: open (and migrate) it, then write through these methods."""

    def __init__(self, path: str = ":memory:", *, connection: duckdb.DuckDBPyConnection | None = None):
        self.path = path
        self.con = connection if connection is not None else duckdb.connect(path)
        self.lock = threading.RLock()
        self._local = threading.local()
        with self.lock:
            schema.migrate(self.con)

    def close(self) -> None:
        with self.lock:
            self.con.close()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread, for read-only queries."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.con.cursor()
        return cursor

    @contextmanager
    def transaction(self):
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    # -- jobs and transitions -------------------------------------------------

    def create_job(
        self, *, name: str, kind: str, spec: str | None, actor: str, now: float,
        queue: bool = True, max_rejects: int | None = None,
        owner: tuple[str, str, int] | None = None,
    ) -> int:
        """Insert a job in ``editing`` (and move it to ``queued`` when ``queue``); return its id."""
        at = ts(now)
        status = Status.QUEUED if queue else Status.EDITING
        with self.transaction() as con:
            (job_id,) = con.execute(
                """INSERT INTO jobs (name, kind, spec, status, prev_status, transition_seq,
                       created_at, updated_at, queued_at, max_rejects, created_by,
                       runtime_id, host, pid)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                [name, kind, spec, status.value, "editing" if queue else None, 2 if queue else 1,
                 at, at, at if queue else None, max_rejects, actor, *(owner or (None,) * 3)],
            ).fetchone()
            history = [[job_id, 1, at, None, "editing", actor, "created"]]
            if queue:
                history.append([job_id, 2, at, "editing", "queued", actor, "submitted"])
            con.executemany("INSERT INTO job_transitions VALUES (?, ?, ?, ?, ?, ?, ?)", history)
        return job_id

    def transition(
        self, job_id: int, new: Status, *, actor: str, now: float, reason: str | None = None,
        expect: Iterable[Status] | None = None, fields: dict[str, Any] | None = None,
    ) -> Status:
        """Move a job to ``new`` and append the history row in one transaction.

        ``expect`` narrows the statuses the job may be in (for compare-and-set by the
        runtime); ``fields`` sets more columns. Returns the status the job left.
        """
        new = Status(new)
        allowed = _PREDECESSORS[new]
        if expect is not None:
            allowed = tuple(s for s in allowed if Status(s) in set(expect))
        at = ts(now)
        sets = ["prev_status = status", "status = ?", "transition_seq = transition_seq + 1",
                "updated_at = ?"]
        params: list[Any] = [new.value, at]
        if new is Status.QUEUED:
            sets += ["queued_at = ?", "finished_at = NULL", "error = NULL"]
            params.append(at)
        elif new is Status.RUNNING:
            sets += ["started_at = coalesce(started_at, ?)", "heartbeat_at = ?"]
            params += [at, at]
        if new in TERMINAL:
            sets += ["finished_at = ?", "eta_at = NULL"]
            params.append(at)
        for column, value in (fields or {}).items():
            if column.endswith("+"):
                sets.append(f"{column[:-1]} = {column[:-1]} + ?")
            else:
                sets.append(f"{column} = ?")
            params.append(value)
        marks = ", ".join("?" * len(allowed)) or "NULL"
        with self.transaction() as con:
            row = con.execute(
                f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND status IN ({marks}) "
                "RETURNING prev_status, transition_seq",
                [*params, job_id, *allowed],
            ).fetchone()
            if row is None:
                current = con.execute("SELECT status FROM jobs WHERE id = ?", [job_id]).fetchone()
                if current is None:
                    raise JobNotFound(job_id)
                check_transition(job_id, current[0], new)
                raise IllegalTransition(job_id, current[0], new.value)
            con.execute(
                "INSERT INTO job_transitions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [job_id, row[1], at, row[0], new.value, actor, reason],
            )
        return Status(row[0])

    def job(self, job_id: int) -> dict[str, Any]:
        """The job's row as a dict; JobNotFound if there is none."""
        cursor = self.reader()
        cursor.execute("SELECT * FROM jobs WHERE id = ?", [job_id])
        row = cursor.fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return dict(zip([d[0] for d in cursor.description], row))

    def status(self, job_id: int) -> Status:
        row = self.reader().execute("SELECT status FROM jobs WHERE id = ?", [job_id]).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return Status(row[0])

    def max_seq(self, table: str, job_id: int) -> int:
        assert table in ("journal", "rejects")
        return self.reader().execute(
            f"SELECT coalesce(max(seq), 0) FROM {table} WHERE job_id = ?", [job_id]
        ).fetchone()[0]

    # -- batched writes ---------------------------------------------------------

    def write(
        self, lines: Sequence[JournalLine] = (), rejects: Sequence[Reject] = (),
        progress: Sequence[tuple] = (), checkpoint: tuple[int, str, float] | None = None,
        now: float | None = None,
    ) -> None:
        """Write journal lines, rejects, progress rows and one checkpoint in one transaction."""
        if not (lines or rejects or progress or checkpoint):
            return
        with self.transaction() as con:
            if lines:
                _insert(con, "journal", lines, JOURNAL_COLUMNS, frozenset({2}))
            if rejects:
                _insert(con, "rejects", rejects, REJECT_COLUMNS, frozenset({2}))
            if len(progress) > 2:
                rows = [(*row, now) for row in progress]
                batch = _arrow(rows, (*PROGRESS_COLUMNS, "updated_at"),  # noqa: F841
                               frozenset({9, 11}))
                con.execute(f"UPDATE jobs SET {_SET_FROM_BATCH} FROM batch p "
                            "WHERE jobs.id = p.job_id")
            for row in progress if len(progress) <= 2 else ():
                con.execute(f"UPDATE jobs SET {_SET_FROM_PARAMS} WHERE id = ?",
                            [*row[1:9], ts(row[9]), row[10], ts(now), row[0]])
            if checkpoint:
                job_id, state, at = checkpoint
                con.execute(
                    "UPDATE jobs SET checkpoint = ?, checkpoint_at = ? WHERE id = ?",
                    [state, ts(at), job_id],
                )

    def rewind_rejects(self, job_id: int, after_seq: int) -> int:
        """Delete the rejects a job recorded after its last checkpoint; return how many."""
        with self.transaction() as con:
            (count,) = con.execute(
                "DELETE FROM rejects WHERE job_id = ? AND seq > ?", [job_id, after_seq]
            ).fetchone()
        return count

    # -- commands ---------------------------------------------------------------

    def request(self, job_id: int, command: str, *, by: str, now: float) -> int:
        with self.lock:
            (command_id,) = self.con.execute(
                """INSERT INTO job_commands (job_id, command, requested_at, requested_by)
                   VALUES (?, ?, ?, ?) RETURNING id""",
                [job_id, command, ts(now), by],
            ).fetchone()
        return command_id

    def pending_commands(self) -> list[tuple[int, int, str, str]]:
        """Unhandled commands, oldest first: (id, job_id, command, requested_by)."""
        return self.reader().execute(
            """SELECT id, job_id, command, requested_by FROM job_commands
               WHERE handled_at IS NULL ORDER BY id"""
        ).fetchall()

    def handled(self, command_id: int, outcome: str, *, now: float) -> None:
        with self.lock:
            self.con.execute(
                "UPDATE job_commands SET handled_at = ?, outcome = ? WHERE id = ?",
                [ts(now), outcome, command_id],
            )

    # -- liveness and retention -------------------------------------------------

    def heartbeat(self, runtime_id: str, *, now: float) -> None:
        with self.lock:
            self.con.execute(
                f"""UPDATE jobs SET heartbeat_at = ? WHERE runtime_id = ?
                    AND status IN ({', '.join("?" * len(ACTIVE))})""",
                [ts(now), runtime_id, *(s.value for s in ACTIVE)],
            )

    def active_jobs(self) -> list[dict[str, Any]]:
        cursor = self.reader()
        cursor.execute(
            f"""SELECT id, status, runtime_id, host, pid, heartbeat_at FROM jobs
                WHERE status IN ({', '.join("?" * len(ACTIVE))}) ORDER BY id""",
            [s.value for s in ACTIVE],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def purge(self, *, before: float) -> dict[str, int]:
        """Delete journal lines and rejects older than ``before`` (except those of jobs still
        executing), and terminal jobs that finished before it with all their rows."""
        cutoff = ts(before)
        terminal = [s.value for s in TERMINAL]
        marks = ", ".join("?" * len(terminal))
        counts = {}
        with self.transaction() as con:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _purged AS SELECT id FROM jobs
                    WHERE status IN ({marks}) AND finished_at < ?""",
                [*terminal, cutoff],
            )
            busy = "SELECT id FROM jobs WHERE status IN ('running', 'pausing', 'canceling')"
            for table, at in (("journal", "logged_at"), ("rejects", "rejected_at")):
                counts[table] = con.execute(
                    f"""DELETE FROM {table} WHERE job_id IN (SELECT id FROM _purged)
                        OR ({at} < ? AND job_id NOT IN ({busy}))""",
                    [cutoff],
                ).fetchone()[0]
            for table in ("job_transitions", "job_commands"):
                con.execute(f"DELETE FROM {table} WHERE job_id IN (SELECT id FROM _purged)")
            counts["jobs"] = con.execute(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM _purged)"
            ).fetchone()[0]
            con.execute("DROP TABLE _purged")
        return counts
