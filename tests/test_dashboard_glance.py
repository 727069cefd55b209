"""Issue 18, the Jobs page read at a glance, driven in plain pytest over a real runtime and
file: the strip of chips by status (a chip filters the list), humane numbers and
durations in the list, a paused job's duration that stands still, and the General tab in
groups with no "None", "NaN" or "NaT" anywhere; what a person sees and clicks is in
test_browser_glance.py."""

import re
from datetime import UTC, datetime, timedelta

import jobs
import pytest

import jobobs
from jobobs.dashboard import Dashboard
from jobobs.dashboard.detail import JobDetail, active_time
from jobobs.dashboard.joblist import JobList, seconds_shown
from jobobs.model.states import Status
from jobobs.testing import wait_for_status, wait_until

GROUPS = ["Status and progress", "Timing", "Counters", "Who and where", "Spec"]
RAW = re.compile(r"\b(None|NaN|nan|NaT|NA|False|True)\b|<NA>")


@pytest.fixture
def client(rt):
    return jobobs.Client.embedded(rt)


@pytest.fixture
def history(rt):
    """Five finished jobs with rejects, one failed, one editing."""
    for _ in range(5):
        rt.submit(jobs.steps, 1500, 0.0, 500, name="loader")
    rt.submit(jobs.boom, name="broken")
    rt.submit(jobs.noop, start=False, name="draft")
    rt.run_until_idle(timeout=30)
    rt.flush()
    return rt


