"""What a checkpoint costs (issue 20, item 12): a plain checkpoint is kept in memory and
written with the next flush, in the transaction that writes the lines, rejects and
counters before it; one that honours a request, one with an atomic step and
``durable=True`` are written before ``checkpoint`` returns. The README's first example
(5,000 items, a checkpoint each) finishes in seconds, not minutes."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from jobobs.db.ledger import Ledger
from jobobs.db.store import Store
from jobobs.execution.context import Interrupts, JobContext
from jobobs.execution.sinks import LedgerSink
from jobobs.model.errors import PauseInterrupt
from jobobs.model.states import Status

README = Path(__file__).parents[1] / "README.md"


def _stored_state(store: Store, job_id: int):
    (saved,) = store.reader().execute(
        "SELECT checkpoint FROM jobs WHERE id = ?", [job_id]).fetchone()
    return None if saved is None else json.loads(saved)["state"]


@pytest.fixture
def job(db):
    store = Store(db)
    ledger = Ledger(store, time.time)
    row = ledger.create(name="steps", kind="python", spec=None, actor="t", queue=True)
    ledger.transition(row.id, Status.RUNNING, actor="runtime")
    ledger.flush()
    control = Interrupts()
    ctx = JobContext(row, sink=LedgerSink(ledger, row.id), interrupts=control, clock=time.time)
    yield ctx, ledger, store, control
    store.close()


def test_a_plain_checkpoint_is_written_with_the_next_flush(job):
    ctx, ledger, store, _ = job
    ctx.log.info("before the checkpoint")
    ctx.progress(1, 10)
    ctx.checkpoint({"i": 1})
    assert _stored_state(store, ctx.job_id) is None  # no transaction of its own
    ledger.flush()
    assert _stored_state(store, ctx.job_id) == {"i": 1}
    (processed,) = store.reader().execute(
        "SELECT processed FROM jobs WHERE id = ?", [ctx.job_id]).fetchone()
    assert processed == 1


def test_a_durable_checkpoint_is_written_before_it_returns(job):
    ctx, _, store, _ = job
    ctx.checkpoint({"i": 1})
    ctx.checkpoint({"i": 2}, durable=True)
    assert _stored_state(store, ctx.job_id) == {"i": 2}


def test_a_checkpoint_that_honours_a_request_is_written_before_it_raises(job):
    ctx, _, store, control = job
    ctx.checkpoint({"i": 1})
    control.ask("pause")
    with pytest.raises(PauseInterrupt):
        ctx.checkpoint({"i": 2})
    assert _stored_state(store, ctx.job_id) == {"i": 2}


@pytest.mark.slow
def test_the_readmes_first_example_finishes_in_seconds(tmp_path):
    text = README.read_text().split("## A job in a script or notebook\n", 1)[1]
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "rt.submit(score, 5000)" in example  # 5,000 items, a checkpoint each
    # Before: about 200 s here (one transaction a checkpoint); now about a second.
    subprocess.run([sys.executable, "-c", example], cwd=tmp_path, check=True, timeout=60)
    con = duckdb.connect(str(tmp_path / "jobs.duckdb"), read_only=True)
    try:
        status, processed, rejected = con.execute(
            "SELECT status, processed, rejected FROM jobs").fetchone()
    finally:
        con.close()
    assert (status, processed, rejected) == ("finished", 5000, len(range(13, 5000, 97)))
