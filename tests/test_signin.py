"""Signing in to the dashboard: the users file ``jobobs passwd`` writes and ``jobobs serve``
checks, and a real server's sign-in page tried over HTTP and in Chromium.

Each HTTP test connects from its own loopback address (127.0.0.x), so that the throttle a
test provokes on purpose does not lock the others out.
"""

import http.client
import json
import os
import re
import stat
import subprocess
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from playwright.sync_api import expect
from serving import JOBOBS, Server, env, free_port

from jobobs.access import users
from jobobs.dashboard.signin import Sessions, Throttle, _safe_next
from jobobs.model.errors import JobobsError
from jobobs.testing import wait_until

OTTO, VERA, TESS = "hands-on-42", "look-only-42", "tess-pass-42"


def passwd(*args: str, password: str) -> subprocess.CompletedProcess:
    """``jobobs passwd`` with the password on standard input, as a script gives it."""
    return subprocess.run([JOBOBS, "passwd", *args], input=password + "\n", text=True,
                          capture_output=True, timeout=60, env=env())


# --- the users file -----------------------------------------------------------------------

@pytest.mark.slow
def test_passwd_writes_an_owner_only_file_with_a_hash_and_never_the_password(tmp_path):
    path = str(tmp_path / "users.json")
    done = passwd("ann", "--role", "operator", "--users", path, password="correct horse")
    assert done.returncode == 0, done.stderr
    assert "ann (operator)" in done.stdout
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = Path(path).read_text()
    assert "correct horse" not in text
    stored = json.loads(text)["ann"]
    assert stored["role"] == "operator" and stored["password"].startswith("scrypt$n=")
    assert users.verify("correct horse", stored["password"])
    assert not users.verify("correct horse!", stored["password"])

    assert passwd("ann", "--users", path, password="battery staple").returncode == 0
    again = users.read(path)["ann"]  # a new password, the same role
    assert again["role"] == "operator" and users.verify("battery staple", again["password"])
    assert not users.verify("correct horse", again["password"])
    assert passwd("bob", "--users", path, password="bob-secret").returncode == 0
    assert users.read(path)["bob"]["role"] == "viewer"  # a new user may only look

    short = passwd("cy", "--users", path, password="short")
    assert short.returncode == 1 and short.stderr.strip().splitlines() == [
        "Error: the password needs 8 to 1024 characters"]
    assert "cy" not in users.read(path)


def test_passwd_mends_a_file_others_could_read(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"ann": {"password": "plain", "role": "operator"}}))
    path.chmod(0o644)
    assert passwd("ann", "--users", str(path), password="now-hashed").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert users.verify("now-hashed", users.read(str(path))["ann"]["password"])


def serve_refuses(tmp_path, path) -> str:
    """``jobobs serve --users path`` fails at once with one line; that line."""
    db = str(tmp_path / "jobs.duckdb")
    done = subprocess.run([JOBOBS, "serve", "--db", db, "--users", str(path), "--port",
                           str(free_port()), "--quack-port", str(free_port())],
                          capture_output=True, text=True, timeout=60, env=env())
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert not os.path.exists(db + ".server.json")
    return lines[0]


def test_serve_refuses_plain_text_passwords(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"ann": {"password": "hunter22", "role": "operator"}}))
    path.chmod(0o600)
    line = serve_refuses(tmp_path, path)
    assert "'ann'" in line and "plain text" in line and f"jobobs passwd ann --users {path}" in line


@pytest.mark.slow
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o620, 0o604])
def test_serve_refuses_a_users_file_others_may_read_or_write(tmp_path, mode):
    path = str(tmp_path / "users.json")
    users.set_password(path, "ann", "correct horse", "operator")
    os.chmod(path, mode)
    line = serve_refuses(tmp_path, path)
    assert f"open to others (mode {mode:03o})" in line and f"chmod 600 {path}" in line


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to someone else")
def test_serve_refuses_a_users_file_of_another_user(tmp_path):
    path = str(tmp_path / "users.json")
    users.set_password(path, "ann", "correct horse", "operator")
    os.chown(path, 65534, -1)
    assert "belongs to another user" in serve_refuses(tmp_path, path)


def test_hashes_are_salted_and_malformed_ones_are_not_hashes():
    first, second = users.hash_password("same words"), users.hash_password("same words")
    assert first != second and users.verify("same words", second)
    for bad in ["same words", "", None, "scrypt$n=3,r=8,p=1$AAAA$AAAA",
                "scrypt$n=16384,r=8$AAAA$AAAA", "bcrypt$n=16384,r=8,p=1$AAAA$AAAA",
                "scrypt$n=16384,r=8,p=1$not base64!$AAAA"]:
        assert not users.is_hashed(bad), bad
    assert users.verify("anything", None) is False  # an unknown user: the same work, no


