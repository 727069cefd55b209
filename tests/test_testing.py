"""``jobobs.testing.run`` and ``Recorder``: a job function tested without a database, its
lines, rejects, progress, checkpoints and counters captured as plain data."""

import logging
from pathlib import Path

import pytest

import jobobs
from jobobs.model.definition import resolve
from jobobs.model.errors import JobDefinitionError, PauseInterrupt
from jobobs.model.states import Status
from jobobs.testing import Recorder, run

log = logging.getLogger(__name__)


def chatty(ctx):
    ctx.log.info("reading %s", "orders.csv")
    log.info("from logging")
    log.debug("debug from logging")
    ctx.warn("XDT-320029 Unknown column")
    ctx.reject({"id": 7}, reason="bad date", column="day", line=3, message="no such date")
    ctx.progress(1, 2)
    ctx.checkpoint({"i": 1})
    ctx.progress(2)
    ctx.checkpoint({"i": 2})
    ctx.checkpoint()  # keeps the last state


@jobobs.job(name="add up", max_rejects=None)
def add_up(ctx, count):
    """Adds up 0..count-1, rejecting every fourth number."""
    state = ctx.resume_state or {"i": 0, "sum": 0}
    for i in range(state["i"], count):
        if i % 4 == 3:
            ctx.reject({"n": i}, reason="odd one out", column="n", line=i + 1)
            state = {"i": i + 1, "sum": state["sum"]}
        else:
            state = {"i": i + 1, "sum": state["sum"] + i}
        ctx.progress(i + 1, count)
        ctx.checkpoint(state)
    ctx.log.info("sum %d", state["sum"])


def load(ctx, batches):
    """One row per batch, written with the checkpoint that counts it."""
    ctx.cursor().execute("CREATE TABLE IF NOT EXISTS loaded (batch INTEGER)")
    for batch in range(ctx.resume_state or 0, batches):
        ctx.checkpoint(batch + 1, atomic=lambda con, b=batch: con.execute(
            "INSERT INTO loaded VALUES (?)", [b]))


def count_orders(ctx):
    cursor = ctx.cursor()
    cursor.execute(f"CREATE TABLE {ctx.staging('orders')} AS SELECT range AS id FROM range(5)")
    (n,) = cursor.execute(f"SELECT count(*) FROM {ctx.on_server('FROM orders')}").fetchone()
    ctx.count(total=n, processed=n)
    ctx.log.info("%d orders%s", n, " (remote)" if ctx.remote or ctx.handoff(0) else "")


def loaded(result):
    return [b for (b,) in result.con.execute("SELECT batch FROM loaded ORDER BY 1").fetchall()]


SUM = sum(i for i in range(10) if i % 4 != 3)


def test_what_a_job_reports_is_captured_as_data():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    result = run(chatty)

    assert result.status is Status.FINISHED and result.error is None
    assert result.lines == [
        ("INFO", None, "reading orders.csv"),
        ("INFO", None, "from logging"),
        ("DEBUG", None, "debug from logging"),  # the job's own package logs DEBUG
        ("WARNING", "XDT-320029", "Unknown column"),
    ]
    assert result.rejects == [{
        "seq": 1, "kind": "error", "source": None, "line_no": 3, "column_name": "day",
        "raw": '{"id": 7}', "record": '{"id": 7}', "reason": "bad date",
        "message": "no such date"}]
    assert result.progress == [(1, 2), (2, 2)]
    assert result.checkpoints == [{"i": 1}, {"i": 2}, {"i": 2}]
    assert result.state == {"i": 2}
    assert result.checkpoint["counters"] == result.counters == {
        "total": 2, "processed": 2, "succeeded": 1, "rejected": 1, "warnings": 1,
        "doubles": 0, "duplicates": 0}
    assert result.has_warning
    assert (root.handlers, root.level) == (handlers, level)  # logging is put back


def test_a_limit_on_rejects_fails_the_job_with_its_text():
    result = run(add_up, 12, max_rejects=2)  # the job's own limit is None
    assert result.status is Status.FAILED
    assert "too many rejects: 3 (the limit is 2)" in result.error
    assert result.detail == "Too many rejects: 3 (the limit is 2); the job stops"
    assert len(result.rejects) == 3

    assert run(add_up, 12).status is Status.FINISHED


def test_a_job_paused_at_a_checkpoint_resumes_from_it():
    whole = run(add_up, 10)
    first = run(add_up, 10, pause_at=5)

    assert first.status is Status.PAUSED
    assert first.checkpoints == [{"i": i, "sum": s} for i, s in
                                 [(1, 0), (2, 1), (3, 3), (4, 3), (5, 7)]]
    assert first.state == {"i": 5, "sum": 7}
    assert first.lines == []  # it never reached its end

    second = run(add_up, 10, resume=first)
    assert second.status is Status.FINISHED
    assert second.checkpoints[0] == {"i": 6, "sum": 12}
    assert second.lines == [("INFO", None, f"sum {SUM}")]
    assert second.counters == whole.counters  # restored from the checkpoint, as Start does
    assert second.counters["rejected"] == 2
    assert [r["seq"] for r in first.rejects] == [1] and [r["seq"] for r in second.rejects] == [2]

    alone = run(add_up, 10, resume_state=first.state)  # the state without its counters
    assert alone.state == {"i": 10, "sum": SUM}
    assert alone.counters["rejected"] == 1


