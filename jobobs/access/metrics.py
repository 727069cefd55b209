"""``GET /metrics``: the jobs' numbers for Prometheus, in its text format.

``Metrics`` is a prometheus_client collector: at each scrape it reads the database on the
runtime's read cursors (a few aggregate queries; nothing is counted on the side) and the
runtime's ledger (its last write and what waits for the next one). ``jobobs serve`` answers
``GET /metrics`` on the dashboard's port to whoever sends the analyst token as a bearer
token (job names are not for everyone on the network)::

    curl -H "Authorization: Bearer $(cat jobs.duckdb.analyst-token)" \\
         http://127.0.0.1:5006/metrics

The counters (rows, journal lines, the duration histogram's counts) are read from the
history, so a purge lowers them: Prometheus takes that for a counter reset. A part that
cannot be read is logged and left out (``jobobs_metrics_unavailable`` says which); the
rest is answered.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate
from typing import Any

import tornado.web
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from tornado.ioloop import IOLoop

from jobobs.db.store import ts
from jobobs.execution.loop import Repeated
from jobobs.model.errors import RuntimeClosed, one_line
from jobobs.model.rows import LEVELS
from jobobs.model.states import TERMINAL, Status

log = logging.getLogger(__name__)

PATH = "/metrics"
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
# a job's active time, from a quick step to a long night's load: 1 s to 6 h
BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 21600)
ENDED = tuple(sorted(s.value for s in TERMINAL))

# One scan of the jobs table, grouped by name, status and (for finished jobs) the bucket of
# their active time: a CASE and a GROUP BY cost a quarter of a FILTERed count per bucket.
BUCKET = ("CASE WHEN status = 'finished' AND run_count > 0 THEN CASE "
          + " ".join(f"WHEN active_seconds <= {b} THEN {i}" for i, b in enumerate(BUCKETS))
          + f" ELSE {len(BUCKETS)} END END")
JOBS_SQL = f"""SELECT name, status, {BUCKET}, count(*), sum(processed), sum(rejected),
                      sum(active_seconds)
               FROM jobs GROUP BY ALL ORDER BY ALL"""
WAITING_SQL = """
SELECT (SELECT count(*) FROM jobs WHERE status = 'queued' AND retry_at > ?),
       (SELECT count(*) FROM job_commands WHERE command = 'submit' AND handled_at IS NULL)
