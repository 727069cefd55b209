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

from jobobs.db.schema import TRACEBACK, error_normalised

BUCKETS = ("minute", "hour", "day", "week", "month")
SLOW_FACTOR = 2.0   # a run slower than twice ...
SLOW_HISTORY = 20   # ... the median of the same job's last 20 finished runs
SLOW_MINIMUM = 3    # judged only with at least this many earlier runs
SLOW_RESOLUTION = 0.001  # durations are kept to the millisecond: a usual below it counts as 1 ms


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
                   sum(processed)::BIGINT AS processed
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
                   sum(processed)::BIGINT AS processed, sum(rejected)::BIGINT AS rejected,
                   count(*) AS runs
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
    """Failed runs grouped by exception type and normalised first message line, most
    frequent first, with the newest run of each group as the example.

    A job's error is stored as ``Type: message`` (a traceback's last line when it is a
    traceback); its first line is split into the type and the message, and quoted values,
    ids, paths and numbers in the message become ``<value>``, ``<id>``, ``<path>`` and
    ``<n>`` (``schema.ERROR_PLACEHOLDERS``). ``last_job_id`` is the group's newest run, ``example``
    its whole error; ``failure_detail`` gives its traceback."""
    where, params = _window(since, until, column="finished_at")
    # each distinct first line is normalised once: failures repeat, and regexes cost
    return con.execute(
        f"""{_failure_groups(where)}
            SELECT error, error_type, sum(failures)::BIGINT AS failures,
                   length(list_distinct(flatten(list(names)))) AS job_names,
                   max(last_at) AS last_at, max(last_job_id) AS last_job_id,
                   arg_max(example, last_job_id) AS example
            FROM grouped GROUP BY error, error_type
            ORDER BY failures DESC, error LIMIT ?""",
        [*params, limit],
    ).df()


def _failure_groups(where: str) -> str:
    """SQL: the CTEs ``failed`` (the failed jobs in ``where``, with their error's first
    line) and ``grouped`` (each distinct line, its count and its group's ``error``)."""
    message = error_normalised(
        "CASE WHEN error_type IS NULL THEN line ELSE line[length(error_type) + 2:] END")
    return f"""WITH failed AS (
                SELECT id, name, finished_at, coalesce(error, '(no message)') AS error,
                       CASE WHEN starts_with(error, '{TRACEBACK}')
                            THEN regexp_extract(rtrim(error), '[^\\n]*$', 0)
                            ELSE split_part(coalesce(error, '(no message)'), chr(10), 1)
                       END AS line
                FROM jobs WHERE {where} AND status = 'failed'),
            lines AS (
                SELECT line, count(*) AS failures, list(DISTINCT name) AS names,
                       max(finished_at) AS last_at, max(id) AS last_job_id,
                       arg_max(error, id) AS example
                FROM failed GROUP BY line),
            typed AS (
                SELECT *, nullif(regexp_extract(line, '^([A-Za-z_][A-Za-z0-9_.]*):(\\s|$)', 1),
                                 '') AS error_type
                FROM lines),
            grouped AS (
                SELECT *, concat_ws(': ', error_type, nullif({message}, '')) AS error
                FROM typed)"""


def failed_in_group(con: duckdb.DuckDBPyConnection, error: str,
                    since: datetime | None = None, until: datetime | None = None,
                    exact: bool = False) -> list[int]:
    """The failed jobs of one error group, as ``failures`` lists them for the same window
    (by when they failed): ``error`` is the group's error, or (unless ``exact``) a part of
    it, ignoring case, that only one group has. A JobobsError when no group, or several,
    match."""
    from jobobs.model.errors import JobobsError

    where, params = _window(since, until, column="finished_at")
    groups = con.execute(
        f"""{_failure_groups(where)}
            SELECT error, sum(failures)::BIGINT AS failures
            FROM grouped GROUP BY error ORDER BY failures DESC""", params).fetchall()
    chosen = [g for g in groups if g[0] == error] or ([] if exact else [
        g for g in groups if error.strip() and error.lower() in g[0].lower()])
    if not chosen:
        raise JobobsError(f"no failed job has an error like {error!r}")
    if len(chosen) > 1:
        shown = "; ".join(f"{g[0]!r} ({g[1]})" for g in chosen[:5])
        raise JobobsError(f"{len(chosen)} error groups match {error!r}: {shown}"
                          f"{' ...' if len(chosen) > 5 else ''}; give one whole")
    return [row[0] for row in con.execute(
        f"""{_failure_groups(where)}
            SELECT f.id FROM failed f JOIN grouped g USING (line) WHERE g.error = ?
            ORDER BY f.id""", [*params, chosen[0][0]]).fetchall()]


def failure_detail(con: duckdb.DuckDBPyConnection, job_id: int) -> str:
    """What a failed job left to read: the traceback the runtime journaled, else its last
    error line, else its error ('' when there is none)."""
    row = con.execute(
        f"""SELECT coalesce(
                (SELECT arg_max(message, seq) FROM journal WHERE job_id = ? AND level = 'ERROR'
                        AND contains(message, '{TRACEBACK}')),
                (SELECT arg_max(message, seq) FROM journal WHERE job_id = ?
                        AND level = 'ERROR'),
                (SELECT error FROM jobs WHERE id = ?), '')""",
        [job_id, job_id, job_id],
    ).fetchone()
    return row[0]


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
    previous ``history`` finished runs (``times_usual``)."""
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
                   round(duration_s / greatest(usual_s, {SLOW_RESOLUTION}), 1) AS times_usual
            FROM judged WHERE {where} AND earlier >= {SLOW_MINIMUM}
                  AND duration_s > ? * greatest(usual_s, {SLOW_RESOLUTION})
            ORDER BY id DESC LIMIT ?""",
        [*params, factor, limit],
    ).df()


def times_usual(seconds: float, usual: float) -> float:
    """How many times its usual duration a run took. A usual too short to measure counts
    as ``SLOW_RESOLUTION``: a job that usually takes no time is slower when it hangs."""
    return float(seconds) / max(float(usual), SLOW_RESOLUTION)


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
