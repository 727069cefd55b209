"""What a job running elsewhere reported, applied to the runtime's ledger.

A job on a Dask worker sends what it reports (journal lines, rejects, counters, its
checkpoint and the steps to commit with it) in numbered batches, one ``job_reports`` row
each (see ``jobobs.dask.worker.Reporter``). ``Reports.apply`` applies a run's new batches
to the ledger in one transaction with the steps they carry and the deletion of the batches,
so each is applied once and rows commit with the checkpoint that counts them. ``apply_left``
applies, at start, what workers reported to a process that is gone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

from jobobs.db import steps as checkpoint_steps
from jobobs.db.ledger import Ledger
from jobobs.model.errors import JobobsError
from jobobs.model.rows import COUNTERS, LEVELS, Reject

log = logging.getLogger(__name__)
# what a report may set on the job's row (the server ignores anything else)
REPORTED = (*COUNTERS, "progress_current", "progress_total", "eta_at", "has_warning",
            "checkpoint", "checkpoint_at")


class Reports:
    """A run's batches in ``job_reports``, applied to the ledger, each batch once."""

    def __init__(self, ledger: Ledger, job_id: int, run: int, scratch: str | None = None):
        self.ledger, self.job_id, self.run = ledger, job_id, run
        self.scratch = scratch
        self.claim: dict[str, Any] | None = None
        self.applied = 0  # the last batch applied
        self.alive_at = time.monotonic()  # the last batch that said more than "alive"

    def apply(self) -> dict[str, Any] | None:
        """Apply the batches sent so far, with their steps, in one transaction; return
        the run's end when it came. A step that fails (rows that do not fit the target)
        raises; the batches are then dropped and the job must fail."""
        ledger, job_id = self.ledger, self.job_id
        rows = ledger.store.reader().execute(
            "SELECT run, batch, body FROM job_reports WHERE job_id = ? ORDER BY run, batch",
            [job_id]).fetchall()
        if not rows:
            return None
        batches = {batch: body for run, batch, body in rows
                   if run == self.run and batch > self.applied}  # a retried write: once
        bodies = [json.loads(batches[batch]) for batch in sorted(batches)]
        last = max(batches, default=self.applied)
        steps: list[dict[str, Any]] = []
        row = ledger.row(job_id)
        previous = row.checkpoint, row.checkpoint_at

        def prepare() -> None:
            for body in bodies:
                steps.extend(self._apply(body))

        def commit(con: Any) -> None:
            for step in steps:
                checkpoint_steps.run(con, step)
            con.execute("DELETE FROM job_reports WHERE job_id = ? AND (run <> ? OR batch <= ?)",
                        [job_id, self.run, last])

        try:
            ledger.flush(atomic=commit, prepare=prepare)
        except Exception:
            row.set(checkpoint=previous[0], checkpoint_at=previous[1])
            with ledger.store.transaction() as con:
                con.execute("DELETE FROM job_reports WHERE job_id = ?", [job_id])
            raise
        self.applied = last
        for step in steps:  # the rows are in: a file that brought them has done its work
            if step.get("parquet") and os.path.exists(step["parquet"]):
                os.remove(step["parquet"])
        return next((body["end"] for body in bodies if "end" in body), None)

    def _apply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        ledger, job_id = self.ledger, self.job_id
        now = ledger.clock()
        steps = [self._checked(step) for step in body.get("steps", [])]
        with ledger.lock:
            row = ledger.row(job_id)
            claim = body.get("claim")
            if claim:
                self.claim = claim
                row.set(host=claim["host"], pid=claim["pid"], worker=claim["worker"] or "dask")
                ledger.line(job_id, "INFO", f"Job started (run {self.run}) on {claim['host']} "
                            f"pid {claim['pid']}, Dask worker {claim['worker']}",
                            at=float(claim.get("at") or now))
            for at, level, code, message in body.get("lines", []):
                ledger.line(job_id, level if level in LEVELS else "INFO", str(message), code,
                            at=float(at))
            values = {k: v for k, v in body.get("row", {}).items() if k in REPORTED}
            rejects = [Reject(job_id, *fields[1:]) for fields in body.get("rejects", [])]
            ledger.add_rejects(job_id, rejects, int(body.get("reject_seq", 0)))
            row.set(heartbeat_at=now, **values)
            if body.get("lines") or values or rejects or steps or claim:
                ledger.last_line_at[job_id] = now  # a sign of life for the stall watch
                self.alive_at = time.monotonic()
        return steps

    def _checked(self, step: dict[str, Any]) -> dict[str, Any]:
        """A step as the server runs it: a Parquet file only from the job's scratch."""
        path = step.get("parquet")
        if path is not None:
            folder, name = os.path.split(str(path))
            if (not re.fullmatch(rf"job-{self.job_id}-rows-\d+\.parquet", name)
                    or (self.scratch is not None and folder != self.scratch)):
                raise JobobsError(f"{path} is not a file of job {self.job_id}'s scratch")
        return step


def apply_left(ledger: Ledger) -> None:
    """At start: apply what workers reported for the jobs the last process left running
    (it was acknowledged), and drop the rest."""
    store = ledger.store
    pending = store.reader().execute(
        "SELECT DISTINCT r.job_id, j.run_count FROM job_reports r JOIN jobs j "
        "ON j.id = r.job_id WHERE j.status IN ('running', 'pausing', 'canceling')").fetchall()
    for job_id, run in pending:
        try:
            Reports(ledger, job_id, run).apply()
        except Exception as error:
            log.warning("jobobs: job %s: what its worker reported could not be applied: %s",
                        job_id, error)
    with store.transaction() as con:
        con.execute("DELETE FROM job_reports")
