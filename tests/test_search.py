"""Issue 18: every job's journal searched at once, by text, level, code, job name and time
window, through ``search.search`` and ``jobobs journal --search``; on a real Runtime and
database file, the jobs logging known lines."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

import jobobs
from jobobs.access import search
from jobobs.cli import main


@jobobs.job(name="says")
def says(ctx, lines):
    """Logs ``lines``, each ``[level, code, message]``."""
    for level, code, message in lines:
        ctx.log.write(level, message, code=code)


LOADER = [["INFO", None, "reading orders.csv"],
          ["WARNING", "W-7", "Timeout from host db-1, retrying"],
          ["INFO", None, "rejected 100% of rows in file_a.csv"],
          ["ERROR", "E-42", "could not load orders: timeout"]]
MAILER = [["DEBUG", None, "connecting to smtp"],
          ["INFO", None, "sent 12 mails, no timeout"],
          ["INFO", None, "rejected 10 of rows in fileXa.csv"]]


@pytest.fixture
def logged(rt):
    loader = rt.wait(rt.submit(says, LOADER, name="nightly-loader").id, timeout=30)
    mailer = rt.wait(rt.submit(says, MAILER, name="mailer").id, timeout=30)
    rt.flush()
    return rt, loader.id, mailer.id


@pytest.fixture
def closed(logged):
    """The same history with the runtime closed: the CLI reads the file."""
    rt, loader, mailer = logged
    rt.close()
    return rt.store.path, loader, mailer


def found(rt, *args, **filters):
    frame = search.search(rt.store.reader(), *args, **filters)
    return [(int(row.job_id), row.message) for row in frame.itertuples()]


def test_text_is_a_substring_of_any_job_ignoring_case_newest_first(logged):
    rt, loader, mailer = logged
    frame = search.search(rt.store.reader(), "TIMEOUT")
    assert list(frame.columns) == search.COLUMNS
    assert [(int(r.job_id), r.name, r.message) for r in frame.itertuples()] == [
        (mailer, "mailer", "sent 12 mails, no timeout"),
        (loader, "nightly-loader", "could not load orders: timeout"),
        (loader, "nightly-loader", "Timeout from host db-1, retrying")]
    assert list(frame["logged_at"]) == sorted(frame["logged_at"], reverse=True)
    assert found(rt, "timeout", limit=1) == [(mailer, "sent 12 mails, no timeout")]
    assert found(rt, "no such words") == []


def test_wildcards_in_the_text_are_taken_literally(logged):
    rt, loader, _ = logged
    assert found(rt, "100%") == [(loader, "rejected 100% of rows in file_a.csv")]
    assert found(rt, "file_a") == [(loader, "rejected 100% of rows in file_a.csv")]
    assert found(rt, "10% of") == []  # not "10 of" with anything between
    assert found(rt, "%") == [(loader, "rejected 100% of rows in file_a.csv")]
    assert found(rt, "\\") == []


def test_level_code_name_and_time_window(logged):
    rt, loader, mailer = logged
    assert found(rt, level="error") == [(loader, "could not load orders: timeout")]
    assert found(rt, "timeout", level="warning") == [
        (loader, "could not load orders: timeout"),
        (loader, "Timeout from host db-1, retrying")]
    assert found(rt, code="W-7") == [(loader, "Timeout from host db-1, retrying")]
    assert found(rt, "rows", name="MAIL") == [(mailer, "rejected 10 of rows in fileXa.csv")]
    assert found(rt, "connecting", job_id=mailer) == [(mailer, "connecting to smtp")]
    assert found(rt, "connecting", job_id=loader) == []
    now = datetime.now(UTC)
    assert len(found(rt, "timeout", since=now - timedelta(hours=1))) == 3
    assert found(rt, "timeout", since=now + timedelta(minutes=1)) == []
    assert found(rt, "timeout", until=now - timedelta(hours=1)) == []
    naive = now.replace(tzinfo=None)  # naive times are UTC, as stored
    assert len(found(rt, "timeout", since=naive - timedelta(hours=1), until=naive)) == 3


def test_lines_written_a_moment_ago_are_found(logged):
    rt = logged[0]
    assert found(rt, "zebra") == []
    late = rt.wait(rt.submit(says, [["INFO", None, "a zebra crossed"]], name="late").id,
                   timeout=30)
    rt.flush()
    assert found(rt, "ZEBRA") == [(late.id, "a zebra crossed")]


def test_a_long_history_is_searched_back_to_its_first_line(rt):
    """Lines far apart in time: the search looks back over growing windows until it has
    enough, and finds the oldest line too."""
    rt.wait(rt.submit(says, [["INFO", None, "zz first"]], name="old").id, timeout=30)
    rt.flush()
    con = rt.store.reader()
    con.execute("UPDATE journal SET logged_at = logged_at - INTERVAL 400 DAY")
    rt.wait(rt.submit(says, [["INFO", None, "zz second"]], name="new").id, timeout=30)
    rt.flush()
    assert [m for _, m in found(rt, "zz")] == ["zz second", "zz first"]
    assert [m for _, m in found(rt, "zz", limit=1)] == ["zz second"]


def test_when_reads_an_age_or_an_iso_time():
    now = datetime(2026, 12, 2, 12, 0)
    assert search.when("2h", now) == datetime(2026, 12, 2, 10, 0)
    assert search.when("7d", now) == datetime(2026, 11, 25, 12, 0)
    assert search.when("2026-12-01T08:00") == datetime(2026, 12, 1, 8, 0)
    assert search.when("2026-12-01T08:00+01:00") == datetime(2026, 12, 1, 7, 0)
    with pytest.raises(ValueError, match="yesterday"):
        search.when("yesterday")


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_the_cli_searches_every_job(closed):
    db, loader, mailer = closed
    code, out = run("journal", "--db", db, "--search", "timeout")
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"job {mailer} mailer  ")
    assert lines[0].endswith("INFO     sent 12 mails, no timeout")
    assert lines[1].startswith(f"job {loader} nightly-loader  ")
    assert lines[1].endswith("ERROR    E-42 could not load orders: timeout")
    code, out = run("journal", "--db", db, "--search", "100%", "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["job_id"], r["name"], r["message"]) for r in rows] == [
        (loader, "nightly-loader", "rejected 100% of rows in file_a.csv")]
    assert set(rows[0]) == set(search.COLUMNS)
    code, out = run("journal", "--db", db, "--search", "timeout", "--level", "error",
                    "--name", "loader", "--code", "E-42", "--since", "1h", "--json")
    assert code == 0 and [r["message"] for r in json.loads(out)] == [
        "could not load orders: timeout"]
    code, out = run("journal", "--db", db, "--search", "timeout", "--until", "1h")
    assert code == 0 and out.strip() == "(none)"
    code, out = run("journal", mailer, "--db", db, "--search", "ROWS", "--json")
    assert code == 0 and [r["message"] for r in json.loads(out)] == [
        "rejected 10 of rows in fileXa.csv"]


def test_the_cli_without_id_or_search_is_one_usage_error(closed):
    db, loader, _ = closed
    code, out = run("journal", "--db", db)
    assert code == 2 and "Error: give a job ID, or --search TEXT" in out
    code, out = run("journal", "--db", db, "--search", "x", "--since", "soon")
    assert code == 2 and "'soon' is neither an age" in out
    code, out = run("journal", "--db", db, "--search", "x", "--follow")
    assert code == 2 and "--follow and --after read one job's journal" in out
    code, out = run("journal", loader, "--db", db)  # one job, as before
    assert code == 0 and "reading orders.csv" in out


def test_the_search_page_finds_lines_and_a_click_opens_the_job(closed):
    from jobobs.dashboard.app import SEARCH, Dashboard

    db, loader, mailer = closed
    with jobobs.connect(db) as client:
        dashboard = Dashboard(client)
        dashboard.pages.active = SEARCH
        page = dashboard.search
        page.text_box.value = "timeout"
        assert list(page.table.value["job_id"]) == [mailer, loader, loader]
        assert list(page.table.value["name"]) == ["mailer", "nightly-loader", "nightly-loader"]
        page.level = "warnings and errors"
        page.job_name = "LOADER"
        assert list(page.table.value["message"]) == ["could not load orders: timeout",
                                                     "Timeout from host db-1, retrying"]
        page.window = "last hour"
        assert len(page.table.value) == 2
        page.table.selection = [1]
        assert dashboard.pages.active == 0 and dashboard.jobs.selected == loader
        page.text_box.value = "no such words"
        assert not page.table.visible and "No line matches" in page.summary.object
