"""The runtime's control thread: it carries out requests from ``job_commands`` (control
requests and submissions from other processes), flushes what the jobs reported, beats the
heartbeat of running jobs, fails jobs that hang, and purges old history.

A mixin of ``Runtime``: it works on the runtime's ledger, store, queue and executions.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from jobobs.model.errors import JobNotFound
from jobobs.model.requests import plan
from jobobs.model.states import Status

log = logging.getLogger("jobobs.execution.runtime")
PURGE_EVERY = 3600.0  # seconds between retention purges while a runtime runs
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
                              self.count, str(error).splitlines()[0] if str(error) else
                              type(error).__name__)
            self.logged_at = now

    def recovered(self) -> None:
        if self.count > 1:
            self.logger.warning("jobobs: %s %d times; it works again", self.what, self.count)
        self.count, self.backoff = 0, 0.0

    def delay(self, usual: float) -> float:
        return max(usual, self.backoff)


class ControlLoop:
    """What the control thread does; the attributes are the Runtime's."""

    ledger: Any
    store: Any
    _executions: dict[int, Any]

    def _control_loop(self) -> None:
        last_flush = last_beat = 0.0
        last_purge = time.monotonic()
        trouble = Repeated(log, "the control loop hit an error; it carries on")
        while not self._control_stop.is_set():
            self._wake.wait(trouble.delay(self.poll_interval))
            self._wake.clear()
            now = time.monotonic()
            try:
                if not self._closed.is_set():
                    self._apply_pending()
                if now - last_beat >= self.heartbeat_interval:
                    self._beat()
                    self._watch()
                    last_beat = now
                if now - last_flush >= self.flush_interval:
                    self.ledger.flush()
                    self._notify()
                    last_flush = now
                if self.retention is not None and now - last_purge >= PURGE_EVERY:
                    self.purge(self.retention)
                    last_purge = now
            except Exception as error:
                trouble.failed(error)
            else:
                trouble.recovered()

    def _apply_pending(self) -> None:
        """Carry out the pending requests: every pause, resume, cancel and start, then
        submissions for at most SUBMIT_BUDGET seconds (and SUBMITS_PER_TICK), so a flood of
        submissions never holds a pause back; the rest wait for the next tick, which
        comes at once."""
        pending = self.store.pending_commands(limit=SUBMITS_PER_TICK)
        full = len(pending) == SUBMITS_PER_TICK
        if not full:  # all of them: forget the ones written
            self._handled &= {command[0] for command in pending}
        deadline = time.monotonic() + SUBMIT_BUDGET
        fresh = [command for command in pending if command[0] not in self._handled]
        for command in fresh:
            if command[2] == "submit" and time.monotonic() > deadline:
                break
            self._apply(*command)
        else:
            if not (full and fresh):  # more may wait past this page: look again at once
                return
        self._wake.set()  # submissions held back: the next tick comes at once

    def _apply(self, command_id: int, job_id: int | None, command: str, by: str,
               spec: str | None) -> None:
        """Carry out one request; its outcome is written back to the commands table."""
        if command_id in self._handled:
            return
        if command == "submit":
            self._handled.add(command_id)
            self._submit_request(command_id, spec, by)
            return
        outcome = self._carry_out(job_id, command, by)
        if outcome is None:  # not yet: the next poll tries again
            return
        self._handled.add(command_id)
        self.ledger.handled(command_id, outcome)
        self._notify()

    def _submit_request(self, command_id: int, spec: str | None, by: str) -> None:
        """A submission from another process: the job and the request's outcome are
        written in the same transaction."""
        from jobobs.access.submissions import submit_spec

        try:
            handle = submit_spec(self, spec, actor=by)
        except Exception as error:  # a bad spec is refused; the runtime carries on
            self.ledger.handled(command_id, f"refused: {error}")
        else:
            self.ledger.handled(command_id, self.ledger.status(handle.id).value,
                                job_id=handle.id)
        self._notify()

    def _watch(self) -> None:
        """Fail the jobs that show no sign of life for ``stall_timeout`` seconds."""
        if self.stall_timeout is None:
            return
        now, moment = self.clock(), time.monotonic()
        stalled = []
        with self.ledger.lock:
            for job_id, execution in list(self._executions.items()):
                row = self.ledger.rows.get(job_id)
                last = max(row.updated_at or 0.0 if row else 0.0,
                           self.ledger.last_line_at.get(job_id, 0.0))
                if (now - last > self.stall_timeout
                        and moment - execution.started > self.stall_timeout):
                    execution.abandoned = True
                    execution.control.ask("cancel")  # should it ever reach a safe point
                    self._executions.pop(job_id)
                    stalled.append(job_id)
        for job_id in stalled:
            message = (f"No sign of life for {self.stall_timeout:g} s (no progress, journal "
                       "line or checkpoint): the job is failed and its worker thread "
                       "abandoned; another worker takes its place")
            self.ledger.line(job_id, "ERROR", message)
            self._set_status(job_id, Status.FAILED, "runtime", "hung", error=message)
            worker = threading.Thread(target=self._work, daemon=True,
                                      name=f"jobobs-worker-{len(self._threads)}")
            self._threads.append(worker)
            worker.start()

    def _beat(self) -> None:
        now = self.clock()
        with self.ledger.lock:
            for job_id, execution in list(self._executions.items()):
                row = self.ledger.rows.get(job_id)
                if row is not None and not execution.remote:  # a worker's reports beat
                    row.set(heartbeat_at=now)

    def _carry_out(self, job_id: int, command: str, by: str) -> str | None:
        try:
            with self.ledger.lock:  # a job's status and its execution change together
                status = self.ledger.status(job_id)
                execution = self._executions.get(job_id)
        except JobNotFound:
            return "ignored: no such job"
        step = plan(command, status, execution is not None)
        if step is not None and step.to is Status.RUNNING and execution is not None:
            with execution.control.lock:  # withdraw a pause the job has not taken yet
                if execution.control.taken or execution.remote:
                    return None  # it is stopping (on a worker, it may be): resume once paused
                if self._set_status(job_id, step.to, by, step.reason, expect=status):
                    execution.control.request = None  # the pause; a shutdown stays
                    self.ledger.line(job_id, "INFO", step.journal.format(by=by))
                    return step.to.value
        if step is None or not self._set_status(job_id, step.to, by, step.reason,
                                                expect=status):
            return f"ignored: the job is {self.ledger.status(job_id).value}"
        if step.to is Status.QUEUED:
            self._queue.put(job_id)
        elif execution is not None and step.to in (Status.PAUSING, Status.CANCELING):
            execution.control.ask("pause" if step.to is Status.PAUSING else "cancel")
        if step.journal:
            self.ledger.line(job_id, "INFO", step.journal.format(by=by))
        return step.to.value
