"""Job statuses, their labels, and the one state machine every transition goes through.

Statuses are stored as their text value (never a DuckDB ENUM), so SQL reads
``status = 'running'`` and old databases keep working when a status is added.
"""

from __future__ import annotations

import enum

from jobobs.model.errors import IllegalTransition


class Status(enum.StrEnum):
    EDITING = "editing"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    CANCELING = "canceling"
    CANCELED = "canceled"
    FINISHED = "finished"
    FAILED = "failed"
    SHUTDOWN = "shutdown"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: dict[Status, str] = {
    Status.EDITING: "Being edited",
    Status.QUEUED: "Waiting for execution",
    Status.RUNNING: "Execution in progress",
    Status.PAUSING: "Pause in progress",
    Status.PAUSED: "Paused",
    Status.CANCELING: "Cancel in progress",
    Status.CANCELED: "Canceled",
    Status.FINISHED: "Finished",
    Status.FAILED: "Finished with errors",
    Status.SHUTDOWN: "Server shutdown in progress",
}

S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.EDITING: frozenset({S.QUEUED, S.CANCELED}),
    S.QUEUED: frozenset({S.RUNNING, S.PAUSED, S.CANCELED, S.FAILED, S.SHUTDOWN}),
    S.RUNNING: frozenset({S.PAUSING, S.CANCELING, S.FINISHED, S.FAILED, S.SHUTDOWN}),
    # A pausing job may be resumed before it reaches its safe point, canceled, or
    # end on its own before it gets there.
    S.PAUSING: frozenset({S.PAUSED, S.RUNNING, S.CANCELING, S.FINISHED, S.FAILED, S.SHUTDOWN}),
    S.PAUSED: frozenset({S.QUEUED, S.CANCELED}),
    # A cancel is honoured even across a crash (recovery records it), so canceling
    # never becomes shutdown.
    S.CANCELING: frozenset({S.CANCELED, S.FINISHED, S.FAILED}),
    S.SHUTDOWN: frozenset({S.QUEUED, S.CANCELED}),
    S.CANCELED: frozenset(),
    S.FINISHED: frozenset(),
    S.FAILED: frozenset(),
}
del S

TERMINAL: frozenset[Status] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Statuses in which a runtime owns the job: a process that dies leaves them behind.
ACTIVE: frozenset[Status] = frozenset(
    {Status.QUEUED, Status.RUNNING, Status.PAUSING, Status.CANCELING}
)
# Statuses in which the job's code is executing on a worker.
EXECUTING: frozenset[Status] = frozenset({Status.RUNNING, Status.PAUSING, Status.CANCELING})
# Statuses that Start / Resume continue from.
RESUMABLE: frozenset[Status] = frozenset({Status.EDITING, Status.PAUSED, Status.SHUTDOWN})


def check_transition(job_id: int | None, current: Status | str, new: Status | str) -> Status:
    """Return ``new`` as a Status if ``current -> new`` is legal, else raise IllegalTransition."""
    current, new = Status(current), Status(new)
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(job_id, current.value, new.value)
    return new
