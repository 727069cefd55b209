"""Helpers for testing jobs and code that uses jobobs (structlog's ``testing`` is the model).

``run`` runs a job function in the calling thread, through the same body as the runtime,
on a ``Recorder``: a ``JobSink`` kept in memory, with an in-memory DuckDB for the job's
SQL, so no database file is made. What the job reports comes back as plain data::

    from jobobs.testing import run

    def test_score():
        result = run(score, 10, pause_at=2)        # stops at its second checkpoint
        assert result.status == "paused" and result.checkpoints == [{"i": 1}, {"i": 2}]
        result = run(score, 10, resume=result)     # as Start resumes it
        assert result.status == "finished" and result.counters["processed"] == 10

``Recorder.context`` gives a real ``JobContext`` to call a function with yourself.
``wait_until``, ``wait_for_status``, ``history`` and ``journal_messages`` wait on and read a
real ``Runtime``: they wait on real state with a deadline instead of sleeping a fixed time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import EllipsisType
from typing import TYPE_CHECKING, Any, NamedTuple

import duckdb

from jobobs.db.ledger import JobRow
from jobobs.db.sql import ident
from jobobs.execution.context import Interrupts, JobContext
from jobobs.execution.logbridge import capture_logging, release_logging, running
from jobobs.execution.runs import run_job
from jobobs.execution.sinks import Atomic, Numbered
from jobobs.model.definition import JobFunction, as_job, check_arguments
from jobobs.model.rows import COUNTERS, process
from jobobs.model.states import Outcome, Status

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime

# the status a run is in when it ends, by the request it was given (Outcome.status)
ASKED = {"pause": Status.PAUSING, "cancel": Status.CANCELING}


class ManualClock:
    """A clock a test moves by hand (``clock.now = ...``), for ``Runtime(clock=clock)``: a
    schedule's tick, a retry's wait or an alert's limit come when the test says."""

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


class Line(NamedTuple):
    """A journal line as the journal stores it (a leading error code split out)."""

    level: str
    code: str | None
    message: str


@dataclass(frozen=True)
class Result:
    """How a run of ``run`` ended, and everything the job reported, oldest first.

    ``lines`` are the job's own (``ctx.log`` and ``logging``), without the lines the
    runtime adds at its start and end; ``error`` is the one line a failed job keeps and
    ``detail`` its journal text (a traceback). ``checkpoints`` are the states saved, each
    plain checkpoint included; ``checkpoint`` is the last one as stored (the state with the
    counters, progress and reject number it goes with), ``state`` its state. ``steps`` are
    the checkpoint steps (``jobobs.db.steps``) committed, kept as data and not run. ``con``
    is the in-memory database the job's SQL ran on.
    """

    status: Status
    error: str | None
    detail: str | None
    lines: list[Line]
    rejects: list[dict[str, Any]]
    progress: list[tuple[float, float | None]]
    checkpoints: list[Any]
    steps: list[dict[str, Any]]
    counters: dict[str, int | None]
    has_warning: bool
    checkpoint: dict[str, Any] | None
    state: Any
    con: duckdb.DuckDBPyConnection


class _Row(JobRow):
    """The job's row, telling its recorder of each change."""

    __slots__ = ("_recorder",)

    def __init__(self, values: dict[str, Any], recorder: Recorder):
        super().__init__(values, recorder.lock)
        self._recorder = recorder

    def set(self, **values: Any) -> None:
        with self._recorder.lock:
            super().set(**values)
            self._recorder.changed(values)


class _Asked(Interrupts):
    """Interrupts that ask for a pause or a cancel as the job calls the checkpoint a test
    names (counted from 1)."""

    def __init__(self, pause_at: int | None, cancel_at: int | None):
        super().__init__()
        self.due = {n: request for request, n in (("pause", pause_at), ("cancel", cancel_at))
                    if n is not None}
        if any(n < 1 for n in self.due):
            raise ValueError("pause_at and cancel_at count checkpoints from 1")
        self.calls = 0

    def reached(self) -> None:
        self.calls += 1
        if (request := self.due.pop(self.calls, None)) is not None:
            self.ask(request)


