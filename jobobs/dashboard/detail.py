"""The selected job: General / Journal / Rejects tabs and its controls."""

from __future__ import annotations

import html
import io
import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import panel as pn
import param

from jobobs.access import analytics, queries
from jobobs.dashboard import style
from jobobs.dashboard.alertspage import alert_items
from jobobs.execution.handle import missing
from jobobs.model import humane
from jobobs.model.errors import JobobsError
from jobobs.model.requests import ACCEPTS
from jobobs.model.states import ACTIVE, EXECUTING, Status

JOURNAL_TAIL = 500
# The journal table's column types, the same with no line: a table whose types change is
# rebuilt in the browser, which may drop the lines sent meanwhile.
LINE_TYPES = {"seq": "int64", "logged_at": str, "level": str, "code": str, "message": str}
REJECTS_SHOWN = 1000
ALERTS_SHOWN = 20
ALERTS_EVERY = 5  # ticks between readings of the job's alerts while its row stays the same
LEVELS = {"all levels": None, "info and above": "info", "warnings and errors": "warning",
          "errors only": "error"}
# Which button asks what, in which statuses it is offered, and its color: Start wherever
# the API takes it (an edited job, and a paused or shut-down one, which it resumes); Retry
# a failed job, from its last checkpoint.
BUTTONS = {
    "Start": ("start", ACCEPTS["start"], "success"),
    "Pause": ("pause", ACCEPTS["pause"], "warning"),
    "Resume": ("resume", {Status.PAUSED, Status.PAUSING}, "primary"),
    "Cancel": ("cancel", ACCEPTS["cancel"], "danger"),
    "Retry": ("retry", ACCEPTS["retry"], "primary"),
}
GROUPS = ("Status and progress", "Timing", "Counters", "Who and where", "Spec")
# The fields' look, inside the pane: a pane's own page (its shadow root) does not see the
# page's style sheet.
GROUPS_CSS = """<style>
.jobobs-groups { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr));
                 gap: 4px 24px; }
.jobobs-group h4 { margin: 10px 0 4px; font-size: 14px; color: #374151; }
.jobobs-fields td { padding: 2px 12px 2px 0; vertical-align: top; }
.jobobs-fields td:first-child { color: #6b7280; white-space: nowrap; }
</style>"""
SHORT_SPEC = 300  # characters of the spec's arguments shown before "…"


def _request_note(command: str, status: Status) -> str:
    """The banner after a request, rewritten as the status changes, so it never says
    "in progress" once the job got there."""
    return f"{command.capitalize()} requested. Status now: {status.label}."


def _retries(row: dict[str, Any], status: Status) -> str:
    """A job's automatic retries as the General tab shows them: how many of how many were
    used, or while it is queued for one, which and when (empty without a retry policy)."""
    if missing(row.get("retries")) or not row["retries"]:
        return ""
    done = 0 if missing(row.get("retried")) else int(row["retried"])
    if status is Status.QUEUED and done and not missing(row.get("retry_at")):
        return f"retry {done} of {int(row['retries'])} due at {style.when(row['retry_at'])} UTC"
    return f"retried {done} of {int(row['retries'])}"


def _value(value: Any) -> str:
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a process id read as a float, for a column with NULLs
    return html.escape(str(value))


def _time(value: Any, now: datetime | None = None) -> str:
    """A time as local time and how long ago, its exact UTC value on hover."""
    return style.moment(value, ago=True, now=now)


def _time_left(eta: Any, now: datetime | None = None) -> str:
    """The time left until ``eta``: "2 min 10 s" ("" when missing)."""
    at = humane.as_utc(eta)
    if at is None:
        return ""
    left = (at - (now or datetime.now(UTC))).total_seconds()
    return humane.duration(left) if left >= 1 else "any moment now"


