"""The DuckDB schema: DDL as plain strings and numbered migrations recorded in a table.

All timestamps are UTC (``TIMESTAMP`` without time zone). Statuses are text; the
``statuses`` table gives SQL users their labels and whether they are terminal.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from jobobs.db.sql import literal
from jobobs.model.errors import SchemaError
from jobobs.model.states import ACTIVE, LABELS, TERMINAL

SCHEMA_VERSION_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at  TIMESTAMP NOT NULL
)
"""

JOBS_DDL = """
CREATE TABLE jobs (
    id               BIGINT PRIMARY KEY,
    name             VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,
    spec             VARCHAR,
    status           VARCHAR NOT NULL,
    prev_status      VARCHAR,
    transition_seq   INTEGER NOT NULL DEFAULT 0,
    has_warning      BOOLEAN NOT NULL DEFAULT false,
    created_at       TIMESTAMP NOT NULL,
    queued_at        TIMESTAMP,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    updated_at       TIMESTAMP NOT NULL,
    run_count        INTEGER NOT NULL DEFAULT 0,
    active_seconds   DOUBLE NOT NULL DEFAULT 0,
    total            BIGINT,
    processed        BIGINT NOT NULL DEFAULT 0,
    succeeded        BIGINT NOT NULL DEFAULT 0,
    rejected         BIGINT NOT NULL DEFAULT 0,
    warnings         BIGINT NOT NULL DEFAULT 0,
    duplicates       BIGINT NOT NULL DEFAULT 0,
    progress_current DOUBLE,
    progress_total   DOUBLE,
    eta_at           TIMESTAMP,
    max_rejects      BIGINT,
    checkpoint       VARCHAR,
    checkpoint_at    TIMESTAMP,
    error            VARCHAR,
    created_by       VARCHAR,
    runtime_id       VARCHAR,
    host             VARCHAR,
    pid              INTEGER,
    worker           VARCHAR,
    heartbeat_at     TIMESTAMP
);
CREATE TABLE job_transitions (
    job_id      BIGINT NOT NULL,
    seq         INTEGER NOT NULL,
    changed_at  TIMESTAMP NOT NULL,
    from_status VARCHAR,
    to_status   VARCHAR NOT NULL,
    actor       VARCHAR NOT NULL,
    reason      VARCHAR
);
CREATE TABLE journal (
    job_id  BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    logged_at TIMESTAMP NOT NULL,
    level   VARCHAR NOT NULL,
    code    VARCHAR,
    message VARCHAR NOT NULL
);
CREATE TABLE rejects (
    job_id      BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    rejected_at TIMESTAMP NOT NULL,
    kind        VARCHAR NOT NULL,
    source      VARCHAR,
    line_no     BIGINT,
    column_name VARCHAR,
    raw         VARCHAR,
    record      VARCHAR,
    reason      VARCHAR NOT NULL,
    message     VARCHAR NOT NULL
);
CREATE SEQUENCE command_id_seq START 1;
CREATE TABLE job_commands (
    id           BIGINT PRIMARY KEY DEFAULT nextval('command_id_seq'),
    job_id       BIGINT NOT NULL,
    command      VARCHAR NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    requested_by VARCHAR NOT NULL,
    handled_at   TIMESTAMP,
    outcome      VARCHAR
);
CREATE TABLE statuses (
    status   VARCHAR PRIMARY KEY,
    label    VARCHAR NOT NULL,
    terminal BOOLEAN NOT NULL,
    active   BOOLEAN NOT NULL
);
"""

# The jobs table's columns in order; the runtime keeps a job's row in memory with these names.
JOB_COLUMNS = (
    "id", "name", "kind", "spec", "status", "prev_status", "transition_seq", "has_warning",
    "created_at", "queued_at", "started_at", "finished_at", "updated_at", "run_count",
    "active_seconds", "total", "processed", "succeeded", "rejected", "warnings", "duplicates",
    "progress_current", "progress_total", "eta_at", "max_rejects", "checkpoint",
    "checkpoint_at", "error", "created_by", "runtime_id", "host", "pid", "worker", "heartbeat_at",
    "doubles", "parent_id", "schedule", "retries", "retry_policy", "retried", "retry_at",
)
TRANSITION_COLUMNS = ("job_id", "seq", "changed_at", "from_status", "to_status", "actor", "reason")