class Recorder(Numbered):
    """A ``JobSink`` in memory: it keeps what a job reports as plain data, and gives the
    job an in-memory DuckDB (``duckdb.connect()``, or ``con``) for its SQL and the atomic
    steps of its checkpoints. ``pause_at=n`` (``cancel_at=n``) asks for a pause (a cancel)
    as the job calls its ``n``-th checkpoint, which honours it: a plain one saves its state
    and stops the job, an atomic one is rolled back and the job stops at the one before.
    ``resume`` (a ``Result``) starts from its last checkpoint as Start does: its state,
    counters, progress and reject numbering; ``resume_state`` gives a state alone.

    Call a job function yourself with ``context``::

        recorder = Recorder()
        with recorder.context() as ctx:
            count_rows(ctx, "orders")
        assert recorder.lines == [("INFO", None, "3 rows")]
    """

    remote = False

    def __init__(self, *, resume: Result | None = None, resume_state: Any = None,
                 pause_at: int | None = None, cancel_at: int | None = None,
                 con: duckdb.DuckDBPyConnection | None = None, name: str = "test"):
        if resume is not None and resume_state is not None:
            raise TypeError("give resume or resume_state, not both")
        self.lock = threading.RLock()
        self.con = duckdb.connect() if con is None else con
        self.interrupts = _Asked(pause_at=pause_at, cancel_at=cancel_at)
        self.lines: list[Line] = []
        self.rejects: list[dict[str, Any]] = []
        self.progress: list[tuple[float, float | None]] = []
        self.checkpoints: list[Any] = []
        self.steps: list[dict[str, Any]] = []
        self._restoring = False
        checkpoint = resume.checkpoint if resume is not None else None
        self.resume_state = resume.state if resume is not None else resume_state
        Numbered.__init__(self, checkpoint["reject_seq"] if checkpoint else 0)
        counters = checkpoint["counters"] if checkpoint else {}
        current, total = checkpoint["progress"] if checkpoint else (None, None)
        self.row = _Row({
            "id": 1, "name": name, "kind": "python", "status": Status.RUNNING.value,
            "run_count": 2 if resume is not None else 1,
            "has_warning": resume is not None and resume.has_warning,
            **{c: counters.get(c) or 0 for c in COUNTERS}, "total": counters.get("total"),
            "progress_current": current, "progress_total": total,
            "checkpoint": json.dumps(checkpoint) if checkpoint else None,
        }, self)

    # -- what the job reported --------------------------------------------------------

    @property
    def counters(self) -> dict[str, int | None]:
        return {name: getattr(self.row, name) for name in COUNTERS}

    @property
    def has_warning(self) -> bool:
        return bool(self.row.has_warning)

    @property
    def checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint saved, as stored."""
        return json.loads(self.row.checkpoint) if self.row.checkpoint else None

    def result(self, outcome: Outcome) -> Result:
        """The run's ``Result``, once ``run_job`` returned ``outcome``."""
        with self.lock:
            checkpoint = self.checkpoint
            return Result(
                status=outcome.status(ASKED.get(self.interrupts.request, Status.RUNNING)),
                error=outcome.error, detail=outcome.detail, lines=list(self.lines),
                rejects=list(self.rejects), progress=list(self.progress),
                checkpoints=list(self.checkpoints), steps=list(self.steps),
                counters=self.counters, has_warning=self.has_warning, checkpoint=checkpoint,
                state=checkpoint["state"] if checkpoint else self.resume_state, con=self.con)

    @contextmanager
    def context(self, *, max_rejects: int | None = None,
                checkpoint_interval: float = 0.0) -> Iterator[JobContext]:
        """A ``JobContext`` on this recorder; inside the block ``logging`` calls reach its
        journal, as in a running job (from INFO up). A pause or cancel asked with
        ``pause_at`` or ``cancel_at`` is raised out of the job's function."""
        ctx = JobContext(self.row, sink=self, interrupts=self.interrupts, clock=time.time,
                         resume_state=self.resume_state, max_rejects=max_rejects,
                         checkpoint_interval=checkpoint_interval)
        capture_logging()
        try:
            with running(ctx):
                yield ctx
        finally:
            release_logging()

    def changed(self, values: dict[str, Any]) -> None:
        """Note a change of the job's row: a progress report, a checkpoint kept or saved."""
        if "progress_current" in values:
            self.progress.append((self.row.progress_current, self.row.progress_total))
        if "checkpoint" not in values:
            return
        if self._restoring:  # the context puts back the checkpoint before a failed one
            self._restoring = False
        elif values["checkpoint"] is not None:
            self.checkpoints.append(json.loads(values["checkpoint"])["state"])

    # -- the JobSink --------------------------------------------------------------------

    def line(self, level: str, message: str, code: str | None = None) -> int:
        code, message = process(code, message)
        with self.lock:
            self.lines.append(Line(level, code, message))
            return len(self.lines)

    def reject(self, **fields: Any) -> int:
        with self.lock:
            seq = self.reject_number()
            self.rejects.append({"seq": seq, **fields})
            return seq

    def flush(self, atomic: Atomic | None = None, prepare: Callable[[], None] | None = None,
              steps: Sequence[dict[str, Any]] = ()) -> None:
        """Run ``prepare``, then ``atomic`` in a transaction on the in-memory database;
        keep ``steps`` once it commits."""
        saved = len(self.checkpoints)
        if prepare is not None:
            prepare()
        if atomic is not None or steps:
            self._commit(atomic, steps, saved)

    def _commit(self, atomic: Atomic | None, steps: Sequence[dict[str, Any]],
                saved: int) -> None:
        self.con.begin()
        try:
            if atomic is not None:
                atomic(self.con)
            self.con.commit()
        except BaseException:
            self.con.rollback()
            with self.lock:  # the checkpoint was not saved
                self._restoring = len(self.checkpoints) > saved
                del self.checkpoints[saved:]
            raise
        self.steps.extend(steps)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def connection(self) -> duckdb.DuckDBPyConnection:
        return self.con

    def on_server(self, query: str) -> str:
        return f"({query})"

    def handoff(self, start: int) -> str | None:
        return None

    def staging(self, name: str) -> str:
        return ident(name)


