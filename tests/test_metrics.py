"""``GET /metrics``: what Prometheus scrapes equals what SQL says of the same database, on a
runtime's store and from a real ``jobobs serve`` over HTTP with the analyst token; no token,
no metrics; a part that cannot be read leaves the rest of the scrape."""

import logging
import time
import urllib.error
import urllib.request
from typing import Any

import jobs
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from serving import Server

import jobobs
from jobobs.access.metrics import BUCKETS, Metrics
from jobobs.db.ledger import Ledger
from jobobs.db.store import Store
from jobobs.model.retries import Retry
from jobobs.model.states import Status
from jobobs.testing import wait_until

TYPES = {
    "jobobs_jobs": "gauge", "jobobs_queue_depth": "gauge", "jobobs_retries_waiting": "gauge",
    "jobobs_jobs_ended": "counter", "jobobs_run_duration_seconds": "histogram",
    "jobobs_rows_processed": "counter", "jobobs_rows_rejected": "counter",
    "jobobs_journal_lines": "counter", "jobobs_schedules": "gauge",
    "jobobs_alerts_open": "gauge", "jobobs_runtime_last_write_timestamp_seconds": "gauge",
    "jobobs_runtime_pending_writes": "gauge", "jobobs_metrics_unavailable": "gauge",
}


