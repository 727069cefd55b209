"""Jobs on a real Dask cluster: ``jobobs serve --executor dask --dask-workers 2`` starts a
``distributed.LocalCluster`` of two worker processes on loopback; the workers report to
the server through Quack. One server serves the module's tests."""

from __future__ import annotations

import csv
import glob
import gzip
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext

import duckdb
import pytest
from serving import JOBOBS, Server, env, wait_status

import jobobs
from jobobs.testing import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ORDER_COLUMNS = {"id": "BIGINT", "customer": "VARCHAR", "amount": "DOUBLE"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    server = Server(str(folder / "jobs.duckdb"), "--executor", "dask", "--dask-workers", "2",
                    "--export-dir", str(folder), workers=2).wait_ready(120)
    client = jobobs.connect(server.db)
    yield server, client, folder
    client.close()
    assert server.stop(timeout=30) == 0, server.output()
    assert "Traceback" not in server.output(), server.output()


@pytest.fixture(scope="module")
def scheduler(cluster):
    """A Dask client of the server's cluster, to see its workers."""
    import distributed

    server = cluster[0]
    address = wait_until(lambda: re.search(r"jobs run on (tcp://\S+),", server.output()),
                         timeout=30, message="the server names its Dask scheduler").group(1)
    with distributed.Client(address, timeout="30s") as dask_client:
        yield dask_client


def cluster_workers(dask_client) -> set[str]:
    """The workers the scheduler lists now (not the client's cached copy)."""
    return set(dask_client.sync(dask_client.scheduler.identity, n_workers=-1)["workers"])


def journal(client, job_id) -> list[str]:
    return client.journal(job_id)["message"].tolist()


def running_on_worker(client, job_id) -> dict:
    """The job's row once a worker has claimed its run."""
    return wait_until(lambda: str((row := client.info(job_id)).worker).startswith("tcp://")
                      and row.status == "running" and row, timeout=60,
                      message=f"job {job_id} running on a worker")


def write_orders(path, count: int, bad_every: int = 0) -> int:
    """A CSV of ``count`` orders; every ``bad_every``-th has a text amount. Returns the
    number of good rows."""
    good = 0
    with open(path, "w", newline="") as file:
        out = csv.writer(file)
        out.writerow(["id", "customer", "amount"])
        for i in range(1, count + 1):
            bad = bad_every and i % bad_every == 0
            out.writerow([i, f"c{i % 97}", "n/a" if bad else f"{i % 1000}.25"])
            good += not bad
    return good


def test_a_python_job_runs_on_a_worker_and_reports_everything(cluster):
    server, client, _ = cluster
    job_id = client.submit("jobs:steps", count=60, delay=0.01, reject_every=10)
    assert wait_status(client, job_id, "finished", "failed", timeout=60) == "finished"
    row = client.info(job_id)
    assert row.worker.startswith("tcp://127.0.0.1:")
    assert row.pid not in (None, server.process.pid)
    assert (row.processed, row.rejected, row.succeeded) == (60, 6, 54)
    lines = journal(client, job_id)
    assert any(f"Dask worker {row.worker}" in line for line in lines)
    assert "starting at 0" in lines and lines[-1].startswith("End of job (60 processed")
    seqs = client.journal(job_id)["seq"].tolist()
    assert seqs == list(range(1, len(seqs) + 1))  # one numbering, server's and worker's
    rejects = client.rejects(job_id)
    assert rejects["seq"].tolist() == list(range(1, 7))
    assert set(rejects["reason"]) == {"bad item"}
    statuses = client.transitions(job_id)["to_status"].tolist()
    assert statuses == ["editing", "queued", "running", "finished"]


def test_a_failing_job_fails_with_its_traceback(cluster):
    _, client, _ = cluster
    job_id = client.submit("jobs:boom")
    assert wait_status(client, job_id, "finished", "failed", timeout=60) == "failed"
    row = client.info(job_id)
    assert row.error.startswith("ValueError")
    assert any("Traceback" in line and "ValueError" in line for line in journal(client, job_id))


def test_import_and_export_on_workers(cluster):
    server, client, folder = cluster
    source = folder / "orders.csv"
    good = write_orders(source, 30_000, bad_every=1000)
    job_id = client.submit_import(str(source), "orders", key=["id"], on_failure="keep",
                                  chunk_rows=4_000, max_rejects=None,
                                  columns=ORDER_COLUMNS)
    assert wait_status(client, job_id, "finished", "failed", timeout=90) == "finished", \
        journal(client, job_id)
    count, distinct, low, high = client.sql(
        "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM orders").iloc[0]
    assert (count, distinct, low, high) == (good, good, 1, 30_000 - 1)
    rejects = client.rejects(job_id)
    assert len(rejects) == 30 and rejects["raw"].str.contains("n/a").all()
    assert client.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE "
                      "'_jobobs_inbox_%'").iloc[0, 0] == 0
    assert not os.path.exists(f"{server.db}.scratch/job-{job_id}.duckdb")

    target = folder / "big-orders.csv"
    export = client.submit_export(str(target), query="SELECT * FROM orders WHERE amount > 500",
                                  watermark="id")
    assert wait_status(client, export, "finished", "failed", timeout=60) == "finished", \
        journal(client, export)
    expected = client.sql("SELECT count(*) FROM orders WHERE amount > 500").iloc[0, 0]
    with open(target) as file:
        assert sum(1 for _ in file) == expected + 1
    big = folder / "big.csv.gz"  # seconds of streaming, while the worker reports meanwhile
    export_big = client.submit_export(str(big), query="SELECT range AS n, 'row ' || range AS "
                                      "label FROM range(2000000)")
    assert wait_status(client, export_big, "finished", "failed", timeout=90) == "finished", \
        journal(client, export_big)
    with gzip.open(big, "rt") as file:
        assert sum(1 for _ in file) == 2_000_001
    mark = client.sql("SELECT value FROM export_watermarks WHERE job_id = ?", [export])
    assert mark.iloc[0, 0] == str(client.sql(
        "SELECT max(id) FROM orders WHERE amount > 500").iloc[0, 0])


