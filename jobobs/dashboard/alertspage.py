"""The Alerts page: what the server's alert rules opened, open ones or all, the selected
one's detail and notifications, and for operators Acknowledge.

The alerts come from ``queries.alerts``; acknowledging goes through the client, as
``jobobs alerts ack`` does, and the page says what came of it. An alert stays open after
it is acknowledged, until its condition ends.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import pandas as pd
import panel as pn
import param

from jobobs.access import queries
from jobobs.dashboard import style
from jobobs.execution.handle import missing
from jobobs.model.errors import JobobsError, one_line

log = logging.getLogger("jobobs.dashboard")
COLUMNS = ["id", "opened", "rule", "kind", "job", "status", "summary", "resolved",
           "acknowledged"]
TITLES = {"id": "#", "opened": "Opened (UTC)", "rule": "Rule", "kind": "Kind", "job": "Job",
          "status": "Job status", "summary": "Summary", "resolved": "Resolved",
          "acknowledged": "Acknowledged by"}
HTML = {"type": "html"}
SHOWN = 200
VIEWS = {"Open only": True, "All": False}
NOTIFICATION_COLUMNS = ["event", "target", "outcome", "tries", "last_error", "created_at",
                        "sent_at"]


def _text(value: Any) -> str:
    return "" if missing(value) else str(value)


def subject(alert: dict[str, Any]) -> str:
    """What an alert is about, as text: its job (number and name) or its schedule."""
    if not missing(alert["job_id"]):
        return f"#{int(alert['job_id'])} {_text(alert['job_name'])}".rstrip()
    return f"schedule {alert['schedule']}" if not missing(alert["schedule"]) else ""


def resolved(alert: dict[str, Any]) -> str:
    """"open", or when and why the alert was resolved."""
    if missing(alert["resolved_at"]):
        return "open"
    why = _text(alert["resolution"])
    return f"{style.when(alert['resolved_at'])}{' — ' + why if why else ''}"


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    """What the table shows, from ``queries.alerts``."""
    alerts = frame.to_dict("records")
    return pd.DataFrame({
        "id": frame["id"].astype(int),
        "opened": [style.when(a["opened_at"]) for a in alerts],
        "rule": [_text(a["rule"]) for a in alerts],
        "kind": [_text(a["kind"]) for a in alerts],
        "job": [subject(a) for a in alerts],
        "status": ["" if missing(a["status"]) else style.badge(a["status"]) for a in alerts],
        "summary": [_text(a["summary"]) for a in alerts],
        "resolved": [resolved(a) for a in alerts],
        "acknowledged": [_text(a["acknowledged_by"]) for a in alerts],
    }, columns=COLUMNS).astype({c: str for c in COLUMNS[1:]})  # as text with no row too


def alert_items(frame: pd.DataFrame) -> str:
    """A job's alerts as a short list for its General tab, open ones first (class
    ``open``), each with its summary; all text escaped."""
    alerts = sorted(frame.to_dict("records"),
                    key=lambda a: (not missing(a["resolved_at"]), -int(a["id"])))
    items = []
    for alert in alerts:
        if missing(alert["resolved_at"]):
            state, css, look = "open", "open", style.OPEN_ALERT_STYLE
            if not missing(alert["acknowledged_by"]):
                state += f", acknowledged by {alert['acknowledged_by']}"
        else:
            state, css, look = f"resolved {resolved(alert)}", "resolved", style.CLOSED_ALERT_STYLE
        items.append(
            f'<li class="{css}" data-alert="{int(alert["id"])}" style="{look}">'
            f'#{int(alert["id"])} '
            f"<b>{html.escape(_text(alert['kind']))}</b> "
            f"({html.escape(_text(alert['rule']))}) — opened "
            f"{style.when(alert['opened_at'])} UTC, {html.escape(state)}"
            f"<br><small>{html.escape(_text(alert['summary']))}</small></li>")
    return f'<div class="jobobs-alerts"><b>Alerts</b><ul>{"".join(items)}</ul></div>'


def notifications_table(frame: pd.DataFrame) -> str:
    """An alert's notifications as an HTML table (all text escaped)."""
    if frame.empty:
        return "<p><i>No notification was sent for it.</i></p>"
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in NOTIFICATION_COLUMNS)
    body = "".join(
        "<tr>" + "".join(
            f"<td>{html.escape(style.when(n[c]) if c.endswith('_at') else _text(n[c]))}</td>"
            for c in NOTIFICATION_COLUMNS) + "</tr>"
        for n in frame.to_dict("records"))
    return f'<table class="jobobs-fields"><tr>{head}</tr>{body}</table>'


