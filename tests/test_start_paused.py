"""Start on a paused job resumes it from its checkpoint, wherever it is pressed: the
runtime's API, a client, the command line and the dashboard (in the browser:
test_browser.py)."""

import json

import jobs
from click.testing import CliRunner

import jobobs
from jobobs import Status
from jobobs.cli import main
from jobobs.dashboard.detail import JobDetail
from jobobs.testing import history, wait_for_status, wait_until


def paused_job(rt, count=200):
    """A ``steps`` job paused at a checkpoint part of the way through: its id and where."""
    job_id = rt.submit(jobs.steps, count, 0.01).id
    wait_until(lambda: rt.job(job_id).processed >= 3, timeout=10)
    rt.pause(job_id)
    paused = rt.wait(job_id, timeout=10)
    assert paused.status is Status.PAUSED
    return job_id, json.loads(paused.checkpoint)["state"]["i"]


def resumed_from_its_checkpoint(rt, job_id, at, count=200):
    info = rt.wait(job_id, timeout=30)
    assert (info.status, info.processed, info.run_count) == (Status.FINISHED, count, 2)
    assert history(rt, job_id)[-4:] == [("pausing", "paused"), ("paused", "queued"),
                                       ("queued", "running"), ("running", "finished")]
    messages = rt.store.reader().execute(
        "SELECT message FROM journal WHERE job_id = ? ORDER BY seq", [job_id]).fetchall()
    assert ("starting at 0",) in messages and (f"starting at {at}",) in messages


def test_the_runtime_starts_a_paused_job_from_its_checkpoint(rt):
    job_id, at = paused_job(rt)
    rt.start(job_id, by="pat")
    resumed_from_its_checkpoint(rt, job_id, at)
    actor, reason = rt.store.reader().execute(
        "SELECT actor, reason FROM job_transitions WHERE job_id = ? AND from_status = 'paused'",
        [job_id]).fetchone()
    assert (actor, reason) == ("pat", "resume requested")


def test_a_client_starts_a_paused_job(rt):
    client = jobobs.Client.embedded(rt)
    job_id, at = paused_job(rt)
    assert client.start(job_id, by="pat") == "queued"
    resumed_from_its_checkpoint(rt, job_id, at)


def test_jobobs_start_runs_a_paused_job_to_the_end(db):
    with jobobs.Runtime(db, handle_signals=False) as rt:
        job_id, _ = paused_job(rt, count=60)
    result = CliRunner().invoke(main, ["start", str(job_id), "--db", db, "--by", "pat"])
    assert result.exit_code == 0 and result.output == f"job {job_id}: ✔ Finished\n"
    with jobobs.Runtime(db, handle_signals=False) as rt:
        info = rt.job(job_id)
        assert (info.processed, info.run_count) == (60, 2)
        assert history(rt, job_id)[-4:] == [("pausing", "paused"), ("paused", "queued"),
                                           ("queued", "running"), ("running", "finished")]


def test_start_in_the_dashboard_resumes_a_paused_job(rt):
    client = jobobs.Client.embedded(rt)
    job_id, at = paused_job(rt)
    detail = JobDetail(client, job_id=job_id, user="olga")
    assert detail.status == "paused"
    assert not detail.buttons["Start"].disabled and not detail.buttons["Resume"].disabled
    detail.buttons["Start"].clicks += 1  # as a press in the page does
    assert "Start requested" in detail.message.object
    wait_until(lambda: detail.refresh() or detail.status == "finished", timeout=30)
    assert detail.buttons["Start"].disabled
    assert "Status now: Finished." in detail.message.object
    resumed_from_its_checkpoint(rt, job_id, at)
    wait_for_status(rt, job_id, Status.FINISHED)
    actor = rt.store.reader().execute(
        "SELECT actor FROM job_transitions WHERE job_id = ? AND from_status = 'paused'",
        [job_id]).fetchone()[0]
    assert actor == "olga"
