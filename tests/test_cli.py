"""The command line against a real database file: output, --json, and one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jobs
import pytest
from click.testing import CliRunner

import jobobs
from jobobs.cli import main

COMMANDS = sorted(main.commands)


@pytest.fixture
def filled(db):
    with jobobs.Runtime(db, handle_signals=False) as rt:
        ok = rt.wait(rt.submit(jobs.steps, 10, 0.0, 4).id, timeout=10)
        failed = rt.wait(rt.submit(jobs.boom).id, timeout=10)
        paused = rt.submit(jobs.noop, start=False)
    return db, ok.id, failed.id, paused.id


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_list_and_json(filled):
    db, _, failed, _ = filled
    code, out = run("list", "--db", db)
    assert code == 0 and "Finished with error" in out and "Editing in progress" in out
    code, out = run("list", "--db", db, "--status", "failed", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [failed]
    assert rows[0]["status"] == "failed" and rows[0]["error"].startswith("ValueError")


def test_show_journal_rejects(filled):
    db, ok, failed, _ = filled
    code, out = run("show", ok, "--db", db, "--json")
    job = json.loads(out)
    assert code == 0 and (job["processed"], job["rejected"]) == (10, 3)
    assert [t["to_status"] for t in job["transitions"]] == [
        "editing", "queued", "running", "finished"]
    code, out = run("journal", failed, "--db", db, "--level", "error", "--json")
    assert code == 0 and "ValueError: the input is broken" in json.loads(out)[0]["message"]
    code, out = run("rejects", ok, "--db", db, "--json")
    assert code == 0 and [r["line_no"] for r in json.loads(out)] == [1, 5, 9]


def test_control_commands_record_a_request_that_the_runtime_carries_out(filled):
    db, _, _, draft = filled
    code, out = run("start", draft, "--db", db, "--by", "carol")
    assert code == 0 and out.strip() == f"job {draft}: ✔ Finished"  # no server: it ran here
    with jobobs.Runtime(db, handle_signals=False) as rt:
        actor = rt.store.reader().execute(
            "SELECT actor FROM job_transitions WHERE job_id = ? AND to_status = 'queued'",
            [draft]).fetchone()[0]
    assert actor == "carol"


@pytest.mark.parametrize(("args", "message"), [
    (["pause", "1"], "Error: job 1: cannot pause a job that is 'finished'"),
    (["show", "999"], "Error: job 999 does not exist"),
    (["cancel", "999"], "Error: job 999 does not exist"),
    (["purge", "--older-than", "soon"], "is not an age such as 30d"),
    (["journal", "x"], "'x' is not a valid integer"),
    (["run", "no.such.module:fn"], "Error: job function no.such.module:fn cannot be found"),
])
def test_bad_input_gets_one_clear_line(filled, args, message):
    db = filled[0]
    code, out = run(*args, "--db", db)
    assert code != 0 and message in out and "Traceback" not in out


def test_a_database_in_use_by_another_process_is_one_clear_line(db):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(30)", db],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, out = run("list", "--db", db)
        assert code == 1 and "the database is in use by process" in out
        assert len(out.strip().splitlines()) == 1
    finally:
        holder.kill()


def test_run_executes_a_job_here(db):
    code, out = run("run", "jobobs.demo:refresh_aggregates", "--db", db, "--json")
    assert code == 1 and json.loads(out)["status"] == "failed"


def test_purge(filled):
    code, out = run("purge", "--older-than", "0s", "--db", filled[0])
    assert code == 0 and "2 jobs" in out


def test_purge_older_than_the_calendar_deletes_nothing(filled):
    code, out = run("purge", "--older-than", "99999999d", "--db", filled[0])
    assert code == 0 and "0 jobs" in out, out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    code, out = run(command, "--help")
    assert code == 0 and "Example: jobobs " + command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_documented_in_the_readme(command):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"jobobs {command}" in readme


def test_the_console_script_is_installed():
    out = subprocess.run(["jobobs", "--help"], capture_output=True, text=True,
                         env={**os.environ, "PATH": os.pathsep.join(
                             [str(Path(sys.executable).parent), os.environ["PATH"]])})
    assert out.returncode == 0 and "list" in out.stdout


def test_import_export_rejects_and_replay_from_the_command_line(db, tmp_path):
    source = tmp_path / "c.csv"
    source.write_text("id,name\n1,ann\nx,bob\n3,cy\n")
    code, out = run("import", source, "--table", "people", "--columns", "id BIGINT, name VARCHAR",
                    "--db", db, "--json")
    job = json.loads(out)
    assert code == 0 and (job["kind"], job["succeeded"], job["rejected"]) == ("import", 2, 1)
    code, out = run("rejects", job["id"], "--to", tmp_path / "r.csv", "--db", db)
    assert code == 0 and out.startswith("1 rejects written")
    (tmp_path / "fixed.csv").write_text((tmp_path / "r.csv").read_text().replace("x,bob", "2,bob"))
    code, out = run("replay", job["id"], tmp_path / "fixed.csv", "--db", db, "--json")
    assert code == 0 and json.loads(out)["succeeded"] == 1
    code, out = run("export", "--table", "people", "--to", tmp_path / "out.csv", "--db", db)
    assert code == 0 and (tmp_path / "out.csv").read_text().split() == [
        "id,name", "1,ann", "3,cy", "2,bob"]


@pytest.mark.parametrize(("args", "message"), [
    (["import", "nope.csv", "--table", "t"], "Error: nope.csv does not exist"),
    (["import", "x.csv", "--table", "t", "--columns", "id"], "'id' is not 'name TYPE'"),
    (["import", "x.csv", "--table", "t", "--max-rejects", "many"], "'many' is not a number"),
    (["export", "--to", "out.csv"], "Error: give either a query or a table to export"),
])
def test_import_and_export_bad_input_is_one_line(db, args, message):
    code, out = run(*args, "--db", db)
    assert code != 0 and message in out and "Traceback" not in out
