"""Issue 16 as a person sees and clicks it: the Schedules page, the job detail's Retry
button and "Retry these" on a failure group, on a real ``jobobs serve`` with sign-in, in
headless Chromium. Schedules here run every hour and are run with Run now, so no tick
races the test."""

from pathlib import Path

import pytest
from playwright.sync_api import expect
from serving import Server, select_row, signed_in, wait_status, with_sign_in

import jobobs
from jobobs.access.submissions import python_spec

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).parents[1] / "screenshots"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = with_sign_in(tmp_path_factory.mktemp("browser-schedules"))
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture
def client(served):
    with jobobs.connect(served.db) as connected:
        yield connected


def schedules_page(page):
    page.get_by_text("Schedules", exact=True).click()
    expect(page.locator(".jobobs-schedules")).to_be_visible(timeout=30_000)


def schedule_row(page, name):
    return page.locator(".jobobs-schedules .tabulator-row", has_text=name)


def cell(row, field):
    return row.locator(f'.tabulator-cell[tabulator-field="{field}"]')


def test_run_now_pause_and_resume_from_the_schedules_page(browser, served, client):
    client.schedule("hourly-report", python_spec("jobs:steps", 3, 0.0, name="report-run"),
                    every="1h", retry=2)
    page = signed_in(browser, served, "otto")
    schedules_page(page)
    row = schedule_row(page, "hourly-report")
    expect(cell(row, "when")).to_have_text("every 1h")
    expect(cell(row, "enabled")).to_have_text("yes")
    expect(cell(row, "retries")).to_have_text("2")
    select_row(row)
    expect(page.locator("h3", has_text="Schedule hourly-report")).to_be_visible()
    expect(page.get_by_text("Added by", exact=False).first).to_be_visible()  # its log
    run, pause, resume = (page.get_by_role("button", name=label, exact=True)
                          for label in ("Run now", "Pause", "Resume"))
    expect(resume).to_be_disabled()
    run.click()
    expect(page.locator(".alert", has_text="made by schedule hourly-report")).to_be_visible(
        timeout=30_000)
    job_id = client.schedule_info("hourly-report")["last_job_id"]
    expect(page.locator(".alert", has_text=f"Job {job_id} made by")).to_be_visible()
    expect(cell(row, "job")).to_have_text(str(job_id), timeout=30_000)
    expect(cell(row, "status").locator('.jobobs-status[data-status="finished"]')
           ).to_contain_text("Finished", timeout=30_000)  # its icon and label
    assert client.info(job_id).name == "report-run"
    assert client.transitions(job_id)["actor"].iloc[0] == "otto"

    pause.click()
    expect(cell(row, "enabled")).to_have_text("paused", timeout=30_000)
    expect(resume).to_be_enabled()
    expect(pause).to_be_disabled()
    assert not client.schedule_info("hourly-report")["enabled"]
    resume.click()
    expect(cell(row, "enabled")).to_have_text("yes", timeout=30_000)
    assert client.schedule_info("hourly-report")["enabled"]
    log = client.schedule_log("hourly-report")["message"].tolist()
    assert log[0].startswith("Resumed by otto") and log[1].startswith("Paused by otto")
    expect(page.get_by_text("Resumed by otto")).to_be_visible(timeout=30_000)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "schedules.png"), full_page=True)

    page.get_by_text("Jobs", exact=True).click()  # the job it made is in the list
    expect(page.get_by_text("report-run", exact=True).first).to_be_visible(timeout=30_000)
    page.context.close()


