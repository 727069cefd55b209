"""`jobobs alerts` and `jobobs alerts ack`: on a database file, and through a real
`jobobs serve` (the ack a request its runtime carries out; the analyst token refused)."""

import json
import re
import subprocess
from datetime import datetime

import jobs
import pytest
from click.testing import CliRunner
from serving import JOBOBS, Server, cli, env

import jobobs
from jobobs.cli import main
from jobobs.db.schema import ALERT_COLUMNS
from jobobs.model import humane

COLUMNS = {"id", "rule", "kind", "job_id", "job_name", "schedule", "run", "status", "summary",
           "opened_at", "resolved_at", "resolution", "acknowledged_at", "acknowledged_by",
           "detail", "subject"}
LONG = "import orders (job 1) rejected 12.0% of its rows, 6.0 times its usual 2.0%; " * 4
UTC_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def add_alerts(db: str) -> int:
    """A failed job and three alerts about it or a schedule; return the job's id."""
    with jobobs.Runtime(db, handle_signals=False) as rt:
        failed = rt.wait(rt.submit(jobs.boom).id, timeout=30).id
        rows = [
            (1, "tick missed", "missed", "schedule nightly tick 2026-12-02 02:00:00", None,
             None, "nightly", None, "schedule nightly missed its 02:00 run", None,
             datetime(2026, 12, 2, 2, 5, 0, 123456), datetime(2026, 12, 2, 3, 0, 0, 5),
             "the next run finished", datetime(2026, 12, 2, 2, 30, 1, 999999), "carol"),
            (2, "failures", "failed", f"job {failed} run 1", failed, "boom", None, 1,
             f"boom (job {failed}) failed:\nValueError: the input is broken",
             "Traceback ...", datetime(2026, 12, 3, 9, 15, 30, 250000), None, None, None,
             None),
            (3, "rejects", "rejects", f"job {failed} run 0", failed, "boom", None, 0, LONG,
             None, datetime(2026, 12, 3, 9, 16, 0), None, None, None, None),
        ]
        with rt.store.transaction() as con:
            con.executemany(f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) "
                            f"VALUES ({', '.join('?' * len(ALERT_COLUMNS))})", rows)
    return failed


@pytest.fixture
def alerted(new_db):
    return new_db, add_alerts(new_db)


def run(*args, columns: int = 140):
    result = CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": str(columns)})
    return result.exit_code, result.stdout, result.stderr


def stored(db: str, alert_id: int) -> tuple:
    with jobobs.Runtime(db, handle_signals=False) as rt:
        return rt.store.reader().execute(
            "SELECT acknowledged_by, acknowledged_at FROM alerts WHERE id = ?",
            [alert_id]).fetchone()


def test_the_table_is_newest_first_with_blanks_for_what_is_missing(alerted):
    db, failed = alerted
    code, out, _ = run("alerts", "--db", db)
    assert code == 0, out
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["id", "opened", "rule", "kind"]  # opened: local time
    assert header.split()[-4:] == ["status", "state", "acknowledged", "summary"]
    assert [line.split()[0] for line in lines] == ["3", "2", "1"]
    assert not re.search(r"\b(NaN|NaT|None|nan|<NA>)\b", out)
    opened = humane.moment(datetime(2026, 12, 3, 9, 15, 30, 250000))
    assert f"{opened} " in lines[1] and ".25" not in out and ".123" not in out
    assert f"{failed} boom" in lines[1] and "Finished with error" in lines[1]
    assert "open" in lines[1].split() and "boom (job" in lines[1]
    assert "schedule nightly" in lines[2] and "resolved" in lines[2] and "carol" in lines[2]
    assert "Finished with error" not in lines[2]  # a tick with no job has no status
    assert lines[0].endswith("…") and max(len(line) for line in lines) == 140
    wide = run("alerts", "--db", db, columns=1000)[1].splitlines()
    assert [line.split()[0] for line in wide] == ["id", "3", "2", "1"]
    assert wide[1].endswith(LONG.strip()) and "\nValueError" not in out


def test_open_job_and_limit_choose_the_alerts(alerted):
    db, failed = alerted

    def ids(*args):
        code, out, _ = run("alerts", "--db", db, *args)
        assert code == 0, out
        return [line.split()[0] for line in out.splitlines()[1:]]

    assert ids("--open") == ["3", "2"]
    assert ids("--job", failed) == ["3", "2"]
    assert ids("--limit", 1) == ["3"]
    assert run("alerts", "--db", db, "--job", failed + 1)[1] == "no alerts\n"


