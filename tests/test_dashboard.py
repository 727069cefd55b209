"""The dashboard's objects built and driven in plain pytest over a real runtime and file;
what a person sees and clicks is in test_browser.py."""

import jobs
import pandas as pd
import pytest

import jobobs
from jobobs.access import analytics, queries
from jobobs.dashboard import Dashboard
from jobobs.dashboard.analyticspage import Analytics
from jobobs.dashboard.detail import JobDetail
from jobobs.dashboard.joblist import JobList
from jobobs.testing import wait_for_status, wait_until

INJECTIONS = ["'; DROP TABLE jobs; --", "%", "_", "\\", "' OR '1'='1", "\"name\"", "?", "$1"]


@pytest.fixture
def client(rt):
    return jobobs.Client.embedded(rt)


@pytest.fixture
def history(rt):
    """Twelve finished jobs of two names, one failed, one editing."""
    for i in range(10):
        rt.submit(jobs.steps, 3, 0.0, 2, name="steps" if i % 2 else "other steps")
    rt.submit(jobs.boom)
    rt.submit(jobs.noop, start=False)
    rt.run_until_idle(timeout=20)
    return rt


def test_the_list_shows_jobs_newest_first_with_their_labels(history, client):
    listed = JobList(client)
    table = listed.table.value
    assert listed.total == 12 and table["id"].tolist() == list(range(12, 0, -1))
    assert "Editing in progress" in table["status"].iloc[0]
    assert "Finished with error<" in table["status"].iloc[1]
    assert 'data-status="finished"' in table["status"].iloc[2]
    assert table["progress"].iloc[2].endswith("<small>100%</small>")


def test_filters_and_server_side_paging(history, client):
    listed = JobList(client, page_size=5)
    assert len(listed.table.value) == 5 and listed.position.object.startswith("1-5 of 12")
    listed.page = 2
    assert listed.table.value["id"].tolist() == [2, 1]
    listed.statuses = ["failed"]
    assert listed.page == 0 and listed.table.value["id"].tolist() == [11]
    listed.statuses = []
    listed.search = "OTHER"
    assert listed.total == 5
    listed.search = ""
    listed.kind = "export"
    assert listed.total == 0 and not listed.empty and listed.table.value.empty


@pytest.mark.parametrize("text", INJECTIONS)
def test_search_text_is_a_parameter_never_sql(history, client, text):
    listed = JobList(client)
    listed.search = text
    assert listed.total == 0
    detail = JobDetail(client, job_id=1)
    detail.search = text
    assert detail.journal.value.empty
    assert queries.count_jobs(client.connection()) == 12  # the table is still there


def test_an_empty_database_says_how_to_start(client):
    listed = JobList(client)
    assert listed.empty and listed.empty_state.visible and not listed.table.visible
    assert "jobobs import" in listed.empty_state.object


def test_selecting_a_job_fills_general_journal_and_rejects(history, client):
    dashboard = Dashboard(client)
    dashboard.jobs.table.selection = [2]  # job 10
    detail = dashboard.detail
    assert detail.job_id == 10 and "Finished" in detail.title.object
    assert "<td>processed</td><td>3</td>" in detail.fields.object
    assert "by <b>runtime</b>" in detail.history.object
    assert detail.spec.object["args"] == [3, 0.0, 2]
    assert "starting at 0" in detail.journal.value["message"].tolist()
    assert detail.rejects.value["raw"].tolist() == ['{"i": 0}', '{"i": 2}']
    assert detail.by_reason.value.to_dict("records") == [{"reason": "bad item", "rejects": 2}]
    assert "2 rejects" in detail.rejects_note.object
    assert detail.buttons["Cancel"].disabled and detail.buttons["Pause"].disabled
    csv = detail._rejects_csv().getvalue()
    assert csv.startswith("seq,") and csv.count("\n") == 3