def test_read_explains_what_is_wrong(tmp_path):
    path = tmp_path / "users.json"
    for content, expected in [("[]", "a JSON object of users"), ("{", "is not JSON"),
                              ("{}", "has no users"),
                              ('{"ann": {"password": "x", "role": "boss"}}', "needs a role")]:
        path.write_text(content)
        path.chmod(0o600)
        with pytest.raises(JobobsError, match=expected):
            users.read(str(path))
    with pytest.raises(JobobsError, match="cannot read the users file"):
        users.read(str(tmp_path / "missing.json"))


# --- throttle and sessions, with time as a parameter --------------------------------------

def test_the_throttle_locks_after_five_failures_and_doubles():
    throttle = Throttle()
    keys = ("user:ann", "address:10.0.0.1")
    assert [throttle.failed(keys, now=100.0) for _ in range(4)] == [0, 0, 0, 0]
    assert throttle.wait(keys, now=100.0) == 0
    assert throttle.failed(keys, now=100.0) == 30
    assert throttle.wait(keys, now=110.0) == 20
    assert throttle.wait(["user:bob", "address:10.0.0.1"], now=110.0) == 20  # same address
    assert throttle.wait(["user:bob", "address:10.0.0.2"], now=110.0) == 0
    assert throttle.failed(keys, now=131.0) == 60
    assert [throttle.failed(keys, now=200.0) for _ in range(6)][-1] == 900  # at most 15 min
    throttle.succeeded(keys)
    assert throttle.wait(keys, now=200.0) == 0 and throttle.failed(keys, now=200.0) == 0


def test_the_throttle_forgets_old_failures_and_stays_small():
    throttle = Throttle(forget=3600.0, size=100)
    for _ in range(4):
        throttle.failed(["user:ann"], now=0.0)
    assert throttle.failed(["user:ann"], now=4000.0) == 0  # an hour later: a fresh start
    for n in range(500):
        throttle.failed([f"user:spray{n}"], now=5000.0 + n)
    assert len(throttle._keys) <= 101


def test_a_session_ends_after_its_hours_or_when_closed():
    sessions = Sessions(hours=2)
    session, ends = sessions.open("ann", now=1000.0)
    assert ends == 1000.0 + 7200 and len(session) >= 40
    assert sessions.user(session, now=1000.0 + 7199) == "ann"
    assert sessions.user(session, now=1000.0 + 7200) is None
    other, _ = sessions.open("bob", now=1000.0)
    sessions.close(other)
    assert sessions.user(other, now=1001.0) is None
    assert sessions.user(None) is None and sessions.user("forged") is None


def test_after_sign_in_only_this_server_s_paths():
    assert _safe_next("/?job=3") == "/?job=3"
    for url in ["//evil.example/", "http://evil.example/", "/\\evil.example", "/\t/evil.example",
                "evil", ""]:
        assert _safe_next(url) == "/", url


# --- a real server over HTTP --------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signin")
    path = str(folder / "users.json")
    for name, password, role in [("otto", OTTO, "operator"), ("vera", VERA, "viewer"),
                                 ("tess", TESS, "operator")]:
        users.set_password(path, name, password, role)
    running = Server(str(folder / "jobs.duckdb"), "--users", path, "--session-hours", "2",
                     workers=1).wait_ready()
    yield running
    assert running.stop() == 0, running.output()


class Answer:
    def __init__(self, response: http.client.HTTPResponse):
        self.status, self.headers = response.status, response.headers
        self.text = response.read().decode()

    @property
    def cookie(self) -> SimpleCookie:
        jar = SimpleCookie()
        for header in self.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return jar


