"""The Analytics page: how runs went over a time window, across jobs.

Figures are HoloViews DynamicMaps fed by ``Pipe`` streams: a refresh sends new data to
the pipes whose data changed, and the figures update in place. An operator may retry the
failed jobs of one error group from the failures list.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import DatetimeTickFormatter, NumeralTickFormatter

from jobobs.access import analytics, queries
from jobobs.dashboard.style import LOOK, message_pane, say
from jobobs.model.errors import JobobsError, one_line
from jobobs.model.states import LABELS

log = logging.getLogger("jobobs.dashboard")

WINDOWS = {"last hour": (timedelta(hours=1), "minute"),
           "last 24 hours": (timedelta(days=1), "hour"),
           "last 7 days": (timedelta(days=7), "day"),
           "last 30 days": (timedelta(days=30), "day"),
           "all time": (None, "week")}
ALL = "all job names"
EVERY = 10.0
COLORS = {LABELS[status]: color for status, (_, color) in LOOK.items()}
# framewise: each update sets the axes' ranges anew, so new data is never out of sight
FIGURE = {"height": 260, "responsive": True, "tools": ["hover"], "toolbar": "above",
          "framewise": True}
WHOLE = {"type": "money", "thousand": ",", "decimal": ".", "precision": 0}
TENTHS = {"type": "money", "thousand": ",", "decimal": ".", "precision": 1}
TABLE_NUMBERS = {"runs": WHOLE, "failed": WHOLE, "processed": WHOLE, "failures": WHOLE,
                 "job_names": WHOLE, "failure_rate": TENTHS, "p50_s": TENTHS,
                 "p95_s": TENTHS, "max_s": TENTHS, "duration_s": TENTHS, "usual_s": TENTHS,
                 "times_usual": TENTHS}
# the tables' headers in words, with their units (durations stay numbers, to sort by)
TITLES = {"id": "#", "name": "Job name", "runs": "Runs", "failed": "Failed",
          "failure_rate": "Failed %", "p50_s": "p50 (s)", "p95_s": "p95 (s)",
          "max_s": "Max (s)", "processed": "Processed", "error": "Error",
          "failures": "Failures", "job_names": "Job names", "last_at": "Last (UTC)",
          "started_at": "Started (UTC)", "duration_s": "Duration (s)", "usual_s": "Usual (s)",
          "times_usual": "Times usual"}


# Axes as people read them: times as dates and clock times (never "0ms" or an epoch),
# durations in s, min or h (``_unit``), counts whole with thousands separators (never
# 6.2e+6). Each figure gets its own formatters: a Bokeh model belongs to one document.
def _when() -> DatetimeTickFormatter:
    clock = {key: "%H:%M:%S" for key in ("microseconds", "milliseconds", "seconds", "minsec")}
    day = {key: "%b %d" for key in (*clock, "minutes", "hourmin", "hours")}
    return DatetimeTickFormatter(**clock, minutes="%H:%M", hourmin="%H:%M", hours="%H:%M",
                                 days="%b %d", months="%b %Y", years="%Y",
                                 context=DatetimeTickFormatter(**day, days="%Y", months="",
                                                               years=""))


def _count(pattern: str = "0,0") -> NumeralTickFormatter:
    return NumeralTickFormatter(format=pattern)


def _unit(seconds: pd.Series) -> tuple[str, float]:
    """The unit durations up to ``seconds``' largest read best in, and its length in s."""
    longest = seconds.max() if len(seconds) else 0
    return ("h", 3600.0) if longest >= 3 * 3600 else ("min", 60.0) if longest >= 180 else (
        "s", 1.0)


def _histogram(data: pd.DataFrame) -> hv.Histogram:
    unit, length = _unit(data["duration_s"].dropna())
    values = data["duration_s"].dropna().to_numpy(dtype=float) / length
    counts, edges = np.histogram(values, bins=30) if len(values) else ([], [0, 1])
    return hv.Histogram((edges, counts), kdims=f"Duration ({unit})", vdims="Runs").opts(
        title="Duration distribution", color="#0891b2", xformatter=_count("0,0.[0]"),
        yformatter=_count(), **FIGURE)


def _trend(data: pd.DataFrame) -> hv.Overlay:
    unit, length = _unit(data["p95_s"].dropna())
    data = data.assign(p50=data["p50_s"] / length, p95=data["p95_s"] / length)
    p50 = hv.Curve(data, "bucket", "p50", label="p50").opts(color="#2563eb")
    p95 = hv.Curve(data, "bucket", "p95", label="p95").opts(color="#dc2626")
    return (p50 * p95).opts(hv.opts.Curve(xlabel="", ylabel=f"Duration ({unit})",
                                          xformatter=_when(), yformatter=_count("0,0.[0]"),
                                          **FIGURE),
                            hv.opts.Overlay(title="Duration trend", legend_position="top_left",
                                            framewise=True))


