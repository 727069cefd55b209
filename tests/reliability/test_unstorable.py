"""One value the database cannot store never stops the runtime: values are made storable
or refused at the edge, and a row that still cannot be written fails only its own job."""

import json
import logging
import subprocess

import jobs
import pytest
from serving import JOBOBS, Server, env, wait_status

import jobobs
from jobobs.db.store import ts
from jobobs.model.errors import JobobsError
from jobobs.model.states import Status
from jobobs.testing import wait_for_status

pytestmark = pytest.mark.slow

ESCAPED = "caf\\xe9.csv"


def rows(rt, sql, params=()):
    return rt.store.reader().execute(sql, list(params)).fetchall()


def test_undecodable_text_is_kept_visible_and_long_text_is_cut(rt):
    info = rt.wait(rt.submit(jobs.undecodable, name=jobs.UNDECODABLE).id, timeout=30)
    assert info.status is Status.FINISHED and info.name == ESCAPED
    lines = [m for (m,) in rows(rt, "SELECT message FROM journal WHERE job_id = ? ORDER BY seq",
                                [info.id])]
    assert f"reading {ESCAPED}" in lines and f"skipped {ESCAPED}" in lines
    long = next(m for m in lines if m.startswith("\x00 a NUL"))
    assert len(long) == 65_536 and long.endswith("more characters cut]")
    (code,) = rows(rt, "SELECT code FROM journal WHERE job_id = ? AND message LIKE 'reading%'",
                   [info.id])[0]
    assert code == ESCAPED
    reject = rows(rt, "SELECT source, column_name, raw, reason, length(message) FROM rejects "
                      "WHERE job_id = ?", [info.id])
    assert reject == [(ESCAPED, ESCAPED, ESCAPED, ESCAPED, 1_048_576)]
    assert json.loads(info.checkpoint)["state"] == {"file": jobs.UNDECODABLE}


def test_numbers_out_of_range_are_refused_at_the_edge(rt):
    failed = rt.wait(rt.submit(jobs.huge_total).id, timeout=30)
    assert failed.status is Status.FAILED
    assert failed.error == ("JobobsError: total must be a whole number from 0 to "
                            "9223372036854775807, not 9223372036854775808")
    with pytest.raises(JobobsError, match="parent must be a whole number"):
        rt.submit(jobs.noop, parent=2**63)
    with pytest.raises(JobobsError, match="the job's name is 300 characters long"):
        rt.submit(jobs.noop, name="n" * 300)
    assert rt.wait(rt.submit(jobs.noop).id, timeout=30).status is Status.FINISHED


def submit_row(rt, spec: str) -> int:
    """A submission written into job_commands as any SQL client could."""
    with rt.store.transaction() as con:
        (command_id,) = con.execute(
            """INSERT INTO job_commands (id, job_id, command, requested_at, requested_by, spec)
               VALUES (nextval('command_id_seq'), NULL, 'submit', ?, 'sql', ?) RETURNING id""",
            [ts(rt.clock()), spec]).fetchone()
    return command_id


def outcome(rt, command_id):
    rt.run_until_idle(timeout=30)
    return rows(rt, "SELECT outcome, job_id FROM job_commands WHERE id = ?", [command_id])[0]


def test_submissions_with_unstorable_values_are_stored_escaped_or_refused(db):
    rt = jobobs.Runtime(db, workers=2, handle_signals=False)
    try:
        python = {"kind": "python", "function": "jobs:noop"}
        escaped = submit_row(rt, json.dumps({**python, "name": "caf\udce9"}))
        too_big = submit_row(rt, json.dumps({"kind": "import", "parent": 2**63,
                                             "options": {"source": "x.csv", "table": "t"}}))
        too_long = submit_row(rt, json.dumps({**python, "args": ["z" * 1_100_000]}))
        state, job_id = outcome(rt, escaped)
        assert state == "queued" and rt.job(job_id).name == "caf\\xe9"
        assert outcome(rt, too_big)[0].startswith("refused: parent must be a whole number")
        assert outcome(rt, too_long)[0].startswith("refused: the job spec is 1,100,")
        after = rt.wait(rt.submit(jobs.noop).id, timeout=30)
        assert after.status is Status.FINISHED
    finally:
        rt.close()
    reopened = jobobs.Runtime(db, workers=1, handle_signals=False)  # no wedge comes back
    try:
        assert reopened.wait(reopened.submit(jobs.noop).id, timeout=30).status is Status.FINISHED
    finally:
        reopened.close()