def test_json_has_every_column_with_utc_times_and_nulls(alerted):
    db, failed = alerted
    code, out, _ = run("--db", db, "alerts", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [3, 2, 1] and all(set(r) == COLUMNS for r in rows)
    tick, job = rows[2], rows[1]
    assert tick["job_id"] is None and tick["run"] is None and tick["status"] is None
    assert tick["acknowledged_by"] == "carol" and tick["resolution"] == "the next run finished"
    assert tick["opened_at"] == "2026-12-02T02:05:00.123Z"
    assert all(UTC_ISO.match(tick[k]) for k in ("opened_at", "resolved_at", "acknowledged_at"))
    assert job["job_id"] == failed and job["run"] == 1 and job["status"] == "failed"
    assert job["resolved_at"] is None and job["acknowledged_at"] is None
    assert job["summary"].endswith("ValueError: the input is broken")


def test_no_alerts_is_one_line(new_db):
    assert run("alerts", "--db", new_db)[:2] == (0, "no alerts\n")
    assert run("alerts", "--open", "--db", new_db)[:2] == (0, "no open alerts\n")
    assert run("alerts", "--json", "--db", new_db)[:2] == (0, "[]\n")


def test_ack_records_who_once_and_a_missing_alert_exits_1(alerted):
    db, _ = alerted
    code, out, err = run("alerts", "ack", 2, "--db", db, "--by", "dora")
    assert (code, out, err) == (0, "alert 2 acknowledged\n", "")
    assert stored(db, 2)[0] == "dora" and stored(db, 2)[1] is not None
    code, out, err = run("alerts", "--db", db, "ack", 2, 99, 3, "--by", "erin")
    assert code == 1 and err == "Error: there is no alert 99\n"
    assert out == "ignored: alert 2 was acknowledged by dora\nalert 3 acknowledged\n"
    assert stored(db, 2)[0] == "dora" and stored(db, 3)[0] == "erin"
    code, out, err = run("alerts", "ack", "three", "--db", db)
    assert code == 2 and "'three' is not a valid integer" in err and "Traceback" not in err
    assert run("alerts", "ack", "--db", db)[0] == 2  # no id


def test_help_says_what_each_does_with_an_example():
    code, out, _ = run("alerts", "--help")
    assert code == 0 and "Example: jobobs alerts --open" in out and "ack" in out
    code, out, _ = run("alerts", "ack", "--help")
    assert code == 0 and "Example: jobobs alerts ack 3" in out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("alerted") / "jobs.duckdb")
    failed = add_alerts(db)
    running = Server(db).wait_ready()
    running.failed = failed
    yield running
    assert running.stop() == 0, running.output()


@pytest.mark.slow
def test_ack_through_the_server_is_a_request_its_runtime_carries_out(server):
    result = cli("alerts", "--db", server.db)  # with any the server's own rules opened
    assert result.returncode == 0, result.stderr
    assert {"1", "2", "3"} <= {line.split()[0] for line in result.stdout.splitlines()[1:]}
    result = cli("alerts", "ack", 2, "--by", "frank", "--db", server.db)
    assert (result.returncode, result.stdout) == (0, "alert 2 acknowledged\n"), result.stderr
    listed = json.loads(cli("alerts", "--json", "--db", server.db).stdout)
    acked = next(row for row in listed if row["id"] == 2)
    assert acked["acknowledged_by"] == "frank" and UTC_ISO.match(acked["acknowledged_at"])
    with jobobs.connect(server.db) as client:
        assert client.served
        made = client.sql("SELECT requested_by, spec, outcome FROM job_commands "
                          "WHERE command = 'ack'")
        assert made.values.tolist() == [["frank", "2", "acknowledged"]]
    result = cli("alerts", "ack", 2, 42, "--db", server.db)
    assert result.returncode == 1 and result.stderr == "Error: there is no alert 42\n"
    assert result.stdout == "ignored: alert 2 was acknowledged by frank\n"


@pytest.mark.slow
def test_the_analyst_token_lists_alerts_and_acknowledges_none(server):
    def analyst(*args):
        return subprocess.run([JOBOBS, *map(str, args)], capture_output=True, text=True,
                              timeout=60, env={**env(), "JOBOBS_URL": server.dashboard,
                                               "JOBOBS_ANALYST_TOKEN": server.analyst_token})

    listed = analyst("alerts", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {1, 2, 3} <= {row["id"] for row in json.loads(listed.stdout)}
    refused = analyst("alerts", "ack", 1, 3)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == ("Error: an analyst token only reads; it cannot acknowledge "
                              "alerts\n")
    listed = json.loads(cli("alerts", "--json", "--db", server.db).stdout)
    assert next(row for row in listed if row["id"] == 3)["acknowledged_by"] is None
