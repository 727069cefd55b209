"""What a person sees and clicks: a real ``jobobs serve`` driven in headless Chromium
(Debian's ``chromium`` through Playwright's Python package). Screenshots go to
``screenshots/``."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from serving import Server, env, free_port, open_page, wait_status

import jobobs
from jobobs.access.users import set_password

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).parents[1] / "screenshots"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("browser") / "jobs.duckdb")
    server = Server(db, workers=3).wait_ready()
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture
def client(served):
    with jobobs.connect(served.db) as connected:
        yield connected


def shot(page, name):
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def title_status(page):
    """The status shown in the selected job's title."""
    return page.locator("h3 .jobobs-status")


def select(page, name):
    page.get_by_text(name, exact=True).first.click()
    expect(page.locator("h3", has_text=name)).to_be_visible(timeout=10_000)


def test_the_list_shows_jobs_with_their_labels(browser, served, client):
    finished = client.submit("jobs:steps", 5, 0.0, 2, name="tidy-steps")
    failed = client.submit("jobs:boom", name="broken-input")
    client.wait(finished, progress=False, timeout=20)
    client.wait(failed, progress=False, timeout=20)
    page = open_page(browser, served.endpoint.dashboard)
    expect(page.get_by_text("tidy-steps").first).to_be_visible()
    expect(page.locator('.jobobs-status[data-status="finished"]').first).to_contain_text(
        "Finished")
    expect(page.locator('.jobobs-status[data-status="failed"]').first).to_have_text(
        re.compile(r"Finished with error$"))
    shot(page, "job-list")
    page.context.close()


def test_selecting_a_job_fills_the_tabs(browser, served, client):
    job_id = client.submit("jobs:talker", 25, 0.0, name="talk-to-me")
    client.wait(job_id, progress=False, timeout=30)
    page = open_page(browser, served.endpoint.dashboard)
    select(page, "talk-to-me")
    expect(title_status(page)).to_contain_text("Finished")
    expect(page.get_by_text("Who did what")).to_be_visible()
    expect(page.get_by_text("jobs:talker").first).to_be_visible()  # the spec
    page.get_by_text("Journal", exact=True).click()
    expect(page.get_by_text("talking: step 25 of 25")).to_be_visible(timeout=10_000)
    page.get_by_text("Rejects", exact=True).click()
    expect(page.get_by_text("20,not-a-number")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("3 rejects")).to_be_visible()
    shot(page, "rejects-tab")
    page.context.close()


def test_a_link_to_a_job_opens_its_detail(browser, served, client):
    job_id = client.submit("jobs:boom", name="linked-failure")
    client.wait(job_id, progress=False, timeout=30)
    page = open_page(browser, f"{served.endpoint.dashboard}?job={job_id}")
    expect(page.locator("h3", has_text="linked-failure")).to_be_visible(timeout=10_000)
    expect(title_status(page)).to_contain_text("Finished with error")
    page.context.close()
    page = open_page(browser, f"{served.endpoint.dashboard}?job=not-a-number")
    expect(page.get_by_text("Select a job in the list")).to_be_visible()
    page.context.close()


def test_pause_resume_and_cancel_from_the_page(browser, served, client):
    job_id = client.submit("jobs:talker", 300, 0.05, name="pause-me")  # 15 s to be paused
    wait_status(client, job_id, "running")
    page = open_page(browser, served.endpoint.dashboard)
    select(page, "pause-me")
    page.get_by_role("button", name="Pause").click()
    expect(title_status(page)).to_contain_text("Paused", timeout=30_000)
    shot(page, "paused")
    page.get_by_role("button", name="Resume").click()
    expect(title_status(page)).to_contain_text("Finished", timeout=90_000)
    history = client.transitions(job_id)
    asked = history[history["to_status"].isin(["pausing", "queued"])]["actor"].tolist()
    assert asked[1:] == [asked[1], asked[1]]  # the page's user paused and resumed

    other = client.submit("jobs:talker", 400, 0.05, name="cancel-me")
    wait_status(client, other, "running")
    select(page, "cancel-me")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text(f"Cancel job {other}?")).to_be_visible()
    assert client.info(other).status.value == "running"  # nothing until confirmed
    page.get_by_role("button", name="Yes, cancel it").click()
    expect(title_status(page)).to_contain_text("Canceled", timeout=30_000)
    page.context.close()