def call(server, method: str, path: str, *, source: str, form: dict | None = None,
         headers: dict | None = None, session: str | None = None) -> Answer:
    """One request from the loopback address ``source``."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60,
                                            source_address=(source, 0))
    sent = dict(headers or {})
    if form is not None:
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    if session is not None:
        sent["Cookie"] = f"jobobs_session={session}"
    try:
        connection.request(method, path, body=urllib.parse.urlencode(form or {}) or None,
                           headers=sent)
        return Answer(connection.getresponse())
    finally:
        connection.close()


def sign_in(server, name: str, password: str, *, source: str, origin: str | None = "own",
            **form: str) -> Answer:
    headers = {} if origin is None else {
        "Origin": f"http://127.0.0.1:{server.port}" if origin == "own" else origin}
    return call(server, "POST", "/login", source=source, headers=headers,
                form={"username": name, "password": password, **form})


def test_a_wrong_password_is_refused_and_logged(server):
    answer = sign_in(server, "otto", "not-the-password", source="127.0.0.5")
    assert answer.status == 401 and "Wrong user name or password" in answer.text
    assert "jobobs_session" not in answer.cookie
    unknown = sign_in(server, "nobody", "not-the-password", source="127.0.0.5")
    assert unknown.status == 401  # and says nothing more:
    assert unknown.text.replace('value="nobody"', 'value="otto"') == answer.text
    wait_until(lambda: "failed sign-in as 'nobody' from 127.0.0.5" in server.output(),
               timeout=30, message="the log line")
    assert "failed sign-in as 'otto' from 127.0.0.5" in server.output()
    assert "not-the-password" not in server.output()


def test_a_sign_in_opens_a_strict_http_only_session_that_expires(server):
    assert call(server, "GET", "/", source="127.0.0.6").headers["Location"].startswith(
        "./login")
    form = call(server, "GET", "/login?next=/", source="127.0.0.6")
    assert form.status == 200 and 'name="password"' in form.text
    assert form.headers["X-Frame-Options"] == "DENY"
    answer = sign_in(server, "otto", OTTO, source="127.0.0.6", next="/")
    assert answer.status == 302 and answer.headers["Location"] == "/"
    morsel = answer.cookie["jobobs_session"]
    assert morsel["samesite"] == "Strict" and morsel["httponly"] and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here; over https the cookie is Secure
    expires = time.mktime(time.strptime(morsel["expires"], "%a, %d %b %Y %H:%M:%S GMT"))
    hours = (expires - time.mktime(time.gmtime())) / 3600
    assert 1.5 < hours <= 2 + 2 / 3600  # serve --session-hours 2 (both times to the second)
    page = call(server, "GET", "/", source="127.0.0.6", session=morsel.value)
    assert page.status == 200 and "<html" in page.text.lower()
    out = call(server, "GET", "/logout", source="127.0.0.6", session=morsel.value)
    assert out.status == 200 and "signed out" in out.text
    again = call(server, "GET", "/", source="127.0.0.6", session=morsel.value)
    assert again.status == 302  # the session is over on the server, not only in the browser


def test_a_sign_in_posted_from_another_site_is_refused(server):
    for origin in ["http://evil.example", f"http://evil.example:{server.port}", "null",
                   f"http://127.0.0.1:{server.port + 1}", f"ftp://127.0.0.1:{server.port}"]:
        answer = sign_in(server, "otto", OTTO, source="127.0.0.7", origin=origin)
        assert answer.status == 403 and "jobobs_session" not in answer.cookie, origin
    assert sign_in(server, "otto", OTTO, source="127.0.0.7", origin=None).status == 403
    referred = call(server, "POST", "/login", source="127.0.0.7",
                    headers={"Referer": f"http://localhost:{server.port}/login?next=%2F"},
                    form={"username": "otto", "password": OTTO})
    assert referred.status == 302  # no Origin: the Referer says where the form was
    wait_until(lambda: "refused a sign-in from 127.0.0.7 posted from another site"
               in server.output(), timeout=30, message="the log line")


@pytest.mark.slow
def test_repeated_failures_are_throttled_per_address_and_never_lock_a_user_out_elsewhere(
        server):
    for _ in range(5):
        assert sign_in(server, "tess", "guess-guess", source="127.0.0.8").status == 401
    throttled = sign_in(server, "tess", TESS, source="127.0.0.8")  # even the right one
    assert throttled.status == 429 and "Too many failed sign-ins" in throttled.text
    assert int(throttled.headers["Retry-After"]) > 0
    assert sign_in(server, "vera", VERA, source="127.0.0.8").status == 429  # the address
    assert sign_in(server, "tess", TESS, source="127.0.0.9").status == 302  # elsewhere: no
    wait_until(lambda: "failed sign-in as 'tess' from 127.0.0.8; the next one waits 30 s"
               in server.output(), timeout=30, message="the log line")


@pytest.mark.slow
def test_sign_ins_in_a_burst_are_throttled_too(server):
    """Sign-ins are checked one at a time: twenty at once cannot all try a password."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda _: sign_in(server, "ghost", "burst-guess",
                                                   source="127.0.0.10").status, range(20)))
    assert statuses.count(401) == 5 and statuses.count(429) == 15


# --- in Chromium --------------------------------------------------------------------------

@pytest.mark.slow
def test_signing_in_and_out_in_a_browser(browser, server):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.goto(server.endpoint.dashboard)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", "otto")
    page.fill("input[name=password]", "wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    page.fill("input[name=username]", "otto")
    page.fill("input[name=password]", OTTO)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("signed in as")).to_contain_text("otto (operator)",
                                                             timeout=30_000)
    [cookie] = [c for c in context.cookies() if c["name"] == "jobobs_session"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["httpOnly"] and cookie["expires"] > time.time() + 3600
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts

    other = context.new_page()  # a second tab of the same browser, then sign out there
    other.goto(server.endpoint.dashboard)
    other.get_by_role("link", name="sign out").click()
    expect(other.get_by_text("You are signed out.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"), timeout=30_000)  # the open tab too
    context.close()
