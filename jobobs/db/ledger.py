"""The runtime's ledger: the authoritative rows of the jobs it is handling, and everything
waiting to be written (transitions, journal lines, rejects, handled commands).

Only the runtime changes a job's status, so its in-memory row is the truth; ``flush``
writes what changed in one transaction, every ``flush_interval`` and at every checkpoint
(a caller that flushes waits for its data to be committed, and shares the transaction
with whatever else was pending: group commit). A status change and its history row are
always written together. Rows of settled jobs are dropped from memory once written.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from jobobs.db import steps as checkpoint_steps
from jobobs.db.schema import JOB_COLUMNS
from jobobs.db.sifting import blames_values, merge, sift, split
from jobobs.db.store import Store
from jobobs.model.errors import IllegalTransition, JobNotFound
from jobobs.model.rows import COUNTERS, Reject, process
from jobobs.model.states import ACTIVE, TERMINAL, Status, check_transition
from jobobs.model.values import text

log = logging.getLogger("jobobs.execution.runtime")


class JobRow:
    """A job's row; ``set`` records which columns changed since the last flush.

    Rows are changed by worker threads and read by the flush, so ``set`` takes the
    ledger's lock.
    """

    __slots__ = (*JOB_COLUMNS, "_changed", "_lock", "_new")

    def __init__(self, values: dict[str, Any], lock: threading.RLock, *, new: bool = False):
        for column in JOB_COLUMNS:
            object.__setattr__(self, column, values.get(column))
        self._changed: set[str] = set()
        self._lock = lock
        self._new = new

    def set(self, **values: Any) -> None:
        with self._lock:
            for column, value in values.items():
                object.__setattr__(self, column, value)
            self._changed.update(values)

    def add(self, column: str, amount: int = 1, **values: Any) -> None:
        """Add to a counter (and set ``values``) in one step: a job's threads count too."""
        with self._lock:
            self.set(**{column: (getattr(self, column) or 0) + amount}, **values)

    def values(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in JOB_COLUMNS}

    def take_changes(self, columns: Collection[str]) -> dict[str, Any]:
        """The values of ``columns`` changed since the last take; the row is then clean
        (a Dask worker's report sends them)."""
        with self._lock:
            taken = {c: getattr(self, c) for c in sorted(self._changed & set(columns))}
            self._changed = set()
            return taken

    def mark_changed(self, columns: Collection[str]) -> None:
        """Changed again: a report that carried them could not be sent."""
        with self._lock:
            self._changed |= set(columns)

    @property
    def dirty(self) -> bool:
        return self._new or bool(self._changed)


