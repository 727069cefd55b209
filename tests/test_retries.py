"""Retries: a failed run is tried again from its last checkpoint, automatically (a retry
policy) or by hand (a retry request; a whole error group at once)."""

import re
import shutil
import threading
import time

import pytest

import jobobs
from jobobs import IllegalRequest, JobobsError, Runtime, Status
from jobobs.access.client import Client
from jobobs.model.retries import Retry
from jobobs.testing import journal_messages, wait_for_status, wait_until

RETRY_LINE = re.compile(r"Retry (\d+) of (\d+) in ([\d.]+) s \((from the checkpoint of "
                        r"\d\d:\d\d:\d\d UTC|from the beginning: no checkpoint was saved)\)")
FAILS = {}  # job name: how many of its runs fail
RUNS = {}  # job name: the runs, with the state each started from


class Shifted:
    """The runtime's clock: real time, moved on by hand (a retry's delay passes at once)."""

    def __init__(self):
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@jobobs.job(retry=Retry(3, delay=3600))
def counting(ctx, count=10, fail_at=5, error="ConnectionError"):
    """Counts to ``count`` with a checkpoint each step; fails at ``fail_at`` while
    FAILS[name] says so."""
    start = ctx.resume_state or 0
    RUNS.setdefault(ctx.name, []).append(start)
    for i in range(start, count):
        if i == fail_at and FAILS.get(ctx.name, 0) > 0:
            FAILS[ctx.name] -= 1
            raise {"ConnectionError": ConnectionError, "ValueError": ValueError}[error](
                f"the server at 10.0.0.{len(RUNS[ctx.name])} refused")
        ctx.count(processed=i + 1)
        ctx.checkpoint(i + 1)


@jobobs.job(max_rejects=2, retry=Retry(2, delay=0))
def rejecting(ctx):
    for i in range(5):
        ctx.reject(reason="bad", message=f"line {i}")
        ctx.checkpoint()


@pytest.fixture
def clock():
    return Shifted()


@pytest.fixture
def runtime(new_db, clock):
    with Runtime(new_db, workers=2, handle_signals=False, clock=clock) as rt:
        yield rt


def retry_waiting(rt, job_id):
    wait_until(lambda: rt.job(job_id).status is Status.QUEUED and rt.job(job_id).retry_at,
               timeout=30)
    return rt.job(job_id)


def test_a_failed_run_is_retried_from_its_checkpoint_after_its_delay(runtime, clock):
    FAILS["from-checkpoint"] = 1
    job = runtime.submit(counting, name="from-checkpoint")
    waiting = retry_waiting(runtime, job.id)
    assert waiting.retried == 1 and waiting.error.startswith("ConnectionError")
    assert waiting.retry_at == pytest.approx(clock() + 3600, abs=60)
    clock.shift += 3600  # the delay passes
    info = job.wait(30)
    assert info.status is Status.FINISHED
    assert RUNS["from-checkpoint"] == [0, 5]  # the second run starts from the checkpoint
    assert info.run_count == 2 and info.retried == 1 and info.processed == 10
    assert info.error is None and info.retry_at is None
    messages = journal_messages(runtime, job.id)
    retry = [m for m in messages if RETRY_LINE.fullmatch(m)]
    assert len(retry) == 1 and RETRY_LINE.fullmatch(retry[0]).groups()[:3] == ("1", "3",
                                                                               "3600")
    assert "from the checkpoint of" in retry[0]
    assert messages.index(retry[0]) < messages.index(
        next(m for m in messages if m.startswith("Resuming from the checkpoint")))
    history = [(a, b) for a, b, *_ in runtime.store.reader().execute(
        "SELECT from_status, to_status, reason FROM job_transitions WHERE job_id = ? "
        "ORDER BY seq", [job.id]).fetchall()]
    assert history[2:] == [("queued", "running"), ("running", "queued"),
                           ("queued", "running"), ("running", "finished")]
    reason = runtime.store.reader().execute(
        "SELECT reason FROM job_transitions WHERE job_id = ? AND to_status = 'queued' "
        "AND from_status = 'running'", [job.id]).fetchone()[0]
    assert reason.endswith("retry 1 of 3 in 3600 s")


