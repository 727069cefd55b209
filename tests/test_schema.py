"""The schema: migrations recorded, newer databases refused, views usable."""

import duckdb
import jobs
import pytest

import jobobs
from jobobs import SchemaError
from jobobs.access import queries
from jobobs.db import schema
from jobobs.db.schema import JOB_COLUMNS, LATEST
from jobobs.db.store import Store
from jobobs.model.states import LABELS


def test_a_new_file_is_migrated_and_recorded(db):
    Store(db).close()
    con = duckdb.connect(db)
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == LATEST
    columns = [r[0] for r in con.execute("DESCRIBE jobs").fetchall()]
    assert tuple(columns) == JOB_COLUMNS
    assert con.execute("SELECT count(*) FROM statuses").fetchone()[0] == 10
    con.close()
    Store(db).close()  # opening again applies nothing twice
    con = duckdb.connect(db)
    assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == LATEST
    con.close()


# The labels of databases made before migration 8 (jobobs 0.x up to it).
OLD_LABELS = {"editing": "Being edited", "canceling": "Cancel in progress",
              "failed": "Finished with errors"}


def test_an_older_database_gets_the_labels_as_the_product_names_them(db):
    con = duckdb.connect(db)
    schema.current_version(con)
    for number, description, apply in schema.MIGRATIONS[:7]:
        apply(con)
        con.execute("INSERT INTO schema_version VALUES (?, ?, now()::TIMESTAMP)",
                    [number, description])
    for status, label in OLD_LABELS.items():
        con.execute("UPDATE statuses SET label = ? WHERE status = ?", [label, status])
    con.close()
    Store(db).close()
    con = duckdb.connect(db)
    labels = dict(con.execute("SELECT status, label FROM statuses").fetchall())
    assert labels == {s.value: label for s, label in LABELS.items()}
    assert (labels["editing"], labels["canceling"], labels["failed"]) == (
        "Editing in progress", "Cancellation in progress", "Finished with error")
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == LATEST
    con.close()


def test_a_newer_database_is_refused(db):
    Store(db).close()
    con = duckdb.connect(db)
    con.execute("INSERT INTO schema_version VALUES (99, 'future', now()::TIMESTAMP)")
    con.close()
    with pytest.raises(SchemaError, match="schema version 99, newer than this jobobs"):
        Store(db)


def test_a_foreign_jobs_table_is_refused(db):
    con = duckdb.connect(db)
    con.execute("CREATE TABLE jobs (x INT)")
    con.close()
    with pytest.raises(SchemaError, match="did not create"):
        Store(db)


def test_status_is_text_not_an_enum(db):
    Store(db).close()
    con = duckdb.connect(db)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'jobs'").fetchall())
    assert types["status"] == "VARCHAR"


def test_analyst_views(db):
    with jobobs.Runtime(db, handle_signals=False) as rt:
        rt.wait(rt.submit(jobs.steps, 8, 0.0, 3).id, timeout=10)
        rt.wait(rt.submit(jobs.boom).id, timeout=10)
        con = rt.store.reader()
        runs = con.execute("SELECT name, label, duration_s >= 0, queue_s >= 0 FROM job_runs "
                           "ORDER BY id").fetchall()
        assert runs == [("steps", "Finished", True, True),
                        ("boom", "Finished with error", True, True)]
        breakdown = con.execute("SELECT reason, column_name, rejects FROM reject_breakdown"
                                ).fetchall()
        assert breakdown == [("bad item", "i", 3)]
        errors = con.execute("SELECT name, jobs FROM error_breakdown").fetchall()
        assert errors == [("boom", 1)]
        counts = queries.status_counts(con).set_index("status").jobs
        assert (counts["finished"], counts["failed"], counts["running"]) == (1, 1, 0)


@jobobs.job(name="fails-on-a-row")
def fails_on_a_row(ctx, row, path):
    if row % 2:
        ctx.log.error("row %d of %s could not be read", row, path)
    raise ValueError(f"row {row} of '{path}' is broken")


def test_error_breakdown_reads_one_error_as_one_row(db):
    """Errors that differ only in their values, or in where the code raised them, are one
    row of the view; its example keeps one of them whole, traceback included."""
    with jobobs.Runtime(db, handle_signals=False) as rt:
        for row in range(1, 7):
            rt.wait(rt.submit(fails_on_a_row, row, f"/data/part-{row}.csv").id, timeout=10)
        con = rt.store.reader()
        errors = con.execute("SELECT message, occurrences, jobs, example FROM error_breakdown "
                             "ORDER BY occurrences DESC").fetchall()
    assert [(message, occurrences, jobs) for message, occurrences, jobs, _ in errors] == [
        ("ValueError: row <n> of <value> is broken", 6, 6),
        ("row <n> of <path> could not be read", 3, 3)]
    assert "Traceback (most recent call last)" in errors[0][3]
    assert "raise ValueError" in errors[0][3]
