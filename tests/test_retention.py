"""``jobobs serve --retention``: a served database purges its old history by itself, at
start and then every ``purge_every`` seconds, beside the runtime's writes rather than in
their way; a bad age is refused before anything starts."""

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import jobs
import pytest
from serving import Server, cli, env, free_port

import jobobs
from jobobs.db import endpoint
from jobobs.db.store import Store
from jobobs.execution.retention import Retention
from jobobs.testing import wait_until

DAY = 86400.0
SERVE = """
import sys
from datetime import timedelta
from jobobs.server import serve
db, port, quack_port, keep, every = sys.argv[1:]
serve(db, port=int(port), quack_port=int(quack_port), workers=2,
      retention=timedelta(seconds=float(keep)), purge_every=float(every))
"""


class ServedWithRetention(Server):
    """``jobobs.server.serve`` in its own process with a retention and purge interval of
    seconds, which the command line does not offer."""

    def __init__(self, db: str, keep: float, every: float):
        self.db, self.port, self.quack_port = db, free_port(), free_port()
        self.log = open(f"{db}.serve.log", "ab")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-c", SERVE, db, str(self.port), str(self.quack_port),
             str(keep), str(every)], stdout=self.log, stderr=subprocess.STDOUT, env=env())


def ids(client) -> list[int]:
    return client.sql("SELECT id FROM jobs ORDER BY id")["id"].tolist()


def history_of(db: str) -> dict[str, int]:
    """Rows by job, as a runtime of the past left them."""
    with jobobs.Runtime(db, handle_signals=False) as rt:
        con = rt.store.reader()
        return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("jobs", "journal", "rejects", "job_transitions")}


@pytest.fixture
def old_history(db):
    """Forty days ago: a finished job with rejects and a paused one (it can still run);
    then one that finished now."""
    now = [time.time() - 40 * DAY]
    with jobobs.Runtime(db, handle_signals=False, clock=lambda: now[0]) as rt:
        old = rt.wait(rt.submit(jobs.steps, 6, 0.0, 2).id, timeout=10)
        paused = rt.submit(jobs.steps, 1000, 0.01)
        wait_until(lambda: rt.job(paused.id).processed >= 2, timeout=10)
        rt.pause(paused.id)
        assert rt.wait(paused.id, timeout=10).status.value == "paused"
        now[0] = time.time()
        recent = rt.wait(rt.submit(jobs.steps, 3, 0.0).id, timeout=10)
    return db, old.id, paused.id, recent.id


def test_serve_with_a_retention_purges_old_jobs_at_start_without_a_purge(old_history):
    db, old, paused, recent = old_history
    before = history_of(db)
    server = Server(db, "--retention", "30d").wait_ready()
    try:
        with jobobs.connect(db) as client:
            assert client.served
            wait_until(lambda: old not in ids(client), timeout=30,
                       message="the old job purged")
            assert ids(client) == [paused, recent]
            lines = client.sql("SELECT job_id, count(*) AS n FROM journal GROUP BY job_id "
                               "ORDER BY job_id")
            assert lines["job_id"].tolist() == [paused, recent]  # the old job's are gone
            assert client.start(paused) == "queued"  # what it kept still runs
        wait_until(lambda: "purged what ended before" in server.output(), timeout=10)
    finally:
        assert server.stop() == 0, server.output()
    said = [line for line in server.output().splitlines() if "purged what" in line]
    assert len(said) == 1 and "(the retention is 30 days): 1 jobs," in said[0], said
    assert "journal lines" in said[0] and "3 rejects" in said[0]
    assert "purged with their journal lines and rejects, now and every hour" in \
        server.output()
    assert before["rejects"] == 3 and before["jobs"] == 3


