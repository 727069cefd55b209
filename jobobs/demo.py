"""The demo: Python jobs that show every outcome (finished, warnings, rejects, failure),
imports and exports of generated files, and the steering that leaves a job paused, one
canceled, one being edited and one shut down. When it serves, schedules keep something
happening (``keep_going``): a feed fetched, imported and exported every 20 to 60 s, whose
fetch fails now and then and is retried. The jobs live in a module so a restarted runtime
(and a server, for the schedules' jobs) can import them."""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from typing import TYPE_CHECKING

from jobobs import demodata
from jobobs.execution.runtime import Runtime
from jobobs.kinds import exporting, importing
from jobobs.model.definition import job
from jobobs.model.errors import RuntimeClosed
from jobobs.model.retries import Retry

if TYPE_CHECKING:
    from jobobs.execution.scheduling import Schedule

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


@job(name="fetch signups", retry=Retry(2, delay=5))
def fetch_signups(ctx, data: str, pace: float = 1.0):
    """Fetch the latest signups from a (make-believe) web API, 5 to 15 pages of ``pace``
    seconds each, and write them to ``data/signups.csv`` for the scheduled import. Its
    job id decides its luck, so a retry knows it: about one run in four times out once
    half-way and its retry finishes from the checkpoint; one in twelve is refused on every
    try and fails once its two retries are spent (a retry by hand then finishes); one in
    six ends with a warning."""
    luck = random.Random(ctx.job_id)
    pages, fate = luck.randint(5, 15), luck.random()
    failing = 1 if fate < 0.25 else 3 if fate < 1 / 3 else 0  # failures before it works
    state = ctx.resume_state or {"page": 0, "failures": 0}
    failures = state["failures"]
    if state["page"] == 0 and not failures:
        ctx.log.info("Fetching %d pages of signups from api.example.com", pages)
    else:
        ctx.log.info("Fetching again from page %d of %d", state["page"] + 1, pages)
    for page in range(state["page"], pages):
        time.sleep(pace)
        if page == pages // 2 and failures < failing:
            ctx.checkpoint({"page": page, "failures": failures + 1})
            if failing == 1:
                raise TimeoutError(f"api.example.com did not answer within 30 s "
                                   f"(page {page + 1} of {pages})")
            raise ConnectionError("api.example.com refused the connection: "
                                  "503 Service Unavailable")
        ctx.log.info("Page %d of %d: %d signups", page + 1, pages, 10 + luck.randint(0, 9))
        ctx.progress(page + 1, pages)
        ctx.checkpoint({"page": page + 1, "failures": failures})
    if 1 / 3 <= fate < 0.5:
        ctx.warn("2 signups had no country; they are kept without one")
    path = demodata.signups(data)
    ctx.log.info("Wrote %s", path)


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
        keep_going(rt, data)
    return ids


def schedules(data: str, *, pace: float = 1.0) -> dict[str, dict]:
    """The demo's schedules as ``add`` requests, by name: a feed of signups fetched
    every 20 s (a Python job that fails now and then, retried twice 5 s later), imported
    every 30 s (replacing the table: a few bad lines each time), exported every 45 s
    (differential: only the signups not sent yet) and summed up on a cron expression,
    every minute. Their files are overwritten, so hours of it take no more room."""
    data = os.path.abspath(data)
    out = os.path.join(data, "out")
    fetch = {"kind": "python", "name": "fetch signups", "function": fetch_signups.path,
             "args": [], "kwargs": {"data": data, "pace": pace}}
    load = {"kind": "import", "name": "import signups", "parent": None, "options": {
        "source": os.path.join(data, "signups.csv"), "table": "signups",
        "columns": demodata.SIGNUP_COLUMNS, "mode": "replace", "max_rejects": "10%"}}
    send = {"kind": "export", "name": "export new signups", "options": {
        "to": os.path.join(out, "new_signups.csv"), "table": "signups",
        "watermark": "signed_up_at"}}
    report = {"kind": "export", "name": "signups by country", "options": {
        "to": os.path.join(out, "signups_by_country.parquet"),
        "query": "SELECT country, plan, count(*) AS signups, sum(seats) AS seats "
                 "FROM signups GROUP BY ALL ORDER BY ALL"}}
    return {
        "fetch signups": {"spec": fetch, "every": 20,
                          "retry": Retry(2, delay=5).to_dict()},
        "import signups": {"spec": load, "every": 30},
        "export new signups": {"spec": send, "every": 45},
        "signups by country": {"spec": report, "cron": "*/1 * * * *"},
    }


def keep_going(rt: Runtime, data: str, *, pace: float = 1.0) -> list[str]:
    """Add the demo's schedules (``schedules``) to ``rt``, whose database may be a last
    demo's: a schedule already there as the demo would add it is left as it is (paused,
    if someone paused it), one that differs (another data folder, an older demo) is
    replaced. Writes a first ``signups.csv`` and, if the table is missing, imports it at
    once, so the exports have something to read. Returns the schedules' names."""
    os.makedirs(os.path.join(data, "out"), exist_ok=True)
    demodata.signups(data)
    wanted = schedules(data, pace=pace)
    for name, fields in wanted.items():
        with rt.ledger.lock:
            there = rt.schedules.schedules.get(name)
            same = there is not None and _same(there, fields)
        if same:
            continue
        if there is not None:
            _apply(rt, {"verb": "remove", "name": name})
        _apply(rt, {"verb": "add", "name": name, **fields})
    tables = rt.store.reader().execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'signups'").fetchone()[0]
    if not tables:  # refused, harmlessly, if a last demo's run is still on its way
        rt.schedules.apply({"verb": "run", "name": "import signups"}, "demo")
        rt.flush()
    return list(wanted)


def _same(schedule: Schedule, fields: dict) -> bool:
    """True if the stored ``schedule`` is the one ``fields`` would add."""
    retry = Retry.given(fields.get("retry"))
    return (json.loads(schedule.spec) == fields["spec"] and schedule.cron == fields.get("cron")
            and schedule.every_s == fields.get("every") and schedule.retry() == retry)


def _apply(rt: Runtime, request: dict) -> None:
    """Carry out a schedule request as the demo; a refusal is a bug of the demo's."""
    outcome, _ = rt.schedules.apply(request, "demo")
    if outcome.startswith("refused: "):
        raise RuntimeError(f"the demo's schedule {request['name']}: {outcome}")
    rt.flush()


def _when_running(rt: Runtime, job_id: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while rt.job(job_id).status.value != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