def _arguments(spec: Any) -> list[tuple[str, str]]:
    """The spec's function and arguments, as (label, text) rows."""
    try:
        parsed = json.loads(spec) if isinstance(spec, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return []
    shown = []
    if parsed.get("function"):
        shown.append(("function", str(parsed["function"])))
    words = [json.dumps(a, default=str) for a in parsed.get("args") or []]
    words += [f"{k}={json.dumps(v, default=str)}" for k, v in (parsed.get("kwargs") or {}).items()]
    if words:
        text = ", ".join(words)
        shown.append(("arguments", text if len(text) <= SHORT_SPEC
                      else text[:SHORT_SPEC] + "…"))
    return shown


def active_time(row: dict[str, Any], active_s: Any) -> Any:
    """The seconds a job's duration shows (``active_s``: ``queries.active_times``):
    ``style.active_seconds``."""
    return style.active_seconds(row["status"], row.get("duration_s"), row.get("run_count"),
                                active_s)


def groups(row: dict[str, Any], *, active_s: Any = None, actor: str | None = None,
           retries: str = "", now: datetime | None = None) -> str:
    """The General tab's fields in groups; a field with no value is left out."""
    status = Status(row["status"])
    fraction = row.get("progress")
    progress = humane.percent(fraction)
    if progress and not humane.missing(row.get("total")):
        progress += f" of {humane.count(row['total'])}"
    took = active_time(row, active_s)
    wall = row.get("duration_s")
    resumed = not humane.missing(row.get("run_count")) and int(row["run_count"]) > 1
    differs = ((status in style.STILL or resumed)
               and humane.duration(wall) not in ("", humane.duration(took)))
    counters = [(name, humane.count(row.get(name))) for name in
                ("total", "processed", "succeeded", "rejected")]
    counters += [(name, humane.count(row.get(name))) for name in ("warnings", "doubles",
                                                                  "duplicates")
                 if not humane.missing(row.get(name)) and row[name]]
    error = row.get("error")
    sections = {
        "Status and progress": [
            ("status", style.badge(status.value)),
            ("progress", html.escape(progress)),
            ("time left", _time_left(row.get("eta_at"), now) if status in ACTIVE else ""),
            ("warnings", "yes, see the journal" if row.get("has_warning") is True
             or row.get("has_warning") == 1 else "none"),
            ("error", "" if humane.missing(error) or not error
             else html.escape(style.headline(str(error)))),
            ("retries", html.escape(retries)),
        ],
        "Timing": [
            ("created", _time(row.get("created_at"), now)),
            ("queued", _time(row.get("queued_at"), now)),
            ("started", _time(row.get("started_at"), now)),
            ("finished", _time(row.get("finished_at"), now)),
            ("last checkpoint", _time(row.get("checkpoint_at"), now)),
            ("duration", html.escape(humane.duration(took)) + (" active" if differs else "")),
            ("wall time", html.escape(humane.duration(wall)) + " since it started"
             if differs else ""),
            ("waited in queue", html.escape(humane.duration(row.get("queue_s")))),
            ("runs", str(int(row["run_count"])) if not humane.missing(row.get("run_count"))
             and int(row["run_count"]) > 1 else ""),
        ],
        "Counters": [(name, html.escape(text)) for name, text in counters],
        "Who and where": [
            ("created by", _value(row.get("created_by"))),
            ("host", _value(row.get("host"))),
            ("process", _value(row.get("pid"))),
            ("worker", _value(row.get("worker"))),
            ("runtime", _value(row.get("runtime_id"))),
            ("last change by", html.escape(actor) if actor else ""),
        ],
        "Spec": [
            ("kind", _value(row.get("kind"))),
            ("parent job", "" if humane.missing(row.get("parent_id"))
             else f"#{int(row['parent_id'])}"),
            ("schedule", _value(row.get("schedule"))),
            *((label, html.escape(text)) for label, text in _arguments(row.get("spec"))),
        ],
    }
    return GROUPS_CSS + '<div class="jobobs-groups">' + "".join(
        f'<section class="jobobs-group" data-group="{title}"><h4>{title}</h4>'
        '<table class="jobobs-fields">' + "".join(
            f"<tr><td>{label}</td><td>{value}</td></tr>" for label, value in fields if value)
        + "</table></section>" for title, fields in sections.items()) + "</div>"


class JobDetail(pn.viewable.Viewer):
    """Everything about one job, kept current while it runs."""

    job_id = param.Integer(default=None, allow_None=True)
    level = param.Selector(default="all levels", objects=list(LEVELS))
    search = param.String(default="")
    follow = param.Boolean(default=True, doc="Keep showing new journal lines.")
    status = param.String(default="", doc="The job's status as last read.")

    def __init__(self, client: Any, *, can_act: bool = True, user: str | None = None,
                 **params: Any):
        super().__init__(**params)
        self.client, self.can_act, self.user = client, can_act, user
        self._seen: tuple | None = None
        self._last_seq = 0
        self._rejects_seen: int | None = None
        self._asked: str | None = None  # the request the banner follows
        self._wholes: dict[int, str] = {}  # journal messages listed shorter, by seq
        self._usual: tuple[int, float | None] | None = None  # (job, its usual duration)
        self._ticks = 0  # refreshes since the job was selected
        self._actor: str | None = None  # who made the job's last transition
        self.title = pn.pane.HTML("<h3>Select a job in the list</h3>",
                                  sizing_mode="stretch_width")
        self.buttons = {label: pn.widgets.Button(label=label, width=90, disabled=True,
                                                 color=color)
                        for label, (_, _, color) in BUTTONS.items()}
        for label, button in self.buttons.items():
            command = BUTTONS[label][0]
            if command == "cancel":
                button.on_click(lambda e: self._confirm_cancel())
            else:
                button.on_click(lambda e, c=command: self.request(c))
        self.confirm_text = pn.pane.Markdown("")
        self.confirm_yes = pn.widgets.Button(label="Yes, cancel it", color="danger")
        self.confirm_no = pn.widgets.Button(label="No, keep it")
        self.confirm_yes.on_click(lambda e: self._cancel_confirmed())
        self.confirm_no.on_click(lambda e: setattr(self.confirm, "visible", False))
        self.confirm = pn.Row(self.confirm_text, self.confirm_yes, self.confirm_no,
                              visible=False)
        self.message = pn.pane.Alert("", alert_type="info", visible=False)
        # General
        self.progress = pn.indicators.Progress(value=0, max=100, width=320, visible=False)
        self.progress_text = pn.pane.Markdown("")
        self.fields = pn.pane.HTML("", sizing_mode="stretch_width")
        self.alerts = pn.pane.HTML("", visible=False, sizing_mode="stretch_width")
        self.history = pn.pane.HTML("", sizing_mode="stretch_width")
        self.spec = pn.pane.JSON({}, depth=3, sizing_mode="stretch_width")
        # Journal
        self.journal = pn.widgets.Tabulator(
            self._no_lines(), show_index=False, disabled=True, height=480, width=600,
            layout="fit_columns", titles={"logged_at": "time (UTC)"},
            widths={"seq": 55, "logged_at": 145, "level": 70, "code": 90},
            row_content=self._whole_message)
        self.journal_download = pn.widgets.FileDownload(
            callback=self._journal_csv, filename="journal.csv", label="Download journal",
            color="light", width=170)
        self.level_filter = pn.widgets.Select.from_param(self.param.level, label="Level",
                                                         width=170)
        self.search_filter = pn.widgets.TextInput(label="Search", placeholder="text in the "
                                                  "message", width=220)
        self.search_filter.param.watch(lambda e: setattr(self, "search", e.new), "value_input")
        self.follow_toggle = pn.widgets.Checkbox.from_param(self.param.follow,
                                                            label="Follow new lines")
        # Rejects
        self.by_reason = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                              height=150, width=295)
        self.by_column = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                              height=150, width=295)
        self.rejects = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, height=380, width=600,
            layout="fit_data_stretch", titles={"line_no": "line", "column_name": "column"})
        self.rejects_note = pn.pane.Markdown("")
        self.rejects_download = pn.widgets.FileDownload(
            callback=self._rejects_csv, filename="rejects.csv", label="Download rejects (CSV)",
            color="light", width=200)
        self.tabs = pn.Tabs(
            ("General", pn.Column(pn.Row(self.progress, self.progress_text), self.fields,
                                  self.alerts,
                                  pn.pane.Markdown("#### Who did what"), self.history,
                                  pn.pane.Markdown("#### The whole spec"), self.spec,
                                  sizing_mode="stretch_width")),
            ("Journal", pn.Column(pn.Row(self.level_filter, self.search_filter),
                                  pn.Row(self.follow_toggle, self.journal_download),
                                  self.journal, sizing_mode="stretch_width")),
            ("Rejects", pn.Column(pn.Row(pn.Column("**By reason**", self.by_reason),
                                         pn.Column("**By column**", self.by_column)),
                                  pn.Row(self.rejects_note, self.rejects_download),
                                  self.rejects, sizing_mode="stretch_width")),
            dynamic=True, sizing_mode="stretch_width",
        )
        self.param.watch(lambda e: self.show(e.new), "job_id")
        self.param.watch(lambda e: self._reload_journal(), ["level", "search"])
        if self.job_id is not None:
            self.refresh()

    # -- reading -------------------------------------------------------------------------

    def show(self, job_id: int | None) -> None:
        self._seen, self._rejects_seen, self._last_seq, self._asked = None, None, 0, None
        self._ticks = 0
        self.confirm.visible = self.message.visible = False
        self.refresh()

    def refresh(self) -> None:
        if self.job_id is None:
            return
        con = self.client.connection()
        frame = queries.job(con, self.job_id)
        if frame.empty:
            self.title.object = f"<h3>Job {self.job_id} no longer exists</h3>"
            for button in self.buttons.values():
                button.disabled = True
            return
        row = frame.iloc[0].to_dict()
        status = Status(row["status"])
        seen = tuple(None if missing(v) else v for v in (
            row["status"], row["processed"], row["rejected"], row["progress"],
            row.get("updated_at")))
        every = self._ticks % ALERTS_EVERY == 0  # "3 min ago" moves on, alerts open
        if seen != self._seen or every:
            self._show_alerts(con)
        self._ticks += 1
        if seen != self._seen or status in ACTIVE or every:
            self._general(con, row, status, changed=seen[0] != (self._seen or (None,))[0])
            self._seen = seen
        if self._last_seq == 0:
            self._reload_journal()
        elif self.follow:
            self._more_lines(con)
        if row["rejected"] != self._rejects_seen:
            self._load_rejects(con)
            self._rejects_seen = row["rejected"]

    def _general(self, con: Any, row: dict[str, Any], status: Status, changed: bool) -> None:
        self.status = status.value
        slow = ""
        if status is Status.FINISHED or status in EXECUTING:
            slow = style.slow(row["duration_s"], self._usual_duration(con),
                              running=status in EXECUTING)
        slow = f" {slow}" if slow else ""
        warning = ' <span title="warnings in the journal">⚠</span>' if row["has_warning"] else ""
        self.title.object = (f"<h3>#{row['id']} {html.escape(str(row['name']))} "
                             f"{style.badge(status.value)}{warning}{slow}</h3>")
        if changed or not self.history.object:
            self._history(con, row)
        fraction = row["progress"]
        self.progress.visible = not humane.missing(fraction)
        if self.progress.visible:
            self.progress.value = int(max(0, min(100, fraction * 100)))
            left = _time_left(row["eta_at"]) if status in ACTIVE else ""
            self.progress_text.object = humane.percent(fraction) + (f" · {left} left" if left
                                                                   else "")
        else:
            self.progress_text.object = ""
        times = queries.active_times(con, [self.job_id])
        active_s = times["active_s"].iloc[0] if len(times) else None
        shown = groups(row, active_s=active_s, actor=self._actor,
                       retries=_retries(row, status))
        if self.fields.object != shown:
            self.fields.object = shown
        for label, button in self.buttons.items():
            button.disabled = not (self.can_act and status in BUTTONS[label][1])
        if self._asked is not None:
            self.message.object = _request_note(self._asked, status)

    def _usual_duration(self, con: Any) -> float | None:
        """The job's usual duration, read once per job: it depends on earlier runs only."""
        if self._usual is None or self._usual[0] != self.job_id:
            self._usual = (self.job_id, analytics.usual_duration(con, self.job_id))
        return self._usual[1]

    def _show_alerts(self, con: Any) -> None:
        """The job's alerts, open ones first in red (read when its row changes, and every
        few ticks: an alert opens or is acknowledged without the row changing)."""
        frame = queries.alerts(con, job_id=self.job_id, limit=ALERTS_SHOWN)
        self.alerts.visible = not frame.empty
        shown = "" if frame.empty else alert_items(frame)
        if self.alerts.object != shown:
            self.alerts.object = shown

    def _history(self, con: Any, row: dict[str, Any]) -> None:
        steps = queries.transitions(con, self.job_id)
        items = "".join(
            f"<li>{style.when(t.changed_at)} {style.badge(t.to_status)} by "
            f"<b>{html.escape(str(t.actor))}</b>"
            f"{' — ' + html.escape(str(t.reason)) if isinstance(t.reason, str) else ''}</li>"
            for t in steps.itertuples())
        self.history.object = f'<ol class="jobobs-timeline">{items}</ol>'
        actors = [str(a) for a in steps["actor"] if not humane.missing(a)]
        self._actor = actors[-1] if actors else None
        try:
            self.spec.object = json.loads(row.get("spec") or "{}")
        except ValueError:
            self.spec.object = {"spec": row.get("spec")}

    def _no_lines(self) -> pd.DataFrame:
        return pd.DataFrame({c: [] for c in LINE_TYPES}).astype(LINE_TYPES)

    def _lines(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Journal lines as listed: a message as its headline (a traceback's exception
        shows); a message listed shorter is kept whole for the row's expander."""
        frame = frame.copy()
        frame["logged_at"] = [style.when(v) for v in frame["logged_at"]]
        frame["code"] = frame["code"].fillna("")
        shown = [style.headline(m) for m in frame["message"]]
        self._wholes.update((int(seq), whole) for seq, whole, short
                            in zip(frame["seq"], frame["message"], shown) if whole != short)
        frame["message"] = shown
        return frame.astype(LINE_TYPES)

    def _whole_message(self, row: pd.Series) -> pn.pane.HTML:
        return style.message_pane(self._wholes.get(int(row["seq"]), row["message"]))

    def _reload_journal(self) -> None:
        if self.job_id is None:
            return
        frame = queries.journal(self.client.connection(), self.job_id, limit=JOURNAL_TAIL,
                                level=LEVELS[self.level], search=self.search or None, tail=True)
        self._wholes = {}
        self.journal.value = self._lines(frame) if len(frame) else self._no_lines()
        self._last_seq = int(frame["seq"].iloc[-1]) if len(frame) else -1

    def _more_lines(self, con: Any) -> None:
        frame = queries.journal(con, self.job_id, after=max(self._last_seq, 0), limit=1000,
                                level=LEVELS[self.level], search=self.search or None)
        if len(frame):
            if self.journal.value.empty:  # streaming casts to the empty table's types
                self.journal.value = self._lines(frame)
            else:
                self.journal.stream(self._lines(frame), follow=True)
            self._last_seq = int(frame["seq"].iloc[-1])

    def _load_rejects(self, con: Any) -> None:
        self.by_reason.value = queries.reject_counts(con, self.job_id, by="reason")
        self.by_column.value = queries.reject_counts(con, self.job_id, by="column_name")
        frame = queries.rejects(con, self.job_id, limit=REJECTS_SHOWN)
        columns = ["line_no", "column_name", "reason", "message", "raw", "source"]
        self.rejects.value = frame[columns].astype({"line_no": "Int64"})
        total = int(self.by_reason.value["rejects"].sum()) if len(self.by_reason.value) else 0
        self.rejects_note.object = (f"{total:,} rejects" + (
            f", the first {REJECTS_SHOWN:,} shown" if total > REJECTS_SHOWN else ""))

    def _journal_csv(self) -> io.StringIO:
        frame = queries.journal(self.client.connection(), self.job_id, limit=10_000_000,
                                level=LEVELS[self.level], search=self.search or None)
        self.journal_download.filename = f"job-{self.job_id}-journal.csv"
        return io.StringIO(frame.to_csv(index=False))

    def _rejects_csv(self) -> io.StringIO:
        frame = queries.rejects(self.client.connection(), self.job_id)
        self.rejects_download.filename = f"job-{self.job_id}-rejects.csv"
        return io.StringIO(frame.to_csv(index=False))

    # -- acting ----------------------------------------------------------------------------

    def _confirm_cancel(self) -> None:
        if not self._allowed("cancel"):
            return
        self.confirm_text.object = f"**Cancel job {self.job_id}?** Work done so far stays."
        self.confirm.visible = True

    def _cancel_confirmed(self) -> None:
        self.confirm.visible = False
        self.request("cancel")

    def _allowed(self, command: str) -> bool:
        if self.can_act:
            return True
        self._say(f"You can look but not act: {command} needs the operator role.", "warning")
        return False

    def request(self, command: str) -> None:
        """Ask the runtime to carry out ``command`` for the job, as the signed-in user.
        Viewers are refused here, on the server, whatever the page shows."""
        if self.job_id is None or not self._allowed(command):
            return
        try:
            outcome = self.client.request(self.job_id, command, by=self.user, timeout=5.0)
        except (JobobsError, TimeoutError) as error:
            self._say(str(error), "danger")
        else:
            self._say(_request_note(command, Status(outcome)), "success", asked=command)
        self.refresh()

    def _say(self, text: str, kind: str, asked: str | None = None) -> None:
        self._asked = asked
        self.message.object, self.message.alert_type = text, kind
        self.message.visible = True

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.title, pn.Row(*self.buttons.values()), self.confirm,
                         self.message, self.tabs, sizing_mode="stretch_width")
