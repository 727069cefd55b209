"""The job list: a strip of counts by status (a chip filters the list to its status),
filters, one page of jobs from the server, and the selected job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import panel as pn
import param

from jobobs.access import analytics, queries
from jobobs.dashboard import style
from jobobs.model import humane
from jobobs.model.states import ACTIVE, EXECUTING, Status

WINDOWS = {"any time": None, "last hour": timedelta(hours=1), "last 24 hours": timedelta(days=1),
           "last 7 days": timedelta(days=7), "last 30 days": timedelta(days=30)}
KINDS = ["any kind", "import", "export", "python"]
COLUMNS = ["id", "status", "name", "kind", "progress", "processed", "rejected", "started",
           "duration", "warning"]
TITLES = {"id": "#", "status": "Status", "name": "Name", "kind": "Kind", "progress": "Progress",
          "processed": "Processed", "rejected": "Rejected", "started": "Started",
          "duration": "Duration", "warning": "⚠"}
# Wide enough for each title whole: the list is one page of the server's order, so its
# headers do not sort and carry no arrow.
WIDTHS = {"id": 50, "status": 180, "name": 140, "kind": 62, "progress": 95, "processed": 88,
          "rejected": 80, "started": 112, "duration": 98, "warning": 30}
HTML = {"type": "html"}
# Text columns as text even with no row: a column's type sets how the browser's table is
# built, and a table rebuilt as its first rows arrive may drop them.
TEXTS = {"status": str, "progress": str, "processed": str, "rejected": str, "started": str,
         "duration": str, "warning": str}
CHIP_CSS = """
.bk-btn {{ border: 1px solid {color} !important; color: {text} !important;
          background: {fill} !important; border-radius: 14px; font-weight: 600;
          padding: 2px 10px; }}
"""


def progress_bar(fraction: Any, status: str) -> str:
    if humane.missing(fraction):
        return ""
    percent = max(0.0, min(100.0, float(fraction) * 100))
    color = style.LOOK[Status(status)][1]
    return (f'<div style="background:#e5e7eb;border-radius:3px;min-width:90px">'
            f'<div style="width:{percent:.0f}%;background:{color};height:1.2em;'
            f'border-radius:3px"></div></div><small>{percent:.0f}%</small>')


def seconds_shown(status: str, duration_s: Any, times: tuple[Any, Any] | None) -> Any:
    """The seconds a job's duration shows (``times``: its run count and active seconds):
    ``style.active_seconds``."""
    return style.active_seconds(status, duration_s, *(times or (None, None)))


def duration(seconds: Any, status: str, usual: float | None) -> str:
    """A run's duration, with a 🐢 (its usual as a tooltip) while it runs slower than
    usual."""
    shown = style.duration(seconds)
    if Status(status) in EXECUTING and style.slower(seconds, usual):
        shown += (f' <span class="jobobs-slow" style="{style.SLOW_STYLE}" title="slower than '
                  f'usual: usual {style.duration(usual)}">🐢</span>')
    return shown


def moment(value: Any) -> str:
    """A time in the list: local, without the year, the exact UTC time on hover."""
    return style.moment(value, year=False)


def rows(frame: pd.DataFrame, usual: dict[int, float | None] | None = None,
         times: dict[int, tuple[Any, Any]] | None = None) -> pd.DataFrame:
    """What the table shows, from ``queries.jobs``; ``usual``: the usual duration of the
    running jobs, by id; ``times``: (run count, active seconds) by id."""
    usual, times = usual or {}, times or {}
    seconds = [seconds_shown(s, v, times.get(int(i))) for v, s, i
               in zip(frame["duration_s"], frame["status"], frame["id"])]
    return pd.DataFrame({
        "id": frame["id"].astype(int),
        "status": [style.badge(s) for s in frame["status"]],
        "name": frame["name"],
        "kind": frame["kind"],
        "progress": [progress_bar(p, s) for p, s in zip(frame["progress"], frame["status"])],
        "processed": [humane.count(v) for v in frame["processed"]],
        "rejected": [humane.count(v) for v in frame["rejected"]],
        "started": [moment(v) for v in frame["started_at"]],
        "duration": [duration(v, s, usual.get(int(i))) for v, s, i
                     in zip(seconds, frame["status"], frame["id"])],
        "warning": ["⚠" if w is True or w == 1 else "" for w in frame["has_warning"]],
    }, columns=COLUMNS).astype(TEXTS)


def today(now: datetime | None = None) -> datetime:
    """This machine's local midnight, as the naive UTC time the database holds."""
    local = (now or datetime.now(UTC)).astimezone()
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC).replace(tzinfo=None)


