"""Schedules and retries through a real ``jobobs serve``: the command line, a client of
another process, and the analyst's read-only token."""

import json

import pytest
from serving import Server, cli

import jobobs
from jobobs import JobobsError, Status
from jobobs.access.submissions import python_spec
from jobobs.testing import wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("scheduled") / "jobs.duckdb")
    running = Server(db).wait_ready()
    yield running
    assert running.stop() == 0, running.output()


@pytest.mark.slow
def test_the_server_runs_a_schedule_and_the_command_line_manages_it(server):
    result = cli("schedule", "add", "often", "--every", "1s", "--retries", "2", "--db",
                 server.db, "--json", "--", "run", "jobs:noop")
    assert result.returncode == 0, result.stderr
    added = json.loads(result.stdout)
    assert added["name"] == "often" and added["retries"] == 2
    assert added["spec"]["function"] == "jobs:noop"

    def runs():
        listed = json.loads(cli("schedule", "list", "--db", server.db, "--json").stdout)
        return listed[0] if listed and listed[0]["last_status"] == "finished" else None

    listed = wait_until(runs, timeout=60)
    assert {"name", "enabled", "next_run_at", "last_job_id", "last_status"} <= set(listed)
    result = cli("schedule", "pause", "often", "--db", server.db)
    assert result.stdout.strip() == "schedule often paused"
    with jobobs.connect(server.db) as client:
        made = client.jobs(name="noop")
        assert (made["status"] == "finished").all() and len(made) >= 1
        result = cli("schedule", "run", "often", "--db", server.db, "--json")
        job_id = json.loads(result.stdout)["job_id"]
        assert client.wait(job_id, 30, progress=False).status is Status.FINISHED
        shown = json.loads(cli("schedule", "show", "often", "--db", server.db,
                               "--json").stdout)
        assert shown["enabled"] is False and shown["last_job_id"] == job_id
        assert any(line["message"].startswith("Paused by") for line in shown["log"])
    result = cli("schedule", "remove", "often", "--db", server.db)
    assert result.returncode == 0
    result = cli("schedule", "show", "often", "--db", server.db)
    assert result.returncode == 1 and result.stderr.strip() == (
        "Error: there is no schedule named 'often'")


@pytest.mark.slow
def test_bad_schedules_are_one_line_and_the_server_carries_on(server):
    for args, message in [
        (["--cron", "99 * * * *"], "is not a cron expression"),
        (["--every", "5 minutes"], "is not an interval"),
        (["--every", "1m", "--tz", "Nowhere/Land"], "is not a time zone"),
    ]:
        result = cli("schedule", "add", "bad", *args, "--db", server.db, "--", "run",
                     "jobs:noop")
        assert result.returncode == 1 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    result = cli("schedule", "add", "bad", "--every", "1m", "--db", server.db, "--", "run",
                 "jobs:missing")
    assert result.returncode == 1 and "cannot be found by the server" in result.stderr
    result = cli("schedule", "add", "bad", "--every", "1m", "--db", server.db, "--", "list")
    assert result.returncode == 2 and "give the job as its command" in result.stderr
    result = cli("schedule", "add", "bad", "--every", "1m", "--db", server.db, "--", "run",
                 "jobs:noop", "--json")
    assert result.returncode == 2 and "--json after -- would be the job's" in result.stderr
    with jobobs.connect(server.db) as client:
        assert "bad" not in set(client.schedules()["name"])
        assert client.sql("SELECT 1 AS one")["one"][0] == 1


def test_failed_jobs_are_retried_by_id_and_by_error_group(server):
    with jobobs.connect(server.db) as client:
        ids = [client.submit("jobs:boom", name=f"broken-{n}") for n in range(3)]
        for job_id in ids:
            assert client.wait(job_id, 30, progress=False).status is Status.FAILED
        result = cli("retry", ids[0], "--db", server.db, "--json")
        assert json.loads(result.stdout) == {"retried": [ids[0]]}
        assert client.wait(ids[0], 30, progress=False).status is Status.FAILED
        assert client.info(ids[0]).run_count == 2
        result = cli("retry", "--error", "ValueError: the input is broken", "--db", server.db)
        assert result.returncode == 0 and result.stdout.startswith("3 job(s) queued again")
        for job_id in ids:
            wait_until(lambda job_id=job_id: client.info(job_id).run_count >= 2, timeout=30)
        result = cli("retry", "--error", "nothing like it", "--db", server.db)
        assert result.returncode == 1 and "no failed job has an error like" in result.stderr
        result = cli("retry", "--db", server.db)
        assert result.returncode == 2 and "give a job ID or --error TEXT" in result.stderr


def test_the_analyst_token_reads_schedules_and_changes_none(server):
    with jobobs.connect(server.db) as owner:
        owner.schedule("watched", python_spec("jobs:noop"), every="1h")
    with jobobs.connect(url=server.dashboard, analyst_token=server.analyst_token) as reader:
        assert "watched" in set(reader.schedules()["name"])
        with pytest.raises(JobobsError, match="an analyst token only reads"):
            reader.pause_schedule("watched")
        with pytest.raises(JobobsError, match="an analyst token only reads"):
            reader.schedule("mine", python_spec("jobs:noop"), every="1h")
    with jobobs.connect(server.db) as owner:
        assert owner.schedule_info("watched")["enabled"]
        owner.remove_schedule("watched")
