"""Faults while jobs run: a full disk, a read-only target, a target table dropped under an
import. Each job fails with one clear message; the server keeps serving."""

import os
import subprocess
import time

import duckdb
import pytest
from serving import Server, plain_duckdb

import jobobs

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny(tmp_path):
    """A 256 KiB file system, and a read-only one."""
    full, frozen = tmp_path / "full", tmp_path / "frozen"
    for folder in (full, frozen):
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                       check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(frozen)], check=True)
    yield full, frozen
    for folder in (full, frozen):
        subprocess.run(["umount", str(folder)], check=True)


def test_disk_full_and_read_only_targets_fail_the_export_cleanly(tmp_path, tiny):
    full, frozen = tiny
    server = Server(str(tmp_path / "jobs.duckdb"), "--export-dir", str(full),
                    "--export-dir", str(frozen)).wait_ready()
    try:
        with jobobs.connect(server.db) as client:
            big = "SELECT range AS id, repeat('x', 100) AS filler FROM range(100000)"
            for target, words in ((full / "big.csv", "No space left on device"),
                                  (frozen / "out.csv", "Read-only file system")):
                job_id = client.submit_export(str(target), query=big)
                info = client.wait(job_id, progress=False, timeout=60)
                assert info.status.value == "failed"
                assert words in info.error and str(target.name) in info.error
                assert not target.exists()  # nothing partial under the target's name
                assert not [p for p in target.parent.iterdir()]  # nor beside it
            small = client.submit_export(str(full / "small.csv"), query="SELECT 1 AS x")
            assert client.wait(small, progress=False, timeout=30).status.value == "finished"
    finally:
        assert server.stop() == 0, server.output()


def test_a_target_table_dropped_mid_import_fails_the_import(tmp_path):
    source = tmp_path / "rows.csv"
    duckdb.sql(f"COPY (SELECT range AS id, 'row ' || range AS name FROM range(1000000)) "
               f"TO '{source}' (HEADER)")
    server = Server(str(tmp_path / "jobs.duckdb")).wait_ready()
    try:
        with jobobs.connect(server.db) as client:
            job_id = client.submit_import(str(source), "target", on_failure="keep",
                                          chunk_rows=2000,
                                          columns={"id": "BIGINT", "name": "VARCHAR"})
            raw = plain_duckdb(server.uri, server.token)
            deadline = time.monotonic() + 30
            while True:  # between two chunks the drop goes through
                assert time.monotonic() < deadline, "the table could not be dropped"
                try:
                    now = client.info(job_id)  # well inside the import, not at its end
                    if now.status.value == "running" and 0 < now.succeeded < 500_000:
                        raw.execute("FROM remote.query('DROP TABLE target')").fetchall()
                        break
                except duckdb.Error:
                    pass
                time.sleep(0.01)
            info = client.wait(job_id, progress=False, timeout=60)
            assert info.status.value == "failed" and "target" in info.error
            assert "Traceback" not in info.error and len(info.error.splitlines()) == 1
            other = client.submit("jobs:steps", 3, 0.0)
            assert client.wait(other, progress=False, timeout=30).status.value == "finished"
    finally:
        assert server.stop() == 0, server.output()
    assert os.path.exists(source)
