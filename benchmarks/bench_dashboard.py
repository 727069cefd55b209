"""Dashboard benchmarks on a generated history (by default 1,000,000 jobs, 20,000,000
journal lines and 2,000,000 rejects):

    python benchmarks/bench_dashboard.py [--jobs 1000000] [--samples 30] [--renders 10]
                                         [--db history.duckdb]

Prints p50/p95 of the queries the dashboard runs (the list page with and without filters,
the page count and change check, status counts, reject breakdowns, a job's journal tail,
the queries of a session's first page), the time to build a session's page in-process, then,
against ``jobobs serve`` on that history, a Prometheus scrape of ``GET /metrics`` alternated
with the status counts through the analysts' route of the same server, and the page's time to
first render in headless Chromium: a fresh browser context (nothing cached) from the request
to the first job row shown, alternated with a reference served the same way (a bare Panel page
with one Tabulator of 25 rows: BokehJS, Panel and Tabulator loading and laying out, no jobobs),
with where the time goes; then how long a job's status change takes to show in an open page (a
job paused and resumed by a client), against the page's refresh period. Targets: list page and
breakdowns p95 <= 150 ms, journal tail <= 50 ms, a scrape p95 <= 1 s, first render median <=
2.0 s. ``--db`` keeps the generated history there and uses it again on the next run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import duckdb
from figures import p50_p95, percentile
from serving import Server, chromium, free_port

import jobobs
from jobobs.access import analytics, queries
from jobobs.dashboard import Dashboard
from jobobs.db.store import Store

NAMES = 50
TARGET_RENDER = 2.0  # s, the median first render
PERIOD_MS = Dashboard.param.period.default  # how often an open page reads what changed


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
        "alert badge": lambda i: queries.alert_counts(con),
        "a session's first queries": lambda i: first_queries(con),
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


def first_queries(con: duckdb.DuckDBPyConnection) -> None:
    """What a new session reads before its page is sent: the badge, the table's columns,
    the change check, the page count and the first page."""
    queries.alert_counts(con)
    queries.jobs(con, limit=0)
    queries.version(con)
    queries.count_jobs(con)
    queries.jobs(con, limit=25)


def session_build(db: str, samples: int) -> tuple[list[float], list[float]]:
    """Times (ms) of building a session's dashboard in this process (the queries and the
    Panel objects), then its Bokeh document as the browser receives it (models and
    JSON)."""
    import panel as pn
    from bokeh.document import Document

    from jobobs.dashboard.app import Dashboard
    from jobobs.execution.runtime import Runtime

    built: tuple[list[float], list[float]] = ([], [])
    with Runtime(db, workers=1, handle_signals=False) as rt:
        client = jobobs.Client.embedded(rt)
        for sample in range(samples + 1):
            started = time.perf_counter()
            dashboard = Dashboard(client)
            middle = time.perf_counter()
            document = Document()
            document.add_root(pn.panel(dashboard).get_root(document))
            document.to_json()
            ended = time.perf_counter()
            if sample:  # the first one warms up
                built[0].append((middle - started) * 1000)
                built[1].append((ended - middle) * 1000)
    return built


def reference_page() -> object:
    """The reference's page: one Tabulator of 25 rows of 11 columns, a status badge in each
    (the element the render waits for), laid out as the job list is."""
    import pandas as pd
    import panel as pn

    rows = pd.DataFrame({
        "id": range(25, 0, -1),
        "status": ['<span class="jobobs-status">✅ Finished</span>'] * 25,
        **{column: ["text"] * 25 for column in ("name", "kind", "progress", "processed",
                                                "rejected", "started", "ended", "duration",
                                                "warning")}})
    return pn.widgets.Tabulator(rows, show_index=False, disabled=True, width=1060, height=600,
                                formatters={"status": {"type": "html"}})


def serve_reference(port: int) -> None:
    import panel as pn

    pn.serve({"/": reference_page}, port=port, address="127.0.0.1", show=False,
             websocket_origin=[f"127.0.0.1:{port}"], verbose=False)


def reference_server() -> tuple[subprocess.Popen, str]:
    """The reference page served by Panel in its own process, once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-reference", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError("the reference page was not served") from None
            time.sleep(0.2)