def test_controls_follow_the_state_machine_and_record_who_asked(rt, client):
    gate = jobs.gate("dashboard-controls")
    job_id = rt.submit(jobs.blocked, "dashboard-controls").id
    wait_until(lambda: job_id in client.jobs(status="running")["id"].tolist(), timeout=10)
    detail = JobDetail(client, job_id=job_id, user="olga")
    assert not detail.buttons["Pause"].disabled and detail.buttons["Resume"].disabled
    detail.request("pause")
    wait_until(lambda: detail.refresh() or detail.status == "paused", timeout=10)
    assert not detail.buttons["Resume"].disabled
    assert detail.buttons["Pause"].disabled
    detail._confirm_cancel()
    assert detail.confirm.visible and rt.status(job_id).value == "paused"  # asks first
    detail._cancel_confirmed()
    wait_for_status(rt, job_id, "canceled")
    rt.flush()
    actors = queries.transitions(client.connection(), job_id).set_index("to_status")["actor"]
    assert actors["pausing"] == "olga" and actors["canceled"] == "olga"
    gate.set()


def test_a_viewer_is_refused_on_the_server_whatever_the_page_shows(rt, client):
    gate = jobs.gate("dashboard-viewer")
    job_id = rt.submit(jobs.blocked, "dashboard-viewer").id
    wait_for_status(rt, job_id, "running")
    dashboard = Dashboard(client, roles={"vera": "viewer", "otto": "operator"}, user="vera")
    assert not dashboard.can_act
    detail = dashboard.detail
    detail.job_id = job_id
    assert all(button.disabled for button in detail.buttons.values())
    detail.request("pause")  # as if the button had been enabled in the browser
    detail.request("cancel")
    assert "operator role" in detail.message.object
    assert queries.commands(client.connection(), job_id).empty
    assert rt.status(job_id).value == "running"
    assert Dashboard(client, roles={"otto": "operator"}, user="otto").can_act
    gate.set()


def test_the_journal_follows_a_running_job(rt, client):
    job_id = rt.submit(jobs.talker, 40, 0.02).id
    detail = JobDetail(client, job_id=job_id)
    first = len(detail.journal.value)
    wait_until(lambda: (detail.refresh() or len(detail.journal.value)) > first + 5, timeout=10)
    seqs = detail.journal.value["seq"].tolist()
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # streamed, no repeats
    rt.wait(job_id, timeout=20)
    detail.refresh()
    assert detail.journal.value["message"].iloc[-1].startswith("End of job")
    detail.level = "warnings and errors"
    assert detail.journal.value.empty
    detail.level, detail.search = "all levels", "step 7 of"
    assert detail.journal.value["message"].tolist() == ["talking: step 7 of 40"]


def test_a_running_job_is_patched_in_place(rt, client):
    job_id = rt.submit(jobs.talker, 30, 0.03).id
    # running as the page reads it: the runtime writes the change with its next flush
    wait_until(lambda: job_id in client.jobs(status="running")["id"].tolist(), timeout=10)
    listed = JobList(client)
    patches = []
    original = listed.table.patch
    listed.table.patch = lambda *a, **k: patches.append(a) or original(*a, **k)
    before = listed.table.value
    wait_until(lambda: (listed.refresh() or bool(patches)), timeout=10)
    assert listed.table.value["id"].tolist() == before["id"].tolist()
    rt.wait(job_id, timeout=20)


def test_a_failing_read_shows_a_message_and_the_page_carries_on(rt, client):
    rt.submit(jobs.noop)
    rt.run_until_idle(timeout=10)
    dashboard = Dashboard(client)
    rt.close()  # the database goes away under the page
    dashboard.refresh()
    assert dashboard.error.visible and "cannot read the job history" in dashboard.error.object


