"""Issue 20, items 10 and 13: failures grouped by what went wrong (not by the words that
change from run to run), whole journal messages in the dashboard, and a request banner
that tells the status as it is now. Plain pytest over a real runtime and file, then what a
person sees in real Chromium."""

import re
import time

import jobs
import pytest
from playwright.sync_api import expect
from serving import Server, expand_row, open_page, wait_status

import jobobs
from jobobs.access import analytics
from jobobs.dashboard.analyticspage import Analytics
from jobobs.dashboard.detail import JobDetail
from jobobs.dashboard.style import headline
from jobobs.testing import wait_for_status, wait_until


@jobobs.job(name="fails-as-told")
def fails_as_told(ctx, kind, message):
    """Raises ``kind(message)``: failures whose words differ from run to run."""
    raise {"ValueError": ValueError, "TypeError": TypeError, "KeyError": KeyError,
           "OSError": OSError}[kind](message)


@jobobs.job(name="held-then-pausable")
def held_then_pausable(ctx, name):
    """Waits for its gate with no safe point (a pause stays in progress), then reaches a
    safe point every few milliseconds until paused or canceled."""
    jobs.gate(name).wait(30)
    while True:
        ctx.checkpoint()
        time.sleep(0.005)


FAILURES = [
    ("ValueError", "row 17 failed reading '/data/in/a.csv'"),
    ("ValueError", "row 18 failed reading '/data/in/b.csv'"),
    ("ValueError", "row 2025 failed reading \"C:\\in\\c.csv\"\nand a second line"),
    ("TypeError", "row 5 failed reading 'x'"),  # another type: another group
    ("KeyError", "customer_9"),
    ("KeyError", "customer_10"),
    ("OSError", "cannot open /srv/drop/2024-05-01/orders.csv after 3 tries"),
    ("OSError", "cannot open ./drop/orders-7.csv after 12 tries"),
    ("ValueError", "batch 3f2a9c1e-77d0-4b8e-9a51-0c2e8f1d6b42 has 0x1F bad rows"),
    ("ValueError", "batch 9d4e0a7b-1c2f-4e3a-8b9c-5d6e7f8a9b0c has 0xff bad rows"),
]


@pytest.fixture
def client(rt):
    return jobobs.Client.embedded(rt)


@pytest.fixture
def failed(rt):
    ids = [rt.submit(fails_as_told, kind, message).id for kind, message in FAILURES]
    rt.run_until_idle(timeout=30)
    return ids


def test_failures_group_by_exception_type_and_normalised_first_line(failed, client):
    groups = analytics.failures(client.connection())
    found = {(row.error_type, row.error): row.failures for row in groups.itertuples()}
    assert found == {
        ("ValueError", "ValueError: row <n> failed reading <value>"): 3,
        ("TypeError", "TypeError: row <n> failed reading <value>"): 1,
        ("KeyError", "KeyError: <value>"): 2,
        ("OSError", "OSError: cannot open <path> after <n> tries"): 2,
        ("ValueError", "ValueError: batch <id> has <id> bad rows"): 2,
    }
    assert groups["failures"].tolist() == sorted(groups["failures"], reverse=True)
    top = groups.iloc[0]
    assert top["last_job_id"] == failed[2]  # the newest of its group, as the example
    assert top["example"].startswith("ValueError: row 2025 failed")


def test_a_failure_keeps_its_traceback_for_the_detail(failed, client):
    con = client.connection()
    top = analytics.failures(con).iloc[0]
    detail = analytics.failure_detail(con, int(top["last_job_id"]))
    assert detail.startswith("Traceback (most recent call last):")
    assert "raise {" in detail and detail.rstrip().endswith("and a second line")
    page = Analytics(client)
    page.refresh(force=True)
    shown = page.failures
    assert {"last_job_id", "example", "error_type"} <= set(shown.hidden_columns)
    expanded = shown.row_content(shown.value.iloc[0]).object
    assert "Traceback (most recent call last):" in expanded and "fails_as_told" in expanded


def test_a_job_that_did_not_fail_has_no_failure_detail(rt, client):
    job_id = rt.submit(jobs.noop, start=False).id
    assert analytics.failure_detail(client.connection(), job_id) == ""


def test_a_headline_shows_the_first_line_and_the_exception():
    assert headline("one line") == "one line"
    traceback = ('Traceback (most recent call last):\n  File "x.py", line 3, in f\n'
                 '    raise ValueError("the input is broken")\n'
                 'ValueError: the input is broken')
    assert headline(traceback) == "ValueError: the input is broken [+3 lines]"
    logged = "loading failed\n" + traceback
    assert headline(logged) == "loading failed — ValueError: the input is broken [+4 lines]"
    chained = (traceback + "\n\nDuring handling of the above exception, another exception "
               "occurred:\n\n" + traceback.replace("ValueError: the", "KeyError: the"))
    assert headline(chained).startswith("KeyError: the input is broken [+")
    assert headline("Conversion Error: no\n\nLINE 1: SELECT") == "Conversion Error: no [+2 lines]"