VIEWS_DDL = """
CREATE OR REPLACE VIEW job_runs AS
SELECT j.id, j.name, j.kind, j.status, s.label, s.terminal, j.has_warning, j.parent_id,
       j.created_at, j.queued_at, j.started_at, j.finished_at,
       date_diff('millisecond', j.started_at, coalesce(j.finished_at, now()::TIMESTAMP)) / 1000.0
           AS duration_s,
       j.active_seconds,
       date_diff('millisecond', j.queued_at, j.started_at) / 1000.0 AS queue_s,
       j.run_count, j.total, j.processed, j.succeeded, j.rejected, j.warnings, j.doubles,
       j.duplicates,
       CASE WHEN j.progress_total > 0 THEN j.progress_current / j.progress_total END AS progress,
       j.eta_at, j.error, j.host, j.pid, j.worker
FROM jobs j JOIN statuses s ON s.status = j.status;

CREATE OR REPLACE VIEW reject_breakdown AS
SELECT r.job_id, j.name, r.source, r.column_name, r.reason, r.kind, count(*) AS rejects,
       min(r.rejected_at) AS first_at, max(r.rejected_at) AS last_at
FROM rejects r JOIN jobs j ON j.id = r.job_id
GROUP BY ALL;

CREATE OR REPLACE VIEW error_breakdown AS
SELECT j.name, coalesce(l.code, '') AS code, l.message, count(*) AS occurrences,
       count(DISTINCT l.job_id) AS jobs, max(l.logged_at) AS last_at
FROM journal l JOIN jobs j ON j.id = l.job_id
WHERE l.level = 'ERROR'
GROUP BY ALL;
"""


IMPORT_EXPORT_DDL = """
ALTER TABLE jobs ADD COLUMN doubles BIGINT DEFAULT 0;
ALTER TABLE jobs ADD COLUMN parent_id BIGINT;
CREATE TABLE export_watermarks (
    name       VARCHAR PRIMARY KEY,
    column_name VARCHAR NOT NULL,
    value      VARCHAR,
    job_id     BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
"""


# Quack clients rebuild the server's tables from their DDL when they ATTACH, and a column
# default that calls a function (nextval, now) makes that fail: ids and times are given by
# the statements that insert. The tables are rebuilt rather than altered: DuckDB 1.5.5
# cannot replay an ALTER of a table with such a default from its write-ahead log.
SUBMISSIONS_DDL = """
CREATE TABLE job_commands_v4 (
    id           BIGINT PRIMARY KEY,
    job_id       BIGINT,
    command      VARCHAR NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    requested_by VARCHAR NOT NULL,
    handled_at   TIMESTAMP,
    outcome      VARCHAR,
    spec         VARCHAR
);
INSERT INTO job_commands_v4
    SELECT id, job_id, command, requested_at, requested_by, handled_at, outcome, NULL
    FROM job_commands;
DROP TABLE job_commands;
ALTER TABLE job_commands_v4 RENAME TO job_commands;
CREATE TABLE schema_version_v4 (
    version     INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at  TIMESTAMP NOT NULL
);
INSERT INTO schema_version_v4 SELECT * FROM schema_version;
DROP TABLE schema_version;
ALTER TABLE schema_version_v4 RENAME TO schema_version;
"""


# Jobs on Dask workers report through Quack: each batch is one row here, which the server
# applies to its ledger and deletes in one transaction (so each is applied once).
REPORTS_DDL = """
CREATE TABLE job_reports (
    job_id  BIGINT NOT NULL,
    run     INTEGER NOT NULL,
    batch   INTEGER NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    worker  VARCHAR,
    body    VARCHAR NOT NULL
);
"""


# A differential export remembers the rows it wrote at exactly its watermark's value (how
# many of each, by md5), so a row that comes later with that value goes out once; numbers
# the files it writes; and runs one at a time for a name (export_runs holds the one running).
EXPORT_RUNS_DDL = """
ALTER TABLE export_watermarks ADD COLUMN rows_at_value BIGINT;
CREATE TABLE export_watermark_rows (
    name   VARCHAR NOT NULL,
    job_id BIGINT NOT NULL,
    md5    VARCHAR NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (name, job_id, md5)
);
CREATE TABLE export_files (
    name       VARCHAR PRIMARY KEY,
    seq        BIGINT NOT NULL,
    path       VARCHAR NOT NULL,
    job_id     BIGINT NOT NULL,
    written_at TIMESTAMP NOT NULL
);
CREATE TABLE export_runs (
    name       VARCHAR PRIMARY KEY,
    job_id     BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL
);
"""