def test_pause_resume_and_cancel_on_a_worker(cluster):
    _, client, _ = cluster
    job_id = client.submit("jobs:steps", count=400, delay=0.02, reject_every=50)
    running_on_worker(client, job_id)
    wait_until(lambda: client.info(job_id).processed >= 20, timeout=30, message="progress")
    client.pause(job_id)
    wait_status(client, job_id, "paused", timeout=60)
    paused_at = client.info(job_id).processed
    time.sleep(0.5)
    assert client.info(job_id).processed == paused_at  # nothing runs while paused
    client.resume(job_id)
    assert wait_status(client, job_id, "finished", "failed", timeout=60) == "finished"
    row = client.info(job_id)
    assert (row.processed, row.rejected, row.run_count) == (400, 8, 2)
    assert client.rejects(job_id)["line_no"].tolist() == list(range(1, 401, 50))

    other = client.submit("jobs:steps", count=1000, delay=0.02)
    running_on_worker(client, other)
    client.cancel(other)
    wait_status(client, other, "canceled", timeout=60)
    commands = client.commands(other)
    assert commands["requested_by"].iloc[-1] == client.actor


def kill_worker(client, scheduler, job_id) -> dict:
    """Kill the job's worker; return the job's row from before. The cluster replaces the
    worker (its nanny starts another) before the test goes on."""
    row = running_on_worker(client, job_id)
    os.kill(int(row.pid), signal.SIGKILL)
    assert wait_status(client, job_id, "shutdown", timeout=30) == "shutdown"
    wait_until(lambda: (seen := cluster_workers(scheduler)) and len(seen) == 2
               and row.worker not in seen, timeout=120, interval=0.2,
               message="a new worker in place of the killed one")
    return row