def test_analytics_flags_a_run_slower_than_usual(rt, client):
    for delay in [0.01] * 6 + [0.2]:
        rt.submit(jobs.steps, 2, delay, name="nightly")
    rt.run_until_idle(timeout=30)
    slow = analytics.slow_runs(client.connection())
    assert slow["id"].tolist() == [7] and slow["times_usual"].iloc[0] > 2
    page = Analytics(client)
    page.refresh(force=True)
    assert page.slow.value["id"].tolist() == [7]
    assert page.summary.value.set_index("name").loc["nightly", "runs"] == 7
    assert len(page.pipes["durations"].data) == 7
    assert page.slow.titles == {"id": "#", "name": "Job name", "started_at": "Started (UTC)",
                                "duration_s": "Duration (s)", "usual_s": "Usual (s)",
                                "times_usual": "Times usual"}
    detail = JobDetail(client, job_id=7)
    assert "slower than usual" in detail.title.object


def test_the_analytics_tables_read_in_words_and_percentages(rt, client):
    for should_fail in (False, False, False, True):
        rt.submit(jobs.boom if should_fail else jobs.noop, name="nightly")
    rt.run_until_idle(timeout=30)
    page = Analytics(client)
    summary = page.summary.value.set_index("name")
    assert summary.loc["nightly", "failure_rate"] == 25.0  # 1 of 4, as a percentage
    assert page.summary.titles["failure_rate"] == "Failed %"
    assert page.summary.formatters["failure_rate"]["precision"] == 1
    assert set(page.summary.titles) == set(page.summary.value.columns)
    assert page.failures.titles["last_at"] == "Last (UTC)"


def test_analytics_answers_every_question(history, client):
    con = client.connection()
    assert analytics.failures(con)["error"].iloc[0].startswith("ValueError")
    assert analytics.rejects_by(con, by="column_name").to_dict("records") == [
        {"column_name": "i", "rejects": 20, "jobs": 10}]
    assert analytics.throughput(con, bucket="hour")["processed"].sum() == 30
    statuses = analytics.status_over_time(con, bucket="day")
    assert statuses.set_index("status")["jobs"].to_dict() == {
        "editing": 1, "failed": 1, "finished": 10}
    assert len(analytics.timeline(con)) == 11
    trend = analytics.duration_trend(con, name="steps")
    assert trend["runs"].sum() == 5
    with pytest.raises(ValueError, match="bucket must be"):
        analytics.throughput(con, bucket="'; DROP TABLE jobs; --")


def test_several_sessions_are_independent(history, client):
    one, two = Dashboard(client), Dashboard(client)
    one.jobs.statuses = ["failed"]
    one.jobs.table.selection = [0]
    assert two.jobs.total == 12 and two.detail.job_id is None and one.detail.job_id == 11


def test_time_window_filter(history, client):
    listed = JobList(client, window="last hour")
    assert listed.total == 12
    con = client.connection()
    future = pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(hours=1)
    assert queries.count_jobs(con, since=future) == 0
    assert queries.count_jobs(con, until=future) == 12


def test_tables_keep_their_column_types_when_their_first_rows_arrive(rt, client):
    """A table whose column types change is rebuilt in the browser, and rows sent while it
    is rebuilt are lost: the first job of an empty list often never showed."""
    listed = JobList(client)
    detail = JobDetail(client, job_id=rt.submit(jobs.talker, 3, 0.0, start=False).id)
    models = {"jobs": listed.table.get_root(), "journal": detail.journal.get_root()}
    before = {name: dict(model.configuration) for name, model in models.items()}
    rt.start(detail.job_id)
    rt.run_until_idle(timeout=20)
    listed.refresh()
    detail.refresh()
    assert len(listed.table.value) == 1 and len(detail.journal.value) > 3
    assert {name: dict(model.configuration) for name, model in models.items()} == before


def test_a_link_to_a_job_opens_its_detail(history, client):
    """``/?job=ID`` (a notification's link) opens the job's detail at once (the served
    page, with a bad number too, is tested in test_browser.py)."""
    dashboard = Dashboard(client, job=5)
    assert dashboard.jobs.selected == 5 and dashboard.detail.job_id == 5
    assert "Finished" in dashboard.detail.title.object
    missing = Dashboard(client, job=999)
    assert "no longer exists" in missing.detail.title.object
