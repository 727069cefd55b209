"""How statuses, durations, times and numbers read for a person, in the dashboard and in a
terminal alike: "1 h 02 min", "4.3 s", "3 min ago", "33.4%", "20,200"; a missing value
(None, NaN, NaT) reads as nothing, never as "nan"."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from jobobs.model.states import Status

# One icon and one color per status, so all ten are told apart at a glance.
LOOK: dict[Status, tuple[str, str]] = {
    Status.EDITING: ("✎", "#6b7280"),
    Status.QUEUED: ("◷", "#2563eb"),
    Status.RUNNING: ("▶", "#0891b2"),
    Status.PAUSING: ("◐", "#d97706"),
    Status.PAUSED: ("❚❚", "#b45309"),
    Status.CANCELING: ("◌", "#be185d"),
    Status.CANCELED: ("⊘", "#9d174d"),
    Status.FINISHED: ("✔", "#15803d"),
    Status.FAILED: ("✖", "#dc2626"),
    Status.SHUTDOWN: ("■", "#7c3aed"),
}


def missing(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA: a value that is not there."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT are not equal to themselves
    except (TypeError, ValueError):  # pandas' NA refuses to be a bool
        return True


def duration(seconds: Any) -> str:
    """"0.4 s", "4.3 s", "2 min 10 s", "1 h 02 min", "3 d 04 h" ("" when missing)."""
    if missing(seconds):
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def as_utc(value: Any) -> datetime | None:
    """A timestamp (datetime, pandas Timestamp, ISO text) as an aware UTC datetime; a naive
    one is taken as UTC, as jobobs writes them. None when missing."""
    if missing(value):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def moment(value: Any, *, local: bool = True) -> str:
    """A timestamp to the second, in this machine's local time by default
    ("2026-12-02 04:50:41"); "" when missing."""
    at = as_utc(value)
    if at is None:
        return ""
    return (at.astimezone() if local else at).strftime("%Y-%m-%d %H:%M:%S")


def ago(value: Any, now: datetime | None = None) -> str:
    """How long ago a timestamp was: "just now", "42 s ago", "3 min ago", "2 h ago",
    "5 d ago"; a future one reads "in 3 min". "" when missing."""
    at = as_utc(value)
    if at is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return "just now"  # unreachable: seconds >= 5 matched "s"


def percent(fraction: Any, digits: int = 1) -> str:
    """A fraction (0.334) as "33.4%"; "" when missing. Whole numbers lose the ".0"."""
    if missing(fraction):
        return ""
    value = round(float(fraction) * 100, digits)
    return f"{value:.0f}%" if value == int(value) else f"{value:.{digits}f}%"


def count(value: Any) -> str:
    """A count as "20,200" (a float that holds a whole number too); "" when missing."""
    if missing(value):
        return ""
    number = float(value)
    if math.isinf(number):
        return "∞"
    return f"{int(number):,}" if number == int(number) else f"{number:,.1f}"


def status(value: Any) -> str:
    """A status as its icon and label: "✔ Finished"."""
    state = Status(value)
    return f"{LOOK[state][0]} {state.label}"