def test_a_killed_worker_leaves_the_job_shutdown_and_start_resumes_it_elsewhere(cluster,
                                                                               scheduler):
    _, client, _ = cluster
    job_id = client.submit("jobs:steps", count=300, delay=0.02, reject_every=25)
    wait_until(lambda: client.info(job_id).processed >= 60, timeout=60, message="progress")
    killed = kill_worker(client, scheduler, job_id)
    lost = [line for line in journal(client, job_id) if "died" in line]
    assert lost and killed.worker in lost[0] and str(killed.pid) in lost[0], journal(client, job_id)
    assert 60 <= client.info(job_id).processed < 300
    client.start(job_id)
    assert wait_status(client, job_id, "finished", "failed", timeout=90) == "finished"
    row = client.info(job_id)
    assert row.worker != killed.worker and row.pid != killed.pid
    assert (row.processed, row.rejected) == (300, 12)
    rejects = client.rejects(job_id)
    assert rejects["line_no"].tolist() == list(range(1, 301, 25))  # each once
    assert any(line.startswith("Resuming from the checkpoint") for line in journal(client, job_id))


@contextmanager
def server_scratch_unseen(server):
    """Hide the marker by which workers see that the server reads their scratch folder
    (as on a cluster whose scratch the server has not mounted): rows go through Quack."""
    (marker,) = glob.glob(f"{server.db}.scratch/.jobobs-server-*")
    os.rename(marker, marker + ".hidden")
    try:
        yield
    finally:
        os.rename(marker + ".hidden", marker)


@pytest.mark.parametrize("into", ["table", "table-through-quack", "dataset"])
def test_an_import_resumes_after_its_worker_dies_without_loss_or_duplicates(cluster, scheduler,
                                                                           into):
    server, client, folder = cluster
    with server_scratch_unseen(server) if into == "table-through-quack" else nullcontext():
        import_killed_and_resumed(client, scheduler, folder, into)


def import_killed_and_resumed(client, scheduler, folder, into):
    source = folder / f"many-{into}.csv"
    good = write_orders(source, 400_000, bad_every=5_000)
    options = {}
    if into == "dataset":  # Parquet files on storage the workers share, not the server's table
        (folder / "many").mkdir()
        options["dataset"] = str(folder / "many")
    table = "many_" + into.replace("-", "_")
    job_id = client.submit_import(str(source), table, on_failure="keep",
                                  chunk_rows=10_000, key=["id"], max_rejects=None,
                                  columns=ORDER_COLUMNS, **options)
    wait_until(lambda: client.info(job_id).succeeded > 0 or client.info(job_id).status != "running",
               timeout=60, interval=0.02, message="rows loading")
    kill_worker(client, scheduler, job_id)

    def query(sql):  # a dataset is files: read here, since the server's sql reads no files
        if into != "dataset":
            return client.sql(sql.format(table))
        return duckdb.sql(sql.format(f"read_parquet('{folder / 'many' / '*.parquet'}')")).df()

    assert query("SELECT count(*) FROM {}").iloc[0, 0] < good  # it died part way
    client.start(job_id)
    assert wait_status(client, job_id, "finished", "failed", timeout=120) == "finished", \
        journal(client, job_id)
    count, distinct = query("SELECT count(*), count(DISTINCT id) FROM {}").iloc[0]
    assert count == distinct == good
    assert len(client.rejects(job_id)) == 400_000 // 5_000
    sent = [line for line in journal(client, job_id) if line.startswith("Rows ")]
    if into != "dataset":
        way = "through Quack" if into == "table-through-quack" else "as Parquet"
        assert sent and all(way in line for line in sent)
    leftovers = glob.glob(f"{folder}/jobs.duckdb.scratch/job-{job_id}*")
    assert not leftovers and not client.sql(
        "FROM duckdb_tables() WHERE table_name LIKE '_jobobs_inbox_%'").shape[0]