def test_a_failed_jobs_journal_shows_the_exception_and_expands_to_the_whole(rt, client):
    job_id = rt.submit(jobs.boom).id
    rt.run_until_idle(timeout=20)
    detail = JobDetail(client, job_id=job_id)
    lines = detail.journal.value
    error = lines[lines["level"] == "ERROR"].iloc[-1]
    assert error["message"].startswith("ValueError: the input is broken [+")
    whole = detail.journal.row_content(error).object
    assert "Traceback (most recent call last):" in whole and "boom" in whole
    assert "ValueError: the input is broken" in whole


def test_the_first_lines_of_a_job_shown_before_it_started_are_listed(rt, client):
    job_id = rt.submit(jobs.talker, 3, 0.0, start=False).id
    detail = JobDetail(client, job_id=job_id)
    assert detail.journal.value.empty  # an empty table, then lines streamed into it
    rt.start(job_id)
    rt.run_until_idle(timeout=20)
    detail.refresh()
    assert "talking: step 3 of 3" in detail.journal.value["message"].tolist()


def test_the_banner_follows_the_status_after_a_request(rt, client):
    gate = jobs.gate("edges-banner")
    job_id = rt.submit(held_then_pausable, "edges-banner").id
    wait_for_status(rt, job_id, "running")
    detail = JobDetail(client, job_id=job_id, user="olga")
    detail.request("pause")
    assert detail.message.object == "Pause requested. Status now: Pause in progress."
    gate.set()
    wait_until(lambda: detail.refresh() or detail.status == "paused", timeout=10)
    assert detail.message.object == "Pause requested. Status now: Paused."
    detail.request("cancel")
    wait_until(lambda: detail.refresh() or detail.status == "canceled", timeout=10)
    assert detail.message.object == "Cancel requested. Status now: Canceled."
    detail.job_id = None
    assert not detail.message.visible


# -- in the browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("edges") / "jobs.duckdb")
    server = Server(db, workers=2).wait_ready()
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture
def remote(served):
    with jobobs.connect(served.db) as connected:
        yield connected


def _select(page, name):
    page.get_by_text(name, exact=True).first.click()
    expect(page.locator("h3", has_text=name)).to_be_visible(timeout=30_000)


@pytest.mark.slow
def test_the_journal_shows_the_exception_and_the_whole_traceback_on_click(
        browser, served, remote):
    job_id = remote.submit("jobs:boom", name="broken-for-edges")
    remote.wait(job_id, progress=False, timeout=30)
    page = open_page(browser, served.endpoint.dashboard)
    _select(page, "broken-for-edges")
    page.get_by_text("Journal", exact=True).click()
    shown = page.locator('.tabulator-cell[tabulator-field="message"]',
                         has_text=re.compile(r"^ValueError: the input is broken \[\+\d+ lines\]$"))
    expect(shown).to_be_visible(timeout=30_000)  # the exception, not the traceback's header
    line = page.locator(".tabulator-row", has=shown)
    expand_row(line)
    whole = page.locator("pre.jobobs-message", has_text="Traceback (most recent call last)")
    expect(whole).to_be_visible(timeout=30_000)
    expect(whole).to_contain_text('raise ValueError("the input is broken")')
    page.context.close()


@pytest.mark.slow
def test_the_banner_says_paused_once_the_pause_is_done(browser, served, remote):
    job_id = remote.submit("jobs:talker", 400, 0.05, name="pause-banner")
    wait_status(remote, job_id, "running")
    page = open_page(browser, served.endpoint.dashboard)
    _select(page, "pause-banner")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h3 .jobobs-status")).to_contain_text("Paused", timeout=15_000)
    banner = page.locator(".alert", has_text="Pause requested")
    expect(banner).to_have_text("Pause requested. Status now: Paused.", timeout=30_000)
    remote.cancel(job_id)
    page.context.close()


@pytest.mark.slow
def test_the_analytics_page_groups_failures_and_shows_a_traceback_on_click(
        browser, served, remote):
    for row in (41, 42, 43):
        job_id = remote.submit("test_dashboard_edges:fails_as_told", "ValueError",
                               f"row {row} of '/in/{row}.csv' is short", name="short-rows")
    remote.wait(job_id, progress=False, timeout=30)
    page = open_page(browser, served.endpoint.dashboard)
    page.get_by_text("Analytics", exact=True).click()
    group = page.locator(".tabulator-row", has_text="ValueError: row <n> of <value> is short")
    expect(group).to_be_visible(timeout=30_000)
    expect(group.locator('.tabulator-cell[tabulator-field="failures"]')).to_have_text("3")
    expand_row(group)
    whole = page.locator("pre.jobobs-message", has_text=f"Job {job_id}, the newest of 3")
    expect(whole).to_contain_text("Traceback (most recent call last)", timeout=30_000)
    expect(whole).to_contain_text("ValueError: row 43 of '/in/43.csv' is short")
    page.context.close()
