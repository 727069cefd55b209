"""The job list: filters, one page of jobs from the server, and the selected job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import panel as pn
import param

from jobobs.access import analytics, queries
from jobobs.dashboard import style
from jobobs.model.states import ACTIVE, EXECUTING, LABELS, Status

WINDOWS = {"any time": None, "last hour": timedelta(hours=1), "last 24 hours": timedelta(days=1),
           "last 7 days": timedelta(days=7), "last 30 days": timedelta(days=30)}
KINDS = ["any kind", "import", "export", "python"]
COLUMNS = ["id", "status", "name", "kind", "progress", "processed", "rejected", "started",
           "ended", "duration", "warning"]
TITLES = {"id": "#", "status": "Status", "name": "Name", "kind": "Kind", "progress": "Progress",
          "processed": "Processed", "rejected": "Rejected", "started": "Started",
          "ended": "Ended", "duration": "Duration", "warning": "⚠"}
HTML = {"type": "html"}
# Text columns as text even with no row: a column's type sets how the browser's table is
# built, and a table rebuilt as its first rows arrive may drop them.
TEXTS = {"status": str, "progress": str, "started": str, "ended": str, "duration": str,
         "warning": str}


def progress_bar(fraction: Any, status: str) -> str:
    if fraction is None or pd.isna(fraction):
        return ""
    percent = max(0.0, min(100.0, float(fraction) * 100))
    color = style.LOOK[Status(status)][1]
    return (f'<div style="background:#e5e7eb;border-radius:3px;min-width:90px">'
            f'<div style="width:{percent:.0f}%;background:{color};height:1.2em;'
            f'border-radius:3px"></div></div><small>{percent:.0f}%</small>')


def duration(seconds: Any, status: str, usual: float | None) -> str:
    """A run's duration, with a 🐢 (its usual as a tooltip) while it runs slower than
    usual."""
    shown = style.duration(seconds)
    if Status(status) in EXECUTING and style.slower(seconds, usual):
        shown += (f' <span class="jobobs-slow" style="{style.SLOW_STYLE}" title="slower than '
                  f'usual: usual {style.duration(usual)}">🐢</span>')
    return shown


def rows(frame: pd.DataFrame, usual: dict[int, float | None] | None = None) -> pd.DataFrame:
    """What the table shows, from ``queries.jobs``; ``usual``: the usual duration of the
    running jobs, by id."""
    usual = usual or {}
    return pd.DataFrame({
        "id": frame["id"].astype(int),
        "status": [style.badge(s) for s in frame["status"]],
        "name": frame["name"],
        "kind": frame["kind"],
        "progress": [progress_bar(p, s) for p, s in zip(frame["progress"], frame["status"])],
        "processed": frame["processed"].astype("Int64"),
        "rejected": frame["rejected"].astype("Int64"),
        "started": [style.when(v)[5:] for v in frame["started_at"]],
        "ended": [style.when(v)[5:] for v in frame["finished_at"]],
        "duration": [duration(v, s, usual.get(int(i))) for v, s, i
                     in zip(frame["duration_s"], frame["status"], frame["id"])],
        "warning": ["⚠" if w else "" for w in frame["has_warning"]],
    }, columns=COLUMNS).astype(TEXTS)


class JobList(pn.viewable.Viewer):
    """Jobs newest first, a page at a time, filtered by status, kind, name and time."""

    statuses = param.ListSelector(default=[], objects=[s.value for s in Status])
    kind = param.Selector(default="any kind", objects=KINDS)
    search = param.String(default="", doc="Part of the job name.")
    window = param.Selector(default="any time", objects=list(WINDOWS))
    page = param.Integer(default=0, bounds=(0, None))
    page_size = param.Integer(default=25, bounds=(5, 500))
    selected = param.Integer(default=None, allow_None=True, doc="The selected job's id.")
    total = param.Integer(default=0, doc="Jobs that match the filters.")
    empty = param.Boolean(default=False, doc="No job at all in the database.")

    def __init__(self, client: Any, **params: Any):
        super().__init__(**params)
        self.client = client
        self._version: tuple | None = None
        self._frame = pd.DataFrame()
        self._usual: dict[int, float | None] = {}  # running jobs' usual durations, by id
        self.table = pn.widgets.Tabulator(
            rows(queries.jobs(client.connection(), limit=0)), show_index=False,
            selectable=1, disabled=True, width=1060, height=600,
            formatters={"status": HTML, "progress": HTML, "duration": HTML},
            titles=TITLES,
            widths={"id": 50, "status": 190, "name": 150, "kind": 60, "progress": 95,
                    "processed": 85, "rejected": 75, "started": 125, "ended": 125,
                    "duration": 70, "warning": 30},
            css_classes=["jobobs-jobs"],
        )
        self.table.param.watch(self._on_selection, "selection")
        self.status_filter = pn.widgets.MultiChoice.from_param(
            self.param.statuses, label="Status", options={LABELS[s]: s.value for s in Status},
            width=280)
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
            "</p></div>", visible=False, width=1000)
        self.param.watch(self._filters_changed,
                         ["statuses", "kind", "search", "window", "page_size"])
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

    def refresh(self, force: bool = False) -> None:
        """Read the page again if anything changed, or while jobs on it are active (their
        durations tick); unchanged rows are left alone and changed cells patched."""
        con = self.client.connection()
        version = queries.version(con)
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
        self._show(frame, self._usual_durations(con, frame))
        first = self.page * self.page_size + 1 if self.total else 0
        self.position.object = (f"{first:,}-{first + len(frame) - 1 if len(frame) else 0:,} "
                                f"of {self.total:,} jobs")
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= pages - 1
        self.empty_state.visible = self.empty
        self.table.visible = not self.empty
        self._version = version  # only once all was read: a failed read is read again

    def _usual_durations(self, con: Any, frame: pd.DataFrame) -> dict[int, float | None]:
        """The usual duration of each running job on the page, read once per job."""
        running = [int(i) for i, s in zip(frame["id"], frame["status"])
                   if Status(s) in EXECUTING]
        self._usual = {job_id: self._usual[job_id] if job_id in self._usual
                       else analytics.usual_duration(con, job_id) for job_id in running}
        return self._usual

    def _show(self, frame: pd.DataFrame, usual: dict[int, float | None]) -> None:
        new = rows(frame, usual)
        old = self.table.value
        if list(new["id"]) == list(old["id"]):
            patch = {
                column: [(i, new[column].iloc[i]) for i in range(len(new))
                         if new[column].iloc[i] != old[column].iloc[i]]
                for column in COLUMNS
            }
            patch = {column: changes for column, changes in patch.items() if changes}
            if patch:
                self.table.patch(patch, as_index=False)
        else:
            self.table.value = new
            self._reselect(new)
        self._frame = frame

    def _reselect(self, new: pd.DataFrame) -> None:
        ids = list(new["id"])
        wanted = [ids.index(self.selected)] if self.selected in ids else []
        if self.table.selection != wanted:
            self.table.selection = wanted

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

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.status_filter, self.kind_filter, self.name_filter, self.window_filter),
            pn.Row(self.previous, self.next, self.position),
            self.empty_state, self.table, width=1070,
        )
