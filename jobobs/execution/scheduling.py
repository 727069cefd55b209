"""Schedules: a job spec that the runtime submits on a cron expression or an interval.

A schedule is a row of the ``schedules`` table, kept in memory by the runtime that owns
the database (``Scheduler``); its control loop calls ``tick`` a few times a second with
the runtime's clock, the only clock. A tick's job and the schedule's row (its next run,
its last job) are made under the ledger's lock and so written in one transaction: after
a crash, a tick either has its job and its next run moved on, or neither, and is run once.

- ``overlap``: while the schedule's last job has not ended (queued, running, paused, shut
  down...), a tick is skipped (``skip``, the default) or waits for it (``queue``: at most
  one run waits; later ticks are merged into it).
- ``catch_up``: the ticks missed while no server ran (more than ``LATE`` seconds old)
  are not run (``none``), run once (``one``, the default), or each run in turn (``all``,
  at most ``MOST_CAUGHT_UP``).

Everything a schedule does or skips is a line of ``schedule_log``. Requests to add,
pause, resume, remove or run a schedule reach the runtime as ``schedule`` commands
(``apply``), like every other request.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import astuple, dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jobobs.db.schema import SCHEDULE_COLUMNS
from jobobs.execution.submissions import check_spec, submit_spec
from jobobs.model import values
from jobobs.model.errors import JobNotFound, JobobsError, RuntimeClosed, one_line
from jobobs.model.retries import Retry
from jobobs.model.states import TERMINAL, Status

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime

log = logging.getLogger("jobobs.execution.runtime")

OVERLAPS = ("skip", "queue")
CATCH_UPS = ("none", "one", "all")
VERBS = ("add", "remove", "pause", "resume", "run")
LATE = 60.0  # a tick run later than this after its time was missed (no server ran)
MOST_CAUGHT_UP = 100
SHORTEST = 1.0  # seconds between two ticks, at least
LONGEST = 366 * 86_400.0
TICK_EVERY = 0.2  # seconds between two looks at the schedules
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def every_seconds(every: str | float | int) -> float:
    """An interval, ``10s``, ``5m``, ``1h``, ``1d`` or a number of seconds, checked."""
    if isinstance(every, str):
        match = _EVERY.match(every)
        if match is None:
            raise JobobsError(f"{every!r} is not an interval such as 30s, 5m, 1h or 1d")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    elif isinstance(every, int | float) and not isinstance(every, bool):
        seconds = float(every)
    else:
        raise JobobsError(f"an interval is a text such as 5m or a number of seconds, not "
                          f"{every!r}")
    if not (math.isfinite(seconds) and SHORTEST <= seconds <= LONGEST):
        raise JobobsError(f"an interval must be from {SHORTEST:g} s to 366 days")
    return round(seconds, 3)


def zone(name: str) -> ZoneInfo:
    """A time zone by its IANA name (``Europe/Paris``), only from the system's list."""
    if not isinstance(name, str) or name not in _zones():
        raise JobobsError(f"{name!r} is not a time zone name such as UTC or Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise JobobsError(f"time zone {name}: {one_line(error)}") from None


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones() | {"UTC"})
    return _ZONES


def _cron(expression: str, tz: ZoneInfo, after: float) -> float:
    """The expression's first time strictly after ``after``, in ``tz``; a wall-clock time
    that comes twice (the night daylight saving ends) runs the first time only."""
    from croniter import croniter

    start = datetime.fromtimestamp(after, tz)
    times = croniter(expression, start)
    found = times.get_next(datetime)
    while found.replace(tzinfo=None) == start.replace(tzinfo=None):
        found = times.get_next(datetime)
    return found.timestamp()


def check_cron(expression: str, tz: ZoneInfo) -> str:
    """A cron expression (five fields; ``@hourly``, ``@daily``... too) that has a next run."""
    from croniter import croniter

    if not isinstance(expression, str) or len(expression) > 200 or "\n" in expression:
        raise JobobsError("a cron expression is one short line such as '*/5 * * * *'")
    expression = " ".join(expression.split())
    if len(expression.split()) not in (1, 5) or not croniter.is_valid(expression):
        raise JobobsError(f"{expression!r} is not a cron expression such as '0 2 * * *' "
                          "(minute hour day-of-month month day-of-week)")
    try:
        _cron(expression, tz, time.time())
    except Exception as error:  # croniter's: a date that never comes (30 February)
        raise JobobsError(f"the cron expression {expression!r} never runs "
                          f"({one_line(error)})") from None
    return expression


