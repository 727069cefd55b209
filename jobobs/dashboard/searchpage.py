"""The Search page: every job's journal lines at once, by text, level, code, job name and
time window, newest first; clicking a line opens its job on the Jobs page.

The lines come from ``search.search`` (a substring of the message, ignoring case, taken
literally). A search runs when asked (Enter in a box, a filter changed, or the Search
button), not on every tick: the page shows what the last search found.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import panel as pn
import param

from jobobs.access import search
from jobobs.dashboard import style
from jobobs.dashboard.detail import LEVELS
from jobobs.model.errors import one_line

SHOWN = 200
COLUMNS = ["job_id", "name", "logged_at", "level", "code", "message"]
TITLES = {"job_id": "Job", "name": "Name", "logged_at": "Time (UTC)", "level": "Level",
          "code": "Code", "message": "Message"}
WINDOWS = {"last hour": timedelta(hours=1), "last day": timedelta(days=1),
           "last week": timedelta(weeks=1), "last 30 days": timedelta(days=30), "all": None}


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    """What the table shows, from ``search.search``: the first line of each message."""
    return pd.DataFrame({
        "job_id": frame["job_id"].astype("int64"),
        "name": frame["name"].fillna("").astype(str),
        "logged_at": [style.when(at) for at in frame["logged_at"]],
        "level": frame["level"].astype(str),
        "code": frame["code"].fillna("").astype(str),
        "message": [style.headline(str(text)) for text in frame["message"]],
    }, columns=COLUMNS).astype({c: str for c in COLUMNS[1:]})  # as text with no row too


class Search(pn.viewable.Viewer):
    """A search box, its filters, and the matching lines of every job."""

    text = param.String(default="", doc="A part of the message, ignoring case.")
    level = param.Selector(default="all levels", objects=list(LEVELS))
    code = param.String(default="", doc="The lines' code, exactly.")
    job_name = param.String(default="", doc="A part of the job's name, ignoring case.")
    window = param.Selector(default="all", objects=list(WINDOWS))
    chosen = param.Integer(default=None, allow_None=True,
                           doc="The job of the line last clicked (the dashboard opens it).")

    def __init__(self, client: Any, *, can_act: bool = True, user: str | None = None,
                 now: datetime | None = None, **params: Any):
        super().__init__(**params)
        self.client = client
        self.now = now  # the clock by default; a test's fixed time otherwise
        self.frame = pd.DataFrame()
        self.text_box = pn.widgets.TextInput(label="Search", placeholder="text in the message",
                                             width=260, css_classes=["jobobs-search-text"])
        self.code_box = pn.widgets.TextInput(label="Code", placeholder="exact code", width=120)
        self.name_box = pn.widgets.TextInput(label="Job name", placeholder="part of the name",
                                             width=180)
        for box, attribute in ((self.text_box, "text"), (self.code_box, "code"),
                               (self.name_box, "job_name")):
            box.param.watch(lambda e, a=attribute: setattr(self, a, e.new), "value")
        self.level_box = pn.widgets.Select.from_param(self.param.level, label="Level",
                                                      width=170)
        self.window_box = pn.widgets.Select.from_param(self.param.window, label="Time",
                                                       width=140)
        self.button = pn.widgets.Button(label="Search", color="primary", width=100,
                                        margin=(24, 10, 10, 10))
        self.button.on_click(lambda e: self.run())
        self.summary = pn.pane.HTML("<p>Type a word and press Enter.</p>",
                                    sizing_mode="stretch_width")
        self.table = pn.widgets.Tabulator(
            rows(pd.DataFrame(columns=search.COLUMNS)), show_index=False, selectable=1,
            disabled=True, height=520, sizing_mode="stretch_width", titles=TITLES,
            widths={"job_id": 70, "name": 160, "logged_at": 150, "level": 80, "code": 90},
            css_classes=["jobobs-search-table"], visible=False)
        self.table.param.watch(self._clicked, "selection")
        self.param.watch(lambda e: self.run(), ["text", "level", "code", "job_name",
                                                 "window"])

    def run(self) -> None:
        """Search with the page's filters and show what was found (or why not)."""
        if not (self.text or self.code or self.job_name or self.level != "all levels"):
            self.frame = pd.DataFrame()
            self.summary.object = "<p>Type a word and press Enter.</p>"
            self.table.visible = False
            return
        since = None
        if WINDOWS[self.window] is not None:
            since = (self.now or datetime.now(UTC)) - WINDOWS[self.window]
        try:
            self.frame = search.search(
                self.client.connection(), self.text or None, level=LEVELS[self.level],
                code=self.code or None, name=self.job_name or None, since=since, limit=SHOWN)
        except Exception as error:  # said in the page; the next search tries again
            self.summary.object = style.plain(f"The search failed: {one_line(error)}")
            return
        found = len(self.frame)
        self.summary.object = ("<p>No line matches.</p>" if not found else
                               f"<p>{found}{'+' if found >= SHOWN else ''} line"
                               f"{'s' if found != 1 else ''}, newest first; click one to "
                               "open its job.</p>")
        self.table.selection = []
        self.table.value = rows(self.frame) if found else rows(
            pd.DataFrame(columns=search.COLUMNS))
        self.table.visible = bool(found)

    def refresh(self) -> None:
        """A tick: nothing to do, a search runs when asked."""

    def _clicked(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.chosen = None  # the same job clicked again opens it again
            self.chosen = int(self.table.value["job_id"].iloc[event.new[0]])

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.text_box, self.level_box, self.code_box, self.name_box,
                   self.window_box, self.button),
            self.summary, self.table, sizing_mode="stretch_width", css_classes=["jobobs-search"])
