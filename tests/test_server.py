"""``jobobs serve`` as a real subprocess, driven from other processes: the CLI,
``jobobs.connect()`` and plain DuckDB attached through Quack."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request

import duckdb
import pytest
from serving import Server, cli, env, listening, plain_duckdb, wait_status

import jobobs
from jobobs.db import endpoint
from jobobs.db.quack import ServerUnavailable
from jobobs.model.errors import IllegalRequest, JobDefinitionError, JobNotFound, JobobsError


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("served") / "jobs.duckdb")
    running = Server(db).wait_ready()
    yield running
    assert running.stop() == 0, running.output()


@pytest.fixture
def client(server):
    with jobobs.connect(server.db) as connected:
        yield connected


def test_connect_finds_the_server_and_answers_as_dataframes(server, client):
    assert client.served and client.where == server.uri
    job_id = client.submit("jobs:steps", 5, 0.0, 2, name="five steps")
    info = client.wait(job_id, timeout=20, progress=False)
    assert (info.status.value, info.processed, info.rejected) == ("finished", 5, 3)
    assert client.jobs(name="five steps")["id"].tolist() == [job_id]
    assert client.job(job_id)["label"].iloc[0] == "Finished"
    assert "starting at 0" in client.journal(job_id)["message"].tolist()
    assert client.rejects(job_id)["line_no"].tolist() == [1, 3, 5]
    assert client.transitions(job_id)["to_status"].tolist() == [
        "editing", "queued", "running", "finished"]
    counts = client.sql("SELECT count(*) AS n FROM journal WHERE job_id = ? AND level = ?",
                        [job_id, "INFO"])
    assert counts["n"].iloc[0] >= 2


def test_pause_resume_and_cancel_from_a_client_reach_a_running_job(client):
    job_id = client.submit("jobs:steps", 400, 0.01)
    wait_status(client, job_id, "running")
    assert client.pause(job_id, by="dana") in ("pausing", "paused")
    wait_status(client, job_id, "paused")
    processed = client.info(job_id).processed
    assert 0 < processed < 400
    assert client.resume(job_id) == "queued"
    info = client.wait(job_id, timeout=30, progress=False)
    assert (info.status.value, info.processed) == ("finished", 400)
    actors = client.transitions(job_id).set_index("to_status")["actor"]
    assert actors["pausing"] == "dana"

    other = client.submit("jobs:steps", 1000, 0.01)
    wait_status(client, other, "running")
    client.cancel(other)
    assert client.wait(other, timeout=20, progress=False).status.value == "canceled"


@pytest.mark.slow
def test_the_command_line_goes_through_the_server(server, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text("id,name\n1,ann\nx,bob\n3,cy\n")
    result = cli("import", source, "--table", "people", "--columns", "id BIGINT, name VARCHAR",
                 "--db", server.db, "--json")
    job = json.loads(result.stdout)
    assert result.returncode == 0 and job["status"] in ("queued", "running", "finished")
    result = cli("show", job["id"], "--db", server.db, "--json")
    assert json.loads(result.stdout)["kind"] == "import"
    result = cli("run", "jobs:steps", "300", "0.01", "--db", server.db, "--json")
    slow = json.loads(result.stdout)["id"]
    result = cli("pause", slow, "--db", server.db)
    assert result.returncode == 0 and result.stdout in (f"job {slow}: ◐ Pause in progress\n",
                                                        f"job {slow}: ❚❚ Paused\n")
    result = cli("cancel", slow, "--db", server.db, "--json")
    assert json.loads(result.stdout)["status"] in ("canceling", "canceled")
    result = cli("export", "--table", "people", "--to", tmp_path / "out.csv", "--db", server.db,
                 "--wait", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["status"] == "finished"
    assert (tmp_path / "out.csv").read_text().split() == ["id,name", "1,ann", "3,cy"]
    result = cli("sql", "SELECT kind, count(*) AS n FROM jobs WHERE kind = 'export' "
                 "GROUP BY kind", "--db", server.db, "--json")
    assert json.loads(result.stdout) == [{"kind": "export", "n": 1}]
    result = cli("journal", job["id"], "--follow", "--db", server.db)
    assert result.returncode == 0 and "End of import" in result.stdout


def test_plain_duckdb_attaches_and_queries_from_another_process(server):
    script = (
        "import sys, duckdb\n"
        "from jobobs.db.quack import extension_path\n"
        "con = duckdb.connect()\n"
        "con.execute(f\"LOAD '{extension_path('httpfs')}'\")\n"
        "con.execute(f\"LOAD '{extension_path('quack')}'\")\n"
        "con.execute(f\"ATTACH '{sys.argv[1]}' AS jobs_server (TOKEN '{sys.argv[2]}')\")\n"
        "print(con.execute(\"FROM jobs_server.query('SELECT count(*) FROM statuses')\")"
        ".fetchone()[0])\n"
        "print(con.execute('SELECT count(*) FROM jobs_server.statuses').fetchone()[0])\n"
    )
    result = subprocess.run([sys.executable, "-c", script, server.uri, server.token],
                            capture_output=True, text=True, timeout=60, env=env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10", "10"]


def test_a_wrong_or_missing_token_is_refused(server):
    with pytest.raises(duckdb.Error, match="Authentication failed"):
        plain_duckdb(server.uri, "not-the-token")
    con = duckdb.connect()
    from jobobs.db.quack import load

    load(con)
    with pytest.raises(duckdb.Error, match="token"):
        con.execute(f"FROM quack_query('{server.uri}', 'SELECT 1')").fetchall()
    with pytest.raises(ServerUnavailable, match="refused the token"):
        jobobs.connect(url=server.uri, token="not-the-token")


def test_endpoints_listen_on_localhost_and_the_token_stays_private(server):
    assert listening(server.quack_port) == ["127.0.0.1"]
    assert listening(server.port) == ["127.0.0.1"]
    mode = os.stat(endpoint.path_for(server.db)).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert server.token not in server.output()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=30) as page:
        assert page.status == 200


def test_bad_requests_get_one_clear_error_and_the_server_carries_on(server, client):
    with pytest.raises(JobNotFound):
        client.pause(987654)
    finished = client.jobs(status="finished")["id"].iloc[0]
    with pytest.raises(IllegalRequest, match="cannot pause a job that is 'finished'"):
        client.pause(int(finished))
    with pytest.raises(JobobsError, match='syntax error at or near "SELEC"'):
        client.sql("SELEC 1")
    with pytest.raises(duckdb.Error, match="no_such_table"):
        client.sql("SELECT * FROM no_such_table")
    with pytest.raises(JobobsError, match="DELETE statement"):
        client.sql("DELETE FROM jobs")
    with pytest.raises(JobDefinitionError, match="cannot be found"):
        client.submit("jobs:no_such_job")
    with pytest.raises(JobobsError, match="does not exist"):
        client.submit_import("/no/such/file.csv", table="t")
    # a spec any SQL client could write is checked by the server too
    raw = plain_duckdb(server.uri, server.token)
    (command_id,) = raw.execute(
        """FROM remote.query('INSERT INTO job_commands (id, command, requested_at,
           requested_by, spec) VALUES (nextval(''command_id_seq''), ''submit'',
           now()::TIMESTAMP, ''mallory'', ''{"kind": "shell"}'') RETURNING id')""").fetchone()
    from jobobs.access.client import acknowledged

    outcome, job_id = acknowledged(client.connection(), command_id, timeout=10)
    assert job_id is None and outcome.startswith("refused: a job spec is a JSON object")
    assert client.info(int(finished)).status.value == "finished"  # still answering


