"""Dashboard benchmarks on a generated history (by default 1,000,000 jobs, 20,000,000
journal lines and 2,000,000 rejects):

    python benchmarks/bench_dashboard.py [--jobs 1000000] [--samples 30]

Prints p50/p95 of the queries the dashboard runs (the list page with and without filters,
the page count and change check, status counts, reject breakdowns, a job's journal tail),
then, against ``jobobs serve`` on that history, a Prometheus scrape of ``GET /metrics``
alternated with the status counts through the analysts' route of the same server, and the
page's time to first render in headless Chromium. Targets: list page and breakdowns p95 <=
150 ms, journal tail <= 50 ms, a scrape p95 <= 1 s, first render <= 2.5 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import duckdb
from figures import p50_p95, percentile
from serving import Server, chromium

import jobobs
from jobobs.access import analytics, queries
from jobobs.db.store import Store

NAMES = 50


def generate(db: str, jobs: int, lines_per_job: int, rejecting: int) -> None:
    """A history in jobobs' own schema, written with SQL in job order (as it accrues)."""
    Store(db).close()
    con = duckdb.connect(db)
    con.execute(f"""
        INSERT INTO jobs (id, name, kind, spec, status, created_at, queued_at, started_at,
                          finished_at, updated_at, run_count, active_seconds, total, processed,
                          succeeded, rejected, progress_current, progress_total, error,
                          created_by, host, has_warning)
        SELECT i + 1, 'job-' || (i % {NAMES}),
               ['import', 'export', 'python'][i % 3 + 1], '{{}}',
               CASE WHEN i % 97 = 0 THEN 'failed' WHEN i % 89 = 0 THEN 'canceled'
                    ELSE 'finished' END,
               start - INTERVAL 1 SECOND, start - INTERVAL 1 SECOND, start,
               start + to_seconds(5 + (i % 60)), start + to_seconds(5 + (i % 60)), 1,
               5 + (i % 60), 1000, 1000, 1000 - (i % 7), i % 7, 1000, 1000,
               CASE WHEN i % 97 = 0 THEN 'ValueError: bad input ' || (i % 5) END,
               'bench', 'bench-host', i % 13 = 0
        FROM (SELECT range AS i,
                     TIMESTAMP '2026-01-01' + to_seconds(range * 7) AS start
              FROM range({jobs}))""")
    con.execute(f"""
        INSERT INTO journal (job_id, seq, logged_at, level, code, message)
        SELECT i // {lines_per_job} + 1, i % {lines_per_job} + 1,
               TIMESTAMP '2026-01-01' + to_microseconds(i * 350),
               CASE WHEN i % 50 = 49 THEN 'WARNING' ELSE 'INFO' END, NULL,
               'processed batch ' || (i % {lines_per_job}) || ' of the input'
        FROM range({jobs * lines_per_job}) t(i)""")
    con.execute(f"""
        INSERT INTO rejects (job_id, seq, rejected_at, kind, source, line_no, column_name,
                             raw, reason, message)
        SELECT (i // 20) * ({jobs} // {rejecting}) + 1, i % 20 + 1,
               TIMESTAMP '2026-01-01' + to_microseconds(i * 3500), 'error',
               'input-' || (i % 17) || '.csv', i % 20 + 2,
               ['amount', 'email', 'date', 'id'][i % 4 + 1], 'raw,line,' || i,
               ['cast error', 'missing columns', 'too many columns'][i % 3 + 1],
               'could not convert the value'
        FROM range({rejecting * 20}) t(i)""")
    con.execute("CHECKPOINT")
    con.close()



