"""A job on a Dask worker: it runs there and reports to the server through Quack.

``run(assignment)`` is the Dask task. It attaches the server's database, claims the run
(a Dask retry after a worker died finds the run claimed, and does nothing), and runs the
job with the same body as on the server (``jobobs.execution.runs.run_job``), its context
writing to a ``Reporter`` (a ``JobSink``) instead of the runtime's ledger.

The reporter sends what the job reports in batches, one ``job_reports`` row per batch:
journal lines, rejects, counters and progress, the checkpoint, and the steps to commit with
it; the server applies them (``jobobs.execution.reports``). An import's rejects, many at
once, go straight into ``rejects``, numbered from the server's last one, so a resume
discards those sent after its checkpoint. A thread (``Pump``) sends a batch every
``flush_interval`` and reads the job's status: ``pausing`` and ``canceling`` become the
job's pause and cancel, a ``shutdown`` request (the server is stopping) its shutdown, each
honoured at the next checkpoint as on the server.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import duckdb

from jobobs.dask.credentials import token as server_token
from jobobs.db import files, quack
from jobobs.db.ledger import JobRow
from jobobs.db.sql import ident, literal
from jobobs.db.store import ts
from jobobs.execution.context import Interrupts
from jobobs.execution.logbridge import capture_logging, release_logging
from jobobs.execution.reports import REPORTED
from jobobs.execution.runs import run_job
from jobobs.execution.sinks import Numbered
from jobobs.model.errors import JobobsError, ShutdownInterrupt, one_line
from jobobs.model.retries import Retry
from jobobs.model.rows import Reject, process
from jobobs.model.states import EXECUTING, Ending, Status

SERVER = quack.CATALOG
SCRATCH = "jobobs_scratch"
HEARTBEAT = 1.0  # seconds between reports when the job has nothing to say
GIVE_UP = 10.0  # seconds without the server before the job stops
LOCK_WAIT = 60.0  # seconds to wait for a job's scratch file held by its previous run


def worker_address() -> str | None:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


_instance_con: duckdb.DuckDBPyConnection | None = None
_instance_lock = threading.Lock()


def _instance(threads: int | None) -> duckdb.DuckDBPyConnection:
    """The worker process's DuckDB with the extensions loaded, made once (loading them
    takes a tenth of a second) and shared by the jobs the process runs."""
    global _instance_con
    with _instance_lock:
        if _instance_con is None:
            con = duckdb.connect()
            quack.load(con)
            _instance_con = con
        if threads:
            _instance_con.execute(f"SET threads = {int(threads)}")
        return _instance_con.cursor()


class Link:
    """A job's DuckDB connection on its worker, with the server's database attached
    through Quack twice: once as the job's default catalog (its queries name tables as on
    the server), once for its reports. A Quack attachment is one connection to the server,
    and a result it streams breaks if another thread uses the same attachment meanwhile:
    the reports (sent from the job's thread and the reporting thread) take turns on their
    own. Staging tables go in the job's scratch database."""

    def __init__(self, address: str, token: str, scratch: str | None, job_id: int,
                 run: int = 0, marker: str | None = None, threads: int | None = None):
        self.address = address
        self.scratch = scratch
        self.job_id = job_id
        self.scratch_path = (None if scratch is None
                             else os.path.join(scratch, f"job-{job_id}.duckdb"))
        self.catalog = f"{SERVER}_{job_id}_{run}"
        self.reports = f"jobobs_reports_{job_id}_{run}"
        self.scratch_name = f"{SCRATCH}_{job_id}_{run}"
        # the server reads this scratch folder too: rows can go there as Parquet
        self.shared = bool(marker) and os.path.exists(marker)
        self.con = _instance(threads)
        self.lock = threading.Lock()
        self.report_lock = threading.Lock()
        self._attached: list[str] = []
        try:
            for alias in (self.catalog, self.reports):
                quack.attach(self.con, address, token, alias)
                self._attached.append(alias)
            self.con.execute(f"USE {self.catalog}")
        except duckdb.Error as error:
            self.close(discard_scratch=False)
            raise quack.ServerUnavailable(f"the worker cannot reach the jobobs server at "
                                          f"{address}: {one_line(error)}") from None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self.con.cursor()
        cursor.execute(f"USE {self.catalog}")
        return cursor

    def on_server(self, query: str) -> str:
        return f"quack_query_by_name({literal(self.catalog)}, {literal(query)})"

    def query(self, sql: str) -> list[tuple]:
        """Rows of ``sql`` run whole on the server, on the reports' attachment."""
        return self.report(f"FROM quack_query_by_name({literal(self.reports)}, "
                           f"{literal(sql)})", fetch=True)

    def report(self, sql: str, fetch: bool = False) -> Any:
        """A statement on the reports' attachment (``self.reports``), one at a time."""
        with self.report_lock:
            cursor = self.con.cursor()
            try:
                cursor.execute(sql)
                return cursor.fetchall() if fetch else None
            finally:
                cursor.close()

    def staging(self, name: str) -> str:
        with self.lock:
            if self.scratch_name not in self._attached:
                if self.scratch_path is None:
                    raise JobobsError("this job needs a scratch folder the Dask workers share "
                                      "(serve --scratch)")
                files.private_folder(os.path.dirname(self.scratch_path))
                attach_scratch(self.con, self.scratch_path, self.scratch_name)
                self._attached.append(self.scratch_name)
        return f"{self.scratch_name}.main.{ident(name)}"

    def handoff(self, start: int) -> str | None:
        """Where to put rows from ``start`` on for the server to read, if it can."""
        if not self.shared or self.scratch is None:
            return None
        return os.path.join(self.scratch, f"job-{self.job_id}-rows-{start:012d}.parquet")

    def close(self, discard_scratch: bool) -> None:
        try:  # the scratch file's lock goes, for the job's next run on any worker
            self.con.execute("USE memory")
            for alias in self._attached:
                self.con.execute(f"DETACH {alias}")
        finally:
            self.con.close()
        if discard_scratch and self.scratch_path is not None:
            leftovers = glob.glob(os.path.join(self.scratch, f"job-{self.job_id}-rows-*"))
            for path in [self.scratch_path, self.scratch_path + ".wal", *leftovers]:
                if os.path.exists(path):
                    os.remove(path)


def attach_scratch(con: duckdb.DuckDBPyConnection, path: str, alias: str,
                   wait: float = LOCK_WAIT, waiting: Callable[[], None] | None = None) -> None:
    """Attach a job's scratch database, waiting up to ``wait`` seconds while another
    process holds it: a previous run of the job that the server gave up on (its worker
    seemed lost) may still be running until its next checkpoint. ``waiting()`` is called
    each time the file is found held."""
    deadline = time.monotonic() + wait
    while True:
        try:
            con.execute(f"ATTACH {literal(path)} AS {alias}")
            return
        except duckdb.IOException as error:
            if "could not set lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise JobobsError(f"the job's scratch file {path} is still held by another "
                                  f"process after {wait:g} s (a previous run of the job that "
                                  f"has not ended?): {one_line(error)}") from None
            if waiting is not None:
                waiting()
            time.sleep(0.2)


