"""Alert rules on a real runtime and database: each kind opens one alert per subject while
its condition holds and resolves it when it ends. Time is a parameter (the runtime's and
the watch's clock), so no test waits for a limit to pass."""

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime

import jobs
import pytest
from jobs import finished_runs, gate

from jobobs import Runtime, Status
from jobobs.access import alertrules
from jobobs.access.alerting import Watch
from jobobs.access.client import Client
from jobobs.access.submissions import python_spec
from jobobs.db.store import ts
from jobobs.model.errors import JobobsError
from jobobs.testing import ManualClock, wait_for_status, wait_until

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC).timestamp()


def rule(**fields):
    return alertrules.check({"name": fields.pop("name", fields["when"]), **fields})


def history(path, name, durations, rates=None, *, start=T0 - 86_400):
    """``jobs.finished_runs`` of ``name``, by default a day before the tests' clock."""
    finished_runs(path, name, durations, rates, start=start)


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def runtime(new_db, clock):
    with Runtime(new_db, workers=2, handle_signals=False, clock=clock,
                 stall_timeout=None) as rt:
        yield rt


class Told:
    """The ``send`` a watch is given: what it asked to send, in order."""

    def __init__(self):
        self.said = []

    def __call__(self, alert, event, targets):
        self.said.append((alert["id"], event, tuple(targets), alert))

    def events(self):
        return [(alert_id, event) for alert_id, event, _, _ in self.said]


def watch(runtime, clock, *rules, told=None, **options):
    return Watch(runtime.store, rules, send=told, clock=clock, **options)


