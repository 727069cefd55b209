"""The Schedules page: each schedule's next and last run, its log, and for operators Run
now, Pause and Resume.

Every action goes through the client, as the CLI's do, and says what came of it in the
page; a refusal is one line there, and the page carries on.
"""

from __future__ import annotations

import html
import json
import logging
from typing import Any

import pandas as pd
import panel as pn
import param

from jobobs.access import queries
from jobobs.dashboard import style
from jobobs.execution.handle import missing
from jobobs.execution.scheduling import timing
from jobobs.model.errors import JobobsError, one_line
from jobobs.model.states import TERMINAL, Status

log = logging.getLogger("jobobs.dashboard")
COLUMNS = ["name", "when", "enabled", "next", "last", "status", "job", "waiting", "retries"]
TITLES = {"name": "Name", "when": "When", "enabled": "Enabled", "next": "Next run (UTC)",
          "last": "Last tick (UTC)", "status": "Last job", "job": "#", "waiting": "Waiting",
          "retries": "Retries"}
LOG_COLUMNS = ["seq", "logged_at", "level", "message", "job"]
LOG_SHOWN = 200
HTML = {"type": "html"}


def when(schedule: dict[str, Any]) -> str:
    """How often a schedule runs: its cron expression and time zone, or its interval."""
    return timing(schedule["cron"], schedule["tz"], schedule["every_s"]).removeprefix("cron ")


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    """What the table shows, from ``queries.schedules``."""
    return pd.DataFrame({
        "name": frame["name"],
        "when": [when(r) for r in frame.to_dict("records")],
        "enabled": ["yes" if e else "paused" for e in frame["enabled"]],
        "next": [style.when(v) if e else "" for v, e in zip(frame["next_run_at"],
                                                             frame["enabled"])],
        "last": [style.when(v) for v in frame["last_run_at"]],
        "status": ["" if missing(s) else style.badge(s) for s in frame["last_status"]],
        "job": ["" if missing(j) else str(int(j)) for j in frame["last_job_id"]],
        "waiting": frame["waiting"].astype(int),
        "retries": frame["retries"].astype(int),
    }, columns=COLUMNS).astype({c: str for c in COLUMNS[:7]})  # as text with no row too


def log_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A schedule's log as listed, from ``queries.schedule_log`` (newest first)."""
    return pd.DataFrame({
        "seq": frame["seq"].astype(int),
        "logged_at": [style.when(v) for v in frame["logged_at"]],
        "level": frame["level"],
        "message": frame["message"],
        "job": ["" if missing(j) else str(int(j)) for j in frame["job_id"]],
    }, columns=LOG_COLUMNS).astype({c: str for c in LOG_COLUMNS[1:]})


def busy(schedule: dict[str, Any]) -> bool:
    """True while the schedule's last job has not ended: a run now is refused (overlap
    skip), as the runtime would refuse it."""
    status = schedule.get("last_status")
    return (schedule.get("overlap") == "skip" and not missing(status)
            and Status(status) not in TERMINAL)


