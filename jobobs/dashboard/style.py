"""How statuses, durations and numbers look in the dashboard."""

from __future__ import annotations

import html
import math
from typing import Any

from jobobs.states import LABELS, Status

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

CSS = """
.jobobs-status { display: inline-flex; gap: .35em; align-items: center; font-weight: 600;
                 white-space: nowrap; }
.jobobs-status .icon { display: inline-block; width: 1.2em; text-align: center; }
.jobobs-empty { padding: 2em; border: 1px dashed #9ca3af; border-radius: 8px; }
.jobobs-fields td { padding: 2px 12px 2px 0; vertical-align: top; }
.jobobs-fields td:first-child { color: #6b7280; }
.jobobs-timeline li { margin: 2px 0; }
"""


def badge(status: str) -> str:
    """The status as an icon and its label, in its color (trusted text only)."""
    state = Status(status)
    icon, color = LOOK[state]
    return (f'<span class="jobobs-status" data-status="{state.value}" style="color:{color}">'
            f'<span class="icon">{icon}</span>{html.escape(LABELS[state])}</span>')


def duration(seconds: Any) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def when(value: Any) -> str:
    """A UTC timestamp as 'YYYY-MM-DD HH:MM:SS' (empty when missing)."""
    if value is None:
        return ""
    try:
        if value != value:  # NaT
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)[:19]


def number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{int(value):,}"
