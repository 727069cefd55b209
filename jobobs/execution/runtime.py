"""The runtime: a pool of worker threads that runs jobs and records everything they do.

One ``Runtime`` owns a database file (DuckDB allows one writing process). It queues
submitted jobs, runs them on at most ``workers`` threads, carries out control requests
from the ``job_commands`` table at each job's next safe point, flushes journal lines,
rejects and progress in batches, beats a heartbeat, and on start recovers jobs left
active by a process that is gone.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from jobobs.db.ledger import JobRow, Ledger
from jobobs.db.store import Store
from jobobs.execution import lifecycle as process
from jobobs.execution import recovery
from jobobs.execution.context import Control, JobContext
from jobobs.execution.handle import JobHandle, JobInfo
from jobobs.execution.logbridge import capture_logging, release_logging, running
from jobobs.execution.loop import ControlLoop
from jobobs.model import values
from jobobs.model.definition import JobFunction, as_job, resolve
from jobobs.model.errors import (
    IllegalTransition,
    JobInterrupt,
    JobNotFound,
    JobobsError,
    RuntimeClosed,
    TooManyRejects,
)
from jobobs.model.requests import check_request, current_user
from jobobs.model.states import ACTIVE, Status

log = logging.getLogger(__name__)
HOST = socket.gethostname()
# Where a job that stopped at a safe point ends, by the status it was in then.
STOPPED = {Status.PAUSING: Status.PAUSED, Status.CANCELING: Status.CANCELED}
STOP_REASONS = {
    Status.PAUSED: "paused at a checkpoint",
    Status.CANCELED: "canceled at a checkpoint",
    Status.SHUTDOWN: "the runtime stopped; the job stopped at a checkpoint and Start resumes "
                     "it from there",
}


class _Execution:
    """A job on a worker thread: its control request and its context."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.started = time.monotonic()
        self.abandoned = False  # hung past the stall timeout: failed, its thread let go
        self.ended = False  # failed by the runtime (a value it reported cannot be stored)
        self.remote = False  # on a Dask worker: the thread follows it
        self.control = Control()
        self.ctx: JobContext | None = None


