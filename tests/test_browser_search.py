"""Issue 18 as a person sees and clicks it: the Search page of a real ``jobobs serve`` in
headless Chromium finds a word in the journals of two jobs, narrows them by level, and a
click on a line opens its job on the Jobs page."""

import pytest
from playwright.sync_api import expect
from serving import Server, open_page, wait_status

import jobobs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("browser-search") / "jobs.duckdb")
    server = Server(db, workers=2).wait_ready()
    yield server
    assert server.stop() == 0, server.output()


def results(page):
    return page.locator(".jobobs-search-table .tabulator-row")


def test_a_word_found_in_two_jobs_narrowed_by_level_and_opened(browser, served):
    with jobobs.connect(served.db) as client:
        keeper = client.submit("test_search:says", [["INFO", None, "fed the zebra"],
                                                    ["WARNING", "Z-1", "the Zebra escaped"]],
                               name="zoo-keeper")
        vet = client.submit("test_search:says", [["INFO", None, "zebra looks well"]],
                            name="zoo-vet")
        for job_id in (keeper, vet):
            wait_status(client, job_id, "finished")
    page = open_page(browser, served.endpoint.dashboard)
    page.get_by_text("Search", exact=True).first.click()
    box = page.locator(".jobobs-search-text input")
    box.fill("zebra")
    box.press("Enter")
    expect(results(page)).to_have_count(3, timeout=30_000)
    for name, message in (("zoo-keeper", "fed the zebra"), ("zoo-keeper", "the Zebra escaped"),
                          ("zoo-vet", "zebra looks well")):
        expect(page.locator(".jobobs-search-table .tabulator-row", has_text=message)
               ).to_contain_text(name)
    page.locator(".jobobs-search select").first.select_option("warnings and errors")
    expect(results(page)).to_have_count(1, timeout=30_000)
    row = results(page).first
    expect(row).to_contain_text("the Zebra escaped")
    expect(row.locator('.tabulator-cell[tabulator-field="job_id"]')).to_have_text(str(keeper))
    row.click()
    expect(page.locator("h3", has_text=f"#{keeper} zoo-keeper")).to_be_visible(timeout=30_000)
