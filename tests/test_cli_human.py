"""What a person reads from the command line: tables and fields with icons, local times to
the second, durations, percents and counts, and blanks, never "NaN" or "None"; `--json`
as raw as before; `jobobs watch`; shell completion. Against a real `jobobs serve` holding
jobs in several statuses, one of them running with no total."""

import json
import os
import pty
import queue
import re
import signal
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import jobs
import pytest
from rich.cells import cell_len
from serving import JOBOBS, Server, cli, env, wait_status
from test_cli_alerts import add_alerts

import jobobs
from jobobs.cli.base import JOB_FIELDS
from jobobs.model import humane
from jobobs.testing import wait_until

RAW = re.compile(r"\b(NaN|NaT|None|nan|<NA>)\b")
MICROSECONDS = re.compile(r"\d\d:\d\d:\d\d\.\d")
LONG_FLOAT = re.compile(r"\d\.\d{3,}0\b|\d\.\d{7,}")  # 0.000500, 0.0020000000000000005
ANSI = "\x1b["


def readable(text: str) -> None:
    """Nothing a person should not have to read."""
    assert not RAW.search(text), text
    assert not MICROSECONDS.search(text), text
    assert not LONG_FLOAT.search(text), text
    assert ANSI not in text, text  # into a pipe: plain text


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server over jobs finished (1,200 records, with rejects), failed, never started,
    paused part of the way, and one running with no total; alerts and a schedule."""
    db = str(tmp_path_factory.mktemp("human") / "jobs.duckdb")
    add_alerts(db)  # a failed job, and alerts about it and a schedule
    with jobobs.Runtime(db, handle_signals=False) as rt:
        finished = rt.wait(rt.submit(jobs.steps, 1200, 0.0, 100).id, timeout=60).id
        draft = rt.submit(jobs.noop, start=False).id
        paused = rt.submit(jobs.steps, 100_000, 0.01).id
        wait_until(lambda: rt.job(paused).processed >= 3, timeout=30)
        rt.pause(paused)
        assert rt.wait(paused, timeout=30).status is jobobs.Status.PAUSED
    server = Server(db).wait_ready()
    with jobobs.connect(db) as client:
        running = client.submit("jobs:blocked", "never")  # no total, no progress
        wait_status(client, running, "running")
    added = cli("schedule", "add", "hourly", "--every", "1h", "--db", db, "--", "run",
                "jobs:noop")
    assert added.returncode == 0, added.stderr
    server.ids = {"finished": finished, "draft": draft, "paused": paused, "running": running}
    yield server
    assert server.stop() == 0, server.output()


def ok(*args, columns: int | None = None) -> str:
    environment = {**env(), "COLUMNS": str(columns)} if columns else env()
    environment.pop("NO_COLOR", None)
    result = subprocess.run([JOBOBS, *map(str, args)], capture_output=True, text=True,
                            timeout=60, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_the_list_reads_as_words(served):
    out = ok("list", "--db", served.db)
    readable(out)
    header, *lines = out.splitlines()
    assert header.split() == ["id", "status", "name", "kind", "⚠", "started", "duration",
                              "processed", "rejected", "progress"]
    rows = {int(line.split()[0]): line for line in lines}
    ids = served.ids
    assert re.search(r"▶ Execution in progress\s+blocked", rows[ids["running"]])
    assert rows[ids["running"]].rstrip().endswith(" 0")  # no progress: blank, not "nan"
    assert "❚❚ Paused" in rows[ids["paused"]] and "%" in rows[ids["paused"]]
    assert re.search(r"✎ Editing in progress\s+noop", rows[ids["draft"]])
    assert rows[ids["draft"]].split()[-2:] == ["0", "0"]  # never started: no time, no duration
    finished = rows[ids["finished"]]
    assert "✔ Finished" in finished and finished.split()[-3:] == ["1,200", "12", "100%"]
    assert any(re.search(r"✖ Finished with error\s+boom", line) for line in lines)
    with jobobs.connect(served.db) as client:
        started = client.job(ids["finished"])["started_at"].iloc[0]
    assert humane.moment(started) in finished  # local time, to the second


def test_the_list_fits_80_columns_and_says_what_it_left_out(served):
    out = ok("list", "--db", served.db, columns=80)
    *lines, note = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert note.startswith("(") and "left out at 80 columns" in note and "--json" in note
    assert lines[0].split()[:3] == ["id", "status", "name"]
    running = next(line for line in lines if line.startswith(f"{served.ids['running']:>2} "))
    assert re.search(r"▶ Execution in progress\s+blocked", running)  # id, status, name whole


def test_json_is_the_raw_frame_as_before(served):
    listed = json.loads(ok("list", "--db", served.db, "--json"))
    with jobobs.connect(served.db) as client:
        frame = client.jobs(limit=50)
        shown = json.loads(ok("show", served.ids["finished"], "--db", served.db, "--json"))
        job = client.job(served.ids["finished"])
    expected = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms"))
    live = {"duration_s", "eta_at"}  # an unfinished job's grow between two reads
    assert [set(row) for row in listed] == [set(row) for row in expected]
    for got, want in zip(listed, expected, strict=True):
        keys = set(want) - (live if want["finished_at"] is None else set())
        assert {k: got[k] for k in keys} == {k: want[k] for k in keys}
    assert list(shown) == [*JOB_FIELDS, "spec", "transitions"]
    row = json.loads(job.to_json(orient="records", date_format="iso", date_unit="ms"))[0]
    assert {k: shown[k] for k in JOB_FIELDS if k in row} == {k: row[k] for k in JOB_FIELDS
                                                              if k in row}
    assert shown["started_at"].endswith("Z") or re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", shown["started_at"])
    assert isinstance(shown["progress"], float) and isinstance(shown["duration_s"], float)


def test_show_groups_the_fields_and_leaves_blanks_out(served):
    ids = served.ids
    out = ok("show", ids["running"], "--db", served.db)
    readable(out)
    assert re.search(r"^job$", out, re.M) and re.search(r"^time$", out, re.M)
    assert re.search(r"^  status\s+▶ Execution in progress$", out, re.M)
    assert re.search(r"^  processed\s+0$", out, re.M)
    fields = out.split("\nspec")[0]
    assert not re.search(r"^  (progress|total|finished|eta) ", fields, re.M)
    out = ok("show", ids["finished"], "--db", served.db)
    readable(out)
    assert re.search(r"^  processed\s+1,200$", out, re.M)
    assert re.search(r"^  progress\s+100%$", out, re.M)
    assert re.search(r"^  duration\s+\d+\.\d s$|^  duration\s+\d+ min \d\d s$", out, re.M)
    assert re.search(r"^history$", out, re.M) and "✎ Editing in progress" in out
    out = ok("show", ids["draft"], "--db", served.db)
    readable(out)
    assert "started" not in out and "duration" not in out


def test_alerts_schedules_sql_and_rejects_read_as_words(served):
    out = ok("alerts", "--db", served.db)
    readable(out)
    assert "✖ Finished with error" in out and "schedule nightly" in out
    out = ok("schedule", "list", "--db", served.db)
    readable(out)
    assert "hourly" in out and "every 1h" in out
    out = ok("schedule", "show", "hourly", "--db", served.db)
    readable(out)
    assert re.search(r"^every\s+1 h 00 min$", out, re.M)
    out = ok("rejects", served.ids["finished"], "--db", served.db)
    readable(out)
    out = ok("sql", "SELECT 0.0005 AS x, NULL AS n, 20200 AS c, "
             "TIMESTAMP '2026-12-02 04:50:41.123456' AS t", "--db", served.db)
    readable(out)
    at = humane.moment(datetime(2026, 12, 2, 4, 50, 41, 123456))
    assert out.splitlines()[1].split() == ["0.0005", "20200", *at.split()]  # sql: as stored


def test_watch_in_a_pipe_prints_the_list_again_only_when_it_changed(served):
    out = ok("watch", "--status", "failed", "--count", "3", "--interval", "0.1",
             "--db", served.db)
    readable(out)
    assert out.count("jobs at ") == 1 and "✖ Finished with error" in out
    # a running job's duration grows between two reads: each read prints
    out = ok("watch", "--status", "running", "--count", "3", "--interval", "1.1",
             "--db", served.db)
    assert out.count("jobs at ") == 3 and out.count("▶ Execution in progress") == 3


def first_line(process: subprocess.Popen, timeout: float = 60) -> str:
    """The first line a process writes, read in a thread so that a silent one fails."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


