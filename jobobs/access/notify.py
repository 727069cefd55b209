"""Alert notifications, delivered by apprise: e-mail, Slack, Teams, Discord, JSON webhooks
and the rest of apprise's services, each named by one URL
(https://github.com/caronc/apprise/wiki).

``message`` makes an alert's title and body; ``Notifier`` delivers them on a thread of its
own, so neither a job nor the server ever waits for a mail server or a webhook::

    notifier = Notifier(record, dashboard_url="http://jobs.example.com:5006/")
    notifier.send(alert, "opened", ["mailto://ops@example.com", "slack://T1/B2/C3"])
    ...
    notifier.close(timeout=10)

Each (alert, event, target) is one delivery: tried up to ``tries`` times, waiting
``first_wait`` seconds, then ``backoff`` times longer each time (at most ``longest``), and
its outcome handed to ``record`` as one row of the ``notifications`` table
(``jobobs.db.schema.NOTIFICATIONS_DDL``): ``sent``, ``failed`` (with its last error) or
``dropped`` (the queue was full, or the notifier closed before trying it). ``record`` is
called on the notifier's thread only (the outcomes of what was never tried are recorded
once the delivery under way ends). A failed delivery, a broken target, a ``record`` that
raises: each is logged in one line and changes nothing else.

Targets are checked before the server starts (``check_targets``): a URL apprise does not
understand is refused, and so is one that would stay on this machine or read its files
(``LOCAL_SCHEMES``, ``FILE_OPTIONS``); ``send`` checks again (a refused target is recorded
failed, never tried). A target is stored and logged only as ``safe(url)``: apprise's privacy
URL (passwords, tokens and secret webhook paths masked) with the values of the headers,
query and payload fields a generic webhook adds masked too. apprise keeps nothing on disk
here (its persistent storage is off).

Security: a notification carries the job's name, its status, its error and the alert's
detail (reject reasons, sample lines of the input) to a third party: the mail server, the
chat service, the webhook's owner. Choose targets that may see them. The body never holds
the server's token or the database's path: the server passes them as ``hide``, and any
text that contains them (a job's error may name the database file) shows ``[hidden]``.
``mailto://`` is plain SMTP, its password in clear: across a network, use ``mailtos://``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import apprise

from jobobs.db.store import ts
from jobobs.model.errors import JobobsError, one_line
from jobobs.model.states import LABELS, Status

log = logging.getLogger(__name__)

EVENTS = ("opened", "resolved")
OUTCOMES = ("sent", "failed", "dropped")

# Targets that show only on this machine: desktop pop-ups (they reach the desktop session of
# the server's user, if it has one, and load GUI bindings into the server), a USB light, and
# macOS' notifier, which runs a command (terminal-notifier). syslog stays allowed: the
# machine's log is where a daemon's alerts are usually collected, and it reads and runs
# nothing.
LOCAL_SCHEMES = frozenset({"windows", "macosx", "dbus", "kde", "qt", "glib", "gio", "gnome",
                           "blink1"})
# Query options with which apprise reads a file of this machine (and may send what it read):
# key files (FCM, Vapid), Vapid's subscriptions, e-mail's PGP keys, and the message template
# of Discord, Guilded, Slack, Telegram and Workflows (``template`` elsewhere names a template
# kept by the service, as SendGrid's: allowed).
FILE_OPTIONS = frozenset({"keyfile", "subfile", "pgppub", "pgpprv"})
TEMPLATE_FILE_SCHEMES = frozenset({"discord", "guilded", "slack", "tgram", "workflow",
                                   "workflows"})
# a generic webhook's own headers (+), query arguments (-) and payload fields (:), which
# apprise cannot tell from secrets (an Authorization header is the usual one)
PASSED_THROUGH = ("+", "-", ":")
MASK = "****"
HIDDEN = "[hidden]"
MOST_ERROR = 1_000     # characters of the job's error a message carries
MOST_DETAIL = 2_000    # and of the alert's detail
MOST_LAST_ERROR = 500  # characters of a delivery's last error recorded
MOST_UNSENT = 10_000   # outcomes of deliveries never tried kept for the thread to record


def label(status: str | None) -> str:
    try:
        return LABELS[Status(status)]
    except ValueError:
        return str(status)


def cut(text: str, most: int) -> str:
    if len(text) <= most:
        return text
    return text[:most].rstrip() + f"\n… ({len(text) - most} more characters)"


def when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def job_link(dashboard_url: str, job_id: Any) -> str:
    joiner = "&" if "?" in dashboard_url else "?"
    return f"{dashboard_url}{joiner}job={job_id}"


def message(alert: dict[str, Any], event: str, dashboard_url: str, *,
            hide: Sequence[str] = ()) -> tuple[str, str]:
    """An alert's ``(title, body)`` for ``event`` ("opened" or "resolved"), in plain text.

    The title names the rule, the job (name and id) and its status; the body holds the
    summary, the error, the detail (each cut to a sane length), the times and the link to
    the job in the dashboard (to the dashboard, for a schedule's alert without a job). Each
    string of ``hide`` found in them shows ``[hidden]``."""
    if event not in EVENTS:
        raise JobobsError(f"a notification's event is one of {', '.join(EVENTS)}, "
                          f"not {event!r}")
    job_id = alert.get("job_id")
    if job_id is not None:
        job = f"{alert.get('job_name')} (job {job_id})"
    else:  # a schedule's late or missed run: no job yet
        job = f"schedule {alert.get('schedule')}" if alert.get("schedule") else "no job"
    status = label(alert["status"]) if alert.get("status") else None
    head = "Alert" if event == "opened" else "Resolved"
    title = f"[jobobs] {head}: {alert.get('rule')}: {job}" + (f": {status}" if status else "")
    lines = [str(alert.get("summary") or alert.get("kind") or ""), "",
             f"Rule: {alert.get('rule')} ({alert.get('kind')})",
             f"Job: {job}"]
    if status:
        lines.append(f"Status: {status}")
    if alert.get("error"):
        lines.append(f"Error: {cut(str(alert['error']), MOST_ERROR)}")
    for name, key in (("Opened", "opened_at"), ("Resolved", "resolved_at")):
        if alert.get(key) is not None:
            lines.append(f"{name}: {when(alert[key])}")
    if alert.get("detail"):
        lines += ["", cut(str(alert["detail"]), MOST_DETAIL)]
    if job_id is not None:
        lines += ["", f"Open the job: {job_link(dashboard_url, job_id)}"]
    else:
        lines += ["", f"Open the dashboard: {dashboard_url}"]
    body = "\n".join(lines)
    for secret in sorted((s for s in hide if s), key=len, reverse=True):
        title, body = title.replace(secret, HIDDEN), body.replace(secret, HIDDEN)
    return title, body


def assets(dashboard_url: str | None = None) -> apprise.AppriseAsset:
    """apprise's settings for jobobs: nothing written to disk (no persistent storage),
    secrets masked in apprise's own log lines."""
    return apprise.AppriseAsset(storage_mode="memory", secure_logging=True, app_id="jobobs",
                                app_desc="jobobs alerts",
                                app_url=dashboard_url or "https://github.com/caronc/apprise")


def scheme(url: str) -> str:
    return url.partition("://")[0].strip().lower() if "://" in url else ""


def service(url: str, asset: apprise.AppriseAsset | None = None) -> Any:
    """apprise's service for ``url``, or None when apprise does not understand it."""
    return apprise.Apprise.instantiate(url, asset=asset or assets())


def safe(url: str, plugin: Any = None) -> str:
    """``url`` with its secrets masked, as stored and logged: apprise's privacy URL, with
    the values of a generic webhook's headers, query arguments and payload fields masked;
    for a URL apprise does not understand, its scheme only."""
    if plugin is None:
        plugin = service(url)
    if plugin is None:
        return f"{scheme(url) or '?'}://…"
    url, _, query = plugin.url(privacy=True).partition("?")
    if not query:
        return url
    pairs = [pair.partition("=") for pair in query.split("&")]
    return url + "?" + "&".join(
        f"{key}={MASK}" if urllib.parse.unquote(key).startswith(PASSED_THROUGH)
        else key + equals + value for key, equals, value in pairs)


@cache
def known_schemes() -> frozenset[str]:
    found = set()
    for entry in apprise.Apprise().details(show_disabled=True)["schemas"]:
        for key in ("protocols", "secure_protocols"):
            found |= {p.lower() for p in entry.get(key) or ()}
    return frozenset(found)


def check_targets(urls: Iterable[str]) -> list[str]:
    """The notification URLs, stripped and each once, checked: a URL apprise does not
    understand, one that stays on this machine or one that reads its files is a
    ``JobobsError`` of one line naming it (by position, and its secrets masked)."""
    checked: list[str] = []
    for number, url in enumerate(urls, 1):
        if not isinstance(url, str) or not url.strip():
            raise JobobsError(f"notification target {number}: a URL such as "
                              f"mailto://ops@example.com, not {url!r}")
        url = url.strip()
        refusal = refused(url)
        if refusal is not None:
            raise JobobsError(f"notification target {number} ({safe(url)}): {refusal}")
        if url not in checked:
            checked.append(url)
    return checked


def refused(url: str) -> str | None:
    """Why ``url`` may not be a target, or None."""
    name = scheme(url)
    if name in LOCAL_SCHEMES:
        return "it shows only on this machine; a server's alerts go to mail, chat or webhooks"
    plugin = service(url)
    if plugin is None:
        return ("apprise knows this service, but the URL misses a part it needs, or the "
                "service cannot run here (a missing library)" if name in known_schemes()
                else "apprise does not know this kind of URL")
    options = {k.lower() for k in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)}
    reading = options & FILE_OPTIONS
    if "template" in options and set(protocols(plugin)) & TEMPLATE_FILE_SCHEMES:
        reading.add("template")
    if reading:
        return f"{'= and '.join(sorted(reading))}= would read a file of this machine"
    return None


