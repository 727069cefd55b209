"""Issue 18, two runs side by side: ``comparing.compare`` over a real runtime and file, the
``jobobs compare`` command (its human output and --json, an unknown id, two different
jobs) and the dashboard's Compare page built and driven in plain pytest. What a person
sees and clicks is in test_browser_compare.py."""

import json
import threading

import duckdb
import pytest
from click.testing import CliRunner

import jobobs
from jobobs.access import comparing
from jobobs.cli import main
from jobobs.dashboard import Dashboard
from jobobs.dashboard.app import COMPARE

TOGETHER = threading.Barrier(2)  # the two runs of nightly run at once, on two workers


@jobobs.job(name="nightly", max_rejects=None)
def nightly(ctx, items):
    """Logs each item once the other run has started; rejects the ones named bad-*, fails
    on boom."""
    TOGETHER.wait(timeout=60)
    for i, item in enumerate(items):
        ctx.log.info("item %s", item)
        if item.startswith("bad"):
            ctx.reject({"item": item}, reason=f"{item} value", column="item", line=i + 1)
        if item == "boom":
            raise ValueError(f"boom at item {i + 1}")
        ctx.progress(i + 1, len(items))


@jobobs.job(name="other")
def other(ctx):
    ctx.log.info("item a")


@pytest.fixture
def runs(new_db):
    """Two runs of nightly at once on two workers, whose journals differ from their 4th
    line (their first lines name different workers), and a run of another job: their ids,
    the file closed."""
    TOGETHER.reset()
    runtime = jobobs.Runtime(new_db, workers=2, handle_signals=False)
    try:
        first = runtime.submit(nightly, ["a", "b", "c", "d"]).id
        second = runtime.submit(nightly, ["a", "b", "bad-x", "bad-[bold]", "bad-x", "boom"]).id
        runtime.run_until_idle(timeout=60)
        third = runtime.submit(other).id
        runtime.run_until_idle(timeout=30)
    finally:
        runtime.close()
    return new_db, first, second, third


def compared(db, a, b):
    with duckdb.connect(db, read_only=True) as con:
        return comparing.compare(con, a, b)


def by_field(result):
    return {row["field"]: row for row in result["fields"]}


def test_two_runs_side_by_side(runs):
    db, first, second, _ = runs
    result = compared(db, first, second)
    assert (result["a"], result["b"], result["names"], result["same_name"]) == (
        first, second, ["nightly", "nightly"], True)
    fields = by_field(result)
    assert fields["spec.args"] == {
        "group": "spec", "field": "spec.args", "a": '[["a", "b", "c", "d"]]',
        "b": '[["a", "b", "bad-x", "bad-[bold]", "bad-x", "boom"]]', "differs": True}
    assert (fields["status"]["a"], fields["status"]["b"]) == ("finished", "failed")
    assert (fields["rejected"]["a"], fields["rejected"]["b"]) == (0, 3)
    assert fields["rejected"]["differs"] and fields["status"]["differs"]
    for same in ("name", "kind", "spec.function", "warnings"):
        assert not fields[same]["differs"], same
    assert {"duration_s", "started_at", "finished_at"} <= set(fields)
    assert result["rejects"] == [
        {"reason": "bad-x value", "a": 0, "b": 2, "differs": True},
        {"reason": "bad-[bold] value", "a": 0, "b": 1, "differs": True}]
    errors = result["errors"]
    assert errors["a"] is None and "ValueError: boom at item 6" in errors["b"]
    assert errors["differs"]

    journal = result["journal"]
    # 1 started (on two workers: not a difference of the runs), 2 item a, 3 item b,
    # 4 item c / item bad-x
    assert journal["first"] == 4
    assert journal["lines_a"] < journal["lines_b"]
    assert [row["seq"] for row in journal["rows"]] == [1, 2, 3, 4, 5, 6, 7]
    fourth = journal["rows"][3]
    assert (fourth["a"], fourth["b"], fourth["differs"]) == ("item c", "item bad-x", True)
    assert [row["differs"] for row in journal["rows"][:3]] == [False, False, False]
    started = journal["rows"][0]
    assert started["a"] != started["b"] and started["a"].startswith("Job started (run 1) on ")
    json.dumps(result)  # plain values only


def test_a_run_compared_with_itself_differs_nowhere(runs):
    db, first, *_ = runs
    result = compared(db, first, first)
    assert not any(row["differs"] for row in result["fields"])
    assert result["rejects"] == [] and not result["errors"]["differs"]
    assert result["journal"]["first"] is None and result["journal"]["rows"] == []


def test_the_command_prints_the_runs_side_by_side_differences_marked(runs):
    db, first, second, _ = runs
    result = CliRunner().invoke(main, ["compare", str(first), str(second), "--db", db])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"jobs {first} and {second}: two runs of nightly"
    marked = {line.split()[1] for line in lines if line.startswith("≠")}
    assert {"spec.args", "status", "rejected", "bad-x", "bad-[bold]"} <= marked
    assert not marked & {"name", "kind", "spec.function", "warnings"}
    status = next(line for line in lines if line.split()[1:2] == ["status"])
    assert "✔ Finished" in status and "✖ Finished with error" in status
    assert f"#{second}: ValueError: boom at item 6" in result.output
    assert f"#{first}: (none)" in result.output
    assert "journals: first difference at line 4" in result.output
    journal = lines[lines.index(next(line for line in lines if line.startswith("journals"))):]
    differing = next(line for line in journal if line.startswith("≠"))
    assert differing.split()[1] == "4"
    assert "item c" in differing and "item bad-x" in differing


