"""Schedules: cron and interval ticks on the runtime's clock (a parameter here: no test
waits minutes), runs that never overlap, catch-up after downtime, requests and their
refusals."""

import json
import shutil
from datetime import UTC, datetime

import pytest
from jobs import gate

from jobobs import JobobsError, Runtime, Status
from jobobs.access.client import Client
from jobobs.access.submissions import python_spec
from jobobs.model.retries import Retry
from jobobs.testing import ManualClock, journal_messages, wait_for_status, wait_until

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC).timestamp()


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def runtime(new_db, clock):
    with Runtime(new_db, workers=2, handle_signals=False, clock=clock, run_schedules=True) as rt:
        yield rt


@pytest.fixture
def client(runtime):
    return Client.embedded(runtime)


def advance(runtime, clock, to: float) -> None:
    """Move the clock and let the scheduler look (the control loop would, a moment later)."""
    clock.now = to
    runtime.schedules.tick(force=True)
    runtime.flush()


def schedule_jobs(runtime, name):
    return [row[0] for row in runtime.store.reader().execute(
        "SELECT id FROM jobs WHERE schedule = ? ORDER BY id", [name]).fetchall()]


def log_lines(client, name):
    return list(reversed(client.schedule_log(name)["message"]))


def settle(runtime):
    runtime.run_until_idle(30)


def test_an_interval_schedule_runs_once_per_tick_on_time(runtime, clock, client):
    info = client.schedule("every-30s", python_spec("jobs:noop"), every="30s")
    assert info["next_run_at"].to_pydatetime().replace(tzinfo=UTC).timestamp() == T0 + 30
    advance(runtime, clock, T0 + 29.9)
    assert schedule_jobs(runtime, "every-30s") == []
    advance(runtime, clock, T0 + 30)
    (first,) = schedule_jobs(runtime, "every-30s")
    settle(runtime)
    advance(runtime, clock, T0 + 45)  # no new tick, however often it looks
    advance(runtime, clock, T0 + 60.5)
    settle(runtime)
    jobs = schedule_jobs(runtime, "every-30s")
    assert len(jobs) == 2 and jobs[0] == first
    row = runtime.store.reader().execute(
        "SELECT next_run_at, last_run_at, last_job_id FROM schedules").fetchone()
    assert (row[0], row[1], row[2]) == (datetime(2026, 3, 28, 12, 1, 30),
                                        datetime(2026, 3, 28, 12, 1), jobs[1])
    assert runtime.job(jobs[1]).status is Status.FINISHED
    assert runtime.job(jobs[1]).created_by == "scheduler"
    assert ("Made by schedule every-30s for its tick of 2026-03-28 12:01:00 UTC"
            in journal_messages(runtime, jobs[1]))
    assert f"Job {jobs[1]} made for its tick of 2026-03-28 12:01:00 UTC" in log_lines(
        client, "every-30s")


def test_a_cron_schedule_runs_at_its_times_in_its_time_zone(runtime, clock, client):
    # 02:00 in Paris: on 29 March 2026 the clocks go from 02:00 to 03:00
    client.schedule("nightly", python_spec("jobs:noop"), cron="0 2 * * *", tz="Europe/Paris")
    next_run = client.schedule_info("nightly")["next_run_at"].to_pydatetime()
    assert next_run == datetime(2026, 3, 29, 1, 0)  # 03:00 CEST, the first 2 o'clock after
    advance(runtime, clock, at("2026-03-29T00:59:59"))
    assert schedule_jobs(runtime, "nightly") == []
    advance(runtime, clock, at("2026-03-29T01:00:00"))
    assert len(schedule_jobs(runtime, "nightly")) == 1
    assert client.schedule_info("nightly")["next_run_at"].to_pydatetime() == datetime(
        2026, 3, 30, 0, 0)  # 02:00 CEST


def test_a_tick_while_the_last_run_goes_on_is_skipped(runtime, clock, client):
    client.schedule("no-overlap", python_spec("jobs:blocked", "overlap"), every="1m")
    advance(runtime, clock, T0 + 60)
    (first,) = schedule_jobs(runtime, "no-overlap")
    wait_for_status(runtime, first, Status.RUNNING)
    advance(runtime, clock, T0 + 120)
    advance(runtime, clock, T0 + 180)
    assert schedule_jobs(runtime, "no-overlap") == [first]
    skipped = [line for line in log_lines(client, "no-overlap") if "skipped" in line]
    assert skipped == [f"Tick of 2026-03-28 12:02:00 UTC skipped: job {first} is still "
                       "running", f"Tick of 2026-03-28 12:03:00 UTC skipped: job {first} "
                       "is still running"]
    gate("overlap").set()
    assert runtime.wait(first, 30).status is Status.FINISHED
    advance(runtime, clock, T0 + 240)
    assert len(schedule_jobs(runtime, "no-overlap")) == 2