# In the page, from its request (ms): when Bokeh's document arrives over the websocket (the
# reply to the page's pull), and the frame that first shows a job's status (a
# MutationObserver on the page and on each shadow root Bokeh's views attach). Measured in
# the page because Playwright's wait_for_selector polls at growing intervals, up to 500 ms.
MARKS = """
(() => {
  const marks = window.__jobobs = {};
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (marks.document === undefined && typeof event.data === "string"
            && event.data.includes('"PULL-DOC-REPLY"')) {
          marks.document = performance.now();
        }
      });
    }
  };
  const status = (node) => node.nodeType === 1
      && (node.matches(".jobobs-status") || node.querySelector(".jobobs-status") !== null);
  let found = false;
  const observer = new MutationObserver((changes) => {
    if (!found && changes.some((change) => [...change.addedNodes].some(status))) {
      found = true;
      observer.disconnect();
      requestAnimationFrame(() => { marks.shown = performance.now(); });
    }
  });
  observer.observe(document, {childList: true, subtree: true});
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (...args) {
    const root = attach.apply(this, args);
    if (!found) observer.observe(root, {childList: true, subtree: true});
    return root;
  };
})();
"""
PHASES = {"page": "the server answers the page (its session is made)",
          "scripts": "BokehJS, Panel and Tabulator loaded and run",
          "document": "the document comes over the websocket",
          "shown": "laid out until the first job row shows"}


def render_once(browser, url: str) -> dict[str, float]:
    """One first render in a fresh context (nothing cached): when each phase ended, in s
    from the request."""
    context = browser.new_context(viewport={"width": 1700, "height": 1100})
    context.add_init_script(MARKS)
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.__jobobs.shown !== undefined", polling="raf",
                           timeout=60_000)
    marks = page.evaluate("""() => {
        const n = performance.getEntriesByType("navigation")[0];
        return [n.responseStart, n.domContentLoadedEventEnd, window.__jobobs.document,
                window.__jobobs.shown];
    }""")
    context.close()
    return {phase: (mark or 0) / 1000 for phase, mark in zip(PHASES, marks)}


