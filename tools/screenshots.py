"""Screenshots of the dashboard on the demo, for the README:

    python tools/screenshots.py [--out docs] [--scale 0.05]

Starts ``jobobs demo`` on a database in a temporary folder (its 30 days of history, its
jobs and schedules) on free ports, opens each page of the dashboard in headless Chromium
(1600x1000) and saves ``<out>/<page>.png``: the Jobs page with a job selected (its General
tab), then every page ``jobobs.dashboard.app.PAGES`` lists (Analytics, Schedules, Alerts
and whatever pages come later), in that order. Prints the files it wrote.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobobs.dashboard.app import PAGES
from jobobs.db import endpoint

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 1000}
JOBOBS = str(Path(sys.executable).parent / "jobobs")
SHOWN_JOB = "import customers"  # the Jobs page shows this job: its progress and rejects


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_demo(folder: Path, scale: float) -> tuple[subprocess.Popen, str, str]:
    """``jobobs demo`` in ``folder``; returns the process, its database and its URL once
    it serves."""
    db = str(folder / "demo.duckdb")
    log = open(folder / "demo.log", "wb")  # noqa: SIM115  (the child holds it)
    process = subprocess.Popen(  # names relative to the folder, as `make demo` shows them
        [JOBOBS, "demo", "--db", "demo.duckdb", "--data", "data", "--scale", str(scale),
         "--port", str(free_port()), "--quack-port", str(free_port())],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "JOBOBS_URL": "", "JOBOBS_TOKEN": "", "JOBOBS_DB": ""})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"jobobs demo exited:\n{(folder / 'demo.log').read_text()}")
        found = endpoint.read(db)
        if found is not None and found.pid == process.pid:
            return process, db, found.dashboard
        time.sleep(0.2)
    process.kill()
    raise SystemExit("jobobs demo did not start in 120 s")


def settled(url: str, db: str) -> int:
    """Wait until the demo's live jobs have all shown (its exports are there and a
    schedule has run once); return the id of the job the Jobs page shows."""
    import jobobs

    deadline = time.monotonic() + 120
    with jobobs.connect(db) as client:
        while time.monotonic() < deadline:
            frame = client.sql(
                """SELECT max(id) FILTER (WHERE name = ?) AS shown,
                          count(*) FILTER (WHERE name LIKE 'export %' AND status = 'finished'
                                           AND runtime_id <> 'history') AS exports,
                          count(*) FILTER (WHERE schedule IS NOT NULL
                                           AND runtime_id <> 'history') AS scheduled
                   FROM jobs""", [SHOWN_JOB])
            if frame["exports"][0] >= 2 and frame["scheduled"][0] >= 1:
                return int(frame["shown"][0])
            time.sleep(0.5)
    raise SystemExit(f"the demo at {url} did not settle in 120 s")


def shoot(url: str, job_id: int, out: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{url}?job={job_id}")
        expect(page.locator("h3 .jobobs-status")).to_be_visible(timeout=60_000)
        page.get_by_text("General", exact=True).first.click()
        page.wait_for_timeout(1500)  # the progress bar and fields settle
        written.append(out / "jobs.png")
        page.screenshot(path=str(written[-1]))
        for title, _, attribute in PAGES.values():
            page.get_by_text(title, exact=True).first.click()
            if title == "Analytics":
                expect(page.get_by_text("Per job name")).to_be_visible(timeout=60_000)
                page.get_by_label("Window").select_option("last 30 days")
                expect(page.locator("canvas").first).to_be_visible(timeout=60_000)
            if title == "Search":  # what a person would look for: a failing call's lines
                page.get_by_placeholder("text in the message").fill("did not answer")
                page.get_by_placeholder("text in the message").press("Enter")
                expect(page.locator(".tabulator-row").first).to_be_visible(timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(3000)  # figures and tables draw after their data
            written.append(out / f"{attribute}.png")
            page.screenshot(path=str(written[-1]), full_page=title == "Analytics")
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs", type=Path)
    parser.add_argument("--scale", default=0.05, type=float)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobobs-screenshots-") as folder:
        process, db, url = start_demo(Path(folder), args.scale)
        try:
            job_id = settled(url, db)
            for path in shoot(url, job_id, args.out.resolve()):
                print(path)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