class Reporter(Numbered):
    """The ``JobSink`` of a job on a Dask worker: batches sent to the server's
    ``job_reports`` table instead of writes to the job database."""

    remote = True

    def __init__(self, link: Link, assignment: dict[str, Any], worker: str | None):
        self.link = link
        self.job_id, self.run = assignment["job_id"], assignment["run"]
        self.worker = worker
        super().__init__(assignment["reject_seq"])
        self.lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._lines: list[tuple] = []
        self._rejects: list[Reject] = []
        self._count = 0
        self._batch = 0
        self._sent_at = 0.0
        self.row: JobRow | None = None
        self.last_contact = time.monotonic()

    # -- the JobSink interface (jobobs.execution.sinks) ----------------------------------

    def line(self, level: str, message: str, code: str | None = None) -> int:
        code, message = process(code, message)
        with self.lock:
            self._lines.append((time.time(), level, code, message))
            self._count += 1
            return self._count

    def reject(self, **fields: Any) -> int:
        with self.lock:
            seq = self.reject_number()
            self._rejects.append(Reject(job_id=self.job_id, seq=seq, rejected_at=time.time(),
                                        **fields))
            return seq

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.link.cursor()

    def connection(self) -> duckdb.DuckDBPyConnection:
        return self.link.con

    def staging(self, name: str) -> str:
        return self.link.staging(name)

    def handoff(self, start: int) -> str | None:
        return self.link.handoff(start)

    def on_server(self, query: str) -> str:
        return self.link.on_server(query)

    def flush(self, atomic: Any = None, prepare: Any = None, steps: Any = ()) -> None:
        """Send what is pending (with ``atomic``'s statements run on the server first and
        ``steps`` for the server to commit with the checkpoint); with steps, wait until
        the server has applied them."""
        with self._flush_lock:
            if prepare is not None:
                prepare()
            if atomic is not None:
                cursor = self.link.cursor()
                try:
                    atomic(cursor)
                finally:
                    cursor.close()
            batch = self.send(steps=list(steps))
            if steps and batch is not None:
                self.await_applied(batch)

    # -- sending ------------------------------------------------------------------------

    def send(self, steps: list[dict[str, Any]] | None = None,
             end: dict[str, Any] | None = None, claim: dict[str, Any] | None = None,
             beat: bool = False) -> int | None:
        """Send one batch; return its number (None when there was nothing to send).
        Batches are numbered and written one at a time, so they commit in order."""
        with self._send_lock:
            with self.lock:
                row = self.row
                values = row.take_changes(REPORTED) if row is not None else {}
                lines, rejects = self._lines, self._rejects
                if not (lines or rejects or values or steps or end or claim or beat):
                    return None
                self._lines, self._rejects = [], []
                body: dict[str, Any] = {"lines": lines, "row": values,
                                        "rejects": [list(r) for r in rejects],
                                        "reject_seq": self.reject_seq()}
            for key, value in (("steps", steps), ("end", end), ("claim", claim)):
                if value:
                    body[key] = value
            batch = self._batch + 1
            try:
                self._retry(lambda: self._write(batch, body))
            except BaseException:
                with self.lock:  # kept for the next try
                    self._lines[:0], self._rejects[:0] = lines, rejects
                    if row is not None:
                        row.mark_changed(values)
                raise
            self._batch = batch
            self._sent_at = time.monotonic()
            return batch

    def send_pending(self) -> None:
        """Send what is pending (a heartbeat if nothing is, once a ``HEARTBEAT`` has passed),
        unless a checkpoint is being sent: its state goes with its steps."""
        if not self._flush_lock.acquire(blocking=False):
            return
        try:
            self.send(beat=time.monotonic() - self._sent_at >= HEARTBEAT)
        finally:
            self._flush_lock.release()

    def _write(self, batch: int, body: dict[str, Any]) -> None:
        """One batch, one row (a retry after a lost reply may write it twice: the server
        applies a batch number once)."""
        self.link.report(
            f"INSERT INTO {self.link.reports}.main.job_reports VALUES ({self.job_id}, {self.run}, "
            f"{batch}, {literal(ts(time.time()))}, {literal(self.worker)}, "
            f"{literal(json.dumps(body))})")

    def _retry(self, call: Any) -> Any:
        """Try for ``GIVE_UP`` seconds while the server is unreachable (a restart, a
        network blip); then the job cannot report and must stop."""
        deadline = time.monotonic() + GIVE_UP
        while True:
            try:
                result = call()
                self.last_contact = time.monotonic()
                return result
            except (duckdb.Error, quack.ServerUnavailable) as error:
                if time.monotonic() >= deadline or not quack.lost(str(error)):
                    raise
                time.sleep(0.5)

    def still_mine(self) -> None:
        """Stop the job (at once) if the server ended this run meanwhile."""
        rows = self._retry(lambda: self.link.query(
            f"SELECT status, run_count FROM jobs WHERE id = {self.job_id}"))
        if not rows or Status(rows[0][0]) not in EXECUTING or rows[0][1] != self.run:
            raise ShutdownInterrupt()

    def await_applied(self, batch: int) -> None:
        """Wait until the server has applied the batch (its steps committed)."""
        while True:
            (left,) = self._retry(lambda: self.link.query(
                f"SELECT count(*) FROM job_reports WHERE job_id = {self.job_id} AND "
                f"run = {self.run} AND batch = {batch}"))[0]
            self.still_mine()  # a batch is also dropped when the run was ended
            if not left:
                return
            time.sleep(0.02)


