"""Issue 18 as a person sees and clicks it, on a real ``jobobs serve`` in headless Chromium
at 1600 pixels wide: the strip's chips by status (a click lists only that status, a second
click all again), the list's headers whole, and the General tab in groups with a time read
as "… ago" and its exact value on hover."""

import re

import pytest
from playwright.sync_api import expect
from serving import Server, open_page, wait_status

import jobobs

pytestmark = pytest.mark.slow

HEADERS = ["Status", "Name", "Kind", "Progress", "Processed", "Rejected", "Started", "Duration"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("browser-glance") / "jobs.duckdb")
    server = Server(db, workers=2).wait_ready()
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def finished(served):
    """Two finished jobs and one failed one."""
    with jobobs.connect(served.db) as client:
        ids = [client.submit("jobs:steps", 1200, 0.0, 400, name=f"glance-load-{i}")
               for i in range(2)]
        failed = client.submit("jobs:boom", name="glance-broken")
        for job_id in ids:
            wait_status(client, job_id, "finished")
        wait_status(client, failed, "failed")
    return ids, failed


def rows(page):
    return page.locator(".jobobs-jobs .tabulator-row")


def test_a_chip_lists_only_its_status_and_a_second_click_all(browser, served, finished):
    page = open_page(browser, served.endpoint.dashboard, width=1600)
    chip = page.get_by_role("button", name="✖ Finished with error 1")
    expect(chip).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="✔ Finished 2")).to_be_visible()
    expect(page.locator('[data-figure="failed today"]')).to_have_text("1 failed today")
    expect(rows(page)).to_have_count(3, timeout=30_000)
    chip.click()
    expect(rows(page)).to_have_count(1, timeout=30_000)
    expect(rows(page).first).to_contain_text("glance-broken")
    chip.click()
    expect(rows(page)).to_have_count(3, timeout=30_000)
    titles = page.locator(".jobobs-jobs .tabulator-col-title").evaluate_all(
        "els => els.map(e => [e.textContent.trim(), e.scrollWidth <= e.clientWidth])")
    whole = {title: fits for title, fits in titles}
    assert all(whole.get(title) for title in HEADERS), titles
    expect(rows(page).first.locator('[tabulator-field="processed"]')).to_have_text("0")
    expect(rows(page).nth(1).locator('[tabulator-field="processed"]')).to_have_text("1,200")
    page.context.close()


def test_the_general_tab_shows_groups_and_a_time_ago_with_its_exact_value(
        browser, served, finished):
    page = open_page(browser, served.endpoint.dashboard, width=1600)
    page.get_by_text("glance-load-0", exact=True).first.click()
    for heading in ["Status and progress", "Timing", "Counters", "Who and where", "Spec"]:
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(
            timeout=30_000)
    # the list and the detail side by side within 1600 pixels: nothing cut at the right
    rights = page.locator(".jobobs-fields").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().right)")
    retry = page.get_by_role("button", name="Retry", exact=True).bounding_box()
    assert rights and max(rights) <= 1600 and retry["x"] + retry["width"] <= 1600, (rights, retry)
    started = page.locator(".jobobs-fields tr", has_text="started").locator("span[title]")
    expect(started).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d · "
                                            r"(just now|.* ago)$"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", started.get_attribute("title"))
    expect(page.locator(".jobobs-fields tr", has_text="processed")).to_have_text(
        re.compile(r"processed\s*1,200"))
    page.context.close()
