"""Demo jobs: a small mix that shows every outcome (finished, warnings, rejects, failure,
pause and resume, cancel). They live in a module so a restarted runtime can resume them."""

from __future__ import annotations

import logging
import random
import time

from jobobs.job import job
from jobobs.runtime import Runtime

log = logging.getLogger("jobobs.demo")


@job(name="score-customers", max_rejects=None, checkpoint_interval=0.1)
def score_customers(ctx, count: int = 2000, delay: float = 0.005):
    """Score customers one by one; every 97th has a negative score and is rejected.
    Checkpoints are saved at most every 0.1 s (a pause or cancel still acts at once)."""
    start = (ctx.resume_state or {"i": 0})["i"]
    if start == 0:
        ctx.log.info("--- Score customers ---")
        ctx.log.info("Starting scoring (%d records to process)", count)
    for i in range(start, count):
        if i % 97 == 13:
            ctx.reject({"customer": i, "score": -i % 50}, reason="negative score",
                       column="score", line=i + 1, message=f"customer {i}: score below zero")
        time.sleep(delay)
        ctx.progress(i + 1, count)
        ctx.checkpoint({"i": i + 1})


@job(name="sync-crm")
def sync_crm(ctx, batches: int = 30):
    """Logs through the standard ``logging`` module; ends with a warning."""
    for batch in range(batches):
        log.info("pushed batch %d/%d", batch + 1, batches)
        ctx.progress(batch + 1, batches)
        time.sleep(0.05)
        ctx.checkpoint({"batch": batch + 1})
    ctx.warn("XDT-320029 3 contacts had no e-mail address; they were skipped")


@job(name="load-events", max_rejects=100)
def load_events(ctx, count: int = 5000):
    """Crosses the default reject threshold (100) and fails."""
    rng = random.Random(7)
    for i in range(count):
        if rng.random() < 0.05:
            ctx.reject(f"{i},,click", reason="missing user id", column="user_id", line=i + 2)
        ctx.progress(i + 1, count)
        if i % 100 == 0:
            time.sleep(0.01)
            ctx.checkpoint({"i": i + 1})


@job(name="refresh-aggregates")
def refresh_aggregates(ctx):
    """Fails with an error half-way, like a dropped table would make it."""
    for step in range(10):
        ctx.progress(step + 1, 10)
        time.sleep(0.05)
        ctx.checkpoint({"step": step + 1})
        if step == 4:
            raise RuntimeError("Catalog Error: table daily_totals does not exist")


def run(rt: Runtime, *, scale: float = 1.0) -> list[int]:
    """Submit the demo mix, pause and resume one job, cancel another; return the job ids."""
    count = max(200, int(2000 * scale))
    jobs = [
        rt.submit(score_customers, count),
        rt.submit(sync_crm),
        rt.submit(load_events),
        rt.submit(refresh_aggregates),
        rt.submit(score_customers, count, name="score-prospects"),
    ]
    paused, canceled = jobs[0], jobs[4]
    _when_running(rt, paused.id)
    rt.pause(paused.id)
    rt.wait(paused.id)
    _when_running(rt, canceled.id)
    rt.cancel(canceled.id)
    rt.resume(paused.id)
    return [j.id for j in jobs]


def _when_running(rt: Runtime, job_id: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while rt.job(job_id).status.value != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