def alerts(runtime):
    cursor = runtime.store.reader()
    cursor.execute("SELECT * FROM alerts ORDER BY id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def finish(runtime, handle):
    runtime.wait(handle.id, timeout=30)
    runtime.flush()


# -- failed and shutdown --------------------------------------------------------------------


def test_a_failed_job_opens_one_alert_a_retry_resolves_it_and_a_new_failure_opens_another(
        runtime, clock):
    told = Told()
    failed = rule(when="failed", jobs="bo*", notify=["json://hooks.example.com/a"])
    w = watch(runtime, clock, failed, told=told)
    failing = runtime.submit(jobs.boom)
    fine = runtime.submit(jobs.noop)
    finish(runtime, failing), finish(runtime, fine)
    opened, resolved = w.tick()
    assert [(a.kind, a.job_id, a.subject) for a in opened] == [
        ("failed", failing.id, f"job {failing.id} run 1")]
    assert opened[0].summary == f"boom (job {failing.id}) failed: ValueError: the input is broken"
    assert resolved == []
    assert w.tick() == ([], [])
    clock.now = T0 + 600
    assert w.tick() == ([], [])  # never again
    [row] = alerts(runtime)
    assert row["rule"] == "failed" and row["resolved_at"] is None and row["run"] == 1
    assert told.events() == [(row["id"], "opened")]
    alert = told.said[0][3]
    assert alert["status"] == "failed" and "the input is broken" in alert["error"]
    assert told.said[0][2] == ("json://hooks.example.com/a",)

    runtime.request(failing.id, "retry", by="ops")  # by hand: it runs, and fails again
    wait_for_status(runtime, failing.id, Status.QUEUED, Status.RUNNING, Status.FAILED)
    clock.now += 10
    runtime.flush()
    if runtime.status(failing.id) is not Status.FAILED:
        _, resolved = w.tick()
        assert [(a.id, why) for a, why in resolved] == [
            (row["id"], f"the job is {runtime.status(failing.id).label}")]
    finish(runtime, failing)
    opened, resolved = w.tick()
    if resolved:  # the retry ended before the watch saw it run: resolved with its run
        assert resolved[0][0].id == row["id"]
    assert [a.subject for a in opened] == [f"job {failing.id} run 2"]
    first, second = alerts(runtime)
    assert first["resolved_at"] is not None and second["resolved_at"] is None
    assert ("opened" in dict(told.events()).values()) and (row["id"], "resolved") in (
        told.events())


def test_jobs_that_ended_while_no_server_watched_are_alerted_once_at_start(new_db, clock):
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        rt.wait(rt.submit(jobs.boom).id, timeout=30)
        held = rt.submit(jobs.blocked, "no-watch")
        wait_for_status(rt, held.id, Status.RUNNING)
    # closed while it ran: shut down
    clock.now += 1800
    shutdown = rule(when="shutdown")
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        w = watch(rt, clock, rule(when="failed"), shutdown)
        opened, _ = w.tick()
        assert sorted(a.kind for a in opened) == ["failed", "shutdown"]
        [down] = [a for a in opened if a.kind == "shutdown"]
        assert down.job_id == held.id and "jobobs resume" in down.summary
        # a second watch (a restart) opens nothing again
        assert watch(rt, clock, rule(when="failed"), shutdown).tick() == ([], [])
        gate("no-watch").set()
        rt.resume(held.id)
        rt.wait(held.id, timeout=30)
        rt.flush()
        _, resolved = w.tick()
        assert [(a.id, why) for a, why in resolved] == [(down.id, "the job is Finished")]
    # past the lookback, a new rule finds nothing in what ended before it
    clock.now += 7200
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        assert watch(rt, clock, rule(name="again", when="shutdown")).tick() == ([], [])


# -- slow -------------------------------------------------------------------------------------


def test_a_run_longer_than_a_fixed_limit_alerts_while_it_runs(runtime, clock):
    w = watch(runtime, clock, rule(when="slow", after="10m"))
    held = runtime.submit(jobs.blocked, "fixed")
    wait_for_status(runtime, held.id, Status.RUNNING)
    runtime.flush()
    assert w.tick(T0 + 590) == ([], [])
    clock.now = T0 + 601
    opened, _ = w.tick()
    assert [a.summary for a in opened] == [
        f"blocked (job {held.id}) has run 10 min 01 s, longer than 10 min 00 s"]
    clock.now = T0 + 900
    assert w.tick() == ([], [])
    gate("fixed").set()
    finish(runtime, held)
    _, resolved = w.tick()
    assert [why for _, why in resolved] == ["the job is Finished"]


def test_slower_than_usual_is_measured_against_the_names_last_runs(new_db, clock):
    history(new_db, "blocked", [60, 50, 70, 65, 55], start=T0 - 86_400)
    history(new_db, "other", [1, 1, 1, 1], start=T0 - 80_000)
    with Runtime(new_db, workers=2, handle_signals=False, clock=clock,
                 stall_timeout=None) as rt:
        w = watch(rt, clock, rule(when="slow", times=2, runs=3))
        held = rt.submit(jobs.blocked, "usual")
        quick = rt.submit(jobs.blocked, "usual-other", name="other")
        wait_for_status(rt, held.id, Status.RUNNING)
        wait_for_status(rt, quick.id, Status.RUNNING)
        rt.flush()
        # the last 3 runs of blocked: 70, 65, 55 -> median 65 s; twice: 130 s
        assert w.tick(T0 + 1.5) == ([], [])  # other: 1.5 s, not over 2 x 1 s yet
        opened, _ = w.tick(T0 + 131)
        assert sorted((a.job_name, a.summary) for a in opened) == [
            ("blocked", f"blocked (job {held.id}) has run 2 min 11 s, 2.0 times its usual "
                        "1 min 05 s"),
            ("other", f"other (job {quick.id}) has run 2 min 11 s, 131.0 times its usual "
                      "1.0 s")]
        gate("usual").set(), gate("usual-other").set()
        clock.now = T0 + 200
        finish(rt, held), finish(rt, quick)
        _, resolved = w.tick()
        assert len(resolved) == 2
        # the finished run counts now: blocked's last 3 are 65, 55 and 200 -> 65 s
        assert w.usual.duration(rt.store.reader(), "blocked", 3) == 65
        assert w.usual.duration(rt.store.reader(), "other", 3) == 1
        again = rt.submit(jobs.blocked, "usual-2")
        wait_for_status(rt, again.id, Status.RUNNING)
        rt.flush()
        opened, _ = w.tick(T0 + 200 + 131)
        assert [a.job_id for a in opened] == [again.id]
        gate("usual-2").set()
        finish(rt, again)


def test_no_usual_without_three_earlier_runs(new_db, clock):
    history(new_db, "blocked", [1, 1])
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock,
                 stall_timeout=None) as rt:
        w = watch(rt, clock, rule(when="slow"))
        held = rt.submit(jobs.blocked, "few")
        wait_for_status(rt, held.id, Status.RUNNING)
        rt.flush()
        assert w.tick(T0 + 3600) == ([], [])
        gate("few").set()
        finish(rt, held)


