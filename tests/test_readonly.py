"""Read-only SQL that is really read-only: ``Client.sql`` on a file and through Quack, an
export's query, and the analysts' token on a real ``jobobs serve`` refuse every way a query
could write, read files, reach servers or change settings; reading queries (those of
docs/sql.md, the query functions the notebooks use) still run."""

import json
import os
import re
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from serving import JOBOBS, Server, env, free_port, plain_duckdb

import jobobs
from jobobs.access import analyst, analytics, queries, submissions
from jobobs.db import readonly
from jobobs.db.quack import ServerUnavailable
from jobobs.execution.submissions import submit_spec
from jobobs.kinds import exporting
from jobobs.model.errors import JobobsError, QueryRefused

DOC = (Path(__file__).parents[1] / "docs" / "sql.md").read_text()
EXAMPLES = re.findall(r"```sql\n(.*?)```", DOC, flags=re.DOTALL)

# Every bypass of the issue, and their cousins. {secret} is a file the server can read (the
# served tests use its discovery file, which holds the full token); {port} a free port.
BYPASSES = {
    "explain-analyze-after-comment": "/**/ EXPLAIN ANALYZE DELETE FROM jobs",
    "explain-analyze-options": "EXPLAIN (ANALYZE) DELETE FROM jobs",
    "explain-analyse": "EXPLAIN ANALYSE SELECT count(*) FROM jobs",
    # the tokenizer counts bytes: two-byte characters once shifted what the check read
    "explain-analyze-behind-two-byte-characters":
        "EXPLAIN /*" + "\u00e9" * 32 + "*/ ANALYZE DELETE FROM jobs WHERE 'SELECT 1 --' <> ''",
    "explain-of-a-file": "EXPLAIN SELECT * FROM read_csv('{secret}')",
    "nextval": "SELECT nextval('command_id_seq')",
    "nextval-in-a-lambda": "SELECT list_transform([1, 2], x -> nextval('command_id_seq'))",
    "quack-serve": "FROM quack_serve('quack:127.0.0.1:{port}', token = 'mine')",
    "checkpoint": "FROM checkpoint()",
    "read-text": "SELECT content FROM read_text('/etc/shadow')",
    "glob": "FROM glob('/root/*')",
    "read-csv": "FROM read_csv('{secret}')",
    "a-file-as-a-table": "FROM '{secret}'",
    "a-quoted-file": 'SELECT * FROM "{secret}"',
    "describe-a-file": "DESCRIBE '{secret}'",
    "read-in-a-subquery": "SELECT (SELECT content FROM read_text('{secret}')) AS stolen",
    "read-in-a-cte": "WITH f AS (FROM read_blob('{secret}')) SELECT * FROM f",
    "read-in-a-union": "SELECT 'x' AS a UNION ALL SELECT content FROM read_text('{secret}')",
    "query": "FROM query('DELETE FROM jobs')",
    "another-catalog": "FROM system.main.duckdb_databases",
    "settings": "SELECT current_setting('threads')",
    "settings-view": "FROM pg_settings",
    "sleep": "SELECT sleep_ms(600000)",
    "two-statements": "SELECT 1; DELETE FROM jobs",
    "delete": "DELETE FROM jobs",
    "insert": "INSERT INTO job_commands (id, command, requested_at) VALUES (99, 'pause', now())",
    "set": "SET threads = 1",
    "attach": "ATTACH '{secret}.attached' AS other",
    "copy": "COPY jobs TO '{secret}.copied.csv'",
    "call": "CALL checkpoint()",
    "load": "LOAD httpfs",
}
# COPY smuggled out of an export's parentheses: the count step runs three statements.
SMUGGLE = ("SELECT 1 AS x)); COPY (SELECT 'stolen' AS x) TO '{outside}'; "
           "SELECT * FROM ((SELECT 1")
READING = [
    "DESCRIBE jobs", "SUMMARIZE SELECT 1 AS a", "SHOW TABLES", "EXPLAIN SELECT * FROM jobs",
    "PRAGMA table_info('jobs')", "FROM duckdb_tables()", "SELECT * FROM information_schema.columns",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) FROM r",
    "SELECT name, row_number() OVER (PARTITION BY kind ORDER BY id) FROM jobs",
    "SELECT list_transform([1, 2], x -> x * 2), [x + 1 FOR x IN [1, 2]]",
    "SELECT * FROM range(3) r, unnest([1, 2]) u",
    "SELECT key, value FROM jobs, json_each(spec) WHERE spec IS NOT NULL",
    "SELECT id FROM jobs WHERE id IN (SELECT job_id FROM job_transitions) ORDER BY id DESC",
    "SELECT date_trunc('day', created_at), count(*) FILTER (WHERE status = 'failed') "
    "FROM jobs GROUP BY ALL",
]


def filled(query: str, secret: str) -> str:
    return query.format(secret=secret, port=free_port())


@pytest.mark.parametrize("query", BYPASSES.values(), ids=BYPASSES.keys())
def test_the_check_refuses_every_bypass(query):
    with pytest.raises(QueryRefused):
        readonly.check(filled(query, "/srv/jobs.duckdb.server.json"))


