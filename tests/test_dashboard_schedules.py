"""Issue 16 in the dashboard: the Schedules page, the job detail's Retry button and its
schedule and retries, and "Retry these" on a failure group. The Panel objects built and
driven in plain pytest over a real runtime and file (its schedules never tick by
themselves here: ``run_schedules`` is off); what a person sees and clicks is in
test_browser_schedules.py."""

import os

import jobs
import pytest

import jobobs
from jobobs.access import queries
from jobobs.access.submissions import python_spec
from jobobs.dashboard import Dashboard
from jobobs.dashboard.analyticspage import Analytics
from jobobs.dashboard.detail import JobDetail
from jobobs.dashboard.schedulespage import Schedules
from jobobs.testing import journal_messages, wait_for_status, wait_until


@jobobs.job(name="fails-once")
def fails_once(ctx, marker, count=6, at=3):
    """Checkpoints after each of ``count`` steps, and fails at step ``at`` unless the file
    ``marker`` exists (it makes it): the run after a failure goes on from the checkpoint."""
    start = (ctx.resume_state or {"i": 0})["i"]
    ctx.log.info("starting at %d", start)
    for i in range(start, count):
        if i == at and not os.path.exists(marker):
            open(marker, "w").close()
            raise ConnectionError(f"the source went away at step {i}")
        ctx.progress(i + 1, count)
        ctx.checkpoint({"i": i + 1})


@jobobs.job(name="always-fails")
def always_fails(ctx, row):
    raise ValueError(f"row {row} is short")


@pytest.fixture
def client(rt):
    return jobobs.Client.embedded(rt)


@pytest.fixture
def two(client):
    """An hourly schedule and a paused cron one in Paris time."""
    client.schedule("hourly", python_spec("jobs:steps", 3, 0.0, name="hourly-steps"),
                    every="1h", retry=2)
    client.schedule("nightly", python_spec("jobs:noop"), cron="0 2 * * *",
                    tz="Europe/Paris", enabled=False)
    return client


def buttons(page):
    return {label: not button.disabled for label, button in page.buttons.items()}


def test_the_page_lists_schedules_and_shows_the_selected_ones_log(rt, two):
    page = Schedules(two)
    table = page.table.value.set_index("name")
    assert table.loc["hourly", "when"] == "every 1h"
    assert table.loc["nightly", "when"] == "0 2 * * * (Europe/Paris)"
    assert table["enabled"].to_dict() == {"hourly": "yes", "nightly": "paused"}
    assert table.loc["hourly", "next"] and table.loc["nightly", "next"] == ""
    assert table["retries"].to_dict() == {"hourly": 2, "nightly": 0}
    assert table.loc["hourly", "status"] == "" and not any(buttons(page).values())
    assert page.table.titles["last"] == "Last tick (UTC)"  # a run asked for is not a tick
    assert not page.spec.visible  # no empty "Object, No properties" before a selection
    page.table.selection = [0]  # hourly
    assert page.selected == "hourly" and "every 1h" in page.title.object
    assert buttons(page) == {"Run now": True, "Pause": True, "Resume": False}
    assert page.log.value["message"].iloc[0].startswith("Added by ")
    assert page.spec.object["function"] == "jobs:steps" and page.spec.visible
    page.table.selection = [1]
    assert buttons(page) == {"Run now": True, "Pause": False, "Resume": True}


def test_run_now_pause_and_resume_as_the_signed_in_user(rt, two):
    page = Schedules(two, user="olga")
    page.selected = "hourly"
    page.act("run")
    job_id = int(page.message.object.split()[1])
    assert page.message.object == f"Job {job_id} made by schedule hourly."
    rt.run_until_idle(timeout=20)
    page.refresh()
    row = page.table.value.set_index("name").loc["hourly"]
    assert row["job"] == str(job_id) and 'data-status="finished"' in row["status"]
    assert row["last"] == ""  # a run asked for is not a tick: the next stays when it was
    assert f"Job {job_id} made for a run asked by olga" in page.log.value["message"].tolist()
    assert queries.job(two.connection(), job_id)["schedule"].iloc[0] == "hourly"
    page.act("pause")
    assert page.message.object.startswith("Schedule hourly paused")
    assert page.table.value.set_index("name").loc["hourly", "enabled"] == "paused"
    assert buttons(page) == {"Run now": True, "Pause": False, "Resume": True}
    page.act("resume")
    assert page.table.value.set_index("name").loc["hourly", "enabled"] == "yes"
    messages = page.log.value["message"].tolist()
    assert messages[0].startswith("Resumed by olga") and messages[1].startswith("Paused by olga")


def test_a_refused_action_is_one_line_and_the_page_carries_on(rt, client):
    client.schedule("slow", python_spec("jobs:blocked", "schedules-busy"), every="1h")
    page = Schedules(client, user="olga")
    page.selected = "slow"
    page.act("run")
    job_id = int(page.message.object.split()[1])
    wait_for_status(rt, job_id, "running")
    page.refresh()
    assert not buttons(page)["Run now"]  # its last job runs and it never overlaps
    page.act("run")  # as if the button had been enabled in the browser
    refused = page.message.object
    assert page.message.alert_type == "danger" and "\n" not in refused
    assert f"job {job_id} of schedule slow is still running" in refused
    client.remove_schedule("slow")  # from elsewhere, under the page
    page.act("pause")
    assert page.message.alert_type == "danger" and "no schedule named 'slow'" in (
        page.message.object)
    assert "slow no longer exists" in page.title.object and page.table.value.empty
    assert page.empty_state.visible and not any(buttons(page).values())
    jobs.gate("schedules-busy").set()
    rt.wait(job_id, timeout=20)


