"""Alerts through a real ``jobobs serve``: its rules file, a failed job's alert delivered to
a real SMTP server and a real webhook on 127.0.0.1, a target that fails recorded without
changing anything else, the command line, and bad rules refused before the server starts."""

import json

import pytest
from serving import Server, cli
from test_notify import closed_port_url, smtp, text_of, webhooks  # noqa: F401 (fixtures)

import jobobs
from jobobs import Status
from jobobs.testing import wait_until

RULES = """
[[rules]]
name = "boom failed"
when = "failed"
jobs = ["boom"]
notify = ["{mail}"]

[[rules]]
name = "any failure"
when = "failed"
resolved = false
"""


def notifications(client, alert_id):
    return client.sql("SELECT target, event, outcome, tries, last_error FROM notifications "
                      "WHERE alert_id = ? ORDER BY id", [alert_id]).to_dict("records")


def test_a_failed_job_is_told_by_mail_and_webhook_and_a_failing_target_changes_nothing(
        tmp_path, smtp, webhooks):  # noqa: F811
    hook = webhooks()
    broken = closed_port_url()
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES.format(mail=smtp.url))
    db = str(tmp_path / "jobs.duckdb")
    server = Server(db, "--alerts", str(rules), "--notify", hook.url, "--notify",
                    broken).wait_ready()
    try:
        assert "alerts     2 rules (boom failed, any failure); sent to 3 targets" in (
            server.output())
        with jobobs.connect(db) as client:
            failed = client.submit("jobs:boom")
            assert client.wait(failed, 30, progress=False).status is Status.FAILED
            posted = wait_until(lambda: hook.posts, timeout=60, message="the webhook posted")
            mail = wait_until(lambda: smtp.messages, timeout=60, message="a mail")[0]
            link = f"{server.dashboard}?job={failed}"
            _, path, _, body = posted[0]
            assert path == "/hooks/alerts"
            for title, text in ((body["title"], body["message"]),
                                (str(mail["Subject"]), text_of(mail))):
                assert f"boom (job {failed})" in title and "Finished with error" in title
                assert "ValueError: the input is broken" in text
                assert f"Open the job: {link}" in text
                assert server.token not in text and db not in text
            assert "boom failed" in str(mail["Subject"])

            listed = json.loads(cli("alerts", "--open", "--json", "--db", db).stdout)
            assert sorted(a["rule"] for a in listed) == ["any failure", "boom failed"]
            assert {a["job_id"] for a in listed} == {failed}
            mine = {a["rule"]: a["id"] for a in listed}

            def recorded(rule, count):
                rows = notifications(client, mine[rule])
                return rows if len(rows) == count else None

            for rule, targets in (("any failure", [hook.url, broken]),
                                  ("boom failed", [smtp.url, hook.url, broken])):
                rows = wait_until(lambda: recorded(rule, len(targets)), timeout=90,  # noqa: B023
                                  message=f"the outcomes of {rule!r}")
                assert sorted((r["outcome"], r["tries"]) for r in rows) == sorted(
                    [("sent", 1)] * (len(targets) - 1) + [("failed", 5)])
                assert next(r["last_error"] for r in rows if r["outcome"] == "failed")
                assert all(r["event"] == "opened" for r in rows)
            assert len(hook.posts) == 2
            # the failing target changed nothing: the server runs jobs and writes
            fine = client.submit("jobs:noop")
            assert client.wait(fine, 30, progress=False).status is Status.FINISHED
            assert client.info(failed).status is Status.FAILED
            assert cli("alerts", "ack", str(mine["boom failed"]), "--db", db).returncode == 0
            acked = client.alerts(open_only=True)
            assert acked.set_index("id").loc[mine["boom failed"], "acknowledged_by"]
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize(("args", "message"), [
    (["--alerts", "{missing}"], "Error: cannot read the alert rules {missing}: No such file "
                                "or directory"),
    (["--notify", "windows://"], "Error: notification target 1 (windows://…): it shows only "
                                 "on this machine"),
    (["--alerts", "{bad}"], "Error: {bad}: rule 1 ('x'): a 'stalled' rule needs 'after'"),
])
def test_bad_rules_or_targets_stop_the_server_before_it_starts(tmp_path, args, message):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rules]]\nname = 'x'\nwhen = 'stalled'\n")
    names = {"missing": str(tmp_path / "none.toml"), "bad": str(bad)}
    db = str(tmp_path / "jobs.duckdb")
    result = cli("serve", "--db", db, *(a.format(**names) for a in args), timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().startswith(message.format(**names)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_rules_file_others_may_read_is_warned_about(tmp_path, capsys):
    from jobobs.cli.submitting import alert_rules

    rules = tmp_path / "alerts.toml"
    rules.write_text("[[rules]]\nname = 'x'\nwhen = 'failed'\n"
                     "notify = ['json://user:secret@hooks.example.com/']\n")
    for mode, warned in ((0o644, True), (0o600, False)):
        rules.chmod(mode)
        [rule] = alert_rules(str(rules), ())
        said = capsys.readouterr().err
        assert rule.notify == ("json://user:secret@hooks.example.com/",)
        assert ("can be read by other users" in said) is warned