def test_a_viewer_sees_no_enabled_schedule_or_retry_button(browser, served, client, tmp_path):
    client.schedule("looked-at", python_spec("jobs:noop"), every="1h")
    failed = client.submit("test_dashboard_schedules:always_fails", 3, name="viewer-failed")
    wait_status(client, failed, "failed")
    page = signed_in(browser, served, "vera")
    schedules_page(page)
    select_row(schedule_row(page, "looked-at"))
    expect(page.locator("h3", has_text="Schedule looked-at")).to_be_visible(timeout=30_000)
    for label in ("Run now", "Pause", "Resume"):
        expect(page.get_by_role("button", name=label, exact=True)).to_be_disabled()
    page.get_by_text("Jobs", exact=True).click()
    page.get_by_text("viewer-failed", exact=True).first.click()
    expect(page.locator("h3", has_text="viewer-failed")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_disabled()
    assert client.schedule_info("looked-at")["last_job_id"] is None
    page.context.close()


def test_the_retry_button_runs_a_failed_job_again_from_its_checkpoint(
        browser, served, client, tmp_path):
    job_id = client.submit("test_dashboard_schedules:fails_once", str(tmp_path / "marker"),
                           name="retry-me")
    wait_status(client, job_id, "failed")
    page = signed_in(browser, served, "otto")
    page.get_by_text("retry-me", exact=True).first.click()
    title = page.locator("h3", has_text="retry-me")
    expect(title.locator(".jobobs-status")).to_contain_text("Finished with error",
                                                             timeout=30_000)
    retry = page.get_by_role("button", name="Retry", exact=True)
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_disabled()
    retry.click()
    expect(page.get_by_text("Retry requested.")).to_be_visible(timeout=30_000)
    expect(title.locator('.jobobs-status[data-status="finished"]')).to_be_visible(
        timeout=60_000)
    expect(retry).to_be_disabled()
    messages = client.journal(job_id)["message"].tolist()
    assert "Retry requested by otto" in messages
    assert messages.count("starting at 0") == 1 and "starting at 3" in messages
    assert client.info(job_id).processed == 6
    page.context.close()


def test_retry_these_on_a_failure_group(browser, served, client):
    ids = [client.submit("test_dashboard_schedules:always_fails", row, name="short-row")
           for row in (11, 12)]
    for job_id in ids:
        wait_status(client, job_id, "failed")
    page = signed_in(browser, served, "otto")
    page.get_by_text("Analytics", exact=True).click()
    group = page.locator(".tabulator-row", has_text="ValueError: row <n> is short")
    expect(group).to_be_visible(timeout=30_000)
    retry = page.get_by_role("button", name="Retry these", exact=True)
    expect(retry).to_be_disabled()
    select_row(group, cell(group, "failures"))
    expect(retry).to_be_enabled(timeout=30_000)
    retry.click()
    said = page.locator(".alert", has_text="Retried")
    expect(said).to_contain_text("failed jobs of ValueError: row <n> is short",
                                 timeout=30_000)
    for job_id in ids:
        assert "Retry requested by otto" in client.journal(job_id)["message"].tolist()
    page.context.close()


def test_the_first_schedule_and_its_first_job_show_on_an_empty_page(browser, tmp_path):
    """Tables shown empty take their first rows (a hidden Tabulator often drew none)."""
    server = Server(str(tmp_path / "jobs.duckdb"), workers=1).wait_ready()
    try:
        with jobobs.connect(server.db) as client:
            page = browser.new_context(viewport={"width": 1700, "height": 1100}).new_page()
            page.goto(server.endpoint.dashboard)
            expect(page.get_by_text("No jobs yet")).to_be_visible(timeout=30_000)
            page.get_by_text("Schedules", exact=True).click()
            expect(page.get_by_text("No schedules yet")).to_be_visible(timeout=30_000)
            client.schedule("first", python_spec("jobs:noop", name="first-job"), every="1h")
            select_row(schedule_row(page, "first"))
            expect(page.get_by_text("No schedules yet")).to_be_hidden()
            page.get_by_role("button", name="Run now", exact=True).click()
            expect(page.locator(".alert", has_text="made by schedule first")).to_be_visible(
                timeout=30_000)
            page.get_by_text("Jobs", exact=True).click()
            expect(page.get_by_text("first-job", exact=True).first).to_be_visible(
                timeout=30_000)
            expect(page.get_by_text("No jobs yet")).to_be_hidden()
            page.context.close()
    finally:
        assert server.stop() == 0, server.output()