def test_a_viewer_sees_no_enabled_button_and_is_refused(rt, two):
    dashboard = Dashboard(two, roles={"vera": "viewer"}, user="vera")
    dashboard.pages.active = 2
    page = dashboard.schedules
    page.table.selection = [0]
    assert page.selected == "hourly" and not any(buttons(page).values())
    for verb in ("run", "pause", "resume"):  # as if a button had been enabled
        page.act(verb)
        assert "operator role" in page.message.object
    assert two.schedule_info("hourly")["last_job_id"] is None
    assert two.schedule_info("hourly")["enabled"]


def test_the_page_is_built_when_first_opened_and_follows_changes(rt, client):
    dashboard = Dashboard(client)
    assert dashboard.schedules is None
    dashboard.pages.active = 2
    page = dashboard.schedules
    assert page is not None and page.empty_state.visible
    models = [page.table.get_root(), page.log.get_root()]
    built = [dict(model.configuration) for model in models]
    client.schedule("later", python_spec("jobs:noop"), every="30m")
    dashboard.refresh()
    assert page.table.value["name"].tolist() == ["later"] and not page.empty_state.visible
    page.selected = "later"
    assert len(page.log.value) == 1
    # the same column types as with no row: not rebuilt in the browser, losing rows
    assert [dict(model.configuration) for model in models] == built
    client.pause_schedule("later", by="someone-else")
    dashboard.refresh()
    assert page.table.value["enabled"].tolist() == ["paused"]
    assert page.log.value["message"].iloc[0].startswith("Paused by someone-else")
    assert not dashboard.error.visible


def test_the_retry_button_runs_a_failed_job_again_from_its_checkpoint(rt, client, tmp_path):
    job_id = rt.submit(fails_once, str(tmp_path / "marker")).id
    rt.run_until_idle(timeout=20)
    detail = JobDetail(client, job_id=job_id, user="olga")
    assert detail.status == "failed"
    assert {label for label, on in buttons(detail).items() if on} == {"Retry"}
    detail.request("retry")
    assert detail.message.object.startswith("Retry requested. Status now: ")
    rt.run_until_idle(timeout=20)
    wait_until(lambda: detail.refresh() or detail.status == "finished", timeout=10)
    assert not buttons(detail)["Retry"]
    messages = journal_messages(rt, job_id)
    assert "Retry requested by olga" in messages
    assert messages.count("starting at 0") == 1 and "starting at 3" in messages
    assert client.info(job_id).processed == 6


def test_the_general_tab_shows_the_schedule_and_the_retries(rt, client, tmp_path):
    client.schedule("made-it", python_spec("jobs:noop"), every="1h")
    made = client.run_schedule("made-it")
    rt.run_until_idle(timeout=20)
    detail = JobDetail(client, job_id=made)
    assert "<td>schedule</td><td>made-it</td>" in detail.fields.object
    assert "<td>retries</td>" not in detail.fields.object  # no retry policy
    job_id = rt.submit(fails_once, str(tmp_path / "marker"),
                       retry={"times": 3, "delay": 60}).id
    detail.job_id = job_id

    def queued_for_a_retry():
        detail.refresh()
        return "<td>retries</td><td>retry 1 of 3 due at " in detail.fields.object

    wait_until(queued_for_a_retry, timeout=20)
    retry_at = queries.job(client.connection(), job_id)["retry_at"].iloc[0]
    assert f"due at {str(retry_at)[:19]} UTC</td>" in detail.fields.object
    assert detail.status == "queued" and not buttons(detail)["Retry"]
    client.cancel(job_id)
    wait_until(lambda: detail.refresh() or detail.status == "canceled", timeout=10)
    assert "<td>retries</td><td>retried 1 of 3</td>" in detail.fields.object


def test_retry_these_retries_every_failed_job_of_the_selected_group(rt, client):
    ids = [rt.submit(always_fails, row).id for row in (7, 8, 9)]
    other = rt.submit(jobs.boom).id  # another group
    rt.run_until_idle(timeout=20)
    page = Analytics(client, user="olga")
    page.refresh(force=True)
    errors = page.failures.value["error"].tolist()
    assert page.retry.disabled  # nothing selected
    page.failures.selection = [errors.index("ValueError: row <n> is short")]
    assert page.group() == "ValueError: row <n> is short" and not page.retry.disabled
    page.refresh(force=True)
    assert page.group() == "ValueError: row <n> is short"  # kept through a refresh
    page.retry_group()
    assert page.retry_message.alert_type == "success"
    assert page.retry_message.object == (
        f"Retried 3 failed jobs of ValueError: row &lt;n&gt; is short: "
        f"{', '.join(map(str, ids))}.")
    rt.run_until_idle(timeout=20)
    for job_id in ids:
        assert "Retry requested by olga" in journal_messages(rt, job_id)
    assert rt.status(other).value == "failed"  # its group was not chosen
    page.failures.selection = []
    assert page.retry.disabled


def test_a_viewer_cannot_retry_a_group(rt, client):
    job_id = rt.submit(always_fails, 1).id
    rt.run_until_idle(timeout=20)
    dashboard = Dashboard(client, roles={"vera": "viewer"}, user="vera")
    dashboard.pages.active = 1
    page = dashboard.analytics
    page.failures.selection = [0]
    assert page.retry.disabled
    page.retry_group()  # as if the button had been enabled in the browser
    assert "operator role" in page.retry_message.object
    assert queries.commands(client.connection(), job_id).empty
    assert rt.status(job_id).value == "failed"