def test_a_live_worker_never_seems_gone_while_the_dask_client_refreshes_its_cache():
    """Dask's client replaces its cached scheduler info every 2 s with one that lists no
    workers. Read from that cache, a live worker seemed gone now and then, and its job was
    cut short as if the worker had died. Here the client refreshes every 5 ms."""
    import dask

    from jobobs.dask.executor import DaskExecutor

    with dask.config.set({"distributed.client.scheduler-info-interval": "5ms"}):
        executor = DaskExecutor(workers=1)
    try:
        seen = [len(executor.workers(fresh=True)) for _ in range(1000)]
        assert seen.count(1) == len(seen), f"{seen.count(0)} of {len(seen)} saw no worker"
        assert executor.capacity() == 1
    finally:
        executor.close()


def test_a_local_cluster_keeps_its_size_when_dask_gives_up_on_a_worker():
    """A dead worker's nanny starts another, but the cluster closes that nanny for good when
    no worker of its name is back within Dask's lost-worker-timeout (15 s: a slow restart
    on a busy machine, or a second death meanwhile). Here the timeout is 0 s, so Dask gives
    up at once; the executor starts another worker."""
    import dask

    from jobobs.dask.executor import DaskExecutor

    with dask.config.set({"distributed.deploy.lost-worker-timeout": "0s"}):
        executor = DaskExecutor(workers=1)
        try:
            ((worker, pid),) = executor.client.run(os.getpid).items()
            os.kill(pid, signal.SIGKILL)
            # The new worker registers with the scheduler before its nanny's start returns,
            # and the cluster counts the nanny only then: wait for both.
            wait_until(lambda: (seen := executor.workers(fresh=True)) and worker not in seen
                       and len(executor.cluster.workers) == 1,
                       timeout=90, interval=0.2, message="another worker in the cluster")
            assert executor.client.submit(sum, [1, 2]).result(timeout=60) == 3
        finally:
            executor.close()