def run(fn: Callable[..., Any] | JobFunction, /, *args: Any, resume: Result | None = None,
        resume_state: Any = None, pause_at: int | None = None, cancel_at: int | None = None,
        max_rejects: int | EllipsisType | None = ...,
        con: duckdb.DuckDBPyConnection | None = None, **kwargs: Any) -> Result:
    """Run ``fn(ctx, *args, **kwargs)`` (a ``@jobobs.job`` or a plain function) in this
    thread, as the runtime would, on a ``Recorder``; return its ``Result``.

    Its arguments are checked as ``submit`` checks them (JSON, the function's signature).
    ``max_rejects`` replaces the job's own limit; ``pause_at``, ``cancel_at``, ``resume``,
    ``resume_state`` and ``con`` are the ``Recorder``'s. A job that raises is ``failed``;
    nothing it raises reaches the caller. Example::

        result = run(score, 10, max_rejects=0)
        assert result.status == "failed" and "too many rejects" in result.error
    """
    job = as_job(fn)
    check_arguments(job, args, kwargs)
    spec = json.loads(job.spec(args, kwargs))
    if max_rejects is not ...:
        spec["max_rejects"] = max_rejects
    recorder = Recorder(resume=resume, resume_state=resume_state, pause_at=pause_at,
                        cancel_at=cancel_at, con=con, name=job.name)
    capture_logging()  # a job's own logging reaches its journal, as in a runtime
    try:
        outcome = run_job(json.dumps(spec), recorder.row, recorder, recorder.interrupts,
                          clock=time.time, resume_state=recorder.resume_state, function=job)
    finally:
        release_logging()
    return recorder.result(outcome)


# -- waiting on a real runtime ------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.005,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout} s")
        time.sleep(interval)


def wait_for_status(rt: Runtime, job_id: int, *statuses: Status | str,
                    timeout: float = 10.0) -> Status:
    """Wait until the job is in one of ``statuses`` (as the runtime knows it)."""
    wanted = {Status(s) for s in statuses}
    def arrived() -> Status | None:
        status = rt.status(job_id)
        return status if status in wanted else None

    return wait_until(arrived, timeout,
                      message=f"job {job_id} in {sorted(s.value for s in wanted)}")


def history(rt: Runtime, job_id: int) -> list[tuple[str | None, str]]:
    """The job's written transitions as (from, to) pairs, oldest first."""
    rt.ledger.flush()
    return rt.store.reader().execute(
        "SELECT from_status, to_status FROM job_transitions WHERE job_id = ? ORDER BY seq",
        [job_id],
    ).fetchall()


def journal_messages(rt: Runtime, job_id: int) -> list[str]:
    rt.ledger.flush()
    return [m for (m,) in rt.store.reader().execute(
        "SELECT message FROM journal WHERE job_id = ? ORDER BY seq", [job_id]).fetchall()]
