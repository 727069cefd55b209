"""Logging from the threads a job starts reaches that job's journal (issue 20, item 3):
a ThreadPoolExecutor's tasks, threads those threads start, tasks on a pool other jobs
share, at every level from DEBUG up, in the runtime's process and on a Dask worker."""

import logging
import sys

import pytest
import thread_jobs
from serving import Server, wait_status

import jobobs
from jobobs import Status
from jobobs.access import queries
from jobobs.testing import journal_messages

POOLED = [f"item {i} done" for i in range(8)]


def _lines(rt, job_id) -> set[tuple[str, str]]:
    rt.ledger.flush()
    lines = queries.journal(rt.store.reader(), job_id)
    return set(zip(lines.level, lines.message))


def test_logging_in_threads_a_job_starts_reaches_its_journal(rt):
    info = rt.wait(rt.submit(thread_jobs.pooled_logging).id, timeout=30)
    assert info.status is Status.FINISHED
    lines = _lines(rt, info.id)
    assert {("INFO", message) for message in POOLED} <= lines
    assert ("WARNING", "item 3 was odd") in lines
    assert ("INFO", "from a thread a thread started") in lines
    failure = [m for level, m in lines if m.startswith("a thread failed")]
    assert len(failure) == 1 and "ZeroDivisionError" in failure[0]
    assert info.has_warning and info.warnings == 2  # the warning and the exception


def test_logging_debug_is_kept_like_ctx_log_debug(rt):
    info = rt.wait(rt.submit(thread_jobs.pooled_logging).id, timeout=30)
    lines = _lines(rt, info.id)
    assert ("DEBUG", "a debug line from the job's own thread") in lines
    assert ("DEBUG", "item 5 in detail") in lines


def test_debug_is_kept_from_the_jobs_own_package_only(rt, capsys):
    """A library's DEBUG lines (an HTTP client's URLs, tokens and all) stay out of the
    journal and are not printed by a handler of another logger; its INFO lines are kept."""
    elsewhere = logging.getLogger("an_application")
    handler = logging.StreamHandler(sys.stdout)
    elsewhere.addHandler(handler)
    try:
        info = rt.wait(rt.submit(thread_jobs.library_chatter).id, timeout=30)
        elsewhere.debug("an application's debug line outside any job")
    finally:
        elsewhere.removeHandler(handler)
    lines = _lines(rt, info.id)
    assert ("DEBUG", "the job's own debug line") in lines
    assert ("INFO", "a library's info line") in lines
    assert not [m for _, m in lines if "SECRET" in m]
    assert "outside any job" not in capsys.readouterr().out


def test_a_logger_given_a_level_keeps_it(rt):
    quiet = logging.getLogger("thread_jobs")
    quiet.setLevel(logging.INFO)
    try:
        info = rt.wait(rt.submit(thread_jobs.pooled_logging).id, timeout=30)
    finally:
        quiet.setLevel(logging.NOTSET)
    levels = {level for level, _ in _lines(rt, info.id)}
    assert "DEBUG" not in levels and "INFO" in levels


def test_tasks_on_a_shared_pool_log_to_the_job_that_submitted_them(rt):
    first = rt.submit(thread_jobs.shared_pool, "first", first=True)
    try:
        jobobs.testing.wait_until(
            lambda: "first task 3" in journal_messages(rt, first.id), timeout=30,
            message="the first job's tasks ran")
        # the pool's two threads were started by the first job, which is still running
        second = rt.wait(rt.submit(thread_jobs.shared_pool, "second").id, timeout=30)
    finally:
        thread_jobs.gate("first").set()
    rt.wait(first.id, timeout=30)
    second_lines = journal_messages(rt, second.id)
    first_lines = journal_messages(rt, first.id)
    assert {f"second task {i}" for i in range(4)} <= set(second_lines)
    assert not [m for m in first_lines if m.startswith("second")]


def test_a_thread_that_outlives_its_job_is_not_in_its_journal(rt, caplog):
    info = rt.wait(rt.submit(thread_jobs.leaves_a_thread, "late").id, timeout=30)
    assert "late leaves a thread" in journal_messages(rt, info.id)
    thread_jobs.gate("late").set()
    thread_jobs.left_behind["late"].join(30)
    assert "late logs after its job ended" in caplog.text  # left to the other handlers
    assert "late logs after its job ended" not in journal_messages(rt, info.id)


@pytest.fixture(scope="module")
def dask_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("threads")
    server = Server(str(folder / "jobs.duckdb"), "--executor", "dask", "--dask-workers", "1",
                    workers=1).wait_ready(120)
    client = jobobs.connect(server.db)
    yield server, client
    client.close()
    assert server.stop(timeout=30) == 0, server.output()


@pytest.mark.slow
def test_logging_in_threads_reaches_the_journal_on_a_dask_worker(dask_server):
    _, client = dask_server
    job_id = client.submit("thread_jobs:pooled_logging")
    assert wait_status(client, job_id, "finished", "failed", timeout=60) == "finished"
    lines = client.journal(job_id)
    found = set(zip(lines["level"], lines["message"]))
    assert {("INFO", message) for message in POOLED} <= found
    assert ("INFO", "from a thread a thread started") in found
    assert ("DEBUG", "item 5 in detail") in found
    assert client.info(job_id).has_warning


def test_threads_that_warn_and_reject_at_once_are_all_counted(rt):
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can
    try:
        info = rt.wait(rt.submit(thread_jobs.many_warnings, 8, 300).id, timeout=60)
    finally:
        sys.setswitchinterval(switch)
    assert (info.warnings, info.rejected) == (8 * 300, 8 * 300)
