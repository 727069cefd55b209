"""How statuses, durations and numbers look in the dashboard."""

from __future__ import annotations

import html
import re
from typing import Any

import panel as pn

from jobobs.access.analytics import SLOW_FACTOR, times_usual
from jobobs.model import humane
from jobobs.model.humane import LOOK
from jobobs.model.states import LABELS, Status

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


def plain(text: str) -> str:
    """Text shown as itself in a Markdown pane (an alert): an error group's ``<n>`` and a
    name's ``*`` or ``_`` are not markup."""
    return html.escape(re.sub(r"([\\`*_\[\]#|~])", r"\\\1", text), quote=False)


def duration(seconds: Any) -> str:
    """A duration as a person reads it: ``humane.duration`` ("2 min 10 s")."""
    return humane.duration(seconds)


# Inline, as a status badge's color is: a pane's own page (its shadow root) does not see
# the page's style sheet.
SLOW_STYLE = "color:#b45309;font-weight:600"
OPEN_ALERT_STYLE = "color:#b91c1c"
CLOSED_ALERT_STYLE = "color:#6b7280"
PRE_STYLE = ("white-space: pre-wrap; overflow-wrap: anywhere; max-height: 360px; overflow: auto;"
             " background: #f9fafb; padding: 6px")


def slower(duration_s: Any, usual: float | None) -> bool:
    """True when a run took, or while it runs has taken so far, more than ``SLOW_FACTOR``
    times its usual duration (the median of the same job's last finished runs,
    ``analytics.usual_duration``; None when it has too few)."""
    return (usual is not None and duration_s is not None and duration_s == duration_s
            and times_usual(duration_s, usual) > SLOW_FACTOR)


def slow(duration_s: Any, usual: float | None, *, running: bool) -> str:
    """The "slower than usual" flag of a run, for its title (empty when it is not)."""
    if not slower(duration_s, usual):
        return ""
    if running:
        return (f'<span class="jobobs-slow" data-live="yes" style="{SLOW_STYLE}">🐢 slower '
                f"than usual: {duration(duration_s)} so far, usual {duration(usual)}</span>")
    return (f'<span class="jobobs-slow" title="usual: {duration(usual)}" style="{SLOW_STYLE}">'
            f"🐢 slower than usual ({times_usual(duration_s, usual):.1f}x the median of its last "
            "runs)</span>")


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


TRACEBACK = "Traceback (most recent call last):"
MESSAGE_STYLE = ("white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 12px; "
                 "font-size: 12px; max-height: 420px; overflow: auto")


def _exception(lines: list[str]) -> str | None:
    """The exception line of the last traceback in ``lines`` (None without one): the last
    line after its header that is not indented, where Python names the exception."""
    starts = [i for i, line in enumerate(lines) if line.startswith(TRACEBACK)]
    if not starts:
        return None
    named = [line for line in lines[starts[-1] + 1:] if line.strip() and not line[0].isspace()]
    return named[-1] if named else None


def headline(message: str) -> str:
    """A message as one line for a list: the first line and, when it holds a traceback,
    the exception (a traceback's own header says nothing, so it is left out), with how many
    more lines the whole message has."""
    lines = message.rstrip().splitlines()
    if len(lines) <= 1:
        return message
    parts = [lines[0]] if not lines[0].startswith(TRACEBACK) else []
    exception = _exception(lines)
    if exception and exception not in parts:
        parts.append(exception)
    return f"{' — '.join(parts or lines[:1])} [+{len(lines) - 1} lines]"


def message_pane(text: str) -> pn.pane.HTML:
    """A whole message, its lines and indentation kept, for an expanded row."""
    return pn.pane.HTML(f'<pre class="jobobs-message" style="{MESSAGE_STYLE}">'
                        f"{html.escape(text)}</pre>", sizing_mode="stretch_width")


def refill(table: Any, new: Any, key: str, columns: Any, selected: Any) -> None:
    """Show the rows ``new`` in a Tabulator ``table``: the changed cells patched in place
    when the rows (by ``key``) are the same, else the whole table replaced with the row
    ``selected`` (a ``key``) still selected."""
    old = table.value
    if list(new[key]) == list(old[key]):
        patch = {column: [(i, new[column].iloc[i]) for i in range(len(new))
                          if new[column].iloc[i] != old[column].iloc[i]]
                 for column in columns}
        patch = {column: changes for column, changes in patch.items() if changes}
        if patch:
            table.patch(patch, as_index=False)
        return
    table.value = new
    keys = list(new[key])
    wanted = [keys.index(selected)] if selected in keys else []
    if table.selection != wanted:
        table.selection = wanted


def say(message: Any, text: str, kind: str) -> None:
    """Show ``text`` (plain, escaped) in an Alert pane as ``kind`` (success, danger...)."""
    message.object, message.alert_type = plain(text), kind
    message.visible = True


# A job that is not executing keeps the active time of its runs: its duration stands still.
STILL = frozenset({Status.PAUSED, Status.PAUSING, Status.SHUTDOWN})


def job_number(text: str | None) -> int | None:
    """A job number as typed or linked ("42", "#42"); None when it is not one (only ASCII
    digits: "²" is a digit to Python but not to ``int``)."""
    text = (text or "").strip().lstrip("#")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def active_seconds(status: str, duration_s: Any, runs: Any, active: Any) -> Any:
    """The seconds a job's duration shows: its active time (``runs``, ``active``: its run
    count and active seconds, ``queries.active_times``) once it was paused, shut down or
    resumed, so a paused job's duration stands still (None while it has none); else the
    time since it started."""
    if humane.missing(active):
        return None if Status(status) in STILL else duration_s
    if Status(status) in STILL or (not humane.missing(runs) and int(runs) > 1):
        return active
    return duration_s


def moment(value: Any, *, ago: bool = False, year: bool = True,
           now: Any = None) -> str:
    """A time as local time (without the year unless ``year``; with how long ago when
    ``ago``), its exact UTC value on hover ("" when missing)."""
    if humane.missing(value):
        return ""
    shown = humane.moment(value) if year else humane.moment(value)[5:]
    if ago:
        shown += f" · {humane.ago(value, now)}"
    return f'<span title="{humane.moment(value, local=False)} UTC">{shown}</span>'