def test_a_warning_before_a_pause_is_kept_by_the_resumed_run():
    first = run(chatty, pause_at=2)
    assert first.status is Status.PAUSED and first.has_warning
    assert run(chatty, resume=first).has_warning


def test_a_cancel_at_a_checkpoint_stops_the_job_there():
    result = run(add_up, 10, cancel_at=1)
    assert result.status is Status.CANCELED
    assert result.checkpoints == [{"i": 1, "sum": 0}]


def test_a_pause_rolls_back_the_atomic_step_of_its_checkpoint():
    assert loaded(run(load, 4)) == [0, 1, 2, 3]

    first = run(load, 4, pause_at=3)
    assert first.status is Status.PAUSED
    assert loaded(first) == [0, 1]
    assert first.checkpoints == [1, 2, 2]  # the third is not saved: the second is again
    assert first.state == 2

    second = run(load, 4, resume=first, con=first.con)
    assert second.status is Status.FINISHED
    assert loaded(second) == [0, 1, 2, 3]


def test_a_checkpoint_whose_atomic_step_fails_is_not_saved():
    def write_then_fail(con):
        con.execute("INSERT INTO loaded VALUES (2)")
        raise OSError("disk full")

    def careful(ctx):
        ctx.cursor().execute("CREATE TABLE loaded (batch INTEGER)")
        ctx.checkpoint(1)
        try:
            ctx.checkpoint(2, atomic=write_then_fail)
        except OSError:
            ctx.log.warning("batch 2 is not written")
        ctx.checkpoint(steps=[{"kind": "watermark", "name": "orders", "value": 3}])

    result = run(careful)
    assert result.status is Status.FINISHED, result.detail
    assert result.checkpoints == [1, 1]
    assert result.steps == [{"kind": "watermark", "name": "orders", "value": 3}]  # kept, not run
    assert result.lines == [("WARNING", None, "batch 2 is not written")]
    assert loaded(result) == []  # rolled back


def test_an_exception_fails_the_job_with_its_text():
    def broken(ctx):
        ctx.checkpoint({"step": 1})
        raise ValueError("no such file: orders.csv")

    result = run(broken)
    assert result.status is Status.FAILED
    assert result.error == "ValueError: no such file: orders.csv"
    assert result.detail.startswith("Traceback") and "in broken" in result.detail
    assert result.state == {"step": 1}


def test_a_job_runs_sql_on_an_in_memory_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = run(count_orders)
    assert result.status is Status.FINISHED, result.detail
    assert result.lines == [("INFO", None, "5 orders")]
    assert result.counters["total"] == 5
    assert result.con.execute("SELECT sum(id) FROM orders").fetchone() == (10,)
    assert run(load, 2).status is Status.FINISHED

    assert list(tmp_path.rglob("*")) == []  # no database file, nor anything else


def test_a_function_called_with_a_recorded_context():
    recorder = Recorder()
    with recorder.context() as ctx:
        chatty(ctx)
    assert ("INFO", None, "from logging") in recorder.lines
    assert recorder.checkpoints == [{"i": 1}, {"i": 2}, {"i": 2}]
    assert recorder.counters["rejected"] == 1 and recorder.has_warning

    recorder = Recorder(pause_at=2)
    with pytest.raises(PauseInterrupt), recorder.context() as ctx:
        add_up(ctx, 10)
    assert recorder.checkpoints == [{"i": 1, "sum": 0}, {"i": 2, "sum": 1}]


def test_each_of_two_jobs_a_factory_made_runs_as_itself():
    def saying(word):
        @jobobs.job
        def say(ctx):
            ctx.log.info(word)
        return say

    hello, bye = saying("hello"), saying("bye")  # one path: test...<locals>.say
    assert run(hello).lines == [("INFO", None, "hello")]
    assert run(bye).lines == [("INFO", None, "bye")]
    assert resolve(bye.path).fn is bye.fn  # left registered as given, not as run wraps it


def test_arguments_are_checked_as_a_submission_checks_them():
    with pytest.raises(JobDefinitionError, match="JSON"):
        run(add_up, object())
    assert resolve(add_up.path).fn is add_up.fn
    with pytest.raises(JobDefinitionError, match="cannot take these arguments"):
        run(add_up, 1, 2)


def test_the_readmes_testing_example_passes():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    first = readme.split("## A job in a script or notebook\n", 1)[1].split("```python\n")[1]
    job = "@jobobs.job" + first.split("@jobobs.job", 1)[1].split("\njob = rt.submit")[0]
    example = readme.split("### Testing a job without a database\n", 1)[1]
    example = example.split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec("import time\nimport jobobs\n" + job + "\n" + example, namespace)
    namespace["test_score"]()
