"""Signing in to the served dashboard: the sign-in page, sessions, and throttled failures.

``SignIn`` is the Bokeh/Tornado auth provider ``jobobs serve`` gives Panel when it has a
users file. ``POST /login`` takes a user name and a password from a form posted by the
server's own page (its Origin, else its Referer, must name the server), checks them against
the users file's scrypt hashes one sign-in at a time, and opens a session: a random id in an
HttpOnly, SameSite=Strict cookie (Secure over https) that ends after ``hours``. Strict, not
Lax: nothing on the dashboard needs a session from a link on another site (following one
shows the sign-in page), and the page's own requests and websocket are same-site. Sessions
live in the server's memory: ``/logout`` ends one for good, and a restart ends them all.

After ``free`` failed sign-ins in a row for one user name, or from one client address, the
next one waits (HTTP 429), 30 s at first and twice as long after each further failure, up to
15 minutes; a success clears both. Each failure is logged with the user name and the address,
never the password.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bokeh.server.auth_provider import AuthProvider
from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from jobobs.access import users as users_file

log = logging.getLogger("jobobs.dashboard")
COOKIE = "jobobs_session"
LOGIN, LOGOUT = "/login", "/logout"


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    until: float = 0.0


class Throttle:
    """Failed sign-ins per key (a user name, a client address). After ``free`` failures in a
    row each further one locks its keys for ``first`` seconds, doubling up to ``longest``; a
    key forgets its failures ``forget`` seconds after the last one, or on a success."""

    def __init__(self, free: int = 5, first: float = 30.0, longest: float = 900.0,
                 forget: float = 3600.0, size: int = 10_000):
        self.free, self.first, self.longest = free, first, longest
        self.forget, self.size = forget, size
        self._keys: dict[str, _Failures] = {}

    def wait(self, keys: Iterable[str], now: float | None = None) -> float:
        """Seconds until ``keys`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        return max([0.0] + [self._keys[k].until - now for k in keys if k in self._keys])

    def failed(self, keys: Iterable[str], now: float | None = None) -> float:
        """Count a failure against each key; the seconds they are now locked for."""
        now = time.monotonic() if now is None else now
        locked = 0.0
        for key in keys:
            entry = self._keys.get(key)
            if entry is None or now - entry.last > self.forget:
                entry = self._keys[key] = _Failures()
            entry.count, entry.last = entry.count + 1, now
            if entry.count >= self.free:
                lock = min(self.longest, self.first * 2 ** min(entry.count - self.free, 20))
                entry.until = now + lock
                locked = max(locked, lock)
        if len(self._keys) > self.size:
            self._prune(now)
        return locked

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, e in self._keys.items() if now - e.last > self.forget]:
            del self._keys[key]
        if len(self._keys) > self.size:  # a flood of names: keep the latest failures
            for key in sorted(self._keys, key=lambda k: self._keys[k].last)[:-self.size]:
                del self._keys[key]


class Sessions:
    """Signed-in sessions by random id, each ending ``hours`` after its sign-in."""

    def __init__(self, hours: float = 12.0):
        self.seconds = hours * 3600
        self._open: dict[str, tuple[str, float]] = {}

    def open(self, user: str, now: float | None = None) -> tuple[str, float]:
        """A new session's id and the time (epoch seconds) it ends."""
        now = time.time() if now is None else now
        self._open = {k: v for k, v in self._open.items() if v[1] > now}
        session = secrets.token_urlsafe(32)
        self._open[session] = (user, now + self.seconds)
        return session, now + self.seconds

    def user(self, session: str | None, now: float | None = None) -> str | None:
        """The user of a session still open, else None."""
        found = self._open.get(session or "")
        now = time.time() if now is None else now
        return found[0] if found is not None and found[1] > now else None

    def close(self, session: str | None) -> None:
        self._open.pop(session or "", None)


class SignIn(AuthProvider):
    """The auth provider for ``users`` (as ``jobobs.access.users.read`` returns them); ``origins``
    are the ``host:port`` names the dashboard is reached by."""

    def __init__(self, users: dict[str, dict[str, str]], origins: Iterable[str], *,
                 hours: float = 12.0, throttle: Throttle | None = None):
        self.users = users
        self.roles = {name: user["role"] for name, user in users.items()}
        self.origins = set(origins)
        self.sessions = Sessions(hours)
        self.throttle = throttle or Throttle()
        self.lock = asyncio.Lock()  # one check at a time: throttling holds under a burst
        self._login = type("Login", (LoginHandler,), {"sign_in": self})
        self._logout = type("Logout", (LogoutHandler,), {"sign_in": self})
        super().__init__()

    @property
    def get_user(self) -> Callable[[RequestHandler], str | None]:
        return lambda handler: self.sessions.user(handler.get_cookie(COOKIE))

    @property
    def login_url(self) -> str:
        return LOGIN

    @property
    def login_handler(self) -> type[RequestHandler]:
        return self._login

    @property
    def logout_url(self) -> str:
        return LOGOUT

    @property
    def logout_handler(self) -> type[RequestHandler]:
        return self._logout

    def check(self, name: str, password: str) -> bool:
        user = self.users.get(name)
        return users_file.verify(password, None if user is None else user["password"])

    def page(self, build: Callable[[str], Any]) -> Any:
        """The served page of the current session's user, ``build(user)``; when the session
        ends (signed out elsewhere, or expired) the page is emptied and the browser reloads,
        which lands on the sign-in page."""
        import panel as pn

        session = pn.state.cookies.get(COOKIE)
        user = self.sessions.user(session)
        if user is None:
            return pn.pane.Alert("Please sign in again.", alert_type="warning")
        holder = pn.Column(build(user), sizing_mode="stretch_width")

        def check() -> None:
            if self.sessions.user(session) is None and holder.objects:
                holder.objects = []
                pn.state.location.reload = True

        pn.state.add_periodic_callback(check, period=5000)
        return holder


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>jobobs · {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }}
main {{ max-width: 22em; margin: 12vh auto; background: #fff; padding: 2em;
        border-radius: 8px; box-shadow: 0 1px 4px #0002; }}
h1 {{ margin-top: 0; font-size: 1.5em; }}
label {{ display: block; margin: 0.8em 0; }}
input {{ display: block; width: 100%; box-sizing: border-box; padding: 0.5em;
         margin-top: 0.3em; }}
button {{ padding: 0.5em 1.5em; }}
.message {{ color: #b00020; }}
</style></head>
<body><main><h1>jobobs</h1>{body}</main></body></html>
"""
FORM = """<p class="message" role="alert">{message}</p>
<form method="post" action="login">
<label>User name <input name="username" value="{name}" autocomplete="username" required
 autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
 required></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form>"""


def _safe_next(url: str) -> str:
    """A path on this server to go to after signing in (never another site)."""
    parts = urlsplit(url)
    if (parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//")
            or "\\" in url or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url)):
        return "/"
    return url


class _Page(RequestHandler):
    sign_in: SignIn

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy",
                        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                        "frame-ancestors 'none'")

    def page(self, title: str, body: str, status: int = 200) -> None:
        self.set_status(status)
        self.finish(PAGE.format(title=html.escape(title), body=body))

    def form(self, message: str = "", status: int = 200, next_url: str = "/",
             name: str = "") -> None:
        self.page("sign in", FORM.format(message=html.escape(message), name=html.escape(name),
                                          next=html.escape(_safe_next(next_url))), status)


class LoginHandler(_Page):
    """``GET /login``: the form; ``POST /login``: sign in."""

    def get(self) -> None:
        self.form(next_url=self.get_query_argument("next", "/"))

    def _origin(self) -> tuple[str, str | None]:
        """Where the form was posted from (its Origin, else its Referer), and that
        address's ``host:port`` when it is a web page's."""
        origin = self.request.headers.get("Origin") or self.request.headers.get("Referer")
        parts = urlsplit(origin or "")
        return origin or "", parts.netloc if parts.scheme in ("http", "https") else None

    async def post(self) -> None:
        sign_in, address = self.sign_in, self.request.remote_ip
        origin, netloc = self._origin()
        if netloc not in sign_in.origins:
            log.warning("jobobs dashboard: refused a sign-in from %s posted from another "
                        "site (origin %r)", address, origin[:200])
            self.page("refused", "<p class='message'>This sign-in did not come from the "
                      "dashboard's own page. Open the dashboard's address and sign in "
                      "there.</p>", 403)
            return
        name = self.get_body_argument("username", "")[:200]
        password = self.get_body_argument("password", "")[:users_file.MAX_PASSWORD + 1]
        next_url = self.get_body_argument("next", "/")
        # per name at this address, and per address: guesses from one place are slowed,
        # and nobody elsewhere can lock a person out by failing under their name
        keys = (f"user:{name}@{address}", f"address:{address}")
        async with sign_in.lock:
            wait = sign_in.throttle.wait(keys)
            if wait > 0:
                self.set_header("Retry-After", str(int(wait) + 1))
                self.form(f"Too many failed sign-ins: wait {int(wait) + 1} s and try again.",
                          429, next_url, name)
                return
            ok = await IOLoop.current().run_in_executor(None, sign_in.check, name, password)
            if not ok:
                locked = sign_in.throttle.failed(keys)
                log.warning("jobobs dashboard: failed sign-in as %r from %s%s", name, address,
                            f"; the next one waits {locked:.0f} s" if locked else "")
                self.form("Wrong user name or password.", 401, next_url, name)
                return
            sign_in.throttle.succeeded(keys)
        session, ends = sign_in.sessions.open(name)
        self.set_cookie(COOKIE, session, expires=datetime.fromtimestamp(ends, UTC),
                        httponly=True, samesite="Strict",
                        secure=self.request.protocol == "https")
        log.info("jobobs dashboard: %r signed in from %s", name, address)
        self.redirect(_safe_next(next_url))


class LogoutHandler(_Page):
    """``GET /logout``: end the session; its open pages go back to the sign-in page."""

    def get(self) -> None:
        self.sign_in.sessions.close(self.get_cookie(COOKIE))
        self.clear_cookie(COOKIE)
        self.page("signed out", "<p>You are signed out.</p><p><a href='login'>Sign in "
                  "again</a></p>")
