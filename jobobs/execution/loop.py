"""The runtime's control loop, on its own thread: it carries out the requests in the
``job_commands`` table (start, pause, resume, cancel, retry, submissions and schedule
requests from other processes), starts retries and schedules' runs when their time
comes, flushes what the jobs reported, beats the heartbeat of running jobs and fails jobs
that hang.

A pause or cancel of a running job is carried out here: the job's status becomes
``pausing`` or ``canceling`` (``jobobs.model.requests.EFFECTS``) and its run's
``interrupts`` are asked; the job stops at its next checkpoint
(``JobContext.checkpoint``) and its executor ends the run (``Runtime.end_run``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from jobobs.execution.submissions import submit_spec
from jobobs.model.errors import JobNotFound, one_line
from jobobs.model.requests import Effect, effect
from jobobs.model.states import Ending, Outcome, Status

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime

log = logging.getLogger("jobobs.execution.runtime")
SUBMITS_PER_TICK = 100
SUBMIT_BUDGET = 0.02  # seconds of submissions a tick, after the control requests


class Repeated:
    """An error that repeats, logged once (with its traceback) and then as a count every
    ``every`` seconds, never per try; tries are spaced out, doubling up to ``longest``."""

    def __init__(self, logger: logging.Logger, what: str, every: float = 60.0,
                 longest: float = 5.0):
        self.logger, self.what, self.every, self.longest = logger, what, every, longest
        self.count = 0
        self.logged_at = 0.0
        self.backoff = 0.0

    def failed(self, error: BaseException) -> None:
        self.count += 1
        now = time.monotonic()
        self.backoff = min(max(self.backoff * 2, 0.1), self.longest)
        if self.count == 1:
            self.logger.error("jobobs: %s", self.what, exc_info=error)
            self.logged_at = now
        elif now - self.logged_at >= self.every:
            self.logger.error("jobobs: %s (%d times so far; the last: %s)", self.what,
                              self.count, one_line(error))
            self.logged_at = now

    def recovered(self) -> None:
        if self.count > 1:
            self.logger.warning("jobobs: %s %d times; it works again", self.what, self.count)
        self.count, self.backoff = 0, 0.0

    def delay(self, usual: float) -> float:
        return max(usual, self.backoff)


class ControlLoop:
    """The control thread of one runtime."""

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self._handled: set[int] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobobs-control", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the requests now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Carry out no more requests; wait up to ``timeout`` for the thread to end."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        rt = self.rt
        last_flush = last_beat = 0.0
        trouble = Repeated(log, "the control loop hit an error; it carries on")
        while not self._stop.is_set():
            self._wake.wait(trouble.delay(rt.poll_interval))
            self._wake.clear()
            now = time.monotonic()
            try:
                if not rt.closed:
                    self._apply_pending()
                    rt.start_due()
                    rt.schedules.tick()
                if now - last_beat >= rt.heartbeat_interval:
                    self._beat()
                    self._watch()
                    last_beat = now
                if now - last_flush >= rt.flush_interval:
                    rt.ledger.flush()
                    rt.notify_waiters()
                    last_flush = now
            except Exception as error:
                trouble.failed(error)
            else:
                trouble.recovered()

    def _apply_pending(self) -> None:
        """Carry out the pending requests: every pause, resume, cancel and start, then
        submissions for at most SUBMIT_BUDGET seconds (and SUBMITS_PER_TICK), so a flood of
        submissions never holds a pause back; the rest wait for the next tick, which
        comes at once."""
        pending = self.rt.store.pending_commands(limit=SUBMITS_PER_TICK)
        full = len(pending) == SUBMITS_PER_TICK
        if not full:  # all of them: forget the ones written
            self._handled &= {request[0] for request in pending}
        deadline = time.monotonic() + SUBMIT_BUDGET
        fresh = [request for request in pending if request[0] not in self._handled]
        for request in fresh:
            if request[2] == "submit" and time.monotonic() > deadline:
                break
            self._apply(*request)
        else:
            if not (full and fresh):  # more may wait past this page: look again at once
                return
        self._wake.set()  # submissions held back: the next tick comes at once

    def _apply(self, request_id: int, job_id: int | None, request: str, by: str,
               spec: str | None) -> None:
        """Carry out one request; its outcome is written back to the requests' table."""
        if request_id in self._handled:
            return
        if request == "submit":
            self._handled.add(request_id)
            self._submission(request_id, spec, by)
            return
        if request == "schedule":
            self._handled.add(request_id)
            with self.rt.ledger.lock:  # written with the schedule's row
                outcome, made = self.rt.schedules.apply(spec or "", by)
                self.rt.ledger.handled(request_id, outcome, job_id=made)
            self.rt.notify_waiters()
            return
        if request == "ack":  # an alert seen: the alerts' table, written at once
            self._handled.add(request_id)
            outcome = _acknowledge(self.rt, spec, by)
            self.rt.ledger.handled(request_id, outcome)
            self.rt.notify_waiters()
            return
        outcome = self._carry_out(job_id, request, by)
        if outcome is None:  # not yet: the next poll tries again
            return
        self._handled.add(request_id)
        self.rt.ledger.handled(request_id, outcome)
        self.rt.notify_waiters()

    def _submission(self, request_id: int, spec: str | None, by: str) -> None:
        """A submission from another process: the job and the request's outcome are
        written in the same transaction."""
        ledger = self.rt.ledger
        try:
            handle = submit_spec(self.rt, spec, actor=by)
            outcome, made = ledger.status(handle.id).value, handle.id
        except Exception as error:  # a bad spec is refused; the runtime carries on
            outcome, made = f"refused: {error}", None
        ledger.handled(request_id, outcome, job_id=made)
        self.rt.notify_waiters()

    def _watch(self) -> None:
        """Fail the jobs that show no sign of life for ``stall_timeout`` seconds."""
        rt = self.rt
        if rt.stall_timeout is None:
            return
        now, moment = rt.clock(), time.monotonic()
        message = (f"No sign of life for {rt.stall_timeout:g} s (no progress, journal "
                   "line or checkpoint): the job is failed and its worker thread "
                   "abandoned; another worker takes its place")
        stalled = []
        with rt.ledger.lock:
            for job_id, run in list(rt.runs.items()):
                row = rt.ledger.rows.get(job_id)
                last = max(row.updated_at or 0.0 if row else 0.0,
                           rt.ledger.last_line_at.get(job_id, 0.0))
                if (now - last > rt.stall_timeout
                        and moment - run.started > rt.stall_timeout):
                    run.interrupts.ask("cancel")  # should it ever reach a safe point
                    rt.end_run(run, Outcome(Ending.FAILED, error=message, detail=message,
                                            because="hung"))
                    run.abandoned = True
                    stalled.append(run.thread)
        for thread in stalled:
            rt.slots.replace(thread)

    def _beat(self) -> None:
        rt = self.rt
        now = rt.clock()
        with rt.ledger.lock:
            for job_id, run in list(rt.runs.items()):
                row = rt.ledger.rows.get(job_id)
                if row is not None and not run.remote:  # a worker's reports beat for it
                    row.set(heartbeat_at=now)

    def _carry_out(self, job_id: int, request: str, by: str) -> str | None:
        rt, ledger = self.rt, self.rt.ledger
        try:
            with ledger.lock:  # a job's status and its run change together
                status = ledger.status(job_id)
                run = rt.runs.get(job_id)
        except JobNotFound:
            return "ignored: no such job"
        found = effect(request, status, run is not None)
        if found is not None and found.to is Status.RUNNING and run is not None:
            with run.interrupts.lock:  # withdraw a pause the job has not taken yet
                if run.interrupts.taken or run.remote:
                    return None  # it is stopping (on a worker, it may be): resume once paused
                if self._transition(job_id, found.to, by, found.reason, expect=status):
                    run.interrupts.request = None  # the pause; a shutdown stays
                    ledger.line(job_id, "INFO", found.journal.format(by=by))
                    return found.to.value
        if found is not None and request == "retry":
            return self._retry(job_id, status, by, found)
        if found is None or not self._transition(job_id, found.to, by, found.reason,
                                                 expect=status):
            return f"ignored: the job is {ledger.status(job_id).value}"
        if found.to is Status.QUEUED:
            rt.slots.put(job_id)
        elif run is not None and found.to in (Status.PAUSING, Status.CANCELING):
            run.interrupts.ask("pause" if found.to is Status.PAUSING else "cancel")
        if found.journal:
            ledger.line(job_id, "INFO", found.journal.format(by=by))
        return found.to.value

    def _retry(self, job_id: int, status: Status, by: str, found: Effect) -> str:
        """A retry by hand; a job of a schedule is not retried while another of its jobs
        runs (a schedule's runs never overlap), and becomes its schedule's last job."""
        rt = self.rt
        with rt.ledger.lock:  # no tick of its schedule comes between
            refusal = rt.schedules.retrying(job_id)
            if refusal is not None:
                return f"ignored: {refusal}"
            if not self._transition(job_id, found.to, by, found.reason, expect=status,
                                    **(found.changes or {})):
                return f"ignored: the job is {rt.ledger.status(job_id).value}"
            rt.ledger.line(job_id, "INFO", found.journal.format(by=by))
        rt.slots.put(job_id)
        return found.to.value

    def _transition(self, job_id: int, status: Status, by: str, reason: str,
                    expect: Status, **changes: Any) -> bool:
        if not self.rt.ledger.try_transition(job_id, status, actor=by, reason=reason,
                                             expect=expect, **changes):
            return False
        self.rt.notify_waiters()
        return True


def _acknowledge(rt: Runtime, spec: str | None, by: str) -> str:
    """An ``ack`` request's outcome; its spec is the alert's id."""
    try:
        alert_id = int(spec or "")
    except ValueError:
        alert_id = 0
    if not 0 < alert_id < 2 ** 63:
        return f"refused: an alert's id is a positive number, not {spec!r}"
    try:
        return rt.store.acknowledge(alert_id, by=by, now=rt.clock())
    except Exception as error:  # answered, never left waiting
        return f"refused: {one_line(error)}"