def test_the_command_prints_json(runs):
    db, first, second, _ = runs
    result = CliRunner().invoke(main, ["compare", str(first), str(second), "--db", db,
                                       "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == compared(db, first, second)


def test_an_unknown_job_is_one_line_and_exit_1(runs):
    db, first, *_ = runs
    result = CliRunner().invoke(main, ["compare", str(first), "999", "--db", db])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: job 999 does not exist"]
    with duckdb.connect(db, read_only=True) as con, pytest.raises(jobobs.JobNotFound):
        comparing.compare(con, 999, first)


def test_runs_of_two_jobs_say_so_first(runs):
    db, first, _, third = runs
    result = compared(db, first, third)
    assert result["same_name"] is False and by_field(result)["name"]["differs"]
    output = CliRunner().invoke(main, ["compare", str(first), str(third), "--db", db]).output
    assert output.splitlines()[0] == (
        f"jobs {first} (nightly) and {third} (other) are runs of different jobs")


def test_the_compare_page_opens_on_two_runs_and_by_default_on_the_selected_jobs_last_two(
        runs):
    db, first, second, third = runs
    with jobobs.connect(db) as client:
        linked = Dashboard(client, compare=(first, second))
        assert linked.pages.active == COMPARE
        page = linked.compare
        assert (page.first.value, page.second.value) == (str(first), str(second))
        shown = page.body.object
        assert shown.count('class="jobobs-field jobobs-differs"') >= 3
        assert "First difference at line 4" in shown and "item bad-x" in shown
        assert "boom at item 6" in shown and "bad-[bold] value" in shown

        page.first.value = "999"
        page.choose()
        assert page.message.visible and "job 999 does not exist" in page.message.object

        selected = Dashboard(client)
        selected.jobs.selected = first
        selected.pages.active = COMPARE  # nightly's last two runs
        assert selected.compare.pair == (first, second)
        page = selected.compare
        page.first.value, page.second.value = str(first), str(third)
        page.choose()
        assert page.pair == (first, third)
        assert "are runs of different jobs" in page.body.object


def test_spec_values_named_like_times_or_durations_are_shown_as_their_text(runs):
    """A spec's keys are the user's: deliver_at="tomorrow" and timeout_s="fast" are text,
    not a time or a duration (they raised), in the function, the command and the page."""
    db, first, second, _ = runs
    with duckdb.connect(db) as con:  # a kind whose options are named so
        for job_id in (first, second):
            con.execute("UPDATE jobs SET spec = ? WHERE id = ?", [json.dumps(
                {"kind": "python", "deliver_at": "tomorrow", "timeout_s": "fast",
                 "kwargs": {"deliver_at": "tomorrow"}}), job_id])
    fields = by_field(compared(db, first, second))
    assert [comparing.shown(f, fields[f]["a"]) for f in ("spec.deliver_at", "spec.timeout_s")
            ] == ["tomorrow", "fast"]
    result = CliRunner().invoke(main, ["compare", str(first), str(second), "--db", db])
    assert result.exit_code == 0, result.output
    assert "tomorrow" in result.output and "fast" in result.output
    with jobobs.connect(db) as client:
        page = Dashboard(client, compare=(first, second)).compare
        assert not page.message.visible and "tomorrow" in page.body.object


def test_a_digit_that_is_not_a_number_is_one_line_in_the_page(runs):
    """"²" is a digit to Python, not a number to int(): it raised."""
    db, first, second, _ = runs
    with jobobs.connect(db) as client:
        page = Dashboard(client, compare=(first, second)).compare
        page.first.value, page.second.value = "²", str(second)
        page.choose()
        assert page.message.visible and "Type two job numbers" in page.message.object


def test_a_journal_longer_by_a_line_differs_at_that_line(runs):
    """A resumed run's journal has one more "Job started (run 2) on ..." line: where it
    ends in the other journal is the first difference."""
    db, first, _, _ = runs
    with duckdb.connect(db) as con:
        copy = con.execute("SELECT max(id) + 1 FROM jobs").fetchone()[0]
        con.execute("INSERT INTO jobs SELECT * REPLACE (? AS id) FROM jobs WHERE id = ?",
                    [copy, first])
        con.execute("INSERT INTO journal SELECT * REPLACE (? AS job_id) FROM journal "
                    "WHERE job_id = ?", [copy, first])
        last = con.execute("SELECT max(seq) FROM journal WHERE job_id = ?", [copy]).fetchone()[0]
        con.execute("INSERT INTO journal SELECT * REPLACE (? AS seq, 'Job started (run 2) on "
                    "host pid 1 w1' AS message) FROM journal WHERE job_id = ? AND seq = ?",
                    [last + 1, copy, last])
    journal = compared(db, first, copy)["journal"]
    assert journal["first"] == last + 1
    assert journal["lines_b"] == journal["lines_a"] + 1