class Pump(threading.Thread):
    """Sends the reporter's batches every ``interval`` and turns the server's requests
    into the job's interrupts."""

    def __init__(self, reporter: Reporter, interrupts: Interrupts, interval: float,
                 since_command: int):
        super().__init__(name=f"jobobs-report-{reporter.job_id}", daemon=True)
        self.reporter, self.interrupts, self.interval = reporter, interrupts, interval
        self.since_command = since_command
        self.stopping = threading.Event()

    def run(self) -> None:
        reporter = self.reporter
        while not self.stopping.wait(self.interval):
            try:
                reporter.send_pending()
                self.poll()
            except Exception:  # the server is gone for good: stop at the next checkpoint
                if time.monotonic() - reporter.last_contact > GIVE_UP:
                    self.interrupts.ask("shutdown")

    def poll(self) -> None:
        job_id = self.reporter.job_id
        status, run, stop = self.reporter.link.query(
            f"SELECT status, run_count, (SELECT count(*) FROM job_commands WHERE job_id = "
            f"{job_id} AND command = 'shutdown' AND id > {self.since_command}) FROM jobs "
            f"WHERE id = {job_id}")[0]
        self.reporter.last_contact = time.monotonic()
        if run != self.reporter.run:  # the server gave up on this run (its worker seemed lost)
            self.interrupts.ask("shutdown")
        elif status == Status.PAUSING:
            self.interrupts.ask("pause")
        elif status == Status.CANCELING:
            self.interrupts.ask("cancel")
        elif stop or Status(status) not in EXECUTING:
            self.interrupts.ask("shutdown")


