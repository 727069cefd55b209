"""Notifications delivered by apprise to real local servers: an SMTP server (aiosmtpd) and
HTTP servers on 127.0.0.1; outcomes recorded in a real DuckDB file."""

import email
import email.policy
import itertools
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from aiosmtpd.controller import Controller

from jobobs.access import notify
from jobobs.access.notify import Notifier, check_targets, message
from jobobs.db.schema import NOTIFICATIONS_DDL
from jobobs.model.errors import JobobsError
from jobobs.testing import wait_until

DASHBOARD = "http://127.0.0.1:5006/"
TOKEN = "Zq8secretTOKENx"


def alert(alert_id=7, **changes):
    fields = {"id": alert_id, "rule": "imports that fail", "kind": "failed", "job_id": 42,
              "job_name": "import orders", "status": "failed",
              "error": "ConversionException: could not convert 'abc' to INTEGER",
              "summary": "import orders (job 42) ended failed",
              "detail": "top reject reasons:\n  3 x bad integer in column qty",
              "opened_at": 1_700_000_000.0, "resolved_at": None}
    return fields | changes


class Table:
    """The notifications table in a DuckDB file, and the ``record`` a server gives."""

    def __init__(self, path):
        self.con = duckdb.connect(str(path))
        self.con.execute(NOTIFICATIONS_DDL)
        self.ids = itertools.count(1)
        self.lock = threading.Lock()

    def record(self, row):
        with self.lock:
            self.con.execute(
                "INSERT INTO notifications VALUES ($id, $alert_id, $event, $target, $outcome, "
                "$tries, $last_error, $created_at, $sent_at)", {"id": next(self.ids), **row})

    def rows(self, where="true"):
        with self.lock:
            cursor = self.con.execute(f"SELECT * FROM notifications WHERE {where} ORDER BY id")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, values)) for values in cursor.fetchall()]


@pytest.fixture
def table(tmp_path):
    table = Table(tmp_path / "alerts.duckdb")
    yield table
    table.con.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"

    def __init__(self):
        self.messages = []


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.url = (f"mailto://127.0.0.1:{controller.port}"
                   "?to=ops@example.com&from=jobs@example.com")
    yield mailbox
    controller.stop()


class Hook(BaseHTTPRequestHandler):
    """A webhook: keeps what is posted, when, and answers the server's ``answer`` status;
    holds each request while the server's ``hold`` is not set."""

    def do_POST(self):
        size = int(self.headers["Content-Length"])
        self.server.posts.append((time.monotonic(), self.path, dict(self.headers),
                                  json.loads(self.rfile.read(size))))
        self.server.hold.wait(30)
        self.send_response(self.server.answer)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhooks():
    started = []

    def start(answer=200, held=False):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        server.posts, server.answer, server.hold = [], answer, threading.Event()
        if not held:
            server.hold.set()
        server.url = f"json://127.0.0.1:{server.server_port}/hooks/alerts"
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.hold.set()
        server.shutdown()
        server.server_close()


def closed_port_url():
    return f"json://127.0.0.1:{free_port()}/nobody"


def text_of(mail):
    return mail.get_body(preferencelist=("plain",)).get_content()


def test_the_message_names_the_rule_the_job_its_status_error_and_link():
    title, body = message(alert(detail="x" * 50_000), "opened", DASHBOARD)
    assert "imports that fail" in title and "import orders" in title and "42" in title
    assert "Finished with error" in title
    assert "ended failed" in body and "could not convert 'abc'" in body
    assert "http://127.0.0.1:5006/?job=42" in body
    assert len(body) < 4_000 and "more characters" in body
    resolved, _ = message(alert(resolved_at=1_700_000_600.0), "resolved", DASHBOARD)
    assert resolved.startswith("[jobobs] Resolved:")


def test_a_schedules_alert_without_a_job_links_the_dashboard():
    title, body = message(alert(kind="late", job_id=None, job_name=None, status=None,
                                error=None, schedule="nightly",
                                summary="nightly has not started 15 min after its tick"),
                          "opened", DASHBOARD)
    assert "schedule nightly" in title and "None" not in title + body
    assert "has not started" in body and body.endswith(f"Open the dashboard: {DASHBOARD}")


def test_the_message_never_shows_the_token_or_the_database_path():
    db = "/srv/jobs/prod.duckdb"
    title, body = message(alert(error=f"IO Error: could not set lock on file {db}",
                                detail=f"token={TOKEN}"), "opened", DASHBOARD,
                          hide=(TOKEN, db))
    assert TOKEN not in title + body and db not in title + body
    assert "[hidden]" in body