def test_a_job_that_usually_takes_no_time_is_slower_when_it_hangs(new_db, clock):
    history(new_db, "blocked", [0, 0, 0])  # too quick to measure: a median of 0 s
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock,
                 stall_timeout=None) as rt:
        w = watch(rt, clock, rule(when="slow", times=2))
        held = rt.submit(jobs.blocked, "hangs")
        wait_for_status(rt, held.id, Status.RUNNING)
        rt.flush()
        assert w.tick(T0 + 0.001) == ([], [])  # 1 ms: not twice a millisecond yet
        opened, _ = w.tick(T0 + 600)
        assert [a.summary for a in opened] == [
            f"blocked (job {held.id}) has run 10 min 00 s, 600000.0 times its usual 0.0 s"]
        gate("hangs").set()
        finish(rt, held)


# -- rejects ----------------------------------------------------------------------------------


def test_rejects_past_a_count_carry_the_top_reasons_and_sample_lines(runtime, clock):
    w = watch(runtime, clock, rule(when="rejects", count=5))
    done = runtime.submit(jobs.steps, count=20, delay=0, reject_every=2)
    few = runtime.submit(jobs.steps, count=20, delay=0, reject_every=5)
    finish(runtime, done), finish(runtime, few)
    opened, _ = w.tick()
    [alert] = opened
    assert alert.job_id == done.id
    assert alert.summary == f"steps (job {done.id}) rejected 10 rows (the limit: 5)"
    assert alert.detail.splitlines() == [
        "Top reject reasons:", "  10 x bad item in column i", "Sample lines:",
        '  items:1: {"i": 0}', '  items:3: {"i": 2}', '  items:5: {"i": 4}']
    assert w.tick(T0 + 60) == ([], [])  # a finished job's rejects stay: still open
    assert alerts(runtime)[0]["resolved_at"] is None


def test_a_reject_rate_is_judged_once_enough_rows_are_processed(runtime, clock):
    w = watch(runtime, clock, rule(when="rejects", rate=0.3, min_rows=15))
    small = runtime.submit(jobs.steps, count=10, delay=0, reject_every=2)   # 50 % of 10
    large = runtime.submit(jobs.steps, count=20, delay=0, reject_every=2)   # 50 % of 20
    finish(runtime, small), finish(runtime, large)
    opened, _ = w.tick()
    assert [(a.job_id, a.summary) for a in opened] == [
        (large.id, f"steps (job {large.id}) rejected 50.0% of its rows (10 of 20; the "
                   "limit: 30.0%)")]


def test_a_reject_rate_far_above_the_usual_alerts_while_the_job_runs(new_db, clock):
    history(new_db, "steps", [5] * 5, rates=[0.1, 0.1, 0.12, 0.08, 0.1])
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        w = watch(rt, clock, rule(when="rejects", times=3, min_rows=10))
        usual = rt.submit(jobs.steps, count=20, delay=0, reject_every=5)   # 20 %: < 3 x 10 %
        finish(rt, usual)
        assert w.tick() == ([], [])
        bad = rt.submit(jobs.steps, count=40, delay=0.05, reject_every=2)  # 50 %
        wait_until(lambda: (rt.flush() or rt.store.job(bad.id)["processed"]) >= 10,
                   timeout=30, message="ten rows processed")
        assert rt.status(bad.id) is Status.RUNNING or rt.status(bad.id) is Status.FINISHED
        opened, _ = w.tick()
        assert [a.job_id for a in opened] == [bad.id]
        assert "times its usual 10.0%" in opened[0].summary
        finish(rt, bad)


