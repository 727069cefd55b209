"""Jobs on a Dask cluster, the server's side.

With ``jobobs serve --executor dask`` each of the runtime's worker threads is a slot on
the cluster: it sends its job to Dask (``jobobs.dask.worker.run``), then follows the run. It
applies the batches the worker reports in ``job_reports`` to the runtime's ledger, each
in one transaction with the checkpoint steps it carries and the deletion of the batch
(so each is applied once, and rows and the checkpoint that counts them commit
together). It tells the worker to stop when the server stops, and watches that the
worker is alive: a worker that dies leaves the job ``shutdown`` (or ``canceled`` if a
cancel was under way) with a journal line naming it, and Start resumes it from its last
checkpoint on whichever worker Dask picks.

Dask is imported only here, and only when a ``DaskExecutor`` is made: without it
installed everything else works.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jobobs.dask.worker import REPORTED
from jobobs.db import files
from jobobs.db import steps as server_steps
from jobobs.model.errors import JobobsError, TooManyRejects
from jobobs.model.rows import LEVELS, Reject
from jobobs.model.states import Status

if TYPE_CHECKING:
    from jobobs.db.ledger import Ledger
    from jobobs.execution.runtime import Runtime

log = logging.getLogger("jobobs.dask.executor")
LIVENESS = 0.5  # seconds between checks that a job's worker is still in the cluster


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise JobobsError("the Dask executor needs dask and distributed: "
                          "pip install 'jobobs[dask]'") from None
    return distributed


@contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    """Processes started meanwhile ignore SIGINT: a Ctrl-C in the terminal reaches the whole
    process group, and the server, not each worker, should handle it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class RemoteFailure(JobobsError):
    """A job's exception on a Dask worker, as the server records it."""

    def __init__(self, summary: str, journal: str):
        super().__init__(journal)
        self.summary = summary


class DaskExecutor:
    """Runs jobs on a Dask cluster: an existing one (``scheduler``, a tcp:// address) or a
    local one of ``workers`` processes. ``scratch`` is a folder every worker can read and
    write, for the staging tables of imports (by default beside the database, which suits
    workers on the server's machine)."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 scratch: str | None = None, threads: int | None = None):
        distributed = _distributed()
        self.cluster = None
        try:
            if scheduler:
                self.client = distributed.Client(scheduler, timeout="10s")
            else:
                with _ignoring_interrupts():  # Ctrl-C stops the server, which stops them
                    self.cluster = distributed.LocalCluster(
                        n_workers=workers or 2, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
                self.client = distributed.Client(self.cluster)
        except (OSError, TimeoutError) as error:
            raise JobobsError(f"cannot reach the Dask scheduler at {scheduler}: {error}"
                              ) from None
        self.scheduler = self.client.scheduler.address
        self.scratch = scratch
        self.threads = threads  # DuckDB threads a job may use on its worker (None: all cores)
        self.marker: str | None = None
        self.address: str | None = None
        self.access: str | None = None  # the worker plugin holding the token
        self._bound = threading.Event()
        self._lock = threading.Lock()
        self._seen = (0.0, frozenset[str]())

    def bind(self, address: str, token: str, scratch: str) -> None:
        """The Quack endpoint workers report to, its token (given to the workers once, as
        a worker plugin: see ``jobobs.dask.credentials``), and the default scratch folder
        (made owner-only). A marker file there tells a worker that sees it that the
        server reads the same folder: its import rows then come as Parquet files there
        rather than through Quack."""
        from jobobs.dask.credentials import Credentials

        self.address = address
        self.scratch = files.private_folder(self.scratch or scratch)
        server = uuid.uuid4().hex
        self.marker = os.path.join(self.scratch, f".jobobs-server-{server}")
        with open(self.marker, "w", encoding="utf-8") as file:
            file.write(f"{address}\n")
        self.access = f"jobobs-credentials-{server}"
        self.client.register_plugin(Credentials(self.access, token), name=self.access)
        self._bound.set()

    def slots(self) -> int:
        """Jobs the cluster runs at once: its workers' threads."""
        info = self.client.scheduler_info(n_workers=-1)
        return max(1, sum(w.get("nthreads", 1) for w in info["workers"].values()))

    def workers(self, fresh: bool = False) -> frozenset[str]:
        """The addresses of the cluster's live workers (asked at most every LIVENESS s,
        unless ``fresh``)."""
        with self._lock:
            at, seen = self._seen
            if fresh or time.monotonic() - at >= LIVENESS:
                info = self.client.scheduler_info(n_workers=-1)
                seen = frozenset(info["workers"])
                self._seen = (time.monotonic(), seen)
            return seen

    def submit(self, assignment: dict[str, Any], key: str) -> Any:
        from jobobs.dask.worker import run

        if not self._bound.wait(30):
            raise JobobsError("the Dask executor has no Quack endpoint to report to")
        return self.client.submit(run, {**assignment, "address": self.address,
                                        "access": self.access, "scratch": self.scratch,
                                        "marker": self.marker, "threads": self.threads},
                                  key=key, pure=False, retries=0)

    def close(self) -> None:
        if self.marker is not None and os.path.exists(self.marker):
            os.remove(self.marker)
        try:
            if self.access is not None:
                try:
                    self.client.unregister_worker_plugin(self.access)
                except Exception as error:  # the cluster is going or gone: its memory too
                    log.debug("jobobs: the workers kept the credentials plugin: %s", error)
            self.client.close(timeout=5)
        finally:
            if self.cluster is not None:
                self.cluster.close(timeout=10)