def measure(con: duckdb.DuckDBPyConnection, jobs: int, samples: int) -> list[tuple]:
    ids = [random.randint(1, jobs) for _ in range(samples)]
    cases = {
        "list page (50 newest)": lambda i: queries.jobs(con, limit=50),
        "list page, status filter": lambda i: queries.jobs(con, status=["failed"], limit=50),
        "list page, name search": lambda i: queries.jobs(con, name="job-4", limit=50),
        "list page 100 (offset 5,000)": lambda i: queries.jobs(con, limit=50, offset=5000),
        "page count (filters)": lambda i: queries.count_jobs(con, status=["failed"]),
        "change check": lambda i: queries.version(con),
        "status counts": lambda i: queries.status_counts(con),
        "rejects by reason (all)": lambda i: analytics.rejects_by(con, by="reason"),
        "rejects by column (all)": lambda i: analytics.rejects_by(con, by="column_name"),
        "rejects by reason (a job)": lambda i: queries.reject_counts(con, 1, by="reason"),
        "failures by error": lambda i: analytics.failures(con),
        "journal tail (a job)": lambda i: queries.journal(con, i, limit=500, tail=True),
        "journal after seq (a job)": lambda i: queries.journal(con, i, after=10),
    }
    targets = {"journal": 50}
    rows = []
    for name, case in cases.items():
        times = []
        for job_id in ids:
            started = time.perf_counter()
            case(job_id)
            times.append((time.perf_counter() - started) * 1000)
        target = next((t for key, t in targets.items() if name.startswith(key)), 150)
        rows.append((name, percentile(times, .5), percentile(times, .95), target))
    return rows


def scrapes(server: Server, samples: int) -> tuple[list[float], list[float]]:
    """Times of ``GET /metrics`` (ms), alternated with the status counts read through
    ``POST /api/sql`` on the same server (an aggregate of the jobs table, over HTTP too)."""
    request = urllib.request.Request(server.dashboard + "metrics", headers={
        "Authorization": f"Bearer {server.analyst_token}"})

    def scrape() -> None:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()

    times: tuple[list[float], list[float]] = ([], [])
    with jobobs.connect(url=server.dashboard, analyst_token=server.analyst_token) as reader:
        scrape()  # warm up
        reader.status_counts()
        for _ in range(samples):
            for call, kept in ((scrape, times[0]), (reader.status_counts, times[1])):
                started = time.perf_counter()
                call()
                kept.append((time.perf_counter() - started) * 1000)
    return times


def first_render(url: str, samples: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        for _ in range(samples):
            context = browser.new_context()
            page = context.new_page()
            started = time.perf_counter()
            page.goto(url)
            page.wait_for_selector(".jobobs-status", timeout=60_000)
            times.append(time.perf_counter() - started)
            context.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--lines-per-job", type=int, default=20)
    parser.add_argument("--rejects", type=int, default=2_000_000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jobobs-bench-dashboard-"))
    db = str(folder / "history.duckdb")
    started = time.perf_counter()
    generate(db, args.jobs, args.lines_per_job, args.rejects // 20)
    print(f"generated {args.jobs:,} jobs, {args.jobs * args.lines_per_job:,} journal lines, "
          f"{args.rejects:,} rejects in {time.perf_counter() - started:.0f} s")
    con = duckdb.connect(db, read_only=True)
    rows = measure(con, args.jobs, args.samples)
    con.close()
    print(f"{'query':<32}{'p50 ms':>8}{'p95 ms':>8}{'target':>9}  ok")
    for name, p50, p95, target in rows:
        print(f"{name:<32}{p50:>8.1f}{p95:>8.1f}{'<= ' + str(target):>9}  "
              f"{'yes' if p95 <= target else 'NO'}")
    server = Server(db, workers=2).wait_ready(timeout=120)
    try:
        metrics, counts = scrapes(server, args.samples)
        renders = first_render(server.endpoint.dashboard, 5)
    finally:
        server.stop()
    print(f"GET /metrics, {args.samples} scrapes alternated with the status counts through "
          f"POST /api/sql:\n  scrape         {p50_p95(metrics)}  (target p95 <= 1000 ms: "
          f"{'yes' if percentile(metrics, .95) <= 1000 else 'NO'})\n"
          f"  status counts  {p50_p95(counts)}  (ratio of medians "
          f"{statistics.median(metrics) / statistics.median(counts):.2f}x)")
    print(f"first render in headless Chromium, 5 fresh sessions: median "
          f"{statistics.median(renders):.2f} s, worst {max(renders):.2f} s (target <= 2.5 s)")


if __name__ == "__main__":
    main()
