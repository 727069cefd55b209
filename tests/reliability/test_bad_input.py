"""A corpus of malformed inputs (files, job specs, API calls, command lines, dashboard
inputs), all sent to one real server. Each gets one clear error or the right rejects,
nothing partial reaches a target, and the server carries on."""

import re

import duckdb
import pytest
from serving import Server, cli, plain_duckdb

import jobobs
from jobobs.access.client import acknowledged
from jobobs.dashboard.joblist import JobList
from jobobs.model.errors import JobobsError

pytestmark = pytest.mark.slow

COLUMNS = {"id": "BIGINT", "name": "VARCHAR"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(str(tmp_path_factory.mktemp("corpus") / "jobs.duckdb")).wait_ready()
    yield running
    assert "Traceback" not in running.output(), running.output()
    assert running.stop() == 0, running.output()


@pytest.fixture(scope="module")
def client(server):
    with jobobs.connect(server.db) as connected:
        yield connected


@pytest.fixture(scope="module")
def raw(server):
    return plain_duckdb(server.uri, server.token)


def one_line(text):
    return text and len(text.strip().splitlines()) == 1 and "Traceback" not in text


def refused(call, pattern):
    with pytest.raises((JobobsError, duckdb.Error)) as caught:
        call()
    assert re.search(pattern, str(caught.value)), str(caught.value)


def import_file(client, tmp_path, content, *, table, columns=COLUMNS, **options):
    path = tmp_path / options.pop("filename", "input.csv")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding=options.pop("encoding_written", "utf-8"))
    job_id = client.submit_import(str(path), table, columns=columns, **options)
    return client.wait(job_id, progress=False, timeout=60)


def nothing_in(client, table):
    exists = client.sql("SELECT count(*) AS n FROM information_schema.tables "
                        "WHERE table_name = ?", [table])["n"].iloc[0]
    return not exists or client.sql(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0] == 0


# -- files ------------------------------------------------------------------------------

FILES = {
    "empty file": (b"", {}),
    "header only": ("id,name\n", {}),
    "binary garbage": (bytes(range(256)) * 40, {}),
    "unterminated quote": ('id,name\n1,"ann\n2,bob\n', {}),
    "wrong delimiter": ("id;name\n1;ann\n2;bob\n", {}),
    "not utf-8": ("id,name\n1,Zoë\n2,ann\n", {"encoding_written": "latin-1"}),
    "a 5 MB line": ("id,name\n1,ann\n2," + "x" * 5_000_000 + "\n3,cy\n", {}),
    "text where a number goes": ("id,name\nseven,ann\n2,bob\n", {}),
    "too many columns": ("id,name\n1,ann,extra\n2,bob\n", {}),
    "malformed JSON": ('{"id": 1, "name": "ann"}\n{"id": 2, "na', {"filename": "x.json"}),
    "CSV named .parquet": ("id,name\n1,ann\n", {"filename": "x.parquet"}),
}


@pytest.mark.parametrize("case", FILES)
def test_malformed_files(client, tmp_path, case):
    content, options = FILES[case]
    table = "t_" + re.sub(r"\W", "_", case)
    info = import_file(client, tmp_path, content, table=table, max_rejects=1, **options)
    if info.status.value == "failed":
        assert one_line(info.error), info.error
        assert nothing_in(client, table)  # all or nothing: nothing partial
    else:
        assert info.status.value == "finished"
        assert info.rejected + info.succeeded == info.processed
        rejects = client.rejects(info.id)
        assert len(rejects) == info.rejected and rejects["reason"].notna().all()


# -- submissions refused at once --------------------------------------------------------

SUBMISSIONS = {
    "missing file": (lambda c, d: c.submit_import(str(d / "nope.csv"), "t"), "does not exist"),
    "a directory": (lambda c, d: c.submit_import(str(d), "t"), "is a directory"),
    "glob matching nothing": (lambda c, d: c.submit_import(str(d / "*.nothing"), "t"),
                              "no file matches"),
    "bad column type": (lambda c, d: c.submit_import(str(d / "ok.csv"), "t",
                                                     columns={"id": "NOTATYPE);"}),
                        "is not a column type"),
    "bad table name": (lambda c, d: c.submit_import(str(d / "ok.csv"), "a..b"),
                       "is not a table name"),
    "key not among columns": (lambda c, d: c.submit_import(str(d / "ok.csv"), "t",
                                                           columns=COLUMNS, key=["nope"]),
                              "key column 'nope'"),
    "bad reject limit": (lambda c, d: c.submit_import(str(d / "ok.csv"), "t",
                                                      max_rejects="abc%"), "reject"),
    "upsert without key": (lambda c, d: c.submit_import(str(d / "ok.csv"), "t", mode="upsert"),
                           "needs a key"),
    "export with query and table": (lambda c, d: c.submit_export(
        str(d / "o.csv"), query="SELECT 1", table="jobs"), "either a query or a table"),
    "export into a directory": (lambda c, d: c.submit_export(str(d), query="SELECT 1"),
                                "directory"),
    "unknown job function": (lambda c, d: c.submit("jobs:no_such_job"), "cannot be found"),
    "job function without module": (lambda c, d: c.submit("no_colon"), "module:function"),
    "arguments that are not JSON": (lambda c, d: c.submit("jobs:steps", object()),
                                    "JSON"),
}


