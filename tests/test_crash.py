"""Crash and shutdown with real processes: SIGKILL mid-job, then recovery and resume with
nothing lost and nothing done twice; SIGTERM, a clean exit within 5 s and resume."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jobobs
from jobobs import Status
from jobobs.testing import journal_messages

TESTS = Path(__file__).parent
COUNT = 400


def _child(db, ready_at=60, sigint="default"):
    """The child process, its SIGINT ``default`` (as started from a terminal, whatever
    this process was started with: a shell's background job ignores it) or ``ignored``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, str(TESTS / "crash_child.py"), db, str(COUNT), str(ready_at), sigint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    assert line.strip().isdigit(), process.stderr.read()
    return process, int(line)


def _resume_and_check(db, job_id):
    with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
        info = rt.job(job_id)
        assert info.status is Status.SHUTDOWN
        saved = json.loads(info.checkpoint)["state"]["i"] if info.checkpoint else 0
        rt.start(job_id, by="operator")
        done = rt.wait(job_id, timeout=60)
        assert done.status is Status.FINISHED
        expected = (COUNT, len(range(0, COUNT, 7)), 2)
        assert (done.processed, done.rejected, done.run_count) == expected
        lines = rt.store.reader().execute(
            "SELECT line_no FROM rejects WHERE job_id = ? ORDER BY line_no", [job_id]).fetchall()
        assert [n for (n,) in lines] == [i + 1 for i in range(0, COUNT, 7)]  # none lost or twice
        messages = journal_messages(rt, job_id)
        assert f"starting at {saved}" in messages  # the second run began at the checkpoint
        return saved, messages


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_mid_job_then_recovery_and_exact_resume(db, attempt):
    process, job_id = _child(db, ready_at=random.randint(20, 200))
    time.sleep(random.uniform(0, 0.1))
    process.kill()
    process.wait(10)
    saved, messages = _resume_and_check(db, job_id)
    assert 20 <= saved < COUNT
    recovered = [m for m in messages if m.startswith("Recovered:")]
    assert len(recovered) == 1 and f"pid {process.pid}" in recovered[0]
    assert "stopped without a clean shutdown" in recovered[0]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, -2)])
def test_sigterm_and_sigint_stop_at_a_safe_point_and_exit(db, signum, code):
    process, job_id = _child(db)
    process.send_signal(signum)
    assert process.wait(60) == code  # SIGINT exits as interrupted, as Python does
    _, messages = _resume_and_check(db, job_id)
    assert not any(m.startswith("Recovered:") for m in messages)
    assert any(m.startswith("The runtime stopped; the job stopped at a checkpoint")
               for m in messages)


def test_a_process_started_in_the_background_still_stops_cleanly_on_sigterm(db):
    """A shell starts a background job (``cmd &``, ``nohup``) with SIGINT ignored: it stays
    ignored, and SIGTERM still stops the runtime at a safe point."""
    process, job_id = _child(db, sigint="ignored")
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, process.stderr.read()
    _, messages = _resume_and_check(db, job_id)
    assert not any(m.startswith("Recovered:") for m in messages)
    assert any(m.startswith("The runtime stopped; the job stopped at a checkpoint")
               for m in messages)


def test_a_dead_process_canceling_job_is_recorded_as_canceled(db):
    from jobobs.db.ledger import Ledger
    from jobobs.db.store import Store

    store = Store(db)
    ledger = Ledger(store, time.time)
    row = ledger.create(name="gone", kind="python", spec=None, actor="t", queue=True,
                        runtime_id="elsewhere", host=os.uname().nodename, pid=2**22 + 7)
    ledger.transition(row.id, Status.RUNNING, actor="runtime")
    ledger.transition(row.id, Status.CANCELING, actor="alice")
    ledger.flush()
    store.close()
    with jobobs.Runtime(db, handle_signals=False) as rt:
        assert rt.recovered == [(row.id, Status.CANCELED)]
        assert rt.job(row.id).status is Status.CANCELED


def test_every_job_left_active_is_recovered_whatever_its_host_or_heartbeat(db):
    # Only one process can write the file and it runs one runtime on it, so a job found
    # active when a runtime opens the file has no owner, even with a fresh heartbeat.
    from jobobs.db.ledger import Ledger
    from jobobs.db.store import Store

    store = Store(db)
    ledger = Ledger(store, time.time)
    rows = [ledger.create(name=n, kind="python", spec=None, actor="t", queue=True,
                          runtime_id=n, host="other-host", pid=1) for n in ("a", "b")]
    ledger.transition(rows[0].id, Status.RUNNING, actor="runtime")
    ledger.flush()
    store.close()
    with jobobs.Runtime(db, handle_signals=False) as rt:
        assert rt.recovered == [(rows[0].id, Status.SHUTDOWN), (rows[1].id, Status.SHUTDOWN)]
        assert "pid 1 on other-host" in journal_messages(rt, rows[0].id)[-1]