def test_retries_run_out_and_the_job_fails_with_each_error_journaled(db):
    FAILS["out"] = 5
    with Runtime(db, workers=1, handle_signals=False) as rt:
        job = rt.submit(counting, name="out", retry=Retry(2, delay=0.01, backoff=3))
        info = job.wait(30)
    assert info.status is Status.FAILED and info.retried == 2 and info.run_count == 3
    assert "10.0.0.3 refused" in info.error
    with Runtime(db, workers=1, handle_signals=False) as rt:
        messages = journal_messages(rt, job.id)
        errors = rt.store.reader().execute(
            "SELECT count(*) FROM journal WHERE job_id = ? AND level = 'ERROR'",
            [job.id]).fetchone()[0]
    waits = [RETRY_LINE.fullmatch(m).groups()[:3] for m in messages if RETRY_LINE.fullmatch(m)]
    assert waits == [("1", "2", "0.01"), ("2", "2", "0.03")]  # backoff 3
    assert errors == 3


def test_the_policys_delays_back_off_up_to_the_longest():
    policy = Retry(5, delay=10, backoff=2, longest=50)
    assert [policy.wait(n) for n in range(1, 6)] == [10, 20, 40, 50, 50]
    assert Retry.stored(policy.times, policy.policy()) == policy
    assert Retry.stored(0, None) is None
    assert Retry.given(3) == Retry(3) and Retry.given({"times": 2, "delay": 1}).delay == 1


@pytest.mark.parametrize("bad", [-1, 101, 1.5, True, "3", {"delay": 1}, {"times": 1, "x": 2}])
def test_a_bad_policy_is_one_clear_error(bad):
    with pytest.raises(JobobsError):
        Retry.given(bad)


@pytest.mark.parametrize("field", [{"delay": -1}, {"backoff": 0.5}, {"delay": float("nan")},
                                   {"on": ["not a name"]}, {"on": []}])
def test_a_bad_policy_field_is_one_clear_error(field):
    with pytest.raises(JobobsError):
        Retry(1, **field)


def test_too_many_rejects_is_not_retried_unless_asked(db):
    with Runtime(db, workers=1, handle_signals=False) as rt:
        plain = rt.submit(rejecting).wait(30)
        asked = rt.submit(rejecting, retry=Retry(2, delay=0, on=["TooManyRejects"])).wait(30)
        other = rt.submit(rejecting, retry=Retry(2, delay=0, on=["OSError"])).wait(30)
    assert plain.status is Status.FAILED and plain.retried == 0 and plain.run_count == 1
    assert asked.status is Status.FAILED and asked.retried == 2 and asked.run_count == 3
    assert other.retried == 0


def test_retry_on_names_the_failures_it_retries(db):
    FAILS["only-os"] = 1
    FAILS["not-value"] = 1
    with Runtime(db, workers=1, handle_signals=False) as rt:
        os_error = rt.submit(counting, name="only-os",
                             retry=Retry(1, delay=0, on=["OSError"])).wait(30)
        value_error = rt.submit(counting, name="not-value", error="ValueError",
                                retry=Retry(1, delay=0, on=["OSError"])).wait(30)
    assert os_error.status is Status.FINISHED and os_error.retried == 1  # ConnectionError
    assert value_error.status is Status.FAILED and value_error.retried == 0


