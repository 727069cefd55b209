"""The runtime: it queues jobs, runs them on an executor and records everything they do.

One ``Runtime`` owns a database file (DuckDB allows one writing process). It queues
submitted jobs; each of its slot threads claims a queued job and hands the run to its
executor (threads of this process by default, or a Dask cluster), which ends it through
``end_run``. Its control loop (``jobobs.execution.loop``) carries out requests from the
``job_commands`` table at each job's next safe point and flushes journal lines, rejects
and progress in batches. On start it recovers jobs left active by a process that is gone.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from jobobs.db.ledger import Ledger
from jobobs.db.store import Store
from jobobs.execution import lifecycle
from jobobs.execution.executors import HOST, Executor, ThreadExecutor
from jobobs.execution.handle import JobHandle, JobInfo
from jobobs.execution.logbridge import capture_logging, release_logging
from jobobs.execution.loop import ControlLoop
from jobobs.execution.retention import PURGE_EVERY, Retention
from jobobs.execution.runs import Run
from jobobs.execution.scheduling import Scheduler
from jobobs.execution.slots import Later, Slots
from jobobs.model import values
from jobobs.model.definition import JobFunction, as_job
from jobobs.model.errors import IllegalTransition, JobNotFound, RuntimeClosed
from jobobs.model.requests import check_request, current_user
from jobobs.model.retries import Retry
from jobobs.model.states import ACTIVE, Ending, Outcome, Status

log = logging.getLogger(__name__)


class Runtime:
    """Runs jobs and records them in a DuckDB file.

    >>> rt = Runtime("jobs.duckdb", workers=4)      # doctest: +SKIP
    >>> job = rt.submit(score_customers)            # doctest: +SKIP
    >>> rt.wait(job.id).status                      # doctest: +SKIP
    <Status.FINISHED: 'finished'>

    ``workers`` jobs run at once on threads of this process, or, with an ``executor``
    (``jobobs.dask.executor.DaskExecutor``), as many as it has capacity for (or
    ``workers``) on a Dask cluster. With ``run_schedules`` (as ``jobobs serve`` has it), it
    runs the database's schedules on its ``clock``.
    """

    def __init__(
        self, path: str = "jobs.duckdb", workers: int | None = None, *,
        actor: str | None = None, flush_interval: float = 0.1, poll_interval: float = 0.05,
        heartbeat: float = 1.0, shutdown_timeout: float = 4.0,
        retention: timedelta | None = None, purge_every: float = PURGE_EVERY,
        on_purge: Callable[[str], None] | None = None, handle_signals: bool | None = None,
        log_level: int | None = logging.INFO, clock: Callable[[], float] = time.time,
        export_dirs: list[str] | None = None, stall_timeout: float | None = None,
        executor: Executor | None = None, run_schedules: bool = False,
    ):
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        if retention is not None and (retention <= timedelta(0) or purge_every <= 0):
            raise ValueError("a retention and its purge interval must be longer than 0")
        self.executor: Executor = executor or ThreadExecutor(workers or 4)
        self.workers = workers or self.executor.capacity()
        self.id = uuid.uuid4().hex[:12]
        self.clock = clock
        self.actor = actor or current_user()
        self.flush_interval, self.poll_interval = flush_interval, poll_interval
        self.heartbeat_interval = heartbeat
        self.shutdown_timeout = shutdown_timeout
        # a job with no progress, journal line or checkpoint for this long is failed and
        # its slot thread abandoned (a thread cannot be stopped); another takes its place
        self.stall_timeout = stall_timeout
        # exports may write only under these folders (None: anywhere, for a script's own
        # runtime; a server sets them, since its clients name the paths)
        self.export_dirs = None if export_dirs is None else [os.path.abspath(d)
                                                             for d in export_dirs]
        self.role = "the runtime"  # as errors name it ("the server" when one serves it)
        lifecycle.claim(path)
        self.store = Store(path)
        self.ledger = Ledger(self.store, clock)
        self.ledger.on_unstorable = self._unstorable
        # the runs under way, by job id; changed with their job's status, under the
        # ledger's lock
        self.runs: dict[int, Run] = {}
        self._changed = threading.Condition()
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self.recovered = self.executor.recover(self.ledger)
        # purges what ended before the retention, now and every ``purge_every`` seconds
        self.retention_purges = None if retention is None else Retention(
            self.store, retention, every=purge_every, clock=clock, echo=on_purge)
        capture_logging(log_level)
        self.slots = Slots(self.workers, self._take)
        self.later = Later()  # retries waiting for their time
        for job_id, at in self.store.retries_waiting():
            self.later.add(at, job_id)
        # schedules run where the server runs (``run_schedules``); any runtime on the file
        # carries out requests to change them
        self.schedules = Scheduler(self, running=run_schedules)
        self.loop = ControlLoop(self)
        self.schedules.start()
        lifecycle.register(self, handle_signals)
        if self.retention_purges is not None:
            self.retention_purges.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- the public API ---------------------------------------------------------

    def submit(self, fn: Callable[..., Any] | JobFunction, *args: Any, name: str | None = None,
               actor: str | None = None, start: bool = True, parent: int | None = None,
               retry: Retry | int | dict[str, Any] | None = None, schedule: str | None = None,
               **kwargs: Any) -> JobHandle:
        """Record a job and queue it (``start=False`` leaves it in ``editing``); ``parent``
        links it to the job it follows up (a replay of rejects, say); ``retry`` (a
        ``Retry``, or a count; default the ``@job``'s) retries a failed run from its last
        checkpoint; ``schedule`` names the schedule that made it.

        Like everything the runtime records, the job is written within ``flush_interval``;
        call ``flush()`` before telling another process about it.
        """
        if self.closed:
            raise RuntimeClosed()
        definition = as_job(fn)
        max_rejects = definition.max_rejects
        policy = Retry.given(retry) or definition.retry
        row = self.ledger.create(
            name=values.name(name or definition.name, "job's name"), kind=definition.kind,
            spec=values.sized("job spec", definition.spec(args, kwargs), values.SPEC_LIMIT),
            actor=values.name(actor or self.actor, "actor"), queue=start,
            max_rejects=None if max_rejects is None else values.bigint("max_rejects",
                                                                        max_rejects),
            runtime_id=self.id, host=HOST, pid=os.getpid(),
            parent_id=None if parent is None else values.bigint("parent", parent, minimum=1),
            schedule=None if schedule is None else values.name(schedule, "schedule's name"),
            retries=policy.times if policy else 0,
            retry_policy=policy.policy() if policy else None, retried=0,
        )
        if start:
            self.slots.put(row.id)
        self.loop.wake()
        return JobHandle(self, row.id, row.name)

    def flush(self) -> None:
        """Write everything recorded so far now (it is written every ``flush_interval``)."""
        self.ledger.flush()

    def start(self, job_id: int, *, by: str | None = None) -> int:
        """Request that an edited, paused or shut-down job run (from its last checkpoint)."""
        return self.request(job_id, "start", by=by)

    def resume(self, job_id: int, *, by: str | None = None) -> int:
        return self.request(job_id, "resume", by=by)

    def pause(self, job_id: int, *, by: str | None = None) -> int:
        return self.request(job_id, "pause", by=by)

    def cancel(self, job_id: int, *, by: str | None = None) -> int:
        return self.request(job_id, "cancel", by=by)

    def request(self, job_id: int, command: str, *, by: str | None = None) -> int:
        """Record a control request (IllegalRequest if the job's status forbids it)."""
        if self.closed:
            raise RuntimeClosed()
        check_request(job_id, command, self.ledger.status(job_id))
        by = values.name(by or self.actor, "actor")
        command_id = self.store.request(job_id, command, by=by, now=self.clock())
        self.loop.wake()
        return command_id

    def job(self, job_id: int) -> JobInfo:
        """The job's row as the runtime knows it now."""
        with self.ledger.lock:
            row = self.ledger.rows.get(job_id)
            known = row.values() if row is not None else None
        return JobInfo(known if known is not None else self.store.job(job_id))

    def status(self, job_id: int) -> Status:
        return self.ledger.status(job_id)

    def wait(self, job_id: int, timeout: float | None = None) -> JobInfo:
        """Block until the job has settled (not active, no request pending) and is written;
        return its row."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self.ledger.settled(job_id) and self.ledger.status(job_id) not in ACTIVE
                   and not self.store.pending_commands(job_id)):
            if deadline is not None and time.monotonic() >= deadline:
                status = self.ledger.status(job_id).value
                raise TimeoutError(f"job {job_id} has not settled after {timeout} s "
                                   f"(it is {status})")
            with self._changed:
                self._changed.wait(0.05)
        return self.job(job_id)

    def run_until_idle(self, timeout: float | None = None) -> None:
        """Block until no job is active, no request is pending and all is written
        (rq's burst mode)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.ledger.busy() or self.store.pending_commands():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"the runtime is still busy after {timeout} s")
            with self._changed:
                self._changed.wait(0.05)

    def purge(self, older_than: timedelta) -> dict[str, int]:
        """Delete journal lines, rejects and finished jobs older than ``older_than``."""
        self.ledger.flush()
        return self.store.purge(before=self.clock() - older_than.total_seconds())

    def close(self, timeout: float | None = None,
              before_store_closes: Callable[[], None] | None = None) -> None:
        """Stop: queued and running jobs go to ``shutdown`` at their next safe point.

        Jobs that do not reach one within ``timeout`` (default ``shutdown_timeout``) are
        recorded as ``shutdown`` anyway; their last checkpoint is where Start resumes.
        ``before_store_closes`` runs once the jobs have stopped (a server stops serving
        the database there, after its Dask workers reported their last batches).
        """
        with self._close_lock:
            if not self._closed.is_set():
                self._closed.set()
                self._close(self.shutdown_timeout if timeout is None else timeout,
                            before_store_closes)

    def _close(self, timeout: float, before_store_closes: Callable[[], None] | None) -> None:
        deadline = time.monotonic() + timeout
        try:
            if self.retention_purges is not None:
                self.retention_purges.stop()
            self.loop.stop(timeout)  # no request is carried out from here on
            for job_id in self.slots.drain():
                self.ledger.try_transition(job_id, Status.SHUTDOWN, actor="runtime",
                                           reason="the runtime stopped", expect=Status.QUEUED)
            with self.ledger.lock:
                runs = list(self.runs.values())
            for run in runs:
                run.interrupts.ask("shutdown")
            self.slots.stop(deadline)
            with self.ledger.lock:
                stuck = list(self.runs.values())
            for run in stuck:
                self.end_run(run, Outcome.cut_short(
                    f"the runtime stopped and the job did not reach a safe point within "
                    f"{timeout} s"))
            self.ledger.flush()
        finally:
            try:
                self.executor.close()
                if before_store_closes is not None:
                    before_store_closes()
            except Exception:
                log.exception("jobobs: stopping the executor or the endpoint failed")
            lifecycle.unregister(self)
            release_logging()
            self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- slots, runs and their ends --------------------------------------------------------

    def _take(self, job_id: int) -> bool:
        """On a slot thread: claim a queued job and launch it on the executor, which
        returns once the run has ended. True if the run was abandoned as hung (the thread
        has been replaced and ends)."""
        if self.closed:
            self.ledger.try_transition(job_id, Status.SHUTDOWN, actor="runtime",
                                       reason="the runtime stopped", expect=Status.QUEUED)
            return False
        run = None
        try:
            run = self._claim(job_id)
            if run is not None:
                self.executor.launch(self, run)
        except RuntimeClosed:  # a job that outlived close(); it was recorded as shutdown
            log.debug("jobobs: job %s ended after the runtime closed", job_id)
        except Exception as error:  # the runtime must outlive any single job
            log.exception("jobobs: job %s could not be recorded", job_id)
            if run is not None and not self.closed:
                self.end_run(run, Outcome.failed(error))
        else:
            if run is not None and not (run.ended or run.abandoned or self.closed):
                self.end_run(run, Outcome.cut_short("its executor returned without ending it"))
        finally:
            self.notify_waiters()
        return run is not None and run.abandoned

    def _claim(self, job_id: int) -> Run | None:
        """Move a queued job to ``running`` as this runtime's run, restored to its last
        checkpoint; None if it is no longer queued (paused, canceled meanwhile)."""
        with self.ledger.lock:
            try:
                self.ledger.transition(
                    job_id, Status.RUNNING, actor="runtime", expect=Status.QUEUED,
                    runtime_id=self.id, host=HOST, pid=os.getpid(),
                    worker=threading.current_thread().name,
                    run_count=self.ledger.row(job_id).run_count + 1,
                )
            except (IllegalTransition, JobNotFound):
                return None
            row = self.ledger.row(job_id)
            run = self.runs[job_id] = Run(row, self.clock(), threading.current_thread())
            if self.closed:  # close() took its list of runs before this one
                run.interrupts.ask("shutdown")
        self.notify_waiters()
        try:
            checkpoint = self.ledger.restore(row)
        except Exception as error:
            self.end_run(run, Outcome.failed(error))
            return None
        run.resume_state = checkpoint["state"] if checkpoint else None
        return run

    def end_run(self, run: Run, outcome: Outcome) -> None:
        """Record how a run ended (every executor ends its runs here): the job's status
        from the outcome and the status it is in now (``Outcome.status``), its active
        time, and its journal line. A run already ended (failed as hung, or for a value
        it reported that cannot be stored) keeps that end."""
        job_id, ledger = run.job_id, self.ledger
        with ledger.lock:  # no request can change the status while we decide
            if run.abandoned:
                log.warning("jobobs: job %s came back after it was abandoned as hung", job_id)
                return
            if run.ended:
                return
            run.ended = True
            self.runs.pop(job_id, None)
            row = ledger.row(job_id)
            status = outcome.status(Status(row.status))
            reason = outcome.reason(status)
            took = max(0.0, self.clock() - run.began)
            changed: dict[str, Any] = {"active_seconds": (row.active_seconds or 0.0) + took}
            if outcome.ending is Ending.FAILED:
                changed["error"] = values.text(outcome.error or "failed")
                reason = values.text(reason or "failed")
                ledger.line(job_id, "ERROR", outcome.detail or changed["error"])
                try:
                    retry = self._retry(row, status, outcome)
                except Exception:  # the job fails rather than hang in its status
                    log.exception("jobobs: job %s: its retry could not be planned", job_id)
                    retry = None
                if retry is not None:
                    status, reason, more = retry
                    changed.update(more)
            elif outcome.ending is Ending.FINISHED:
                ledger.line(job_id, "INFO", f"End of job ({row.processed} processed in "
                            f"{took:.1f}s)")
                if row.has_warning:
                    ledger.line(job_id, "WARNING", "End of job with warning(s)")
            elif reason:
                level = "WARNING" if outcome.ending is Ending.CUT_SHORT else "INFO"
                ledger.line(job_id, level, reason[0].upper() + reason[1:])
            ledger.try_transition(job_id, status, actor="runtime", reason=reason, **changed)
        self.notify_waiters()

    def _retry(self, row: Any, status: Status, outcome: Outcome
               ) -> tuple[Status, str, dict[str, Any]] | None:
        """A failed run's retry, if its policy has one left for this failure: the job is
        queued again to run from its last checkpoint once the delay has passed (the
        control loop starts it); a journal line says when. None: the job fails. A run
        failed because it hung or reported a value that cannot be stored is not retried,
        nor one that was being paused or canceled."""
        policy = Retry.stored(row.retries, row.retry_policy)
        done = row.retried or 0
        if (policy is None or status is not Status.FAILED or Status(row.status) is not
                Status.RUNNING or outcome.because is not None
                or not policy.follows(done, outcome.kinds)):
            return None
        wait = policy.wait(done + 1)
        at = self.clock() + wait
        if row.checkpoint_at:
            saved = time.strftime("%H:%M:%S", time.gmtime(row.checkpoint_at))
            where = f"from the checkpoint of {saved} UTC"
        else:
            where = "from the beginning: no checkpoint was saved"
        self.ledger.line(row.id, "WARNING", f"Retry {done + 1} of {policy.times} in "
                         f"{wait:g} s ({where})")
        self.later.add(at, row.id)
        reason = f"{outcome.error or 'failed'}; retry {done + 1} of {policy.times} in {wait:g} s"
        return Status.QUEUED, values.text(reason), {"retried": done + 1, "retry_at": at}

    def start_due(self) -> None:
        """Queue the jobs whose retry is due (on the control loop)."""
        now = self.clock()
        for job_id in self.later.due(now):
            with self.ledger.lock:
                try:
                    row = self.ledger.row(job_id)
                except JobNotFound:
                    continue
                due = (row.status == Status.QUEUED.value and row.retry_at is not None
                       and row.retry_at <= now)
            if due:  # else paused, canceled or started meanwhile: nothing to do
                self.slots.put(job_id)

    def _unstorable(self, job_id: int, reason: str) -> None:
        """Fail a job that reported a value the database cannot store; it stops at its
        next checkpoint, and what it does until then is not recorded as its end."""
        why = "a value could not be stored"
        message = f"{reason}; the job fails"
        with self.ledger.lock:
            run = self.runs.get(job_id)
            if run is not None:
                self.end_run(run, Outcome(Ending.FAILED, error=reason, detail=message,
                                          because=why))
        if run is not None:
            run.interrupts.ask("cancel")  # not under the ledger's lock: a request holds
            return  # the interrupts' lock, then takes the ledger's
        self.ledger.line(job_id, "ERROR", message)
        self.ledger.try_transition(job_id, Status.FAILED, actor="runtime", reason=why,
                                   error=reason)
        self.notify_waiters()

    def notify_waiters(self) -> None:
        """Wake the callers of ``wait`` and ``run_until_idle`` to look again."""
        with self._changed:
            self._changed.notify_all()