def first_render(url: str, reference: str, samples: int
                 ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """``samples`` first renders of the dashboard and of the reference, alternated, after
    one of each to warm up."""
    from playwright.sync_api import sync_playwright

    renders: tuple[list, list] = ([], [])
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        for sample in range(samples + 1):
            for address, kept in ((url, renders[0]), (reference, renders[1])):
                measured = render_once(browser, address)
                if sample:
                    kept.append(measured)
        browser.close()
    return renders


def live_updates(server: Server, samples: int) -> dict[str, list[float]]:
    """How long a status change takes to reach an open page: a job paused and resumed by a
    client ``samples`` times each, from the transition's recorded time to when the page's
    title shows it (the title read in a tight loop, a few ms apart)."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, list[float]] = {"paused": [], "running": []}
    with jobobs.connect(server.db) as client, sync_playwright() as playwright:
        job_id = client.submit("jobs:talker", 10_000_000, 0.05, name="bench-live")
        browser = chromium(playwright)
        page = browser.new_page(viewport={"width": 1700, "height": 1100})
        page.goto(f"{server.endpoint.dashboard}?job={job_id}")
        title = page.locator("h3 .jobobs-status")
        shown_at(title, "running")
        for _ in range(samples):
            for command, status in (("pause", "paused"), ("resume", "running")):
                client.request(job_id, command)
                at = shown_at(title, status)
                changes = client.transitions(job_id)
                changed = changes[changes["to_status"] == status]["changed_at"].iloc[-1]
                seen[status].append((at - changed.to_pydatetime()).total_seconds() * 1000)
        client.request(job_id, "cancel")
        browser.close()
    return seen


def shown_at(title: Any, status: str, timeout: float = 60.0) -> datetime:
    """When the page's title first shows ``status`` (UTC, as the database keeps times)."""
    deadline = time.monotonic() + timeout
    while title.get_attribute("data-status") != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not show {status} in {timeout} s")
    return datetime.now(UTC).replace(tzinfo=None)


def report_renders(renders: list[dict[str, float]], reference: list[dict[str, float]]
                   ) -> None:
    totals = [r["shown"] for r in renders]
    median, p95 = statistics.median(totals), percentile(totals, .95)
    baseline = statistics.median(r["shown"] for r in reference)
    print(f"first render in headless Chromium, {len(totals)} fresh sessions alternated with "
          f"the reference (a bare Panel page, one Tabulator of 25 rows):\n"
          f"  dashboard  median {median:.2f} s  p95 {p95:.2f} s   "
          f"{'PASS' if median <= TARGET_RENDER else 'FAIL'} (target median <= "
          f"{TARGET_RENDER} s)\n"
          f"  reference  median {baseline:.2f} s  p95 "
          f"{percentile([r['shown'] for r in reference], .95):.2f} s   ratio of medians "
          f"{median / baseline:.2f}x")
    print(f"  {'where the time goes (median s, from the request)':<52}{'dashboard':>10}"
          f"{'reference':>10}")
    for phase, meaning in PHASES.items():
        ends = [statistics.median(r[phase] for r in kept) for kept in (renders, reference)]
        print(f"  {meaning:<52}{ends[0]:>10.2f}{ends[1]:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--lines-per-job", type=int, default=20)
    parser.add_argument("--rejects", type=int, default=2_000_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--renders", type=int, default=10,
                        help="first renders of the dashboard and of the reference each")
    parser.add_argument("--db", help="the history: generated there when missing, else "
                        "used again (default: a new one in a temporary folder)")
    parser.add_argument("--serve-reference", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_reference:
        serve_reference(args.serve_reference)
        return
    if args.db is None:
        db = str(Path(tempfile.mkdtemp(prefix="jobobs-bench-dashboard-")) / "history.duckdb")
    else:
        db = args.db
    if not Path(db).exists():
        started = time.perf_counter()
        generate(db, args.jobs, args.lines_per_job, args.rejects // 20)
        print(f"generated {args.jobs:,} jobs, {args.jobs * args.lines_per_job:,} journal "
              f"lines, {args.rejects:,} rejects in {time.perf_counter() - started:.0f} s")
    con = duckdb.connect(db, read_only=True)
    (jobs,) = con.execute("SELECT count(*) FROM jobs").fetchone()
    rows = measure(con, jobs, args.samples)
    con.close()
    print(f"{'query':<32}{'p50 ms':>8}{'p95 ms':>8}{'target':>9}  ok")
    for name, p50, p95, target in rows:
        print(f"{name:<32}{p50:>8.1f}{p95:>8.1f}{'<= ' + str(target):>9}  "
              f"{'yes' if p95 <= target else 'NO'}")
    made, documents = session_build(db, 5)
    print(f"a session's page built in-process: the dashboard (queries and Panel objects) "
          f"{p50_p95(made)}; its Bokeh document (models and JSON) {p50_p95(documents)}")
    reference, reference_url = reference_server()
    server = Server(db, workers=2).wait_ready(timeout=120)
    try:
        metrics, counts = scrapes(server, args.samples)
        renders = first_render(server.endpoint.dashboard, reference_url, args.renders)
        live = live_updates(server, args.renders)
    finally:
        server.stop()
        reference.terminate()
        reference.wait(30)
    print(f"GET /metrics, {args.samples} scrapes alternated with the status counts through "
          f"POST /api/sql:\n  scrape         {p50_p95(metrics)}  (target p95 <= 1000 ms: "
          f"{'yes' if percentile(metrics, .95) <= 1000 else 'NO'})\n"
          f"  status counts  {p50_p95(counts)}  (ratio of medians "
          f"{statistics.median(metrics) / statistics.median(counts):.2f}x)")
    report_renders(*renders)
    print(f"a status change reaching an open page (a client pauses and resumes a job "
          f"{args.renders} times; from the recorded transition to the title showing it), "
          f"against the page's refresh period ({PERIOD_MS} ms):")
    for status, delays in live.items():
        print(f"  {status:<8} {p50_p95(delays)}   ratio of the median to the period "
              f"{statistics.median(delays) / PERIOD_MS:.2f}x")


if __name__ == "__main__":
    main()
