"""Control requests: what each command does to a job in each status.

Pause, resume, cancel and start are requests (rq's ``command.py`` is the model): any
client records one in ``job_commands`` and the runtime that owns the job carries it out,
recording the transition; a running job stops at its next safe point. ``PLANS`` is the
one table of what a request leads to; a status missing from it refuses the request.
"""

from __future__ import annotations

import getpass
import os
from typing import NamedTuple

from jobobs.model.errors import IllegalRequest
from jobobs.model.states import EXECUTING, Status


class Plan(NamedTuple):
    to: Status
    reason: str
    journal: str | None  # a journal line, formatted with ``by``


S = Status
_RESUME = {
    S.EDITING: Plan(S.QUEUED, "start requested", None),
    S.PAUSED: Plan(S.QUEUED, "resume requested", None),
    S.SHUTDOWN: Plan(S.QUEUED, "resume requested", None),
    S.PAUSING: Plan(S.RUNNING, "resumed before it reached a safe point",
                    "Pause withdrawn by {by}"),
}
_CANCELED = Plan(S.CANCELED, "canceled", "Canceled by {by}")
_CANCELING = Plan(S.CANCELING, "cancel requested",
                  "Cancel requested by {by}; the job stops at its next checkpoint")
PLANS: dict[str, dict[Status, Plan]] = {
    "start": _RESUME,
    "resume": _RESUME,
    "pause": {
        S.QUEUED: Plan(S.PAUSED, "paused before it started", "Paused by {by} before it started"),
        S.RUNNING: Plan(S.PAUSING, "pause requested",
                        "Pause requested by {by}; the job stops at its next checkpoint"),
    },
    "cancel": {
        S.EDITING: _CANCELED, S.QUEUED: _CANCELED, S.PAUSED: _CANCELED, S.SHUTDOWN: _CANCELED,
        S.RUNNING: _CANCELING, S.PAUSING: _CANCELING,
    },
}
del S

COMMANDS = tuple(PLANS)
ACCEPTS: dict[str, frozenset[Status]] = {c: frozenset(plans) for c, plans in PLANS.items()}


def check_request(job_id: int, command: str, status: Status | str) -> None:
    """Raise IllegalRequest unless a job in ``status`` accepts ``command``."""
    if command not in PLANS:
        raise ValueError(f"unknown command {command!r}; use one of {', '.join(COMMANDS)}")
    if Status(status) not in PLANS[command]:
        raise IllegalRequest(job_id, command, Status(status).value)


def current_user() -> str:
    """Who is asking, when the caller does not say: the login or user name."""
    try:
        return os.getlogin()
    except OSError:
        return getpass.getuser()


def plan(command: str, status: Status, executing_here: bool) -> Plan | None:
    """What ``command`` does now, or None. A job that executes is acted on only by the
    runtime running it (``executing_here``)."""
    step = PLANS.get(command, {}).get(status)
    if step is None or (status in EXECUTING and not executing_here):
        return None
    return step
