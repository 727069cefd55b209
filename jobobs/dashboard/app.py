"""The dashboard: the job list beside the selected job's detail, an Analytics page, a
Schedules page and an Alerts page, under a header whose badge counts the open alerts.

One ``Dashboard`` per browser session (or notebook cell), over a ``jobobs.Client``. A
periodic callback asks for a cheap change check every second and updates only what
changed. A failing read shows a message in the page; the page and the server carry on.
Once the runtime or the client is closed, the dashboard stops refreshing and says so once;
it stops too on ``stop()``, at the end of a ``with`` block, and when garbage-collected.
"""

from __future__ import annotations

import html
import logging
import weakref
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from jobobs.access import queries
from jobobs.dashboard.alertspage import Alerts
from jobobs.dashboard.analyticspage import Analytics
from jobobs.dashboard.comparepage import Compare
from jobobs.dashboard.detail import JobDetail
from jobobs.dashboard.joblist import JobList
from jobobs.dashboard.schedulespage import Schedules
from jobobs.dashboard.searchpage import Search
from jobobs.dashboard.style import CSS, job_number
from jobobs.model.errors import RuntimeClosed, one_line

log = logging.getLogger("jobobs.dashboard")
OPERATOR, VIEWER = "operator", "viewer"
# The pages after Jobs, built when first opened: their tab, class and attribute.
PAGES = {1: ("Analytics", Analytics, "analytics"), 2: ("Schedules", Schedules, "schedules"),
         3: ("Alerts", Alerts, "alerts"), 4: ("Compare", Compare, "compare"),
         5: ("Search", Search, "search")}
ALERTS = 3
COMPARE = 4
SEARCH = 5


def bell(open_alerts: int, new: int) -> tuple[str, str]:
    """The header's alerts badge: its text and color, from ``queries.alert_counts``."""
    if not open_alerts:
        return "no open alerts", "light"
    text = f"🔔 {open_alerts} open alert{'s' if open_alerts != 1 else ''}"
    return (f"{text} ({new} new)", "danger") if new else (text, "warning")