def protocols(plugin: Any) -> tuple[str, ...]:
    found: list[str] = []
    for value in (plugin.protocol, plugin.secure_protocol):
        found += [value] if isinstance(value, str) else list(value or ())
    return tuple(p.lower() for p in found)


@dataclass(order=True)
class Delivery:
    """One alert's event to one target, until its outcome is recorded."""

    due: float                                   # time.monotonic() of its next try
    number: int                                  # order of arrival among equal dues
    alert_id: int = field(compare=False)
    event: str = field(compare=False)
    url: str = field(compare=False, repr=False)  # never logged nor stored
    target: str = field(compare=False)           # safe(url)
    title: str = field(compare=False, repr=False)
    body: str = field(compare=False, repr=False)
    created_at: float = field(compare=False)
    tries: int = field(compare=False, default=0)
    last_error: str | None = field(compare=False, default=None)

    def row(self, outcome: str, sent_at: float | None = None) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "event": self.event, "target": self.target,
                "outcome": outcome, "tries": self.tries, "last_error": self.last_error,
                "created_at": ts(self.created_at), "sent_at": ts(sent_at)}


class Notifier:
    """Delivers alerts on a thread of its own; see the module's docstring.

    ``queue_size`` deliveries may wait (their retries included); more are dropped.
    ``timeout`` bounds one try (apprise's own connection timeouts apply within it).
    ``hide`` are strings no message may show (the server's token, the database's path).
    ``clock`` gives the recorded times; waits use ``time.monotonic``."""

    def __init__(self, record: Callable[[dict[str, Any]], Any], *, dashboard_url: str,
                 tries: int = 5, first_wait: float = 1.0, backoff: float = 2.0,
                 longest: float = 300.0, clock: Callable[[], float] = time.time,
                 queue_size: int = 1000, timeout: float = 30.0, hide: Sequence[str] = ()):
        if tries < 1 or queue_size < 1:
            raise JobobsError("a notifier needs at least one try and a queue of one")
        self.record, self.dashboard_url, self.clock = record, dashboard_url, clock
        self.tries, self.first_wait, self.backoff, self.longest = (tries, first_wait,
                                                                   backoff, longest)
        self.queue_size, self.timeout, self.hide = queue_size, timeout, tuple(hide)
        self.asset = assets(dashboard_url)
        self.due: list[Delivery] = []         # a heap, by due time
        self.rows: list[dict[str, Any]] = []  # outcomes of deliveries never tried, to record
        self.lost = 0                          # and those not even kept: the list was full
        self.numbers = itertools.count()
        self.wake = threading.Condition()
        self.deadline: float | None = None     # set by close
        self.thread = threading.Thread(target=self.run, name="jobobs-notify", daemon=True)
        self.thread.start()

    def wait_before(self, tries: int) -> float:
        """Seconds to wait after ``tries`` failed tries."""
        return min(self.longest, self.first_wait * self.backoff ** (tries - 1))

    def send(self, alert: dict[str, Any], event: str, targets: Iterable[str]) -> None:
        """Queue ``alert``'s ``event`` for each target and return: never waits for a
        delivery, never raises (a full queue drops, logged and recorded)."""
        try:
            title, body = message(alert, event, self.dashboard_url, hide=self.hide)
            now, due = self.clock(), time.monotonic()
            urls = dict.fromkeys(str(url).strip() for url in targets)
            made = [(Delivery(due, 0, int(alert["id"]), event, url, self.target(url), title,
                              body, now), refused(url)) for url in urls]
            with self.wake:
                for delivery, refusal in made:
                    delivery.number = next(self.numbers)
                    if refusal is not None:
                        self.unsent(delivery, refusal, "failed")
                    elif self.deadline is not None:
                        self.unsent(delivery, "the notifier is closed")
                    elif len(self.due) >= self.queue_size:
                        self.unsent(delivery, f"the queue is full ({self.queue_size} waiting)")
                    else:
                        heapq.heappush(self.due, delivery)
                self.wake.notify()
        except Exception as error:
            log.error("alert %s not sent: %s", alert.get("id") if isinstance(alert, dict)
                      else alert, one_line(error))

    def target(self, url: str) -> str:
        try:
            return safe(url, service(url, self.asset))
        except Exception:
            return f"{scheme(url) or '?'}://…"

    def unsent(self, delivery: Delivery, why: str, outcome: str = "dropped") -> None:
        """Under ``wake``: the delivery will not be tried; its row goes to the thread."""
        log.warning("notification of alert %s (%s) to %s %s: %s", delivery.alert_id,
                    delivery.event, delivery.target, outcome, why)
        delivery.last_error = cut(why, MOST_LAST_ERROR)
        if len(self.rows) < MOST_UNSENT:
            self.rows.append(delivery.row(outcome))
        else:
            self.lost += 1

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking alerts, deliver what waits within ``timeout`` seconds, and stop the
        thread. What is still waiting then is recorded (failed if it was tried, dropped if
        not)."""
        with self.wake:
            if self.deadline is None:
                self.deadline = time.monotonic() + max(0.0, timeout)
            self.wake.notify()
        self.thread.join(max(0.0, self.deadline - time.monotonic()) + 5.0)
        if self.thread.is_alive():
            log.warning("the notifier's thread did not stop in time; left running")

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self) -> None:
        while True:
            rows, delivery, stop = self.next()
            for row in rows:
                self.write(row)
            if delivery is not None:
                self.deliver(delivery)
            if stop:
                return

    def next(self) -> tuple[list[dict[str, Any]], Delivery | None, bool]:
        """Wait for rows to record, a delivery that is due, or the end."""
        with self.wake:
            while True:
                now = time.monotonic()
                if self.rows:
                    rows, self.rows = self.rows, []
                    return rows, None, False
                if self.due and self.due[0].due <= now and (self.deadline is None
                                                             or now < self.deadline):
                    return [], heapq.heappop(self.due), False
                if self.deadline is not None and (not self.due or now >= self.deadline
                                                  or self.due[0].due >= self.deadline):
                    for d in self.due:
                        d.last_error = d.last_error or "the notifier closed before it was sent"
                    rows = [d.row("failed" if d.tries else "dropped") for d in self.due]
                    self.due = []
                    return rows, None, True
                waits = [self.due[0].due - now] if self.due else []
                if self.deadline is not None:
                    waits.append(self.deadline - now)
                self.wake.wait(min(waits) if waits else None)

    def deliver(self, delivery: Delivery) -> None:
        """One try; then the outcome recorded, or the next try queued."""
        delivery.tries += 1
        error = self.attempt(delivery)
        if error is None:
            delivery.last_error = None
            log.info("alert %s (%s) sent to %s", delivery.alert_id, delivery.event,
                     delivery.target)
            self.write(delivery.row("sent", sent_at=self.clock()))
            return
        delivery.last_error = cut(error, MOST_LAST_ERROR)
        if delivery.tries < self.tries:
            delivery.due = time.monotonic() + self.wait_before(delivery.tries)
            with self.wake:
                heapq.heappush(self.due, delivery)
            return
        log.warning("alert %s (%s) not sent to %s after %d tries: %s", delivery.alert_id,
                    delivery.event, delivery.target, delivery.tries, delivery.last_error)
        self.write(delivery.row("failed"))

    def attempt(self, delivery: Delivery) -> str | None:
        """Send once; None, or why it failed (apprise's last warning)."""
        timeout = self.timeout
        if self.deadline is not None:
            timeout = max(0.1, min(timeout, self.deadline - time.monotonic()))
        try:
            notifier = apprise.Apprise(asset=self.asset)
            if not notifier.add(delivery.url):
                return "apprise does not understand this URL"
            kind = (apprise.NotifyType.FAILURE if delivery.event == "opened"
                    else apprise.NotifyType.SUCCESS)
            with notifier.notify(body=delivery.body, title=delivery.title, notify_type=kind,
                                 body_format=apprise.NotifyFormat.TEXT,
                                 timeout=timeout) as result:
                if result:
                    return None
                said = [e.message for e in result.logs()
                        if e.level in ("WARNING", "ERROR", "CRITICAL")]
                return one_line(said[-1]) if said else result.status.name.lower()
        except Exception as error:
            return one_line(error)

    def write(self, row: dict[str, Any]) -> None:
        try:
            self.record(row)
        except Exception as error:
            log.error("notification outcome not recorded (%s, alert %s, %s): %s",
                      row["outcome"], row["alert_id"], row["target"], one_line(error))
