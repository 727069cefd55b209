"""kill -9 of a process in the middle of an import: after restart the job is shutdown, and
Start finishes it with exactly the rows of its source, none twice."""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import jobobs
from jobobs import Status

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
ROWS = 600_000


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "big.csv"
    duckdb.sql(f"COPY (SELECT range AS id, 'name' || range AS name, "
               f"CASE WHEN range % 1000 = 7 THEN 'bad' ELSE (range % 100)::VARCHAR END AS score "
               f"FROM range({ROWS})) TO '{path}' (HEADER)")
    return str(path)


@pytest.mark.parametrize(("on_failure", "ready"), [
    ("keep", "loading"), ("keep", "loading"), ("keep", "loading"), ("keep", "running"),
    ("rollback", "running")])
def test_kill_during_an_import_then_resume_exactly(db, source, on_failure, ready):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    child = subprocess.Popen([sys.executable, str(TESTS / "import_child.py"), db, source,
                              on_failure, ready], stdout=subprocess.PIPE, text=True, env=env)
    job_id = int(child.stdout.readline())
    # loading these rows takes a few tenths of a second here: kill it early
    time.sleep(random.uniform(0, 0.08 if ready == "loading" else 0.05))
    child.kill()
    child.wait(10)
    with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
        assert rt.status(job_id) is Status.SHUTDOWN
        if rt.status(job_id) is Status.SHUTDOWN:
            rt.start(job_id)
        info = rt.wait(job_id, timeout=120)
        assert info.status is Status.FINISHED
        bad = len(range(7, ROWS, 1000))
        assert (info.succeeded, info.rejected) == (ROWS - bad, bad)
        con = rt.store.reader()
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM big").fetchone() == (
            ROWS - bad, ROWS - bad)
        assert con.execute("SELECT count(*), count(DISTINCT line_no) FROM rejects "
                           "WHERE job_id = ?", [job_id]).fetchone() == (bad, bad)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE "
                           "'_jobobs%'").fetchone() == (0,)
