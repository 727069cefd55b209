"""Read-only questions about jobs, answered as DataFrames.

The dashboard, the notebooks and the CLI call these instead of writing their own SQL.
Every function takes a DuckDB connection (or cursor) to a jobobs database and binds its
arguments as parameters.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from jobobs.records import LEVELS, level_name

JOB_LIST_COLUMNS = """id, name, kind, status, label, has_warning, created_at, started_at,
    finished_at, duration_s, total, processed, succeeded, rejected, warnings, progress, eta_at,
    error"""


def jobs(
    con: duckdb.DuckDBPyConnection, *, status: str | list[str] | None = None,
    kind: str | None = None, name: str | None = None, since: datetime | None = None,
    limit: int = 100, offset: int = 0,
) -> pd.DataFrame:
    """Jobs newest first, with label, duration and progress (the ``job_runs`` view)."""
    where, params = ["true"], []
    if status:
        statuses = [status] if isinstance(status, str) else list(status)
        where.append(f"status IN ({', '.join('?' * len(statuses))})")
        params += statuses
    if kind:
        where.append("kind = ?")
        params.append(kind)
    if name:
        where.append("name ILIKE ?")
        params.append(f"%{name}%")
    if since:
        where.append("created_at >= ?")
        params.append(since)
    return con.execute(
        f"""SELECT {JOB_LIST_COLUMNS} FROM job_runs WHERE {' AND '.join(where)}
            ORDER BY id DESC LIMIT ? OFFSET ?""",
        [*params, limit, offset],
    ).df()


def job(con: duckdb.DuckDBPyConnection, job_id: int) -> pd.DataFrame:
    """One job's row from ``job_runs`` with its spec and checkpoint time (empty if none)."""
    return con.execute(
        """SELECT r.*, j.spec, j.checkpoint, j.checkpoint_at, j.created_by, j.runtime_id,
                  j.heartbeat_at
           FROM job_runs r JOIN jobs j USING (id) WHERE r.id = ?""",
        [job_id],
    ).df()


def journal(
    con: duckdb.DuckDBPyConnection, job_id: int, *, after: int = 0, limit: int = 100,
    level: str | None = None,
) -> pd.DataFrame:
    """Journal lines after sequence number ``after``, oldest first; ``level`` is a minimum."""
    least = LEVELS[level_name(level)] if level is not None else 0
    levels = [name for name, number in LEVELS.items() if number >= least]
    return con.execute(
        f"""SELECT seq, logged_at, level, code, message FROM journal
            WHERE job_id = ? AND seq > ? AND level IN ({', '.join('?' * len(levels))})
            ORDER BY seq LIMIT ?""",
        [job_id, after, *levels, limit],
    ).df()


def rejects(
    con: duckdb.DuckDBPyConnection, job_id: int, *, limit: int | None = None, offset: int = 0,
) -> pd.DataFrame:
    """A job's rejects in the order they were recorded."""
    return con.execute(
        """SELECT seq, rejected_at, kind, source, line_no, column_name, reason, message, raw,
                  record FROM rejects WHERE job_id = ? ORDER BY seq LIMIT ? OFFSET ?""",
        [job_id, limit, offset],
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