def test_with_overlap_queue_one_run_waits_for_the_last(runtime, clock, client):
    client.schedule("queued", python_spec("jobs:blocked", "queue"), every="1m",
                    overlap="queue")
    advance(runtime, clock, T0 + 60)
    (first,) = schedule_jobs(runtime, "queued")
    wait_for_status(runtime, first, Status.RUNNING)
    for minute in (2, 3, 4):  # three ticks: one run waits, the others merge into it
        advance(runtime, clock, T0 + 60 * minute)
    assert client.schedule_info("queued")["waiting"] == 1
    assert schedule_jobs(runtime, "queued") == [first]
    gate("queue").set()
    runtime.wait(first, 30)
    wait_until(lambda: (runtime.schedules.tick(force=True),
                        len(schedule_jobs(runtime, "queued")) == 2)[1], timeout=30)
    second = schedule_jobs(runtime, "queued")[1]
    assert runtime.wait(second, 30).status is Status.FINISHED
    assert client.schedule_info("queued")["waiting"] == 0
    lines = log_lines(client, "queued")
    assert sum("merged into the run already waiting" in line for line in lines) == 2


@pytest.mark.parametrize(("catch_up", "runs"), [("none", 0), ("one", 1), ("all", 10)])
def test_ticks_missed_while_no_server_ran_are_caught_up_as_asked(db, catch_up, runs):
    clock = ManualClock(T0)
    with Runtime(db, workers=1, handle_signals=False, clock=clock, run_schedules=True) as rt:
        Client.embedded(rt).schedule("hourly", python_spec("jobs:noop"), every="1h",
                                     catch_up=catch_up)
    clock.now = T0 + 10 * 3600 + 600  # ten ticks passed while it was down
    with Runtime(db, workers=1, handle_signals=False, clock=clock, run_schedules=True) as rt:
        client = Client.embedded(rt)
        wait_until(lambda: (rt.schedules.tick(force=True), rt.flush(),
                            len(schedule_jobs(rt, "hourly")) >= runs
                            and client.schedule_info("hourly")["waiting"] == 0)[-1],
                   timeout=60)
        rt.run_until_idle(30)
        made = schedule_jobs(rt, "hourly")
        assert len(made) == runs
        info = client.schedule_info("hourly")
        assert info["last_job_id"] == (made[-1] if made else None)
        assert info["next_run_at"].to_pydatetime() == datetime(2026, 3, 28, 23, 0)
        lines = log_lines(client, "hourly")
    assert not [line for line in lines if "could not" in line]
    assert sum(line.startswith("Job ") and "made for" in line for line in lines) == runs
    missed = [line for line in lines if "missed" in line]
    if catch_up == "all":
        assert "9 missed run(s) wait to run one after another (catch-up all)" in lines
    else:
        assert missed and missed[0].startswith(f"{10 - runs} run(s) missed from "
                                               "2026-03-28 13:00:00 UTC")


def test_a_schedule_in_a_runtime_that_does_not_run_them_makes_no_job(db, clock):
    with Runtime(db, workers=1, handle_signals=False, clock=clock) as rt:
        client = Client.embedded(rt)
        client.schedule("quiet", python_spec("jobs:noop"), every="10s")
        clock.now += 3600
        rt.schedules.tick(force=True)
        rt.flush()
        assert schedule_jobs(rt, "quiet") == []
        assert client.schedule_info("quiet")["next_run_at"].to_pydatetime() == datetime(
            2026, 3, 28, 12, 0, 10)


def test_pause_resume_run_and_remove(runtime, clock, client):
    client.schedule("ops", python_spec("jobs:noop"), every="1m")
    assert client.pause_schedule("ops") == "paused"
    with pytest.raises(JobobsError, match="paused already"):
        client.pause_schedule("ops")
    advance(runtime, clock, T0 + 300)
    assert schedule_jobs(runtime, "ops") == []  # paused: no tick runs
    assert client.resume_schedule("ops") == "resumed"
    assert client.schedule_info("ops")["next_run_at"].to_pydatetime() == datetime(
        2026, 3, 28, 12, 6)  # from now: the ticks while paused are not run
    job_id = client.run_schedule("ops")
    assert schedule_jobs(runtime, "ops") == [job_id]
    assert runtime.wait(job_id, 30).status is Status.FINISHED
    assert client.schedule_info("ops")["last_job_id"] == job_id
    assert client.remove_schedule("ops") == "removed"
    assert client.schedules().empty
    with pytest.raises(JobobsError, match="no schedule named 'ops'"):
        client.run_schedule("ops")
    assert runtime.job(job_id).schedule == "ops"  # its jobs and its log stay
    assert any(line.startswith("Removed by") for line in log_lines(client, "ops"))


