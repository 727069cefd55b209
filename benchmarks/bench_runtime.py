"""Runtime benchmarks, each against a reference measured in the same run.

    python benchmarks/bench_runtime.py [--runs 5] [--lines 100000]

Prints medians of several runs:
- journal lines per second through the job context API, and the ratio to Python
  ``logging`` writing the same lines to a file (target: at least 2x);
- 1,000 trivial jobs submitted and finished, in jobs per second (target: at least 200);
- checkpoints per second of a job that checkpoints every item (as the README's first
  example does), plain and ``durable=True``, and the ratio to DuckDB committing one row
  per item (a plain checkpoint is written with the next flush; target: at least 10x);
- time from a pause or cancel request to the recorded ``paused``/``canceled`` for a job
  that checkpoints every 10 ms (target: p95 at most 200 ms), and the same for a pause
  written to ``job_commands`` right after 5,000 submissions were (target: the same).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

import jobobs
from jobobs.db.store import ts
from jobobs.testing import wait_for_status, wait_until


@jobobs.job(name="bench-log")
def log_lines(ctx, count):
    log = ctx.log
    for i in range(count):
        log.info("processed record %d of %d", i, count)


@jobobs.job(name="bench-noop")
def noop(ctx):
    pass


@jobobs.job(name="bench-checkpoints")
def checkpoints(ctx, count, durable=False):
    for i in range(count):
        ctx.progress(i + 1, count)
        ctx.checkpoint({"i": i + 1}, durable=durable)


@jobobs.job(name="bench-ticker")
def ticker(ctx):
    while True:
        time.sleep(0.01)
        ctx.checkpoint()


def journal_rate(folder: Path, count: int) -> float:
    with jobobs.Runtime(str(folder / "journal.duckdb"), handle_signals=False) as rt:
        started = time.perf_counter()
        info = rt.submit(log_lines, count).wait()
        elapsed = time.perf_counter() - started
        written = rt.store.reader().execute(
            "SELECT count(*) FROM journal WHERE job_id = ?", [info.id]).fetchone()[0]
    assert written >= count, (written, count)
    return count / elapsed


def logging_rate(folder: Path, count: int) -> float:
    handler = logging.FileHandler(folder / "reference.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("jobobs.bench.reference")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    started = time.perf_counter()
    for i in range(count):
        logger.info("processed record %d of %d", i, count)
    handler.flush()
    elapsed = time.perf_counter() - started
    logger.removeHandler(handler)
    handler.close()
    return count / elapsed


def trivial_jobs_rate(folder: Path, count: int = 1000) -> float:
    path = tempfile.mktemp(suffix=".duckdb", dir=folder)
    with jobobs.Runtime(path, workers=4, handle_signals=False) as rt:
        started = time.perf_counter()
        for _ in range(count):
            rt.submit(noop)
        rt.run_until_idle()
        elapsed = time.perf_counter() - started
        done = rt.store.reader().execute(
            "SELECT count(*) FROM jobs WHERE status = 'finished'").fetchone()[0]
    assert done == count
    return count / elapsed


def checkpoint_rate(folder: Path, count: int, durable: bool = False) -> float:
    """Checkpoints per second, from the submission to the job's end written."""
    path = tempfile.mktemp(suffix=".duckdb", dir=folder)
    with jobobs.Runtime(path, handle_signals=False) as rt:
        started = time.perf_counter()
        info = rt.submit(checkpoints, count, durable=durable).wait()
        elapsed = time.perf_counter() - started
    assert json.loads(info.checkpoint)["state"] == {"i": count}
    return count / elapsed


def commit_rate(folder: Path, count: int) -> float:
    """The reference: DuckDB committing one row's change per item, on a file."""
    con = duckdb.connect(tempfile.mktemp(suffix=".duckdb", dir=folder))
    con.execute("CREATE TABLE state (id INTEGER PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO state VALUES (1, NULL)")
    started = time.perf_counter()
    for i in range(count):
        con.execute("UPDATE state SET value = ? WHERE id = 1", [json.dumps({"i": i + 1})])
    elapsed = time.perf_counter() - started
    con.close()
    return count / elapsed


def control_latencies(folder: Path, samples: int) -> dict[str, list[float]]:
    """Seconds from each request to its recorded outcome, both on the runtime's clock.

    "api" requests go through ``Runtime.request``, which wakes the control thread; "table"
    requests are written to ``job_commands`` the way another client's are, and wait for
    the runtime's next poll of that table.
    """
    latencies: dict[str, list[float]] = {}
    with jobobs.Runtime(str(folder / "control.duckdb"), handle_signals=False) as rt:
        for _ in range(samples):
            for command, outcome, via in (("pause", "paused", "api"),
                                          ("cancel", "canceled", "api"),
                                          ("pause", "paused", "table")):
                job = rt.submit(ticker)
                wait_for_status(rt, job.id, "running")
                time.sleep(random.uniform(0, 0.03))
                if via == "api":
                    rt.request(job.id, command)
                else:
                    rt.store.request(job.id, command, by="client", now=time.time())
                wait_for_status(rt, job.id, outcome)
                rt.ledger.flush()
                (latency,) = rt.store.reader().execute(
                    """SELECT date_diff('microsecond', c.requested_at, t.changed_at) / 1e6
                       FROM job_commands c JOIN job_transitions t USING (job_id)
                       WHERE c.job_id = ? AND t.to_status = ?""", [job.id, outcome]).fetchone()
                latencies.setdefault(f"{command} ({via})", []).append(latency)
                if outcome == "paused":
                    rt.cancel(job.id)
                    wait_until(lambda j=job: rt.status(j.id).value == "canceled")
    return latencies


