"""What a running job sees: its journal, rejects, progress, counters and checkpoints."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from jobobs.db.ledger import JobRow
from jobobs.execution.sinks import JobSink
from jobobs.model import values
from jobobs.model.errors import (
    CancelInterrupt,
    JobobsError,
    PauseInterrupt,
    ShutdownInterrupt,
    TooManyRejects,
)
from jobobs.model.retries import Retry
from jobobs.model.rows import COUNTERS, raw_of, render, to_json
from jobobs.model.states import Outcome

INTERRUPTS = {"pause": PauseInterrupt, "cancel": CancelInterrupt, "shutdown": ShutdownInterrupt}


class Interrupts:
    """The requests a running job honours at its next safe point: a person's pause or
    cancel, and the runtime's shutdown.

    A cancel outranks a pause, and both outrank a shutdown (the person asked first); a
    shutdown is kept apart so that withdrawing a pause never drops it. Once the job has
    taken a request at a safe point it is stopping and a pause can no longer be withdrawn:
    ``lock`` makes taking and withdrawing exclusive.
    """

    def __init__(self) -> None:
        self.request: str | None = None  # "pause" or "cancel"
        self.shutdown = False
        self.taken: str | None = None
        self.lock = threading.Lock()
        self.listeners: list[Callable[[], None]] = []  # told of every request

    @property
    def pending(self) -> str | None:
        return self.request or ("shutdown" if self.shutdown else None)

    def ask(self, request: str) -> None:
        with self.lock:
            if request == "shutdown":
                self.shutdown = True
            elif self.request != "cancel":
                self.request = request
        for listener in list(self.listeners):
            listener()

    def take(self) -> str | None:
        with self.lock:
            self.taken = self.pending
            return self.taken

    def reached(self) -> None:
        """Called as the job calls a checkpoint, before the checkpoint looks for a request
        (``jobobs.testing`` asks for one here, at the checkpoint a test names)."""


class JobLog:
    """The job's journal, with logging's method names: ``ctx.log.info("read %d rows", n)``.

    ``logging`` calls made by the job's function and by the threads it starts land here
    too, from DEBUG up (see ``jobobs.execution.logbridge``)."""

    def __init__(self, ctx: JobContext):
        self._ctx = ctx
        self._line = ctx._sink.line

    def write(self, level: str, message: str, code: str | None = None) -> int:
        if level in ("WARNING", "ERROR"):
            self._ctx._warned()
        return self._line(level, message, code)

    def debug(self, message: object, *args: object, code: str | None = None) -> int:
        return self._line("DEBUG", render(message, args), code)

    def info(self, message: object, *args: object, code: str | None = None) -> int:
        return self._line("INFO", render(message, args), code)

    def warning(self, message: object, *args: object, code: str | None = None) -> int:
        return self.write("WARNING", render(message, args), code)

    def error(self, message: object, *args: object, code: str | None = None) -> int:
        return self.write("ERROR", render(message, args), code)

    warn = warning


class JobContext:
    """Passed to every job function as its first argument.

    ``resume_state`` is what the last checkpoint saved (None on a first run).
    ``checkpoint(state)`` is the safe point: it saves ``state`` with everything reported so
    far and is where a pause, cancel or shutdown takes effect.
    """

    def __init__(
        self, row: JobRow, *, sink: JobSink, interrupts: Interrupts, clock: Callable[[], float],
        resume_state: Any = None, max_rejects: int | None = None,
        checkpoint_interval: float = 0.0,
    ):
        self.job_id = row.id
        self.name = row.name
        self.resume_state = resume_state
        self.max_rejects = max_rejects
        self.checkpoint_interval = checkpoint_interval
        self._row = row
        self._sink = sink
        self._interrupts = interrupts
        self._clock = clock
        self._explicit_succeeded = False
        self._segment = (clock(), row.progress_current or 0.0)
        self._state = resume_state
        self._last_checkpoint = float("-inf")
        self.log = JobLog(self)

    @property
    def counters(self) -> dict[str, int | None]:
        return {name: getattr(self._row, name) for name in COUNTERS}

    @property
    def has_warning(self) -> bool:
        return bool(self._row.has_warning)

    def retry_follows(self, error: BaseException) -> bool:
        """True if this run, failing with ``error``, will be retried from its last
        checkpoint (its retry policy has a retry left for it): a job keeps what a
        resume needs (an import its staging tables) instead of cleaning up."""
        policy = Retry.stored(self._row.retries, self._row.retry_policy)
        return policy is not None and policy.follows(self._row.retried,
                                                     Outcome.failed(error).kinds)

    # -- reporting --------------------------------------------------------------

    def warn(self, message: object, *args: object, code: str | None = None) -> int:
        """A warning line in the journal; the job will end 'finished' with its warning flag set."""
        return self.log.warning(message, *args, code=code)

    def reject(
        self, record: Any = None, reason: str = "rejected", column: str | None = None, *,
        message: str | None = None, source: str | None = None, line: int | None = None,
        raw: str | None = None, warning: bool = False,
    ) -> int:
        """Record a rejected record; past ``max_rejects`` the job fails with TooManyRejects.

        ``reason`` is a short code people group by ("negative score"); ``message`` the
        longer text (defaults to the reason). With ``warning=True`` the record is kept as
        a warning and does not count toward the limit.
        """
        seq = self._sink.reject(
            kind="warning" if warning else "error",
            source=values.optional_text(source, values.PATH_LIMIT),
            line_no=_count("line", line),
            column_name=values.optional_text(column, values.NAME_LIMIT),
            raw=values.optional_text(raw if raw is not None else raw_of(record)),
            record=None if record is None else values.text(to_json(record)),
            reason=values.text(reason, values.NAME_LIMIT),
            message=values.text(message or reason),
        )
        if warning:
            self._warned()
            return seq
        with self._sink.lock:  # the job's threads may reject at the same time
            rejected = self._row.rejected + 1
            self._row.set(rejected=rejected, **self._succeeded(rejected=rejected))
        if self.max_rejects is not None and rejected > self.max_rejects:
            raise TooManyRejects(rejected, self.max_rejects)
        return seq

    def progress(self, current: float, total: float | None = None, *,
                 counts: bool = True) -> None:
        """Report progress and estimate an ETA. ``processed`` and ``total`` follow
        ``current`` and ``total`` unless ``counts=False`` (progress in bytes, say)."""
        now = self._clock()
        row = self._row
        current = values.finite("current", current)
        changed: dict[str, Any] = {"progress_current": current}
        if counts:
            changed["processed"] = values.bigint("current", int(current))
        if total is not None:
            total = values.finite("total", total)
            changed["progress_total"] = total
            if counts:
                changed["total"] = values.bigint("total", int(total))
        else:
            total = row.progress_total
        started, start_value = self._segment
        done = current - start_value
        if total is not None and done > 0 and now > started:
            eta = now + (total - current) * (now - started) / done
            changed["eta_at"] = eta if eta <= values.LAST_TIME else None  # past year 9999
        row.set(**changed, **(self._succeeded(processed=int(current)) if counts else {}))

    def count(self, **counters: int) -> None:
        """Set counters explicitly (``succeeded``, ``duplicates``...)."""
        unknown = set(counters) - set(COUNTERS)
        if unknown:
            raise JobobsError(f"unknown counter {sorted(unknown)[0]!r}; "
                              f"use one of {', '.join(COUNTERS)}")
        counted = {name: _count(name, value) for name, value in counters.items()}
        if any(value is None for name, value in counted.items() if name != "total"):
            raise JobobsError("only the total counter can be unknown (None)")
        self._explicit_succeeded = self._explicit_succeeded or "succeeded" in counters
        self._row.set(**counted)

    # -- safe point -------------------------------------------------------------

    @property
    def stop_requested(self) -> str | None:
        """The pending request (pause, cancel, shutdown) that the next checkpoint will honour."""
        return self._interrupts.pending

    def checkpoint(self, state: Any = None,
                   atomic: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
                   steps: Sequence[dict[str, Any]] = (), *, durable: bool = False) -> None:
        """Save ``state`` (JSON) with everything reported so far; honour a pending request.

        A checkpoint with no state keeps the last one. A plain checkpoint costs no
        transaction: it is kept with the job's row and written by the next flush (every
        ``flush_interval``), in the transaction that writes the lines, rejects and counters
        reported before it, and always with or before a change of the job's status. So a
        crash loses at most the checkpoints of the last flush interval, and the job resumes
        from the one before them. It is written before ``checkpoint`` returns when it
        honours a request (and then raises), with ``durable=True`` (before the job acts on
        something outside the database, say), and with an atomic step.

        With ``checkpoint_interval`` set, the state is taken at most that often, except
        when a request is pending or a write is asked for. ``atomic(con)`` runs in the
        checkpoint's own transaction on the job database, so what it writes (rows into a
        table) commits with the state that records it, or not at all; a pause or cancel
        interrupts it and rolls it back, and the job stops at its previous checkpoint.
        ``steps`` are such writes described as data (see ``jobobs.db.steps``): the way a job
        on a Dask worker commits them.
        """
        self._interrupts.reached()
        if atomic is not None or steps:
            self._save_with(state, atomic, steps)
        elif state is not None:
            self._state = state
        request = self._interrupts.take() if self._interrupts.pending else None
        now = self._clock()
        if atomic is None and not steps:
            if request or durable:
                self.save(now)
            elif now - self._last_checkpoint >= self.checkpoint_interval:
                self._keep(now)
        if request:
            raise INTERRUPTS[request]()

    def _keep(self, now: float) -> None:
        """Set the checkpoint on the job's row for the next flush to write."""
        self._row.set(checkpoint=self._saved(self._state), checkpoint_at=now)
        self._last_checkpoint = now

    def _save_with(self, state: Any,
                   atomic: Callable[[duckdb.DuckDBPyConnection], None] | None,
                   steps: Sequence[dict[str, Any]]) -> None:
        con = self._sink.connection()
        running = threading.Lock()
        active = [False]

        def interrupt() -> None:  # only while our statements hold the shared connection
            with running:
                if active[0]:
                    con.interrupt()

        def guarded(writer: duckdb.DuckDBPyConnection) -> None:
            with running:
                active[0] = True
            try:
                if atomic is not None:
                    atomic(writer)
                self.check_interrupt()  # a request that came between two statements
            finally:
                with running:
                    active[0] = False

        with self.interruptible(interrupt):
            self.save(atomic=guarded, state=self._state if state is None else state,
                      steps=steps)

    def check_interrupt(self) -> None:
        """Raise DuckDB's InterruptException if a request is pending: call it after each
        statement of an ``interruptible`` block, for a request that came between two."""
        if self._interrupts.pending:
            raise duckdb.InterruptException("a pause, cancel or shutdown was requested")

    @contextmanager
    def interruptible(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """Run long statements so that a pause, cancel or shutdown interrupts them.

        ``interrupt`` is called when a request comes (``cursor.interrupt`` for a cursor
        from ``ctx.cursor()``); the interrupted statement's DuckDB error becomes the
        request, raised as at a checkpoint, and the job resumes from its last one. A
        request that comes between two statements is not seen by DuckDB: call
        ``check_interrupt()`` after each.
        """
        if self._interrupts.pending:
            self.checkpoint()
        self._interrupts.listeners.append(interrupt)
        try:
            yield
        except duckdb.InterruptException:
            if not self._interrupts.pending:
                raise
            self.checkpoint()
        finally:
            self._interrupts.listeners.remove(interrupt)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of the job's own to the job database (on a Dask worker, the
        server's database through Quack: queries on its tables work as in the server)."""
        return self._sink.cursor()

    @property
    def remote(self) -> bool:
        """True when the job runs on a Dask worker and reports to the server through Quack."""
        return self._sink.remote

    def on_server(self, query: str) -> str:
        """``query`` as a table expression that runs whole where the job database is (on
        a Dask worker, on the server: a filter or count does not pull the rows)."""
        return self._sink.on_server(query)

    def handoff(self, start: int) -> str | None:
        """On a Dask worker whose scratch folder the server reads too: a file there for
        rows from ``start`` on (faster than sending them through Quack); else None."""
        return self._sink.handoff(start)

    def staging(self, name: str) -> str:
        """The qualified name of a job's staging table: in the job database, or on a Dask
        worker in the job's scratch database (in the folder workers share)."""
        return self._sink.staging(name)

    def reserve_rejects(self, count: int) -> int:
        """Number ``count`` rejects the job writes itself in SQL (in a checkpoint's atomic
        step); return the number before the first. Counters are the job's to set."""
        return self._sink.reserve_rejects(count)

    def save(self, now: float | None = None,
             atomic: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
             state: Any = None, steps: Sequence[dict[str, Any]] = ()) -> None:
        """Write the checkpoint now, with every line, reject and counter reported before it
        (and ``state`` instead of the last one, once written)."""
        now = self._clock() if now is None else now
        state = self._state if state is None else state
        row = self._row
        saved = self._saved(state)
        previous = row.checkpoint, row.checkpoint_at
        try:
            # Set under the flush lock, so no other flush writes this checkpoint without
            # the rows of its atomic step.
            self._sink.flush(atomic=atomic, steps=steps,
                               prepare=lambda: row.set(checkpoint=saved, checkpoint_at=now))
        except BaseException:
            if atomic is not None or steps:  # its rows are rolled back: so is the state
                row.set(checkpoint=previous[0], checkpoint_at=previous[1])
            raise
        self._state = state
        self._last_checkpoint = now

    # -- internals --------------------------------------------------------------

    def _saved(self, state: Any) -> str:
        """The checkpoint as stored: the state with the counters, progress and last reject
        number it goes with."""
        row = self._row
        try:
            saved = json.dumps(
                {"state": state, "counters": self.counters,
                 "progress": [row.progress_current, row.progress_total],
                 "reject_seq": self._sink.reject_seq()}, allow_nan=False,
            )
        except (TypeError, ValueError) as error:
            raise JobobsError(f"checkpoint state must be JSON-serializable: {error}") from None
        return values.sized("checkpoint state", saved, values.STATE_LIMIT)

    def _warned(self) -> None:
        self._row.add("warnings", has_warning=True)

    def _succeeded(self, **changed: int) -> dict[str, int]:
        if self._explicit_succeeded:
            return {}
        processed = changed.get("processed", self._row.processed)
        rejected = changed.get("rejected", self._row.rejected)
        return {"succeeded": max(processed - rejected, 0)}


def _count(name: str, value: object) -> int | None:
    return None if value is None else values.bigint(name, value)