def test_rejects_rewound_by_a_retry_resolve_the_alert(runtime, clock):
    w = watch(runtime, clock, rule(when="rejects", count=3))
    done = runtime.submit(jobs.steps, count=10, delay=0, reject_every=2)
    finish(runtime, done)
    [alert], _ = w.tick()
    with runtime.store.transaction() as con:  # as a start-over leaves it
        con.execute("UPDATE jobs SET rejected = 1, updated_at = ? WHERE id = ?",
                    [ts(T0 + 30), done.id])
    _, resolved = w.tick(T0 + 40)
    assert [(a.id, why) for a, why in resolved] == [
        (alert.id, "its rejects are under the rule's limit")]


# -- stalled ----------------------------------------------------------------------------------


def test_a_job_with_no_sign_of_life_is_stalled_until_it_moves(runtime, clock):
    w = watch(runtime, clock, rule(when="stalled", after="5m"))
    quiet = runtime.submit(jobs.hold_then_run, "stall")
    wait_for_status(runtime, quiet.id, Status.RUNNING)
    runtime.flush()
    assert w.tick(T0 + 299) == ([], [])
    opened, _ = w.tick(T0 + 301)
    assert [a.summary for a in opened] == [
        f"hold-then-run (job {quiet.id}) has shown no progress, journal line or checkpoint "
        "for 5 min 01 s"]
    clock.now = T0 + 400
    gate("stall").set()
    finish(runtime, quiet)
    _, resolved = w.tick()
    assert [why for _, why in resolved] == ["the job is Finished"]


def test_a_journal_line_is_a_sign_of_life(runtime, clock):
    w = watch(runtime, clock, rule(when="stalled", after="5m"))
    chatty = runtime.submit(jobs.hold_then_run, "chatty")
    wait_for_status(runtime, chatty.id, Status.RUNNING)
    clock.now = T0 + 250
    runtime.ledger.line(chatty.id, "INFO", "still here")
    runtime.flush()
    assert w.tick(T0 + 400) == ([], [])  # 150 s after its line
    opened, _ = w.tick(T0 + 551)
    assert len(opened) == 1 and "5 min 01 s" in opened[0].summary
    gate("chatty").set()
    finish(runtime, chatty)


# -- schedules: late and missed ---------------------------------------------------------------


def test_a_schedules_run_that_waits_for_a_worker_is_late_and_one_not_finished_is_missed(
        new_db, clock):
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock,
                 stall_timeout=None) as rt:
        client = Client.embedded(rt)
        late = rule(when="late", after="2m", schedule="night*")
        missed = rule(when="missed", after="10m")
        w = watch(rt, clock, late, missed)
        hog = rt.submit(jobs.blocked, "hog")  # the only worker
        wait_for_status(rt, hog.id, Status.RUNNING)
        client.schedule("nightly", python_spec("jobs:blocked", "nightly"), every="1d")
        made = client.run_schedule("nightly")
        rt.flush()
        assert w.tick(T0 + 60) == ([], [])
        opened, _ = w.tick(T0 + 121)
        assert [(a.kind, a.job_id, a.schedule) for a in opened] == [("late", made, "nightly")]
        assert "has not started 2 min 01 s after its tick" in opened[0].summary
        gate("hog").set()
        wait_for_status(rt, made, Status.RUNNING)
        rt.flush()
        _, resolved = w.tick(T0 + 200)
        assert [a.kind for a, _ in resolved] == ["late"]
        opened, _ = w.tick(T0 + 601)
        assert [(a.kind, a.job_id) for a in opened] == [("missed", made)]
        assert "(it is Execution in progress)" in opened[0].summary
        gate("nightly").set()
        clock.now = T0 + 700
        rt.wait(made, timeout=30)
        rt.flush()
        _, resolved = w.tick()
        assert [(a.kind, why) for a, why in resolved] == [("missed", "the job is Finished")]


