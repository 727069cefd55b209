"""Where jobs run: the ``Executor`` interface (Dagster's ``RunLauncher`` is the model), and the
executor that runs them on threads of the runtime's process.

The runtime keeps the queue and ``capacity()`` slot threads. A slot takes a queued job,
claims it (``running``, its counters and rejects rewound to its last checkpoint) and hands
the ``Run`` to ``launch``, which returns once the run has ended, having ended it with the
runtime's public callback ``Runtime.end_run(run, outcome)``. There are two executors:

- ``ThreadExecutor`` (here): the job runs on the slot's own thread;
- ``jobobs.dask.executor.DaskExecutor``: the job runs on a Dask worker, and the slot
  follows it, applying what the worker reports.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import TYPE_CHECKING, Protocol

from jobobs.db.ledger import Ledger
from jobobs.execution import recovery
from jobobs.execution.runs import Run, run_job
from jobobs.execution.sinks import LedgerSink
from jobobs.model.states import Status

if TYPE_CHECKING:
    from jobobs.execution.runtime import Runtime

HOST = socket.gethostname()


class Executor(Protocol):
    def capacity(self) -> int:
        """How many jobs it runs at once: the runtime's number of slots."""

    def recover(self, ledger: Ledger) -> list[tuple[int, Status]]:
        """Settle the runs a process that is gone left active (at the runtime's start)."""

    def launch(self, runtime: Runtime, run: Run) -> None:
        """Run the job to its end, then call ``runtime.end_run(run, outcome)``."""

    def close(self) -> None:
        """Let go of what it holds (after the runtime's jobs have stopped)."""


class ThreadExecutor:
    """Runs each job on the runtime's slot thread that claimed it."""

    def __init__(self, workers: int = 4):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers

    def capacity(self) -> int:
        return self.workers

    def recover(self, ledger: Ledger) -> list[tuple[int, Status]]:
        return recovery.recover(ledger)

    def launch(self, runtime: Runtime, run: Run) -> None:
        ledger = runtime.ledger
        ledger.line(run.job_id, "INFO", f"Job started (run {run.number}) on {HOST} pid "
                    f"{os.getpid()} {threading.current_thread().name}")
        outcome = run_job(run.row.spec, run.row, LedgerSink(ledger, run.job_id),
                          run.interrupts, clock=runtime.clock, resume_state=run.resume_state)
        runtime.end_run(run, outcome)

    def close(self) -> None:
        pass
