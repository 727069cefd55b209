"""Rough edges of the command line and of opening a database (issue 20): keyword arguments
to `run` and where an import failed, a database a server owns, joins through Quack, output
into a closed pipe, the spec in `show`, and multi-line journal messages."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import jobs
import pytest
from serving import JOBOBS, Server, env

import jobobs
from jobobs.db.quack import extension_path
from jobobs.model.errors import JobobsError

README = Path(__file__).parents[1] / "README.md"
ECHO = '''
import jobobs


@jobobs.job(name="echo")
def echo(ctx, *args, **kwargs):
    ctx.log.info("args=%s kwargs=%s", args, sorted(kwargs.items()))


@jobobs.job(name="pair")
def pair(ctx, first, delay=0.0):
    ctx.log.info("first=%r delay=%r", first, delay)
'''


def jobobs_command(*args: object, cwd: Path | None = None, stdout=subprocess.PIPE,
                   timeout: float = 120) -> subprocess.CompletedProcess:
    """The ``jobobs`` command in its own process, from folder ``cwd``."""
    return subprocess.run([JOBOBS, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, env=env(), cwd=cwd)


@pytest.fixture
def folder(tmp_path):
    """A folder with a job module of its own, importable only from there."""
    (tmp_path / "edgejobs.py").write_text(ECHO)
    return tmp_path


@pytest.fixture
def server(tmp_path):
    running = Server(str(tmp_path / "served.duckdb")).wait_ready()
    yield running
    running.stop()


def spec_of(db: str, job_id: int) -> dict:
    with duckdb.connect(db, read_only=True) as con:
        return json.loads(con.execute("SELECT spec FROM jobs WHERE id = ?",
                                      [job_id]).fetchone()[0])


# -- 7. run: keyword arguments, and which side could not import the function ----------------

def test_run_passes_key_value_arguments_as_keywords(db):
    result = jobobs_command("run", "jobs:steps", "5", "delay=0", "reject_every=2", "--db", db,
                            "--json")
    job = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    assert (job["status"], job["processed"], job["rejected"]) == ("finished", 5, 3)
    spec = spec_of(db, job["id"])
    assert (spec["args"], spec["kwargs"]) == ([5], {"delay": 0, "reject_every": 2})


def test_run_values_are_json_where_they_parse_and_a_quoted_json_string_keeps_its_equals(
        db, folder):
    result = jobobs_command("run", "edgejobs:echo", '"a=b"', "x=y", "n=[1, 2]", 'flag=true',
                            "--db", db, "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    spec = spec_of(db, json.loads(result.stdout)["id"])
    assert spec["args"] == ["a=b"]
    assert spec["kwargs"] == {"x": "y", "n": [1, 2], "flag": True}


@pytest.mark.parametrize(("args", "message"), [
    (["edgejobs:pair", "1", "nope=2"], "unexpected keyword argument 'nope'"),
    (["edgejobs:pair", "delay=1", "delay=2"], "delay= is given twice"),
    (["edgejobs:pair"], "missing a required argument: 'first'"),
])
def test_run_arguments_the_function_cannot_take_are_one_line(db, folder, args, message):
    result = jobobs_command("run", *args, "--db", db, cwd=folder)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_run_says_this_command_could_not_import_the_function_without_a_server(db):
    result = jobobs_command("run", "no_such_module_here:fn", "--db", db)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot be found by this command" in result.stderr
    assert "No module named 'no_such_module_here'" in result.stderr


@pytest.mark.slow
def test_run_says_the_server_could_not_import_the_function(server, folder):
    result = jobobs_command("run", "edgejobs:echo", "--db", server.db, cwd=folder)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(r"cannot be found by the server \(pid \d+ on ", result.stderr)
    assert "No module named 'edgejobs'" in result.stderr
    assert "this command can import it" in result.stderr


@pytest.mark.slow
def test_run_through_a_server_that_can_import_what_this_command_cannot(server, tmp_path):
    # jobs.py is on the server's path (tests/serving.py), not on this command's
    result = subprocess.run([JOBOBS, "run", "jobs:steps", "3", "delay=0", "--db", server.db,
                             "--wait", "--json"], capture_output=True, text=True, timeout=120,
                            env={**env(), "PYTHONPATH": ""}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["processed"] == 3


# -- 9. a database another process owns ----------------------------------------------------

@pytest.mark.slow
def test_a_runtime_on_a_database_a_server_owns_says_how_to_connect(server):
    with pytest.raises(JobobsError) as caught:
        jobobs.Runtime(server.db, handle_signals=False)
    message = str(caught.value)
    assert f"a jobobs server (pid {server.process.pid} on " in message
    assert server.dashboard in message and server.uri in message
    assert f"jobobs.connect({server.db!r})" in message
    assert "\n" not in message


def test_a_runtime_on_a_database_another_process_holds_names_it(db):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", db],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(JobobsError) as caught:
            jobobs.Runtime(db, handle_signals=False)
        message = str(caught.value)
        assert f"in use by process {holder.pid}" in message and "\n" not in message
    finally:
        holder.kill()
        holder.wait()


# -- 11. joins through Quack: the README's example, run against a real server ----------------

def readme_sql(section: str) -> str:
    """The SQL blocks of a README section, in order."""
    text = README.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sql\n(.*?)```", text, re.S))


def statements(sql: str) -> list[str]:
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", sql) if s.strip()]


@pytest.mark.slow
def test_the_readmes_plain_duckdb_example_join_runs_on_the_server(server, tmp_path):
    with jobobs.connect(server.db) as client:
        done = client.submit("jobs:steps", 3, 0.0)
        client.wait(done, timeout=30, progress=False)
    sql = (readme_sql("One server, many clients")
           .replace("/path/to/httpfs.duckdb_extension", extension_path("httpfs"))
           .replace("/path/to/quack.duckdb_extension", extension_path("quack"))
           .replace("quack:127.0.0.1:9494", server.uri)
           .replace("TOKEN '...'", f"TOKEN '{server.token}'"))
    joins = [s for s in statements(sql) if "JOIN" in s.upper()]
    assert joins, "the README shows no join through jobs_server.query(...)"
    con = duckdb.connect()
    for statement in statements(sql):
        rows = con.execute(statement).fetchall()
    assert rows  # the last statement is the join: one row per job at least
    with pytest.raises(duckdb.Error, match="Multiple streaming scans"):
        con.execute("SELECT count(*) FROM jobs_server.jobs j "
                    "JOIN jobs_server.journal l ON l.job_id = j.id").fetchall()


# -- 14. a closed pipe, the spec in show, multi-line journal messages ------------------------

@pytest.fixture
def failed(db):
    with jobobs.Runtime(db, handle_signals=False) as rt:
        job_id = rt.wait(rt.submit(jobs.boom).id, timeout=10).id
        steps = rt.wait(rt.submit(jobs.steps, 4, 0.0).id, timeout=10).id
    return db, job_id, steps


@pytest.mark.parametrize("command", [["show"], ["journal"], ["show", "--json"]])
def test_output_into_a_closed_pipe_ends_quietly(failed, command):
    db, job_id, _ = failed
    read, write = os.pipe()
    os.close(read)  # like `| head` that has already stopped reading
    try:
        result = jobobs_command(command[0], job_id, *command[1:], "--db", db, stdout=write)
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (0, "")


def test_show_prints_the_spec(failed):
    db, _, steps = failed
    result = jobobs_command("show", steps, "--db", db)
    assert result.returncode == 0, result.stderr
    assert re.search(r'^spec\s*$', result.stdout, re.M)
    assert '"function": "jobs:steps"' in result.stdout and '"args": [' in result.stdout


def test_journal_prints_a_traceback_as_lines_under_its_entry(failed):
    db, job_id, _ = failed
    result = jobobs_command("journal", job_id, "--db", db)
    assert result.returncode == 0, result.stderr
    assert "\\n" not in result.stdout
    lines = result.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line)
    assert re.match(r"^\s*\d+ \S+ ERROR\s", lines[head])
    column = lines[head].index("Traceback")
    follow = [line for line in lines[head + 1:] if line.startswith(" " * column)]
    assert "ValueError: the input is broken" in [line.strip() for line in follow]
    assert any(line.strip().startswith('File "') for line in follow)
    result = jobobs_command("journal", job_id, "--db", db, "--json")
    messages = [line["message"] for line in json.loads(result.stdout)]
    assert any(m.startswith("Traceback") and "\n" in m for m in messages)


def test_journal_follow_prints_the_same_lines(failed):
    db, job_id, _ = failed
    plain = jobobs_command("journal", job_id, "--db", db).stdout
    followed = jobobs_command("journal", job_id, "--db", db, "--follow").stdout
    assert followed == plain
