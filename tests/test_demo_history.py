"""Issue 18: the demo's 30 days of history, and the Analytics page drawn on it with axes a
person reads (dates, durations in s/min/h, whole counts with thousands separators)."""

import time
from datetime import datetime, timedelta

import duckdb
import holoviews as hv
import pandas as pd
import pytest
from bokeh.models import DatetimeAxis, NumeralTickFormatter

import jobobs
from jobobs import demodata
from jobobs.access import analytics
from jobobs.dashboard.analyticspage import Analytics
from jobobs.demo import score_customers
from jobobs.testing import wait_until

NOW = datetime(2026, 12, 2, 18, 30)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("history") / "demo.duckdb")
    started = time.perf_counter()
    written = demodata.history(db, now=NOW)
    return db, written, time.perf_counter() - started


def test_the_history_is_a_month_of_believable_runs(history):
    db, written, _ = history
    assert 2000 <= written <= 5000
    with duckdb.connect(db, read_only=True) as con:
        first, last, names, failed, warned = con.execute(
            """SELECT min(created_at), max(finished_at), count(DISTINCT name),
                      count(*) FILTER (WHERE status = 'failed'),
                      count(*) FILTER (WHERE has_warning) FROM jobs""").fetchone()
        assert NOW - first > timedelta(days=29) and last < NOW
        assert names >= 10 and failed > 20 and warned > 20
        assert set(demodata.RHYTHM) == {row[0] for row in con.execute(
            "SELECT DISTINCT name FROM jobs").fetchall()}
        assert con.execute("SELECT count(*) FROM jobs WHERE status = 'failed' AND NOT "
                           "regexp_matches(error, '^[A-Za-z.]+: ')").fetchone()[0] == 0
        reasons = con.execute("""SELECT count(DISTINCT reason), count(DISTINCT column_name),
                                        count(*) FROM rejects""").fetchone()
        assert reasons[0] >= 4 and reasons[1] >= 5 and reasons[2] > 1000
        assert con.execute("""SELECT count(*) FROM jobs j WHERE rejected <>
                                  (SELECT count(*) FROM rejects r WHERE r.job_id = j.id)
                           """).fetchone()[0] == 0  # each reject counted is there
        slower = con.execute("""SELECT count(*) FROM job_runs r JOIN (
                                    SELECT name, median(duration_s) AS usual FROM job_runs
                                    GROUP BY name) m USING (name)
                                WHERE status = 'finished' AND duration_s > 2 * usual
                             """).fetchone()[0]
        assert slower >= len(demodata.SLOW)
        assert con.execute("""SELECT count(*) FROM jobs j WHERE NOT EXISTS (
                                  SELECT 1 FROM journal l WHERE l.job_id = j.id)
                           """).fetchone()[0] == 0
        assert con.execute("""SELECT count(*) FROM jobs j WHERE transition_seq <>
                                  (SELECT max(seq) FROM job_transitions t
                                   WHERE t.job_id = j.id AND t.to_status = j.status)
                           """).fetchone()[0] == 0  # each job's transitions end in its status
        by_hour = dict(con.execute(
            """SELECT hour(started_at) BETWEEN 11 AND 17, median(duration_s / m.usual)
               FROM job_runs JOIN (SELECT name, median(duration_s) AS usual FROM job_runs
                                   GROUP BY name) m USING (name) GROUP BY 1""").fetchall())
        assert by_hour[True] > 1.15 * by_hour[False]  # slower in working hours


def test_every_analytics_question_has_an_answer_on_the_history(history):
    db, _, _ = history
    since = NOW - timedelta(days=30)
    with duckdb.connect(db, read_only=True) as con:
        answers = {
            "durations": analytics.durations(con, since),
            "trend": analytics.duration_trend(con, since, bucket="day"),
            "summary": analytics.duration_summary(con, since),
            "throughput": analytics.throughput(con, since, bucket="day"),
            "statuses": analytics.status_over_time(con, since, bucket="day"),
            "failures": analytics.failures(con, since),
            "reasons": analytics.rejects_by(con, since, by="reason"),
            "columns": analytics.rejects_by(con, since, by="column_name"),
            "sources": analytics.rejects_by(con, since, by="source"),
            "timeline": analytics.timeline(con, since),
            "slowest": analytics.slowest(con, since),
            "slow": analytics.slow_runs(con, since),
        }
        assert not [key for key, frame in answers.items() if frame.empty]
        assert len(answers["trend"]["bucket"].unique()) >= 30
        assert answers["summary"]["processed"].dtype.kind == "i"  # 20,200, not 20,200.0
        assert answers["throughput"]["processed"].dtype.kind == "i"
        slow = set(answers["slow"]["name"])
        assert {name for name, _, _ in demodata.SLOW} <= slow
        assert analytics.failure_detail(con, int(answers["failures"]["last_job_id"][0])) \
            .startswith("Traceback (most recent call last)")