def test_start_resumes_a_paused_job_from_the_page(browser, served, client):
    job_id = client.submit("jobs:talker", 200, 0.05, name="start-me")  # 10 s to be paused
    wait_status(client, job_id, "running")
    page = open_page(browser, served.endpoint.dashboard)
    select(page, "start-me")
    start = page.get_by_role("button", name="Start", exact=True)
    expect(start).to_be_disabled()
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(title_status(page)).to_contain_text("Paused", timeout=15_000)
    expect(start).to_be_enabled()
    processed = client.info(job_id).processed
    assert 0 < processed < 200
    start.click()
    expect(page.get_by_text("Start requested.")).to_be_visible(timeout=10_000)
    expect(title_status(page)).to_contain_text("Finished", timeout=90_000)
    expect(start).to_be_disabled()
    history = client.transitions(job_id)
    resumed = history[history["from_status"] == "paused"]
    assert resumed["to_status"].tolist() == ["queued"]
    assert resumed["actor"].iloc[0] == history[history["to_status"] == "pausing"][
        "actor"].iloc[0]  # the page's user paused and started it
    assert client.journal(job_id)["message"].str.startswith("Job started (run 2)").any()
    page.context.close()


def test_the_journal_follows_new_lines(browser, served, client):
    job_id = client.submit("jobs:talker", 200, 0.05, name="follow-me")
    wait_status(client, job_id, "running")
    page = open_page(browser, served.endpoint.dashboard)
    select(page, "follow-me")
    page.get_by_text("Journal", exact=True).click()
    expect(page.get_by_text("talking: step").first).to_be_visible(timeout=10_000)
    seqs = page.locator('.tabulator-cell[tabulator-field="seq"]')

    def newest() -> int:
        return max((int(t) for t in seqs.all_text_contents() if t.strip().isdigit()),
                   default=0)

    first = newest()
    deadline = time.monotonic() + 10
    while newest() < first + 10:  # new lines arrive and the table scrolls to them
        assert time.monotonic() < deadline, (first, newest())
        time.sleep(0.2)
    shot(page, "journal-follow")
    client.cancel(job_id)
    page.context.close()


def test_a_viewer_cannot_pause(browser, tmp_path):
    users = str(tmp_path / "users.json")
    set_password(users, "vera", "look-only", "viewer")
    set_password(users, "otto", "hands-on", "operator")
    db = str(tmp_path / "jobs.duckdb")
    server = Server(db, "--users", users).wait_ready()
    try:
        with jobobs.connect(db) as client:
            job_id = client.submit("jobs:talker", 400, 0.05, name="look-dont-touch")
            wait_status(client, job_id, "running")
            page = browser.new_context(viewport={"width": 1700, "height": 1100}).new_page()
            page.goto(server.endpoint.dashboard)
            page.fill("input[name=username]", "vera")
            page.fill("input[name=password]", "look-only")
            page.locator("button[type=submit], input[type=submit]").first.click()
            page.wait_for_selector(".jobobs-status", timeout=30_000)
            expect(page.get_by_text("signed in as")).to_contain_text("vera (viewer)")
            select(page, "look-dont-touch")
            expect(page.get_by_role("button", name="Pause")).to_be_disabled()
            expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
            shot(page, "viewer")
            assert client.commands(job_id)["command"].tolist() == ["submit"]
            assert client.info(job_id).status.value == "running"
            client.cancel(job_id)
            page.context.close()
    finally:
        assert server.stop() == 0, server.output()


def test_panel_serve_shows_the_same_jobs_through_the_server(browser, served, client):
    job_id = client.submit("jobs:steps", 3, 0.0, name="seen-through-quack")
    client.wait(job_id, progress=False, timeout=20)
    port = free_port()
    app = Path(__file__).parents[1] / "dashboards" / "jobs.py"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "panel"), "serve", str(app), "--port", str(port),
         "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
         "--args", "--db", served.db],
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = browser.new_context(viewport={"width": 1700, "height": 1100}).new_page()
        deadline = time.monotonic() + 60
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/jobs")
                break
            except PlaywrightError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.5)
        expect(page.get_by_text("seen-through-quack")).to_be_visible(timeout=30_000)
        expect(page.get_by_text(served.uri)).to_be_visible()  # it says where it reads
        page.context.close()
    finally:
        process.terminate()
        process.wait(10)


def test_the_analytics_page(browser, served, client):
    job_id = client.submit("jobs:steps", 3, 0.0, 2, name="analysed")
    client.wait(job_id, progress=False, timeout=20)
    page = open_page(browser, served.endpoint.dashboard)
    page.get_by_text("Analytics", exact=True).click()
    expect(page.get_by_text("Per job name")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("analysed").first).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible()  # the figures
    shot(page, "analytics")
    page.context.close()
