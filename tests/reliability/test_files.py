"""The files jobobs writes: where an export was allowed when it is written (not only when it
was submitted), through names nobody can plant a link at, and the server's own files
readable by their owner only. Real folders, real symbolic links, a real ``jobobs serve``."""

import os
import stat

import duckdb
import pytest
from serving import Server, wait_status

import jobobs
from jobobs.db import files
from jobobs.kinds import exporting, importing
from jobobs.model.errors import JobobsError
from jobobs.model.states import Status
from jobobs.testing import wait_until

pytestmark = pytest.mark.slow


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def usual_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@pytest.fixture
def folders(tmp_path):
    """An export folder with a sub-folder, a folder outside it, and a file out there that
    no export may touch."""
    allowed, outside = tmp_path / "exports", tmp_path / "elsewhere"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("precious")
    return allowed, outside, victim


def test_an_export_whose_folder_became_a_link_while_it_waited_is_refused_when_written(
        tmp_path, folders):
    allowed, outside, _ = folders
    server = Server(str(tmp_path / "jobs.duckdb"), "--export-dir", str(allowed),
                    workers=1).wait_ready()
    try:
        with jobobs.connect(server.db) as client:
            busy = client.submit("jobs:steps", 100_000, 0.01)  # the one worker is busy
            wait_status(client, busy, "running")
            export = client.submit_export(str(allowed / "sub" / "out.csv"),
                                          query="SELECT 42 AS answer")
            assert client.info(export).status.value == "queued"  # accepted: it was inside
            os.rename(allowed / "sub", allowed / "sub-before")
            os.symlink(outside, allowed / "sub")  # meanwhile the folder leads out
            client.cancel(busy)
            assert wait_status(client, export, "finished", "failed") == "failed"
            assert "is not inside" in client.info(export).error
        assert list(outside.iterdir()) == []
        assert list((allowed / "sub-before").iterdir()) == []
    finally:
        assert server.stop() == 0, server.output()


def test_a_folder_moved_out_while_the_file_is_written_gets_nothing(folders):
    allowed, outside, _ = folders
    con = duckdb.connect()
    with pytest.raises(JobobsError, match="is not inside"), \
            files.replacing(str(allowed / "sub" / "out.csv"), os.path.realpath(allowed)) as path:
        con.execute(f"COPY (SELECT 42 AS answer) TO '{path}' (USE_TMP_FILE false)")
        os.rename(allowed / "sub", outside / "sub")  # the file is written, not yet in place
    assert list((outside / "sub").iterdir()) == []  # nor the private folder: all gone


@pytest.fixture
def runtime(tmp_path, folders):
    allowed, _, _ = folders
    with jobobs.Runtime(str(tmp_path / "jobs.duckdb"), workers=1, handle_signals=False,
                        export_dirs=[str(allowed)]) as rt:
        yield rt


def plant(folder, names, victim) -> None:
    for name in names:
        os.symlink(victim, folder / name)


def test_links_planted_at_the_temporary_names_redirect_no_export(runtime, folders):
    allowed, _, victim = folders
    target = allowed / "out.csv"
    target.write_text("the last export\n")  # DuckDB writes beside a file that exists
    for job_id in range(1, 6):  # the names exports used, and DuckDB's beside them
        plant(allowed, [f".out.csv.jobobs-{job_id}.tmp", f"tmp_.out.csv.jobobs-{job_id}.tmp"],
              victim)
    plant(allowed, ["tmp_out.csv"], victim)
    for _ in range(2):
        job = exporting.submit(runtime, str(target), query="SELECT 42 AS answer")
        assert runtime.wait(job.id, timeout=30).status is Status.FINISHED
        assert victim.read_bytes() == b"precious"
        assert not target.is_symlink() and target.read_text() == "answer\n42\n"
        assert mode(target) == usual_mode()  # an export is not made private
    assert sorted(p.name for p in allowed.iterdir() if not p.is_symlink()) == ["out.csv", "sub"]


def test_links_planted_at_a_datasets_temporary_names_redirect_nothing(runtime, folders,
                                                                       tmp_path):
    allowed, _, victim = folders
    source = tmp_path / "rows.csv"
    source.write_text("id,name\n1,a\n2,b\n")
    dataset = allowed / "dataset"
    dataset.mkdir()
    part = "part-00000001-000000000000.parquet"
    plant(dataset, [f".{part}.tmp", f"tmp_.{part}.tmp"], victim)
    job = importing.submit(runtime, str(source), "rows", dataset=str(dataset))
    assert runtime.wait(job.id, timeout=30).status is Status.FINISHED
    assert victim.read_bytes() == b"precious"
    rows = duckdb.sql(f"SELECT id, name FROM '{dataset}/*.parquet' ORDER BY id").fetchall()
    assert rows == [(1, "a"), (2, "b")]


def test_the_temporary_name_is_new_private_and_unguessable(folders):
    allowed, _, _ = folders
    seen = set()
    for _ in range(2):
        with files.replacing(str(allowed / "out.csv")) as path:
            folder = os.path.dirname(os.path.realpath(path))
            info = os.stat(folder)
            assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (os.geteuid(), 0o700)
            assert os.listdir(folder) == []  # made for this file alone
            name = os.path.basename(folder)
            assert name.startswith(".out.csv.jobobs-") and len(name) > len(".out.csv.jobobs-") + 8
            seen.add(name)
            with open(path, "w") as file:
                file.write("x")
    assert len(seen) == 2
    assert sorted(os.listdir(allowed)) == ["out.csv", "sub"]


def test_the_database_its_wal_and_a_scripts_database_are_the_owners_only(tmp_path):
    db = str(tmp_path / "jobs.duckdb")
    server = Server(db).wait_ready()
    try:
        with jobobs.connect(db) as client:
            job_id = client.submit("jobs:steps", 5, 0.0)
            wait_status(client, job_id, "finished")
            wait_until(lambda: os.path.exists(db + ".wal"), timeout=30, message="a WAL")
            assert mode(db) == 0o600
            assert mode(db + ".wal") == 0o600
            assert mode(db + ".server.json") == 0o600
            export = client.submit_export(str(tmp_path / "out.csv"), query="SELECT 42 AS x")
            assert wait_status(client, export, "finished", "failed") == "finished"
            assert mode(tmp_path / "out.csv") == usual_mode()  # exports are for sharing
    finally:
        assert server.stop() == 0, server.output()
    other = str(tmp_path / "script.duckdb")
    with jobobs.Runtime(other, workers=1, handle_signals=False) as rt:
        assert rt.wait(rt.submit(lambda ctx: None).id, timeout=30).status is Status.FINISHED
        assert mode(other) == 0o600