class Reports:
    """A run's batches in ``job_reports``, applied to the ledger, each batch once."""

    def __init__(self, ledger: Ledger, job_id: int, run: int, scratch: str | None = None):
        self.ledger, self.job_id, self.run = ledger, job_id, run
        self.scratch = scratch
        self.claim: dict[str, Any] | None = None
        self.applied = 0  # the last batch applied
        self.alive_at = time.monotonic()  # the last batch that said more than "alive"

    def apply(self) -> dict[str, Any] | None:
        """Apply the batches sent so far, with their steps, in one transaction; return
        the run's end when it came. A step that fails (rows that do not fit the target)
        raises; the batches are then dropped and the job must fail."""
        ledger, job_id = self.ledger, self.job_id
        rows = ledger.store.reader().execute(
            "SELECT run, batch, body FROM job_reports WHERE job_id = ? ORDER BY run, batch",
            [job_id]).fetchall()
        if not rows:
            return None
        batches = {batch: body for run, batch, body in rows
                   if run == self.run and batch > self.applied}  # a retried write: once
        bodies = [json.loads(batches[batch]) for batch in sorted(batches)]
        last = max(batches, default=self.applied)
        steps: list[dict[str, Any]] = []
        row = ledger.row(job_id)
        previous = row.checkpoint, row.checkpoint_at

        def prepare() -> None:
            for body in bodies:
                steps.extend(self._apply(body))

        def commit(con: Any) -> None:
            for step in steps:
                server_steps.run(con, step)
            con.execute("DELETE FROM job_reports WHERE job_id = ? AND (run <> ? OR batch <= ?)",
                        [job_id, self.run, last])

        try:
            ledger.flush(atomic=commit, prepare=prepare)
        except Exception:
            row.set(checkpoint=previous[0], checkpoint_at=previous[1])
            with ledger.store.transaction() as con:
                con.execute("DELETE FROM job_reports WHERE job_id = ?", [job_id])
            raise
        self.applied = last
        for step in steps:  # the rows are in: a file that brought them has done its work
            if step.get("parquet") and os.path.exists(step["parquet"]):
                os.remove(step["parquet"])
        return next((body["end"] for body in bodies if "end" in body), None)

    def _apply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        ledger, job_id = self.ledger, self.job_id
        now = ledger.clock()
        steps = [self._checked(step) for step in body.get("steps", [])]
        with ledger.lock:
            row = ledger.row(job_id)
            claim = body.get("claim")
            if claim:
                self.claim = claim
                row.set(host=claim["host"], pid=claim["pid"], worker=claim["worker"] or "dask")
                ledger.line(job_id, "INFO", f"Job started (run {self.run}) on {claim['host']} "
                            f"pid {claim['pid']}, Dask worker {claim['worker']}",
                            at=float(claim.get("at") or now))
            for at, level, code, message in body.get("lines", []):
                ledger.line(job_id, level if level in LEVELS else "INFO", str(message), code,
                            at=float(at))
            values = {k: v for k, v in body.get("row", {}).items() if k in REPORTED}
            rejects = [Reject(job_id, *fields[1:]) for fields in body.get("rejects", [])]
            ledger.add_rejects(job_id, rejects, int(body.get("reject_seq", 0)))
            row.set(heartbeat_at=now, **values)
            if body.get("lines") or values or rejects or steps or claim:
                ledger.last_line_at[job_id] = now  # a sign of life for the stall watch
                self.alive_at = time.monotonic()
        return steps

    def _checked(self, step: dict[str, Any]) -> dict[str, Any]:
        """A step as the server runs it: a Parquet file only from the job's scratch."""
        path = step.get("parquet")
        if path is not None:
            folder, name = os.path.split(str(path))
            if (not re.fullmatch(rf"job-{self.job_id}-rows-\d+\.parquet", name)
                    or (self.scratch is not None and folder != self.scratch)):
                raise JobobsError(f"{path} is not a file of job {self.job_id}'s scratch")
        return step


