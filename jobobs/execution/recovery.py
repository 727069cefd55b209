"""Jobs left active by a process that is gone, and what becomes of them.

DuckDB lets one process write a file and a process runs one runtime per file, so when a
runtime opens a file every job it finds queued, running, pausing or canceling was left by
a process that stopped without a clean shutdown. Those that were being canceled become
``canceled`` (the person's request is honoured); the others become ``shutdown``, which
Start resumes from the last checkpoint. Each gets a journal line naming the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobobs.model.states import Status

if TYPE_CHECKING:
    from jobobs.db.ledger import Ledger


def recover(ledger: Ledger) -> list[tuple[int, Status]]:
    """Move the jobs a dead process left active; return (job id, new status) pairs."""
    recovered = []
    for job in ledger.store.active_jobs():
        where = f"pid {job['pid']} on {job['host']}" if job["pid"] else "its process"
        if job["status"] == Status.CANCELING:
            new = Status.CANCELED
            reason = f"the process that ran it ({where}) is gone; the cancel is complete"
        else:
            new = Status.SHUTDOWN
            reason = (f"the process that ran it ({where}) stopped without a clean shutdown; "
                      "Start resumes it from its last checkpoint")
        ledger.transition(job["id"], new, actor="recovery", reason=reason)
        ledger.line(job["id"], "WARNING", f"Recovered: {reason}")
        recovered.append((job["id"], new))
    ledger.flush()
    return recovered