def test_without_dask_everything_else_works_and_the_executor_says_what_to_install(tmp_path):
    script = (
        "import sys; sys.modules['distributed'] = None\n"
        "import jobobs\n"
        "from jobobs.kinds import importing\n"
        "with jobobs.Runtime(sys.argv[1], workers=1) as rt:\n"
        "    assert rt.wait(rt.submit(lambda ctx: None).id).status == 'finished'\n"
        "assert 'dask' not in sys.modules\n"
        "from jobobs.cli import main\n"
        "main(['serve', '--db', sys.argv[1], '--executor', 'dask'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "j.duckdb")],
                            capture_output=True, text=True, env=env(), timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == ("Error: the Dask executor needs dask and distributed: "
                                     "pip install 'jobobs[dask]'")


def test_the_dask_options_are_checked_before_anything_starts(tmp_path):
    result = subprocess.run([JOBOBS, "serve", "--db", str(tmp_path / "j.duckdb"),
                             "--scheduler", "tcp://127.0.0.1:1"], capture_output=True,
                            text=True, env=env(), timeout=60)
    assert result.returncode == 2 and "go with --executor dask" in result.stderr
    result = subprocess.run([JOBOBS, "serve", "--db", str(tmp_path / "j.duckdb"), "--executor",
                             "dask", "--scheduler", "tcp://127.0.0.1:1", "--quack-port", "1"],
                            capture_output=True, text=True, env=env(), timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot reach the Dask scheduler at "
                                    "tcp://127.0.0.1:1"), result.stderr


def test_stopping_the_server_stops_jobs_on_workers_at_a_checkpoint(tmp_path):
    server = Server(str(tmp_path / "jobs.duckdb"), "--executor", "dask", "--dask-workers", "1",
                    workers=1).wait_ready(120)
    with jobobs.connect(server.db) as client:
        job_id = client.submit("jobs:steps", count=1000, delay=0.02)
        wait_until(lambda: client.info(job_id).processed >= 10, timeout=60, message="progress")
    assert server.stop(timeout=60) == 0, server.output()  # at a checkpoint: see the state
    with jobobs.Runtime(server.db, workers=1, handle_signals=False) as rt:
        info = rt.job(job_id)
        assert info.status == "shutdown"
        state = json.loads(info.checkpoint)["state"]["i"]
        assert 10 <= state == info.processed < 1000  # the worker's last checkpoint, applied
        commands = rt.store.reader().execute(
            "SELECT command, requested_by FROM job_commands WHERE job_id = ?", [job_id]).fetchall()
        assert ("shutdown", "runtime") in commands
        rt.start(job_id)  # and it finishes on this process's threads, from there
        assert rt.wait(job_id, timeout=60).processed == 1000


def test_a_jobs_own_logging_reaches_its_journal_on_a_worker(cluster):
    _, client, _ = cluster
    job_id = client.submit("jobs:uses_logging")
    assert wait_status(client, job_id, "finished", "failed", timeout=60) == "finished"
    lines = journal(client, job_id)
    assert {"legacy info line", "legacy warning"} <= set(lines)
    assert any(line.startswith("legacy failure") and "ZeroDivisionError" in line for line in lines)
    assert client.info(job_id).has_warning


def test_a_batch_written_twice_is_applied_once(tmp_path):
    from jobobs.dask.executor import Reports

    with jobobs.Runtime(str(tmp_path / "j.duckdb"), workers=1, handle_signals=False) as rt:
        job = rt.submit(lambda ctx: None, start=False)
        rt.flush()
        body = json.dumps({
            "lines": [[time.time(), "INFO", None, "hello from a worker"]],
            "row": {"processed": 5, "status": "finished"},  # status is not a worker's to set
            "rejects": [[999, 1, time.time(), "error", "f.csv", 3, "a", "3,x", None, "bad",
                         "bad value"]],
            "reject_seq": 1})
        for _ in range(2):  # a retry after the first write's reply was lost
            with rt.store.transaction() as con:
                con.execute("INSERT INTO job_reports VALUES (?, 1, 1, now()::TIMESTAMP, "
                            "'tcp://w', ?)", [job.id, body])
        reports = Reports(rt.ledger, job.id, 1)
        assert reports.apply() is None and reports.apply() is None
        rt.flush()
        con = rt.store.reader()
        assert con.execute("SELECT count(*) FROM journal WHERE job_id = ? AND message = "
                           "'hello from a worker'", [job.id]).fetchone() == (1,)
        assert con.execute("SELECT job_id, seq, raw FROM rejects").fetchall() == [
            (job.id, 1, "3,x")]
        assert con.execute("SELECT processed, status FROM jobs WHERE id = ?",
                           [job.id]).fetchone() == (5, "editing")
        assert con.execute("SELECT count(*) FROM job_reports").fetchone() == (0,)


def _specs_on_scheduler(dask_scheduler) -> list[bytes]:
    import pickle

    return [pickle.dumps(task.run_spec) for key, task in dask_scheduler.tasks.items()
            if str(key).startswith("jobobs-")]


def _specs_on_worker(dask_worker) -> list[bytes]:
    import pickle

    return [pickle.dumps(task.run_spec) for task in dask_worker.state.tasks.values()
            if str(task.key).startswith("jobobs-")]


def test_the_token_is_in_no_task_and_the_scratch_folder_is_the_owners_only(cluster, scheduler):
    server, client, _ = cluster
    assert stat.S_IMODE(os.stat(f"{server.db}.scratch").st_mode) == 0o700
    job_id = client.submit("jobs:steps", count=300, delay=0.02)
    running_on_worker(client, job_id)
    on_scheduler = scheduler.run_on_scheduler(_specs_on_scheduler)
    on_workers = [spec for specs in scheduler.run(_specs_on_worker).values() for spec in specs]
    assert on_scheduler and on_workers  # the running job's task, as each side keeps it
    for spec in on_scheduler + on_workers:
        assert server.uri.encode() in spec  # the job's assignment, with the address
        assert server.token.encode() not in spec
    assert wait_status(client, job_id, "finished", "failed", timeout=60) == "finished"
