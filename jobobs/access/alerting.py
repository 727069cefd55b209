"""The server's alert watch: its rules (``jobobs.access.alertrules``) evaluated on the live
tables every few seconds, alerts opened and resolved in the ``alerts`` table, and their
notifications handed to a ``jobobs.access.notify.Notifier``.

What each kind finds, for the jobs (and schedules) in its rule's scope:

- ``failed`` / ``shutdown``: a job in that status, while it stays in it (a retry or a
  resume resolves it);
- ``slow``: a job executing longer than ``after`` seconds, or ``times`` x the median
  duration of the ``runs`` last finished runs of its name (with at least 3 of them), raised
  while it runs; durations are active time (``jobs.active_seconds``, and the run under way
  so far), so a pause or a retry's wait does not count;
- ``rejects``: a job whose rejects reach ``count``, or whose share of rejected rows reaches
  ``rate`` or ``times`` x its name's usual share (once ``min_rows`` rows are processed),
  while it runs or once it ended; the alert carries the top reasons and columns and three
  sample lines;
- ``stalled``: a running job with no progress, journal line or checkpoint for ``after``
  seconds;
- ``late``: a schedule's run not started ``after`` seconds past its tick (a job still
  waiting for a worker, or a tick that made none: the server was down or stuck);
- ``missed``: a schedule's run not finished ``after`` seconds past its tick.

Each alert has a subject (``job 42 run 1``; ``job 42`` for rejects, which a resumed run
carries on; ``schedule nightly tick 2026-12-02 02:00:00``); a rule opens one alert per
subject, once, and resolves it when its finding is gone: never every tick, never again for
the same subject. A tick reads the jobs that are active and those changed since the last
tick (at start: in the hour before, what ended while no server watched, and the jobs of the
open alerts); a job that did not change keeps its alerts as they are. The usual durations
and reject rates of each job name are read once and then kept up to date from the jobs that
finish, so a tick on a long history costs a few milliseconds. Open alerts of a rule no
longer given are resolved at start.

Writes are one transaction per tick; one that fails is logged and tried again at the next
tick. Notifications never hold the watch up: the notifier has its own thread.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jobobs.access.alertrules import SCHEDULE_KINDS, Rule
from jobobs.access.analytics import SLOW_MINIMUM, times_usual
from jobobs.db.store import epoch, ts
from jobobs.execution.loop import Repeated
from jobobs.model.errors import RuntimeClosed, one_line
from jobobs.model.states import ACTIVE, EXECUTING, LABELS, Status

log = logging.getLogger(__name__)

EVERY = 5.0         # seconds between ticks
LOOKBACK = 3600.0   # at start, the jobs that ended this long before are looked at too
MARGIN = 300.0      # each tick looks again at this many seconds before the last one (a
                    # job's change is stamped before its write commits, which may take long)
MOST_ERROR = 2000   # characters of a job's error an alert's detail carries
SAMPLES = 3         # sample lines of the rejected input
PURGE_LOOK = 60.0   # seconds between looks for the purged jobs of open alerts
TOP = 5             # top reject reasons and columns

JOB_FIELDS = ("id", "name", "status", "run_count", "schedule", "started_at", "finished_at",
              "updated_at", "checkpoint_at", "processed", "rejected", "error",
              "active_seconds")
# One scan per active status and one of the jobs changed since: each filter is applied in
# the scan (an IN list or an OR is not, and reads every row of a long history).
_SELECT = f"SELECT {', '.join(JOB_FIELDS)} FROM jobs WHERE"
CANDIDATES_SQL = " UNION ALL ".join(
    [f"{_SELECT} status = '{s.value}'" for s in sorted(ACTIVE)]
    + [f"{_SELECT} updated_at >= ?"])
HISTORY_SQL = """
SELECT name, max_by({'id': id, 'took': active_seconds,
                     'rate': CASE WHEN processed > 0 THEN rejected / processed END}, id, ?)
FROM jobs WHERE status = 'finished' AND started_at IS NOT NULL
     AND name IN (SELECT unnest(?::VARCHAR[]))
GROUP BY name
"""
PRESENT_SQL = "SELECT id FROM jobs WHERE id IN (SELECT unnest(?::BIGINT[]))"
THESE_SQL = f"{_SELECT} id IN (SELECT unnest(?::BIGINT[]))"
RUN_START_SQL = """SELECT max(changed_at) FROM job_transitions
                   WHERE job_id = ? AND to_status = 'running'"""
SCHEDULES_SQL = """
SELECT s.name, s.enabled, s.next_run_at, s.last_job_id, j.name, j.status, j.created_at,
       j.started_at, j.run_count
FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id
"""
LAST_LINE_SQL = """SELECT job_id, max(logged_at) FROM journal
                   WHERE job_id >= ? AND job_id IN ({}) GROUP BY ALL"""  # >=: fewer blocks
OPEN_SQL = """SELECT id, rule, subject, kind, job_id, job_name, schedule, run, summary,
                     detail, opened_at FROM alerts WHERE resolved_at IS NULL"""
REASONS_SQL = """SELECT reason, column_name, count(*) FROM rejects WHERE job_id = ?
                 GROUP BY ALL ORDER BY 3 DESC, 1, 2 LIMIT ?"""
SAMPLES_SQL = """SELECT source, line_no, coalesce(raw, record, message) FROM rejects
                 WHERE job_id = ? AND kind = 'error' ORDER BY seq LIMIT ?"""
ALERT_INSERT = """INSERT INTO alerts (id, rule, kind, subject, job_id, job_name, schedule, run,
                  summary, detail, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
ALERT_RESOLVE = "UPDATE alerts SET resolved_at = ?, resolution = ? WHERE id = ?"


def span(seconds: float) -> str:
    """A duration as people say it: 45 s, 3 min 20 s, 2 h 05 min."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def label(status: str | None) -> str:
    try:
        return LABELS[Status(status)]
    except ValueError:
        return str(status)


@dataclass
class Finding:
    """What a rule found about one subject, this tick."""

    rule: Rule
    subject: str
    summary: str
    job: dict[str, Any] | None = None
    schedule: str | None = None
    detail: str | None = None
    more: Callable[[], str] | None = None  # more detail, read only when the alert opens


@dataclass
class Alert:
    """An open alert, as the watch keeps it."""

    id: int
    rule: str
    subject: str
    kind: str
    job_id: int | None
    job_name: str | None
    schedule: str | None
    run: int | None
    summary: str
    detail: str | None
    opened_at: float

    def message(self, status: str | None = None, error: str | None = None,
                resolved_at: float | None = None) -> dict[str, Any]:
        """The alert as ``notify.message`` reads it."""
        return {**self.__dict__, "status": status, "error": error,
                "resolved_at": resolved_at}


class Usual:
    """The last finished runs of each job name: their durations and reject rates, read
    once per name and then kept from the jobs that finish."""

    def __init__(self, runs: int):
        self.runs = max(runs, 1)
        self.names: dict[str, deque[tuple[int, float, float | None]]] = {}

    def read(self, cursor: Any, names: Iterable[str]) -> None:
        """Read the last runs of the names not followed yet, in one scan."""
        missing = sorted({name for name in names if name not in self.names})
        if not missing:
            return
        for name in missing:
            self.names[name] = deque(maxlen=self.runs)
        for name, last in cursor.execute(HISTORY_SQL, [self.runs, missing]).fetchall():
            self.names[name].extend((r["id"], r["took"], r["rate"]) for r in reversed(last))

    def of(self, cursor: Any, name: str) -> deque[tuple[int, float, float | None]]:
        self.read(cursor, [name])
        return self.names[name]

    def finished(self, job: dict[str, Any]) -> None:
        """A job that finished: one more run of its name (if its name is followed)."""
        known = self.names.get(job["name"])
        if known is None or (known and job["id"] <= known[-1][0]):
            return
        if job["started_at"] is None or job["finished_at"] is None:
            return
        rate = job["rejected"] / job["processed"] if job["processed"] else None
        known.append((job["id"], job["active_seconds"], rate))

    def duration(self, cursor: Any, name: str, runs: int) -> float | None:
        """The median duration of the name's ``runs`` last finished runs (None with
        fewer than SLOW_MINIMUM)."""
        last = list(self.of(cursor, name))[-runs:]
        return statistics.median(d for _, d, _ in last) if len(last) >= SLOW_MINIMUM else None

    def rate(self, cursor: Any, name: str, runs: int) -> float | None:
        last = [r for _, _, r in list(self.of(cursor, name))[-runs:] if r is not None]
        return statistics.median(last) if len(last) >= SLOW_MINIMUM else None


class Watch:
    """Evaluates ``rules`` every ``every`` seconds on ``store`` (a thread of its own once
    ``start``ed; ``tick(now)`` is one evaluation, for tests and benchmarks). ``send(alert,
    event, targets)`` is called for each alert opened and, if its rule says so, resolved;
    ``clock`` gives the time."""

    def __init__(self, store: Any, rules: Sequence[Rule], *,
                 send: Callable[[dict[str, Any], str, Sequence[str]], None] | None = None,
                 clock: Callable[[], float] = time.time, every: float = EVERY,
                 lookback: float = LOOKBACK):
        self.store, self.rules, self.send, self.clock = store, list(rules), send, clock
        self.every, self.lookback = every, lookback
        self.by_name = {rule.name: rule for rule in self.rules}
        self.usual = Usual(max([r.runs for r in self.rules if r.times] or [1]))
        self.open: dict[tuple[str, str], Alert] = {}
        self.done: set[tuple[str, str]] = set()  # subjects whose alert was resolved
        self.last: float | None = None           # the time of the last tick
        self.loaded = False
        self.run_starts: dict[tuple[int, int], float] = {}  # (job, run): its start
        self.looked: float | None = None  # when the purged jobs were last looked for
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trouble = Repeated(log, "the alert rules could not be evaluated; they are "
                                      "tried again at the next tick")

    # -- the thread ----------------------------------------------------------------------

    def start(self) -> Watch:
        """The first tick here (what ended while no server watched is judged before the
        server answers anyone), the next ones every ``every`` seconds on a thread."""
        if self._step():
            self._thread = threading.Thread(target=self._run, name="jobobs-alerts",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._trouble.delay(self.every)):
            if not self._step():
                return

    def _step(self) -> bool:
        """One tick, its failure logged (once while it lasts); False once the store is
        closed."""
        try:
            self.tick()
        except RuntimeClosed:
            return False
        except Exception as error:
            self._trouble.failed(error)
        else:
            self._trouble.recovered()
        return True

    # -- one tick ------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> tuple[list[Alert], list[Alert]]:
        """Evaluate every rule once; return the alerts opened and those resolved."""
        now = self.clock() if now is None else now
        cursor = self.store.reader()
        if not self.loaded:
            self._load(cursor, now)
        since = (now - self.lookback) if self.last is None else min(now, self.last) - MARGIN
        findings: dict[tuple[str, str], Finding] = {}
        jobs = self._jobs(cursor, since)
        if self.last is None:  # what changed while no server watched, however long ago
            jobs |= self._jobs(cursor, None, ids=[a.job_id for a in self.open.values()
                                                  if a.job_id is not None])
        if any(rule.times for rule in self.rules):  # the names' usual, for all at once
            self.usual.read(cursor, {job["name"] for job in jobs.values()
                                     if job["status"] in ACTIVE})
        for job in jobs.values():
            if job["status"] == Status.FINISHED and job["finished_at"] is not None:
                self.usual.finished(job)
        for rule in self.rules:
            if rule.when in ("late", "missed"):
                continue
            for job in jobs.values():
                if rule.watches(job["name"], job["schedule"]):
                    found = self._judge(cursor, rule, job, now)
                    if found is not None:
                        findings[rule.name, found.subject] = found
        self.run_starts = {key: at for key, at in self.run_starts.items()
                           if key[0] in jobs and jobs[key[0]]["status"] in EXECUTING}
        self._stalled(cursor, jobs, now, findings)
        if any(rule.when in ("late", "missed") for rule in self.rules):
            self._schedules(cursor, now, findings)
        opened, resolved = self._write(cursor, findings, jobs, now)
        self.last = now
        self._tell(opened, resolved, jobs, now)
        return opened, resolved

    def _load(self, cursor: Any, now: float) -> None:
        """The open alerts; those of rules no longer given are resolved."""
        orphans = []
        for row in cursor.execute(OPEN_SQL).fetchall():
            alert = Alert(*row[:10], opened_at=epoch(row[10]))
            if alert.rule in self.by_name:
                self.open[alert.rule, alert.subject] = alert
            else:
                orphans.append(alert.id)
        if orphans:
            with self.store.transaction() as con:
                con.execute("UPDATE alerts SET resolved_at = ?, resolution = ? "
                            "WHERE id IN (SELECT unnest(?::BIGINT[]))",
                            [ts(now), "its rule is no longer in the server's rules", orphans])
        self.loaded = True

    def _jobs(self, cursor: Any, since: float | None, ids: Sequence[int] = ()
              ) -> dict[int, dict[str, Any]]:
        """The active jobs and those changed since ``since`` (or the jobs ``ids``)."""
        if since is None:
            rows = cursor.execute(THESE_SQL, [sorted(set(ids))]).fetchall() if ids else []
        else:
            rows = cursor.execute(CANDIDATES_SQL, [ts(since)]).fetchall()
        jobs = {}
        for row in rows:
            job = dict(zip(JOB_FIELDS, row))
            for key in ("started_at", "finished_at", "updated_at", "checkpoint_at"):
                job[key] = epoch(job[key])
            jobs[job["id"]] = job
        return jobs

    def _judge(self, cursor: Any, rule: Rule, job: dict[str, Any],
               now: float) -> Finding | None:
        who = f"{job['name']} (job {job['id']})"
        subject = f"job {job['id']} run {job['run_count']}"
        status = job["status"]
        if rule.when in ("failed", "shutdown"):
            if status != rule.when:
                return None
            if rule.when == "failed":
                error = (job["error"] or "").strip()
                first = error.splitlines()[0] if error else "no error recorded"
                return Finding(rule, subject, f"{who} failed: {first}", job=job,
                               detail=error[:MOST_ERROR] if error != first else None)
            return Finding(rule, subject, f"{who} was shut down (the server stopped, "
                           "crashed or lost its worker); `jobobs resume` carries it on",
                           job=job)
        if rule.when == "slow":
            return self._slow(cursor, rule, job, who, subject, now)
        if rule.when == "rejects":  # one per job: a resumed run restores its rejects
            return self._rejects(cursor, rule, job, who, f"job {job['id']}")
        return None  # stalled: all jobs at once (_stalled)

    def _slow(self, cursor: Any, rule: Rule, job: dict[str, Any], who: str, subject: str,
              now: float) -> Finding | None:
        if job["status"] not in EXECUTING or job["started_at"] is None:
            return None
        took = self._active(cursor, job, now)
        if rule.after is not None:
            if took <= rule.after:
                return None
            return Finding(rule, subject, f"{who} has run {span(took)}, longer than "
                           f"{span(rule.after)}", job=job)
        usual = self.usual.duration(cursor, job["name"], rule.runs)
        times = None if usual is None else times_usual(took, usual)
        if times is None or times <= rule.times:
            return None
        return Finding(rule, subject, f"{who} has run {span(took)}, {times:.1f} "
                       f"times its usual {span(usual)}", job=job,
                       detail=f"The usual: the median of the last {rule.runs} finished runs "
                              f"of {job['name']}, {span(usual)}. Alert from "
                              f"{rule.times:g} times it.")

    def _active(self, cursor: Any, job: dict[str, Any], now: float) -> float:
        """A running job's active time: its earlier runs' and this one's so far (a
        resumed or retried job does not count its pause or its wait)."""
        if (job["run_count"] or 0) <= 1:
            return now - job["started_at"]
        key = (job["id"], job["run_count"])
        if key not in self.run_starts:  # once per run
            (began,) = cursor.execute(RUN_START_SQL, [job["id"]]).fetchone()
            self.run_starts[key] = epoch(began) if began is not None else job["started_at"]
        return (job["active_seconds"] or 0.0) + now - self.run_starts[key]

    def _rejects(self, cursor: Any, rule: Rule, job: dict[str, Any], who: str,
                 subject: str) -> Finding | None:
        rejected, processed = job["rejected"] or 0, job["processed"] or 0
        if not rejected:
            return None
        rate = rejected / processed if processed else None
        why = None
        if rule.count is not None and rejected >= rule.count:
            why = f"{who} rejected {rejected:,} rows (the limit: {rule.count:,})"
        elif (rule.rate is not None and rate is not None and processed >= rule.min_rows
              and rate >= rule.rate):
            why = (f"{who} rejected {rate:.1%} of its rows ({rejected:,} of {processed:,}; "
                   f"the limit: {rule.rate:.1%})")
        elif rule.times is not None and rate is not None and processed >= rule.min_rows:
            usual = self.usual.rate(cursor, job["name"], rule.runs)
            if usual is not None and rate > rule.times * usual:
                than = (f"{rate / usual:.1f} times its usual {usual:.1%}" if usual
                        else "where its last runs rejected none")
                why = (f"{who} rejected {rate:.1%} of its rows ({rejected:,} of "
                       f"{processed:,}), {than}")
        if why is None:
            return None
        return Finding(rule, subject, why, job=job,
                       more=lambda: rejects_detail(cursor, job["id"]))

    def _stalled(self, cursor: Any, jobs: dict[int, dict[str, Any]], now: float,
                 findings: dict[tuple[str, str], Finding]) -> None:
        rules = [rule for rule in self.rules if rule.when == "stalled"]
        running = [job for job in jobs.values() if job["status"] == Status.RUNNING]
        if not (rules and running):
            return
        shortest = min(rule.after for rule in rules)
        signs = {job["id"]: max(t for t in (job["started_at"], job["updated_at"],
                                            job["checkpoint_at"], 0.0) if t is not None)
                 for job in running}
        quiet = [job_id for job_id, last in signs.items() if now - last > shortest]
        if quiet:  # their last journal line, for the few that look quiet
            lines = cursor.execute(LAST_LINE_SQL.format(", ".join("?" * len(quiet))),
                                   [min(quiet), *quiet]).fetchall()
            for job_id, logged in lines:
                signs[job_id] = max(signs[job_id], epoch(logged) or 0.0)
        for rule in rules:
            for job in running:
                silent = now - signs[job["id"]]
                if silent > rule.after and rule.watches(job["name"], job["schedule"]):
                    subject = f"job {job['id']} run {job['run_count']}"
                    findings[rule.name, subject] = Finding(
                        rule, subject, f"{job['name']} (job {job['id']}) has shown no "
                        f"progress, journal line or checkpoint for {span(silent)}", job=job)

    def _schedules(self, cursor: Any, now: float,
                   findings: dict[tuple[str, str], Finding]) -> None:
        for (name, enabled, next_run, job_id, job_name, status, made, started,
             runs) in cursor.execute(SCHEDULES_SQL).fetchall():
            next_run, made = epoch(next_run), epoch(made)
            for rule in self.rules:
                if rule.when not in ("late", "missed") or not rule.watches(None, name):
                    continue
                if enabled and next_run is not None and now > next_run + rule.after:
                    subject = f"schedule {name} tick {ts(next_run):%Y-%m-%d %H:%M:%S}"
                    verb = "started" if rule.when == "late" else "run"
                    findings[rule.name, subject] = Finding(
                        rule, subject, f"schedule {name}: no run {verb} for its tick of "
                        f"{ts(next_run):%Y-%m-%d %H:%M:%S} UTC, {span(now - next_run)} ago "
                        "(is the server's control loop held up?)", schedule=name)
                if job_id is None or made is None or now <= made + rule.after:
                    continue
                job = {"id": job_id, "name": job_name, "status": status, "run_count": runs,
                       "schedule": name}
                subject = f"schedule {name} tick {ts(made):%Y-%m-%d %H:%M:%S}"
                if rule.when == "late" and started is None and status in ("queued",
                                                                          "editing"):
                    findings[rule.name, subject] = Finding(
                        rule, subject, f"schedule {name}: its run, {job_name} (job "
                        f"{job_id}), has not started {span(now - made)} after its tick",
                        job=job, schedule=name)
                elif rule.when == "missed" and status != Status.FINISHED:
                    findings[rule.name, subject] = Finding(
                        rule, subject, f"schedule {name}: its run, {job_name} (job "
                        f"{job_id}), has not finished {span(now - made)} after its tick "
                        f"(it is {label(status)})", job=job, schedule=name)

    # -- writing and telling ------------------------------------------------------------

    def _write(self, cursor: Any, findings: dict[tuple[str, str], Finding],
               jobs: dict[int, dict[str, Any]], now: float
               ) -> tuple[list[Alert], list[tuple[Alert, str]]]:
        fresh = [key for key in findings if key not in self.open and key not in self.done]
        if fresh:  # resolved before this server started: not again
            rows = cursor.execute(
                "SELECT rule, subject FROM alerts WHERE (rule, subject) IN "
                f"({', '.join(['(?, ?)'] * len(fresh))})",
                [value for key in fresh for value in key]).fetchall()
            self.done |= set(rows)
            fresh = [key for key in fresh if key not in self.done]
        opened = []
        for key in fresh:
            found = findings[key]
            detail = found.detail
            if found.more is not None:
                detail = "\n\n".join(filter(None, [detail, found.more()]))
            job = found.job or {}
            opened.append(Alert(
                id=0, rule=found.rule.name, subject=found.subject,
                kind=found.rule.when, job_id=job.get("id"), job_name=job.get("name"),
                schedule=found.schedule or job.get("schedule"), run=job.get("run_count"),
                summary=found.summary, detail=detail, opened_at=now))
        # an alert ends when its subject was judged again and not found: its job changed
        # since the last tick (a job that did not change keeps its condition), or it is a
        # schedule's (read whole at every tick), or its job is gone (looked for now and then)
        gone = self._purged(cursor, jobs, now)
        ending = [alert for key, alert in self.open.items()
                  if key not in findings and key[0] in self.by_name
                  and (alert.kind in SCHEDULE_KINDS or alert.job_id in jobs
                       or alert.job_id in gone)]
        resolved = [(alert, resolution(alert, jobs)) for alert in ending]
        if not (opened or resolved):
            return [], []
        with self.store.transaction() as con:  # numbered here: another writer may add some
            (last,) = con.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()
            for number, alert in enumerate(opened, last + 1):
                alert.id = number
                con.execute(ALERT_INSERT, [
                    alert.id, alert.rule, alert.kind, alert.subject, alert.job_id,
                    alert.job_name, alert.schedule, alert.run, alert.summary, alert.detail,
                    ts(now)])
            for alert, why in resolved:
                con.execute(ALERT_RESOLVE, [ts(now), why, alert.id])
        for alert in opened:
            self.open[alert.rule, alert.subject] = alert
        for alert, _ in resolved:
            key = (alert.rule, alert.subject)
            del self.open[key]
            self.done.add(key)
        return opened, resolved

    def _purged(self, cursor: Any, jobs: dict[int, dict[str, Any]], now: float) -> set[int]:
        """The jobs of open alerts that are gone (purged), looked for every
        ``PURGE_LOOK`` seconds."""
        if self.looked is not None and now - self.looked < PURGE_LOOK:
            return set()
        self.looked = now
        ids = sorted({a.job_id for a in self.open.values() if a.job_id is not None}
                     - set(jobs))
        if not ids:
            return set()
        return set(ids) - {row[0] for row in cursor.execute(PRESENT_SQL, [ids]).fetchall()}

    def _tell(self, opened: Iterable[Alert], resolved: Iterable[tuple[Alert, str]],
              jobs: dict[int, dict[str, Any]], now: float) -> None:
        if self.send is None:
            return
        for alert in opened:
            job = jobs.get(alert.job_id, {})
            rule = self.by_name[alert.rule]
            if rule.notify:
                self._send(alert.message(job.get("status"), job.get("error")), "opened",
                           rule.notify)
        for alert, why in resolved:
            rule = self.by_name[alert.rule]
            if rule.notify and rule.resolved:
                job = jobs.get(alert.job_id, {})
                said = alert.message(job.get("status"), None, now)
                said["summary"] = f"{alert.summary}: resolved, {why}"
                self._send(said, "resolved", rule.notify)

    def _send(self, alert: dict[str, Any], event: str, targets: Sequence[str]) -> None:
        try:
            self.send(alert, event, targets)
        except Exception as error:  # a notifier's trouble never stops the watch
            log.error("jobobs: alert %s's notification could not be queued: %s",
                      alert["id"], one_line(error))


def rejects_detail(cursor: Any, job_id: int) -> str:
    """A job's top reject reasons and columns, and three sample lines of its input."""
    lines = ["Top reject reasons:"]
    for reason, column, count in cursor.execute(REASONS_SQL, [job_id, TOP]).fetchall():
        lines.append(f"  {count:,} x {reason}" + (f" in column {column}" if column else ""))
    samples = cursor.execute(SAMPLES_SQL, [job_id, SAMPLES]).fetchall()
    if samples:
        lines.append("Sample lines:")
        for source, line_no, raw in samples:
            where = f"{source or ''}{':' if source else ''}{line_no or ''}".strip(":")
            text = (raw or "").rstrip("\n")
            lines.append(f"  {where + ': ' if where else ''}{text[:300]}")
    return "\n".join(lines)


def resolution(alert: Alert, jobs: dict[int, dict[str, Any]]) -> str:
    """Why an alert ends, from its job as this tick read it (not read: purged)."""
    if alert.job_id is None:
        return "the schedule ticked, or was paused or removed"
    if alert.job_id not in jobs:
        return ("a later run followed, or the schedule was paused or removed"
                if alert.kind in SCHEDULE_KINDS else "the job was purged")
    status = jobs[alert.job_id]["status"]
    if alert.kind == "rejects":
        return "its rejects are under the rule's limit"
    if status in EXECUTING and alert.kind not in ("failed", "shutdown"):
        return "it shows progress again" if alert.kind == "stalled" else "its condition ended"
    return f"the job is {label(status)}"