@pytest.mark.parametrize("which", ["row", "line"])
def test_a_value_past_the_edge_fails_its_job_and_nothing_else(rt, which, caplog):
    other = rt.submit(jobs.blocked, f"other-{which}")
    with caplog.at_level(logging.ERROR, logger="jobobs"):
        bad = rt.wait(rt.submit(jobs.past_the_edge, which).id, timeout=60)
    assert bad.status is Status.FAILED and bad.error.startswith("A value could not be stored (")
    lines = [m for (m,) in rows(rt, "SELECT message FROM journal WHERE job_id = ? ORDER BY seq",
                                [bad.id])]
    assert "before" in lines and lines[-1].endswith("; the job fails")
    if which == "line":
        assert any(m.startswith("A journal line could not be stored") for m in lines)
    blamed = [r for r in caplog.records if f"job {bad.id}:" in r.getMessage()]
    assert len(blamed) == 1, [r.getMessage() for r in caplog.records]  # once, not per try
    # the other job was never held back: it pauses, resumes and finishes
    rt.pause(other.id)
    assert rt.wait(other.id, timeout=30).status is Status.PAUSED
    rt.resume(other.id)
    wait_for_status(rt, other.id, Status.RUNNING, timeout=30)
    jobs.gate(f"other-{which}").set()
    assert rt.wait(other.id, timeout=30).status is Status.FINISHED


def test_a_flood_of_submissions_does_not_hold_a_pause_back(rt):
    running = rt.submit(jobs.blocked, "flood")
    wait_for_status(rt, running.id, Status.RUNNING, timeout=30)
    with rt.store.transaction() as con:
        con.execute(
            """INSERT INTO job_commands (id, job_id, command, requested_at, requested_by, spec)
               SELECT nextval('command_id_seq'), NULL, 'submit', ?, 'sql', ?
               FROM range(5000)""",
            [ts(rt.clock()), json.dumps({"kind": "python", "function": "jobs:noop"})])
    command_id = rt.store.request(running.id, "pause", by="sql", now=rt.clock())
    wait_for_status(rt, running.id, Status.PAUSED, timeout=60)
    (handled,) = rows(rt, "SELECT count(*) FROM job_commands WHERE command = 'submit' "
                          "AND handled_at IS NOT NULL")[0]
    assert handled < 5000  # the pause went before the submissions still waiting
    assert rows(rt, "SELECT outcome FROM job_commands WHERE id = ?", [command_id])  # written
    rt.cancel(running.id)
    jobs.gate("flood").set()
    rt.run_until_idle(timeout=300)
    (finished,) = rows(rt, "SELECT count(*) FROM jobs WHERE status = 'finished'")[0]
    assert finished == 5000


def test_the_cli_run_with_a_name_that_is_not_utf8_through_a_server(tmp_path):
    server = Server(str(tmp_path / "jobs.duckdb")).wait_ready()
    try:
        done = subprocess.run([JOBOBS, "run", "jobs:noop", "--name", b"caf\xe9", "--wait",
                               "--json", "--db", server.db], capture_output=True, env=env(),
                              timeout=120)
        assert done.returncode == 0, done.stderr
        job = json.loads(done.stdout)
        assert job["name"] == "caf\\xe9" and job["status"] == "finished"
        with jobobs.connect(server.db) as client:  # the server carries on
            later = client.submit("jobs:blocked", "never")
            wait_status(client, later, "running")
            client.cancel(later)
            wait_status(client, later, "canceled")
    finally:
        assert server.stop() == 0, server.output()
    assert "Traceback" not in server.output()


def test_a_repeated_error_is_logged_once_with_a_count_and_backed_off(caplog):
    from jobobs.execution.loop import Repeated

    trouble = Repeated(logging.getLogger("jobobs.test"), "writing failed")
    with caplog.at_level(logging.WARNING, logger="jobobs.test"):
        for attempt in range(200):
            trouble.failed(OSError(f"disk full ({attempt})"))
        assert trouble.delay(0.05) == 5.0  # tries spaced out, up to 5 s apart
        trouble.recovered()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["jobobs: writing failed",
                        "jobobs: writing failed 200 times; it works again"]
    assert caplog.records[0].exc_info is not None and trouble.delay(0.05) == 0.05


def test_an_eta_past_year_9999_is_unknown_not_a_failure(db):
    ticks = iter(range(1_700_000_000, 1_800_000_000))  # each reading of the clock is 1 s on
    rt = jobobs.Runtime(db, workers=1, handle_signals=False, clock=lambda: float(next(ticks)))
    try:
        info = rt.wait(rt.submit(jobs.far_eta).id, timeout=30)
        assert info.status is Status.FINISHED and info.eta_at is None, info.error
    finally:
        rt.close()
