"""A real ``jobobs serve`` in a subprocess on free ports, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from jobobs.db import endpoint, quack
from jobobs.db.sql import literal

TESTS = Path(__file__).parent
JOBOBS = str(Path(sys.executable).parent / "jobobs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env() -> dict[str, str]:
    """The environment of processes the tests start: the test jobs importable."""
    paths = [str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "JOBOBS_URL": "", "JOBOBS_TOKEN": "", "JOBOBS_ANALYST_TOKEN": "", "JOBOBS_DB": ""}


class Server:
    """``jobobs serve`` for one database; ``stop()`` sends SIGTERM and returns the exit code."""

    def __init__(self, db: str, *extra: str, port: int | None = None,
                 quack_port: int | None = None, workers: int = 3, command: str = "serve",
                 extra_args: list[str] | None = None):
        self.db = db
        self.port = port or free_port()
        self.quack_port = quack_port or free_port()
        self.log = open(f"{db}.serve.log", "ab")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [JOBOBS, command, "--db", db, "--port", str(self.port), "--quack-port",
             str(self.quack_port), "--workers", str(workers), *extra, *(extra_args or []),
             *(["--export-dir", tempfile.gettempdir()]
               if command == "serve" and "--export-dir" not in extra else [])],
            stdout=self.log, stderr=subprocess.STDOUT, env=env(),
        )

    def wait_ready(self, timeout: float = 60.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"jobobs serve exited with {self.process.returncode}:\n"
                                     f"{self.output()}")
            found = endpoint.read(self.db)
            if found is not None and found.pid == self.process.pid:
                self.endpoint = found
                return self
            time.sleep(0.1)
        raise AssertionError(f"jobobs serve did not start in {timeout} s:\n{self.output()}")

    @property
    def token(self) -> str:
        return self.endpoint.token

    @property
    def uri(self) -> str:
        return self.endpoint.quack

    @property
    def dashboard(self) -> str:
        return self.endpoint.dashboard

    @property
    def analyst_token(self) -> str:
        """The read-only token the server keeps beside the database."""
        return Path(f"{self.db}.analyst-token").read_text().strip()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(f"{self.db}.serve.log").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()


def wait_status(client, job_id: int, *statuses: str, timeout: float = 30.0) -> str:
    """Wait until the job is in one of ``statuses`` (as a client sees it); return it."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.info(job_id).status.value
        if status in statuses:
            return status
        if time.monotonic() >= deadline:
            lines = client.journal(job_id)["message"].tolist()[-15:]
            raise AssertionError(f"job {job_id} is {status}, not {statuses}; its journal "
                                 f"ends:\n" + "\n".join(lines))
        time.sleep(0.02)


# Debian's Chromium, headless; without the networking flags it keeps calling out, and the
# closed network refuses it.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


def open_page(browser, url: str, width: int = 1700):
    """A page of the dashboard at ``url`` in a fresh browser context, once a job's status
    label shows."""
    page = browser.new_context(viewport={"width": width, "height": 1100}).new_page()
    page.goto(url)
    page.wait_for_selector(".jobobs-status", timeout=30_000)
    return page


def click_until(target, shown: Callable[[], None], tries: int = 3) -> None:
    """Click ``target`` until ``shown()`` (a Playwright ``expect``) passes, at most
    ``tries`` times. A table on a page built a moment ago can drop a click, with no sign in
    the page: Panel's Tabulator lays its rows out again while the page around it settles
    (its charts drawing) and takes no click until it is done. A person sees nothing happen
    and clicks again; ``shown`` checks a sign that stays once a click is taken, so a click
    is repeated only while the last one was not, never to undo it."""
    for attempt in range(1, tries + 1):
        target.click()
        try:
            shown()
            return
        except AssertionError:
            if attempt == tries:
                raise


def select_row(row, target=None, tries: int = 3) -> None:
    """Click a table's ``row`` (or ``target`` in it) until the table shows it selected
    (a plain click only ever selects)."""
    from playwright.sync_api import expect

    click_until(target or row, lambda: expect(row).to_have_class(
        re.compile(r"\btabulator-selected\b"), timeout=10_000), tries)