class RemoteRun:
    """One run of a job on the cluster, followed from a runtime worker thread."""

    def __init__(self, rt: Runtime, executor: DaskExecutor, execution: Any):
        self.rt, self.executor, self.execution = rt, executor, execution
        self.job_id = execution.job_id
        self.started = rt.clock()

    def run(self, row: Any, checkpoint: dict[str, Any] | None) -> None:
        rt, job_id = self.rt, self.job_id
        run = row.run_count
        self.reports = Reports(rt.ledger, job_id, run, self.executor.scratch)
        self.execution.started = float("inf")  # the stall watch starts once a worker has it
        unclaimed = f"dask: waiting for a worker (run {run})"
        row.set(worker=unclaimed, host=None, pid=None)
        rt.ledger.line(job_id, "INFO", f"Job sent to the Dask cluster at "
                       f"{self.executor.scheduler} (run {run})")
        rt.ledger.flush()  # the worker reads the row, rejects and commands from the database
        assignment = {
            "job_id": job_id, "run": run, "spec": row.spec, "row": row.values(),
            "resume_state": checkpoint["state"] if checkpoint else None,
            "reject_seq": rt.ledger.reject_seq(job_id), "unclaimed": unclaimed,
            "since_command": rt.store.last_command_id(),
            "flush_interval": max(rt.flush_interval, 0.2),
        }
        try:
            future = self.executor.submit(assignment, key=f"jobobs-{rt.id}-{job_id}-{run}")
        except Exception as error:
            rt._end(self.execution, Status.FAILED, self.started, error=error)
            return
        try:
            self.follow(future)
        except Exception as error:  # the scheduler or the database failed us: stop the run
            log.exception("jobobs: following job %s on Dask failed", job_id)
            future.cancel()
            if self.execution.job_id in rt._executions:
                self.cut_short(f"the server lost track of the job on Dask ({error})")
        finally:
            future.release()

    def follow(self, future: Any) -> None:
        rt, execution = self.rt, self.execution
        told_to_stop = False
        checked = time.monotonic()
        while True:
            try:
                end = self.reports.apply()
            except Exception as error:
                future.cancel()
                rt._end(execution, Status.FAILED, self.started, error=JobobsError(
                    f"the server could not apply what the worker sent: {error}"))
                return
            if end is not None:
                return self.finish(end)
            if execution.abandoned:  # failed as hung by the stall watch
                future.cancel()
                return
            if execution.control.shutdown and not told_to_stop:
                rt.store.signal(self.job_id, "shutdown", by="runtime", now=rt.clock(),
                                outcome="sent to the Dask worker")
                told_to_stop = True
            claim = self.reports.claim
            if claim and execution.started == float("inf"):
                execution.started = time.monotonic()
            done = future.done()  # a Dask retry after the worker died ends at once, unclaimed
            if claim and (done or time.monotonic() - checked >= LIVENESS):
                checked = time.monotonic()
                if not self.alive(claim["worker"], fresh=done):
                    if (end := self.reports.apply()) is not None:
                        return self.finish(end)
                    future.cancel()  # Dask would run it again elsewhere: Start decides
                    return self.lost(claim)
            if done:
                if (end := self.reports.apply()) is not None:
                    return self.finish(end)
                return self.vanished(future)
            time.sleep(rt.poll_interval)

    def alive(self, worker: str, fresh: bool) -> bool:
        """Whether the worker is in the cluster (asked again before saying no; an
        unanswered question is not a no)."""
        try:
            return (worker in self.executor.workers(fresh=fresh)
                    or worker in self.executor.workers(fresh=True))
        except Exception as error:
            log.warning("jobobs: the Dask scheduler did not answer: %s", error)
            return True

    def finish(self, end: dict[str, Any]) -> None:
        from jobobs.execution.runtime import STOP_REASONS, STOPPED

        rt, execution = self.rt, self.execution
        if end["status"] == "finished":
            rt._end(execution, Status.FINISHED, self.started)
        elif end["status"] == "interrupted":
            with rt.ledger.lock:
                status = STOPPED.get(rt.ledger.status(self.job_id), Status.SHUTDOWN)
                rt._end(execution, status, self.started, STOP_REASONS[status])
        else:
            rt._end(execution, Status.FAILED, self.started, error=failure(end))

    def lost(self, claim: dict[str, Any]) -> None:
        self.cut_short(f"the Dask worker {claim['worker']} (pid {claim['pid']} on "
                       f"{claim['host']}) died while it ran the job")

    def vanished(self, future: Any) -> None:
        """The task ended without saying how the job ended."""
        if future.status == "error":
            error = future.exception()
            why = f"{type(error).__name__}: {error}"
        else:
            why = f"its Dask task is {future.status}"
        self.cut_short(f"the job's Dask task ended without a report ({why})")

    def cut_short(self, what: str) -> None:
        """End a run the job could not end itself: ``canceled`` if a cancel was under way,
        else ``shutdown``, which Start resumes from the last checkpoint."""
        rt = self.rt
        with rt.ledger.lock:
            if rt.ledger.status(self.job_id) is Status.CANCELING:
                rt._end(self.execution, Status.CANCELED, self.started,
                        f"{what}; the cancel is complete", level="WARNING")
            else:
                rt._end(self.execution, Status.SHUTDOWN, self.started,
                        f"{what}; Start resumes it from its last checkpoint", level="WARNING")


def failure(end: dict[str, Any]) -> JobobsError:
    """The exception a worker reported, as the server words it."""
    if "rejects" in end:
        rejected, limit = end["rejects"]
        return TooManyRejects(int(rejected), int(limit))
    summary = f"{end.get('type', 'Error')}: {end.get('text', '')}"
    return RemoteFailure(summary, end.get("traceback") or str(end.get("text", "")))


def recover(ledger: Ledger) -> None:
    """At start: apply what workers reported for the jobs the last process left running
    (it was acknowledged), and drop the rest."""
    store = ledger.store
    pending = store.reader().execute(
        "SELECT DISTINCT r.job_id, j.run_count FROM job_reports r JOIN jobs j "
        "ON j.id = r.job_id WHERE j.status IN ('running', 'pausing', 'canceling')").fetchall()
    for job_id, run in pending:
        try:
            Reports(ledger, job_id, run).apply()
        except Exception as error:
            log.warning("jobobs: job %s: what its worker reported could not be applied: %s",
                        job_id, error)
    with store.transaction() as con:
        con.execute("DELETE FROM job_reports")