def parsed(text: str) -> dict[tuple, float]:
    """The samples of a scrape: {(name, (label, value), ...): value}."""
    return {(s.name, *sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(collector: Metrics) -> dict[tuple, float]:
    return parsed(generate_latest(collector).decode())


def of(samples: dict[tuple, float], name: str) -> dict[tuple, float]:
    """The samples of one metric, by their labels' values."""
    return {tuple(v for _, v in key[1:]): value for key, value in samples.items()
            if key[0] == name}


def what_sql_says(sql) -> dict[str, dict[tuple, float]]:
    """The figures the metrics must show, by metric, each read with its own query;
    ``sql(query)`` answers rows."""
    durations = sql(f"""SELECT name, count(*), sum(active_seconds),
                               count(*) FILTER (WHERE active_seconds <= {BUCKETS[0]})
                        FROM jobs WHERE status = 'finished' AND run_count > 0 GROUP BY name""")
    totals = sql("SELECT name, sum(processed), sum(rejected) FROM jobs GROUP BY name")
    return {
        "jobobs_jobs": {(s.value,): 0 for s in Status}
        | {(status,): n for status, n in sql("SELECT status, count(*) FROM jobs GROUP BY 1")},
        "jobobs_jobs_ended_total": {
            (name, status): n for name, status, n in sql(
                "SELECT name, status, count(*) FROM jobs "
                "WHERE status IN ('finished', 'failed', 'canceled') GROUP BY ALL")},
        "jobobs_run_duration_seconds_count": {(name,): n for name, n, _, _ in durations},
        "jobobs_run_duration_seconds_sum": {(name,): s for name, _, s, _ in durations},
        "jobobs_run_duration_seconds_bucket": {(f"{BUCKETS[0]:.1f}", name): within
                                               for name, _, _, within in durations},
        "jobobs_rows_processed_total": {(name,): p for name, p, _ in totals},
        "jobobs_rows_rejected_total": {(name,): r for name, _, r in totals},
        "jobobs_journal_lines_total": {(level,): 0 for level in ("DEBUG", "INFO", "WARNING",
                                                                 "ERROR")}
        | dict(((level,), n) for level, n in sql("SELECT level, count(*) FROM journal "
                                                 "GROUP BY 1")),
    }


def assert_equal_to_sql(samples: dict[tuple, float], sql) -> None:
    for name, expected in what_sql_says(sql).items():
        shown = of(samples, name)
        if name == "jobobs_run_duration_seconds_bucket":  # the first bucket of each name
            shown = {key: value for key, value in shown.items() if key[0] in
                     {k[0] for k in expected}}
        assert shown == pytest.approx(expected), name
    for (name,), count in of(samples, "jobobs_run_duration_seconds_count").items():
        assert of(samples, "jobobs_run_duration_seconds_bucket")[("+Inf", name)] == count


# -- the collector on a runtime's store ----------------------------------------------------


def test_the_collector_shows_what_sql_says(rt):
    done = [rt.submit(jobs.steps, 10, 0.0, 3), rt.submit(jobs.steps, 6, 0.0, 2),
            rt.submit(jobs.boom), rt.submit(jobs.noop), rt.submit(jobs.warns)]
    retrying = rt.submit(jobs.boom, name="boom-again", retry=Retry(1, delay=3600))
    rt.submit(jobs.noop, start=False)
    for job in done:
        rt.wait(job.id, timeout=30)
    wait_until(lambda: rt.job(retrying.id).retry_at, timeout=30, message="a retry planned")
    rt.flush()
    samples = scrape(Metrics(rt.store, rt.ledger))

    def sql(query):
        return rt.store.reader().execute(query).fetchall()

    assert_equal_to_sql(samples, sql)
    assert of(samples, "jobobs_jobs")[("finished",)] == 4  # steps, steps, noop, warns
    assert of(samples, "jobobs_rows_rejected_total")[("steps",)] == 4 + 3
    assert of(samples, "jobobs_jobs_ended_total")[("boom", "failed")] == 1
    assert of(samples, "jobobs_journal_lines_total")[("ERROR",)] >= 2
    # the retry waits an hour: queued, but not waiting for a worker until then
    assert of(samples, "jobobs_jobs")[("queued",)] == 1
    assert of(samples, "jobobs_retries_waiting")[()] == 1
    assert of(samples, "jobobs_queue_depth")[()] == 0
    later = scrape(Metrics(rt.store, rt.ledger, clock=lambda: time.time() + 7200))
    assert of(later, "jobobs_retries_waiting")[()] == 0
    assert of(later, "jobobs_queue_depth")[()] == 1
    assert set(of(samples, "jobobs_metrics_unavailable").values()) == {0}
    assert of(samples, "jobobs_alerts_open")[()] == 0
    assert of(samples, "jobobs_schedules") == {("false",): 0, ("true",): 0}


def test_the_runtimes_health_is_its_ledgers(tmp_path):
    store = Store(str(tmp_path / "jobs.duckdb"))
    ledger = Ledger(store, clock=lambda: 1_700_000_000.5)
    metrics = Metrics(store, ledger, clock=lambda: 1_700_000_000.5)
    try:
        row = ledger.create(name="health", kind="python", spec=None, actor="test", queue=True)
        ledger.line(row.id, "INFO", "one line")
        before = scrape(metrics)
        assert of(before, "jobobs_runtime_pending_writes") == {
            ("jobs",): 1, ("transitions",): 2, ("lines",): 1, ("rejects",): 0,
            ("requests",): 0, ("schedules",): 0}
        assert of(before, "jobobs_runtime_last_write_timestamp_seconds") == {}
        assert of(before, "jobobs_jobs")[("queued",)] == 0  # not written yet
        ledger.flush()
        after = scrape(metrics)
        assert set(of(after, "jobobs_runtime_pending_writes").values()) == {0}
        assert of(after, "jobobs_runtime_last_write_timestamp_seconds") == {(): 1_700_000_000.5}
        assert of(after, "jobobs_jobs")[("queued",)] == 1
        assert of(after, "jobobs_queue_depth")[()] == 1
        with store.transaction() as con:  # a submission from another process, not taken yet
            con.execute("""INSERT INTO job_commands (id, command, requested_at, requested_by,
                           spec) VALUES (nextval('command_id_seq'), 'submit', now(), 'x', '{}')""")
        assert of(scrape(metrics), "jobobs_queue_depth")[()] == 2
    finally:
        store.close()


def test_a_part_that_fails_is_logged_once_and_the_rest_is_answered(rt, caplog):
    rt.wait(rt.submit(jobs.noop).id, timeout=30)
    with rt.store.transaction() as con:  # an alerts table of the wrong shape
        con.execute("ALTER TABLE alerts RENAME TO alerts_kept")
        con.execute("CREATE TABLE alerts (id INTEGER)")
    metrics = Metrics(rt.store, rt.ledger)
    with caplog.at_level(logging.ERROR, logger="jobobs.access.metrics"):
        first, second = scrape(metrics), scrape(metrics)
    assert [r.getMessage() for r in caplog.records if r.name == "jobobs.access.metrics"] == [
        "jobobs: the alerts metrics could not be read; the scrape answers without them"]
    for samples in (first, second):
        assert of(samples, "jobobs_metrics_unavailable")[("alerts",)] == 1
        assert of(samples, "jobobs_alerts_open") == {}
        assert of(samples, "jobobs_jobs")[("finished",)] == 1
    with rt.store.transaction() as con:  # the table as it is
        con.execute("DROP TABLE alerts")
        con.execute("ALTER TABLE alerts_kept RENAME TO alerts")
        con.execute("""INSERT INTO alerts (id, rule, kind, subject, summary, opened_at,
                       resolved_at) VALUES (1, 'r', 'failed', 'job 1', 's', now(), NULL),
                       (2, 'r', 'failed', 'job 2', 's', now(), now()),
                       (3, 'r', 'failed', 'job 3', 's', now(), NULL)""")
    fixed = scrape(metrics)
    assert of(fixed, "jobobs_alerts_open") == {(): 2}
    assert set(of(fixed, "jobobs_metrics_unavailable").values()) == {0}


# -- a real server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``jobobs serve`` on a new database, with jobs of known outcome submitted through a
    client and ended."""
    db = str(tmp_path_factory.mktemp("metrics") / "jobs.duckdb")
    server = Server(db).wait_ready()
    try:
        with jobobs.connect(db) as client:
            ids = [client.submit("jobs:steps", 12, 0.0, 4), client.submit("jobs:steps", 5, 0.0),
                   client.submit("jobs:boom"), client.submit("jobs:noop"),
                   client.submit("jobs:warns", name="warns-named")]
            for job_id in ids:
                client.wait(job_id, timeout=60, progress=False)
        yield server
    finally:
        assert server.stop() == 0, server.output()


def get(server, token: str | None) -> tuple[int, str, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(server.dashboard + "metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def test_a_scrape_over_http_shows_what_sql_says(served):
    status, body, headers = get(served, served.analyst_token)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f.type for f in text_string_to_metric_families(body)}
    assert families == TYPES
    samples = parsed(body)
    with jobobs.connect(served.db) as client:
        def sql(query):
            return list(client.sql(query).itertuples(index=False, name=None))

        assert_equal_to_sql(samples, sql)
    assert of(samples, "jobobs_jobs")[("finished",)] == 4
    assert of(samples, "jobobs_jobs")[("failed",)] == 1
    assert of(samples, "jobobs_rows_processed_total")[("steps",)] == 12 + 5
    assert of(samples, "jobobs_rows_rejected_total")[("steps",)] == 3
    assert of(samples, "jobobs_run_duration_seconds_count")[("warns-named",)] == 1
    assert of(samples, "jobobs_queue_depth")[()] == 0
    assert set(of(samples, "jobobs_metrics_unavailable").values()) == {0}
    written = of(samples, "jobobs_runtime_last_write_timestamp_seconds")[()]
    assert time.time() - 60 < written <= time.time()


def test_metrics_need_the_analyst_token(served):
    for token in (None, "", served.token, served.analyst_token[:-1] + "x"):
        status, body, headers = get(served, token)
        assert status == 401, token
        assert body == "this route needs the analyst token (Authorization: Bearer ...)\n"
        assert headers["WWW-Authenticate"] == 'Bearer realm="jobobs"'
    assert get(served, served.analyst_token)[0] == 200