def expand_row(row, tries: int = 3) -> None:
    """Click a table's ``row`` expander until it shows expanded (▼), never back (►)."""
    from playwright.sync_api import expect

    click_until(row.locator(".tabulator-cell", has_text="►"), lambda: expect(
        row.locator(".tabulator-cell", has_text="▼")).to_be_visible(timeout=10_000), tries)


def cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess:
    """The ``jobobs`` command in its own process."""
    return subprocess.run([JOBOBS, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env())


def plain_duckdb(uri: str, token: str) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection with the remote catalog attached as ``remote``."""
    con = duckdb.connect()
    quack.load(con)
    con.execute(f"ATTACH {literal(uri)} AS remote (TOKEN {literal(token)})")
    return con


def listening(port: int) -> list[str]:
    """The local addresses a TCP port listens on (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                found.append(_address(address))
    return found


def _address(text: str) -> str:
    if len(text) == 8:
        return socket.inet_ntop(socket.AF_INET, bytes.fromhex(text)[::-1])
    words = [bytes.fromhex(text[i:i + 8])[::-1] for i in range(0, 32, 8)]
    return socket.inet_ntop(socket.AF_INET6, b"".join(words))


# The users of a served dashboard with sign-in: an operator and a viewer.
PASSWORDS = {"otto": "hands-on", "vera": "look-only"}


def with_sign_in(folder: Path, workers: int = 2) -> Server:
    """``jobobs serve`` on a new database in ``folder``, asking otto (operator) and vera
    (viewer) to sign in."""
    from jobobs.access.users import set_password

    users = str(folder / "users.json")
    set_password(users, "otto", PASSWORDS["otto"], "operator")
    set_password(users, "vera", PASSWORDS["vera"], "viewer")
    return Server(str(folder / "jobs.duckdb"), "--users", users, workers=workers).wait_ready()


def signed_in(browser, served: Server, user: str):
    """A page of ``served``'s dashboard in a fresh browser context, signed in as ``user``."""
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1700, "height": 1100}).new_page()
    page.goto(served.endpoint.dashboard)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.locator("button[type=submit], input[type=submit]").first.click()
    expect(page.get_by_text("signed in as")).to_contain_text(user, timeout=30_000)
    return page


# JupyterLab kept off the network: no news feed, no update check, no extension catalogue.
OFFLINE_LAB = ["--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]


class JupyterLab:
    """``jupyter lab`` on 127.0.0.1 (a free port, a token) over the notebooks in ``root``,
    with its own settings, workspaces and runtime folders in ``home``; ``settings`` are
    written as user settings (``{"@jupyterlab/notebook-extension:tracker": {...}}``);
    ``stop()`` shuts it down with its kernels."""

    def __init__(self, root: Path, home: Path, environment: dict[str, str],
                 settings: dict[str, dict] | None = None):
        self.root, self.home = Path(root), Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port, self.token = free_port(), secrets.token_hex(16)
        for plugin, values in (settings or {}).items():
            package, name = plugin.split(":")
            path = self.home / "settings" / package / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        own = {f"JUPYTER_{folder.upper()}_DIR": str(self.home / folder)
               for folder in ("config", "data", "runtime")}
        self.log = open(self.home / "lab.log", "ab")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             "--ServerApp.port_retries=0", "--ServerApp.allow_root=True",
             f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root}",
             f"--LabApp.user_settings_dir={self.home / 'settings'}",
             f"--LabApp.workspaces_dir={self.home / 'workspaces'}", *OFFLINE_LAB],
            stdout=self.log, stderr=subprocess.STDOUT, env={**env(), **own, **environment},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET") -> Any:
        """A call of the server's REST API, with the token; its JSON answer."""
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else {}

    def wait_ready(self, timeout: float = 60.0) -> JupyterLab:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {self.process.returncode}:\n"
                                     f"{self.output()}")
            try:
                self.api("status")
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"jupyter lab did not start in {timeout} s:\n{self.output()}")

    def notebook(self, name: str) -> dict:
        """The notebook ``name`` as saved, in nbformat's JSON."""
        return self.api(f"contents/{name}?content=1")["content"]

    def shut_down_kernels(self) -> None:
        """End every notebook's session and its kernel."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.home / "lab.log").read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        try:
            self.api("shutdown", method="POST")
        except OSError:
            pass
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self.log.close()
