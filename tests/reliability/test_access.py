"""Trying to get in where one may not: each attempt fails. (The token, localhost-only
listening, the owner-only server file and the viewer role are tried in test_server.py and
test_browser.py; SQL from dashboard inputs in test_dashboard.py.)"""

import os

import pytest
from serving import Server, cli

import jobobs
from jobobs.model.errors import JobobsError

pytestmark = pytest.mark.slow

TARGETS = [
    "../elsewhere/out.csv",            # up and out
    "sub/../../elsewhere/out.csv",     # up and out, in the middle
    "link/out.csv",                    # a symbolic link that leads out
    "/etc/jobobs-out.csv",             # somewhere else entirely
]


def test_exports_cannot_leave_their_folders(tmp_path):
    allowed = tmp_path / "exports"
    (allowed / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", allowed / "link")
    server = Server(str(tmp_path / "jobs.duckdb"), "--export-dir", str(allowed))
    server.wait_ready()
    try:
        with jobobs.connect(server.db) as client:
            for target in TARGETS:
                path = target if target.startswith("/") else str(allowed / target)
                with pytest.raises(JobobsError, match="outside the folders exports may"):
                    client.submit_export(path, query="SELECT 1 AS x")
                result = cli("export", "--query", "SELECT 1 AS x", "--to", path,
                             "--db", server.db)
                assert result.returncode == 1 and "outside the folders" in result.stderr
            inside = client.submit_export(str(allowed / "sub" / "ok.csv"), query="SELECT 1 AS x")
            assert client.wait(inside, progress=False, timeout=20).status.value == "finished"
            assert client.jobs()["id"].tolist() == [inside]  # nothing else was accepted
        assert not list((tmp_path / "elsewhere").iterdir())
        assert not os.path.exists("/etc/jobobs-out.csv")
    finally:
        assert server.stop() == 0