def test_run_now_is_refused_while_the_last_run_goes_on(runtime, clock, client):
    client.schedule("busy", python_spec("jobs:blocked", "busy"), every="1h")
    first = client.run_schedule("busy")
    wait_for_status(runtime, first, Status.RUNNING)
    with pytest.raises(JobobsError, match=f"job {first} of schedule busy is still running"):
        client.run_schedule("busy")
    gate("busy").set()
    runtime.wait(first, 30)


def test_a_schedules_retry_policy_goes_with_its_jobs(runtime, clock, client):
    client.schedule("retried", python_spec("jobs:boom"), every="1m",
                    retry=Retry(2, delay=3600))
    assert client.schedule_info("retried")["retries"] == 2
    advance(runtime, clock, T0 + 60)
    (job_id,) = schedule_jobs(runtime, "retried")
    wait_until(lambda: runtime.job(job_id).retried == 1, timeout=30)
    info = runtime.job(job_id)
    assert info.status is Status.QUEUED and info.retries == 2
    advance(runtime, clock, T0 + 120)  # the retry waits: the next tick is skipped
    assert schedule_jobs(runtime, "retried") == [job_id]


def test_a_schedules_last_run_shut_down_by_a_stop_resumes_at_the_restart(db, clock):
    with Runtime(db, workers=1, handle_signals=False, clock=clock, run_schedules=True,
                 shutdown_timeout=10) as rt:
        Client.embedded(rt).schedule("long", python_spec("jobs:steps", 100, 0.02),
                                     every="1h")
        job_id = Client.embedded(rt).run_schedule("long")
        wait_until(lambda: (rt.job(job_id).progress_current or 0) > 5, timeout=30)
    with Runtime(db, workers=1, handle_signals=False, clock=clock, run_schedules=True) as rt:
        assert rt.wait(job_id, 60).status is Status.FINISHED
        client = Client.embedded(rt)
        assert any("resumes from its checkpoint" in line for line in log_lines(client, "long"))


BAD = [
    ({"cron": "61 * * * *"}, "is not a cron expression"),
    ({"cron": "0 0 30 2 *"}, "never runs"),
    ({"cron": "* * * * *\nrm -rf /"}, "one short line"),
    ({"every": "0s"}, "from 1 s to 366 days"),
    ({"every": "5 minutes"}, "is not an interval"),
    ({"every": 1e12}, "from 1 s to 366 days"),
    ({"every": "1m", "cron": "* * * * *"}, "give one"),
    ({}, "give one"),
    ({"every": "1m", "tz": "../../etc/passwd"}, "is not a time zone"),
    ({"every": "1m", "overlap": "both"}, "overlap is one of"),
    ({"every": "1m", "catch_up": "some"}, "catch-up is one of"),
    ({"every": "1m", "retry": {"times": 1000}}, "retries must be"),
    ({"every": "1m", "colour": "red"}, "unknown schedule field"),
    ({"every": "1m", "enabled": "false"}, "enabled is true or false"),
    ({"every": 10**400}, "refused"),
]