"""
JOURNAL_SQL = "SELECT level, count(*) FROM journal GROUP BY level"
SCHEDULES_SQL = "SELECT enabled, count(*) FROM schedules GROUP BY enabled"
ALERTS_SQL = "SELECT count(*) FROM alerts WHERE resolved_at IS NULL"


class Metrics:
    """The collector: ``collect()`` yields the metric families, read from ``store`` (and
    ``ledger``, the runtime's, for its health) when called. ``clock`` tells which retries
    are still waiting for their time."""

    def __init__(self, store: Any, ledger: Any = None, clock: Callable[[], float] = time.time):
        self.store, self.ledger, self.clock = store, ledger, clock
        self.parts: dict[str, Callable[[Any, float], list[Metric]]] = {
            "jobs": self._jobs, "journal": self._journal, "schedules": self._schedules,
            "alerts": self._alerts, "runtime": self._runtime}
        self._trouble = {part: Repeated(log, f"the {part} metrics could not be read; the "
                                             "scrape answers without them")
                         for part in self.parts}

    def collect(self) -> Iterator[Metric]:
        cursor = self.store.reader()  # RuntimeClosed once the server stops
        now = self.clock()
        unavailable = GaugeMetricFamily(
            "jobobs_metrics_unavailable", "1 for each part of these metrics that could not "
            "be read in this scrape (the server's log says why); its metrics are missing",
            labels=["part"])
        for part, read in self.parts.items():
            try:
                families = read(cursor, now)
            except RuntimeClosed:
                raise
            except Exception as error:
                self._trouble[part].failed(error)
                unavailable.add_metric([part], 1)
                continue
            self._trouble[part].recovered()
            unavailable.add_metric([part], 0)
            yield from families
        yield unavailable

    def _jobs(self, cursor: Any, now: float) -> list[Metric]:
        statuses = dict.fromkeys((s.value for s in Status), 0)
        ended: dict[tuple[str, str], int] = defaultdict(int)
        rows = {"processed": defaultdict(int), "rejected": defaultdict(int)}
        buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        seconds: dict[str, float] = defaultdict(float)
        for (name, status, bucket, jobs, processed, rejected,
             active) in cursor.execute(JOBS_SQL).fetchall():
            statuses[status] = statuses.get(status, 0) + jobs
            rows["processed"][name] += int(processed)
            rows["rejected"][name] += int(rejected)
            if status in ENDED:
                ended[name, status] += jobs
            if bucket is not None:
                buckets[name][bucket] += jobs
                seconds[name] += active
        later, submissions = cursor.execute(WAITING_SQL, [ts(now)]).fetchone()
        by_status = GaugeMetricFamily("jobobs_jobs", "Jobs by status", labels=["status"])
        for status, count in statuses.items():
            by_status.add_metric([status], count)
        ends = CounterMetricFamily("jobobs_jobs_ended", "Jobs that ended, by name and status",
                                   labels=["name", "status"])
        for (name, status), count in ended.items():
            ends.add_metric([name, status], count)
        durations = HistogramMetricFamily(
            "jobobs_run_duration_seconds", "Seconds finished jobs spent running, by name "
            "(their active time, summed over their runs: pauses and waits for a retry left "
            "out)", labels=["name"])
        bounds = [*(floatToGoString(b) for b in BUCKETS), "+Inf"]
        for name, counts in buckets.items():
            durations.add_metric([name], list(zip(bounds, accumulate(counts))), seconds[name])
        counters = []
        for what, counts in rows.items():
            family = CounterMetricFamily(f"jobobs_rows_{what}", f"Rows {what} by jobs of "
                                         "this name (the jobs' own counters)", labels=["name"])
            for name, count in counts.items():
                family.add_metric([name], count)
            counters.append(family)
        return [
            by_status,
            GaugeMetricFamily("jobobs_queue_depth", "Jobs waiting for a free worker: queued "
                              "jobs not waiting for a retry's time, and submissions the "
                              "runtime has not taken yet",
                              value=statuses[Status.QUEUED.value] - later + submissions),
            GaugeMetricFamily("jobobs_retries_waiting", "Queued jobs waiting for the time of "
                              "their retry", value=later),
            ends, durations, *counters,
        ]

    def _journal(self, cursor: Any, now: float) -> list[Metric]:
        counts = dict.fromkeys(LEVELS, 0) | dict(cursor.execute(JOURNAL_SQL).fetchall())
        lines = CounterMetricFamily("jobobs_journal_lines", "Journal lines jobs wrote, by "
                                    "level", labels=["level"])
        for level, count in counts.items():
            lines.add_metric([level], count)
        return [lines]

    def _schedules(self, cursor: Any, now: float) -> list[Metric]:
        counts = {False: 0, True: 0} | dict(cursor.execute(SCHEDULES_SQL).fetchall())
        schedules = GaugeMetricFamily("jobobs_schedules", "Schedules, enabled or paused",
                                      labels=["enabled"])
        for enabled, count in counts.items():
            schedules.add_metric([str(enabled).lower()], count)
        return [schedules]

    def _alerts(self, cursor: Any, now: float) -> list[Metric]:
        count = cursor.execute(ALERTS_SQL).fetchone()[0]
        return [GaugeMetricFamily("jobobs_alerts_open", "Alerts not resolved yet", value=count)]

    def _runtime(self, cursor: Any, now: float) -> list[Metric]:
        if self.ledger is None:
            return []
        written = GaugeMetricFamily(
            "jobobs_runtime_last_write_timestamp_seconds", "When the runtime last wrote what "
            "its jobs reported (Unix time; it writes every 0.1 s, and with nothing to write "
            "that counts too): an old value means its writes fail or it is stuck")
        if self.ledger.last_write is not None:
            written.add_metric([], self.ledger.last_write)
        pending = GaugeMetricFamily("jobobs_runtime_pending_writes", "Records waiting for the "
                                    "runtime's next write, by kind", labels=["kind"])
        for kind, count in self.ledger.pending().items():
            pending.add_metric([kind], count)
        return [written, pending]


class Route:
    """``GET /metrics``: ``collector``'s metrics for whoever ``authorized(header)``
    accepts, one scrape at a time on a thread of its own."""

    def __init__(self, collector: Metrics, authorized: Callable[[str], bool]):
        self.collector, self.authorized = collector, authorized
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="jobobs-metrics")
        self.closed = False

    def pattern(self) -> tuple[str, type, dict[str, Any]]:
        """The route, for Tornado's (and so Panel's) ``extra_patterns``."""
        return PATH, MetricsHandler, {"route": self}

    def scrape(self) -> bytes:
        return generate_latest(self.collector)

    def close(self) -> None:
        """Refuse new scrapes and wait for the one under way (before the store closes)."""
        self.closed = True
        self.pool.shutdown(wait=True, cancel_futures=True)


class MetricsHandler(tornado.web.RequestHandler):
    """One scrape; errors are one line of text."""

    def initialize(self, route: Route) -> None:
        self.route = route

    async def get(self) -> None:
        if not self.route.authorized(self.request.headers.get("Authorization", "")):
            self.set_header("WWW-Authenticate", 'Bearer realm="jobobs"')
            return self._error(401, "this route needs the analyst token "
                                    "(Authorization: Bearer ...)")
        if self.route.closed:
            return self._error(503, "the server is stopping")
        try:
            body = await IOLoop.current().run_in_executor(self.route.pool, self.route.scrape)
        except RuntimeClosed:
            return self._error(503, "the server is stopping")
        except Exception as error:  # a part's failure is answered around; this is not
            log.exception("jobobs: a scrape of /metrics failed")
            return self._error(503, f"the metrics could not be read: {one_line(error)}")
        self.set_header("Content-Type", TEXT_FORMAT)
        self.finish(body)

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message + "\n")