@pytest.mark.parametrize("query", EXAMPLES + READING)
def test_the_check_lets_reading_queries_through(query):
    readonly.check(query)


def test_what_runs_is_what_was_checked():
    assert readonly.check("EXPLAIN /* caf\u00e9 */ SELECT 1") == "EXPLAIN SELECT 1"
    assert readonly.check("SELECT 42 -- the answer") == "SELECT 42 -- the answer"


def test_a_query_that_does_not_parse_gets_duckdbs_first_line():
    with pytest.raises(JobobsError, match=r'^Parser Error: syntax error at or near "SELEC"$'):
        readonly.check("SELEC 1")


def sequence(con) -> int:
    return con.execute("SELECT coalesce(last_value, 0) FROM duckdb_sequences() "
                       "WHERE sequence_name = 'command_id_seq'").fetchone()[0]


def test_client_sql_on_the_file_refuses_them_and_nothing_changes(rt, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    secret = folder / "secret.csv"
    secret.write_text("word\nswordfish\n")
    handle = rt.submit(exporting.export_job, {"to": str(folder / "o.csv"),
                                             "query": "SELECT 1 AS x"})
    rt.wait(handle.id, timeout=30)
    client = jobobs.Client.embedded(rt)
    before = (client.sql("SELECT count(*) FROM jobs").iloc[0, 0], sequence(rt.store.reader()))
    for name, query in BYPASSES.items():
        with pytest.raises(QueryRefused):
            client.sql(filled(query, str(secret)))
            pytest.fail(f"{name} got through")
    assert (client.sql("SELECT count(*) FROM jobs").iloc[0, 0],
            sequence(rt.store.reader())) == before
    assert sorted(p.name for p in folder.iterdir()) == ["o.csv", "secret.csv"]
    for query in READING:
        client.sql(query)


def test_an_export_query_is_checked_the_same_way_on_every_path(rt, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    smuggle = SMUGGLE.format(outside=outside)
    for query in [smuggle, *(filled(q, str(tmp_path / "x.csv")) for q in BYPASSES.values())]:
        with pytest.raises(JobobsError):  # the client's check
            submissions.export_spec(str(tmp_path / "o.csv"), query=query)
        with pytest.raises(JobobsError):  # a spec any SQL client wrote, in the runtime
            submit_spec(rt, {"kind": "export", "options": {
                "to": str(tmp_path / "o.csv"), "query": query}})
    # and where the job runs, for a job put in the queue by other means
    handle = rt.submit(exporting.export_job, {"to": str(tmp_path / "o.csv"), "query": smuggle})
    info = rt.wait(handle.id, timeout=30)
    assert info.status.value == "failed" and "syntax error" in info.error
    handle = rt.submit(exporting.export_job, {"to": str(tmp_path / "o.csv"),
                                             "query": "FROM read_text('/etc/hostname')"})
    info = rt.wait(handle.id, timeout=30)
    assert info.status.value == "failed" and "cannot call read_text()" in info.error
    with pytest.raises(QueryRefused, match="EXPLAIN"):
        exporting.ExportOptions(to=str(tmp_path / "o.csv"), query="EXPLAIN SELECT 1")
    assert not outside.exists() and not (tmp_path / "o.csv").exists()


def test_the_route_limits_rows_and_time(rt):
    token = "t" * 32
    small = analyst.Route(rt.store, token, max_rows=10)
    slow = analyst.Route(rt.store, token, timeout=0.2)
    try:
        table = pa.ipc.open_stream(small.answer("SELECT now() AS t, 1.5 AS d", False)).read_all()
        assert str(table.schema.field("t").type).startswith("timestamp")
        assert json.loads(small.answer("FROM range(3)", True)) == [{"range": 0}, {"range": 1},
                                                                   {"range": 2}]
        with pytest.raises(JobobsError, match="larger than 10 rows"):
            small.answer("FROM range(100)", False)
        with pytest.raises(JobobsError, match=r"ran longer than 0\.2 s"):
            slow.answer("SELECT sum(hash(a.range + b.range)) FROM range(100000) a, "
                        "range(100000) b", False)
    finally:
        small.close()
        slow.close()


def test_the_token_file_is_made_once_and_kept_private(tmp_path):
    import grp

    path = str(tmp_path / "jobs.duckdb.analyst-token")
    token = analyst.load_token(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(token) >= 32
    assert analyst.load_token(path) == token  # the same after a restart
    group = grp.getgrgid(os.getgid()).gr_name
    assert analyst.load_token(path, group) == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    os.chmod(path, 0o644)
    with pytest.raises(JobobsError, match="readable by everyone"):
        analyst.load_token(path)
    os.chmod(path, 0o600)
    Path(path).write_text("short\n")
    with pytest.raises(JobobsError, match="too short"):
        analyst.load_token(path)


# -- a real server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    """``jobobs serve`` on a copy of the demo's database."""
    folder = tmp_path_factory.mktemp("readonly")
    db = str(folder / "jobs.duckdb")
    shutil.copy(demo_db, db)
    running = Server(db).wait_ready()
    yield running
    assert running.stop() == 0, running.output()


@pytest.fixture
def reader(server):
    with jobobs.connect(url=server.dashboard, analyst_token=server.analyst_token) as client:
        yield client


@pytest.fixture
def owner(server):
    with jobobs.connect(server.db) as client:
        yield client


def post(server, query: str, token: str | None, accept: str = "application/json"):
    """(status, body) of a raw request to the analysts' route."""
    headers = {"Accept": accept} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(server.dashboard + "api/sql", method="POST",
                                     data=json.dumps({"query": query}).encode(),
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_client_sql_through_quack_refuses_every_bypass(server, owner):
    secret = str(Path(server.db + ".server.json"))
    for name, query in BYPASSES.items():
        with pytest.raises(QueryRefused):
            owner.sql(filled(query, secret))
            pytest.fail(f"{name} got through")


def test_the_server_refuses_every_bypass_from_the_analyst_token(server, owner):
    secret = server.db + ".server.json"  # it holds the full token
    before = (owner.sql("SELECT count(*) FROM jobs").iloc[0, 0], sequence(owner.connection()))
    for name, query in BYPASSES.items():
        status, body = post(server, filled(query, secret), server.analyst_token)
        answer = json.loads(body)
        assert (status, answer["refused"]) == (400, True), (name, answer)
        assert server.token not in body.decode()
    after = (owner.sql("SELECT count(*) FROM jobs").iloc[0, 0], sequence(owner.connection()))
    assert after == before
    assert not [p for p in os.listdir(os.path.dirname(server.db))
                if ".attached" in p or ".copied" in p]


def test_the_analyst_token_reads_what_the_full_token_reads(server, reader, owner):
    assert reader.served and "api/sql" in reader.where
    for query in EXAMPLES:
        assert reader.sql(query).shape == owner.sql(query).shape, query
    finished = int(owner.jobs(status="finished")["id"].iloc[0])
    assert reader.info(finished).status.value == "finished"
    assert reader.wait(finished, timeout=10, progress=False).id == finished
    read, owned = reader.jobs(), owner.jobs()
    assert read.dtypes.equals(owned.dtypes)
    assert read.drop(columns="duration_s").equals(owned.drop(columns="duration_s"))  # now()
    assert reader.status_counts().equals(owner.status_counts())
    for name in ("job", "journal", "rejects", "transitions", "commands"):
        assert getattr(reader, name)(finished).shape == getattr(owner, name)(finished).shape
    con = reader.connection()
    for function in (analytics.job_names, analytics.durations, analytics.duration_trend,
                     analytics.duration_summary, analytics.throughput,
                     analytics.status_over_time, analytics.failures, analytics.rejects_by,
                     analytics.timeline, analytics.slowest, analytics.slow_runs,
                     queries.count_jobs, queries.version, queries.reject_counts):
        function(con)
    analytics.usual_duration(con, finished)
    status, body = post(server, "SELECT 42 AS answer", server.analyst_token,
                        accept="application/vnd.apache.arrow.stream")
    assert status == 200 and pa.ipc.open_stream(body).read_all().to_pylist() == [{"answer": 42}]


def test_the_analyst_token_cannot_act(server, reader, owner):
    running = owner.submit("jobs:steps", 100_000, 0.01, name="long")
    try:
        for act in (lambda: reader.pause(running), lambda: reader.cancel(running),
                    lambda: reader.submit("jobs:steps", 1, 0.0),
                    lambda: reader.submit_export(server.db + ".out.csv", query="SELECT 1"),
                    lambda: reader.purge(older_than=timedelta(0))):
            with pytest.raises(JobobsError, match="an analyst token only reads"):
                act()
        with pytest.raises(duckdb.Error, match="Authentication failed"):  # not Quack's token
            plain_duckdb(server.uri, server.analyst_token)
        assert set(owner.commands(running)["command"]) == {"submit"}
    finally:
        owner.cancel(running)


def test_a_missing_or_wrong_token_is_refused(server):
    for token in (None, "", server.token, server.analyst_token[:-1] + "x"):
        status, body = post(server, "SELECT 1", token)
        assert status == 401 and "analyst token" in json.loads(body)["error"]
    with pytest.raises(ServerUnavailable, match="refused the analyst token"):
        jobobs.connect(url=server.dashboard, analyst_token="x" * 43).jobs()


@pytest.mark.slow
def test_the_command_line_with_the_analyst_token(server):
    def jobobs_cli(*args):
        return subprocess.run([JOBOBS, *args], capture_output=True, text=True, timeout=60,
                              env={**env(), "JOBOBS_URL": server.dashboard,
                                   "JOBOBS_ANALYST_TOKEN": server.analyst_token})

    done = jobobs_cli("sql", "SELECT count(*) AS n FROM job_runs", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["n"] > 0
    assert jobobs_cli("list", "--limit", "3").returncode == 0
    refused = jobobs_cli("sql", "FROM read_text('/etc/shadow')")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "Error: a read-only query cannot call read_text()"
    paused = jobobs_cli("pause", "1")
    assert paused.returncode == 1 and "only reads" in paused.stderr