def shown(epoch: float | None, tz: ZoneInfo | None = None) -> str:
    """A time as a schedule's lines show it: in its time zone, to the second."""
    if epoch is None:
        return "never"
    when = datetime.fromtimestamp(epoch, tz or UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S ") + (when.tzname() or "UTC")


@dataclass
class Schedule:
    """A schedule's row (times as epoch seconds), in SCHEDULE_COLUMNS' order."""

    name: str
    kind: str
    spec: str
    cron: str | None
    every_s: float | None
    tz: str
    overlap: str
    catch_up: str
    retries: int
    retry_policy: str | None
    enabled: bool
    next_run_at: float | None
    last_run_at: float | None
    last_job_id: int | None
    waiting: int
    created_at: float
    created_by: str
    updated_at: float

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.tz)

    @property
    def when(self) -> str:
        return timing(self.cron, self.tz, self.every_s)

    def after(self, moment: float) -> float:
        """The first tick strictly after ``moment``. An interval's ticks are counted from
        the schedule's creation, so they do not drift."""
        if self.cron:
            return _cron(self.cron, self.zone, moment)
        every = self.every_s or SHORTEST
        count = max(math.floor((moment - self.created_at) / every), 0)
        while self.created_at + count * every <= moment:  # float steps: strictly after
            count += 1
        return self.created_at + count * every

    def row(self) -> tuple:
        return astuple(self)

    def retry(self) -> Retry | None:
        return Retry.stored(self.retries, self.retry_policy)


assert tuple(f.name for f in fields(Schedule)) == SCHEDULE_COLUMNS


def timing(cron: str | None, tz: str, every_s: float | None) -> str:
    """When a schedule runs, as people read it: ``cron 0 2 * * * (Europe/Paris)`` or
    ``every 5m``."""
    if isinstance(cron, str) and cron:
        return f"cron {cron} ({tz})"
    return f"every {interval_text(every_s or 0)}"