def test_the_history_comes_once_and_before_the_demos_jobs(tmp_path):
    db = str(tmp_path / "demo.duckdb")
    written = demodata.history(db, now=NOW)
    with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
        live = rt.submit(score_customers, 3, 0.0, name="score-customers").id
        rt.run_until_idle(timeout=30)
    assert live == written + 1
    assert demodata.history(db, now=NOW) == 0  # there is history already: left as it is
    assert demodata.history(db) == 0
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM jobs").fetchone() == (
            written + 1, written + 1)
        assert con.execute("SELECT status FROM jobs WHERE id = ?", [live]).fetchone() == (
            "finished",)
    other = str(tmp_path / "again.duckdb")
    assert demodata.history(other, now=NOW) == written
    with duckdb.connect(db, read_only=True) as one, duckdb.connect(other, read_only=True) as two:
        query = "SELECT * EXCLUDE (id) FROM jobs WHERE id <= ? ORDER BY id"
        assert one.execute(query, [written]).fetchall() == two.execute(
            query, [written]).fetchall()  # deterministic


def test_the_analytics_figures_read_as_dates_durations_and_counts(history):
    db, _, _ = history
    hv.extension("bokeh")
    with jobobs.connect(db) as client:
        page = Analytics(client)
        page.window = "all time"
        renderer = hv.renderer("bokeh")
        for key, figure in page.figures.items():
            state = renderer.get_plot(figure).state
            for axis in [*state.xaxis, *state.yaxis]:
                if isinstance(axis, DatetimeAxis):
                    formats = axis.formatter.properties_with_values()
                    assert not any("ms" in str(formats[unit]) or "%3N" in str(formats[unit])
                                   for unit in ("milliseconds", "seconds", "minsec")), key
                elif axis.formatter.__class__.__name__ != "CategoricalTickFormatter":
                    assert isinstance(axis.formatter, NumeralTickFormatter), (key, axis)
                    assert axis.formatter.format.startswith("0,0"), key
        trend = renderer.get_plot(page.figures["trend"]).state
        assert trend.yaxis[0].axis_label in ("Duration (min)", "Duration (h)")
        assert trend.xaxis[0].formatter.days == "%b %d"
        assert page.summary.value["processed"].dtype.kind == "i"
        assert not page.slow.value.empty  # "Slower than usual" has runs to show


def test_a_figure_follows_its_data_out_of_its_first_range(history):
    """An empty first window, then a month: the axes move to the month (framewise)."""
    db, _, _ = history
    hv.extension("bokeh")
    with jobobs.connect(db) as client:
        page = Analytics(client)
        page.window = "last hour"
        plot = hv.renderer("bokeh").get_plot(page.figures["throughput"])
        page.window = "all time"
        data = page.pipes["throughput"].data
        start, first = pd.Timestamp(plot.state.x_range.start), data["bucket"].min()
        assert abs(start - first) < timedelta(days=2), (start, first)


# The colors the figures draw their data in: a figure with no data (or drawn out of its
# axes' range) leaves its color out.
DATA_COLORS = {"durations": "#0891b2", "trend p50": "#2563eb", "trend p95": "#dc2626",
               "throughput": "#15803d", "rejects": "#b45309"}
DRAWN = """(canvases, wanted) => {
    const seen = new Set();
    for (const canvas of canvases) {
        const context = canvas.getContext("2d");
        if (!context || !canvas.width || !canvas.height) continue;
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < pixels.length; i += 4) {
            const hex = "#" + [0, 1, 2].map(
                k => pixels[i + k].toString(16).padStart(2, "0")).join("");
            if (wanted.includes(hex)) seen.add(hex);
        }
    }
    return [...seen];
}"""


@pytest.mark.slow
def test_the_analytics_page_draws_every_figure_on_the_history(browser, tmp_path):
    from playwright.sync_api import expect
    from serving import Server, open_page

    db = str(tmp_path / "demo.duckdb")
    demodata.history(db)
    server = Server(db, workers=1).wait_ready(timeout=60)
    try:
        page = open_page(browser, server.dashboard, width=1600)
        page.get_by_text("Analytics", exact=True).click()
        expect(page.get_by_text("Per job name")).to_be_visible(timeout=30_000)
        page.get_by_label("Window").select_option("last 30 days")
        wanted = sorted(set(DATA_COLORS.values()))

        def drawn() -> bool:
            return sorted(page.locator("canvas").evaluate_all(DRAWN, wanted)) == wanted

        wait_until(drawn, timeout=60, interval=1, message="every figure's data drawn")
        expect(page.get_by_text("fetch signups").first).to_be_visible()
        expect(page.get_by_text("Times usual", exact=True)).to_be_visible()  # slower: runs
        expect(page.get_by_text("Failed %", exact=True)).to_be_visible()  # headers in words
        page.context.close()
    finally:
        assert server.stop() == 0, server.output()