def test_a_mail_and_a_webhook_carry_the_job_its_status_error_and_link(table, smtp, webhooks):
    hook = webhooks()
    with Notifier(table.record, dashboard_url=DASHBOARD) as notifier:
        notifier.send(alert(), "opened", [smtp.url, hook.url])
        wait_until(lambda: len(table.rows()) == 2, message="both outcomes recorded")
    assert [(r["outcome"], r["tries"], r["last_error"]) for r in table.rows()] == [
        ("sent", 1, None), ("sent", 1, None)]
    assert all(r["alert_id"] == 7 and r["event"] == "opened" and r["sent_at"]
               for r in table.rows())

    [mail] = smtp.messages
    body = text_of(mail)
    for fact in ("import orders", "Finished with error", "could not convert 'abc'",
                 "http://127.0.0.1:5006/?job=42"):
        assert fact in mail["Subject"] + body
    assert "imports that fail" in mail["Subject"] and "\nStatus: " in body

    [(_, path, _, posted)] = hook.posts
    assert path == "/hooks/alerts" and posted["type"] == "failure"
    assert "import orders" in posted["title"] and "Finished with error" in posted["title"]
    assert "could not convert 'abc'" in posted["message"]
    assert "http://127.0.0.1:5006/?job=42" in posted["message"]


def returns_at_once(call) -> None:
    """``call()`` returns while a delivery it started is held unanswered: it never waits
    for one (it would wait the hook's 30 s)."""
    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(20)
    assert not caller.is_alive(), "the caller waited for a delivery"


def test_a_failing_target_is_retried_with_backoff_and_the_others_still_get_it(
        table, smtp, webhooks):
    broken, good, held = webhooks(answer=500), webhooks(), webhooks(held=True)
    refused = closed_port_url()
    caught = []

    def send():
        try:
            notifier.send(alert(), "opened",
                          [refused, broken.url, good.url, smtp.url, held.url])
        except Exception as error:  # the caller never sees one
            caught.append(error)

    with Notifier(table.record, dashboard_url=DASHBOARD, tries=3, first_wait=0.2,
                  backoff=2.0) as notifier:
        returns_at_once(send)  # the held target has not answered
        held.hold.set()
        wait_until(lambda: len(table.rows()) == 5, timeout=20, message="5 outcomes")
    assert caught == []
    by_port = {r["target"].split("/")[2]: r for r in table.rows()}
    for failing, said in ((refused, "Connection error"), (broken.url, "error=500")):
        row = by_port[failing.split("/")[2]]
        assert (row["outcome"], row["tries"], row["sent_at"]) == ("failed", 3, None)
        assert said in row["last_error"]
    for answered in (good, held):
        assert by_port[answered.url.split("/")[2]]["outcome"] == "sent"
        assert len(answered.posts) == 1
    assert len(smtp.messages) == 1
    # three tries, 0.2 s then 0.4 s apart (at least)
    times = [t for t, *_ in broken.posts]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4


def test_waits_grow_by_the_backoff_up_to_the_longest(table):
    with Notifier(table.record, dashboard_url=DASHBOARD, first_wait=1, backoff=3,
                  longest=20) as notifier:
        assert [notifier.wait_before(n) for n in (1, 2, 3, 4)] == [1, 3, 9, 20]


def test_a_flood_drops_what_the_queue_cannot_hold_and_blocks_nobody(table, webhooks):
    slow = webhooks(held=True)
    with Notifier(table.record, dashboard_url=DASHBOARD, queue_size=3) as notifier:
        notifier.send(alert(1), "opened", [slow.url])
        wait_until(lambda: slow.posts, message="the first delivery under way")
        returns_at_once(lambda: [notifier.send(alert(alert_id), "opened", [slow.url])
                                 for alert_id in range(2, 12)])  # the first still held
        slow.hold.set()
        wait_until(lambda: len(table.rows()) == 11, message="every outcome recorded")
    rows = table.rows()
    assert sorted(r["alert_id"] for r in rows if r["outcome"] == "sent") == [1, 2, 3, 4]
    dropped = [r for r in rows if r["outcome"] == "dropped"]
    assert sorted(r["alert_id"] for r in dropped) == list(range(5, 12))
    assert all(r["tries"] == 0 and "queue is full" in r["last_error"] for r in dropped)


def test_a_record_that_fails_stops_nothing(table, webhooks):
    hook, calls = webhooks(), []

    def record(row):
        calls.append(row)
        if len(calls) == 1:
            raise duckdb.IOException("disk full")
        table.record(row)

    with Notifier(record, dashboard_url=DASHBOARD) as notifier:
        notifier.send(alert(1), "opened", [hook.url])
        notifier.send(alert(2), "opened", [hook.url])
        wait_until(lambda: table.rows(), message="the second outcome recorded")
    assert [r["alert_id"] for r in table.rows()] == [2] and len(hook.posts) == 2


