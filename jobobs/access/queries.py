"""Read-only questions about jobs, answered as DataFrames.

The dashboard, the notebooks and the CLI call these instead of writing their own SQL.
Every function takes a DuckDB connection (or cursor) to a jobobs database and binds its
arguments as parameters.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from jobobs.model.rows import COUNTERS, LEVELS, level_name

if TYPE_CHECKING:
    import pandas as pd

JOB_LIST_COLUMNS = f"""id, name, kind, status, label, has_warning, created_at, started_at,
    finished_at, duration_s, {', '.join(COUNTERS)}, progress, eta_at, error, parent_id"""


def _job_filters(status: str | list[str] | None, kind: str | list[str] | None,
                 name: str | None, since: datetime | None,
                 until: datetime | None) -> tuple[str, list]:
    """The WHERE clause of a job list, every value a parameter."""
    where, params = ["true"], []
    for column, value in (("status", status), ("kind", kind)):
        if value:
            values = [value] if isinstance(value, str) else list(value)
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
    if name:
        where.append("contains(lower(name), lower(?))")
        params.append(name)
    if since:
        where.append("created_at >= ?")
        params.append(since)
    if until:
        where.append("created_at < ?")
        params.append(until)
    return " AND ".join(where), params


def jobs(
    con: duckdb.DuckDBPyConnection, *, status: str | list[str] | None = None,
    kind: str | list[str] | None = None, name: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
    limit: int = 100, offset: int = 0,
) -> pd.DataFrame:
    """Jobs newest first, with label, duration and progress (the ``job_runs`` view);
    ``name`` matches part of the name, ignoring case."""
    where, params = _job_filters(status, kind, name, since, until)
    # the page's ids first, from the table alone; then the view for those rows only
    return con.execute(
        f"""SELECT {JOB_LIST_COLUMNS} FROM job_runs
            WHERE id IN (SELECT id FROM jobs WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?)
            ORDER BY id DESC""",
        [*params, limit, offset],
    ).df()


def count_jobs(
    con: duckdb.DuckDBPyConnection, *, status: str | list[str] | None = None,
    kind: str | list[str] | None = None, name: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> int:
    """How many jobs ``jobs`` would list with the same filters and no limit."""
    where, params = _job_filters(status, kind, name, since, until)
    return con.execute(f"SELECT count(*) FROM jobs WHERE {where}", params).fetchone()[0]


def version(con: duckdb.DuckDBPyConnection) -> tuple:
    """A cheap change check: it differs whenever a job is added or changes."""
    return con.execute("SELECT max(id), max(updated_at), count(*) FROM jobs").fetchone()


def job(con: duckdb.DuckDBPyConnection, job_id: int) -> pd.DataFrame:
    """One job's row from ``job_runs`` with its spec and checkpoint time (empty if none)."""
    return con.execute(
        """SELECT r.*, j.spec, j.checkpoint, j.checkpoint_at, j.created_by, j.runtime_id,
                  j.heartbeat_at
           FROM job_runs r JOIN jobs j USING (id) WHERE r.id = ?""",
        [job_id],
    ).df()


def at_least(level: str | None) -> list[str]:
    """The journal's level names from ``level`` up (all of them for None)."""
    least = LEVELS[level_name(level)] if level is not None else 0
    return [name for name, number in LEVELS.items() if number >= least]


def journal(
    con: duckdb.DuckDBPyConnection, job_id: int, *, after: int = 0, limit: int = 100,
    level: str | None = None, search: str | None = None, tail: bool = False,
) -> pd.DataFrame:
    """Journal lines after sequence number ``after``, oldest first; ``level`` is a minimum,
    ``search`` matches part of the message (ignoring case); ``tail`` keeps the last
    ``limit`` lines instead of the first."""
    levels = at_least(level)
    where = f"job_id = ? AND seq > ? AND level IN ({', '.join('?' * len(levels))})"
    params: list = [job_id, after, *levels]
    if search:
        where += " AND contains(lower(message), lower(?))"
        params.append(search)
    lines = f"""SELECT seq, logged_at, level, code, message FROM journal WHERE {where}
                ORDER BY seq {'DESC' if tail else ''} LIMIT ?"""
    if tail:
        lines = f"SELECT * FROM ({lines}) ORDER BY seq"
    return con.execute(lines, [*params, limit]).df()


def rejects(
    con: duckdb.DuckDBPyConnection, job_id: int, *, limit: int | None = None, offset: int = 0,
    reason: str | None = None, column: str | None = None,
) -> pd.DataFrame:
    """A job's rejects in the order they were recorded (optionally of one reason or
    column)."""
    where, params = "job_id = ?", [job_id]
    for name, value in (("reason", reason), ("column_name", column)):
        if value is not None:
            where += f" AND {name} = ?"
            params.append(value)
    return con.execute(
        f"""SELECT seq, rejected_at, kind, source, line_no, column_name, reason, message, raw,
                   record FROM rejects WHERE {where} ORDER BY seq LIMIT ? OFFSET ?""",
        [*params, limit, offset],
    ).df()


def reject_counts(con: duckdb.DuckDBPyConnection, job_id: int | None = None, *,
                  by: str = "reason") -> pd.DataFrame:
    """Rejects counted by ``reason``, ``column_name`` or ``source``, most first; of one job
    or of all."""
    if by not in ("reason", "column_name", "source"):
        raise ValueError(f"count rejects by reason, column_name or source, not {by!r}")
    return con.execute(
        f"""SELECT coalesce({by}, '(none)') AS {by}, count(*) AS rejects FROM rejects
            WHERE ? IS NULL OR job_id = ? GROUP BY ALL ORDER BY rejects DESC, {by} LIMIT 50""",
        [job_id, job_id],
    ).df()


