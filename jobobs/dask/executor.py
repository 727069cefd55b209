"""Jobs on a Dask cluster, the server's side.

``DaskExecutor`` is the ``Executor`` of ``jobobs serve --executor dask``: each of the
runtime's slot threads is a slot on the cluster. It sends its job to Dask
(``jobobs.dask.worker.run``), then follows the run (``RemoteRun``): it applies the batches
the worker reports (``jobobs.execution.reports``), tells the worker to stop when the server
stops, and watches that the worker is alive. A worker that dies cuts the run short: the job
is ``shutdown`` (or ``canceled`` if a cancel was under way) with a journal line naming the
worker, and Start resumes it from its last checkpoint on whichever worker Dask picks. Every
end goes through ``Runtime.end_run``.

``distributed`` is imported only in this package (see ``jobobs.dask``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import distributed

from jobobs.dask.credentials import Credentials
from jobobs.dask.worker import run as run_on_worker
from jobobs.db import files
from jobobs.db.ledger import Ledger
from jobobs.execution import recovery
from jobobs.execution.reports import Reports
from jobobs.execution.runs import Run
from jobobs.model.errors import JobobsError
from jobobs.model.states import Outcome, Status

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime

log = logging.getLogger(__name__)
LIVENESS = 0.5  # seconds between checks that a job's worker is still in the cluster
KEEP_SIZE = 1.0  # seconds between checks that a local cluster has all its workers


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


class DaskExecutor:
    """Runs jobs on a Dask cluster: an existing one (``scheduler``, a tcp:// address) or a
    local one of ``workers`` processes. ``scratch`` is a folder every worker can read and
    write, for the staging tables of imports (by default beside the database, which suits
    workers on the server's machine)."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 scratch: str | None = None, threads: int | None = None):
        self.cluster = None
        self.size = 0 if scheduler else workers or 2  # the local cluster's workers
        self._closing = threading.Event()
        try:
            if scheduler:
                self.client = distributed.Client(scheduler, timeout="10s")
            else:
                with _ignoring_interrupts():  # Ctrl-C stops the server, which stops them
                    self.cluster = distributed.LocalCluster(
                        n_workers=self.size, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
                self.client = distributed.Client(self.cluster)
                threading.Thread(target=self._keep_size, name="jobobs-dask-cluster",
                                 daemon=True).start()
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
        self.address = address
        self.scratch = files.private_folder(self.scratch or scratch)
        server = uuid.uuid4().hex
        self.marker = os.path.join(self.scratch, f".jobobs-server-{server}")
        with open(self.marker, "w", encoding="utf-8") as file:
            file.write(f"{address}\n")
        self.access = f"jobobs-credentials-{server}"
        self.client.register_plugin(Credentials(self.access, token), name=self.access)
        self._bound.set()

    # -- the Executor interface (jobobs.execution.executors) ------------------------------

    def capacity(self) -> int:
        """Jobs the cluster runs at once: its workers' threads."""
        return max(1, sum(w.get("nthreads", 1) for w in self._identity()["workers"].values()))

    def recover(self, ledger: Ledger) -> list[tuple[int, Status]]:
        """Runs a server that is gone left on the cluster are not followed again (their
        workers stop once they cannot report): they are settled like any other."""
        return recovery.recover(ledger)

    def launch(self, runtime: Runtime, run: Run) -> None:
        RemoteRun(runtime, self, run).launch()

    # -- the cluster -------------------------------------------------------------------

    def workers(self, fresh: bool = False) -> frozenset[str]:
        """The addresses of the cluster's live workers (asked at most every LIVENESS s,
        unless ``fresh``)."""
        with self._lock:
            at, seen = self._seen
            if fresh or time.monotonic() - at >= LIVENESS:
                seen = frozenset(self._identity()["workers"])
                self._seen = (time.monotonic(), seen)
            return seen

    def _keep_size(self) -> None:
        """Keep the local cluster at its size. A worker that dies is started again by its
        nanny, but the cluster closes that nanny for good if no worker of its name is back
        15 s after the death (Dask's ``lost-worker-timeout``): a slow restart on a busy
        machine, or a second death meanwhile, and the cluster had one worker less."""
        short = False
        while not self._closing.wait(KEEP_SIZE):
            try:
                if len(self.cluster.workers) >= self.size:
                    short = False
                    continue
                if not short:
                    log.warning("jobobs: the local Dask cluster lost a worker for good; "
                                "starting another")
                    short = True
                self.cluster.scale(self.size)
            except Exception as error:  # the cluster is closing
                log.debug("jobobs: keeping the Dask cluster's size failed: %s", error)

    def _identity(self) -> dict[str, Any]:
        """The scheduler's account of itself and every worker, asked now. Not
        ``Client.scheduler_info()``: that returns the client's cached copy, which the
        client's own periodic update (which asks for no workers) may have just replaced,
        and a live worker would seem gone."""
        return self.client.sync(self.client.scheduler.identity, n_workers=-1)

    def submit(self, assignment: dict[str, Any], key: str) -> Any:
        if not self._bound.wait(30):
            raise JobobsError("the Dask executor has no Quack endpoint to report to")
        return self.client.submit(run_on_worker, {**assignment, "address": self.address,
                                        "access": self.access, "scratch": self.scratch,
                                        "marker": self.marker, "threads": self.threads},
                                  key=key, pure=False, retries=0)

    def close(self) -> None:
        self._closing.set()
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


class RemoteRun:
    """One run of a job on the cluster, followed from one of the runtime's slot threads."""

    def __init__(self, rt: Runtime, executor: DaskExecutor, run: Run):
        self.rt, self.executor, self.run = rt, executor, run
        self.job_id = run.job_id

    def launch(self) -> None:
        rt, run, job_id = self.rt, self.run, self.job_id
        self.reports = Reports(rt.ledger, job_id, run.number, self.executor.scratch)
        run.remote = True
        run.started = float("inf")  # the stall watch starts once a worker has it
        unclaimed = f"dask: waiting for a worker (run {run.number})"
        run.row.set(worker=unclaimed, host=None, pid=None)
        rt.ledger.line(job_id, "INFO", f"Job sent to the Dask cluster at "
                       f"{self.executor.scheduler} (run {run.number})")
        try:
            rt.ledger.flush()  # the worker reads the row, rejects and requests from the file
            assignment = {
                "job_id": job_id, "run": run.number, "spec": run.row.spec,
                "row": run.row.values(), "resume_state": run.resume_state,
                "reject_seq": rt.ledger.reject_seq(job_id), "unclaimed": unclaimed,
                "since_command": rt.store.last_command_id(),
                "flush_interval": max(rt.flush_interval, 0.2),
            }
            future = self.executor.submit(assignment,
                                          key=f"jobobs-{rt.id}-{job_id}-{run.number}")
        except Exception as error:
            rt.end_run(run, Outcome.failed(error))
            return
        try:
            self.follow(future)
        except Exception as error:  # the scheduler or the database failed us: stop the run
            log.exception("jobobs: following job %s on Dask failed", job_id)
            future.cancel()
            rt.end_run(run, Outcome.cut_short(f"the server lost track of the job on Dask "
                                              f"({error})"))
        finally:
            future.release()

    def follow(self, future: Any) -> None:
        """Apply what the worker reports until the run ends; end it if the worker or its
        task is lost."""
        rt, run = self.rt, self.run
        told_to_stop = False
        checked = time.monotonic()
        while True:
            try:
                end = self.reports.apply()
            except Exception as error:
                future.cancel()
                rt.end_run(run, Outcome.failed(JobobsError(
                    f"the server could not apply what the worker sent: {error}")))
                return
            if end is not None:
                return rt.end_run(run, Outcome.from_dict(end))
            if run.abandoned:  # failed as hung by the stall watch
                future.cancel()
                return
            if run.interrupts.shutdown and not told_to_stop:
                rt.store.signal(self.job_id, "shutdown", by="runtime", now=rt.clock(),
                                outcome="sent to the Dask worker")
                told_to_stop = True
            claim = self.reports.claim
            if claim and run.started == float("inf"):
                run.started = time.monotonic()
            done = future.done()  # a Dask retry after the worker died ends at once, unclaimed
            if claim and (done or time.monotonic() - checked >= LIVENESS):
                checked = time.monotonic()
                if not self.alive(claim["worker"], fresh=done):
                    if (end := self.reports.apply()) is not None:
                        return rt.end_run(run, Outcome.from_dict(end))
                    future.cancel()  # Dask would run it again elsewhere: Start decides
                    return rt.end_run(run, Outcome.cut_short(
                        f"the Dask worker {claim['worker']} (pid {claim['pid']} on "
                        f"{claim['host']}) died while it ran the job"))
            if done:
                if (end := self.reports.apply()) is not None:
                    return rt.end_run(run, Outcome.from_dict(end))
                return rt.end_run(run, Outcome.cut_short(
                    f"the job's Dask task ended without a report ({self.why(future)})"))
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

    @staticmethod
    def why(future: Any) -> str:
        """Why a task ended without saying how its job ended."""
        if future.status == "error":
            error = future.exception()
            return f"{type(error).__name__}: {error}"
        return f"its Dask task is {future.status}"
