"""Issue 17 in the dashboard: the header's alerts badge, the Alerts page and Acknowledge,
a job's alerts on its General tab, and "slower than usual" while a job runs. The Panel
objects built and driven in plain pytest over a real runtime and file; alerts are rows
written with SQL, as the server's rules write them. What a person sees and clicks is in
test_browser_alerts.py."""

import jobs
import pytest

import jobobs
from jobobs.access import analytics, queries
from jobobs.dashboard import Dashboard
from jobobs.dashboard.alertspage import Alerts
from jobobs.dashboard.detail import ALERTS_EVERY, JobDetail
from jobobs.dashboard.joblist import JobList
from jobobs.testing import wait_for_status, wait_until

ALERT = """INSERT INTO alerts (id, rule, kind, subject, job_id, job_name, schedule, run,
               summary, detail, opened_at, resolved_at, resolution, acknowledged_at,
               acknowledged_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)"""


@pytest.fixture
def client(rt):
    return jobobs.Client.embedded(rt)


def alert(rt, alert_id, *, kind="failed", job_id=None, job_name=None, schedule=None,
          summary=None, detail=None, opened="2026-03-02 12:03:00", resolved=None,
          resolution=None, acknowledged_by=None):
    """An alerts row as a rule writes one."""
    subject = f"job {job_id} run 1" if job_id is not None else f"schedule {schedule} tick"
    with rt.store.transaction() as con:
        con.execute(ALERT, [alert_id, f"{kind}-rule", kind, subject, job_id, job_name,
                            schedule, summary or f"{kind} #{alert_id}", detail, opened,
                            resolved, resolution, opened if acknowledged_by else None,
                            acknowledged_by])


def notification(rt, alert_id, outcome, error=None):
    with rt.store.transaction() as con:
        con.execute("""INSERT INTO notifications VALUES (
                           (SELECT coalesce(max(id), 0) + 1 FROM notifications), ?, 'opened',
                           'mailto://ops:***@example.org', ?, 3, ?,
                           TIMESTAMP '2026-03-02 12:03:01', NULL)""",
                    [alert_id, outcome, error])


def acknowledged_by(client, alert_id):
    frame = client.alerts()
    return frame.set_index("id").loc[alert_id, "acknowledged_by"]


@pytest.fixture
def failed(rt):
    """A failed job (1) and its alerts: one open, one resolved; and a schedule's."""
    job_id = rt.submit(jobs.boom, name="nightly <load>").id
    rt.run_until_idle(timeout=20)
    alert(rt, 1, job_id=job_id, job_name="nightly <load>", opened="2026-03-01 08:00:00",
          resolved="2026-03-01 09:00:00", resolution="the job ended: Finished")
    alert(rt, 2, kind="late", schedule="hourly", summary="schedule hourly is 10 min late")
    alert(rt, 3, job_id=job_id, job_name="nightly <load>",
          summary="nightly <load> (job 1) failed: <b>ValueError</b>",
          detail="Traceback (most recent call last):\n  <script>alert(1)</script>\nboom")
    return job_id


def test_the_badge_counts_open_and_new_alerts_on_every_page(rt, client):
    dashboard = Dashboard(client)
    assert dashboard.bell.label == "no open alerts" and dashboard.bell.color == "light"
    alert(rt, 1, kind="slow")
    alert(rt, 2, kind="failed", acknowledged_by="otto")
    alert(rt, 3, kind="stalled", resolved="2026-03-02 13:00:00", resolution="it moved")
    dashboard.refresh()
    assert dashboard.bell.label == "🔔 2 open alerts (1 new)"
    assert dashboard.bell.color == "danger"
    dashboard.pages.active = 2  # Schedules: the badge follows still
    client.ack(1, by="olga")
    dashboard.refresh()
    assert dashboard.bell.label == "🔔 2 open alerts" and dashboard.bell.color == "warning"
    assert dashboard.alerts is None  # built when first opened
    dashboard.bell.clicks += 1
    assert dashboard.pages.active == 3 and dashboard.alerts is not None
    assert dashboard.alerts.table.value["id"].tolist() == [2, 1]
    assert not dashboard.error.visible


def test_the_page_lists_open_alerts_then_all_and_shows_the_selected_one(rt, client, failed):
    page = Alerts(client)
    table = page.table.value
    assert table["id"].tolist() == [3, 2]  # open only, newest first
    assert table.set_index("id")["job"].to_dict() == {3: "#1 nightly <load>",
                                                      2: "schedule hourly"}
    assert table["resolved"].tolist() == ["open", "open"]
    assert 'data-status="failed"' in table["status"].iloc[0] and table["status"].iloc[1] == ""
    assert table["opened"].iloc[0] == "2026-03-02 12:03:00"
    page.view.value = "All"
    table = page.table.value.set_index("id")
    assert list(table.index) == [3, 2, 1]
    assert table.loc[1, "resolved"] == "2026-03-01 09:00:00 — the job ended: Finished"
    notification(rt, 3, "failed", error="<connection refused>")
    page.table.selection = [0]
    assert page.selected == 3 and "Alert #3" in page.title.object
    shown = page.detail.object
    assert "&lt;b&gt;ValueError&lt;/b&gt;" in shown and "<b>ValueError</b>" not in shown
    detail = shown[shown.index("<pre "):]
    assert '">Traceback (most recent call last):\n  &lt;script&gt;alert(1)' in detail
    assert '<a href="?job=1">job 1 nightly &lt;load&gt;</a>' in shown
    assert "&lt;connection refused&gt;" in page.notifications.object
    assert "mailto://ops:***@example.org" in page.notifications.object
    notification(rt, 3, "sent")  # a delivery recorded later shows on the next tick
    page.refresh()
    assert page.notifications.object.count("<tr>") == 3
    page.view.value = "Open only"
    page.selected = 1  # resolved: not in the open list
    assert "no longer listed (resolved: choose All to see it)" in page.title.object
    assert page.acknowledge.disabled