def test_a_served_database_keeps_purging_every_interval(db):
    server = ServedWithRetention(db, keep=2.0, every=1.0).wait_ready()
    try:
        with jobobs.connect(db) as client:
            finished = client.submit("jobs:steps", 5, 0.0, 2, name="soon old")
            client.wait(finished, timeout=30, progress=False)
            running = client.submit("jobs:talker", 10_000, 0.01, name="still running")
            wait_until(lambda: finished not in ids(client), timeout=30,
                       message="the finished job purged by a later purge")
            assert running in ids(client)
            assert client.info(running).status.value == "running"
            assert not client.sql("SELECT count(*) AS n FROM rejects WHERE job_id = ?",
                                  [finished])["n"].iloc[0]
            client.cancel(running)
    finally:
        assert server.stop() == 0, server.output()
    assert "purged what ended before" in server.output()
    assert "now and every 1 s" in server.output()
    assert "purge failed" not in server.output()


def test_the_retention_purges_beside_the_runtimes_writes_not_under_their_lock(rt):
    """A purge does not take the lock the runtime writes under: it ends while the lock is
    held (a purge in one transaction under the lock would wait for it)."""
    now = [time.time()]
    old = rt.wait(rt.submit(jobs.steps, 4, 0.0, 2).id, timeout=10)
    said = []
    retention = Retention(rt.store, timedelta(days=30), every=3600,
                          clock=lambda: now[0] + 31 * DAY, echo=said.append)
    done = threading.Event()
    counts = {}
    with rt.store.lock:
        worker = threading.Thread(target=lambda: (counts.update(retention.purge()),
                                                  done.set()))
        worker.start()
        assert done.wait(30), "the purge waited for the runtime's lock"
    worker.join()
    assert counts["jobs"] == 1 and counts["rejects"] == 2 and counts["journal"] > 0
    assert said and said[0].startswith("jobobs: purged what ended before")
    assert rt.store.reader().execute("SELECT count(*) FROM jobs WHERE id = ?",
                                     [old.id]).fetchone()[0] == 0


def test_a_purge_that_fails_is_said_and_tried_again(db):
    store = Store(db)
    store.con.execute("DROP VIEW reject_breakdown; DROP VIEW error_breakdown")
    store.con.execute("ALTER TABLE journal RENAME TO journal_gone")  # the first delete fails
    said = []
    retention = Retention(store, timedelta(days=30), every=0.05, echo=said.append)
    retention.start()
    try:
        wait_until(lambda: len(said) >= 2, timeout=10, message="two failed purges said")
    finally:
        retention.stop()
        store.close()
    assert said[0].startswith("jobobs: the retention's purge failed: Catalog Error")
    assert said[0].endswith("the next one, in 0.05 s, tries again")


@pytest.mark.parametrize(("age", "message"), [
    ("soon", "Invalid value for '--retention': 'soon' is not an age such as 30d"),
    ("0d", "Invalid value for '--retention': a retention of 0 would purge every job"),
])
def test_a_bad_retention_is_one_line_before_the_server_starts(tmp_path, age, message):
    db = str(tmp_path / "jobs.duckdb")
    result = cli("serve", "--db", db, "--retention", age, "--port", free_port())
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert endpoint.read(db) is None and not Path(db).exists()


def test_a_runtime_with_a_retention_purges_at_start_and_every_interval(db):
    now = [1_700_000_000.0]
    with jobobs.Runtime(db, handle_signals=False, clock=lambda: now[0]) as rt:
        old = rt.wait(rt.submit(jobs.steps, 3, 0.0, 1).id, timeout=10).id
    now[0] += 40 * 86400
    said = []
    with jobobs.Runtime(db, handle_signals=False, clock=lambda: now[0], on_purge=said.append,
                        retention=timedelta(days=30), purge_every=0.2) as rt:
        reader = rt.store.reader()

        def count(job_id):
            return reader.execute("SELECT count(*) FROM jobs WHERE id = ?",
                                  [job_id]).fetchone()[0]

        assert wait_until(lambda: count(old) == 0, timeout=30)
        later = rt.wait(rt.submit(jobs.steps, 3, 0.0, 1).id, timeout=10).id
        now[0] += 40 * 86400  # the next purge, a fraction of a second away, takes it too
        assert wait_until(lambda: count(later) == 0, timeout=30)
    assert "(the retention is 30 days): 1 jobs," in said[0]