def in_database(client):
    rows = client.connection().execute(
        "SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
    return dict(rows)


def test_the_strip_has_a_chip_per_status_present_and_a_chip_filters_the_list(history, client):
    listed = Dashboard(client).jobs
    assert listed.counts == in_database(client) == {"finished": 5, "failed": 1, "editing": 1}
    shown = {state.value: chip.label for state, chip in listed.chips.items() if chip.visible}
    assert shown == {"finished": "✔ Finished 5", "failed": "✖ Finished with error 1",
                     "editing": "✎ Editing in progress 1"}
    assert 'style="font-size:1.25em">1</b> failed today' in listed.figures.object
    assert ">0</b> running now" in listed.figures.object
    assert ">15</b> rejects today" in listed.figures.object  # 3 of each loader's 1,500
    failed = listed.chips[Status.FAILED]
    failed.clicks += 1
    assert listed.statuses == ["failed"] and listed.table.value["name"].tolist() == ["broken"]
    assert "click again to show all" in failed.description
    failed.clicks += 1
    assert listed.statuses == [] and listed.total == 7


def test_the_strip_follows_the_database(history, client):
    listed = JobList(client)
    history.submit(jobs.noop, start=False, name="another draft")
    history.flush()
    listed.refresh()
    assert listed.counts["editing"] == 2 == in_database(client)["editing"]
    assert listed.chips[Status.EDITING].label == "✎ Editing in progress 2"


def test_the_list_reads_counts_and_durations_humanely(history, client):
    table = JobList(client).table.value.set_index("name")
    loader = table.loc["loader"].iloc[0]
    assert loader["processed"] == "1,500" and loader["rejected"] == "3"
    assert re.fullmatch(r"\d+\.\d s|\d+ min \d\d s", loader["duration"])
    assert re.search(r'<span title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">\d\d-\d\d ',
                     loader["started"])
    draft = table.loc["draft"]
    assert draft["started"] == draft["duration"] == "" and draft["processed"] == "0"
    assert not any(RAW.search(str(v)) for v in table.reset_index().to_numpy().ravel())


def test_a_paused_jobs_duration_stands_still_while_wall_time_passes(rt, client):
    running = rt.submit(jobs.blocked, "glance-running", name="still running").id
    paused = rt.submit(jobs.blocked, "glance-paused", name="paused one").id
    wait_for_status(rt, running, "running")
    wait_for_status(rt, paused, "running")
    rt.pause(paused)
    wait_for_status(rt, paused, "paused")
    rt.flush()
    listed = JobList(client)
    detail = JobDetail(client, job_id=paused)

    def duration():
        listed.refresh()
        return listed.table.value.set_index("id").loc[paused, "duration"]

    def fields(label):
        found = re.search(f"<td>{label}</td><td>([^<]*)</td>", detail.fields.object)
        return found and found.group(1)

    def wall_time():
        detail.refresh()
        return fields("wall time")

    wall = wait_until(wall_time, timeout=20, interval=0.2)
    before, took = duration(), fields("duration")
    assert took.endswith(" active") and wall.endswith(" since it started")
    # the page is read again at each refresh, for the running job on it
    wait_until(lambda: wall_time() != wall, timeout=20, interval=0.2)
    assert duration() == before and fields("duration") == took
    jobs.gate("glance-running").set()
    jobs.gate("glance-paused").set()
    rt.cancel(paused)
    rt.wait(running, timeout=20)


def test_failed_and_rejects_today_start_again_at_local_midnight(history, client):
    """With no job changed, the strip's "today" figures follow the clock past midnight."""
    listed = JobList(client)
    assert ">1</b> failed today" in listed.figures.object
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    listed.refresh(now=tomorrow)
    assert ">0</b> failed today" in listed.figures.object
    assert ">0</b> rejects today" in listed.figures.object


@pytest.mark.parametrize("status", ["paused", "pausing", "shutdown"])
def test_the_list_and_the_detail_show_one_duration_for_a_job_with_no_active_time(status):
    """A job standing still with no active time read yet shows no duration in both."""
    for active in (None, float("nan")):
        listed = seconds_shown(status, 12.0, (1, active))
        detailed = active_time({"status": status, "duration_s": 12.0, "run_count": 1}, active)
        assert listed is None and detailed is None
    assert seconds_shown("running", 12.0, (1, 5.0)) == active_time(
        {"status": "running", "duration_s": 12.0, "run_count": 1}, 5.0) == 12.0
    assert seconds_shown("running", 12.0, (2, 5.0)) == active_time(
        {"status": "running", "duration_s": 12.0, "run_count": 2}, 5.0) == 5.0


def test_the_general_tab_shows_groups_with_readable_values(history, client):
    detail = JobDetail(client, job_id=1)
    shown = detail.fields.object
    headings = re.findall(r"<h4>([^<]+)</h4>", shown)
    assert headings == GROUPS
    assert 'data-status="finished"' in shown and "<td>warnings</td><td>none</td>" in shown
    assert "<td>processed</td><td>1,500</td>" in shown
    assert "<td>rejected</td><td>3</td>" in shown
    assert re.search(r'<td>started</td><td><span title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">'
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d · (just now|[^<]+ ago)</span>", shown)
    assert re.search(r"<td>duration</td><td>\d+\.\d s</td>", shown)
    assert "<td>last change by</td><td>runtime</td>" in shown
    assert "<td>kind</td><td>python</td>" in shown
    assert "<td>arguments</td><td>1500, 0.0, 500</td>" in shown
    assert "wall time" not in shown and "time left" not in shown  # one run, ended
    failed = JobDetail(client, job_id=6).fields.object
    assert "<td>error</td><td>" in failed and "the input is broken" in failed


def test_a_running_job_shows_its_time_left(rt, client):
    job_id = rt.submit(jobs.steps, 40000, 0.05, name="slow steps").id  # ~30 min: canceled
    detail = JobDetail(client, job_id=job_id)
    wait_until(lambda: detail.refresh() or "<td>time left</td>" in detail.fields.object,
               timeout=120)
    # Estimated from the first steps, which a busy machine can slow: any human duration
    assert re.search(r"<td>time left</td><td>(\d+\.\d s|\d+ min \d\d s|\d+ h \d\d min|"
                     r"\d+ d \d\d h|any moment now)</td>", detail.fields.object)
    assert re.search(r"<td>progress</td><td>[\d.]+% of 40,000</td>",
                     detail.fields.object)
    rt.cancel(job_id)
    wait_for_status(rt, job_id, "canceled", timeout=120)


@pytest.mark.parametrize("which", ["editing", "failed", "finished"])
def test_nothing_reads_as_none_nan_or_nat(history, client, which):
    job_id = {"finished": 1, "failed": 6, "editing": 7}[which]
    dashboard = Dashboard(client)
    dashboard.jobs.selected = job_id
    detail = dashboard.detail
    assert detail.job_id == job_id
    listed = dashboard.jobs.table.value
    text = " ".join([detail.title.object, detail.fields.object, detail.progress_text.object,
                     *map(str, listed.to_numpy().ravel())])
    assert not RAW.search(text), RAW.search(text)