def test_a_tick_that_made_no_run_is_late_and_missed(runtime, clock):
    client = Client.embedded(runtime)
    client.schedule("hourly", python_spec("jobs:noop"), every="1h")
    runtime.flush()
    due = T0 + 3600  # no scheduler runs in this runtime: the tick never comes
    w = watch(runtime, clock, rule(when="late", after="1m"), rule(when="missed", after="5m"))
    assert w.tick(due + 59) == ([], [])
    opened, _ = w.tick(due + 61)
    assert [(a.kind, a.job_id, a.subject) for a in opened] == [
        ("late", None, "schedule hourly tick 2026-03-28 13:00:00")]
    assert opened[0].summary.startswith("schedule hourly: no run started for its tick of "
                                        "2026-03-28 13:00:00 UTC, 1 min 01 s ago")
    assert [a.kind for a in w.tick(due + 301)[0]] == ["missed"]
    client.pause_schedule("hourly")
    runtime.flush()
    _, resolved = w.tick(due + 400)
    assert sorted(a.kind for a, _ in resolved) == ["late", "missed"]


# -- scope, targets and failures --------------------------------------------------------------


def test_a_rules_scope_is_its_job_name_patterns_and_schedule(runtime, clock):
    client = Client.embedded(runtime)
    client.schedule("feed", python_spec("jobs:boom"), every="1d")
    by_schedule = client.run_schedule("feed")
    by_hand = runtime.submit(jobs.boom)
    other = runtime.submit(jobs.boom, name="import orders")
    for job_id in (by_schedule, by_hand.id, other.id):
        runtime.wait(job_id, timeout=30)
    runtime.flush()
    w = watch(runtime, clock, rule(name="feeds", when="failed", schedule="fe*"),
              rule(name="imports", when="failed", jobs=["import *", "export *"]),
              rule(name="all", when="failed"))
    opened, _ = w.tick()
    assert sorted((a.rule, a.job_id) for a in opened) == sorted([
        ("feeds", by_schedule), ("imports", other.id), ("all", by_schedule),
        ("all", by_hand.id), ("all", other.id)])
    assert {a.schedule for a in opened if a.job_id == by_schedule} == {"feed"}


def test_a_write_that_fails_is_logged_and_tried_again_at_the_next_tick(runtime, clock, caplog):
    told = Told()
    w = watch(runtime, clock, rule(when="failed", notify=["json://h.example.com/"]),
              told=told, every=0.05)
    with runtime.store.transaction() as con:
        con.execute("ALTER TABLE alerts RENAME TO alerts_kept")
        con.execute("CREATE TABLE alerts (id BIGINT)")  # not what the watch writes
    failing = runtime.submit(jobs.boom)
    finish(runtime, failing)
    with caplog.at_level(logging.ERROR, logger="jobobs.access.alerting"):
        w.start()
        try:
            wait_until(lambda: any("alert rules could not be evaluated" in r.getMessage()
                                   for r in caplog.records), timeout=30,
                       message="the failure logged")
            assert told.said == []  # nothing told of an alert that was not written
            assert runtime.status(failing.id) is Status.FAILED
            with runtime.store.transaction() as con:
                con.execute("DROP TABLE alerts")
                con.execute("ALTER TABLE alerts_kept RENAME TO alerts")
            wait_until(lambda: alerts(runtime), timeout=30, message="the alert written")
        finally:
            w.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "jobobs.access.alerting"]
    assert len(messages) == 1  # once, not every tick
    assert [event for _, event in told.events()] == ["opened"]


def test_a_notifier_that_raises_changes_nothing_else(runtime, clock, caplog):
    def broken(alert, event, targets):
        raise RuntimeError("the queue is gone")

    w = watch(runtime, clock, rule(when="failed", notify=["json://h.example.com/"]),
              told=broken)
    failing = runtime.submit(jobs.boom)
    finish(runtime, failing)
    with caplog.at_level(logging.ERROR, logger="jobobs.access.alerting"):
        opened, _ = w.tick()
    assert len(opened) == 1 and len(alerts(runtime)) == 1
    assert "could not be queued: the queue is gone" in caplog.text