def test_a_second_server_on_the_same_database_says_where_the_first_is(server):
    result = cli("serve", "--db", server.db, "--port", "1", "--quack-port", "1")
    assert result.returncode == 1
    assert f"already serves {server.db}" in result.stderr
    assert server.endpoint.dashboard in result.stderr and server.token not in result.stderr


def test_once_the_endpoint_is_found_the_server_is_all_there_and_stops_cleanly(tmp_path):
    # A rules file with a target: its notifier starts after the dashboard and Quack. A client
    # that finds the endpoint finds the banner printed and a SIGTERM handled, not fatal.
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rules]]\nname = "x"\nwhen = "failed"\nnotify = ["json://127.0.0.1:9/"]\n')
    rules.chmod(0o600)
    db = str(tmp_path / "jobs.duckdb")
    server = Server(db, "--alerts", str(rules))
    deadline = time.monotonic() + 60
    while endpoint.read(db) is None:  # stopped the moment it is found
        assert server.process.poll() is None and time.monotonic() < deadline, server.output()
        time.sleep(0.001)
    assert server.stop() == 0, server.output()
    assert "Stop it with Ctrl-C." in server.output()


@pytest.mark.slow
def test_sigterm_shuts_down_running_jobs_and_a_restarted_server_resumes_them(tmp_path):
    db = str(tmp_path / "jobs.duckdb")
    first = Server(db).wait_ready()
    with jobobs.connect(db) as client:
        job_id = client.submit("jobs:steps", 300, 0.01)
        wait_status(client, job_id, "running")
        held = client.connection()
        stopped = time.monotonic()
        assert first.stop(signal.SIGTERM) == 0
        assert time.monotonic() - stopped < 60  # it does not wait for its clients to leave
        assert not os.path.exists(endpoint.path_for(db))
        second = Server(db, port=first.port, quack_port=first.quack_port).wait_ready()
        try:
            # the client's attached connection is stale after the restart: it re-attaches
            assert held.execute("SELECT status FROM jobs WHERE id = ?",
                                [job_id]).fetchone() == ("shutdown",)
            assert client.start(job_id) == "queued"
            info = client.wait(job_id, timeout=60, progress=False)
            assert (info.status.value, info.processed) == ("finished", 300)
        finally:
            assert second.stop() == 0


def test_not_a_jobobs_database_is_one_clear_line(tmp_path):
    db = str(tmp_path / "other.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE TABLE jobs (x INT)")
    con.close()
    for args in (["serve", "--port", "1", "--quack-port", "1"], ["list"]):
        result = cli(*args, "--db", db)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "Error: the database has a 'jobs' table that jobobs did not create")
