"""Buffers for what running jobs report (journal lines, rejects, progress) and the
``logging`` handler that routes records logged inside a job to its journal.

The ``Recorder`` numbers lines and rejects per job as they arrive and writes them in
batches: the runtime flushes it every ``flush_interval`` and at every checkpoint.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from jobobs.records import JournalLine, Reject, level_name, process

if TYPE_CHECKING:
    from jobobs.context import JobContext
    from jobobs.store import Store

current_job: ContextVar[JobContext | None] = ContextVar("jobobs_current_job", default=None)


class Recorder:
    """Numbers and buffers journal lines and rejects; writes them with progress in batches."""

    def __init__(self, store: Store, clock: Callable[[], float]):
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._lines: list[JournalLine] = []
        self._rejects: list[Reject] = []
        self._dirty: dict[int, Callable[[], tuple]] = {}
        self._line_seq: dict[int, int] = {}
        self._reject_seq: dict[int, int] = {}

    def new_job(self, job_id: int) -> None:
        """Start numbering a job that has no lines yet, without reading the database."""
        with self._lock:
            self._line_seq[job_id] = 0
            self._reject_seq[job_id] = 0

    def forget(self, job_id: int) -> None:
        with self._lock:
            self._line_seq.pop(job_id, None)
            self._reject_seq.pop(job_id, None)

    def line(self, job_id: int, level: str, message: str, code: str | None = None) -> int:
        code, message = process(code, message)
        at = self.clock()
        with self._lock:
            seq = self._line_seq.get(job_id)
            if seq is None:
                seq = self.store.max_seq("journal", job_id)
            seq += 1
            self._line_seq[job_id] = seq
            self._lines.append(JournalLine(job_id, seq, at, level, code, message))
        return seq

    def reject(self, job_id: int, **fields: Any) -> int:
        at = self.clock()
        with self._lock:
            seq = self._reject_seq.get(job_id)
            if seq is None:
                seq = self.store.max_seq("rejects", job_id)
            seq += 1
            self._reject_seq[job_id] = seq
            self._rejects.append(Reject(job_id=job_id, seq=seq, at=at, **fields))
        return seq

    def reject_seq(self, job_id: int) -> int:
        with self._lock:
            seq = self._reject_seq.get(job_id)
        return self.store.max_seq("rejects", job_id) if seq is None else seq

    def rewind(self, job_id: int, reject_seq: int) -> None:
        with self._lock:
            self._reject_seq[job_id] = reject_seq

    def dirty(self, job_id: int, snapshot: Callable[[], tuple]) -> None:
        """Mark a job's counters as changed; ``snapshot`` returns its progress row."""
        self._dirty[job_id] = snapshot

    def flush(self, checkpoint: tuple[int, str, float] | None = None) -> None:
        """Write everything buffered (and a checkpoint) in one transaction.

        Flushes are serialised, so a checkpoint is never committed before the rejects
        numbered ahead of it. A failed write puts the batch back.
        """
        with self._flush_lock:
            with self._lock:
                lines, self._lines = self._lines, []
                rejects, self._rejects = self._rejects, []
                dirty, self._dirty = self._dirty, {}
            progress = [snapshot() for snapshot in dirty.values()]
            try:
                self.store.write(lines, rejects, progress, checkpoint, now=self.clock())
            except BaseException:
                with self._lock:
                    self._lines[:0] = lines
                    self._rejects[:0] = rejects
                    self._dirty = {**dirty, **self._dirty}
                raise


class JournalHandler(logging.Handler):
    """Routes records logged while a job runs (on its worker thread) to that job's journal.

    Records logged outside a job are left to the other handlers; when there are none they
    go to ``logging.lastResort`` as they would have without this handler.
    """

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current_job.get()
        if ctx is None:
            others = [h for h in logging.getLogger().handlers if h is not self]
            if not others and logging.lastResort and record.levelno >= logging.lastResort.level:
                logging.lastResort.handle(record)
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            ctx.log.write(level_name(record.levelno), message, getattr(record, "code", None))
        except Exception:
            self.handleError(record)


_handler_lock = threading.Lock()
_handler: JournalHandler | None = None
_handler_users = 0


def capture_logging(level: int | None = logging.INFO) -> None:
    """Install the journal handler on the root logger (once per process).

    When logging has not been configured (no root handlers), the root level is lowered to
    ``level`` so that a job's ``logger.info`` reaches its journal.
    """
    global _handler, _handler_users
    with _handler_lock:
        root = logging.getLogger()
        if _handler is None:
            if level is not None and not root.handlers and root.level > level:
                root.setLevel(level)
            _handler = JournalHandler()
            root.addHandler(_handler)
        _handler_users += 1


def release_logging() -> None:
    global _handler, _handler_users
    with _handler_lock:
        _handler_users -= 1
        if _handler_users <= 0 and _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler, _handler_users = None, 0