# How an error reads the same across runs, for "failures by error" and ``error_breakdown``:
# a traceback by the exception it ended with, and each pattern below, in this order, by its
# placeholder, so "row 17 failed" and "row 18 failed" are one error.
ERROR_PLACEHOLDERS = (
    ("'[^']*'|\"[^\"]*\"", "<value>"),  # a quoted value, whatever is inside
    # a UUID, hex, or 8 or more digits
    (r"\b(?:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|0[xX][0-9a-fA-F]+|"
     r"[0-9a-fA-F]{8,})\b", "<id>"),
    (r"""(^|[\s(=:,\[])(?:[A-Za-z]:[\\/]|\.{1,2}[\\/]|~[\\/]|[\\/])[^\s'",;()\[\]]+""",
     r"\1<path>"),  # a path: from /, ./, ../, ~/ or C:\ to the next space
    (r"\b\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?\b", "<n>"),  # a number standing alone
    (r"\s+", " "),
)
TRACEBACK = "Traceback (most recent call last)"


def error_normalised(expression: str) -> str:
    """SQL: ERROR_PLACEHOLDERS applied to ``expression``. The patterns are literals, not
    parameters: DuckDB compiles a constant pattern once, a parameter once a row."""
    for pattern, placeholder in ERROR_PLACEHOLDERS:
        expression = (f"regexp_replace({expression}, {literal(pattern)}, "
                      f"{literal(placeholder)}, 'g')")
    return f"trim({expression})"


def error_headline(expression: str) -> str:
    """SQL: a message's first line, and the exception a traceback in it ended with (its
    last line) in place of the traceback's header."""
    last = f"regexp_extract(rtrim({expression}), '[^\\n]*$', 0)"
    first = f"split_part({expression}, chr(10), 1)"
    return f"""CASE WHEN starts_with({expression}, '{TRACEBACK}') THEN {last}
                    WHEN contains({expression}, chr(10) || '{TRACEBACK}')
                    THEN {first} || ' — ' || {last}
                    ELSE {first} END"""


# Error lines grouped as one when only their values differ or the code moved.
ERRORS_GROUPED_DDL = f"""
CREATE OR REPLACE VIEW error_breakdown AS
SELECT j.name, coalesce(l.code, '') AS code,
       {error_normalised(error_headline('l.message'))} AS message,
       count(*) AS occurrences, count(DISTINCT l.job_id) AS jobs, max(l.logged_at) AS last_at,
       arg_max(l.message, l.logged_at) AS example
FROM journal l JOIN jobs j ON j.id = l.job_id
WHERE l.level = 'ERROR'
GROUP BY ALL;
"""


# Schedules (``jobobs.execution.scheduling``): when each runs its job, and what it did. A
# tick's job and the schedule's row are written in one transaction, so a tick is kept
# once through a crash. Jobs carry the schedule that made them and their retries.
SCHEDULES_DDL = """
ALTER TABLE jobs ADD COLUMN schedule VARCHAR;
ALTER TABLE jobs ADD COLUMN retries INTEGER DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retry_policy VARCHAR;
ALTER TABLE jobs ADD COLUMN retried INTEGER DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retry_at TIMESTAMP;
CREATE TABLE schedules (
    name         VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL,
    spec         VARCHAR NOT NULL,
    cron         VARCHAR,
    every_s      DOUBLE,
    tz           VARCHAR NOT NULL,
    overlap      VARCHAR NOT NULL,
    catch_up     VARCHAR NOT NULL,
    retries      INTEGER NOT NULL,
    retry_policy VARCHAR,
    enabled      BOOLEAN NOT NULL,
    next_run_at  TIMESTAMP,
    last_run_at  TIMESTAMP,
    last_job_id  BIGINT,
    waiting      INTEGER NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    created_by   VARCHAR NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE TABLE schedule_log (
    schedule  VARCHAR NOT NULL,
    seq       BIGINT NOT NULL,
    logged_at TIMESTAMP NOT NULL,
    level     VARCHAR NOT NULL,
    message   VARCHAR NOT NULL,
    job_id    BIGINT
);
""" + VIEWS_DDL.split(";")[0].replace("j.eta_at, j.error, j.host, j.pid, j.worker",
                        "j.eta_at, j.error, j.host, j.pid, j.worker, j.schedule, j.retries, "
                        "j.retried, j.retry_at")
SCHEDULE_COLUMNS = (
    "name", "kind", "spec", "cron", "every_s", "tz", "overlap", "catch_up", "retries",
    "retry_policy", "enabled", "next_run_at", "last_run_at", "last_job_id", "waiting",
    "created_at", "created_by", "updated_at",
)
SCHEDULE_LOG_COLUMNS = ("schedule", "seq", "logged_at", "level", "message", "job_id")

