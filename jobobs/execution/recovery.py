"""Jobs left active by a process that is gone, and what becomes of them.

DuckDB lets one process write a file and a process runs one runtime per file, so when a
runtime opens a file every job it finds queued, running, pausing or canceling was left by
a process that stopped without a clean shutdown. What their Dask workers reported to it is
applied first (it was acknowledged). Then each run is cut short (``Outcome.status``): those
being canceled become ``canceled`` (the person's request is honoured), the others
``shutdown``, which Start resumes from the last checkpoint. Each gets a journal line naming
the process. A job queued for a retry stays queued: the new runtime starts it on time.
"""

from __future__ import annotations

from jobobs.db.ledger import Ledger
from jobobs.execution import reports
from jobobs.model.states import Outcome, Status


def recover(ledger: Ledger) -> list[tuple[int, Status]]:
    """Settle the jobs a dead process left active; return (job id, new status) pairs."""
    if ledger.store.has_reports():
        reports.apply_left(ledger)
    recovered = []
    for job in ledger.store.active_jobs():
        if job["status"] == Status.QUEUED.value and job["retry_at"] is not None:
            ledger.line(job["id"], "INFO", "Recovered: the retry still waits for its time")
            continue  # the new runtime starts it when its time comes
        where = f"pid {job['pid']} on {job['host']}" if job["pid"] else "its process"
        outcome = Outcome.cut_short(f"the process that ran it ({where}) stopped without a "
                                    "clean shutdown")
        new = outcome.status(Status(job["status"]))
        reason = outcome.reason(new)
        ledger.transition(job["id"], new, actor="recovery", reason=reason)
        ledger.line(job["id"], "WARNING", f"Recovered: {reason}")
        recovered.append((job["id"], new))
    ledger.flush()
    return recovered