def test_close_delivers_what_waits_and_records_the_rest(table, webhooks):
    hook = webhooks()
    notifier = Notifier(table.record, dashboard_url=DASHBOARD, tries=5, first_wait=60)
    notifier.send(alert(1), "opened", [hook.url, closed_port_url()])
    notifier.close(timeout=30)  # not the 60 s until the refused target's next try
    assert not notifier.thread.is_alive()
    assert sorted((r["outcome"], r["tries"]) for r in table.rows()) == [("failed", 1),
                                                                        ("sent", 1)]
    notifier.send(alert(2), "opened", [hook.url])  # after close: logged, not raised
    assert len(hook.posts) == 1


def test_a_target_refused_at_send_is_recorded_failed_and_never_tried(table, webhooks):
    hook = webhooks()
    with Notifier(table.record, dashboard_url=DASHBOARD) as notifier:
        notifier.send(alert(), "opened", [f"slack://T1AAA/B2BBB/{TOKEN}?template=/etc/passwd",
                                          "bogus://x", hook.url])
        wait_until(lambda: len(table.rows()) == 3, message="3 outcomes recorded")
    rows = table.rows()
    assert sorted((r["outcome"], r["tries"]) for r in rows) == [("failed", 0), ("failed", 0),
                                                               ("sent", 1)]
    assert {r["last_error"] for r in rows} >= {"template= would read a file of this machine",
                                               "apprise does not know this kind of URL"}
    assert TOKEN not in " ".join(r["target"] for r in rows)


def test_the_stored_target_hides_passwords_and_headers(table, webhooks):
    hook = webhooks()
    secret_url = hook.url.replace("json://", "json://user:pa55word@") + (
        f"?+X-Api-Key={TOKEN}")
    with Notifier(table.record, dashboard_url=DASHBOARD) as notifier:
        notifier.send(alert(), "resolved", [secret_url])
        wait_until(table.rows, message="the outcome recorded")
    [row] = table.rows()
    assert row["outcome"] == "sent"
    assert "pa55word" not in row["target"] and TOKEN not in row["target"]
    assert f"127.0.0.1:{hook.server_port}/hooks/alerts" in row["target"]  # recognisable
    [(_, _, headers, posted)] = hook.posts
    assert headers["X-Api-Key"] == TOKEN and posted["type"] == "success"


def test_a_webhooks_secret_path_is_masked():
    for url in (f"slack://T1AAA/B2BBB/{TOKEN}", f"discord://4174216298/{TOKEN}",
                f"https://hooks.slack.com/services/T1AAA/B2BBB/{TOKEN}"):
        assert TOKEN not in notify.safe(url)


@pytest.mark.parametrize("url", [
    f"bogus://user:{TOKEN}@example.com/{TOKEN}",
    f"mailto://user:{TOKEN}@",
    "gnome://",
    "dbus://",
    "macosx://",
    f"slack://T1AAA/B2BBB/{TOKEN}?template=/etc/passwd",
    f"https://discord.com/api/webhooks/1234/{TOKEN}?template=file:///etc/passwd",
    f"mailto://user:{TOKEN}@example.com?pgppub=/home/me/.gnupg/key.asc",
], ids=["unknown", "incomplete", "gnome", "dbus", "macosx", "slack-template",
        "discord-template", "pgp-key"])
def test_check_targets_refuses_in_one_line_without_the_secret(url):
    with pytest.raises(JobobsError) as refused:
        check_targets(["syslog://", url])
    said = str(refused.value)
    assert said.startswith("notification target 2 (") and "\n" not in said
    assert TOKEN not in said


def test_check_targets_keeps_good_urls_once_in_order(smtp):
    urls = [f" {smtp.url} ", "json://hooks.example.com/alerts", smtp.url, "syslog://",
            "sendgrid://abcd:jobs@example.com/ops@example.com?template=d-123"]
    assert check_targets(urls) == [smtp.url, "json://hooks.example.com/alerts", "syslog://",
                                   urls[-1]]


def test_the_file_options_refused_are_the_ones_apprise_reads_files_with():
    """A guard for apprise upgrades: every option apprise names a path or a file is a part
    of the URL (known here) or refused."""
    from apprise.manager_plugins import NotificationManager

    url_parts = {"path", "fullpath", "workflow_path", "prefix", "attach-as", "filename",
                 "file_url"}
    manager = NotificationManager()
    found = set()
    for name in manager.schemas():
        plugin = manager[name]
        for option, spec in plugin.template_args.items():
            text = getattr(spec.get("name"), "text", spec.get("name")) or ""
            if ("Path" in text or "File" in text) and option not in url_parts:
                found.add(option)
                if option == "template":
                    assert set(notify.protocols(plugin)) <= notify.TEMPLATE_FILE_SCHEMES
    assert found <= notify.FILE_OPTIONS | {"template"}