class Ledger:
    def __init__(self, store: Store, clock: Callable[[], float]):
        self.store = store
        self.clock = clock
        self.lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self.rows: dict[int, JobRow] = {}
        self._next_id = store.max_id()
        self._transitions: list[tuple] = []
        self._lines: list[tuple] = []  # JournalLine fields
        self._rejects: list[Reject] = []
        self._handled: list[tuple[int, str, float, int | None]] = []
        self._rewinds: list[tuple[int, int]] = []
        self._schedules: list[tuple[str, Any]] = []  # ("put", row) or ("drop", name)
        self._schedule_lines: list[tuple] = []
        self._line_seq: dict[int, int] = {}
        self.last_line_at: dict[int, float] = {}  # for the runtime's stall watch
        self._reject_seq: dict[int, int] = {}
        # jobs whose rows the database refused, told to ``on_unstorable(job_id, why)`` (the
        # runtime fails them) once the rest of their flush is written
        self._blamed: dict[int, str] = {}
        self.on_unstorable: Callable[[int, str], None] | None = None
        # when a flush last succeeded, on ``clock`` (None before the first): a health sign
        self.last_write: float | None = None

    # -- rows and transitions -----------------------------------------------------

    def create(self, *, name: str, kind: str, spec: str | None, actor: str, queue: bool,
               **values: Any) -> JobRow:
        """A new job in ``editing``, moved to ``queued`` when ``queue``."""
        now = self.clock()
        with self.lock:
            self._next_id += 1
            row = JobRow({**values, "id": self._next_id, "name": name, "kind": kind,
                          "spec": spec, "status": Status.EDITING.value, "transition_seq": 1,
                          "has_warning": False, "created_at": now, "updated_at": now,
                          "created_by": actor, "run_count": 0, "active_seconds": 0.0,
                          **dict.fromkeys((c for c in COUNTERS if c != "total"), 0)},
                         self.lock, new=True)
            self.rows[row.id] = row
            self._line_seq[row.id] = self._reject_seq[row.id] = 0
            self._transitions.append((row.id, 1, now, None, "editing", actor, "created"))
            if queue:
                self.transition(row.id, Status.QUEUED, actor=actor, reason="submitted")
        return row

    def row(self, job_id: int) -> JobRow:
        """The job's row: from memory, else loaded from the database."""
        with self.lock:
            row = self.rows.get(job_id)
            if row is None:
                row = self.rows[job_id] = JobRow(self.store.job(job_id), self.lock)
            return row

    def status(self, job_id: int) -> Status:
        with self.lock:
            row = self.rows.get(job_id)
            return Status(row.status if row is not None else self.store.status(job_id))

    def transition(self, job_id: int, new: Status, *, actor: str, reason: str | None = None,
                   expect: Status | None = None, **values: Any) -> Status:
        """Change a job's status (IllegalTransition if the state machine forbids it, or if
        it is no longer ``expect``) and queue its history row; return the old status."""
        with self.lock:
            row = self.row(job_id)
            old = Status(row.status)
            check_transition(job_id, old, new)
            if expect is not None and old is not expect:
                raise IllegalTransition(job_id, old.value, new.value)
            now = self.clock()
            reason = None if reason is None else text(reason)
            if new is Status.QUEUED:  # a retry keeps the error it follows until it runs
                values.setdefault("queued_at", row.queued_at or now)
                values.setdefault("error", None)
                values.update(finished_at=None)
            elif new is Status.RUNNING:
                values.update(started_at=row.started_at or now, heartbeat_at=now,
                              retry_at=None, error=None)
            if new in TERMINAL:
                values.update(finished_at=now, eta_at=None)
            seq = row.transition_seq + 1
            row.set(status=new.value, prev_status=old.value, transition_seq=seq,
                    updated_at=now, **values)
            self._transitions.append((job_id, seq, now, old.value, new.value, actor, reason))
        return old

    def try_transition(self, job_id: int, new: Status, *, actor: str,
                       reason: str | None = None, expect: Status | None = None,
                       **values: Any) -> bool:
        """``transition``, but False instead of an error when the job is gone or its
        status no longer allows it (a request or another end came first)."""
        try:
            self.transition(job_id, new, actor=actor, reason=reason, expect=expect, **values)
        except (IllegalTransition, JobNotFound) as error:
            log.debug("jobobs: %s", error)
            return False
        return True

    def restore(self, row: JobRow) -> dict[str, Any] | None:
        """Before a run after the first: the counters and progress of the last checkpoint
        back on the row, and the rejects recorded after it discarded (a journal line says
        so); return the checkpoint (None if none was saved)."""
        checkpoint = json.loads(row.checkpoint) if row.checkpoint else None
        if row.run_count <= 1:
            return checkpoint
        dropped = self.rewind(row.id, checkpoint["reject_seq"] if checkpoint else 0)
        counters = checkpoint["counters"] if checkpoint else {}
        current, total = checkpoint["progress"] if checkpoint else (None, None)
        row.set(**{name: counters.get(name) or 0 for name in COUNTERS if name != "total"},
                total=counters.get("total"), progress_current=current, progress_total=total,
                eta_at=None)
        saved_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row.checkpoint_at or 0))
        where = (f"the checkpoint of {saved_at} UTC" if checkpoint
                 else "the beginning (no checkpoint was saved)")
        note = f"; {dropped} rejects recorded after it were discarded" if dropped else ""
        self.line(row.id, "INFO", f"Resuming from {where}{note}")
        return checkpoint

    def settled(self, job_id: int) -> bool:
        """True when the job is not active and all its changes are committed."""
        with self._flush_lock, self.lock:
            row = self.rows.get(job_id)
            return row is None or (Status(row.status) not in ACTIVE and not row.dirty)

    def busy(self) -> bool:
        """True while any job this ledger holds is active or has unwritten changes."""
        with self._flush_lock, self.lock:
            return any(Status(r.status) in ACTIVE or r.dirty for r in self.rows.values())

    # -- journal, rejects, commands --------------------------------------------------

    def line(self, job_id: int, level: str, message: str, code: str | None = None,
             at: float | None = None) -> int:
        code, message = process(code, message)
        at = self.clock() if at is None else at
        with self.lock:
            seq = self._line_seq.get(job_id)
            if seq is None:
                seq = self.store.max_seq("journal", job_id)
            seq += 1
            self._line_seq[job_id] = seq
            self.last_line_at[job_id] = at
            # A plain tuple in JournalLine's order: a NamedTuple costs more than the append.
            self._lines.append((job_id, seq, at, level, code, message))
        return seq

    def reject(self, job_id: int, **fields: Any) -> int:
        at = self.clock()
        with self.lock:
            seq = self.reject_seq(job_id) + 1
            self._reject_seq[job_id] = seq
            self._rejects.append(Reject(job_id=job_id, seq=seq, rejected_at=at, **fields))
        return seq

    def reserve_rejects(self, job_id: int, count: int) -> int:
        """Number ``count`` rejects that the job writes itself (in bulk, in SQL); return the
        number before the first of them."""
        with self.lock:
            first = self.reject_seq(job_id)
            self._reject_seq[job_id] = first + count
            return first

    def reject_seq(self, job_id: int) -> int:
        with self.lock:
            seq = self._reject_seq.get(job_id)
            if seq is None:
                seq = self._reject_seq[job_id] = self.store.max_seq("rejects", job_id)
            return seq

    def add_rejects(self, job_id: int, rejects: list[Reject], last: int) -> None:
        """Rejects a job elsewhere (on a Dask worker) numbered itself, and its last
        reject number (past the ones it wrote straight into the table)."""
        with self.lock:
            self._rejects.extend(rejects)
            self._reject_seq[job_id] = last

    def rewind(self, job_id: int, keep: int) -> int:
        """Drop the rejects after number ``keep`` (recorded after the last checkpoint);
        return how many there were."""
        with self.lock:
            dropped = self.reject_seq(job_id) - keep
            self._rejects = [r for r in self._rejects if r.job_id != job_id or r.seq <= keep]
            self._rewinds.append((job_id, keep))
            self._reject_seq[job_id] = keep
        return max(dropped, 0)

    def handled(self, command_id: int, outcome: str, job_id: int | None = None) -> None:
        """Record a request's outcome (and, for a submission, the job it created); it is
        written with the job's own rows, so a submission is never carried out twice."""
        with self.lock:
            self._handled.append((command_id, outcome, self.clock(), job_id))

    def schedule(self, what: str, row: Any, lines: Sequence[tuple] = ()) -> None:
        """A schedule's row to write (``("put", row)`` or ``("drop", name)``) and its log
        lines. Made under the ledger's lock with the job a tick creates, they are written
        in the same transaction as that job (``jobobs.execution.scheduling``)."""
        with self.lock:
            self._schedules.append((what, row))
            self._schedule_lines.extend(lines)

    # -- writing -----------------------------------------------------------------------

    def flush(self, atomic: Callable[[Any], None] | None = None,
              prepare: Callable[[], None] | None = None,
              steps: Sequence[dict[str, Any]] = ()) -> None:
        """Write everything pending in one transaction (with ``atomic``, see Store.write);
        on failure keep it for the next try. ``prepare`` runs first under the flush lock:
        what it changes is written by this flush and no other (a checkpoint that must
        commit with its atomic step). ``steps`` run after ``atomic``, in its transaction."""
        if steps:
            atomic = _with_steps(atomic, steps)
        with self._flush_lock:
            if prepare is not None:
                prepare()
            batch, changed = self._take()
            try:
                self._write(batch, changed, atomic)
            except BaseException:
                self._put_back(batch, changed)
                raise
            self._release()
            self.last_write = self.clock()
            blamed, self._blamed = self._blamed, {}
        for job_id, reason in blamed.items():
            if self.on_unstorable is not None:
                self.on_unstorable(job_id, reason)

    def pending(self) -> dict[str, int]:
        """How many records wait for the next flush, by kind (counted, not copied)."""
        with self.lock:
            return {"jobs": sum(row.dirty for row in self.rows.values()),
                    "transitions": len(self._transitions), "lines": len(self._lines),
                    "rejects": len(self._rejects), "requests": len(self._handled),
                    "schedules": len(self._schedules) + len(self._schedule_lines)}

    def _write(self, batch: dict[str, list], changed: dict[int, tuple[bool, set[str]]],
               atomic: Callable[[Any], None] | None) -> None:
        """Write the batch; when the database refuses one of its values, write the rest
        without the rows to blame (see jobobs.db.sifting) and note whose they were. On a
        failure, ``batch`` and ``changed`` hold what is still to be written."""
        try:
            self.store.write(**batch, atomic=atomic)
            return
        except Exception as error:
            if not blames_values(error):
                raise
            verdict = sift(self.store.probe, batch)
            if verdict is None:
                if atomic is not None:
                    raise  # the atomic step's own failure: the job that asked is told
                parts = split(batch)
                for key, part in list(parts.items()):  # no part fails alone: write each
                    try:
                        self.store.write(**part)
                    except BaseException:
                        batch.update(merge(list(parts.values())))
                        raise
                    del parts[key]
                    changed.pop(key, None)  # written: not to be put back
                return
        batch.update(verdict.batch)  # what a failure from here would put back
        self.store.write(**batch, atomic=atomic)
        for job_id, reason in verdict.blamed.items():
            log.error("jobobs: job %s: %s; the job fails and the rest is written",
                      job_id, reason)
            self._blamed[job_id] = reason
        with self.lock:
            for job_id in verdict.refused:  # never stored: it does not exist
                log.error("jobobs: job %s could not be stored; its submission is refused",
                          job_id)
                self.rows.pop(job_id, None)
                self._blamed.pop(job_id, None)

    def _take(self) -> tuple[dict[str, list], dict[int, tuple[bool, set[str]]]]:
        with self.lock:
            new, updates = [], []
            now = self.clock()
            for row in self.rows.values():
                if row._changed - {"heartbeat_at", "updated_at"}:  # a change, not a beat
                    object.__setattr__(row, "updated_at", now)
                    row._changed.add("updated_at")
                if row._new:
                    new.append([getattr(row, c) for c in JOB_COLUMNS])
                elif row._changed:
                    updates.append({"id": row.id, **{c: getattr(row, c) for c in row._changed}})
            batch = dict(new_jobs=new, updates=updates, transitions=self._transitions,
                         lines=self._lines, rejects=self._rejects, handled=self._handled,
                         rewinds=self._rewinds, schedules=self._schedules,
                         schedule_lines=self._schedule_lines)
            changed = {job_id: (r._new, r._changed) for job_id, r in self.rows.items()
                       if r.dirty}
            for job_id in changed:
                self.rows[job_id]._new, self.rows[job_id]._changed = False, set()
            self._transitions, self._lines, self._rejects = [], [], []
            self._handled, self._rewinds = [], []
            self._schedules, self._schedule_lines = [], []
        return batch, changed

    def _put_back(self, batch: dict[str, list], changed: dict[int, tuple[bool, set[str]]]):
        with self.lock:
            for job_id, (was_new, columns) in changed.items():
                row = self.rows.get(job_id)
                if row is not None:
                    row._new = row._new or was_new
                    row._changed |= columns
            self._transitions[:0] = batch["transitions"]
            self._lines[:0] = batch["lines"]
            self._rejects[:0] = batch["rejects"]
            self._handled[:0] = batch["handled"]
            self._rewinds[:0] = batch["rewinds"]
            self._schedules[:0] = batch["schedules"]
            self._schedule_lines[:0] = batch["schedule_lines"]

    def _release(self) -> None:
        """Forget settled, written rows; the database has them."""
        with self.lock:
            pending = {x[0] for x in self._lines} | {x.job_id for x in self._rejects}
            for job_id in [j for j, r in self.rows.items()
                           if not r.dirty and Status(r.status) not in ACTIVE]:
                del self.rows[job_id]
                if job_id not in pending:
                    self._line_seq.pop(job_id, None)
                    self._reject_seq.pop(job_id, None)


def _with_steps(atomic: Callable[[Any], None] | None,
                steps: Sequence[dict[str, Any]]) -> Callable[[Any], None]:
    def run(con: Any) -> None:
        if atomic is not None:
            atomic(con)
        for step in steps:
            checkpoint_steps.run(con, step)
    return run