# -- the rules file ---------------------------------------------------------------------------


RULES_TOML = """
notify = ["json://hooks.example.com/all"]

[[rules]]
name = "imports failed"
when = "failed"
jobs = ["import *"]
notify = ["mailto://ops@example.com"]

[[rules]]
name = "slow"
when = "slow"
times = 3
runs = 10

[[rules]]
name = "nightly late"
when = "late"
schedule = "nightly-*"
after = "15m"
resolved = false
"""

RULES_YAML = """
rules:
  - name: rejects
    when: rejects
    rate: 0.05
    count: 1000
  - name: stalled
    when: stalled
    after: 600
"""


def test_rules_are_read_from_toml_and_yaml(tmp_path):
    toml = tmp_path / "alerts.toml"
    toml.write_text(RULES_TOML)
    imports, slow, late = alertrules.read(str(toml), targets=["json://cli.example.com/"])
    assert imports.jobs == ("import *",) and imports.notify == (
        "mailto://ops@example.com", "json://hooks.example.com/all", "json://cli.example.com/")
    assert (slow.when, slow.times, slow.runs, slow.after) == ("slow", 3.0, 10, None)
    assert (late.schedule, late.after, late.resolved) == ("nightly-*", 900.0, False)
    assert late.watches(None, "nightly-orders") and not late.watches(None, "hourly")
    assert imports.watches("import orders", None) and not imports.watches("export x", None)
    yaml = tmp_path / "alerts.yaml"
    yaml.write_text(RULES_YAML)
    rejects, stalled = alertrules.read(str(yaml))
    assert (rejects.rate, rejects.count, rejects.min_rows) == (0.05, 1000, 100)
    assert stalled.after == 600.0


@pytest.mark.parametrize(("content", "message"), [
    ("[[rules]]\nname = 'x'\nwhen = 'exploded'\n",
     "rule 1 ('x'): 'when' is one of failed, shutdown, slow, rejects, stalled, late, missed, "
     "not 'exploded'"),
    ("[[rules]]\nname = 'x'\nwhen = 'failed'\nafter = '1m'\n",
     "rule 1 ('x'): a 'failed' rule takes jobs, name, notify, resolved, schedule, when; not "
     "after"),
    ("[[rules]]\nname = 'x'\nwhen = 'stalled'\n",
     "rule 1 ('x'): a 'stalled' rule needs 'after' (such as \"10m\")"),
    ("[[rules]]\nname = 'x'\nwhen = 'slow'\nafter = '1h'\ntimes = 2\n",
     "rule 1 ('x'): a 'slow' rule takes 'after' (a fixed limit) or 'times' (x the usual), "
     "not both"),
    ("[[rules]]\nname = 'x'\nwhen = 'rejects'\n",
     "rule 1 ('x'): a 'rejects' rule needs 'count', 'rate' or 'times'"),
    ("[[rules]]\nname = 'x'\nwhen = 'rejects'\nrate = 5\n",
     "rule 1 ('x'): 'rate' is a number of at least 0 and at most 1, not 5"),
    ("[[rules]]\nname = 'x'\nwhen = 'stalled'\nafter = 'soon'\n",
     "rule 1 ('x'): 'after': 'soon' is not an interval such as 30s, 5m, 1h or 1d"),
    ("[[rules]]\nname = 'x'\nwhen = 'failed'\n[[rules]]\nname = 'x'\nwhen = 'shutdown'\n",
     "rule 2 ('x'): another rule has that name"),
    ("[[rules]]\nwhen = 'failed'\n",
     "rule 1: its name is a text of 1 to 200 characters, not None"),
    ("[[rules]]\nname = 'x'\nwhen = 'late'\njobs = ['a']\nafter = 60\n",
     "rule 1 ('x'): a 'late' rule takes after, name, notify, resolved, schedule, when; not "
     "jobs"),
    ("rule = 1\n", "the file holds 'rules' and 'notify', not rule"),
    ("notify = ['json://a.example.com/']\n",
     "the file has no rules: give at least one [[rules]] table"),
    ("[[rules]\n", "not a TOML file"),
])
def test_a_bad_rules_file_is_one_line_naming_the_file_and_the_rule(tmp_path, content,
                                                                   message):
    path = tmp_path / "alerts.toml"
    path.write_text(content)
    with pytest.raises(JobobsError) as caught:
        alertrules.read(str(path))
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_a_missing_rules_file_and_bad_yaml_are_one_line(tmp_path):
    with pytest.raises(JobobsError, match=r"cannot read the alert rules .*: No such file"):
        alertrules.read(str(tmp_path / "none.toml"))
    bad = tmp_path / "alerts.yml"
    bad.write_text("rules: [\n  - name: x\n")
    with pytest.raises(JobobsError, match=r"alerts.yml: not a YAML file: ") as caught:
        alertrules.read(str(bad))
    assert "\n" not in str(caught.value)