def figures(summary: pd.DataFrame) -> str:
    """"running now", "failed today" and "rejects today", from ``queries.status_summary``."""
    by_status = summary.set_index("status") if len(summary) else summary
    running = int(by_status["jobs"].get("running", 0)) if len(summary) else 0
    failed = int(by_status["ended"].get("failed", 0)) if len(summary) else 0
    rejects = int(summary["rejects"].sum()) if len(summary) else 0
    items = [("running now", running, "jobs running at this moment"),
             ("failed today", failed, "jobs that ended in error since midnight (local time)"),
             ("rejects today", rejects, "rows rejected by the jobs that ran since midnight "
              "(local time)")]
    return '<div class="jobobs-figures" style="display:flex;gap:22px;margin:4px 0">' + "".join(
        f'<span data-figure="{label}" title="{note}"><b style="font-size:1.25em">'
        f"{humane.count(value)}</b> {label}</span>" for label, value, note in items) + "</div>"


class JobList(pn.viewable.Viewer):
    """Jobs newest first, a page at a time, filtered by status, kind, name and time, under
    a strip that counts the jobs in each status."""

    statuses = param.ListSelector(default=[], objects=[s.value for s in Status])
    kind = param.Selector(default="any kind", objects=KINDS)
    search = param.String(default="", doc="Part of the job name.")
    window = param.Selector(default="any time", objects=list(WINDOWS))
    page = param.Integer(default=0, bounds=(0, None))
    page_size = param.Integer(default=25, bounds=(5, 500))
    selected = param.Integer(default=None, allow_None=True, doc="The selected job's id.")
    total = param.Integer(default=0, doc="Jobs that match the filters.")
    empty = param.Boolean(default=False, doc="No job at all in the database.")
    counts = param.Dict(default={}, doc="Jobs in each status present, by status value.")

    def __init__(self, client: Any, **params: Any):
        super().__init__(**params)
        self.client = client
        self._version: tuple | None = None
        self._summarized: tuple | None = None  # (version, day) the strip was read at
        self._frame = pd.DataFrame()
        self._usual: dict[int, float | None] = {}  # running jobs' usual durations, by id
        self.table = pn.widgets.Tabulator(
            rows(queries.jobs(client.connection(), limit=0)), show_index=False,
            selectable=1, disabled=True, width=948, height=600,
            formatters={"status": HTML, "progress": HTML, "started": HTML,
                        "duration": HTML},
            titles=TITLES, widths=WIDTHS,
            text_align={"processed": "right", "rejected": "right", "duration": "right"},
            configuration={"columnDefaults": {"headerSort": False}},
            css_classes=["jobobs-jobs"],
        )
        self.table.param.watch(self._on_selection, "selection")
        self.chips = {state: pn.widgets.Button(label="", visible=False, margin=(4, 4),
                                               css_classes=["jobobs-chip"])
                      for state in Status}
        for state, chip in self.chips.items():
            chip.on_click(lambda e, s=state.value: self.toggle(s))
        self.strip_note = pn.pane.HTML(
            '<span style="color:#6b7280">Jobs by status (click one to list only those):'
            "</span>", margin=(10, 4, 4, 10))
        self.figures = pn.pane.HTML("", margin=(4, 10))
        self.kind_filter = pn.widgets.Select.from_param(self.param.kind, label="Kind", width=120)
        self.name_filter = pn.widgets.TextInput(label="Name contains", placeholder="search...",
                                                width=200)
        self.name_filter.param.watch(lambda e: setattr(self, "search", e.new), "value_input")
        self.window_filter = pn.widgets.Select.from_param(self.param.window, label="Created",
                                                          width=140)
        self.previous = pn.widgets.Button(label="◀ Newer", width=90)
        self.next = pn.widgets.Button(label="Older ▶", width=90)
        self.previous.on_click(lambda e: self._turn(-1))
        self.next.on_click(lambda e: self._turn(1))
        self.position = pn.pane.Markdown("", margin=(12, 10))
        self.empty_state = pn.pane.HTML(
            '<div class="jobobs-empty"><h3>No jobs yet</h3><p>Start one from a terminal, '
            "for example:</p><pre>jobobs import data/customers.csv --table customers\n"
            "jobobs run mypackage.jobs:score_customers</pre><p>or from Python with "
            "<code>jobobs.connect().submit_import(...)</code>. It appears here at once."
            "</p></div>", visible=False, width=940)
        self.param.watch(self._filters_changed,
                         ["statuses", "kind", "search", "window", "page_size"])
        self.param.watch(lambda e: self._paint_chips(), ["statuses"])
        self.param.watch(lambda e: self.refresh(force=True), ["page"])
        self.refresh(force=True)

    # -- reading -------------------------------------------------------------------------

    def filters(self) -> dict[str, Any]:
        span = WINDOWS[self.window]
        return {
            "status": list(self.statuses) or None,
            "kind": None if self.kind == "any kind" else self.kind,
            "name": self.search.strip() or None,
            "since": None if span is None else datetime.now(UTC).replace(tzinfo=None) - span,
        }

    def refresh(self, force: bool = False, now: datetime | None = None) -> None:
        """Read the page again if anything changed, or while jobs on it are active (their
        durations tick); unchanged rows are left alone and changed cells patched. The
        strip is read again only when a job changed or the day did."""
        con = self.client.connection()
        version = queries.version(con)
        summarized = (version, today(now))  # "today" moves on at midnight with no change
        if summarized != self._summarized:
            self._summarize(con, now)
            self._summarized = summarized
        active = not self._frame.empty and self._frame["status"].isin(
            [s.value for s in ACTIVE]).any()
        if not (force or active or version != self._version):
            return
        self.empty = version[2] == 0
        filters = self.filters()
        self.total = queries.count_jobs(con, **filters)
        pages = max(1, -(-self.total // self.page_size))
        if self.page >= pages:
            self.page = pages - 1  # refreshes through the watcher
            return
        frame = queries.jobs(con, **filters, limit=self.page_size,
                             offset=self.page * self.page_size)
        self._show(frame, self._usual_durations(con, frame), self._active_times(con, frame))
        first = self.page * self.page_size + 1 if self.total else 0
        self.position.object = (f"{first:,}-{first + len(frame) - 1 if len(frame) else 0:,} "
                                f"of {self.total:,} jobs")
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= pages - 1
        self.empty_state.visible = self.empty
        self.table.visible = not self.empty
        self._version = version  # only once all was read: a failed read is read again

    def _summarize(self, con: Any, now: datetime | None) -> None:
        """The strip: one chip per status present, and today's figures (one query)."""
        summary = queries.status_summary(con, today(now))
        self.counts = {str(s): int(n) for s, n in zip(summary["status"], summary["jobs"])}
        self._paint_chips()
        shown = figures(summary)
        if self.figures.object != shown:
            self.figures.object = shown

    def _paint_chips(self) -> None:
        for state, chip in self.chips.items():
            chosen = state.value in self.statuses
            icon, color = humane.LOOK[state]
            label = f"{icon} {state.label} {humane.count(self.counts.get(state.value, 0))}"
            sheet = CHIP_CSS.format(color=color, text="white" if chosen else color,
                                    fill=color if chosen else "white")
            chip.param.update(
                label=label, visible=chosen or state.value in self.counts,
                description=(f"Showing only {state.label}: click again to show all" if chosen
                             else f"List only the jobs {state.label.lower()}"),
                stylesheets=[sheet])

    def toggle(self, status: str) -> None:
        """List only the jobs in ``status``; again, all of them."""
        self.statuses = [] if list(self.statuses) == [status] else [status]

    def _active_times(self, con: Any, frame: pd.DataFrame) -> dict[int, tuple[Any, Any]]:
        times = queries.active_times(con, [int(i) for i in frame["id"]])
        return {int(i): (r, a) for i, r, a
                in zip(times["id"], times["run_count"], times["active_s"])}

    def _usual_durations(self, con: Any, frame: pd.DataFrame) -> dict[int, float | None]:
        """The usual duration of each running job on the page, read once per job."""
        running = [int(i) for i, s in zip(frame["id"], frame["status"])
                   if Status(s) in EXECUTING]
        self._usual = {job_id: self._usual[job_id] if job_id in self._usual
                       else analytics.usual_duration(con, job_id) for job_id in running}
        return self._usual

    def _show(self, frame: pd.DataFrame, usual: dict[int, float | None],
              times: dict[int, tuple[Any, Any]]) -> None:
        style.refill(self.table, rows(frame, usual, times), "id", COLUMNS, self.selected)
        self._frame = frame

    def _on_selection(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.selected = int(self.table.value["id"].iloc[event.new[0]])

    def _filters_changed(self, event: param.parameterized.Event) -> None:
        if self.page:
            self.page = 0  # refreshes through the watcher
        else:
            self.refresh(force=True)

    def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)

    def strip(self) -> pn.viewable.Viewable:
        """The chips and today's figures."""
        return pn.Column(pn.FlexBox(self.strip_note, *self.chips.values(), flex_wrap="wrap",
                                    sizing_mode="stretch_width"), self.figures, width=958)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            self.strip(),
            pn.Row(self.kind_filter, self.name_filter, self.window_filter),
            pn.Row(self.previous, self.next, self.position),
            self.empty_state, self.table, width=958,
        )
