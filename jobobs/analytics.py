"""Questions about the history of many runs, answered as DataFrames: durations and their
trends, throughput, statuses over time, failures, rejects, a timeline, slow runs.

The dashboard's Analytics page and the notebooks call these. Every function takes a
DuckDB connection (or a server connection from ``jobobs.connect``) and binds its
arguments as parameters; ``since``/``until`` bound the runs by their start.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

BUCKETS = ("minute", "hour", "day", "week", "month")
SLOW_FACTOR = 2.0   # a run slower than twice ...
SLOW_HISTORY = 20   # ... the median of the same job's last 20 finished runs
SLOW_MINIMUM = 3    # judged only with at least this many earlier runs


def _window(since: datetime | None, until: datetime | None, name: str | None = None,
            column: str = "started_at") -> tuple[str, list]:
    where, params = [f"{column} IS NOT NULL"], []
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{column} < ?")
        params.append(until)
    if name:
        where.append("name = ?")
        params.append(name)
    return " AND ".join(where), params


def _bucket(bucket: str) -> str:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
    return bucket


def job_names(con: duckdb.DuckDBPyConnection, since: datetime | None = None) -> list[str]:
    where, params = _window(since, None, column="created_at")
    return [row[0] for row in con.execute(
        f"SELECT DISTINCT name FROM jobs WHERE {where} ORDER BY name", params).fetchall()]


def durations(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
              until: datetime | None = None, name: str | None = None,
              limit: int = 100_000) -> pd.DataFrame:
    """Ended runs with their durations (the newest ``limit``), for distributions."""
    where, params = _window(since, until, name)
    return con.execute(
        f"""SELECT id, name, status, started_at, duration_s FROM job_runs
            WHERE {where} AND finished_at IS NOT NULL ORDER BY id DESC LIMIT ?""",
        [*params, limit],
    ).df()


def duration_trend(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
                   until: datetime | None = None, name: str | None = None,
                   bucket: str = "day") -> pd.DataFrame:
    """p50 and p95 duration and the number of runs per job name and time bucket."""
    where, params = _window(since, until, name)
    return con.execute(
        f"""SELECT date_trunc('{_bucket(bucket)}', started_at) AS bucket, name,
                   quantile_cont(duration_s, 0.5) AS p50_s,
                   quantile_cont(duration_s, 0.95) AS p95_s, count(*) AS runs
            FROM job_runs WHERE {where} AND finished_at IS NOT NULL
            GROUP BY ALL ORDER BY bucket, name""",
        params,
    ).df()


def duration_summary(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
                     until: datetime | None = None) -> pd.DataFrame:
    """Per job name: runs, failures, failure rate, p50/p95/max duration, rows processed."""
    where, params = _window(since, until)
    return con.execute(
        f"""SELECT name, count(*) AS runs,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   round(count(*) FILTER (WHERE status = 'failed') / count(*), 3)
                       AS failure_rate,
                   quantile_cont(duration_s, 0.5) AS p50_s,
                   quantile_cont(duration_s, 0.95) AS p95_s, max(duration_s) AS max_s,
                   sum(processed) AS processed
            FROM job_runs WHERE {where} AND finished_at IS NOT NULL
            GROUP BY name ORDER BY runs DESC, name""",
        params,
    ).df()


def throughput(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
               until: datetime | None = None, bucket: str = "hour") -> pd.DataFrame:
    """Rows processed and runs ended per time bucket (by end time)."""
    where, params = _window(since, until, column="finished_at")
    return con.execute(
        f"""SELECT date_trunc('{_bucket(bucket)}', finished_at) AS bucket,
                   sum(processed) AS processed, sum(rejected) AS rejected, count(*) AS runs
            FROM jobs WHERE {where} GROUP BY ALL ORDER BY bucket""",
        params,
    ).df()


def status_over_time(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
                     until: datetime | None = None, bucket: str = "day") -> pd.DataFrame:
    """Jobs per time bucket (by creation) and the status they are in now."""
    where, params = _window(since, until, column="created_at")
    return con.execute(
        f"""SELECT date_trunc('{_bucket(bucket)}', created_at) AS bucket, j.status,
                   s.label, count(*) AS jobs
            FROM jobs j JOIN statuses s USING (status) WHERE {where}
            GROUP BY ALL ORDER BY bucket, j.status""",
        params,
    ).df()


def failures(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
             until: datetime | None = None, limit: int = 20) -> pd.DataFrame:
    """Failed runs grouped by their error (its first line), most frequent first."""
    where, params = _window(since, until, column="finished_at")
    return con.execute(
        f"""SELECT split_part(coalesce(error, '(no message)'), chr(10), 1) AS error,
                   count(*) AS failures, count(DISTINCT name) AS job_names,
                   max(finished_at) AS last_at
            FROM jobs WHERE {where} AND status = 'failed'
            GROUP BY 1 ORDER BY failures DESC, error LIMIT ?""",
        [*params, limit],
    ).df()


def rejects_by(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
               until: datetime | None = None, by: str = "reason",
               limit: int = 20) -> pd.DataFrame:
    """Rejects across jobs counted by ``reason``, ``column_name`` or ``source``."""
    if by not in ("reason", "column_name", "source"):
        raise ValueError(f"count rejects by reason, column_name or source, not {by!r}")
    where, params = _window(since, until, column="rejected_at")
    return con.execute(
        f"""SELECT coalesce({by}, '(none)') AS {by}, count(*) AS rejects,
                   count(DISTINCT job_id) AS jobs
            FROM rejects WHERE {where} GROUP BY 1 ORDER BY rejects DESC, 1 LIMIT ?""",
        [*params, limit],
    ).df()


def timeline(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
             until: datetime | None = None, limit: int = 500) -> pd.DataFrame:
    """Runs that overlap the window, for a Gantt chart: start, end (now while running)."""
    where, params = ["started_at IS NOT NULL"], []
    if until is not None:
        where.append("started_at < ?")
        params.append(until)
    if since is not None:
        where.append("coalesce(finished_at, now()::TIMESTAMP) >= ?")
        params.append(since)
    return con.execute(
        f"""SELECT id, name, status, label, started_at AS start,
                   coalesce(finished_at, now()::TIMESTAMP) AS end, duration_s
            FROM job_runs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?""",
        [*params, limit],
    ).df()


def slowest(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
            until: datetime | None = None, limit: int = 10) -> pd.DataFrame:
    """The longest runs that ended, longest first."""
    where, params = _window(since, until)
    return con.execute(
        f"""SELECT id, name, kind, status, started_at, duration_s, processed, rejected
            FROM job_runs WHERE {where} AND finished_at IS NOT NULL
            ORDER BY duration_s DESC LIMIT ?""",
        [*params, limit],
    ).df()


def slow_runs(con: duckdb.DuckDBPyConnection, since: datetime | None = None,
              until: datetime | None = None, factor: float = SLOW_FACTOR,
              history: int = SLOW_HISTORY, limit: int = 200) -> pd.DataFrame:
    """Finished runs that took more than ``factor`` times the median of the same job's
    previous ``history`` finished runs."""
    where, params = _window(since, until)
    return con.execute(
        f"""WITH judged AS (
                SELECT id, name, started_at, duration_s,
                       median(duration_s) OVER previous AS usual_s,
                       count(*) OVER previous AS earlier
                FROM job_runs WHERE status = 'finished'
                WINDOW previous AS (PARTITION BY name ORDER BY id
                                    ROWS BETWEEN {int(history)} PRECEDING AND 1 PRECEDING))
            SELECT id, name, started_at, duration_s, usual_s,
                   round(duration_s / usual_s, 1) AS times_usual
            FROM judged WHERE {where} AND earlier >= {SLOW_MINIMUM} AND usual_s > 0
                  AND duration_s > ? * usual_s
            ORDER BY id DESC LIMIT ?""",
        [*params, factor, limit],
    ).df()


def usual_duration(con: duckdb.DuckDBPyConnection, job_id: int,
                   history: int = SLOW_HISTORY) -> float | None:
    """The median duration of the previous ``history`` finished runs of the job's name
    (None with fewer than a few)."""
    row = con.execute(
        """SELECT median(duration_s), count(*) FROM (
               SELECT duration_s FROM job_runs
               WHERE name = (SELECT name FROM jobs WHERE id = ?) AND id < ?
                     AND status = 'finished'
               ORDER BY id DESC LIMIT ?)""",
        [job_id, job_id, history],
    ).fetchone()
    return row[0] if row and row[1] >= SLOW_MINIMUM else None