def transitions(con: duckdb.DuckDBPyConnection, job_id: int) -> pd.DataFrame:
    """A job's status history, oldest first."""
    return con.execute(
        """SELECT seq, changed_at, from_status, to_status, actor, reason
           FROM job_transitions WHERE job_id = ? ORDER BY seq""",
        [job_id],
    ).df()


def commands(con: duckdb.DuckDBPyConnection, job_id: int) -> pd.DataFrame:
    """The control requests made for a job and what became of them."""
    return con.execute(
        """SELECT id, command, requested_at, requested_by, handled_at, outcome
           FROM job_commands WHERE job_id = ? ORDER BY id""",
        [job_id],
    ).df()


def status_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """How many jobs are in each status (every status, zeros included)."""
    return con.execute(
        """SELECT s.status, s.label, count(j.id) AS jobs FROM statuses s
           LEFT JOIN jobs j ON j.status = s.status GROUP BY ALL ORDER BY s.status"""
    ).df()


SCHEDULE_LIST_COLUMNS = """s.name, s.enabled, s.kind, s.cron, s.every_s, s.tz, s.next_run_at,
    s.last_run_at, s.last_job_id, j.status AS last_status, st.label AS last_label,
    j.finished_at AS last_finished_at, s.overlap, s.catch_up, s.retries, s.waiting,
    s.created_by, s.created_at, s.spec"""


def schedules(con: duckdb.DuckDBPyConnection, name: str | None = None) -> pd.DataFrame:
    """Schedules by name, with their last job's status and label (or one schedule)."""
    return con.execute(
        f"""SELECT {SCHEDULE_LIST_COLUMNS}
            FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id
            LEFT JOIN statuses st ON st.status = j.status
            WHERE ? IS NULL OR s.name = ? ORDER BY s.name""",
        [name, name],
    ).df()


def schedule_log(con: duckdb.DuckDBPyConnection, name: str, limit: int = 100
                 ) -> pd.DataFrame:
    """A schedule's log lines, newest first."""
    return con.execute(
        """SELECT seq, logged_at, level, message, job_id FROM schedule_log
           WHERE schedule = ? ORDER BY seq DESC LIMIT ?""",
        [name, limit],
    ).df()


ALERT_LIST_COLUMNS = """a.id, a.rule, a.kind, a.job_id, a.job_name, a.schedule, a.run,
    j.status, a.summary, a.opened_at, a.resolved_at, a.resolution, a.acknowledged_at,
    a.acknowledged_by, a.detail, a.subject"""


def alerts(con: duckdb.DuckDBPyConnection, *, open_only: bool = False,
           job_id: int | None = None, limit: int = 200) -> pd.DataFrame:
    """Alerts newest first, with their job's status now (``open_only``: not resolved yet;
    ``job_id``: that job's)."""
    return con.execute(
        f"""SELECT {ALERT_LIST_COLUMNS}
            FROM alerts a LEFT JOIN jobs j ON j.id = a.job_id
            WHERE (NOT ? OR a.resolved_at IS NULL) AND (? IS NULL OR a.job_id = ?)
            ORDER BY a.id DESC LIMIT ?""",
        [open_only, job_id, job_id, limit],
    ).df()


def alert_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(open alerts, open alerts nobody acknowledged): the dashboard's badge."""
    return con.execute(
        """SELECT count(*), count(*) FILTER (WHERE acknowledged_at IS NULL)
           FROM alerts WHERE resolved_at IS NULL""").fetchone()


def notifications(con: duckdb.DuckDBPyConnection, alert_id: int) -> pd.DataFrame:
    """What became of an alert's notifications, oldest first."""
    return con.execute(
        """SELECT event, target, outcome, tries, last_error, created_at, sent_at
           FROM notifications WHERE alert_id = ? ORDER BY id""", [alert_id]).df()


def status_summary(con: duckdb.DuckDBPyConnection, since: datetime) -> pd.DataFrame:
    """The Jobs page's strip in one pass over the jobs table: how many jobs are in each
    status present, how many of them ended since ``since`` (``ended``) and the rejects of
    the jobs that changed since then (``rejects``)."""
    return con.execute(
        """SELECT status, count(*) AS jobs, count(*) FILTER (WHERE finished_at >= ?) AS ended,
                  coalesce(sum(rejected) FILTER (WHERE updated_at >= ?), 0) AS rejects
           FROM jobs GROUP BY status ORDER BY status""",
        [since, since],
    ).df()


def active_times(con: duckdb.DuckDBPyConnection, ids: list[int]) -> pd.DataFrame:
    """The active time of the jobs ``ids`` (``active_s``: the runs that ended, and the run
    under way of a running or canceling job, which ticks; a paused or shut-down job's does
    not), with their ``run_count``."""
    if not ids:
        return con.execute("SELECT NULL::BIGINT AS id, NULL::INTEGER AS run_count, "
                           "NULL::DOUBLE AS active_s LIMIT 0").df()
    marks = ", ".join("?" * len(ids))
    return con.execute(
        f"""SELECT j.id, j.run_count, j.active_seconds + CASE
                   WHEN j.status IN ('running', 'canceling') AND began.at IS NOT NULL
                   THEN date_diff('millisecond', began.at, now()::TIMESTAMP) / 1000.0
                   ELSE 0 END AS active_s
            FROM jobs j LEFT JOIN (SELECT job_id, max(changed_at) AS at FROM job_transitions
                                   WHERE job_id IN ({marks}) AND to_status = 'running'
                                   GROUP BY job_id) began ON began.job_id = j.id
            WHERE j.id IN ({marks})""",
        [*ids, *ids],
    ).df()
