"""The runtime on a real DuckDB file: running, queueing, control at safe points, failures,
warnings, rejects, the journal and its logging handler, counters, retention."""

import json
import logging
import threading
import time
from datetime import timedelta

import duckdb
import jobs
import pytest

import jobobs
from jobobs import IllegalRequest, JobNotFound, RuntimeClosed, Status
from jobobs.access import queries
from jobobs.testing import history, journal_messages, wait_for_status, wait_until


def test_submitted_job_runs_to_finished_with_history(rt):
    job = rt.submit(jobs.steps, 5, 0.0)
    info = rt.wait(job.id, timeout=10)
    assert info.status is Status.FINISHED and info.label == "Finished"
    assert (info.processed, info.total, info.succeeded, info.progress_current) == (5, 5, 5, 5)
    assert info.started_at <= info.finished_at
    assert history(rt, job.id) == [(None, "editing"), ("editing", "queued"),
                                   ("queued", "running"), ("running", "finished")]
    messages = journal_messages(rt, job.id)
    assert messages[0].startswith("Job started (run 1)")
    assert "starting at 0" in messages
    assert messages[-1].startswith("End of job (5 processed in")


def test_jobs_wait_in_queued_beyond_the_worker_limit(db):
    with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
        first = rt.submit(jobs.blocked, "q1")
        wait_for_status(rt, first.id, Status.RUNNING)
        second, third = rt.submit(jobs.noop), rt.submit(jobs.noop)
        time.sleep(0.2)
        assert (rt.status(second.id), rt.status(third.id)) == (Status.QUEUED, Status.QUEUED)
        jobs.gate("q1").set()
        rt.run_until_idle(timeout=10)
        assert {rt.status(j.id) for j in (first, second, third)} == {Status.FINISHED}
        order = rt.store.reader().execute(
            "SELECT id FROM jobs ORDER BY started_at").fetchall()
        assert [i for (i,) in order] == [first.id, second.id, third.id]


def test_pause_takes_effect_at_a_checkpoint_and_resume_continues_from_it(rt):
    job = rt.submit(jobs.steps, 60, 0.01)
    wait_until(lambda: rt.job(job.id).processed >= 5)
    rt.pause(job.id, by="alice")
    paused = rt.wait(job.id, timeout=10)
    assert paused.status is Status.PAUSED
    state = json.loads(paused.checkpoint)["state"]["i"]
    assert 5 <= state < 60 and paused.processed == state
    time.sleep(0.1)
    assert rt.job(job.id).processed == state  # nothing runs while paused
    rt.resume(job.id, by="bob")
    done = rt.wait(job.id, timeout=20)
    assert done.status is Status.FINISHED and done.processed == 60 and done.run_count == 2
    assert history(rt, job.id)[2:] == [
        ("queued", "running"), ("running", "pausing"), ("pausing", "paused"),
        ("paused", "queued"), ("queued", "running"), ("running", "finished")]
    actors = rt.store.reader().execute(
        "SELECT to_status, actor FROM job_transitions WHERE job_id = ? ORDER BY seq",
        [job.id]).fetchall()
    assert ("pausing", "alice") in actors and ("queued", "bob") in actors
    assert f"starting at {state}" in journal_messages(rt, job.id)


def test_cancel_takes_effect_at_a_checkpoint(rt):
    job = rt.submit(jobs.steps, 1000, 0.01)
    wait_for_status(rt, job.id, Status.RUNNING)
    rt.cancel(job.id)
    info = rt.wait(job.id, timeout=10)
    assert info.status is Status.CANCELED and info.processed < 1000
    assert history(rt, job.id)[-2:] == [("running", "canceling"), ("canceling", "canceled")]
    assert info.finished_at is not None


