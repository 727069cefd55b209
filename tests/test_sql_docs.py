"""docs/sql.md: every example returns the rows it should from a history of known content
(twelve jobs, written below), and every column of every table and view is documented.

An example is the line before a ```sql block (its question) and the block; EXPECTED holds
each question's rows. The times are hours before now, so "the last seven days" and "running
now" mean the same on any day.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from jobobs.db import schema

DOC = (Path(__file__).parents[1] / "docs" / "sql.md").read_text()
EXAMPLES = dict(re.findall(r"^([^\n]+):\n\n```sql\n(.*?)```", DOC,
                           flags=re.DOTALL | re.MULTILINE))
OBJECTS = ["jobs", "job_transitions", "journal", "rejects", "job_commands", "job_reports",
           "statuses", "schedules", "schedule_log", "alerts", "notifications",
           "export_watermarks", "export_watermark_rows", "export_files", "export_runs",
           "schema_version", "job_runs", "reject_breakdown",
           "error_breakdown"]

BASE = (datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)).replace(
    minute=0, second=0, microsecond=0)
OLD = BASE - timedelta(days=30)


def at(minutes: float, seconds: float = 0) -> datetime:
    return BASE + timedelta(minutes=minutes, seconds=seconds)


# id, name, kind, status, queued_at, started_at, finished_at, processed, rejected
JOBS = [
    (1, "import customers", "import", "finished", OLD, OLD, OLD + timedelta(seconds=9), 1000, 0),
    (2, "import customers", "import", "finished", at(0), at(0, 2), at(0, 12), 1000, 2),
    (3, "import customers", "import", "finished", at(10), at(10, 4), at(10, 16), 800, 0),
    (4, "import customers", "import", "finished", at(20), at(20), at(20, 11), 900, 0),
    (5, "score", "python", "failed", at(30), at(30, 1), at(30, 4), 17, 2),
    (6, "score", "python", "failed", at(31), at(31, 1), at(31, 3), 18, 0),
    (7, "score", "python", "finished", at(32), at(32, 2), at(32, 9), 50, 0),
    (8, "export orders", "export", "canceled", at(40), at(40, 1), at(40, 21), 300, 0),
    (9, "import customers", "import", "finished", at(70), at(70, 6), at(70, 46), 1000, 4),
    (10, "import customers", "import", "failed", at(80), at(80, 1), at(80, 6), 200, 1),
    (11, "export orders", "export", "running", at(90), at(90, 3), None, 2500, 0),
    (12, "import orders", "import", "shutdown", at(100), at(100, 5), None, 0, 0),
]
# status changes besides being queued by ana, started by the runtime and ended by it
CHANGES = {
    4: [(at(20, 5), "shutdown", "runtime", "the runtime stopped"),
        (at(20, 6), "queued", "ana", "start requested"),
        (at(20, 7), "running", "runtime", None)],
    8: [(at(40, 15), "canceling", "ana", "cancel requested")],
    11: [(at(90, 30), "pausing", "bob", "pause requested"),
         (at(90, 31), "paused", "runtime", "paused at a checkpoint"),
         (at(95), "queued", "bob", "resume requested"),
         (at(95, 1), "running", "runtime", None)],
    12: [(at(100, 30), "shutdown", "runtime", "the runtime stopped")],
}
TRACEBACK = ("scoring failed\nTraceback (most recent call last):\n"
             '  File "/srv/jobs/score.py", line 40, in score\n'
             '    raise ValueError(f"bad value {{value!r}}")\n'
             "ValueError: bad value '{}'")
# job_id, logged_at, level, code, message
JOURNAL = [
    (1, OLD, "INFO", None, "reading customers.csv"),
    (1, OLD + timedelta(seconds=1), "INFO", None, "read 1000 rows"),
    (1, OLD + timedelta(seconds=2), "INFO", None, "loaded 1000 rows"),
    (1, OLD + timedelta(seconds=3), "INFO", None, "finished"),
    (5, at(30, 3), "ERROR", None, "row 17 failed"),
    (5, at(30, 4), "ERROR", None, TRACEBACK.format("x")),
    (6, at(31, 1), "ERROR", None, "row 18 failed"),
    (6, at(31, 2), "ERROR", None, "row 19 failed"),
    (6, at(31, 3), "ERROR", None, TRACEBACK.format("y")),
    (10, at(80, 2), "WARNING", None, "row 12 kept with a warning"),
    (10, at(80, 5), "ERROR", "XDT-320029", "Unknown column 'birth_dat'"),
]
# job_id, times, source, column_name, reason
REJECTS = [
    (2, 2, "customers.csv", "birth_date", "cast error"),
    (5, 2, None, "score", "invalid value"),
    (9, 3, "customers.csv", "birth_date", "cast error"),
    (9, 1, "customers-extra.csv", "email", "missing columns"),
    (10, 1, "customers.csv", "birth_date", "cast error"),
]
# id, job_id, command, requested_at, requested_by, outcome
COMMANDS = [
    (1, 7, "cancel", at(33), "ana", "ignored: the job is finished"),
    (2, 8, "cancel", at(40, 15), "ana", "canceling"),
    (3, 8, "pause", at(40, 18), "bob", "ignored: the job is canceling"),
    (4, 11, "pause", at(90, 30), "bob", "pausing"),
    (5, 11, "resume", at(95), "bob", "queued"),
    (6, None, "submit", at(96), "carol", "refused: no function 'nope' in module jobs"),
]

EXPECTED = {
    "The slowest runs of the last seven days": [
        (9, "import customers", "Finished", 40.0, 1000),
        (8, "export orders", "Canceled", 20.0, 300),
        (3, "import customers", "Finished", 12.0, 800),
        (4, "import customers", "Finished", 11.0, 900),
        (2, "import customers", "Finished", 10.0, 1000),
        (7, "score", "Finished", 7.0, 50),
        (10, "import customers", "Finished with error", 5.0, 200),
        (5, "score", "Finished with error", 3.0, 17),
        (6, "score", "Finished with error", 2.0, 18),
    ],
    "p50 and p95 duration per job name, over finished runs": [
        ("import customers", 5, 11.0, 34.4),  # 9, 10, 11, 12, 40 s
        ("score", 1, 7.0, 7.0),
    ],
    "Reject rate by source file": [
        (None, 2, 0.1176),
        ("customers.csv", 1, 0.005),
        ("customers.csv", 3, 0.003),
        ("customers.csv", 2, 0.002),
        ("customers-extra.csv", 1, 0.001),
    ],
    "Jobs interrupted by a shutdown, and whether they were resumed": [
        (12, "import orders", at(100, 30), "the runtime stopped", "shutdown"),
        (4, "import customers", at(20, 5), "the runtime stopped", "finished"),
    ],
    "Failure rate per job name": [
        ("score", 3, 2, 0.667),
        ("import customers", 6, 1, 0.167),
        ("export orders", 1, 0, 0.0),
    ],
    "The most frequent errors, by code": [
        ("", "row <n> failed", 3, 2, at(31, 2)),
        ("", "scoring failed — ValueError: bad value <value>", 2, 2, at(31, 3)),
        ("XDT-320029", "Unknown column <value>", 1, 1, at(80, 5)),
    ],
    "Which columns cause the most rejects, per job name": [
        ("import customers", "birth_date", "cast error", 6),
        ("score", "score", "invalid value", 2),
        ("import customers", "email", "missing columns", 1),
    ],
    "Who paused or canceled what": [
        (at(40, 15), "ana", "export orders", "canceling"),
        (at(90, 30), "bob", "export orders", "pausing"),
    ],
    "Time spent queued before starting, per job name": [
        ("import orders", 5.0, 5.0),
        ("import customers", 2.167, 6.0),  # 0, 2, 4, 0, 6, 1 s
        ("export orders", 2.0, 3.0),
        ("score", 1.333, 2.0),
    ],
    "Throughput: rows processed per hour by runs that ended": [
        (OLD, 1000, 1),
        (BASE, 3085, 7),
        (BASE + timedelta(hours=1), 1200, 2),
    ],
    "Jobs running now, with their progress and ETA": [
        (11, "export orders", 25.0, at(200), 2500, 0),
    ],
    "Runs slower than twice the median of the same job's previous 20 finished runs": [
        (9, "import customers", 40.0, 10.5),  # the four before: 9, 10, 12, 11 s
    ],
    "Requests that were refused or came too late": [
        (6, "submit", None, "carol", at(96), "refused: no function 'nope' in module jobs"),
        (3, "pause", 8, "bob", at(40, 18), "ignored: the job is canceling"),
        (1, "cancel", 7, "ana", at(33), "ignored: the job is finished"),
    ],
    "A job's journal lines after the last one you have read (here: job 1, after line 2)": [
        (3, OLD + timedelta(seconds=2), "INFO", "loaded 1000 rows"),
        (4, OLD + timedelta(seconds=3), "INFO", "finished"),
    ],
}


def _transitions() -> list[tuple]:
    rows = []
    for job_id, _, _, status, queued, started, finished, _, _ in JOBS:
        changes = [(queued, "queued", "ana", None), (started, "running", "runtime", None),
                   *CHANGES.get(job_id, [])]
        if finished is not None:
            changes.append((finished, status, "runtime", None))
        previous = None
        for seq, (changed_at, to_status, actor, reason) in enumerate(changes, 1):
            rows.append((job_id, seq, changed_at, previous, to_status, actor, reason))
            previous = to_status
    return rows


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A jobobs database at the latest schema holding the history above."""
    path = str(tmp_path_factory.mktemp("sql_docs") / "history.duckdb")
    with duckdb.connect(path) as con:
        schema.migrate(con)
        for job_id, name, kind, status, queued, started, finished, processed, rejected in JOBS:
            con.execute(
                """INSERT INTO jobs (id, name, kind, status, created_at, queued_at, started_at,
                                     finished_at, updated_at, run_count, processed, succeeded,
                                     rejected, created_by)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 'ana')""",
                [job_id, name, kind, status, queued, queued, started, finished,
                 finished or started, processed, processed - rejected, rejected])
        con.execute("""UPDATE jobs SET progress_current = 25, progress_total = 100,
                                       eta_at = ? WHERE id = 11""", [at(200)])
        con.executemany("INSERT INTO job_transitions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        _transitions())
        seqs: dict[int, int] = {}
        for job_id, logged_at, level, code, message in JOURNAL:
            seqs[job_id] = seqs.get(job_id, 0) + 1
            con.execute("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?)",
                        [job_id, seqs[job_id], logged_at, level, code, message])
        reject_seqs: dict[int, int] = {}
        for job_id, times, source, column, reason in REJECTS:
            for _ in range(times):
                seq = reject_seqs[job_id] = reject_seqs.get(job_id, 0) + 1
                con.execute(
                    """INSERT INTO rejects (job_id, seq, rejected_at, kind, source, line_no,
                                            column_name, raw, reason, message)
                       VALUES (?, ?, ?, 'error', ?, ?, ?, 'a,b', ?, ?)""",
                    [job_id, seq, BASE, source, seq + 1, column, reason,
                     f"{reason} in {column}"])
        for command_id, job_id, command, requested_at, by, outcome in COMMANDS:
            con.execute("INSERT INTO job_commands VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                        [command_id, job_id, command, requested_at, by, requested_at, outcome])
    return path


def _rounded(rows: list[tuple]) -> list[tuple]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]


def test_there_are_at_least_ten_examples_each_with_its_question():
    assert len(EXAMPLES) >= 10
    assert len(EXAMPLES) == DOC.count("```sql"), "an example without a question before it"


def test_every_example_has_its_expected_rows():
    assert sorted(EXAMPLES) == sorted(EXPECTED)


@pytest.mark.parametrize("question", sorted(EXPECTED))
def test_each_example_returns_its_rows(question, history):
    assert question in EXAMPLES, f"docs/sql.md has no example for {question!r}"
    with duckdb.connect(history, read_only=True) as con:
        rows = con.execute(EXAMPLES[question]).fetchall()
    assert _rounded(rows) == _rounded(EXPECTED[question])


def _section(name: str) -> str:
    match = re.search(rf"^### {name}\n(.*?)(?=^### |^## |\Z)", DOC,
                      flags=re.DOTALL | re.MULTILINE)
    assert match, f"docs/sql.md has no section for {name}"
    return match.group(1)


@pytest.mark.parametrize("name", OBJECTS)
def test_every_column_is_documented(name, history):
    with duckdb.connect(history, read_only=True) as con:
        columns = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
    documented = set()
    for cells in re.findall(r"^\| ([^|]+) \|", _section(name), flags=re.MULTILINE):
        documented |= {c.strip() for c in cells.split(",")}
    missing = [c for c in columns if c not in documented]
    assert not missing, f"{name}: {missing} undocumented"