def _throughput(data: pd.DataFrame) -> hv.Curve:
    return hv.Curve(data, "bucket", "processed").opts(
        title="Throughput: rows processed", interpolation="steps-mid", xlabel="",
        ylabel="Rows", color="#15803d", xformatter=_when(), yformatter=_count(), **FIGURE)


def _statuses(data: pd.DataFrame) -> hv.Bars:
    return hv.Bars(data, ["when", "label"], "jobs").opts(
        title="Jobs by status over time", stacked=True, xlabel="", ylabel="Jobs",
        xrotation=45, yformatter=_count(), cmap=COLORS, legend_position="right", **FIGURE)


def _bars(title: str, key: str) -> Any:
    def plot(data: pd.DataFrame) -> hv.Bars:
        return hv.Bars(data, key, "rejects").opts(title=title, invert_axes=True,
                                                  color="#b45309", xlabel="",
                                                  xformatter=_count(), **FIGURE)
    return plot


def _gantt(data: pd.DataFrame) -> hv.Segments:
    return hv.Segments(data, ["start", "name", "end", "name"], ["label", "id"]).opts(
        title="Timeline of runs", color=hv.dim("label").categorize(COLORS, default="#6b7280"),
        line_width=8, line_cap="round", xlabel="", ylabel="", xformatter=_when(),
        **FIGURE)  # round: a run of seconds still shows on a day's axis


def _table(frame: pd.DataFrame, **options: Any) -> pn.widgets.Tabulator:
    """A read-only table of ``frame`` with its numbers formatted (``TABLE_NUMBERS``) and
    its headers in words (``TITLES``), numbers to the right."""
    numbers = [key for key in frame.columns if key in TABLE_NUMBERS]
    return pn.widgets.Tabulator(
        frame, show_index=False, disabled=True, height=220, sizing_mode="stretch_width",
        formatters={key: TABLE_NUMBERS[key] for key in numbers},
        text_align=dict.fromkeys(numbers, "right"),
        titles={key: TITLES[key] for key in frame.columns if key in TITLES}, **options)


