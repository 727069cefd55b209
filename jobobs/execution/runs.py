"""One run of a job: what the runtime knows of it while it runs (``Run``), and the one body
that runs a job function wherever it runs (``run_job``): on a thread of the runtime's
process or on a Dask worker.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from jobobs.db.ledger import JobRow
from jobobs.execution.context import Interrupts, JobContext
from jobobs.execution.logbridge import running
from jobobs.execution.sinks import JobSink
from jobobs.model.definition import JobFunction, resolve
from jobobs.model.errors import JobInterrupt
from jobobs.model.states import Ending, Outcome


class Run:
    """A job from the moment one of the runtime's slots claims it until it ends.

    ``interrupts`` carries the pause, cancel and shutdown requests to the job (on a Dask
    worker, the worker's side of the run follows them). ``started`` (monotonic) is when the
    stall watch starts counting: at once here, when a worker claims it on Dask.
    """

    def __init__(self, row: JobRow, began: float, thread: threading.Thread | None = None):
        self.job_id = row.id
        self.row = row
        self.number = row.run_count
        self.resume_state: Any = None  # what the last checkpoint saved, once restored
        self.interrupts = Interrupts()
        self.began = began  # the runtime's clock, for the job's active time
        self.thread = thread  # the slot that runs or follows it
        self.started = time.monotonic()
        self.remote = False  # it runs elsewhere, and reports beat for it
        self.abandoned = False  # failed as hung by the stall watch; its thread let go
        self.ended = False  # its end is recorded: what its code does after is not

    def __repr__(self) -> str:
        return f"<Run {self.number} of job {self.job_id}>"


def run_job(spec: str | None, row: JobRow, sink: JobSink, interrupts: Interrupts, *,
            clock: Callable[[], float], resume_state: Any = None,
            function: JobFunction | None = None) -> Outcome:
    """Run the job function ``spec`` names (or ``function``, when the caller holds it: a
    test's) with a context on ``sink``; return how it ended.

    Every exception is an outcome: a spec or function that cannot be found fails the run,
    a request honoured at a safe point stops it, anything the function raises fails it.
    What the function and the threads it starts log goes to its journal.
    """
    try:
        job = json.loads(spec or "{}")
        definition = function or resolve(job.get("function", ""))
        ctx = JobContext(row, sink=sink, interrupts=interrupts, clock=clock,
                         resume_state=resume_state, max_rejects=job.get("max_rejects"),
                         checkpoint_interval=job.get("checkpoint_interval", 0.0))
    except Exception as error:
        return Outcome.failed(error)
    try:
        with running(ctx, definition.fn.__module__):
            definition.fn(ctx, *job.get("args", []), **job.get("kwargs", {}))
    except JobInterrupt:
        return Outcome(Ending.STOPPED)
    except BaseException as error:  # KeyboardInterrupt in a job fails the job, not us
        return Outcome.failed(error)
    return Outcome(Ending.FINISHED)
