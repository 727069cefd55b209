"""Control requests: what each request does to a job in each status.

Start, pause, resume, cancel and retry are requests (rq's ``command.py`` is the model): any
client records one in the ``job_commands`` table and the runtime that owns the job carries
it out, recording the transition; a running job stops at its next safe point. ``EFFECTS``
is the one table of what a request leads to; a status missing from it refuses the request.
"""

from __future__ import annotations

import getpass
import os
from typing import NamedTuple

from jobobs.model.errors import IllegalRequest
from jobobs.model.states import EXECUTING, Status


class Effect(NamedTuple):
    to: Status
    reason: str
    journal: str | None  # a journal line, formatted with ``by``
    changes: dict | None = None  # other columns of the job's row the request sets


S = Status
_RESUME = {
    S.EDITING: Effect(S.QUEUED, "start requested", None),
    S.PAUSED: Effect(S.QUEUED, "resume requested", None),
    S.SHUTDOWN: Effect(S.QUEUED, "resume requested", None),
    S.PAUSING: Effect(S.RUNNING, "resumed before it reached a safe point",
                    "Pause withdrawn by {by}"),
}
_CANCELED = Effect(S.CANCELED, "canceled", "Canceled by {by}")
_CANCELING = Effect(S.CANCELING, "cancel requested",
                  "Cancel requested by {by}; the job stops at its next checkpoint")
EFFECTS: dict[str, dict[Status, Effect]] = {
    "start": _RESUME,
    "resume": _RESUME,
    "pause": {
        S.QUEUED: Effect(S.PAUSED, "paused before it started", "Paused by {by} before it started"),
        S.RUNNING: Effect(S.PAUSING, "pause requested",
                        "Pause requested by {by}; the job stops at its next checkpoint"),
    },
    "cancel": {
        S.EDITING: _CANCELED, S.QUEUED: _CANCELED, S.PAUSED: _CANCELED, S.SHUTDOWN: _CANCELED,
        S.RUNNING: _CANCELING, S.PAUSING: _CANCELING,
    },
    # a failed job runs again from its last checkpoint, with its automatic retries anew
    "retry": {
        S.FAILED: Effect(S.QUEUED, "retry requested", "Retry requested by {by}",
                         {"retried": 0, "retry_at": None}),
    },
}
del S

REQUESTS = tuple(EFFECTS)
ACCEPTS: dict[str, frozenset[Status]] = {r: frozenset(effects) for r, effects in EFFECTS.items()}


def check_request(job_id: int, request: str, status: Status | str) -> None:
    """Raise IllegalRequest unless a job in ``status`` accepts ``request``."""
    if request not in EFFECTS:
        raise ValueError(f"unknown request {request!r}; use one of {', '.join(REQUESTS)}")
    if Status(status) not in EFFECTS[request]:
        raise IllegalRequest(job_id, request, Status(status).value)


def current_user() -> str:
    """Who is asking, when the caller does not say: the login or user name."""
    try:
        return os.getlogin()
    except OSError:
        return getpass.getuser()


def effect(request: str, status: Status, executing_here: bool) -> Effect | None:
    """What ``request`` does now, or None. A job that executes is acted on only by the
    runtime running it (``executing_here``)."""
    found = EFFECTS.get(request, {}).get(status)
    if found is None or (status in EXECUTING and not executing_here):
        return None
    return found
