"""The demo: Python jobs that show every outcome (finished, warnings, rejects, failure),
imports and exports of generated files, and the steering that leaves a job paused, one
canceled, one being edited and one shut down. The jobs live in a module so a restarted
runtime can resume them."""

from __future__ import annotations

import logging
import os
import random
import threading
import time

from jobobs import demodata
from jobobs.execution.runtime import Runtime
from jobobs.kinds import exporting, importing
from jobobs.model.definition import job
from jobobs.model.errors import RuntimeClosed

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


def interrupted(db: str) -> int:
    """A job that was running when its runtime stopped: it is left ``shutdown``, as after
    a restart, for Start to resume from its checkpoint."""
    with Runtime(db, workers=1, handle_signals=False) as rt:
        handle = rt.submit(score_customers, 6000, 0.005, name="nightly-rescore")
        _when_running(rt, handle.id)
        time.sleep(0.3)
    return handle.id


def mix(rt: Runtime, data: str, *, scale: float = 1.0, wait: bool = False) -> dict[str, int]:
    """The whole demo: realistic files under ``data``, imports and exports (some at once),
    and Python jobs; one job is paused, one canceled and one left being edited, so every
    status shows within a minute. Exports follow their imports, on a thread of their own
    (or here, with ``wait``, which also waits for every job to stop). Returns the job ids
    by name."""
    paths = demodata.generate(data, scale=scale)
    count = max(200, int(4000 * scale))
    ids = {}
    ids["import customers"] = importing.submit(
        rt, paths["customers.csv"], "customers", name="import customers", key=["id"],
        mode="upsert", max_rejects="5%",
        columns={"id": "BIGINT", "name": "VARCHAR", "email": "VARCHAR", "country": "VARCHAR",
                 "signup_date": "DATE", "credit_limit": "INTEGER"}).id
    ids["import orders"] = importing.submit(
        rt, paths["orders.csv"], "orders", name="import orders", mode="replace",
        on_failure="keep", chunk_rows=max(1000, int(250_000 * scale))).id
    ids["import november orders"] = importing.submit(
        rt, paths["orders_2026-11-bad.csv"], "orders_november", name="import november orders",
        columns={"order_id": "BIGINT", "customer_id": "BIGINT", "ordered_at": "TIMESTAMP",
                 "amount": "DECIMAL(10,2)", "payment": "VARCHAR"}, max_rejects="5%").id
    ids["import events"] = importing.submit(rt, paths["events.json"], "events",
                                            name="import events", mode="replace").id
    ids["score-customers"] = rt.submit(score_customers, count, name="score-customers").id
    ids["sync-crm"] = rt.submit(sync_crm).id
    ids["load-events"] = rt.submit(load_events).id
    ids["score-prospects"] = rt.submit(score_customers, count, name="score-prospects").id
    ids["refresh-aggregates"] = rt.submit(refresh_aggregates, start=False).id

    def later() -> None:
        try:
            steer()
        except RuntimeClosed:  # the demo was stopped first
            pass

    def steer() -> None:
        _when_running(rt, ids["score-customers"])
        rt.pause(ids["score-customers"])
        _when_running(rt, ids["score-prospects"])
        rt.cancel(ids["score-prospects"])
        if rt.wait(ids["import customers"]).status.value == "finished":
            exporting.submit(rt, os.path.join(data, "out", "customers_by_country.parquet"),
                             name="export customers by country",
                             query="SELECT country, count(*) AS customers, "
                                   "avg(credit_limit) AS credit FROM customers GROUP BY ALL")
        if rt.wait(ids["import orders"]).status.value == "finished":
            exporting.submit(rt, os.path.join(data, "out", "orders_2026.csv.gz"),
                             name="export orders", table="orders", watermark="order_id")

    os.makedirs(os.path.join(data, "out"), exist_ok=True)
    if wait:
        steer()
        rt.run_until_idle()
    else:
        threading.Thread(target=later, name="jobobs-demo", daemon=True).start()
    return ids


def _when_running(rt: Runtime, job_id: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while rt.job(job_id).status.value != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
