"""An import on a Dask worker that fails and is retried goes on from its checkpoint: its
staging tables (in the worker's scratch) stay for the retry."""

import gzip

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