def test_the_default_rules_are_failed_shutdown_and_slower_than_usual():
    assert [(r.name, r.when, r.times, r.runs) for r in alertrules.DEFAULT_RULES] == [
        ("failed", "failed", None, 20), ("shut down", "shutdown", None, 20),
        ("slower than usual", "slow", 2.0, 20)]


def test_a_purge_resolves_the_alerts_of_purged_jobs_then_purges_them_once_resolved(
        runtime, clock):
    w = watch(runtime, clock, rule(when="failed"))
    failing = runtime.submit(jobs.boom)
    finish(runtime, failing)
    [alert], _ = w.tick()
    with runtime.store.transaction() as con:
        con.execute("""INSERT INTO notifications VALUES (1, ?, 'opened', 'json://h/', 'sent',
                       1, NULL, ?, ?)""", [alert.id, ts(T0), ts(T0)])
    assert runtime.store.purge(before=T0 + 10)["alerts"] == 0  # open: kept
    assert w.tick(T0 + 20) == ([], [])  # looked for once a minute
    _, resolved = w.tick(T0 + 61)
    assert [(a.id, why) for a, why in resolved] == [(alert.id, "the job was purged")]
    counts = runtime.store.purge(before=T0 + 70)
    assert (counts["alerts"], counts["notifications"]) == (1, 1)
    assert alerts(runtime) == [] and w.tick(T0 + 80) == ([], [])


def test_alerts_are_numbered_after_any_row_already_written(runtime, clock):
    w = watch(runtime, clock, rule(when="failed"))
    w.tick()  # loaded: nothing yet
    with runtime.store.transaction() as con:  # another writer (an import of old alerts)
        con.execute("""INSERT INTO alerts (id, rule, kind, subject, summary, opened_at,
                       resolved_at) VALUES (90001, 'old', 'failed', 'job 0 run 1', 'old',
                       ?, ?)""", [ts(T0), ts(T0)])
    finish(runtime, runtime.submit(jobs.boom))
    [alert], _ = w.tick()
    assert alert.id == 90002 and [a["id"] for a in alerts(runtime)] == [90001, 90002]


# -- from a review ----------------------------------------------------------------------------


def test_open_alerts_of_a_rule_no_longer_given_are_resolved_at_start(runtime, clock):
    finish(runtime, runtime.submit(jobs.boom))
    [old], _ = watch(runtime, clock, rule(name="failed", when="failed")).tick()
    renamed = watch(runtime, clock, rule(name="imports failed", when="failed"))
    opened, _ = renamed.tick()
    assert [a.rule for a in opened] == ["imports failed"]
    first, second = alerts(runtime)
    assert (first["id"], first["resolution"]) == (
        old.id, "its rule is no longer in the server's rules")
    assert first["resolved_at"] is not None and second["resolved_at"] is None