def test_control_of_jobs_that_are_not_executing(db):
    with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
        holder = rt.submit(jobs.blocked, "nx")
        wait_for_status(rt, holder.id, Status.RUNNING)
        waiting = rt.submit(jobs.noop)
        rt.pause(waiting.id)
        assert rt.wait(waiting.id, timeout=30).status is Status.PAUSED
        rt.cancel(waiting.id)
        assert rt.wait(waiting.id, timeout=30).status is Status.CANCELED
        draft = rt.submit(jobs.noop, start=False)
        assert rt.status(draft.id) is Status.EDITING
        jobs.gate("nx").set()
        rt.start(draft.id)
        assert rt.wait(draft.id, timeout=10).status is Status.FINISHED
        assert history(rt, waiting.id)[-2:] == [("queued", "paused"), ("paused", "canceled")]


def test_resume_while_pausing_withdraws_the_pause(rt):
    job = rt.submit(jobs.hold_then_run, "withdraw")
    wait_for_status(rt, job.id, Status.RUNNING)
    rt.pause(job.id)
    wait_for_status(rt, job.id, Status.PAUSING)
    rt.resume(job.id)
    wait_for_status(rt, job.id, Status.RUNNING)
    jobs.gate("withdraw").set()
    assert rt.wait(job.id, timeout=10).status is Status.FINISHED
    assert ("pausing", "running") in history(rt, job.id)


@pytest.mark.parametrize(("command", "status"), [
    ("pause", "finished"), ("resume", "finished"), ("cancel", "finished"),
    ("start", "finished")])
def test_illegal_requests_raise_one_clear_error(rt, command, status):
    job = rt.submit(jobs.noop)
    rt.wait(job.id, timeout=10)
    with pytest.raises(IllegalRequest, match=f"cannot {command} a job that is '{status}'"):
        rt.request(job.id, command)
    assert rt.store.pending_commands() == []


def test_unknown_job_and_closed_runtime(db):
    rt = jobobs.Runtime(db, handle_signals=False)
    with pytest.raises(JobNotFound, match="job 4242 does not exist"):
        rt.pause(4242)
    with pytest.raises(ValueError, match="unknown request 'explode'"):
        rt.request(rt.submit(jobs.noop).id, "explode")
    rt.close()
    with pytest.raises(RuntimeClosed):
        rt.submit(jobs.noop)


def test_a_request_from_another_client_goes_through_the_commands_table(rt):
    job = rt.submit(jobs.steps, 1000, 0.01)
    wait_for_status(rt, job.id, Status.RUNNING)
    # What the CLI or a remote client does: record the request, nothing else.
    rt.store.request(job.id, "pause", by="remote", now=time.time())
    assert rt.wait(job.id, timeout=10).status is Status.PAUSED
    outcome = queries.commands(rt.store.reader(), job.id)
    assert list(outcome[["command", "requested_by", "outcome"]].itertuples(index=False)) == [
        ("pause", "remote", "pausing")]
    assert outcome.handled_at.notna().all()


def test_a_failing_job_is_failed_with_its_traceback_in_the_journal(rt):
    info = rt.wait(rt.submit(jobs.boom).id, timeout=10)
    assert info.status is Status.FAILED and info.label == "Finished with error"
    assert info.error == "ValueError: the input is broken"
    lines = queries.journal(rt.store.reader(), info.id, level="error")
    assert len(lines) == 1
    assert lines.message[0].startswith("Traceback (most recent call last)")
    assert "raise ValueError" in lines.message[0]


def test_warnings_set_the_flag_and_keep_finished(rt):
    info = rt.wait(rt.submit(jobs.warns).id, timeout=10)
    assert info.status is Status.FINISHED and info.has_warning and info.warnings >= 1
    lines = queries.journal(rt.store.reader(), info.id, level="warning")
    assert list(zip(lines.code.fillna("-"), lines.message)) == [
        ("XDT-320029", "an odd value in row 3"), ("-", "End of job with warning(s)")]


def test_rejects_are_recorded_with_every_field(rt):
    info = rt.wait(rt.submit(jobs.steps, 10, 0.0, 4).id, timeout=10)
    assert info.status is Status.FINISHED and info.rejected == 3 and info.succeeded == 7
    rejects = queries.rejects(rt.store.reader(), info.id)
    assert list(rejects.seq) == [1, 2, 3]
    assert list(rejects.line_no) == [1, 5, 9]
    first = rejects.iloc[0]
    assert (first.kind, first.source, first.column_name, first.reason, first.message) == (
        "error", "items", "i", "bad item", "bad item")
    assert json.loads(first.raw) == {"i": 0} and json.loads(first.record) == {"i": 0}


