"""Finding jobs left active by a process that is gone, and recording what became of them.

A job is orphaned when the runtime that owned it is not alive in this process and either
its process no longer runs on this host or its heartbeat is older than ``stale_after``.
Orphans that were being canceled become ``canceled`` (the person's request is honoured);
the others become ``shutdown``, which Start resumes from the last checkpoint.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from jobobs.errors import IllegalTransition
from jobobs.states import Status

if TYPE_CHECKING:
    from jobobs.ledger import Ledger


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_orphan(job: dict, *, live: set[str], host: str, stale_after: float, now: float) -> bool:
    if job["runtime_id"] in live:
        return False
    beat = job["heartbeat_at"]
    stale = beat is None or beat < now - stale_after
    if job["host"] == host and job["pid"] is not None:
        return job["pid"] == os.getpid() or not pid_alive(job["pid"]) or stale
    return stale


def recover(ledger: Ledger, *, live: set[str], host: str,
            stale_after: float) -> list[tuple[int, Status]]:
    """Move orphaned jobs to shutdown (or canceled); return (job id, new status) pairs."""
    recovered = []
    now = ledger.clock()
    for job in ledger.store.active_jobs():
        if not is_orphan(job, live=live, host=host, stale_after=stale_after, now=now):
            continue
        where = f"pid {job['pid']} on {job['host']}" if job["pid"] else "its process"
        if job["status"] == Status.CANCELING:
            new = Status.CANCELED
            reason = f"the process that ran it ({where}) is gone; the cancel is complete"
        else:
            new = Status.SHUTDOWN
            reason = (f"the process that ran it ({where}) stopped without a clean shutdown; "
                      "Start resumes it from its last checkpoint")
        try:
            ledger.transition(job["id"], new, actor="recovery", reason=reason,
                              expect=Status(job["status"]))
        except IllegalTransition:
            continue
        ledger.line(job["id"], "WARNING", f"Recovered: {reason}")
        recovered.append((job["id"], new))
    ledger.flush()
    return recovered
