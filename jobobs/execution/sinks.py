"""Where a running job's reports go: the ``JobSink`` interface (huey's ``BaseStorage`` is the
model), and the sink of a job that runs in the runtime's own process.

A ``JobContext`` writes every journal line, reject, counter and checkpoint of one run to
its sink and knows nothing else about where they end up:

- ``LedgerSink`` (here): the runtime's ledger, which writes them to the job database in
  batches (``jobobs.db.ledger``);
- ``jobobs.dask.worker.Reporter``: on a Dask worker, batches sent to the server's
  ``job_reports`` table through Quack, which the server applies to its ledger;
- ``jobobs.testing.Recorder``: in memory, to test a job function without a database.

Counters and progress are not sent through the sink: the context sets them on the job's
row (``JobRow.set``), which the sink's ``flush`` writes or sends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import duckdb

from jobobs.db.ledger import Ledger
from jobobs.db.sql import ident

Atomic = Callable[[duckdb.DuckDBPyConnection], None]


class JobSink(Protocol):
    """What one run of a job writes to."""

    remote: bool  # True on a Dask worker: the job database is the server's, through Quack
    lock: threading.RLock  # guards the job's row; held while a counter is read and set

    def line(self, level: str, message: str, code: str | None = None) -> int:
        """A journal line; returns its number."""

    def reject(self, **fields: Any) -> int:
        """A rejected record (``jobobs.model.rows.Reject``'s fields after ``rejected_at``);
        returns its number."""

    def reserve_rejects(self, count: int) -> int:
        """Number ``count`` rejects the job writes itself in SQL; return the number before
        the first of them."""

    def reject_seq(self) -> int:
        """The last reject number given out."""

    def flush(self, atomic: Atomic | None = None, prepare: Callable[[], None] | None = None,
              steps: Sequence[dict[str, Any]] = ()) -> None:
        """Write (or send) everything reported so far, with the row's changes; ``prepare``
        runs first, ``atomic`` and ``steps`` commit with it (see ``JobContext.checkpoint``)."""

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of the job's own to the job database."""

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The connection a checkpoint's atomic step runs on."""

    def on_server(self, query: str) -> str:
        """``query`` as a table expression that runs whole where the job database is."""

    def handoff(self, start: int) -> str | None:
        """A file for rows from ``start`` on that the server reads, if there is one."""

    def staging(self, name: str) -> str:
        """The qualified name of the job's staging table ``name``."""


class Numbered:
    """The reject numbering of a sink away from the ledger (a worker's, a test's): numbers
    given out one at a time, or reserved many at once, after ``last``."""

    lock: threading.RLock

    def __init__(self, last: int):
        self._reject_seq = last

    def reject_number(self) -> int:
        """The next number (call with ``lock`` held, as the reject is kept)."""
        self._reject_seq += 1
        return self._reject_seq

    def reserve_rejects(self, count: int) -> int:
        with self.lock:
            first = self._reject_seq
            self._reject_seq += count
            return first

    def reject_seq(self) -> int:
        with self.lock:
            return self._reject_seq


class LedgerSink:
    """The sink of a job in the runtime's process: the runtime's ledger and job database."""

    remote = False

    def __init__(self, ledger: Ledger, job_id: int):
        self.ledger, self.job_id = ledger, job_id
        self.lock = ledger.lock

    def line(self, level: str, message: str, code: str | None = None) -> int:
        return self.ledger.line(self.job_id, level, message, code)

    def reject(self, **fields: Any) -> int:
        return self.ledger.reject(self.job_id, **fields)

    def reserve_rejects(self, count: int) -> int:
        return self.ledger.reserve_rejects(self.job_id, count)

    def reject_seq(self) -> int:
        return self.ledger.reject_seq(self.job_id)

    def flush(self, atomic: Atomic | None = None, prepare: Callable[[], None] | None = None,
              steps: Sequence[dict[str, Any]] = ()) -> None:
        self.ledger.flush(atomic=atomic, prepare=prepare, steps=steps)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.ledger.store.con.cursor()

    def connection(self) -> duckdb.DuckDBPyConnection:
        return self.ledger.store.con

    def on_server(self, query: str) -> str:
        return f"({query})"  # the job runs where the database is

    def handoff(self, start: int) -> str | None:
        return None

    def staging(self, name: str) -> str:
        return ident(name)  # in the job database itself