class Runtime(ControlLoop):
    """Runs jobs on threads of this process and records them in a DuckDB file.

    >>> rt = Runtime("jobs.duckdb", workers=4)      # doctest: +SKIP
    >>> job = rt.submit(score_customers)            # doctest: +SKIP
    >>> rt.wait(job.id).status                      # doctest: +SKIP
    <Status.FINISHED: 'finished'>
    """

    def __init__(
        self, path: str = "jobs.duckdb", workers: int = 4, *, actor: str | None = None,
        flush_interval: float = 0.1, poll_interval: float = 0.05, heartbeat: float = 1.0,
        shutdown_timeout: float = 4.0,
        retention: timedelta | None = None, handle_signals: bool | None = None,
        log_level: int | None = logging.INFO, clock: Callable[[], float] = time.time,
        export_dirs: list[str] | None = None, stall_timeout: float | None = None,
        executor: Any = None,
    ):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.id = uuid.uuid4().hex[:12]
        self.clock = clock
        self.actor = actor or current_user()
        self.workers = workers
        self.flush_interval, self.poll_interval = flush_interval, poll_interval
        self.heartbeat_interval = heartbeat
        self.shutdown_timeout = shutdown_timeout
        # a job with no progress, journal line or checkpoint for this long is failed and
        # its worker thread abandoned (a thread cannot be stopped); another takes its place
        self.stall_timeout = stall_timeout
        # exports may write only under these folders (None: anywhere, for a script's own
        # runtime; a server sets them, since its clients name the paths)
        self.export_dirs = None if export_dirs is None else [os.path.abspath(d)
                                                             for d in export_dirs]
        # None: jobs run on this process's threads; a DaskExecutor: on a Dask cluster, each
        # thread following one job there (see jobobs.dask.executor)
        self.executor = executor
        process.claim(path)
        self.store = Store(path)
        self.ledger = Ledger(self.store, clock)
        self.ledger.on_unstorable = self._unstorable
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._executions: dict[int, _Execution] = {}
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._control_stop = threading.Event()
        self._close_lock = threading.Lock()
        self._handled: set[int] = set()
        if self.store.has_reports():
            from jobobs.dask import executor as dispatch

            dispatch.recover(self.ledger)
        self.recovered = recovery.recover(self.ledger)
        self.retention = retention
        if retention is not None:
            self.purge(retention)
        capture_logging(log_level)
        self._threads = [
            threading.Thread(target=self._work, name=f"jobobs-worker-{n}", daemon=True)
            for n in range(workers)
        ]
        self._control = threading.Thread(target=self._control_loop, name="jobobs-control",
                                         daemon=True)
        for thread in [*self._threads, self._control]:
            thread.start()
        process.register(self, handle_signals)

    # -- the public API ---------------------------------------------------------

    def submit(self, fn: Callable[..., Any] | JobFunction, *args: Any, name: str | None = None,
               actor: str | None = None, start: bool = True, parent: int | None = None,
               **kwargs: Any) -> JobHandle:
        """Record a job and queue it (``start=False`` leaves it in ``editing``); ``parent``
        links it to the job it follows up (a replay of rejects, say).

        Like everything the runtime records, the job is written within ``flush_interval``;
        call ``flush()`` before telling another process about it.
        """
        if self._closed.is_set():
            raise RuntimeClosed()
        definition = as_job(fn)
        max_rejects = definition.max_rejects
        row = self.ledger.create(
            name=values.name(name or definition.name, "job's name"), kind=definition.kind,
            spec=values.sized("job spec", definition.spec(args, kwargs), values.SPEC_LIMIT),
            actor=values.name(actor or self.actor, "actor"), queue=start,
            max_rejects=None if max_rejects is None else values.bigint("max_rejects",
                                                                        max_rejects),
            runtime_id=self.id, host=HOST, pid=os.getpid(),
            parent_id=None if parent is None else values.bigint("parent", parent, minimum=1),
        )
        if start:
            self._queue.put(row.id)
        self._wake.set()
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
        if self._closed.is_set():
            raise RuntimeClosed()
        check_request(job_id, command, self.ledger.status(job_id))
        by = values.name(by or self.actor, "actor")
        command_id = self.store.request(job_id, command, by=by, now=self.clock())
        self._wake.set()
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
            self._control_stop.set()  # no request is carried out from here on
            self._wake.set()
            self._control.join(timeout)
            for job_id in self._drain_queue():
                self._set_status(job_id, Status.SHUTDOWN, "runtime", "the runtime stopped",
                                 expect=Status.QUEUED)
            with self.ledger.lock:
                executions = list(self._executions.values())
            for execution in executions:
                execution.control.ask("shutdown")
            for _ in self._threads:
                self._queue.put(None)
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            with self.ledger.lock:
                stuck = list(self._executions)
            for job_id in stuck:
                late = ("the runtime stopped and the job did not reach a safe point within "
                        f"{timeout} s")
                if not self._set_status(job_id, Status.CANCELED, "runtime",
                                        f"{late}; the cancel is complete",
                                        expect=Status.CANCELING):
                    self._set_status(job_id, Status.SHUTDOWN, "runtime", late)
            self.ledger.flush()
        finally:
            try:
                if self.executor is not None:
                    self.executor.close()
                if before_store_closes is not None:
                    before_store_closes()
            except Exception:
                log.exception("jobobs: stopping the executor or the endpoint failed")
            process.unregister(self)
            release_logging()
            self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workers ------------------------------------------------------------------

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            if self._closed.is_set():
                self._set_status(job_id, Status.SHUTDOWN, "runtime", "the runtime stopped",
                                 expect=Status.QUEUED)
                continue
            try:
                if self._execute(job_id):
                    return  # abandoned as hung, and replaced: this thread is one too many
            except RuntimeClosed:  # a job that outlived close(); it was recorded as shutdown
                log.debug("jobobs: job %s ended after the runtime closed", job_id)
            except Exception:  # the runtime must outlive any single job
                log.exception("jobobs: job %s could not be recorded", job_id)
            finally:
                self._notify()

    def _execute(self, job_id: int) -> bool:
        """Run one job; True if it was abandoned as hung while it ran."""
        execution = _Execution(job_id)
        with self.ledger.lock:
            try:
                self.ledger.transition(
                    job_id, Status.RUNNING, actor="runtime", expect=Status.QUEUED,
                    runtime_id=self.id, host=HOST, pid=os.getpid(),
                    worker=threading.current_thread().name,
                    run_count=self.ledger.row(job_id).run_count + 1,
                )
            except (IllegalTransition, JobNotFound):  # paused, canceled or refused meanwhile
                return False
            self._executions[job_id] = execution
            if self._closed.is_set():  # close() took its list of executions before this one
                execution.control.ask("shutdown")
        self._notify()
        started = self.clock()
        row = self.ledger.row(job_id)
        if self.executor is not None:
            return self._execute_remote(execution, row)
        try:
            spec = json.loads(row.spec or "{}")
            definition = resolve(spec.get("function", ""))
            ctx = execution.ctx = self._context(row, spec, execution.control)
        except Exception as error:
            self._end(execution, Status.FAILED, started, error=error)
            return False
        try:
            with running(ctx, definition.fn.__module__):  # its and its threads' logging
                definition.fn(ctx, *spec.get("args", []), **spec.get("kwargs", {}))
        except JobInterrupt:
            with self.ledger.lock:  # no request can change the status while we decide
                status = STOPPED.get(self.ledger.status(job_id), Status.SHUTDOWN)
                self._end(execution, status, started, STOP_REASONS[status])
        except BaseException as error:
            self._end(execution, Status.FAILED, started, error=error)
        else:
            self._end(execution, Status.FINISHED, started)
        return execution.abandoned

    def _execute_remote(self, execution: _Execution, row: JobRow) -> bool:
        from jobobs.dask.executor import RemoteRun

        execution.remote = True
        try:
            checkpoint = self._restore(row)
        except Exception as error:
            self._end(execution, Status.FAILED, self.clock(), error=error)
            return False
        RemoteRun(self, self.executor, execution).run(row, checkpoint)
        return execution.abandoned

    def _context(self, row: JobRow, spec: dict[str, Any], control: Control) -> JobContext:
        """The job's context, restored to its last checkpoint when it ran before."""
        checkpoint = self._restore(row)
        self.ledger.line(row.id, "INFO", f"Job started (run {row.run_count}) on {HOST} "
                         f"pid {os.getpid()} {threading.current_thread().name}")
        return JobContext(
            row, ledger=self.ledger, control=control, clock=self.clock,
            resume_state=checkpoint["state"] if checkpoint else None,
            max_rejects=spec.get("max_rejects"),
            checkpoint_interval=spec.get("checkpoint_interval", 0.0),
        )

    def _restore(self, row: JobRow) -> dict[str, Any] | None:
        """On a run after the first: the counters of the last checkpoint back on the row,
        and the rejects recorded after it discarded; return the checkpoint."""
        checkpoint = json.loads(row.checkpoint) if row.checkpoint else None
        if row.run_count > 1:
            keep = checkpoint["reject_seq"] if checkpoint else 0
            dropped = self.ledger.rewind(row.id, keep)
            counters = checkpoint["counters"] if checkpoint else {}
            current, total = checkpoint["progress"] if checkpoint else (None, None)
            row.set(**{name: counters.get(name) or 0 for name in
                       ("processed", "succeeded", "rejected", "warnings", "doubles",
                        "duplicates")},
                    total=counters.get("total"), progress_current=current,
                    progress_total=total, eta_at=None)
            saved_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row.checkpoint_at or 0))
            where = (f"the checkpoint of {saved_at} UTC" if checkpoint
                     else "the beginning (no checkpoint was saved)")
            note = f"; {dropped} rejects recorded after it were discarded" if dropped else ""
            self.ledger.line(row.id, "INFO", f"Resuming from {where}{note}")
        return checkpoint

    def _end(self, execution: _Execution, status: Status, started: float,
             reason: str | None = None, error: BaseException | None = None,
             level: str = "INFO") -> None:
        job_id, ctx = execution.job_id, execution.ctx
        if execution.abandoned:  # it was failed as hung; what it did since is not its end
            log.warning("jobobs: job %s came back after it was abandoned as hung", job_id)
            return
        if execution.ended:  # failed by the runtime while it ran
            return
        row = self.ledger.row(job_id)
        took = max(0.0, self.clock() - started)
        changed: dict[str, Any] = {"active_seconds": (row.active_seconds or 0.0) + took}
        if error is not None:
            message = getattr(error, "summary", None) or f"{type(error).__name__}: {error}"
            changed["error"] = reason = values.text(message)
            if isinstance(error, TooManyRejects):
                self.ledger.line(job_id, "ERROR", f"Too many rejects: {error.rejected} "
                                 f"(the limit is {error.limit}); the job stops")
            elif isinstance(error, JobobsError):  # an error we worded: one clear line
                self.ledger.line(job_id, "ERROR", str(error))
            else:
                self.ledger.line(job_id, "ERROR", "".join(
                    traceback.format_exception(type(error), error, error.__traceback__)).rstrip())
        elif status is Status.FINISHED and (ctx is not None or execution.remote):
            self.ledger.line(job_id, "INFO", f"End of job ({row.processed} processed in "
                             f"{took:.1f}s)")
            if row.has_warning:
                self.ledger.line(job_id, "WARNING", "End of job with warning(s)")
        elif reason:
            self.ledger.line(job_id, level, reason[0].upper() + reason[1:])
        with self.ledger.lock:
            self._executions.pop(job_id, None)
            self._set_status(job_id, status, "runtime", reason, **changed)

    def _unstorable(self, job_id: int, reason: str) -> None:
        """Fail a job that reported a value the database cannot store; it stops at its
        next checkpoint, and what it does until then is not recorded as its end."""
        with self.ledger.lock:
            execution = self._executions.pop(job_id, None)
            if execution is not None:
                execution.ended = True
                execution.control.ask("cancel")
        self.ledger.line(job_id, "ERROR", f"{reason}; the job fails")
        self._set_status(job_id, Status.FAILED, "runtime", "a value could not be stored",
                         error=reason)

    def _set_status(self, job_id: int, status: Status, actor: str, reason: str | None,
                    expect: Status | None = None, **values: Any) -> bool:
        try:
            self.ledger.transition(job_id, status, actor=actor, reason=reason, expect=expect,
                                   **values)
        except (IllegalTransition, JobNotFound) as error:
            log.debug("jobobs: %s", error)
            return False
        self._notify()
        return True

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _drain_queue(self) -> list[int]:
        drained = []
        while True:
            try:
                job_id = self._queue.get_nowait()
            except queue.Empty:
                return drained
            if job_id is not None:
                drained.append(job_id)