@pytest.mark.parametrize("then", ["checkpoint", "raise"])
def test_a_cancel_is_never_retried(runtime, then):
    gate = threading.Event()

    def held(ctx):
        ctx.checkpoint()
        gate.wait(30)
        if then == "raise":  # failing on its way out of a cancel
            raise ConnectionError("gone")
        ctx.checkpoint()

    job = runtime.submit(held, retry=Retry(3, delay=0))
    wait_for_status(runtime, job.id, Status.RUNNING)
    runtime.cancel(job.id)
    wait_for_status(runtime, job.id, Status.CANCELING)
    gate.set()
    info = job.wait(30)
    assert info.status is (Status.CANCELED if then == "checkpoint" else Status.FAILED)
    assert info.retried == 0 and info.run_count == 1


def test_a_retry_waiting_for_its_time_may_be_paused_resumed_or_canceled(runtime):
    FAILS["held"] = 1
    FAILS["dropped"] = 1
    held = runtime.submit(counting, name="held")
    dropped = runtime.submit(counting, name="dropped")
    retry_waiting(runtime, held.id)
    retry_waiting(runtime, dropped.id)
    runtime.pause(held.id)
    runtime.cancel(dropped.id)
    wait_for_status(runtime, held.id, Status.PAUSED)
    assert dropped.wait(30).status is Status.CANCELED
    runtime.resume(held.id)  # runs now, without waiting for the retry's time
    info = held.wait(30)
    assert info.status is Status.FINISHED and RUNS["held"] == [0, 5]


def test_a_retry_waiting_for_its_time_waits_on_through_a_restart(db):
    FAILS["restart"] = 1
    clock = Shifted()
    with Runtime(db, workers=1, handle_signals=False, clock=clock) as rt:
        job_id = rt.submit(counting, name="restart").id
        retry_waiting(rt, job_id)
    with Runtime(db, workers=1, handle_signals=False, clock=clock) as rt:
        assert rt.status(job_id) is Status.QUEUED  # not shut down: the retry still waits
        assert "Recovered: the retry still waits for its time" in journal_messages(rt, job_id)
        clock.shift += 3600
        info = rt.wait(job_id, 30)
    assert info.status is Status.FINISHED and info.run_count == 2


def test_a_failed_job_is_retried_by_hand_from_its_checkpoint(runtime):
    FAILS["by-hand"] = 1
    job = runtime.submit(counting, name="by-hand", retry=0)
    assert job.wait(30).status is Status.FAILED
    client = Client.embedded(runtime)
    assert client.retry(job.id) == "queued"
    info = job.wait(30)
    assert info.status is Status.FINISHED and RUNS["by-hand"] == [0, 5]
    assert f"Retry requested by {client.actor}" in journal_messages(runtime, job.id)
    with pytest.raises(IllegalRequest):
        client.retry(job.id)  # a finished job is not retried


def test_a_retry_by_hand_gives_the_job_its_automatic_retries_again(runtime):
    FAILS["again"] = 4
    job = runtime.submit(counting, name="again", retry=Retry(1, delay=0))
    info = job.wait(30)
    assert info.status is Status.FAILED and info.retried == 1
    runtime.request(job.id, "retry")
    wait_until(lambda: runtime.job(job.id).run_count == 4 and runtime.ledger.settled(job.id),
               timeout=30)
    info = runtime.wait(job.id, 30)
    assert info.status is Status.FAILED and info.retried == 1 and info.run_count == 4


def test_every_failed_job_of_one_error_group_is_retried_at_once(runtime):
    for name in ("group-a", "group-b", "group-c"):
        FAILS[name] = 1
    FAILS["other"] = 1
    jobs = [runtime.submit(counting, name=n, retry=0) for n in ("group-a", "group-b",
                                                                 "group-c")]
    other = runtime.submit(counting, name="other", error="ValueError", retry=0)
    for job in [*jobs, other]:
        assert job.wait(30).status is Status.FAILED
    client = Client.embedded(runtime)
    ids = client.retry_failed("ConnectionError")  # a part naming one group
    assert ids == [job.id for job in jobs]
    for job in jobs:
        assert job.wait(30).status is Status.FINISHED
    assert runtime.job(other.id).status is Status.FAILED
    with pytest.raises(JobobsError, match="no failed job has an error like"):
        client.retry_failed("ConnectionError")  # none left
    with pytest.raises(JobobsError, match="no failed job"):
        client.retry_failed("nothing like this")


