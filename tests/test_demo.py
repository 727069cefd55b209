"""The demo: realistic files, a mix of jobs, every status within a minute."""

import signal
import time
from pathlib import Path

import duckdb
import pytest
from serving import Server

import jobobs
from jobobs.model.states import Status


def test_the_demo_database_shows_every_outcome(demo_db):
    with duckdb.connect(demo_db, read_only=True) as con:
        check_outcomes(con, demo_db)


def check_outcomes(con, demo_db):
    statuses = dict(con.execute("SELECT name, status FROM jobs").fetchall())
    assert statuses == {
        "nightly-rescore": "shutdown", "import customers": "finished",
        "import orders": "finished", "import november orders": "failed",
        "import events": "finished", "score-customers": "paused", "sync-crm": "finished",
        "load-events": "failed", "score-prospects": "canceled",
        "refresh-aggregates": "editing", "export customers by country": "finished",
        "export orders": "finished"}
    seen = {row[0] for row in con.execute("SELECT DISTINCT to_status FROM job_transitions")
            .fetchall()}
    assert seen == {s.value for s in Status}
    rejects = dict(con.execute(
        """SELECT j.name, count(*) FROM rejects r JOIN jobs j ON j.id = r.job_id
           GROUP BY ALL""").fetchall())
    assert rejects["import customers"] > 0 and rejects["import november orders"] > 0
    reasons = {row[0] for row in con.execute(
        "SELECT DISTINCT reason FROM rejects r JOIN jobs j ON j.id = r.job_id "
        "WHERE j.name = 'import customers'").fetchall()}
    assert len(reasons) >= 3  # bad rows of several kinds
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 60_000
    folder = Path(demo_db).parent / "data" / "out"
    assert (folder / "orders_2026.csv.gz").stat().st_size > 0


@pytest.mark.slow
def test_the_served_demo_shows_every_status_within_a_minute(tmp_path):
    db = str(tmp_path / "demo.duckdb")
    server = Server(db, workers=3, command="demo",
                    extra_args=["--scale", "0.05", "--data", str(tmp_path / "data")])
    server.wait_ready(timeout=60)
    started = time.monotonic()
    try:
        with jobobs.connect(db) as client:
            seen = set()
            while seen != {s.value for s in Status} and time.monotonic() - started < 60:
                seen = set(client.sql("SELECT DISTINCT to_status FROM job_transitions")
                           ["to_status"])
                time.sleep(0.5)
            assert seen == {s.value for s in Status}, seen
        assert f"http://127.0.0.1:{server.port}/" in server.output()
        assert "ATTACH" in server.output() and server.token not in server.output()
    finally:
        assert server.stop(signal.SIGINT) == 0, server.output()