class Alerts(pn.viewable.Viewer):
    """Alerts newest first, open ones or all; the selected one's detail and, for
    operators, Acknowledge."""

    open_only = param.Boolean(default=True, doc="List only the alerts not resolved yet.")
    selected = param.Integer(default=None, allow_None=True, doc="The selected alert's id.")

    def __init__(self, client: Any, *, can_act: bool = True, user: str | None = None,
                 **params: Any):
        super().__init__(**params)
        self.client, self.can_act, self.user = client, can_act, user
        self._frame = pd.DataFrame()
        self._shown: tuple | None = None  # the selected alert's row and notifications shown
        self.view = pn.widgets.RadioButtonGroup(options=list(VIEWS), value="Open only",
                                                width=200)
        self.view.param.watch(lambda e: setattr(self, "open_only", VIEWS[e.new]), "value")
        self.table = pn.widgets.Tabulator(
            rows(queries.alerts(client.connection(), limit=0)), show_index=False,
            selectable=1, disabled=True, height=300, sizing_mode="stretch_width",
            formatters={"status": HTML}, titles=TITLES,
            widths={"id": 55, "opened": 150, "rule": 120, "kind": 80, "job": 170,
                    "status": 190, "summary": 420, "resolved": 200, "acknowledged": 150},
            css_classes=["jobobs-alerts-table"])
        self.table.param.watch(self._on_selection, "selection")
        self.empty_state = pn.pane.HTML("", visible=False, width=1000)
        self.title = pn.pane.HTML("<h3>Select an alert in the list</h3>",
                                  sizing_mode="stretch_width")
        self.acknowledge = pn.widgets.Button(label="Acknowledge", width=130, disabled=True,
                                             color="primary", visible=can_act)
        self.acknowledge.on_click(lambda e: self.ack())
        self.message = pn.pane.Alert("", alert_type="info", visible=False,
                                     sizing_mode="stretch_width")
        self.detail = pn.pane.HTML("", sizing_mode="stretch_width")
        self.notifications = pn.pane.HTML("", sizing_mode="stretch_width")
        self.param.watch(lambda e: self.refresh(force=True), "open_only")
        self.param.watch(lambda e: self._show_selected(), "selected")
        self.refresh(force=True)

    # -- reading -------------------------------------------------------------------------

    def alert(self) -> dict[str, Any] | None:
        """The selected alert's row as last read (None without one, or when the list
        no longer holds it)."""
        if self.selected is None or self._frame.empty:
            return None
        found = self._frame[self._frame["id"] == self.selected]
        return None if found.empty else found.iloc[0].to_dict()

    def refresh(self, force: bool = False) -> None:
        """Read the list (open alerts are few; all, the last ``SHOWN``) and patch what
        changed; the selected one's detail is shown again when its row or its
        notifications changed."""
        con = self.client.connection()
        frame = queries.alerts(con, open_only=self.open_only, limit=SHOWN)
        if force or not frame.equals(self._frame):
            self._show(frame)
        self._show_selected(force=force)

    def _show(self, frame: pd.DataFrame) -> None:
        style.refill(self.table, rows(frame), "id", COLUMNS, self.selected)
        self._frame = frame
        self.empty_state.object = self._empty_text()
        self.empty_state.visible = frame.empty
        self.table.visible = not frame.empty

    def _empty_text(self) -> str:
        what = "No open alerts" if self.open_only else "No alerts yet"
        return (f'<div class="jobobs-empty"><h3>{what}</h3><p>The server opens an alert when '
                "one of its rules finds something: a failed or slow run, a stalled one, a "
                "schedule's late or missed run (<code>jobobs serve --alerts rules.toml</code>"
                ").</p></div>")

    def _show_selected(self, force: bool = True) -> None:
        alert = self.alert()
        sent = (queries.notifications(self.client.connection(), alert["id"])
                if alert is not None else None)
        shown = None if alert is None else (
            tuple(None if missing(v) else v for v in alert.values()), len(sent),
            tuple(sent["outcome"]))
        if not force and shown == self._shown:
            return
        self._shown = shown
        self.acknowledge.disabled = (alert is None or not self.can_act
                                     or not missing(alert["acknowledged_by"]))
        if alert is None:
            self.title.object = (
                "<h3>Select an alert in the list</h3>" if self.selected is None else
                f"<h3>Alert #{self.selected} is no longer listed"
                f"{' (resolved: choose All to see it)' if self.open_only else ''}</h3>")
            self.detail.object = self.notifications.object = ""
            return
        state = "open" if missing(alert["resolved_at"]) else "resolved"
        self.title.object = (f"<h3>Alert #{int(alert['id'])} "
                             f"<small>{html.escape(_text(alert['kind']))} · {state}</small></h3>")
        self.detail.object = self._detail(alert)
        self.notifications.object = notifications_table(sent)

    def _detail(self, alert: dict[str, Any]) -> str:
        link = ""
        if not missing(alert["job_id"]):
            job_id = int(alert["job_id"])
            link = (f'<a href="?job={job_id}">job {job_id} '
                    f"{html.escape(_text(alert['job_name']))}</a>")
            if not missing(alert["status"]):
                link += f" {style.badge(alert['status'])}"
        acknowledged = ("" if missing(alert["acknowledged_by"]) else
                        f"{style.when(alert['acknowledged_at'])} UTC by "
                        f"{html.escape(_text(alert['acknowledged_by']))}")
        fields = {
            "rule": html.escape(_text(alert["rule"])),
            "subject": html.escape(_text(alert["subject"])),
            "job": link,
            "schedule": html.escape(_text(alert["schedule"])),
            "run": "" if missing(alert["run"]) else str(int(alert["run"])),
            "opened": f"{style.when(alert['opened_at'])} UTC",
            "resolved": "" if missing(alert["resolved_at"]) else html.escape(resolved(alert)),
            "acknowledged": acknowledged,
        }
        table = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>"
                        for name, value in fields.items() if value)
        detail = _text(alert["detail"])
        return (f"<p><b>{html.escape(_text(alert['summary']))}</b></p>"
                f'<table class="jobobs-fields">{table}</table>'
                + (f'<pre style="{style.PRE_STYLE}">{html.escape(detail)}</pre>'
                   if detail else ""))

    def _on_selection(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.selected = int(self.table.value["id"].iloc[event.new[0]])

    # -- acting ----------------------------------------------------------------------------

    def ack(self) -> None:
        """Acknowledge the selected alert as the signed-in user. Viewers are refused here,
        on the server, whatever the page shows."""
        alert_id = self.selected
        if alert_id is None:
            return
        if not self.can_act:
            self._say("You can look but not act: acknowledging an alert needs the operator "
                      "role.", "warning")
            return
        by = self.user or self.client.actor
        try:
            outcome = self.client.ack(alert_id, by=by)
        except Exception as error:  # a refusal or a lost server: one line, the page goes on
            if not isinstance(error, (JobobsError, TimeoutError)):
                log.warning("jobobs dashboard: acknowledge alert %s: %s", alert_id, error)
            self._say(one_line(error), "danger")
        else:
            if outcome == "acknowledged":
                self._say(f"Alert {alert_id} acknowledged by {by}. It stays open until its "
                          "condition ends.", "success")
            else:  # "ignored: alert 12 was acknowledged by ..."
                why = outcome.removeprefix("ignored: ")
                self._say(f"{why[:1].upper()}{why[1:]}.", "info")
        self.refresh(force=True)

    def _say(self, text: str, kind: str) -> None:
        style.say(self.message, text, kind)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            self.view, self.empty_state, self.table, self.title, self.acknowledge,
            self.message, self.detail, pn.pane.Markdown("#### Notifications"),
            self.notifications, sizing_mode="stretch_width")