def test_several_groups_matching_a_text_are_refused_with_their_names(runtime):
    FAILS["one"], FAILS["two"] = 1, 1
    first = runtime.submit(counting, name="one", retry=0)
    second = runtime.submit(counting, name="two", error="ValueError", retry=0)
    first.wait(30), second.wait(30)
    with pytest.raises(JobobsError, match="2 error groups match"):
        Client.embedded(runtime).retry_failed("refused")
    assert runtime.job(first.id).status is Status.FAILED


def _orders(path, bad_lines):
    """1,000 orders; the line numbers in ``bad_lines`` (the header is line 1) have an amount
    that is not a number."""
    lines = ["id,amount"]
    for i in range(1, 1001):
        lines.append(f"{i},{'x' if i + 1 in bad_lines else i * 10}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


BAD_LINES = {3, 150, 420, 650, 999}
COLUMNS = {"id": "BIGINT", "amount": "INTEGER"}


def _loaded(rt, job_id):
    con = rt.store.reader()
    rows = con.execute("SELECT count(*), count(DISTINCT id), sum(id) FROM t").fetchone()
    rejects = con.execute("SELECT line_no, column_name, reason FROM rejects "
                          "WHERE job_id = ? ORDER BY line_no", [job_id]).fetchall()
    return rows, rejects


def test_an_import_retried_resumes_from_its_checkpoint_with_exact_rows_and_rejects(
        runtime, clock, tmp_path):
    from jobobs.kinds import importing

    source = _orders(tmp_path / "orders.csv", BAD_LINES)
    with runtime.store.transaction() as con:  # a row in the way of the chunk with id 600
        con.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, amount INTEGER)")
        con.execute("INSERT INTO t VALUES (600, 0)")
    job = importing.submit(runtime, source, "t", columns=COLUMNS, on_failure="keep",
                           chunk_rows=100, max_rejects=None, retry=Retry(2, delay=3600))
    waiting = retry_waiting(runtime, job.id)
    assert "PRIMARY KEY" in waiting.error or "Duplicate key" in waiting.error
    loaded_before = runtime.store.reader().execute("SELECT count(*) FROM t").fetchone()[0]
    assert 100 < loaded_before < 700  # the chunks before the one that failed stay
    assert "The staging tables stay for the retry" in journal_messages(runtime, job.id)
    with runtime.store.transaction() as con:
        con.execute("DELETE FROM t WHERE id = 600")
    clock.shift += 3600
    info = job.wait(60)
    assert info.status is Status.FINISHED and info.run_count == 2
    rows, rejects = _loaded(runtime, job.id)
    good = [i for i in range(1, 1001) if i + 1 not in BAD_LINES]
    assert rows == (len(good), len(good), sum(good))  # each row once
    assert rejects == [(line, "amount", "cast error") for line in sorted(BAD_LINES)]
    assert (info.processed, info.succeeded, info.rejected) == (1000, len(good), 5)


def test_an_import_retried_by_hand_after_its_staging_went_starts_over_exactly(
        runtime, tmp_path):
    from jobobs.kinds import importing

    source = _orders(tmp_path / "orders.csv", BAD_LINES)
    with runtime.store.transaction() as con:  # refuses the order of id 700 (7,000)
        con.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, amount INTEGER CHECK "
                    "(amount <> 7000))")
    job = importing.submit(runtime, source, "t", columns=COLUMNS, key=["id"],
                           max_rejects=None)
    assert job.wait(60).status is Status.FAILED
    assert runtime.store.reader().execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with runtime.store.transaction() as con:
        con.execute("DROP TABLE t")
        con.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, amount INTEGER)")
    Client.embedded(runtime).retry(job.id)
    info = job.wait(60)
    assert info.status is Status.FINISHED, journal_messages(runtime, job.id)
    assert any("starts over from its files" in m for m in journal_messages(runtime, job.id))
    rows, rejects = _loaded(runtime, job.id)
    good = [i for i in range(1, 1001) if i + 1 not in BAD_LINES]
    assert rows == (len(good), len(good), sum(good))
    assert rejects == [(line, "amount", "cast error") for line in sorted(BAD_LINES)]
    assert (info.processed, info.succeeded, info.rejected) == (1000, len(good), 5)