def test_an_operator_acknowledges_an_alert(rt, client, failed):
    dashboard = Dashboard(client, roles={"otto": "operator"}, user="otto")
    dashboard.bell.clicks += 1
    page = dashboard.alerts
    assert page.acknowledge.visible and page.acknowledge.disabled  # nothing selected
    page.table.selection = [0]
    assert page.selected == 3 and not page.acknowledge.disabled
    page.ack()
    assert page.message.alert_type == "success"
    assert page.message.object.startswith("Alert 3 acknowledged by otto.")
    assert acknowledged_by(client, 3) == "otto"
    assert page.table.value.set_index("id").loc[3, "acknowledged"] == "otto"
    assert page.acknowledge.disabled and "UTC by otto" in page.detail.object
    dashboard.refresh()
    assert dashboard.bell.label == "🔔 2 open alerts (1 new)"
    page.ack()  # as if the button had stayed enabled
    assert page.message.object == "Alert 3 was acknowledged by otto."
    with rt.store.transaction() as con:  # gone from under the page
        con.execute("DELETE FROM alerts WHERE id = 2")
    page.selected = 2
    page.ack()
    assert page.message.alert_type == "danger" and "there is no alert 2" in (
        page.message.object)


def test_a_viewer_does_not_see_acknowledge_and_is_refused(rt, client, failed):
    dashboard = Dashboard(client, roles={"vera": "viewer"}, user="vera")
    dashboard.pages.active = 3
    page = dashboard.alerts
    page.table.selection = [0]
    assert page.selected == 3
    assert not page.acknowledge.visible and page.acknowledge.disabled
    page.ack()  # as if the button were there
    assert "operator role" in page.message.object
    assert acknowledged_by(client, 3) is None


def test_the_general_tab_lists_the_jobs_alerts(rt, client, failed):
    other = rt.submit(jobs.noop).id
    rt.run_until_idle(timeout=20)
    detail = JobDetail(client, job_id=other)
    assert not detail.alerts.visible
    detail.job_id = failed
    shown = detail.alerts.object
    assert detail.alerts.visible
    assert shown.index('data-alert="3"') < shown.index('data-alert="1"')  # open first
    assert '<li class="open" data-alert="3" style="color:#b91c1c">#3 <b>failed</b> ' \
           "(failed-rule) — opened 2026-03-02 12:03:00 UTC, open<br>" in shown
    assert "&lt;b&gt;ValueError&lt;/b&gt;" in shown and "<b>ValueError</b>" not in shown
    assert ('<li class="resolved" data-alert="1" ' in shown
            and "resolved 2026-03-01 09:00:00 — the job ended: Finished" in shown)
    client.ack(3, by="olga")  # the job's row does not change: read within a few ticks
    for _ in range(ALERTS_EVERY):
        detail.refresh()
    assert "open, acknowledged by olga" in detail.alerts.object


def test_a_running_job_slower_than_usual_is_flagged_as_it_runs(rt, client):
    for _ in range(5):
        rt.submit(jobs.steps, 2, 0.0, name="quick")
    rt.run_until_idle(timeout=30)
    fresh = rt.submit(jobs.blocked, "alerts-fresh", name="first of its name").id
    slow = rt.submit(jobs.blocked, "alerts-slow", name="quick").id
    wait_for_status(rt, slow, "running")
    wait_for_status(rt, fresh, "running")
    detail = JobDetail(client, job_id=slow)
    wait_until(lambda: detail.refresh() or "so far" in detail.title.object, timeout=20)
    flag = detail.title.object
    assert "🐢 slower than usual: " in flag and " so far, usual " in flag
    listed = JobList(client)

    def flagged():
        listed.refresh()
        return listed.table.value.set_index("id")["duration"].to_dict()

    durations = wait_until(lambda: "🐢" in flagged()[slow] and flagged(), timeout=20)
    assert "slower than usual: usual" in durations[slow]
    assert "🐢" not in durations[fresh]  # no runs to compare with
    detail.job_id = fresh
    detail.refresh()
    assert "slower than usual" not in detail.title.object
    jobs.gate("alerts-slow").set()
    jobs.gate("alerts-fresh").set()
    rt.wait(slow, timeout=20)
    rt.wait(fresh, timeout=20)
    assert queries.job(client.connection(), slow)["status"].iloc[0] == "finished"


def test_runs_of_a_job_that_usually_takes_no_time_are_judged_against_a_millisecond(new_db):
    # three runs too quick to measure, then one of half a second
    jobs.finished_runs(new_db, "quick", [0, 0, 0, 0.5], start=1e9)
    with jobobs.Runtime(new_db, workers=1, handle_signals=False) as rt:
        client = jobobs.Client.embedded(rt)
        slow = analytics.slow_runs(client.connection())
        assert slow[["id", "times_usual"]].to_dict("records") == [{"id": 4, "times_usual": 500.0}]
        assert "500.0x the median" in JobDetail(client, job_id=4).title.object
        hangs = rt.submit(jobs.blocked, "no-time", name="quick").id
        detail = JobDetail(client, job_id=hangs)
        wait_until(lambda: detail.refresh() or "so far" in detail.title.object, timeout=20)
        assert "so far, usual 0.0 s" in detail.title.object
        jobs.gate("no-time").set()
        rt.wait(hangs, timeout=20)
