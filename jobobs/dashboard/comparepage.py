"""The Compare page: two runs side by side (``comparing.compare``), the fields, reject
reasons, errors and journal lines that differ marked ≠.

The two job numbers are typed in its inputs; by default they are the last two runs of
the job selected in the list (or of the newest job), and a link ``?compare=41,42`` opens
the page on those two. An unknown number is one line in the page.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import panel as pn
import param

from jobobs.access import comparing
from jobobs.dashboard import style
from jobobs.model import humane
from jobobs.model.errors import JobobsError, one_line

log = logging.getLogger("jobobs.dashboard")
DIFFERS = "≠"
# Inline, as a status badge's color is: a pane's shadow root does not see the page's CSS.
DIFFERS_STYLE = "background:#fef3c7;font-weight:600"
CELL = "padding:2px 14px 2px 4px;vertical-align:top;text-align:left"
GROUP_STYLE = "color:#6b7280;padding-top:8px"
LINE_STYLE = "white-space:pre-wrap;overflow-wrap:anywhere;font-family:monospace;font-size:12px"
GROUP_TITLES = {"job": "Job", "spec": "Spec", "counters": "Counters",
                "durations": "Durations", "times": "Times (UTC)"}


def _cell(text: str, extra: str = "") -> str:
    return f'<td style="{CELL};{extra}">{text}</td>'


def _row(cells: list[str], differs: bool, kind: str, highlight: bool | None = None) -> str:
    """A table row; a differing one is marked ≠ and classed ``jobobs-differs``, and
    highlighted (unless ``highlight`` says otherwise)."""
    classes = f"jobobs-{kind}" + (" jobobs-differs" if differs else "")
    look = f' style="{DIFFERS_STYLE}"' if (differs if highlight is None else highlight) else ""
    return (f'<tr class="{classes}"{look}>' + _cell(DIFFERS if differs else "")
            + "".join(cells) + "</tr>")


def _head(*titles: str) -> str:
    return "<tr>" + _cell("") + "".join(
        f'<th style="{CELL}">{html.escape(title)}</th>' for title in titles) + "</tr>"


def _value(field: str, value: Any) -> str:
    if field == "status" and not humane.missing(value):
        return style.badge(value)
    return html.escape(comparing.shown(field, value, local=False))


def fields_table(result: dict[str, Any]) -> str:
    """The fields side by side, grouped, differing rows marked."""
    a, b = f"#{result['a']}", f"#{result['b']}"
    rows, group = [_head("", a, b)], None
    for field in result["fields"]:
        if field["group"] != group:
            group = field["group"]
            rows.append(f'<tr><td></td><td colspan="3" style="{CELL};{GROUP_STYLE}">'
                        f"{GROUP_TITLES[group]}</td></tr>")
        rows.append(_row([_cell(html.escape(field["field"])),
                          _cell(_value(field["field"], field["a"])),
                          _cell(_value(field["field"], field["b"]))],
                         field["differs"], "field"))
    return f'<table class="jobobs-compare-fields">{"".join(rows)}</table>'


def rejects_table(result: dict[str, Any]) -> str:
    if not result["rejects"]:
        return "<p>No rejects in either run.</p>"
    rows = [_head("Reason", f"#{result['a']}", f"#{result['b']}")]
    rows += [_row([_cell(html.escape(str(reason["reason"]))),
                   _cell(humane.count(reason["a"])), _cell(humane.count(reason["b"]))],
                  reason["differs"], "reason")
             for reason in result["rejects"]]
    return f'<table class="jobobs-compare-rejects">{"".join(rows)}</table>'


def errors_table(result: dict[str, Any]) -> str:
    errors = result["errors"]
    rows = [_row([_cell(f"#{result[side]}"),
                  _cell(html.escape(errors[side] or "(none)"), LINE_STYLE)],
                 errors["differs"], "error")
            for side in ("a", "b")]
    return f'<table class="jobobs-compare-errors">{"".join(rows)}</table>'


def journal_part(result: dict[str, Any]) -> str:
    """Where the journals first differ, with the lines around it from each."""
    journal, a, b = result["journal"], f"#{result['a']}", f"#{result['b']}"
    counts = (f"{a} has {humane.count(journal['lines_a'])} lines, "
              f"{b} {humane.count(journal['lines_b'])}")
    if journal["first"] is None:
        return f'<p class="jobobs-journal-same">The journals are the same ({counts}).</p>'
    rows = [_head("Line", a, b)]
    for line in journal["rows"]:
        rows.append(_row(
            [_cell(str(line["seq"])),
             _cell(html.escape(line["a"] if line["a"] is not None else ""), LINE_STYLE),
             _cell(html.escape(line["b"] if line["b"] is not None else ""), LINE_STYLE)],
            line["differs"], "line", highlight=line["seq"] == journal["first"]))
    return (f'<p class="jobobs-journal-first">First difference at line {journal["first"]} '
            f'({counts}).</p><table class="jobobs-compare-journal">{"".join(rows)}</table>')


def page_html(result: dict[str, Any]) -> str:
    """The whole comparison as the page shows it."""
    (name_a, name_b), a, b = result["names"], result["a"], result["b"]
    if result["same_name"]:
        title = f"<h3>Runs #{a} and #{b} of {html.escape(str(name_a))}</h3>"
    else:
        title = (f'<h3>Runs #{a} and #{b}</h3><p class="jobobs-names-differ" '
                 f'style="color:#b91c1c;font-weight:600">#{a} ({html.escape(str(name_a))}) '
                 f"and #{b} ({html.escape(str(name_b))}) are runs of different jobs.</p>")
    return (title + fields_table(result) + "<h4>Reject reasons</h4>" + rejects_table(result)
            + "<h4>Errors</h4>" + errors_table(result) + "<h4>Journal</h4>"
            + journal_part(result))


class Compare(pn.viewable.Viewer):
    """Two runs side by side; ``pair`` is the two job numbers shown (None: none yet)."""

    pair = param.Tuple(default=None, allow_None=True, length=2, doc="The two runs shown.")

    def __init__(self, client: Any, *, can_act: bool = True, user: str | None = None,
                 **params: Any):
        super().__init__(**params)
        self.client, self.can_act, self.user = client, can_act, user
        self.first = pn.widgets.TextInput(label="Run A (job #)", width=140,
                                          css_classes=["jobobs-compare-a"])
        self.second = pn.widgets.TextInput(label="Run B (job #)", width=140,
                                           css_classes=["jobobs-compare-b"])
        self.button = pn.widgets.Button(label="Compare", color="primary", width=110,
                                        margin=(27, 10, 10, 10))
        self.button.on_click(lambda e: self.choose())
        for given in (self.first, self.second):
            given.param.watch(lambda e: self.choose(), "enter_pressed")
        self.message = pn.pane.Alert("", alert_type="warning", visible=False,
                                     sizing_mode="stretch_width")
        self.body = pn.pane.HTML(
            '<div class="jobobs-empty"><h3>Choose two runs</h3><p>Type two job numbers, or '
            "select a job in the Jobs list: its last two runs are compared.</p></div>",
            sizing_mode="stretch_width", css_classes=["jobobs-compare"])
        self._seen: Any = None  # the two jobs' rows as last shown
        self.param.watch(lambda e: self.refresh(force=True), "pair")

    def suggest(self, job_id: int | None) -> None:
        """With no runs chosen yet: the last two runs of ``job_id``'s job (else of the
        newest job)."""
        if self.pair is not None or self.first.value or self.second.value:
            return
        con = self.client.connection()
        if job_id is None:
            newest = con.execute("SELECT max(id) FROM jobs").fetchone()[0]
            job_id = None if newest is None else int(newest)
        two = None if job_id is None else comparing.last_two(con, job_id)
        if two is not None:
            self.show(*two)

    def show(self, a: int, b: int) -> None:
        """Compare runs ``a`` and ``b`` (their numbers in the inputs too)."""
        self.first.value, self.second.value = str(a), str(b)
        self.pair = (int(a), int(b))

    def choose(self) -> None:
        """The runs typed in the inputs."""
        a, b = style.job_number(self.first.value), style.job_number(self.second.value)
        if a is None or b is None:
            style.say(self.message, "Type two job numbers to compare.", "warning")
            return
        if self.pair == (a, b):
            self.refresh(force=True)
        else:
            self.pair = (a, b)

    def refresh(self, force: bool = False) -> None:
        """Compare again when either run changed (or ``force``)."""
        if self.pair is None:
            return
        con = self.client.connection()
        seen = con.execute(
            "SELECT id, updated_at, status FROM jobs WHERE id IN (?, ?) ORDER BY id",
            list(self.pair)).fetchall()
        if not force and seen == self._seen:
            return
        self._seen = seen
        try:
            shown = page_html(comparing.compare(con, *self.pair))
        except JobobsError as error:  # an unknown number: one line, the page carries on
            style.say(self.message, one_line(error), "warning")
            self.body.object = ""
            return
        except Exception as error:  # any other failure: one line too, not the session's end
            log.exception("comparing #%s and #%s failed", *self.pair)
            style.say(self.message, one_line(error), "danger")
            self.body.object = ""
            return
        self.message.visible = False
        self.body.object = shown

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self.first, self.second, self.button), self.message,
                         self.body, sizing_mode="stretch_width")
