"""The demo: realistic files, a mix of jobs, every status within a minute, and schedules
that keep something happening."""

import signal
import time
from pathlib import Path

import duckdb
import pytest
from serving import Server

import jobobs
from jobobs import demo, demodata
from jobobs.access.client import Client
from jobobs.model.states import Status
from jobobs.testing import ManualClock, wait_until

SCHEDULES = {"fetch signups", "import signups", "export new signups", "signups by country"}


def test_the_demo_database_shows_every_outcome(demo_db):
    with duckdb.connect(demo_db, read_only=True) as con:
        check_outcomes(con, demo_db)


def check_outcomes(con, demo_db):
    statuses = dict(con.execute("SELECT name, status FROM jobs WHERE runtime_id IS DISTINCT "
                                "FROM 'history'").fetchall())  # the demo's own jobs
    assert statuses == {
        "nightly-rescore": "shutdown", "import customers": "finished",
        "import orders": "finished", "import november orders": "failed",
        "import events": "finished", "score-customers": "paused", "sync-crm": "finished",
        "load-events": "failed", "score-prospects": "canceled",
        "refresh-aggregates": "editing", "export customers by country": "finished",
        "export orders": "finished"}
    history = con.execute("SELECT count(*), max(id) FROM jobs WHERE runtime_id = 'history'"
                          ).fetchone()
    assert history[0] > 2000 and history[1] < min(con.execute(
        "SELECT id FROM jobs WHERE runtime_id IS DISTINCT FROM 'history'").fetchall())[0]
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
            wait_until(lambda: set(client.schedules()["name"]) == SCHEDULES, timeout=30,
                       interval=0.2, message="the demo's schedules")
        assert f"http://127.0.0.1:{server.port}/" in server.output()
        assert "ATTACH" in server.output() and server.token not in server.output()
    finally:
        assert server.stop(signal.SIGINT) == 0, server.output()


@pytest.mark.slow
def test_the_served_demo_starts_again_on_its_database_and_keeps_going(tmp_path):
    db = str(tmp_path / "demo.duckdb")
    args = ["--scale", "0.02", "--data", str(tmp_path / "data")]
    made = []
    for _ in range(2):
        server = Server(db, workers=3, command="demo", extra_args=args)
        try:
            server.wait_ready(timeout=60)
            with jobobs.connect(db) as client:
                # the demo adds them once it serves, after making its files
                wait_until(lambda c=client: set(c.schedules()["name"]) == SCHEDULES,
                           timeout=60, interval=0.2, message="the demo's schedules")
                made.append(client.schedules().set_index("name")["created_at"].to_dict())
                last = client.sql("SELECT max(id) AS id FROM jobs")["id"][0]
                wait_until(lambda c=client, after=last: scheduled_after(c, after),
                           timeout=90, interval=0.5, message="a job made by a schedule")
        finally:
            assert server.stop(signal.SIGINT) == 0, server.output()
    assert made[0] == made[1]  # the second start left them as they were


def scheduled_after(client, job_id: int) -> bool:
    return not client.sql("SELECT id FROM jobs WHERE schedule IS NOT NULL AND id > ?",
                          [int(job_id)]).empty


def test_the_demo_schedules_keep_jobs_coming_and_retry_the_flaky_fetch(tmp_path):
    clock, data = ManualClock(), str(tmp_path / "data")
    with jobobs.Runtime(str(tmp_path / "demo.duckdb"), workers=3, handle_signals=False,
                        run_schedules=True, clock=clock) as rt:
        client = Client.embedded(rt)
        assert set(demo.keep_going(rt, data, pace=0.01)) == SCHEDULES
        frame = client.schedules().set_index("name")
        assert frame.loc["fetch signups", "retries"] == 2
        assert frame.loc["signups by country", "cron"] == "*/1 * * * *"
        assert frame["every_s"].dropna().between(20, 60).all()

        def retried_and_finished() -> list[int]:
            finished = set(client.sql("SELECT DISTINCT schedule FROM jobs "
                                      "WHERE status = 'finished'")["schedule"])
            return list(client.sql(
                """SELECT DISTINCT j.id FROM jobs j JOIN journal l ON l.job_id = j.id
                   WHERE j.schedule = 'fetch signups' AND j.status = 'finished'
                   AND l.message LIKE 'Retry 1 of 2 in 5 s (from the checkpoint of %'"""
                )["id"]) if finished == SCHEDULES else []

        def later() -> list[int]:  # time moves on while nothing runs
            if not rt.runs:
                clock.now += 10
                rt.loop.wake()
            return retried_and_finished()

        retried = wait_until(later, timeout=120, interval=0.05,
                             message="every schedule's job, and a fetch retried and finished")
        lines = client.journal(retried[0])["message"].tolist()
        assert lines.index(next(m for m in lines if m.startswith("Retry 1 of 2"))) < \
            lines.index(next(m for m in lines if m.startswith("Fetching again from page")))
        imports = client.sql("SELECT rejected FROM jobs WHERE schedule = 'import signups' "
                             "AND status = 'finished'")["rejected"]
        assert (imports > 0).all()  # a few bad lines each time
        kept = client.sql("SELECT count(*) AS n FROM signups")["n"][0]
        assert 0 < kept <= demodata.SIGNUPS_KEPT  # replaced each time: it never grows
        out = Path(data) / "out"
        assert (out / "new_signups.csv").stat().st_size > 0
        assert (out / "signups_by_country.parquet").stat().st_size > 0


def test_starting_the_demo_again_keeps_its_schedules_as_they_are(tmp_path):
    db, data = str(tmp_path / "demo.duckdb"), str(tmp_path / "data")
    with jobobs.Runtime(db, workers=2, handle_signals=False, run_schedules=True) as rt:
        client = Client.embedded(rt)
        demo.keep_going(rt, data)
        first = client.schedule_info("import signups")["last_job_id"]
        assert rt.wait(first).status is Status.FINISHED  # the table, made at once
        client.pause_schedule("export new signups")
    with jobobs.Runtime(db, workers=2, handle_signals=False, run_schedules=True) as rt:
        client = Client.embedded(rt)
        assert set(demo.keep_going(rt, data)) == SCHEDULES
        frame = client.schedules().set_index("name")
        assert set(frame.index) == SCHEDULES
        assert not frame.loc["export new signups", "enabled"]  # left as someone left it
        assert frame.loc["import signups", "last_job_id"] == first  # the table is there
        other = str(tmp_path / "elsewhere")
        demo.keep_going(rt, other)  # another data folder: replaced
        assert other in client.schedule_info("import signups")["spec"]
        assert client.schedule_info("export new signups")["enabled"]


def test_the_demo_writes_its_history_once(tmp_path):
    from click.testing import CliRunner

    from jobobs.cli import main

    db = str(tmp_path / "demo.duckdb")
    args = ["demo", "--no-serve", "--db", db, "--data", str(tmp_path / "data"),
            "--scale", "0.01"]
    outputs = [CliRunner().invoke(main, args) for _ in range(2)]
    assert [result.exit_code for result in outputs] == [0, 0], outputs[1].output
    assert "Wrote 30 days of history (" in outputs[0].output
    assert "history" not in outputs[1].output  # there already: not written again
    with duckdb.connect(db, read_only=True) as con:
        days, runs = con.execute("""SELECT date_diff('day', min(created_at), max(created_at)),
                                           count(*) FROM jobs WHERE runtime_id = 'history'
                                 """).fetchone()
    assert days >= 29 and 2000 < runs < 5000
