"""A retention: the history older than an age purged on a thread of its own, beside the
runtime's writes.

A purge is ``jobobs purge``'s deletes (``store.purge_statements``), one statement at a time
(each its own transaction, and repeatable) on a cursor of its own, outside the store's
lock: a purge of millions of rows does not hold up the journal lines and checkpoints of
the jobs that run meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from jobobs.db.store import Store, purge_statements, ts
from jobobs.execution.loop import Repeated
from jobobs.model.errors import one_line

log = logging.getLogger(__name__)
PURGE_EVERY = 3600.0  # seconds between the purges of a retention
PURGED = {"jobs": "jobs", "journal": "journal lines", "rejects": "rejects",
          "transitions": "transitions", "commands": "requests",
          "schedule_log": "schedule log lines", "notifications": "notifications",
          "alerts": "alerts"}  # as a purge's line says


def span(seconds: float) -> str:
    """A length of time as people say it: 30 days, 12 hours, 90 s."""
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds:g} s"


class Retention:
    """Purges the history older than ``age`` on a thread of its own: at once, then every
    ``every`` seconds. Each purge is ``jobobs purge``'s deletes, one statement at a time
    (each its own transaction, and repeatable) on a cursor of its own, outside the store's
    lock, so the runtime's writes go on meanwhile. What it deleted is logged and echoed;
    a purge that fails is logged and the next one tries again."""

    def __init__(self, store: Store, age: timedelta, *, every: float = PURGE_EVERY,
                 clock: Callable[[], float] = time.time,
                 echo: Callable[[str], None] | None = None):
        if age <= timedelta(0) or every <= 0:
            raise ValueError("a retention and its interval must be longer than 0")
        self.store, self.age, self.every, self.clock, self.echo = store, age, every, clock, echo
        self._stop = threading.Event()
        self._cursor: Any = None
        self._thread = threading.Thread(target=self._loop, name="jobobs-retention",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Purge no more; a purge under way is interrupted (what it deleted stays deleted)."""
        self._stop.set()
        cursor = self._cursor
        if cursor is not None:
            with contextlib.suppress(Exception):  # it may have ended and closed meanwhile
                cursor.interrupt()
        self._thread.join(timeout)

    def purge(self) -> dict[str, int]:
        """Delete what ended before now minus the retention; return the counts."""
        cutoff = ts(self.clock() - self.age.total_seconds())
        self._cursor = cursor = self.store.con.cursor()
        try:
            counts = {}
            for what, sql, params in purge_statements(cutoff):
                if self._stop.is_set():
                    break
                counts[what] = cursor.execute(sql, params).fetchone()[0]
        finally:
            self._cursor = None
            cursor.close()
        said = (f"jobobs: purged what ended before {cutoff:%Y-%m-%d %H:%M:%S} UTC (the "
                f"retention is {span(self.age.total_seconds())}): " + ", ".join(
                    f"{counts[what]} {name}" for what, name in PURGED.items() if what in counts))
        log.info(said)
        if any(counts.values()) and self.echo is not None:
            self.echo(said)
        return counts

    def _loop(self) -> None:
        trouble = Repeated(log, "the retention's purge failed; the next one tries again")
        while not self._stop.is_set():
            try:
                self.purge()
            except Exception as error:
                if self._stop.is_set():  # interrupted as the server stops
                    return
                trouble.failed(error)
                if self.echo is not None:
                    self.echo(f"jobobs: the retention's purge failed: {one_line(error)}; "
                              f"the next one, in {span(self.every)}, tries again")
            else:
                trouble.recovered()
            self._stop.wait(self.every)