def flooded_pause_latencies(folder: Path, samples: int, flood: int = 5000) -> list[float]:
    """Seconds from a pause written to ``job_commands`` to the recorded ``paused``, when
    ``flood`` submissions were written just before it and wait to be carried out."""
    latencies = []
    spec = f'{{"kind": "python", "function": "{noop.path}"}}'
    with jobobs.Runtime(str(folder / "flood.duckdb"), handle_signals=False) as rt:
        for _ in range(samples):
            job = rt.submit(ticker)
            wait_for_status(rt, job.id, "running")
            with rt.store.transaction() as con:
                con.execute(
                    """INSERT INTO job_commands (id, job_id, command, requested_at,
                       requested_by, spec) SELECT nextval('command_id_seq'), NULL, 'submit',
                       ?, 'client', ? FROM range(?)""", [ts(time.time()), spec, flood])
            rt.store.request(job.id, "pause", by="client", now=time.time())
            wait_for_status(rt, job.id, "paused", timeout=60)
            rt.ledger.flush()
            (latency,) = rt.store.reader().execute(
                """SELECT date_diff('microsecond', c.requested_at, t.changed_at) / 1e6
                   FROM job_commands c JOIN job_transitions t USING (job_id)
                   WHERE c.job_id = ? AND t.to_status = 'paused'""", [job.id]).fetchone()
            latencies.append(latency)
            rt.cancel(job.id)
            rt.run_until_idle(timeout=600)
    return latencies


def checkpoint_rows(commits: list[float], kept: list[float],
                    durable: list[float]) -> list[tuple]:
    """The checkpoint figures, each run's against the reference measured in that run."""
    reference = f"{statistics.median(commits):,.0f} (a DuckDB commit each)"
    rows = []
    for name, rates, target in (("checkpoints/s, one per item", kept, 10.0),
                                ("checkpoints/s, durable=True", durable, None)):
        ratio = statistics.median(r / c for r, c in zip(rates, commits))
        rows.append((name, f"{statistics.median(rates):,.0f}", reference, f"{ratio:.2f}x",
                     "" if target is None else f">= {target:g}x",
                     target is None or ratio >= target))
    return rows


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--checkpoints", type=int, default=20_000)
    args = parser.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours, reference = [], []
        for _ in range(args.runs):
            reference.append(logging_rate(folder, args.lines))
            ours.append(journal_rate(folder, args.lines))
        ratios = [o / r for o, r in zip(ours, reference)]
        trivial = [trivial_jobs_rate(folder) for _ in range(args.runs)]
        commits, kept, durable = [], [], []
        for _ in range(args.runs):
            commits.append(commit_rate(folder, 500))
            kept.append(checkpoint_rate(folder, args.checkpoints))
            durable.append(checkpoint_rate(folder, 500, durable=True))
        control = control_latencies(folder, args.samples)
        control["pause (table), 5,000 submits pending"] = flooded_pause_latencies(
            folder, max(args.samples // 2, 2))
    rows = [
        ("journal lines/s, ctx.log.info", f"{statistics.median(ours):,.0f}",
         f"{statistics.median(reference):,.0f} (logging to a file)",
         f"{statistics.median(ratios):.2f}x", ">= 2x", statistics.median(ratios) >= 2),
        ("1,000 trivial jobs, jobs/s", f"{statistics.median(trivial):,.0f}", "", "", ">= 200",
         statistics.median(trivial) >= 200),
        *checkpoint_rows(commits, kept, durable),
    ]
    for command, values in control.items():
        median = statistics.median(values)
        rows.append((f"{command}, request to recorded, ms", f"p50 {median * 1e3:.0f}",
                     f"p95 {p95(values) * 1e3:.0f}", "", "p95 <= 200", p95(values) <= 0.2))
    print(f"median of {args.runs} runs ({args.lines:,} lines each); control: {args.samples} "
          "samples each")
    print(f"{'figure':40} {'value':>10}  {'reference / p95':32} {'ratio':>7}  {'target':10} ok")
    for name, value, ref, ratio, target, passed in rows:
        verdict = "yes" if passed else "NO"
        print(f"{name:40} {value:>10}  {ref:32} {ratio:>7}  {target:10} {verdict}")
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