def run(assignment: dict[str, Any]) -> str:
    """The Dask task: run one run of a job; return how it ended."""
    worker = worker_address()
    link = Link(assignment["address"], server_token(assignment["access"]),
                assignment.get("scratch"), assignment["job_id"], assignment["run"],
                assignment.get("marker"), assignment.get("threads"))
    ended = "superseded"
    try:
        if not _claimable(link, assignment):
            return ended
        ended = _run(link, assignment, worker)
        return ended
    finally:
        link.close(discard_scratch=ended in ("finished", "failed", "canceled"))


def _claimable(link: Link, assignment: dict[str, Any]) -> bool:
    """True if this run is still the job's and no worker has claimed it (a Dask retry
    after the first worker died finds the dead worker's claim)."""
    rows = link.query(f"SELECT status, run_count, worker FROM jobs WHERE id = "
                      f"{assignment['job_id']}")
    if not rows:
        return False
    status, run_count, claimed = rows[0]
    return (Status(status) in EXECUTING and run_count == assignment["run"]
            and claimed == assignment["unclaimed"])


def _run(link: Link, assignment: dict[str, Any], worker: str | None) -> str:
    reporter = Reporter(link, assignment, worker)
    reporter.send(claim={"host": socket.gethostname(), "pid": os.getpid(), "worker": worker,
                         "at": time.time()})
    interrupts = Interrupts()
    row = JobRow(assignment["row"], reporter.lock)
    reporter.row = row
    pump = Pump(reporter, interrupts, assignment["flush_interval"],
                assignment["since_command"])
    pump.start()
    capture_logging()  # a job's own logging reaches its journal, as on the server
    try:
        outcome = run_job(assignment["spec"], row, reporter, interrupts, clock=time.time,
                          resume_state=assignment["resume_state"])
    finally:
        release_logging()
        pump.stopping.set()
        pump.join()
    reporter.send(end=outcome.to_dict())
    if outcome.ending is Ending.STOPPED:
        request = interrupts.taken or interrupts.pending
        return "canceled" if request == "cancel" else "stopped"
    policy = Retry.stored(row.retries, row.retry_policy)
    if (outcome.ending is Ending.FAILED and policy is not None and outcome.because is None
            and policy.follows(row.retried, outcome.kinds)):
        return "to be retried"  # its scratch (an import's staging tables) stays for it
    return outcome.ending.value