def interval_text(seconds: float) -> str:
    """An interval as ``--every`` takes it: 30s, 5m, 1h, 1d."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class Scheduler:
    """The schedules of one runtime: loaded when it starts, ticked by its control loop
    when it ``running`` (a server's), changed by the requests it carries out. Everything
    happens under the ledger's lock."""

    def __init__(self, runtime: Runtime, running: bool = True):
        self.rt = runtime
        self.running = running  # else it only carries out requests (a one-off command's)
        self.ledger = runtime.ledger
        self.schedules: dict[str, Schedule] = {}
        self._seq: dict[str, int] = {}
        self._lines: list[tuple] = []
        self._next_look = 0.0
        self._started = False  # ticks wait for ``start``
        con = runtime.store.reader()
        cursor = con.execute(f"SELECT {', '.join(SCHEDULE_COLUMNS)} FROM schedules")
        for row in cursor.fetchall():
            data = dict(zip(SCHEDULE_COLUMNS, row))
            for column in ("next_run_at", "last_run_at", "created_at", "updated_at"):
                data[column] = None if data[column] is None else _epoch(data[column])
            self.schedules[data["name"]] = Schedule(**data)
        self._seq = dict(con.execute(
            "SELECT schedule, max(seq) FROM schedule_log GROUP BY schedule").fetchall())

    # -- the control loop's side -----------------------------------------------------------

    def start(self) -> None:
        """After a restart: catch up the ticks missed meanwhile (``tick`` does), and resume
        a schedule's last job that the stop shut down, so the schedule is not held by it."""
        if not self.running:
            return
        with self.ledger.lock:
            self._started = True
            for schedule in self.schedules.values():
                if schedule.enabled and self._revive(schedule):
                    self._write(schedule)
        self.tick(force=True)

    def _revive(self, schedule: Schedule) -> bool:
        """Queue the schedule's last job again if a stop (or a lost Dask worker) shut it
        down, so the schedule is not held by it; True if it did."""
        if not self.running or self._status(schedule) is not Status.SHUTDOWN:
            return False
        self.rt.ledger.transition(schedule.last_job_id, Status.QUEUED, actor="scheduler",
                                  reason="its schedule resumes it")
        self.rt.slots.put(schedule.last_job_id)
        self._line(schedule, "INFO", f"Job {schedule.last_job_id} was shut down by a stop; "
                   "it resumes from its checkpoint", schedule.last_job_id)
        return True

    def tick(self, now: float | None = None, force: bool = False) -> None:
        """Run what is due at ``now`` (the runtime's clock): ticks whose time has come, and
        runs waiting for their schedule's last job to end."""
        moment = time.monotonic()
        if not (self.running and self._started) or (not force and moment < self._next_look):
            return
        self._next_look = moment + TICK_EVERY
        now = self.rt.clock() if now is None else now
        with self.ledger.lock:
            for schedule in list(self.schedules.values()):
                due = schedule.next_run_at is not None and schedule.next_run_at <= now
                if schedule.enabled and (due or schedule.waiting):
                    self._look(schedule, now, due)

    def _look(self, schedule: Schedule, now: float, due: bool) -> None:
        """Run a schedule's due ticks, or the run waiting for its last job to end."""
        kept, lines, seq = replace(schedule), len(self._lines), self._seq.get(schedule.name)
        try:
            if due:
                self._due(schedule, now)
            elif not self._busy(schedule):
                schedule.waiting -= 1
                self._launch(schedule, None, "a run that waited for the last one")
                self._write(schedule)
        except RuntimeClosed:  # stopping: the tick is the next runtime's to run
            self.schedules[schedule.name] = kept
            del self._lines[lines:]
            if seq is not None:
                self._seq[schedule.name] = seq
        except Exception as error:  # one schedule's trouble is its own
            log.exception("jobobs: schedule %s", schedule.name)
            self._trouble(schedule, error, now)

    def _trouble(self, schedule: Schedule, error: Exception, now: float) -> None:
        """A tick that failed: said in the log; the schedule goes on from its next tick,
        or is paused if it has none."""
        try:
            schedule.next_run_at = schedule.after(now)
        except Exception as again:
            schedule.enabled = False
            self._line(schedule, "ERROR", f"The schedule could not run ({one_line(error)}) "
                       f"and has no next run ({one_line(again)}): it is paused")
        else:
            self._line(schedule, "ERROR", f"The schedule could not run: {one_line(error)}")
        self._write(schedule)

    def _due(self, schedule: Schedule, now: float) -> None:
        """The ticks from ``next_run_at`` up to ``now``: run, skipped or caught up."""
        ticks: list[float] = []
        tick = schedule.next_run_at
        while tick is not None and tick <= now and len(ticks) <= MOST_CAUGHT_UP:
            ticks.append(tick)
            tick = schedule.after(tick)
        more = tick is not None and tick <= now  # past the cap: counted, not listed
        latest = ticks[-1]
        late = now - latest > LATE
        if schedule.catch_up == "all":
            runs, missed = ticks[:MOST_CAUGHT_UP], ticks[MOST_CAUGHT_UP:]
        elif schedule.catch_up == "one" or not late:
            runs, missed = [latest], ticks[:-1]
        else:
            runs, missed = [], ticks
        schedule.next_run_at = schedule.after(now)
        schedule.last_run_at = latest
        if missed or more:
            count = f"{len(missed)}{'+' if more else ''}"
            first = missed[0] if missed else ticks[0]
            self._line(schedule, "WARNING", f"{count} run(s) missed from "
                       f"{shown(first, schedule.zone)}, while no server ran: not run "
                       f"(catch-up {schedule.catch_up})")
        if runs:
            self._tick(schedule, runs[0])
            if len(runs) > 1:
                schedule.waiting += len(runs) - 1
                self._line(schedule, "INFO", f"{len(runs) - 1} missed run(s) wait to run "
                           "one after another (catch-up all)")
        self._write(schedule)

    def _tick(self, schedule: Schedule, tick: float) -> None:
        """One tick: a job, unless the last one has not ended (skipped, or waiting)."""
        at = shown(tick, schedule.zone)
        status = self._status(schedule)
        if status is None or status in TERMINAL:
            self._launch(schedule, tick, f"its tick of {at}")
        elif schedule.overlap == "skip":
            self._line(schedule, "INFO", f"Tick of {at} skipped: job {schedule.last_job_id} "
                       f"is still {status.value}", schedule.last_job_id)
        elif schedule.waiting:
            self._line(schedule, "INFO", f"Tick of {at} merged into the run already waiting "
                       f"for job {schedule.last_job_id}", schedule.last_job_id)
        else:
            schedule.waiting = 1
            self._line(schedule, "INFO", f"Tick of {at} waits for job "
                       f"{schedule.last_job_id} ({status.value}) to end",
                       schedule.last_job_id)

    def _launch(self, schedule: Schedule, tick: float | None, why: str,
                by: str = "scheduler") -> int | None:
        """Submit the schedule's job (under the ledger's lock, so it is written with the
        schedule's row); None if it could not be made (the log says why)."""
        try:
            handle = submit_spec(self.rt, schedule.spec, actor=by, schedule=schedule.name,
                                 retry=schedule.retry())
        except RuntimeClosed:
            raise
        except Exception as error:
            self._line(schedule, "ERROR", f"The job for {why} could not be made: "
                       f"{one_line(error)}")
            return None
        schedule.last_job_id = handle.id
        self.ledger.line(handle.id, "INFO", f"Made by schedule {schedule.name} for {why}")
        self._line(schedule, "INFO", f"Job {handle.id} made for {why}", handle.id)
        return handle.id

    def _status(self, schedule: Schedule) -> Status | None:
        if schedule.last_job_id is None:
            return None
        try:
            return self.ledger.status(schedule.last_job_id)
        except JobNotFound:  # purged
            return None

    def _busy(self, schedule: Schedule) -> bool:
        status = self._status(schedule)
        return status is not None and status not in TERMINAL

    def _line(self, schedule: Schedule, level: str, message: str,
              job_id: int | None = None) -> None:
        seq = self._seq.get(schedule.name, 0) + 1
        self._seq[schedule.name] = seq
        self._lines.append((schedule.name, seq, self.rt.clock(), level,
                            values.text(message, values.LINE_LIMIT), job_id))

    def _write(self, schedule: Schedule, drop: bool = False) -> None:
        """The schedule's row (or its removal) and the lines so far, into the ledger's
        batch: with the job just made, if any."""
        schedule.updated_at = self.rt.clock()
        lines, self._lines = self._lines, []
        self.ledger.schedule("drop" if drop else "put",
                             schedule.name if drop else schedule.row(), lines)

    def retrying(self, job_id: int) -> str | None:
        """Before a failed job is retried by hand: why not, if it is a schedule's and
        another job of that schedule has not ended (its runs never overlap); else None,
        and the job becomes its schedule's last one. Under the ledger's lock."""
        name = self.ledger.row(job_id).schedule
        schedule = self.schedules.get(name) if name else None
        if schedule is None or schedule.last_job_id == job_id:
            return None
        status = self._status(schedule)
        if status is not None and status not in TERMINAL:
            return (f"job {schedule.last_job_id} of schedule {name} is still "
                    f"{status.value}; runs of a schedule never overlap")
        schedule.last_job_id = job_id
        self._line(schedule, "INFO", f"Job {job_id} retried by hand", job_id)
        self._write(schedule)
        return None

    # -- requests ----------------------------------------------------------------------------

    def apply(self, request: str | dict[str, Any], by: str) -> tuple[str, int | None]:
        """Carry out a schedule request (a JSON object: ``verb``, ``name`` and for ``add``
        the schedule); return its outcome and the job it made, if any. A refusal is an
        outcome ``refused: why``, never an exception."""
        try:
            if isinstance(request, str):
                values.sized("schedule request", request, values.SPEC_LIMIT)
                request = json.loads(request)
            if not isinstance(request, dict) or request.get("verb") not in VERBS:
                raise JobobsError(f"a schedule request is a JSON object whose verb is one of "
                                  f"{', '.join(VERBS)}")
            if not isinstance(request.get("name"), str):
                raise JobobsError("a schedule's name is a text")
            name = values.name(request["name"], "schedule's name")
            by = values.name(by, "actor")
            with self.ledger.lock:
                return getattr(self, f"_{request['verb']}")(name, request, by)
        except Exception as error:
            return f"refused: {one_line(error)}", None

    def _get(self, name: str) -> Schedule:
        schedule = self.schedules.get(name)
        if schedule is None:
            raise JobobsError(f"there is no schedule named {name!r}")
        return schedule

    def _add(self, name: str, request: dict[str, Any], by: str) -> tuple[str, None]:
        if name in self.schedules:
            raise JobobsError(f"a schedule named {name!r} exists; remove it first")
        schedule = make(name, request, by=by, now=self.rt.clock())
        check_spec(self.rt, schedule.spec)
        self.schedules[name] = schedule
        self._line(schedule, "INFO", f"Added by {by}: {describe(schedule)}; next run at "
                   f"{shown(schedule.next_run_at, schedule.zone)}")
        self._write(schedule)
        return "added", None

    def _remove(self, name: str, request: dict[str, Any], by: str) -> tuple[str, None]:
        schedule = self.schedules.pop(self._get(name).name)
        self._line(schedule, "INFO", f"Removed by {by}")
        self._write(schedule, drop=True)
        return "removed", None

    def _pause(self, name: str, request: dict[str, Any], by: str) -> tuple[str, None]:
        schedule = self._get(name)
        if not schedule.enabled:
            return "ignored: it is paused already", None
        schedule.enabled = False
        self._line(schedule, "INFO", f"Paused by {by}: no run until it is resumed")
        self._write(schedule)
        return "paused", None

    def _resume(self, name: str, request: dict[str, Any], by: str) -> tuple[str, None]:
        schedule = self._get(name)
        if schedule.enabled:
            return "ignored: it is not paused", None
        schedule.enabled = True
        self._revive(schedule)
        schedule.next_run_at = schedule.after(self.rt.clock())
        self._line(schedule, "INFO", f"Resumed by {by}; next run at "
                   f"{shown(schedule.next_run_at, schedule.zone)} (the ticks while it was "
                   "paused are not run)")
        self._write(schedule)
        return "resumed", None

    def _run(self, name: str, request: dict[str, Any], by: str) -> tuple[str, int | None]:
        """Run now, whatever the time; the next tick stays when it was. The last job not
        ended: refused with ``skip``, waiting with ``queue``."""
        schedule = self._get(name)
        status = self._status(schedule)
        if status is not None and status not in TERMINAL:
            if schedule.overlap == "skip":
                raise JobobsError(f"job {schedule.last_job_id} of schedule {name} is still "
                                  f"{status.value}; runs of a schedule never overlap")
            schedule.waiting = max(schedule.waiting, 1)
            self._line(schedule, "INFO", f"Run now asked by {by}: waits for job "
                       f"{schedule.last_job_id} to end", schedule.last_job_id)
            self._write(schedule)
            return "waiting", None
        job_id = self._launch(schedule, None, f"a run asked by {by}", by=by)
        self._write(schedule)
        if job_id is None:
            raise JobobsError("the job could not be made; see the schedule's log")
        return "ran", job_id


def make(name: str, request: dict[str, Any], *, by: str, now: float) -> Schedule:
    """A new schedule from an ``add`` request's fields, each checked."""
    known = {"verb", "name", "spec", "cron", "every", "tz", "overlap", "catch_up", "retry",
             "enabled"}
    unknown = set(request) - known
    if unknown:
        raise JobobsError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
    cron, every = request.get("cron"), request.get("every")
    if (cron is None) == (every is None):
        raise JobobsError("a schedule runs on a cron expression or an interval: give one")
    tz = request.get("tz") or "UTC"
    where = zone(tz)
    overlap = request.get("overlap") or "skip"
    catch_up = request.get("catch_up") or "one"
    if overlap not in OVERLAPS:
        raise JobobsError(f"overlap is one of {', '.join(OVERLAPS)}, not {overlap!r}")
    if catch_up not in CATCH_UPS:
        raise JobobsError(f"catch-up is one of {', '.join(CATCH_UPS)}, not {catch_up!r}")
    enabled = request.get("enabled", True)
    if not isinstance(enabled, bool):
        raise JobobsError(f"enabled is true or false, not {enabled!r}")
    spec = request.get("spec")
    if not isinstance(spec, dict):
        raise JobobsError("a schedule needs its job as a spec (a JSON object)")
    spec_text = values.sized("job spec", json.dumps(spec), values.SPEC_LIMIT)
    retry = Retry.given(request.get("retry"))
    schedule = Schedule(
        name=name, kind=str(spec.get("kind")), spec=spec_text,
        cron=None if cron is None else check_cron(cron, where),
        every_s=None if every is None else every_seconds(every), tz=tz, overlap=overlap,
        catch_up=catch_up, retries=retry.times if retry else 0,
        retry_policy=retry.policy() if retry else None,
        enabled=enabled, next_run_at=None, last_run_at=None,
        last_job_id=None, waiting=0, created_at=now, created_by=by, updated_at=now)
    schedule.next_run_at = schedule.after(now)
    return schedule


def describe(schedule: Schedule) -> str:
    retry = schedule.retry()
    return (f"{schedule.kind} job {schedule.when}, overlap {schedule.overlap}, catch-up "
            f"{schedule.catch_up}" + (f", {retry.times} retries" if retry else ""))


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()