ALERTS_DDL = """
CREATE TABLE alerts (
    id              BIGINT PRIMARY KEY,
    rule            VARCHAR NOT NULL,      -- the rule's name
    kind            VARCHAR NOT NULL,      -- failed, shutdown, slow, rejects, stalled, late, missed
    subject         VARCHAR NOT NULL,      -- what it is about; one alert per rule and subject
    job_id          BIGINT,
    job_name        VARCHAR,
    schedule        VARCHAR,
    run             INTEGER,               -- the job's run it was opened on
    summary         VARCHAR NOT NULL,
    detail          VARCHAR,
    opened_at       TIMESTAMP NOT NULL,
    resolved_at     TIMESTAMP,
    resolution      VARCHAR,               -- why it was resolved
    acknowledged_at TIMESTAMP,
    acknowledged_by VARCHAR
)
"""
NOTIFICATIONS_DDL = """
CREATE TABLE notifications (
    id          BIGINT PRIMARY KEY,
    alert_id    BIGINT NOT NULL,
    event       VARCHAR NOT NULL,          -- opened | resolved
    target      VARCHAR NOT NULL,          -- the URL with its secrets masked
    outcome     VARCHAR NOT NULL,          -- sent | failed | dropped
    tries       INTEGER NOT NULL,
    last_error  VARCHAR,
    created_at  TIMESTAMP NOT NULL,        -- when it was asked for
    sent_at     TIMESTAMP
);
"""
ALERT_COLUMNS = (
    "id", "rule", "kind", "subject", "job_id", "job_name", "schedule", "run", "summary",
    "detail", "opened_at", "resolved_at", "resolution", "acknowledged_at", "acknowledged_by",
)
NOTIFICATION_COLUMNS = ("id", "alert_id", "event", "target", "outcome", "tries", "last_error",
                        "created_at", "sent_at")


def _statuses() -> list[list]:
    """The ``statuses`` table's rows as this jobobs names them."""
    return [[s.value, label, s in TERMINAL, s in ACTIVE] for s, label in LABELS.items()]


def _initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(JOBS_DDL)
    con.executemany("INSERT INTO statuses VALUES (?, ?, ?, ?)", _statuses())


def _import_export(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(IMPORT_EXPORT_DDL)


def _views(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(VIEWS_DDL)


def _submissions(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SUBMISSIONS_DDL)


def _reports(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(REPORTS_DDL)


def _export_runs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(EXPORT_RUNS_DDL)


def _errors_grouped(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(ERRORS_GROUPED_DDL)


def _labels(con: duckdb.DuckDBPyConnection) -> None:
    con.executemany("""INSERT INTO statuses VALUES (?, ?, ?, ?)
                       ON CONFLICT (status) DO UPDATE SET label = excluded.label""",
                    _statuses())


def _schedules(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEDULES_DDL)


def _alerts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(ALERTS_DDL)
    con.execute(NOTIFICATIONS_DDL)


MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
    (1, "jobs, transitions, journal, rejects, commands and statuses", _initial),
    (2, "doubles and parent job on jobs; export watermarks", _import_export),
    (3, "analyst views: job_runs, reject_breakdown, error_breakdown", _views),
    (4, "submissions from other processes ('submit' commands carry a spec); no function "
        "defaults, so Quack clients can attach", _submissions),
    (5, "job_reports: what jobs on Dask workers report, until the server applies it", _reports),
    (6, "export_watermarks.rows_at_value, export_watermark_rows (the rows exported at "
        "the value), export_files (each export name's last file and its number) and "
        "export_runs (the run of each export name under way)", _export_runs),
    (7, "error_breakdown groups a message by its first line and exception, values as "
        "placeholders; example holds one whole message", _errors_grouped),
    (8, "statuses' labels as the product names them: Editing in progress, Cancellation in "
        "progress, Finished with error", _labels),
    (9, "schedules and schedule_log; jobs.schedule, retries, retry_policy, retried and "
        "retry_at (also in job_runs)", _schedules),
    (10, "alerts (opened by the server's rules, resolved, acknowledged) and notifications "
         "(each delivery's outcome)", _alerts),
]
LATEST = MIGRATIONS[-1][0]


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(SCHEMA_VERSION_DDL)
    (version,) = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return version


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the migrations this database lacks, each in its own transaction; return the version."""
    version = current_version(con)
    if version > LATEST:
        raise SchemaError(
            f"the database is at schema version {version}, newer than this jobobs knows "
            f"({LATEST}); upgrade jobobs"
        )
    if version == 0 and con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'jobs'"
    ).fetchone()[0]:
        raise SchemaError("the database has a 'jobs' table that jobobs did not create")
    applied = False
    for number, description, apply in MIGRATIONS:
        if number <= version:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            apply(con)
            con.execute(
                """INSERT INTO schema_version (version, description, applied_at)
                   VALUES (?, ?, now()::TIMESTAMP)""",
                [number, description],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        version = number
        applied = True
    if applied:
        con.execute("CHECKPOINT")  # the new schema in the file, not only in the log
    return version