@pytest.mark.parametrize(("fields", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_schedule_is_refused_with_one_clear_line(runtime, client, fields, message):
    request = {"verb": "add", "name": "bad", "spec": python_spec("jobs:noop"), **fields}
    outcome, job_id = runtime.schedules.apply(json.dumps(request), "test")
    assert outcome.startswith("refused: ") and message in outcome and job_id is None
    assert "\n" not in outcome
    assert client.schedules().empty


@pytest.mark.parametrize(("request_text", "message"), [
    ("not json", "refused: "),
    ('{"verb": "explode", "name": "x"}', "verb is one of"),
    ('{"verb": "add", "name": ""}', "must not be empty"),
    ('{"verb": "add", "name": "x", "every": "1m", "spec": {"kind": "shell"}}', "kind is one"),
    ('{"verb": "add", "name": "x", "every": "1m", "spec": {"kind": "python", '
     '"function": "jobs:nowhere"}}', "cannot be found"),
    ('{"verb": "add", "name": "x", "every": "1m", "spec": {"kind": "python", '
     '"function": "jobs:noop", "args": [1, 2]}}', "cannot take these arguments"),
    ('{"verb": "pause", "name": "nobody"}', "no schedule named"),
])
def test_a_bad_request_is_refused_and_the_runtime_carries_on(runtime, client,
                                                              request_text, message):
    outcome, _ = runtime.schedules.apply(request_text, "test")
    assert outcome.startswith("refused: ") and message in outcome
    client.schedule("fine", python_spec("jobs:noop"), every="1m")
    assert list(client.schedules()["name"]) == ["fine"]


def test_a_name_given_twice_is_refused(client):
    client.schedule("twice", python_spec("jobs:noop"), every="1m")
    with pytest.raises(JobobsError, match="exists; remove it first"):
        client.schedule("twice", python_spec("jobs:noop"), every="2m")
    assert client.schedule_info("twice")["every_s"] == 60


def test_the_command_line_adds_lists_and_runs_a_schedule_on_the_file(db, migrated):
    from click.testing import CliRunner

    from jobobs.cli import main

    shutil.copy2(migrated, db)
    run = CliRunner().invoke
    result = run(main, ["schedule", "add", "cli", "--cron", "*/5 * * * *", "--tz",
                        "Europe/Paris", "--overlap", "queue", "--catch-up", "none",
                        "--retries", "3", "--retry-delay", "1m", "--backoff", "3",
                        "--retry-on", "OSError", "--db", db, "--json", "--", "run",
                        "jobs:steps", "5", "delay=0"])
    assert result.exit_code == 0, result.output
    added = json.loads(result.output)
    assert (added["cron"], added["tz"], added["overlap"], added["catch_up"], added["retries"]
            ) == ("*/5 * * * *", "Europe/Paris", "queue", "none", 3)
    assert added["spec"] == {"kind": "python", "name": None, "function": "jobs:steps",
                             "args": [5], "kwargs": {"delay": 0}}
    listed = json.loads(run(main, ["schedule", "list", "--db", db, "--json"]).output)
    assert [s["name"] for s in listed] == ["cli"] and listed[0]["when"] == (
        "cron */5 * * * * (Europe/Paris)")
    result = run(main, ["schedule", "list", "--db", db])
    assert "cron */5 * * * * (Europe/Paris)" in result.output and "NaN" not in result.output
    result = run(main, ["schedule", "run", "cli", "--db", db, "--json"])
    job_id = json.loads(result.output)["job_id"]  # no server: it ran in the command
    shown = json.loads(run(main, ["show", str(job_id), "--db", db, "--json"]).output)
    assert shown["status"] == "finished"
    with Runtime(db, workers=1, handle_signals=False) as rt:
        info = rt.job(job_id)
        assert info.schedule == "cli" and info.retries == 3
        assert json.loads(info.retry_policy) == {"delay": 60.0, "backoff": 3.0,
                                                 "on": ["OSError"], "longest": 3600.0}
    result = run(main, ["schedule", "add", "x", "--db", db, "--", "run", "jobs:noop"])
    assert result.exit_code == 2 and "give --cron 'EXPR' or --every INTERVAL" in result.output
    result = run(main, ["schedule", "add", "x", "--every", "1m", "--retries", "2",
                        "--retry-delay", "soon", "--db", db, "--", "run", "jobs:noop"])
    assert result.exit_code == 2 and "is not a duration" in result.output


def test_a_purge_deletes_old_schedule_log_lines_and_keeps_the_schedule(runtime, client):
    from datetime import timedelta

    client.schedule("purged", python_spec("jobs:noop"), every="1m")  # logged in March 2026
    counts = client.purge(timedelta(days=30))
    assert counts["schedule_log"] == 1
    assert client.schedule_log("purged").empty
    assert client.schedule_info("purged")["enabled"]
    client.pause_schedule("purged")  # the log goes on
    assert list(client.schedule_log("purged")["seq"]) == [2]


def test_a_split_batch_keeps_a_ticks_job_and_its_schedule_row_together(runtime, client, clock):
    """When a flush is refused and written part by part (jobobs.db.sifting), the schedule
    row a tick moved goes in the same part, so the same transaction, as the job it made."""
    from jobobs.db.sifting import split

    client.schedule("split", python_spec("jobs:noop"), every="1m")
    client.schedule("other", python_spec("jobs:noop"), every="1h")
    runtime.flush()
    with runtime.ledger.lock:
        clock.now = T0 + 60
        runtime.schedules.tick(force=True)
        batch, changed = runtime.ledger._take()
        runtime.ledger._put_back(batch, changed)
    (job_id,) = [row[0] for row in batch["new_jobs"]]
    parts = split(batch)
    assert [row[0] for what, row in parts[job_id]["schedules"]] == ["split"]
    assert [line[-1] for line in parts[job_id]["schedule_lines"]] == [job_id]
    assert "schedules" not in parts  # the other schedule was not due: nothing of it
    runtime.flush()
    assert client.schedule_info("split")["last_job_id"] == job_id


@pytest.mark.parametrize("every", ["2.3s", "4.1s", 12.34])
def test_an_interval_of_a_fraction_of_a_second_makes_one_run_per_tick(runtime, clock, client,
                                                                      every):
    for start in (T0, T0 + 0.1, T0 + 0.7):
        clock.now = start
        client.schedule(f"f{start}", python_spec("jobs:noop"), every=every)
    for step in range(1, 6):
        seconds = runtime.schedules.schedules["f" + str(T0)].every_s
        advance(runtime, clock, T0 + 1 + step * seconds)
    for name, schedule in runtime.schedules.schedules.items():
        tick = schedule.created_at
        for _ in range(50):  # each tick strictly after the last
            later = schedule.after(tick)
            assert later > tick
            tick = later
        assert schedule.waiting == 0
        assert not [line for line in log_lines(client, name) if "missed" in line]


def test_a_wall_clock_time_that_comes_twice_runs_once(runtime, clock, client):
    # 25 October 2026 in Paris: 02:00 comes twice (CEST, then CET)
    clock.now = at("2026-10-24T12:00:00")
    client.schedule("autumn", python_spec("jobs:noop"), cron="0 2 * * *", tz="Europe/Paris")
    for hour in ("2026-10-25T00:00:00", "2026-10-25T01:00:00", "2026-10-25T02:00:00",
                 "2026-10-25T12:00:00"):
        advance(runtime, clock, at(hour))
    assert len(schedule_jobs(runtime, "autumn")) == 1
    assert client.schedule_info("autumn")["next_run_at"].to_pydatetime() == datetime(
        2026, 10, 26, 1, 0)


def test_a_failed_job_of_a_schedule_is_not_retried_while_its_next_run_goes_on(
        runtime, clock, client):
    client.schedule("flaky", python_spec("jobs:boom"), every="1h")
    failed = client.run_schedule("flaky")
    assert runtime.wait(failed, 30).status is Status.FAILED
    runtime.schedules.schedules["flaky"].spec = json.dumps(python_spec("jobs:blocked",
                                                                       "flaky"))
    running = client.run_schedule("flaky")
    wait_for_status(runtime, running, Status.RUNNING)
    with pytest.raises(JobobsError, match=f"job {running} of schedule flaky is still running"):
        client.retry(failed)
    assert runtime.job(failed).status is Status.FAILED
    gate("flaky").set()
    runtime.wait(running, 30)
    client.retry(failed)  # now: it becomes the schedule's last job
    assert client.schedule_info("flaky")["last_job_id"] == failed
    runtime.wait(failed, 30)


def test_resuming_a_schedule_resumes_its_job_a_stop_shut_down(db, clock):
    with Runtime(db, workers=1, handle_signals=False, clock=clock, run_schedules=True,
                 shutdown_timeout=10) as rt:
        client = Client.embedded(rt)
        client.schedule("held", python_spec("jobs:steps", 100, 0.02), every="1h")
        job_id = client.run_schedule("held")
        wait_until(lambda: (rt.job(job_id).progress_current or 0) > 5, timeout=30)
        client.pause_schedule("held")
    with Runtime(db, workers=1, handle_signals=False, clock=clock, run_schedules=True) as rt:
        client = Client.embedded(rt)
        assert rt.status(job_id) is Status.SHUTDOWN  # paused schedule: left as it is
        client.resume_schedule("held")
        assert rt.wait(job_id, 60).status is Status.FINISHED


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "export", "options": {"to": "/tmp/x.csv", "table": "t", "check": True}},
     "cannot be called check="),
    ({"kind": "python", "function": "jobs:noop", "kwargs": {"schedule": "x"}},
     "cannot be called schedule="),
    ({"kind": "python", "function": "jobs:noop", "name": "n" * 300}, "characters long"),
])
def test_a_spec_taking_names_jobobs_uses_is_refused(runtime, client, spec, message):
    outcome, _ = runtime.schedules.apply({"verb": "add", "name": "x", "every": "1m",
                                          "spec": spec}, "test")
    assert outcome.startswith("refused: ") and message in outcome
    with pytest.raises(JobobsError, match=message.split("=")[0]):
        Client.embedded(runtime)._backend.submit(spec, "test")
    runtime.run_until_idle(10)  # nothing left pending
