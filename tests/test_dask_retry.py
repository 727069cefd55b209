"""An import on a Dask worker that fails and is retried goes on from its checkpoint: its
staging tables (in the worker's scratch) stay for the retry."""

import gzip
import subprocess
import sys

import pytest
from serving import Server

import jobobs
from jobobs import Status
from jobobs.testing import wait_until


@pytest.mark.slow
def test_an_import_on_a_dask_worker_is_retried_from_its_checkpoint(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv.gz"
    first.write_text("id,v\n" + "".join(f"{i},{i}\n" for i in range(1, 1001)))
    whole = gzip.compress(("id,v\n" + "".join(f"{i},{i}\n" for i in range(1001, 2001))
                           ).encode())
    second.write_bytes(whole[: len(whole) // 2])  # cut short: the first run fails on it
    server = Server(str(tmp_path / "jobs.duckdb"), "--executor", "dask", "--dask-workers",
                    "1", "--export-dir", str(tmp_path), workers=1).wait_ready(120)
    try:
        with jobobs.connect(server.db) as client:
            job_id = client.submit_import([str(first), str(second)], "t", key=["id"],
                                          columns={"id": "BIGINT", "v": "BIGINT"},
                                          retry=jobobs.Retry(2, delay=3600))
            wait_until(lambda: client.info(job_id).retried == 1, timeout=120)
            second.write_bytes(whole)  # mended while the retry waits
            assert client.info(job_id).status is Status.QUEUED
            client.pause(job_id)  # resume now rather than in an hour
            client.resume(job_id)
            info = client.wait(job_id, 180, progress=False)
            assert info.status is Status.FINISHED, client.journal(job_id)["message"].tolist()
            messages = client.journal(job_id)["message"].tolist()
            assert "The staging tables stay for the retry" in messages
            assert client.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM t"
                              ).iloc[0].tolist() == [2000, 2000]
    finally:
        assert server.stop(timeout=60) == 0, server.output()


HOLDER = ("import duckdb, sys\n"
          "con = duckdb.connect(sys.argv[1])\n"
          "print('held', flush=True)\n"
          "sys.stdin.read()\n")


def test_a_run_waits_for_the_scratch_its_previous_run_still_holds(tmp_path):
    """A run the server gave up on (its worker seemed lost) holds the job's scratch until it
    ends; the next run waits for it, and says who holds it if it never lets go."""
    import duckdb

    from jobobs.dask.worker import attach_scratch
    from jobobs.model.errors import JobobsError

    path = str(tmp_path / "job-1.duckdb")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        con = duckdb.connect()
        held = rf"still held by another process after 0.5 s.*{holder.pid}"
        with pytest.raises(JobobsError, match=held):
            attach_scratch(con, path, "s", wait=0.5)
        waits = []

        def waiting():  # let go once the run has found the file held
            waits.append(1)
            if holder.poll() is None:
                holder.stdin.close()
                holder.wait(30)

        attach_scratch(con, path, "s", wait=60, waiting=waiting)
        assert waits and con.execute("SELECT database_name FROM duckdb_databases() "
                                     "WHERE database_name = 's'").fetchall() == [("s",)]
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