class Analytics(pn.viewable.Viewer):
    """Durations and trends, throughput, statuses, failures, rejects, a timeline and the
    runs slower than usual, over a time window; operators (``can_act``) retry the failed
    jobs of a selected error group."""

    window = param.Selector(default="last 7 days", objects=list(WINDOWS))
    job_name = param.Selector(default=ALL, objects=[ALL])

    def __init__(self, client: Any, *, can_act: bool = True, user: str | None = None,
                 **params: Any):
        super().__init__(**params)
        self.client, self.can_act, self.user = client, can_act, user
        self._version: tuple | None = None
        self._read_at = 0.0
        self._data: dict[str, pd.DataFrame] = {}
        self.pipes = {key: hv.streams.Pipe(data=frame) for key, frame in self._read().items()
                      if key in ("durations", "trend", "throughput", "statuses", "reasons",
                                 "columns", "timeline")}
        self.figures = {
            "durations": hv.DynamicMap(_histogram, streams=[self.pipes["durations"]]),
            "trend": hv.DynamicMap(_trend, streams=[self.pipes["trend"]]),
            "throughput": hv.DynamicMap(_throughput, streams=[self.pipes["throughput"]]),
            "statuses": hv.DynamicMap(_statuses, streams=[self.pipes["statuses"]]),
            "reasons": hv.DynamicMap(_bars("Rejects by reason", "reason"),
                                     streams=[self.pipes["reasons"]]),
            "columns": hv.DynamicMap(_bars("Rejects by column", "column_name"),
                                     streams=[self.pipes["columns"]]),
            "timeline": hv.DynamicMap(_gantt, streams=[self.pipes["timeline"]]),
        }
        self.summary = _table(self._data["summary"])
        self.failures = _table(self._data["failures"], selectable=1,
                               row_content=self._failure_detail,
                               hidden_columns=["error_type", "last_job_id", "example"])
        self.retry = pn.widgets.Button(label="Retry these", color="primary", width=120,
                                       disabled=True, description="Retry every failed job "
                                       "of the selected error group, from its last checkpoint")
        self.retry.on_click(lambda e: self.retry_group())
        self.retry_message = pn.pane.Alert("", alert_type="info", visible=False,
                                           sizing_mode="stretch_width")
        self._group: str | None = None  # the selected error group, kept through refreshes
        self.failures.param.watch(self._group_selected, "selection")
        self.slow = _table(self._data["slow"])
        self.window_choice = pn.widgets.Select.from_param(self.param.window, label="Window",
                                                          width=160)
        self.name_choice = pn.widgets.Select.from_param(self.param.job_name, label="Job name",
                                                        width=220)
        self.param.watch(lambda e: self.refresh(force=True), ["window", "job_name"])

    def _failure_detail(self, row: pd.Series) -> pn.pane.HTML:
        """The traceback of the group's newest failure, shown when its row is expanded."""
        text = analytics.failure_detail(self.client.connection(), int(row["last_job_id"]))
        return message_pane(f"Job {row['last_job_id']}, the newest of {row['failures']}:\n"
                            f"{text or row['example']}")

    def group(self) -> str | None:
        """The selected error group's error (None without one)."""
        return self._group

    def _group_selected(self, event: param.parameterized.Event) -> None:
        frame = self.failures.value
        self._group = (str(frame["error"].iloc[event.new[0]])
                       if event.new and event.new[0] < len(frame) else None)
        self.retry.disabled = not self.can_act or self._group is None

    def _reselect(self) -> None:
        """The selected group's row again once the list is read anew (none if it left)."""
        errors = self.failures.value["error"].tolist()
        wanted = [errors.index(self._group)] if self._group in errors else []
        if self.failures.selection != wanted:
            self.failures.selection = wanted
        elif not wanted:
            self._group, self.retry.disabled = None, True

    def retry_group(self) -> None:
        """Retry every failed job of the selected group, in the window the list shows, as
        the signed-in user; say how many."""
        group = self.group()
        if group is None:
            return
        if not self.can_act:
            self._say("You can look but not act: retry needs the operator role.", "warning")
            return
        try:
            ids = self.client.retry_failed(group, since=self._span()[0], exact=True,
                                           by=self.user)
        except Exception as error:  # a refusal or a lost server: one line, the page goes on
            if not isinstance(error, (JobobsError, TimeoutError)):
                log.warning("jobobs dashboard: retry %r: %s", group, error)
            self._say(one_line(error), "danger")
        else:
            listed = ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
            self._say(f"Retried {len(ids)} failed job{'s' if len(ids) != 1 else ''} of "
                      f"{group}: {listed}.", "success")
        self.refresh(force=True)

    def _say(self, text: str, kind: str) -> None:
        say(self.retry_message, text, kind)

    def _span(self) -> tuple[datetime | None, str]:
        span, bucket = WINDOWS[self.window]
        since = None if span is None else datetime.now(UTC).replace(tzinfo=None) - span
        return since, bucket

    def _read(self) -> dict[str, pd.DataFrame]:
        con = self.client.connection()
        since, bucket = self._span()
        name = None if self.job_name == ALL else self.job_name
        trend = analytics.duration_trend(con, since, name=name, bucket=bucket)
        trend = trend.groupby("bucket", as_index=False).agg(
            p50_s=("p50_s", "median"), p95_s=("p95_s", "max")) if len(trend) else trend
        statuses = analytics.status_over_time(con, since, bucket=bucket)
        statuses["when"] = statuses["bucket"].astype(str).str[:16]
        self._data = {
            "durations": analytics.durations(con, since, name=name, limit=50_000),
            "trend": trend[["bucket", "p50_s", "p95_s"]],
            "throughput": analytics.throughput(con, since, bucket=bucket),
            "statuses": statuses[["when", "label", "jobs"]],
            "reasons": analytics.rejects_by(con, since, by="reason"),
            "columns": analytics.rejects_by(con, since, by="column_name"),
            "timeline": analytics.timeline(con, since, limit=300),
            "summary": analytics.duration_summary(con, since).assign(  # as a percentage
                failure_rate=lambda frame: frame["failure_rate"] * 100),
            "failures": analytics.failures(con, since),
            "slow": analytics.slow_runs(con, since),
        }
        self.param.job_name.objects = [ALL, *analytics.job_names(con, since)]
        return self._data

    def refresh(self, force: bool = False) -> None:
        """Read again when the history changed (at most every ``EVERY`` seconds: these
        questions span many runs); send only the data that differs."""
        if not force and time.monotonic() - self._read_at < EVERY:
            return
        version = queries.version(self.client.connection())
        if version == self._version and not force:
            return
        before = dict(self._data)
        data = self._read()
        self._version, self._read_at = version, time.monotonic()
        for key, pipe in self.pipes.items():
            if force or not data[key].equals(before.get(key)):
                pipe.send(data[key])
        for key, table in (("summary", self.summary), ("failures", self.failures),
                           ("slow", self.slow)):
            if force or not data[key].equals(before.get(key)):
                table.value = data[key]
        self._reselect()

    def __panel__(self) -> pn.viewable.Viewable:
        figure = {"sizing_mode": "stretch_width"}
        return pn.Column(
            pn.Row(self.window_choice, self.name_choice),
            pn.Row(pn.pane.HoloViews(self.figures["durations"], **figure),
                   pn.pane.HoloViews(self.figures["trend"], **figure)),
            pn.Row(pn.pane.HoloViews(self.figures["throughput"], **figure),
                   pn.pane.HoloViews(self.figures["statuses"], **figure)),
            pn.pane.HoloViews(self.figures["timeline"], **figure),
            pn.Row(pn.pane.HoloViews(self.figures["reasons"], **figure),
                   pn.pane.HoloViews(self.figures["columns"], **figure)),
            "#### Per job name", self.summary,
            "#### Failures by error", self.failures,
            pn.Row(self.retry, self.retry_message, sizing_mode="stretch_width"),
            "#### Slower than usual (more than twice the median of the job's last 20 runs)",
            self.slow, sizing_mode="stretch_width",
        )
