"""Issue 18 as a person sees and clicks it: the Compare page of a real ``jobobs serve``
(one worker, so two runs' first journal lines are the same) in headless Chromium, opened
by a link on two runs, then on two runs typed in its inputs."""

import re

import pytest
from playwright.sync_api import expect
from serving import Server, open_page

import jobobs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("browser-compare") / "jobs.duckdb")
    server = Server(db, workers=1).wait_ready()
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def runs(served):
    """Three runs of talker: 12 steps, 15 steps, and 12 steps again."""
    with jobobs.connect(served.db) as client:
        ids = [client.submit("jobs:talker", count, 0.0) for count in (12, 15, 12)]
        for job_id in ids:
            assert client.wait(job_id, progress=False, timeout=60).status.value == "finished"
    return ids


def row(page, table, name):
    return page.locator(f".jobobs-compare-{table} tr", has_text=name).first


def test_a_link_opens_two_runs_side_by_side_with_their_differences_marked(
        browser, served, runs):
    first, second, _ = runs
    page = open_page(browser, f"{served.endpoint.dashboard}?compare={first},{second}")
    expect(page.locator("h3", has_text=f"Runs #{first} and #{second} of talker")
           ).to_be_visible(timeout=30_000)
    for counter, a, b in (("processed", "12", "15"), ("rejected", "2", "2")):
        expect(row(page, "fields", counter)).to_contain_text(a)
        expect(row(page, "fields", counter)).to_contain_text(b)
    expect(row(page, "fields", "processed")).to_have_class("jobobs-field jobobs-differs")
    expect(row(page, "fields", "processed")).to_contain_text("≠")
    expect(row(page, "fields", "rejected")).to_have_class("jobobs-field")  # 2 and 2
    expect(row(page, "fields", "kind")).not_to_contain_text("≠")
    expect(page.get_by_text("First difference at line 2")).to_be_visible()
    journal = page.locator(".jobobs-compare-journal tr")
    expect(journal.first).to_contain_text("Line")
    expect(journal.nth(1)).not_to_have_class("jobobs-line jobobs-differs")  # line 1: the same
    first_difference = journal.nth(2)
    expect(first_difference).to_have_class("jobobs-line jobobs-differs")
    expect(first_difference).to_have_attribute("style", re.compile("background"))
    expect(first_difference).to_contain_text("talking: step 1 of 12")
    expect(first_difference).to_contain_text("talking: step 1 of 15")
    page.context.close()


def test_two_runs_chosen_in_the_inputs(browser, served, runs):
    first, second, third = runs
    page = open_page(browser, served.endpoint.dashboard)
    page.get_by_text("Compare", exact=True).click()
    inputs = page.locator(".jobobs-compare-a input"), page.locator(".jobobs-compare-b input")
    # by default the newest job's last two runs
    expect(inputs[0]).to_have_value(str(second), timeout=30_000)
    expect(inputs[1]).to_have_value(str(third))
    inputs[0].fill(str(first))
    inputs[1].fill(str(third))
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("h3", has_text=f"Runs #{first} and #{third} of talker")
           ).to_be_visible(timeout=30_000)
    expect(page.get_by_text("The journals are the same")).to_be_visible()
    expect(row(page, "fields", "processed")).to_have_class("jobobs-field")
    expect(row(page, "fields", "spec.args")).not_to_contain_text("≠")

    inputs[1].fill("99999")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator(".alert", has_text="job 99999 does not exist")
           ).to_be_visible(timeout=30_000)
    page.context.close()