def test_watch_ends_on_ctrl_c_without_a_traceback(served, tmp_path):
    # Ctrl-C between two reads (a long interval), then at moments further and further into
    # a local file's reads back to back, some landing in a read's DuckDB query (which
    # turns it into a RuntimeError): each an exit 0 without a traceback
    local = str(tmp_path / "jobs.duckdb")
    with jobobs.Runtime(local, handle_signals=False) as rt:
        rt.wait(rt.submit(jobs.noop).id, timeout=60)
    runs = [(served.db, "5", 0.0)] + [(local, "0.1", n * 0.02) for n in range(10)]
    for db, interval, after in runs:
        process = subprocess.Popen([JOBOBS, "watch", "--interval", interval, "--db", db],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=env())
        try:
            assert first_line(process).startswith("jobs at ")
            with pytest.raises(subprocess.TimeoutExpired):  # the watch goes on by itself
                process.wait(timeout=after)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0, process.stderr.read()
            assert "Traceback" not in process.stderr.read()
        finally:
            process.kill()
            process.wait(timeout=60)


def in_terminal(*args: object, **environment: str | None) -> str:
    """What the command writes into a terminal (a pseudo-terminal, 120 columns); a variable
    given None is left out of its environment."""
    environment = {**env(), "COLUMNS": "120", "TERM": "xterm-256color", **environment}
    environment = {key: value for key, value in environment.items() if value is not None}
    reader, writer = pty.openpty()
    process = subprocess.Popen([JOBOBS, *map(str, args)], stdout=writer,
                               stderr=subprocess.PIPE, env=environment)
    os.close(writer)
    seen = b""
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(reader)
    assert process.wait(timeout=30) == 0, process.stderr.read()
    return seen.decode()


