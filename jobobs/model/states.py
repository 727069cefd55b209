"""Job statuses, their labels, the one state machine every transition goes through, and how
a run's end becomes a status (``Outcome``).

Statuses are stored as their text value (never a DuckDB ENUM), so SQL reads
``status = 'running'`` and old databases keep working when a status is added.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass
from typing import Any

from jobobs.model.errors import IllegalTransition, JobobsError, TooManyRejects


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
    Status.EDITING: "Editing in progress",
    Status.QUEUED: "Waiting for execution",
    Status.RUNNING: "Execution in progress",
    Status.PAUSING: "Pause in progress",
    Status.PAUSED: "Paused",
    Status.CANCELING: "Cancellation in progress",
    Status.CANCELED: "Canceled",
    Status.FINISHED: "Finished",
    Status.FAILED: "Finished with error",
    Status.SHUTDOWN: "Server shutdown in progress",
}

S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.EDITING: frozenset({S.QUEUED, S.CANCELED}),
    S.QUEUED: frozenset({S.RUNNING, S.PAUSED, S.CANCELED, S.FAILED, S.SHUTDOWN}),
    # a run that fails with retries left is queued again, for its retry (``retry_at``)
    S.RUNNING: frozenset({S.PAUSING, S.CANCELING, S.FINISHED, S.FAILED, S.SHUTDOWN,
                          S.QUEUED}),
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
    # a failed job ends there, unless someone retries it (from its last checkpoint)
    S.FAILED: frozenset({S.QUEUED}),
}
del S

# Statuses a job ends in: it runs again only if someone asks (a retry of a failed job).
TERMINAL: frozenset[Status] = frozenset({Status.CANCELED, Status.FINISHED, Status.FAILED})
# Statuses in which a runtime owns the job: a process that dies leaves them behind.
ACTIVE: frozenset[Status] = frozenset(
    {Status.QUEUED, Status.RUNNING, Status.PAUSING, Status.CANCELING}
)
# Statuses in which the job's code is executing on a worker.
EXECUTING: frozenset[Status] = frozenset({Status.RUNNING, Status.PAUSING, Status.CANCELING})


def check_transition(job_id: int | None, current: Status | str, new: Status | str) -> Status:
    """Return ``new`` as a Status if ``current -> new`` is legal, else raise IllegalTransition."""
    current, new = Status(current), Status(new)
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(job_id, current.value, new.value)
    return new


# -- how a run ends ----------------------------------------------------------------------


class Ending(enum.StrEnum):
    FINISHED = "finished"  # the job's function returned
    FAILED = "failed"  # it raised, or it could not start
    STOPPED = "stopped"  # it stopped at a safe point, honouring a request
    CUT_SHORT = "cut short"  # it could not end itself: its process or worker died, or it
    # did not reach a safe point before the runtime stopped


STOP_REASONS = {
    Status.PAUSED: "paused at a checkpoint",
    Status.CANCELED: "canceled at a checkpoint",
    Status.SHUTDOWN: "the runtime stopped; the job stopped at a checkpoint and Start resumes "
                     "it from there",
}


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as whatever ran it tells: ``status`` turns it into the job's status,
    given the status the job is in at that moment (a pause or cancel may be under way).

    ``error`` is the one line stored with a failed job and ``detail`` its journal text (a
    traceback, or the wording of an error jobobs raised); ``what`` says what cut a run
    short; ``because`` is a failure's transition reason when it is not the error ("hung");
    ``kinds`` names the failure's exception class and its bases, space-separated (what a
    retry policy's ``on`` matches). An Outcome is plain data: a Dask worker sends it to the
    server as a dict.
    """

    ending: Ending
    error: str | None = None
    detail: str | None = None
    what: str | None = None
    because: str | None = None  # a failure's transition reason, when not its error
    kinds: str | None = None  # the exception's classes, most derived first

    @classmethod
    def failed(cls, error: BaseException) -> Outcome:
        summary = getattr(error, "summary", None) or f"{type(error).__name__}: {_text(error)}"
        if isinstance(error, TooManyRejects):
            detail = (f"Too many rejects: {error.rejected} (the limit is {error.limit}); "
                      "the job stops")
        elif isinstance(error, JobobsError):  # an error we worded: one clear line
            detail = str(error)
        else:
            detail = "".join(traceback.format_exception(type(error), error,
                                                        error.__traceback__)).rstrip()
        kinds = " ".join(c.__name__ for c in type(error).__mro__
                         if c not in (BaseException, object))
        return cls(Ending.FAILED, error=summary, detail=detail, kinds=kinds)

    @classmethod
    def cut_short(cls, what: str) -> Outcome:
        return cls(Ending.CUT_SHORT, what=what)

    def status(self, current: Status) -> Status:
        """The status the run ends in. A run that stopped at a safe point is paused or
        canceled as asked, else (the runtime stopped) shut down; a run cut short is canceled
        if a cancel was under way, else shut down, which Start resumes from the last
        checkpoint."""
        if self.ending is Ending.STOPPED:
            return {Status.PAUSING: Status.PAUSED,
                    Status.CANCELING: Status.CANCELED}.get(current, Status.SHUTDOWN)
        if self.ending is Ending.CUT_SHORT:
            return Status.CANCELED if current is Status.CANCELING else Status.SHUTDOWN
        return Status(self.ending.value)

    def reason(self, status: Status) -> str | None:
        """The transition's reason once the run ends in ``status``."""
        if self.ending is Ending.STOPPED:
            return STOP_REASONS[status]
        if self.ending is Ending.CUT_SHORT:
            then = ("the cancel is complete" if status is Status.CANCELED
                    else "Start resumes it from its last checkpoint")
            return f"{self.what}; {then}"
        return self.because or self.error

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        """An outcome a worker sent (anything else in it is ignored)."""
        text = {k: None if data.get(k) is None else str(data[k])
                for k in ("error", "detail", "what", "because", "kinds")}
        return cls(Ending(data["ending"]), **text)


def _text(error: BaseException) -> str:
    """An exception's text, even when its ``__str__`` fails."""
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__} whose text cannot be shown>"