def test_a_steep_backoff_stops_at_the_longest_wait():
    policy = Retry(100, delay=1, backoff=86_400, longest=3600)
    assert policy.wait(100) == 3600 and policy.wait(1) == 1
    assert Retry(100, delay=0.5, backoff=100, longest=0).wait(100) == 0


def test_retrying_an_error_group_takes_the_window_the_list_shows(runtime, clock):
    from datetime import UTC, datetime, timedelta

    FAILS["old"], FAILS["new"] = 1, 1
    clock.shift = -40 * 86400  # failed forty days ago
    old = runtime.submit(counting, name="old", retry=0)
    assert old.wait(30).status is Status.FAILED
    clock.shift = 0
    new = runtime.submit(counting, name="new", retry=0)
    assert new.wait(30).status is Status.FAILED
    client = Client.embedded(runtime)
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    group = "ConnectionError: the server at <n> refused"
    with pytest.raises(JobobsError, match="no failed job"):
        client.retry_failed("ConnectionError", since=since, exact=True)  # a part: not exact
    assert client.retry_failed(group, since=since, exact=True) == [new.id]
    assert runtime.job(old.id).status is Status.FAILED


def test_retry_with_no_server_runs_the_job_in_the_command(db, migrated):
    from click.testing import CliRunner

    from jobobs.cli import main

    shutil.copy2(migrated, db)
    FAILS["cli-retry"] = 1
    with Runtime(db, workers=1, handle_signals=False) as rt:
        job_id = rt.submit(counting, name="cli-retry", retry=0).id
        assert rt.wait(job_id, 30).status is Status.FAILED
    result = CliRunner().invoke(main, ["retry", str(job_id), "--db", db])
    assert result.exit_code == 0, result.output
    with Runtime(db, workers=1, handle_signals=False) as rt:
        info = rt.job(job_id)
    assert info.status is Status.FINISHED and info.run_count == 2  # not shut down


def test_a_one_pass_import_that_fails_after_its_commit_is_not_loaded_twice(
        runtime, tmp_path, monkeypatch):
    """A fault after the rows committed (recording the rejects: a full disk); the retry
    records the rejects and loads nothing again."""
    import duckdb

    from jobobs.kinds import importing, onepass

    source = _orders(tmp_path / "orders.csv", BAD_LINES)
    record, failed = onepass.OnePass.record_rejects, []

    def full_disk_once(self, state):
        if not failed:
            failed.append(True)
            raise duckdb.IOException("IO Error: No space left on device")
        return record(self, state)

    monkeypatch.setattr(onepass.OnePass, "record_rejects", full_disk_once)
    job = importing.submit(runtime, source, "t", columns=COLUMNS, max_rejects=None)
    assert job.wait(60).status is Status.FAILED
    good = [i for i in range(1, 1001) if i + 1 not in BAD_LINES]
    count = "SELECT count(*) FROM t"
    assert runtime.store.reader().execute(count).fetchone()[0] == len(good)  # committed
    Client.embedded(runtime).retry(job.id)
    info = job.wait(60)
    assert info.status is Status.FINISHED, journal_messages(runtime, job.id)
    rows, rejects = _loaded(runtime, job.id)
    assert rows == (len(good), len(good), sum(good))
    assert rejects == [(line, "amount", "cast error") for line in sorted(BAD_LINES)]