class Dashboard(pn.viewable.Viewer):
    """Live job monitor: list, General / Journal / Rejects, controls, analytics, schedules
    and alerts."""

    period = param.Integer(default=1000, bounds=(200, None), doc="Refresh period, in ms.")

    def __init__(self, client: Any, *, roles: dict[str, str] | None = None,
                 user: str | None = None, job: int | None = None,
                 compare: tuple[int, int] | None = None, **params: Any):
        super().__init__(**params)
        self.client = client
        self.user = user or pn.state.user or client.actor
        # Without authentication everyone who reaches the page may act; with it, only
        # the users given the operator role.
        self.can_act = roles is None or roles.get(self.user) == OPERATOR
        self.signed_in = roles is not None
        self.error = pn.pane.Alert("", alert_type="danger", visible=False,
                                   sizing_mode="stretch_width")
        self.jobs = JobList(client)
        self._detail: JobDetail | None = None  # built when a job is first selected
        self.analytics: Analytics | None = None  # pages built when first opened
        self.schedules: Schedules | None = None
        self.alerts: Alerts | None = None
        self.compare: Compare | None = None
        self.search: Search | None = None
        self._counts: tuple[int, int] | None = None  # the open alerts the badge shows
        self.bell = pn.widgets.Button(label=bell(0, 0)[0], color="light", width=230,
                                      margin=(10, 10), css_classes=["jobobs-bell"])
        self.bell.on_click(lambda e: setattr(self.pages, "active", ALERTS))
        self.jobs.param.watch(self._select, "selected")
        # the detail is rendered once a job is selected: a lighter first page
        self.side = pn.Column(pn.pane.HTML("<h3>Select a job in the list</h3>"), width=620)
        self.pages = pn.Tabs(("Jobs", pn.Row(self.jobs, self.side)),
                             *((title, pn.Column()) for title, _, _ in PAGES.values()),
                             sizing_mode="stretch_width")
        self.pages.param.watch(self._page_changed, "active")
        self.callback: pn.io.PeriodicCallback | None = None  # while it refreshes
        self._finalizer: weakref.finalize | None = None  # stops the callback on collection
        self.ended: str | None = None  # why it stopped for good: "the runtime is closed"
        self._count_alerts()
        if job is not None:  # a link to one job (?job=42): its detail at once
            self.jobs.selected = job
        if compare is not None:  # a link to two runs (?compare=41,42): side by side
            self._page(COMPARE).show(*compare)
            self.pages.active = COMPARE

    def refresh(self) -> None:
        """One tick: each visible part reads what changed. Over a closed runtime or client
        the dashboard stops instead (``ended`` says why)."""
        if self.client.closed:
            self._end("the client is closed")
            return
        try:
            self._count_alerts()
            if self.pages.active == 0:
                self.jobs.refresh()
                if self._detail is not None:
                    self._detail.refresh()
            else:
                self._page(self.pages.active).refresh()
        except RuntimeClosed:  # for good: a runtime does not open again
            self._end("the runtime is closed")
        except Exception as error:  # shown in the page; the next tick tries again
            log.warning("jobobs dashboard: a refresh failed: %s", error)
            self.error.object = (f"The dashboard cannot read the job history right now: "
                                 f"{one_line(error)}. It keeps trying.")
            self.error.visible = True
        else:
            if self.error.visible:
                self.error.visible = False

    def _page(self, index: int) -> Analytics | Schedules | Alerts:
        """The Analytics, Schedules or Alerts page, built when first looked at."""
        title, page, attribute = PAGES[index]
        if getattr(self, attribute) is None:
            setattr(self, attribute, page(self.client, can_act=self.can_act, user=self.user))
            if index == SEARCH:  # a line clicked opens its job
                self.search.param.watch(self._open_job, "chosen")
            self.pages[index] = (title, getattr(self, attribute))
        return getattr(self, attribute)

    def _count_alerts(self) -> None:
        """The badge, on every tick whatever the page (one count)."""
        counts = tuple(queries.alert_counts(self.client.connection()))
        if counts != self._counts:
            self.bell.label, self.bell.color = bell(*counts)
            self._counts = counts

    @property
    def detail(self) -> JobDetail:
        if self._detail is None:
            self._detail = JobDetail(self.client, can_act=self.can_act, user=self.user)
        return self._detail

    def _select(self, event: param.parameterized.Event) -> None:
        if self.side.objects[0] is not self.detail:
            self.side.objects = [self.detail]
        self.detail.job_id = event.new

    def _page_changed(self, event: param.parameterized.Event) -> None:
        if event.new == COMPARE:  # by default, the selected job's last two runs
            self._page(COMPARE).suggest(self.jobs.selected)
        self.refresh()

    def _open_job(self, event: param.parameterized.Event) -> None:
        """The Jobs page with this job selected (a search's line clicked)."""
        if event.new is not None:
            self.pages.active = 0
            self.jobs.selected = event.new

    def _end(self, why: str) -> None:
        """Stop for good, saying so once: in the log and in the page."""
        self.stop()
        if self.ended is None:
            self.ended = why
            log.warning("jobobs dashboard: stopped: %s", why)
            self.error.object = (f"The dashboard cannot read the job history: {why}. "
                                 "It stopped refreshing.")
            self.error.visible = True

    def start(self) -> None:
        """Refresh every ``period`` ms while the session lives, until ``stop()``."""
        if self.callback is None and self.ended is None:
            self.callback = callback = pn.state.add_periodic_callback(
                refresher(self), period=self.period)
            self._finalizer = weakref.finalize(self, callback.stop)

    def stop(self) -> None:
        """Stop refreshing (``start()`` begins again, unless the runtime is closed)."""
        if self.callback is not None:
            self.callback.stop()
            self.callback = None
            self._finalizer.detach()

    def __enter__(self) -> Dashboard:
        """Refreshing for the ``with`` block."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __panel__(self) -> pn.viewable.Viewable:
        who = (f"signed in as <b>{html.escape(str(self.user))}</b> "
               f"({OPERATOR if self.can_act else VIEWER})")
        if self.signed_in:
            who += " · <a href='logout'>sign out</a>"
        header = pn.Row(pn.pane.HTML("<h2 style='margin:0'>jobobs</h2>"),
                        pn.pane.HTML(f"<small>{self.client.where} · {who}</small>",
                                     margin=(14, 10)), self.bell, sizing_mode="stretch_width")
        return pn.Column(pn.pane.HTML(f"<style>{CSS}</style>", height=0, margin=0), header,
                         self.error, self.pages, sizing_mode="stretch_width")


def refresher(dashboard: Dashboard) -> Callable[[], None]:
    """What the periodic callback runs: the dashboard's ``refresh``, reached through a weak
    reference, so that the callback does not keep alive a dashboard nobody holds."""
    reference = weakref.ref(dashboard)

    def refresh() -> None:
        alive = reference()
        if alive is not None:
            alive.refresh()

    return refresh


def linked_job() -> int | None:
    """The job a link names (``/?job=42``, as a notification's link does); None without
    one, or when it is not a job number (the list is shown as usual)."""
    given = (pn.state.session_args or {}).get("job")
    text = given[0].decode("ascii", "replace").strip() if given else ""
    return job_number(text)


def linked_pair() -> tuple[int, int] | None:
    """The two runs a link names (``/?compare=41,42``); None without them, or when they
    are not two job numbers."""
    given = (pn.state.session_args or {}).get("compare")
    text = given[0].decode("ascii", "replace") if given else ""
    numbers = [job_number(part) for part in text.split(",")]
    if len(numbers) != 2 or None in numbers:
        return None
    return numbers[0], numbers[1]


def app(client: Any, *, roles: dict[str, str] | None = None,
        user: str | None = None) -> pn.viewable.Viewable:
    """A served session's dashboard, refreshing itself; ``user`` is who signed in."""
    try:
        dashboard = Dashboard(client, roles=roles, user=user, job=linked_job(),
                              compare=linked_pair())
    except Exception as error:  # a page that says what is wrong, not a blank one
        log.exception("jobobs dashboard: cannot start a session")
        return pn.pane.Alert(f"The dashboard cannot read the job history: "
                             f"{one_line(error)}", alert_type="danger")
    pn.state.onload(dashboard.start)  # patches only once the page has built its tables
    return dashboard