def test_watch_in_a_terminal_draws_in_place_in_color(served):
    text = in_terminal("watch", "--count", "2", "--interval", "0.1", "--db", served.db,
                       NO_COLOR=None)
    assert "\x1b[1A" in text or "\x1b[2K" in text  # the cursor goes back up: drawn in place
    assert re.search(r"\x1b\[[0-9;]*3[0-9;]*m▶ Execution in progress", text)  # in color
    plain = in_terminal("list", "--db", served.db, NO_COLOR="1")
    assert "▶ Execution in progress" in plain and not re.search(r"\x1b\[3\d", plain)


def test_completion_scripts_come_from_click(tmp_path):
    for shell in ("bash", "zsh", "fish"):
        assert "_JOBOBS_COMPLETE" in ok("completion", shell)
    offered = subprocess.run([JOBOBS], capture_output=True, text=True, timeout=60,
                             env={**env(), "_JOBOBS_COMPLETE": "bash_complete",
                                  "COMP_WORDS": "jobobs li", "COMP_CWORD": "1"})
    assert offered.returncode == 0 and "plain,list" in offered.stdout.split()
    bin_dir = str(Path(JOBOBS).parent)
    script = ('eval "$(jobobs completion bash)"; COMP_WORDS=(jobobs list --status r); '
              'COMP_CWORD=3; _jobobs_completion jobobs; printf "%s\\n" "${COMPREPLY[@]}"')
    completed = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                               timeout=60,
                               env={**env(), "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["running"]
    bad = subprocess.run([JOBOBS, "completion", "tcsh"], capture_output=True, text=True,
                         timeout=60, env=env())
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr == "Error: no completion for 'tcsh': give bash, zsh or fish\n"


def test_a_time_at_utc_midnight_reads_as_a_local_time_not_a_date(tmp_path):
    db = str(tmp_path / "jobs.duckdb")
    added = cli("schedule", "add", "nightly", "--cron", "0 0 * * *", "--db", db, "--",
                "run", "jobs:noop")
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([JOBOBS, "schedule", "list", "--db", db], capture_output=True,
                            text=True, timeout=60,
                            env={**env(), "TZ": "America/New_York", "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    # midnight UTC is 19:00 (or 20:00 in summer) the day before in New York
    assert re.search(r"\d{4}-\d\d-\d\d (19|20):00:00", listed.stdout), listed.stdout


def _colored(ctx):
    ctx.log.info("red \x1b[31malert\x1b[0m\x07 done")


def test_a_journal_search_reads_as_one_line_or_an_error_without_a_traceback(tmp_path):
    db = str(tmp_path / "jobs.duckdb")
    with jobobs.Runtime(db, handle_signals=False) as rt:
        rt.wait(rt.submit(_colored, name="\x1b[2Jcolored").id, timeout=60)
    out = ok("journal", "--search", "alert", "--db", db)
    # control characters of a job's name and message left out, as a table leaves them
    assert "colored" in out and "red [31malert[0m done" in out, out
    assert "\x1b" not in out and "\x07" not in out
    result = cli("journal", "--search", "x", "--since", "99999999d", "--db", db)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (  # click's usage error, as for "xyz"
        "Error: Invalid value for --since/--until: '99999999d' is neither an age such as 2h "
        "or 7d nor an ISO time such as 2026-12-01T08:00"), result.stderr