def test_a_job_changed_long_before_a_restart_has_its_alert_judged_again(new_db, clock):
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        held = rt.submit(jobs.blocked, "long-ago")
        wait_for_status(rt, held.id, Status.RUNNING)
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        [down], _ = watch(rt, clock, rule(when="shutdown")).tick()
        rt.cancel(held.id)  # by hand, with no server watching
        wait_for_status(rt, held.id, Status.CANCELED)
        rt.flush()
    clock.now += 7 * 86_400
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        _, resolved = watch(rt, clock, rule(when="shutdown")).tick()
        assert [(a.id, why) for a, why in resolved] == [(down.id, "the job is Canceled")]


def test_a_resumed_run_counts_its_active_time_not_its_pause(runtime, clock):
    w = watch(runtime, clock, rule(when="slow", after="10m"))
    held = runtime.submit(jobs.blocked, "resumed")
    wait_for_status(runtime, held.id, Status.RUNNING)
    clock.now = T0 + 100
    runtime.pause(held.id)
    wait_for_status(runtime, held.id, Status.PAUSED)
    clock.now = T0 + 86_400
    runtime.resume(held.id)
    wait_for_status(runtime, held.id, Status.RUNNING)
    runtime.flush()
    assert runtime.store.job(held.id)["run_count"] == 2
    assert w.tick(T0 + 86_400 + 10) == ([], [])      # 100 s + 10 s
    assert w.tick(T0 + 86_400 + 499) == ([], [])     # 100 s + 499 s
    opened, _ = w.tick(T0 + 86_400 + 501)
    assert [a.subject for a in opened] == [f"job {held.id} run 2"]
    assert "has run 10 min 01 s" in opened[0].summary
    gate("resumed").set()
    finish(runtime, held)


def test_a_clock_set_back_still_sees_what_changes(runtime, clock):
    w = watch(runtime, clock, rule(when="failed"))
    assert w.tick(T0 + 1000) == ([], [])
    clock.now = T0 + 500  # set back by 500 s
    finish(runtime, runtime.submit(jobs.boom))
    assert len(w.tick(T0 + 510)[0]) == 1


def test_a_purged_job_alerted_on_does_not_give_its_id_to_a_new_job(new_db, clock):
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        failing = rt.submit(jobs.boom)
        finish(rt, failing)
        w = watch(rt, clock, rule(when="failed"))
        w.tick()
        rt.store.purge(before=T0 + 10)
        assert rt.store.reader().execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    with Runtime(new_db, workers=1, handle_signals=False, clock=clock) as rt:
        again = rt.submit(jobs.boom)
        assert again.id == failing.id + 1
        finish(rt, again)
        opened, resolved = watch(rt, clock, rule(when="failed")).tick(T0 + 400)
        assert [a.job_id for a in opened] == [again.id]
        assert [why for _, why in resolved] == ["the job was purged"]


def test_an_ack_of_an_id_out_of_range_is_one_line(runtime):
    from jobobs.execution.loop import _acknowledge

    client = Client.embedded(runtime)
    for bad in (0, -3, 2 ** 70, "7", True):
        with pytest.raises(JobobsError, match="an alert's id is a positive number"):
            client.ack(bad)
    with pytest.raises(JobobsError, match="there is no alert 12"):
        client.ack(12)
    for spec in ("x", "99999999999999999999999", "0"):
        assert _acknowledge(runtime, spec, "ops").startswith(
            "refused: an alert's id is a positive number")


def test_a_running_jobs_duration_is_right_whatever_the_machines_time_zone(tmp_path):
    script = """
import sys, time
from jobobs.db.store import Store, ts
store = Store(sys.argv[1])
with store.transaction() as con:
    con.execute("INSERT INTO jobs (id, name, kind, status, created_at, updated_at, started_at)"
                " VALUES (1, 'x', 'python', 'running', ?, ?, ?)", [ts(time.time() - 10)] * 3)
print(store.reader().execute("SELECT duration_s FROM job_runs").fetchone()[0])
"""
    for zone in ("Asia/Tokyo", "America/New_York"):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{zone[:4]}.db")],
                              capture_output=True, text=True,
                              env={**os.environ, "TZ": zone}, timeout=120)
        assert done.returncode == 0, done.stderr
        assert 9 <= float(done.stdout) <= 120, (zone, done.stdout)