@pytest.mark.parametrize("case", SUBMISSIONS)
def test_submissions_refused_at_once(client, tmp_path, case):
    (tmp_path / "ok.csv").write_text("id,name\n1,ann\n")
    call, pattern = SUBMISSIONS[case]
    before = len(client.jobs(limit=100_000))
    refused(lambda: call(client, tmp_path), pattern)
    assert len(client.jobs(limit=100_000)) == before


# -- specs written straight into job_commands, as any SQL client could --------------------

SPECS = {
    "not JSON": ("{not json", "not JSON"),
    "a JSON array": ("[1, 2]", "JSON object whose kind"),
    "unknown kind": ('{"kind": "shell", "command": "rm -rf /"}', "JSON object whose kind"),
    "import options not an object": ('{"kind": "import", "options": [1]}', "options"),
    "import option unknown": ('{"kind": "import", "options": {"source": "a.csv", '
                              '"table": "t", "shell": true}}', "shell"),
    "args not a list": ('{"kind": "python", "function": "jobs:steps", "args": 3}',
                        "args must be a JSON array"),
    "name not text": ('{"kind": "python", "function": "jobs:steps", "name": 5}',
                      "name must be text"),
}


@pytest.mark.parametrize("case", SPECS)
def test_specs_from_any_sql_client_are_checked_by_the_server(client, raw, case):
    spec, pattern = SPECS[case]
    escaped = spec.replace("'", "''").replace("'", "''")
    (command_id,) = raw.execute(
        f"""FROM remote.query('INSERT INTO job_commands (id, command, requested_at,
            requested_by, spec) VALUES (nextval(''command_id_seq''), ''submit'',
            now()::TIMESTAMP, ''mallory'', ''{escaped}'') RETURNING id')""").fetchone()
    outcome, job_id = acknowledged(client.connection(), command_id, timeout=10)
    assert job_id is None and outcome.startswith("refused: ") and re.search(pattern, outcome)


# -- API calls ----------------------------------------------------------------------------

def test_api_calls(client):
    done = client.submit("jobs:steps", 2, 0.0)
    client.wait(done, progress=False, timeout=30)
    running = client.submit("jobs:talker", 1000, 0.05)
    calls = [
        (lambda: client.pause(987654), "job 987654 does not exist"),
        (lambda: client.cancel(done), "cannot cancel a job that is 'finished'"),
        (lambda: client.resume(done), "cannot resume a job that is 'finished'"),
        (lambda: client.request(done, "explode"), "unknown request"),
        (lambda: client.sql("DROP TABLE jobs"), "DROP statement"),
        (lambda: client.sql("EXPLAIN ANALYZE DELETE FROM jobs"), "cannot be EXPLAIN ANALYZE"),
        (lambda: client.sql("SELECT 1; SELECT 2"), "one statement, not 2"),
        (lambda: client.sql("SELEC 1"), "syntax error"),
        (lambda: client.sql("SELECT ?", [1, 2]), "parameters"),
        (lambda: client.sql("SELECT * FROM no_such_table"), "no_such_table"),
        (lambda: client.sql("SELECT ?", [object()]), "cannot be sent"),
        (lambda: client.job(-1), "does not exist"),
    ]
    for call, pattern in calls:
        try:
            refused(call, pattern)
        except ValueError as error:  # an unknown request is a programming error
            assert re.search(pattern, str(error))
    client.cancel(running)
    assert client.wait(running, progress=False, timeout=30).status.value == "canceled"


# -- command lines ------------------------------------------------------------------------

COMMAND_LINES = {
    "limit zero": (["list", "--limit", "0"], "0"),
    "id not a number": (["show", "abc"], "is not a valid integer"),
    "import without a table": (["import", "x.csv"], "Missing option '--table'"),
    "unknown status": (["list", "--status", "nope"], "nope"),
    "bad columns": (["import", "x.csv", "--table", "t", "--columns", "id"],
                    "is not 'name TYPE'"),
    "bad age": (["purge", "--older-than", "soon"], "is not an age"),
    "unknown format": (["export", "--table", "jobs", "--to", "x", "--format", "xls"], "xls"),
}


@pytest.mark.parametrize("case", COMMAND_LINES)
def test_command_lines(server, case):
    args, pattern = COMMAND_LINES[case]
    result = cli(*args, "--db", server.db)
    assert result.returncode != 0 and pattern in result.stderr
    assert "Traceback" not in result.stderr


# -- dashboard inputs ----------------------------------------------------------------------

def test_dashboard_inputs_through_the_server(client):
    listed = JobList(client)
    total = listed.total
    for text in ["'; DROP TABLE jobs; --", "%", "%%", "\\", "' OR '1'='1", "?", "$1", "\x00"]:
        listed.search = text
        assert listed.total == 0
    listed.search = ""
    assert listed.total == total
