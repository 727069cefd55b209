"""A bounded soak on loopback: 50 jobs running at once, 10 dashboard sessions in headless
Chromium and 2 notebook-style clients polling, against one real server. No error, every job
runs the whole time, clients see journal lines arrive and each job's journal holds every line
once and in order, and the server's memory stays flat after warm-up. The journal's lag to a
client is printed (``make soak``), not bounded: a loaded machine is slower, not wrong.

``JOBOBS_SOAK_SECONDS`` sets the length (20 s in ``make test-all``, 600 s in ``make soak``).
"""

import os
import re
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import sync_playwright
from serving import Server, chromium

import jobobs

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("JOBOBS_SOAK_SECONDS", "20"))
JOBS, SESSIONS, CLIENTS = 50, 10, 2
STEP = re.compile(r"talking: step (\d+) of")  # a line jobs:talker logs


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Poller(threading.Thread):
    """A notebook's client: the job list and the newest journal lines of running jobs."""

    def __init__(self, db: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.db, self.stop = db, stop
        self.lags: list[float] = []
        self.errors: list[str] = []
        self.polls = 0

    def run(self) -> None:
        try:
            with jobobs.connect(self.db) as client:
                seen: dict[int, int] = {}
                while not self.stop.is_set():
                    running = client.jobs(status="running", limit=JOBS)["id"].tolist()
                    for job_id in running[:10]:
                        lines = client.journal(job_id, after=seen.get(job_id, 0))
                        if len(lines):
                            if job_id in seen:  # lines new since the last poll
                                arrived = now_utc()
                                self.lags += [(arrived - t).total_seconds()
                                              for t in lines["logged_at"]]
                            seen[job_id] = int(lines["seq"].iloc[-1])
                    self.polls += 1
                    time.sleep(0.2)
        except Exception as error:  # counted, and the test fails on it
            self.errors.append(repr(error))


@pytest.mark.timeout(SECONDS + 300)
def test_soak(tmp_path):
    server = Server(str(tmp_path / "jobs.duckdb"), workers=JOBS).wait_ready()
    stop = threading.Event()
    pollers = [Poller(server.db, stop) for _ in range(CLIENTS)]
    memory: list[tuple[float, float]] = []
    page_errors: list[str] = []
    try:
        with jobobs.connect(server.db) as client, sync_playwright() as playwright:
            steps = int((SECONDS + 300) / 0.1)  # running until the server stops, however slow
            for n in range(JOBS):
                client.submit("jobs:talker", steps, 0.1, name=f"soak-{n}")
            browser = chromium(playwright)
            opened = time.monotonic()
            pages = []
            for _ in range(SESSIONS):
                page = browser.new_context().new_page()
                page.on("pageerror", lambda error: page_errors.append(
                    (round(time.monotonic() - opened, 1), str(error))))
                page.goto(server.endpoint.dashboard, wait_until="commit")
                pages.append(page)
            for page in pages:
                page.wait_for_selector(".jobobs-status", timeout=60_000)
            for poller in pollers:
                poller.start()
            started = time.monotonic()
            while time.monotonic() - started < SECONDS:
                memory.append((time.monotonic() - started, rss_mb(server.process.pid)))
                time.sleep(1.0)
            stop.set()
            for poller in pollers:
                poller.join(30)
            statuses = client.jobs(limit=JOBS)["status"].value_counts().to_dict()
            visible = [page.locator(".jobobs-status").count() for page in pages]
            errors_while_soaking = list(page_errors)
            browser.close()
    finally:
        stop.set()
        code = server.stop()
    lags = sorted(lag for poller in pollers for lag in poller.lags)
    assert lags, "no client saw a journal line arrive"
    p95 = lags[int(0.95 * (len(lags) - 1))]
    warm = [mb for at, mb in memory if at >= SECONDS * 0.4]
    after_warm_up, end = warm[0], statistics.median(warm[-max(1, len(warm) // 4):])
    print(f"\nsoak {SECONDS:.0f} s: {JOBS} jobs, {SESSIONS} dashboard sessions, {CLIENTS} "
          f"clients ({sum(p.polls for p in pollers)} polls); journal lag p50 "
          f"{statistics.median(lags):.2f} s, p95 {p95:.2f} s, max {lags[-1]:.2f} s "
          f"({len(lags)} lines); server memory {memory[0][1]:.0f} MB at start, "
          f"{after_warm_up:.0f} MB after warm-up, {end:.0f} MB at the end")
    assert code == 0, server.output()
    assert not [e for poller in pollers for e in poller.errors]
    assert not errors_while_soaking, errors_while_soaking[:3]
    assert "Traceback" not in server.output(), server.output()[-3000:]
    assert statuses == {"running": JOBS}, statuses  # all ran the whole time, none failed
    assert all(count > 0 for count in visible)
    with duckdb.connect(server.db, read_only=True) as con:
        lines = con.execute("SELECT job_id, seq, message FROM journal ORDER BY job_id, seq")
        journals: dict[int, list[tuple[int, str]]] = {}
        for job_id, seq, message in lines.fetchall():
            journals.setdefault(job_id, []).append((seq, message))
        rejects = con.execute("""
            SELECT j.id, j.rejected, (SELECT count(*) FROM rejects r WHERE r.job_id = j.id)
            FROM jobs j ORDER BY j.id""").fetchall()
    assert len(journals) == JOBS
    for job_id, journal in journals.items():  # every line once, in order
        assert [seq for seq, _ in journal] == list(range(1, len(journal) + 1)), job_id
        steps = [int(m.group(1)) for _, message in journal if (m := STEP.match(message))]
        assert steps and steps == list(range(1, len(steps) + 1)), (job_id, steps)
    assert [(job, counted, rows) for job, counted, rows in rejects if counted != rows] == []
    assert end <= after_warm_up * 1.2 + 20  # flat after warm-up
