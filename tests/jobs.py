"""Job functions the tests run; module-level so a restarted runtime can import them."""

import logging
import os
import threading
import time

import jobobs
from jobobs.db.store import Store, ts

gates: dict[str, threading.Event] = {}


def gate(name: str) -> threading.Event:
    return gates.setdefault(name, threading.Event())


@jobobs.job(name="noop")
def noop(ctx):
    pass


@jobobs.job(name="steps", max_rejects=None)
def steps(ctx, count=100, delay=0.01, reject_every=0):
    """Checkpoints after every step; rejects every ``reject_every``-th item."""
    start = (ctx.resume_state or {"i": 0})["i"]
    ctx.log.info("starting at %d", start)
    for i in range(start, count):
        if reject_every and i % reject_every == 0:
            ctx.reject({"i": i}, reason="bad item", column="i", line=i + 1, source="items")
        time.sleep(delay)
        ctx.progress(i + 1, count)
        ctx.checkpoint({"i": i + 1})


@jobobs.job(name="blocked")
def blocked(ctx, name):
    """Waits for its gate, checkpointing, then finishes."""
    while not gate(name).wait(0.01):
        ctx.checkpoint()


@jobobs.job(name="hold-then-run")
def hold_then_run(ctx, name):
    """Waits for its gate without ever reaching a safe point."""
    gate(name).wait(30)


@jobobs.job(name="boom")
def boom(ctx):
    ctx.log.info("about to fail")
    raise ValueError("the input is broken")


@jobobs.job(name="warns")
def warns(ctx):
    ctx.warn("XDT-320029 an odd value in row %d", 3)


@jobobs.job(name="many-rejects", max_rejects=5)
def many_rejects(ctx, count=20):
    for i in range(count):
        ctx.reject(f"{i},x", reason="parse error", line=i + 1)
        ctx.progress(i + 1, count)


@jobobs.job(name="uses-logging")
def uses_logging(ctx):
    logger = logging.getLogger("tests.legacy")
    logger.info("legacy info %s", "line")
    logger.warning("legacy warning")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logger.exception("legacy failure")


@jobobs.job(name="chatty")
def chatty(ctx, name, lines=5):
    """Logs lines, then waits for its gate (so a test can read the journal meanwhile)."""
    for n in range(lines):
        ctx.log.info("line %d", n)
    while not gate(name).wait(0.01):
        ctx.checkpoint()


@jobobs.job(name="bad-state")
def bad_state(ctx):
    ctx.checkpoint({"when": object()})


@jobobs.job(name="spaced", checkpoint_interval=60.0)
def spaced(ctx, count=50):
    for i in range(count):
        ctx.progress(i + 1, count)
        ctx.checkpoint({"i": i + 1})


@jobobs.job(name="bad-values")
def bad_values(ctx, which):
    if which == "line":
        ctx.reject("12a,x", reason="parse", line="12a")
    elif which == "count":
        ctx.count(total="many")
    else:
        ctx.progress("half")


@jobobs.job(name="ticker")
def ticker(ctx):
    while True:
        time.sleep(0.005)
        ctx.checkpoint()


@jobobs.job(name="talker", max_rejects=None)
def talker(ctx, count=100, delay=0.05):
    """Logs a line, rejects every tenth item (with its raw line) and checkpoints, step by
    step: a job to watch in the dashboard."""
    start = (ctx.resume_state or {"i": 0})["i"]
    for i in range(start, count):
        ctx.log.info("talking: step %d of %d", i + 1, count)
        if i % 10 == 0:
            ctx.reject({"i": i}, reason="odd value", column="amount", line=i + 2,
                       raw=f"{i},not-a-number", source="talk.csv")
        time.sleep(delay)
        ctx.progress(i + 1, count)
        ctx.checkpoint({"i": i + 1})


@jobobs.job(name="reporter", max_rejects=None)
def reporter(ctx, lines=20_000, every=100):
    """Reports as a busy job does: a journal line per item, and every ``every`` items
    progress, a reject and a checkpoint (the reporting cost of local against Dask runs)."""
    start = (ctx.resume_state or {"i": 0})["i"]
    for i in range(start, lines):
        ctx.log.info("item %d of %d", i + 1, lines)
        if (i + 1) % every == 0:
            ctx.reject({"i": i}, reason="sampled", line=i + 1, raw=f"{i},x")
            ctx.progress(i + 1, lines)
            ctx.checkpoint({"i": i + 1})


UNDECODABLE = os.fsdecode(b"caf\xe9.csv")  # a file name as os.listdir gives it


@jobobs.job(name="undecodable")
def undecodable(ctx):
    """Reports a file name that is not UTF-8 every way a job can."""
    ctx.log.info("reading %s", UNDECODABLE, code=UNDECODABLE)
    logging.getLogger("tests.undecodable").warning("skipped %s", UNDECODABLE)
    ctx.reject({"file": UNDECODABLE}, reason=UNDECODABLE, column=UNDECODABLE,
               source=UNDECODABLE, raw=UNDECODABLE, message="x" * 2_000_000)
    ctx.log.info("\x00 a NUL and a long line " + "y" * 100_000)
    ctx.checkpoint({"file": UNDECODABLE})


@jobobs.job(name="huge-total")
def huge_total(ctx):
    ctx.progress(1, 2**63)


@jobobs.job(name="past-the-edge")
def past_the_edge(ctx, which):
    """Hands its runtime values that cannot be stored, as a bug past the edge would:
    ``row`` a number too big for its column, ``line`` a journal line DuckDB refuses."""
    ctx.log.info("before")
    if which == "row":
        ctx._row.set(total=2**64)
    else:
        ledger = ctx._sink.ledger
        with ledger.lock:
            ledger._lines.append((ctx.job_id, 2, time.time(), "INFO", None, "caf\udce9"))
            ledger._line_seq[ctx.job_id] = 2
    for _ in range(6000):  # until the runtime fails it: a checkpoint every 10 ms, for a minute
        ctx.checkpoint()
        time.sleep(0.01)


@jobobs.job(name="far-eta")
def far_eta(ctx):
    """A slow first step of a huge job: its ETA is past year 9999."""
    ctx.progress(0, 10**15)
    ctx.progress(1, 10**15)
    ctx.checkpoint()


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


@jobobs.job(name="unprintable-error")
def unprintable_error(ctx):
    raise Unprintable()


def finished_runs(path, name, durations, rates=None, *, start):
    """Finished runs of ``name`` written before a runtime opens the file, an hour apart from
    ``start`` (epoch seconds): each ``durations[i]`` seconds long, rejecting ``rates[i]`` of
    its 1,000 rows."""
    store = Store(str(path))
    try:
        with store.transaction() as con:
            first = con.execute("SELECT coalesce(max(id), 0) + 1 FROM jobs").fetchone()[0]
            for number, took in enumerate(durations):
                began = start + number * 3600
                rejected = round(1000 * rates[number]) if rates else 0
                con.execute(
                    """INSERT INTO jobs (id, name, kind, status, created_at, updated_at,
                       started_at, finished_at, run_count, active_seconds, processed,
                       rejected)
                       VALUES (?, ?, 'python', 'finished', ?, ?, ?, ?, 1, ?, 1000, ?)""",
                    [first + number, name, ts(began), ts(began + took), ts(began),
                     ts(began + took), took, rejected])
    finally:
        store.close()
