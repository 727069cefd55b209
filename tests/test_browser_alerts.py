"""Issue 17 as a person sees and clicks it: the header's alerts badge, the Alerts page and
Acknowledge, on a real ``jobobs serve`` with sign-in, in headless Chromium. The alert is
a row written with SQL through the server, as a rule writes one, once the server's watch
has made its first tick: under a rule name its rules do not have, so none of them judges
it, and a number far above the ones the watch gives."""

import pandas as pd
import pytest
from playwright.sync_api import expect
from serving import select_row, signed_in, wait_status, with_sign_in

import jobobs
from jobobs.access import queries

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = with_sign_in(tmp_path_factory.mktemp("browser-alerts"))
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture
def client(served):
    with jobobs.connect(served.db) as connected:
        yield connected


def badge_text(client):
    open_alerts, new = queries.alert_counts(client.connection())
    plural = "s" if open_alerts != 1 else ""
    return f"🔔 {open_alerts} open alert{plural}" + (f" ({new} new)" if new else "")


def test_the_badge_opens_the_alerts_page_where_an_operator_acknowledges(
        browser, served, client):
    job_id = client.submit("jobs:steps", 2, 0.0, name="nightly-load")
    wait_status(client, job_id, "finished")
    (alert_id,) = client.connection().execute(
        """INSERT INTO alerts (id, rule, kind, subject, job_id, job_name, run, summary,
                               detail, opened_at)
           VALUES (90001, 'browser-test', 'slow', ?,
                   ?, 'nightly-load', 1, ?, 'took 4m 10s, usual 1m 30s', now()::TIMESTAMP)
           RETURNING id""",
        [f"job {job_id} run 1", job_id, f"nightly-load (job {job_id}) is slow"]).fetchone()
    page = signed_in(browser, served, "otto")
    bell = page.get_by_role("button", name="open alert")
    expect(bell).to_have_text(badge_text(client), timeout=30_000)
    assert "(1 new)" in badge_text(client)
    bell.click()
    row = page.locator(".jobobs-alerts-table .tabulator-row",
                       has_text=f"nightly-load (job {job_id}) is slow")
    expect(row).to_be_visible(timeout=30_000)
    expect(row.locator('.tabulator-cell[tabulator-field="job"]')).to_have_text(
        f"#{job_id} nightly-load")
    select_row(row)
    expect(page.locator("h3", has_text=f"Alert #{alert_id}")).to_be_visible(timeout=30_000)
    expect(page.locator("pre", has_text="took 4m 10s, usual 1m 30s")).to_be_visible()
    page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(page.locator(".alert", has_text=f"Alert {alert_id} acknowledged by otto")
           ).to_be_visible(timeout=30_000)
    alerts = client.alerts().set_index("id")
    assert alerts.loc[alert_id, "acknowledged_by"] == "otto"
    assert pd.isna(alerts.loc[alert_id, "resolved_at"])  # it stays open
    expect(row.locator('.tabulator-cell[tabulator-field="acknowledged"]')).to_have_text(
        "otto", timeout=30_000)
    expect(bell).to_have_text(badge_text(client), timeout=30_000)
    page.get_by_role("link", name=f"job {job_id} nightly-load").click()  # the job's detail
    expect(page.locator("h3", has_text="nightly-load")).to_be_visible(timeout=30_000)
    page.context.close()

    viewer = signed_in(browser, served, "vera")
    viewer.get_by_role("button", name="open alert").click()
    select_row(viewer.locator(".jobobs-alerts-table .tabulator-row",
                              has_text="nightly-load").first)
    expect(viewer.locator("h3", has_text=f"Alert #{alert_id}")).to_be_visible(timeout=30_000)
    expect(viewer.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
    viewer.context.close()