class Schedules(pn.viewable.Viewer):
    """Schedules by name; the selected one's log and, for operators, its actions."""

    selected = param.String(default=None, allow_None=True, doc="The selected schedule.")

    def __init__(self, client: Any, *, can_act: bool = True, user: str | None = None,
                 **params: Any):
        super().__init__(**params)
        self.client, self.can_act, self.user = client, can_act, user
        self._frame = pd.DataFrame()
        self._shown: tuple | None = None  # the selected schedule's row, as its log was read
        self.table = pn.widgets.Tabulator(
            rows(queries.schedules(client.connection()).head(0)), show_index=False,
            selectable=1, disabled=True, height=300, sizing_mode="stretch_width",
            formatters={"status": HTML}, titles=TITLES,
            widths={"name": 160, "when": 190, "enabled": 90, "next": 150, "last": 150,
                    "status": 190, "job": 55, "waiting": 85, "retries": 80},
            css_classes=["jobobs-schedules"])
        self.table.param.watch(self._on_selection, "selection")
        self.empty_state = pn.pane.HTML(
            '<div class="jobobs-empty"><h3>No schedules yet</h3><p>Add one from a terminal, '
            "for example:</p><pre>jobobs schedule add nightly --cron '0 2 * * *' "
            "--tz Europe/Paris -- import 'in/orders-*.csv' --table orders</pre><p>or from "
            "Python with <code>jobobs.connect().schedule(...)</code>. The server runs it; "
            "it appears here at once.</p></div>", visible=False, width=1000)
        self.title = pn.pane.HTML("<h3>Select a schedule in the list</h3>",
                                  sizing_mode="stretch_width")
        self.buttons = {label: pn.widgets.Button(label=label, width=100, disabled=True,
                                                 color=kind)
                        for label, kind in (("Run now", "success"), ("Pause", "warning"),
                                            ("Resume", "primary"))}
        for label, verb in (("Run now", "run"), ("Pause", "pause"), ("Resume", "resume")):
            self.buttons[label].on_click(lambda e, v=verb: self.act(v))
        self.message = pn.pane.Alert("", alert_type="info", visible=False,
                                     sizing_mode="stretch_width")
        self.fields = pn.pane.HTML("", sizing_mode="stretch_width")
        self.spec = pn.pane.JSON({}, depth=2, sizing_mode="stretch_width", visible=False)
        self.log = pn.widgets.Tabulator(
            log_rows(queries.schedule_log(client.connection(), "", limit=0)),
            show_index=False, disabled=True, height=360, sizing_mode="stretch_width",
            layout="fit_columns", titles={"seq": "#", "logged_at": "Time (UTC)",
                                          "level": "Level", "message": "Message",
                                          "job": "Job"},
            widths={"seq": 65, "logged_at": 145, "level": 80, "job": 60},
            formatters={"message": {"type": "textarea"}})
        self.param.watch(lambda e: self._show_selected(), "selected")
        self.refresh(force=True)

    # -- reading -------------------------------------------------------------------------

    def schedule(self) -> dict[str, Any] | None:
        """The selected schedule's row as last read (None without one)."""
        if self.selected is None or self._frame.empty:
            return None
        found = self._frame[self._frame["name"] == self.selected]
        return None if found.empty else found.iloc[0].to_dict()

    def refresh(self, force: bool = False) -> None:
        """Read the schedules (a small table) and patch what changed; the selected one's
        log is read again when its row changed."""
        frame = queries.schedules(self.client.connection())
        if force or not frame.equals(self._frame):
            self._show(frame)
        self._show_selected(force=force)

    def _show(self, frame: pd.DataFrame) -> None:
        style.refill(self.table, rows(frame), "name", COLUMNS, self.selected)
        self._frame = frame
        self.empty_state.visible = frame.empty
        self.table.visible = not frame.empty

    def _show_selected(self, force: bool = True) -> None:
        schedule = self.schedule()
        shown = None if schedule is None else tuple(
            None if missing(v) else v for v in schedule.values())
        if not force and shown == self._shown:
            return
        self._shown = shown
        for label, button in self.buttons.items():
            button.disabled = schedule is None or not self.can_act or (
                {"Run now": busy(schedule), "Pause": not schedule["enabled"],
                 "Resume": bool(schedule["enabled"])}[label])
        if schedule is None:
            self.title.object = ("<h3>Select a schedule in the list</h3>" if self.selected
                                 is None else f"<h3>Schedule {html.escape(self.selected)} "
                                 "no longer exists</h3>")
            self.fields.object, self.spec.object = "", {}
            self.spec.visible = False  # an empty JSON pane reads "Object, No properties"
            self.log.value = self.log.value.head(0)
            return
        self.title.object = (f"<h3>Schedule {html.escape(schedule['name'])} "
                             f"<small>{html.escape(when(schedule))}"
                             f"{'' if schedule['enabled'] else ' · paused'}</small></h3>")
        self.fields.object = self._fields(schedule)
        try:
            self.spec.object = json.loads(schedule["spec"])
        except ValueError:
            self.spec.object = {"spec": schedule["spec"]}
        self.spec.visible = True
        frame = queries.schedule_log(self.client.connection(), schedule["name"],
                                     limit=LOG_SHOWN)
        self.log.value = log_rows(frame)

    def _fields(self, schedule: dict[str, Any]) -> str:
        shown = {
            "overlap": {"skip": "a tick is skipped while the last run has not ended",
                        "queue": "a tick waits for the last run to end"}.get(
                            schedule["overlap"], schedule["overlap"]),
            "catch-up": schedule["catch_up"],
            "created": f"{style.when(schedule['created_at'])} UTC by {schedule['created_by']}",
        }
        return '<table class="jobobs-fields">' + "".join(
            f"<tr><td>{name}</td><td>{html.escape(str(value))}</td></tr>"
            for name, value in shown.items()) + "</table>"

    def _on_selection(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.selected = str(self.table.value["name"].iloc[event.new[0]])

    # -- acting ----------------------------------------------------------------------------

    def act(self, verb: str) -> None:
        """Run now, pause or resume the selected schedule, as the signed-in user. Viewers
        are refused here, on the server, whatever the page shows."""
        name = self.selected
        if name is None:
            return
        if not self.can_act:
            self._say(f"You can look but not act: {verb} needs the operator role.", "warning")
            return
        try:
            if verb == "run":
                job_id = self.client.run_schedule(name, by=self.user)
                text = (f"Job {job_id} made by schedule {name}." if job_id is not None else
                        f"Schedule {name}: the run waits for its last job to end.")
            elif verb == "pause":
                self.client.pause_schedule(name, by=self.user)
                text = f"Schedule {name} paused: no run until it is resumed."
            else:
                self.client.resume_schedule(name, by=self.user)
                text = f"Schedule {name} resumed."
        except Exception as error:  # a refusal or a lost server: one line, the page goes on
            if not isinstance(error, (JobobsError, TimeoutError)):
                log.warning("jobobs dashboard: %s schedule %s: %s", verb, name, error)
            self._say(one_line(error), "danger")
        else:
            self._say(text, "success")
        self.refresh(force=True)

    def _say(self, text: str, kind: str) -> None:
        style.say(self.message, text, kind)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            self.empty_state, self.table, self.title, pn.Row(*self.buttons.values()),
            self.message, pn.Row(self.fields, self.spec, sizing_mode="stretch_width"),
            pn.pane.Markdown("#### Log (newest first)"), self.log, sizing_mode="stretch_width")