def test_too_many_rejects_fails_the_job(rt):
    info = rt.wait(rt.submit(jobs.many_rejects).id, timeout=10)
    assert info.status is Status.FAILED
    assert info.error == "TooManyRejects: too many rejects: 6 (the limit is 5)"
    assert info.rejected == 6
    assert "Too many rejects: 6 (the limit is 5); the job stops" in journal_messages(rt, info.id)


def test_logging_inside_a_job_reaches_its_journal(rt):
    info = rt.wait(rt.submit(jobs.uses_logging).id, timeout=10)
    lines = queries.journal(rt.store.reader(), info.id)
    assert ("INFO", "legacy info line") in set(zip(lines.level, lines.message))
    assert ("WARNING", "legacy warning") in set(zip(lines.level, lines.message))
    failure = lines[lines.message.str.startswith("legacy failure")].iloc[0]
    assert failure.level == "ERROR" and "ZeroDivisionError" in failure.message
    assert info.has_warning


def test_logging_outside_jobs_is_left_alone(rt, caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("tests.outside").info("not a job line")
    assert "not a job line" in caplog.text
    rt.ledger.flush()
    assert rt.store.reader().execute("SELECT count(*) FROM journal").fetchone()[0] == 0


def test_journal_lines_are_visible_to_readers_while_the_job_runs(db, rt):
    # how soon is a figure of make bench; here: written by the flush, before the job ends
    job = rt.submit(jobs.chatty, "visible", 7)
    reader = rt.store.con.cursor()
    wait_until(lambda: len(queries.journal(reader, job.id)) >= 8, timeout=30,
               message="journal lines visible")
    assert rt.status(job.id) is Status.RUNNING  # held by its gate until below
    after = queries.journal(reader, job.id, after=3)
    assert list(after.seq) == list(range(4, len(after) + 4))
    jobs.gate("visible").set()
    rt.wait(job.id, timeout=10)


def test_progress_carries_an_eta_while_running(rt):
    job = rt.submit(jobs.steps, 200, 0.01)
    wait_until(lambda: rt.job(job.id).processed >= 20)
    rt.ledger.flush()
    row = queries.job(rt.store.reader(), job.id).iloc[0]
    assert 0.05 < row.progress < 1 and row.eta_at is not None
    assert row.eta_at.timestamp() > time.time() - 1
    rt.cancel(job.id)
    rt.wait(job.id, timeout=10)


def test_close_moves_running_and_queued_jobs_to_shutdown_and_start_resumes(db):
    rt = jobobs.Runtime(db, workers=1, handle_signals=False)
    running = rt.submit(jobs.steps, 300, 0.01)
    queued = rt.submit(jobs.noop)
    wait_until(lambda: rt.job(running.id).processed >= 3)
    started = time.monotonic()
    rt.close()
    assert time.monotonic() - started < rt.shutdown_timeout + 30  # never waits on the queue
    with jobobs.Runtime(db, workers=1, handle_signals=False) as again:
        assert again.status(running.id) is Status.SHUTDOWN
        assert again.status(queued.id) is Status.SHUTDOWN
        checkpoint = json.loads(again.job(running.id).checkpoint)["state"]["i"]
        again.start(running.id)
        again.start(queued.id)
        assert again.wait(running.id, timeout=30).status is Status.FINISHED
        assert again.wait(queued.id, timeout=10).status is Status.FINISHED
        assert f"starting at {checkpoint}" in journal_messages(again, running.id)
        assert again.recovered == []


def test_a_job_that_never_reaches_a_safe_point_is_recorded_as_shutdown_on_close(db):
    rt = jobobs.Runtime(db, workers=1, handle_signals=False, shutdown_timeout=0.3)
    job = rt.submit(jobs.hold_then_run, "stuck")
    wait_for_status(rt, job.id, Status.RUNNING)
    rt.close()
    jobs.gate("stuck").set()
    con = duckdb.connect(db)
    status, = con.execute("SELECT status FROM jobs WHERE id = ?", [job.id]).fetchone()
    reason, = con.execute("SELECT reason FROM job_transitions WHERE job_id = ? "
                          "ORDER BY seq DESC LIMIT 1", [job.id]).fetchone()
    con.close()
    assert status == "shutdown" and "did not reach a safe point within 0.3 s" in reason


def test_retention_purges_old_history_with_time_as_a_parameter(db):
    now = [1_700_000_000.0]
    with jobobs.Runtime(db, handle_signals=False, clock=lambda: now[0]) as rt:
        old = rt.wait(rt.submit(jobs.steps, 3, 0.0, 1).id, timeout=10)
        assert old.rejected == 3
        now[0] += 40 * 86400
        recent = rt.wait(rt.submit(jobs.steps, 3, 0.0, 1).id, timeout=10)
        counts = rt.purge(timedelta(days=30))
        assert counts["jobs"] == 1 and counts["rejects"] == 3 and counts["journal"] > 0
        con = rt.store.reader()
        assert [i for (i,) in con.execute("SELECT id FROM jobs").fetchall()] == [recent.id]
        for table in ("journal", "rejects", "job_transitions"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE job_id = ?",
                               [old.id]).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == 3


def test_arguments_must_be_json(rt):
    with pytest.raises(jobobs.JobDefinitionError, match="JSON-serializable"):
        rt.submit(jobs.steps, object())


def test_a_job_whose_function_is_gone_fails_clearly(rt):
    row = rt.ledger.create(name="ghost", kind="python", actor="t", queue=True,
                           spec=json.dumps({"function": "nowhere.at_all:fn"}))
    rt.slots.put(row.id)
    info = rt.wait(row.id, timeout=10)
    assert info.status is Status.FAILED
    assert info.error.startswith("JobDefinitionError: job function nowhere.at_all:fn cannot")


def test_a_checkpoint_state_that_is_not_json_fails_the_job_clearly(rt):
    info = rt.wait(rt.submit(jobs.bad_state).id, timeout=10)
    assert info.status is Status.FAILED
    assert info.error.startswith("JobobsError: checkpoint state must be JSON-serializable")


def test_checkpoint_interval_spaces_the_saves(rt):
    info = rt.wait(rt.submit(jobs.spaced).id, timeout=10)
    assert info.status is Status.FINISHED and info.processed == 50
    assert json.loads(info.checkpoint)["state"] == {"i": 1}  # only the first save was due


@pytest.mark.parametrize(("which", "message"), [
    ("line", "line must be a whole number from 0 to 9223372036854775807, not '12a'"),
    ("count", "total must be a whole number from 0 to 9223372036854775807, not 'many'"),
    ("progress", "current must be a finite number, not 'half'")])
def test_a_bad_value_fails_only_its_job(rt, which, message):
    bad = rt.wait(rt.submit(jobs.bad_values, which).id, timeout=10)
    assert bad.status is Status.FAILED and bad.error == f"JobobsError: {message}"
    good = rt.wait(rt.submit(jobs.steps, 5, 0.0, 2).id, timeout=10)
    assert good.status is Status.FINISHED and good.rejected == 3


def test_a_second_runtime_on_the_same_file_is_refused(rt, db):
    with pytest.raises(jobobs.JobobsError, match="a runtime is already open on"):
        jobobs.Runtime(db, handle_signals=False)


@pytest.mark.parametrize("delay", [0, 0.001, 0.003, 0.01, 0.03])
def test_close_at_any_moment_stops_a_checkpointing_job_at_a_safe_point(tmp_path, delay):
    rt = jobobs.Runtime(str(tmp_path / "c.duckdb"), workers=1, handle_signals=False,
                        shutdown_timeout=60)  # the reason below says if it ran out
    job = rt.submit(jobs.ticker)
    time.sleep(delay)  # the moment of the close, not a wait
    rt.close()
    con = duckdb.connect(str(tmp_path / "c.duckdb"))
    status, reason = con.execute(
        "SELECT to_status, reason FROM job_transitions WHERE job_id = ? ORDER BY seq DESC "
        "LIMIT 1", [job.id]).fetchone()
    con.close()
    assert status == "shutdown" and "did not reach a safe point" not in reason


def test_a_clean_close_leaves_nothing_queued_or_canceling(tmp_path):
    rt = jobobs.Runtime(str(tmp_path / "q.duckdb"), workers=1, handle_signals=False,
                        shutdown_timeout=0.5)
    stuck = rt.submit(jobs.hold_then_run, "close-canceling")
    wait_for_status(rt, stuck.id, Status.RUNNING)
    rt.cancel(stuck.id)
    wait_for_status(rt, stuck.id, Status.CANCELING)
    drafts = [rt.submit(jobs.noop, start=False) for _ in range(5)]
    for draft in drafts:
        rt.start(draft.id)
    rt.close()
    jobs.gate("close-canceling").set()
    con = duckdb.connect(str(tmp_path / "q.duckdb"))
    statuses = dict(con.execute("SELECT id, status FROM jobs").fetchall())
    con.close()
    assert statuses[stuck.id] == "canceled"
    assert not {"queued", "running", "pausing", "canceling"} & set(statuses.values())


def test_purge_keeps_the_rejects_of_a_job_that_can_still_resume(db):
    now = [1_700_000_000.0]
    with jobobs.Runtime(db, handle_signals=False, clock=lambda: now[0]) as rt:
        job = rt.submit(jobs.steps, 1000, 0.001, 2)
        wait_until(lambda: rt.job(job.id).rejected >= 3)
        rt.pause(job.id)
        rejected = rt.wait(job.id, timeout=10).rejected
        now[0] += 40 * 86400
        rt.purge(timedelta(days=30))
        kept = rt.store.reader().execute("SELECT count(*) FROM rejects WHERE job_id = ?",
                                         [job.id]).fetchone()[0]
        assert kept == rejected
        rt.cancel(job.id)
        rt.wait(job.id, timeout=10)


def test_a_hung_job_is_failed_and_its_worker_replaced(db):
    gate = jobs.gate("hung")
    before = {t for t in threading.enumerate() if t.name.startswith("jobobs-worker")}
    with jobobs.Runtime(db, workers=1, handle_signals=False, stall_timeout=0.5,
                        heartbeat=0.1) as rt:
        hung = rt.submit(jobs.hold_then_run, "hung").id
        info = rt.wait(hung, timeout=10)
        assert info.status.value == "failed" and "No sign of life for 0.5 s" in info.error
        assert rt.wait(rt.submit(jobs.steps, 3, 0.0).id, timeout=10).status.value == "finished"
        gate.set()  # the abandoned thread comes back: its job stays failed

        def workers():
            return {t for t in threading.enumerate() if t.name.startswith("jobobs-worker")}

        wait_until(lambda: len(workers() - before) == 1, timeout=30,
                   message="the abandoned thread left when it came back")
        assert rt.job(hung).status.value == "failed"
        assert rt.wait(rt.submit(jobs.steps, 3, 0.0).id, timeout=10).status.value == "finished"
    reasons = [reason for (reason,) in duckdb.connect(db).execute(
        "SELECT reason FROM job_transitions WHERE job_id = ? AND to_status = 'failed'",
        [hung]).fetchall()]
    assert reasons == ["hung"]


def test_a_close_does_not_wait_for_a_thread_abandoned_with_a_hung_job(db):
    gate = jobs.gate("abandoned")
    rt = jobobs.Runtime(db, workers=1, handle_signals=False, stall_timeout=0.5,
                        heartbeat=0.1, shutdown_timeout=60)
    try:
        hung = rt.submit(jobs.hold_then_run, "abandoned").id
        assert rt.wait(hung, timeout=30).status is Status.FAILED
        started = time.monotonic()
        rt.close()
        assert time.monotonic() - started < 30  # it would wait out the 60 s for the thread
    finally:
        gate.set()
        rt.close()


def test_a_job_whose_error_cannot_be_shown_still_fails(rt):
    info = rt.wait(rt.submit(jobs.unprintable_error).id, timeout=30)
    assert info.status is Status.FAILED
    assert info.error == "Unprintable: <Unprintable whose text cannot be shown>"
