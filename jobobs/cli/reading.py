"""Commands that read: list, show, journal, rejects, sql."""

from __future__ import annotations

import json
import re
import textwrap
import time
from typing import Any

import click

from jobobs.access import search
from jobobs.cli.base import (
    DB_OPTION,
    JSON_OPTION,
    client,
    job_document,
    main,
    records,
    show,
    show_job,
)
from jobobs.model import humane
from jobobs.model.states import ACTIVE, Status

LIST_COLUMNS = ["id", "status", "name", "kind", "has_warning", "started_at", "duration_s",
                "processed", "rejected", "progress"]
LIST_HEADERS = {"has_warning": "⚠", "started_at": "started", "duration_s": "duration"}
LIST_SPARE = ("kind", "has_warning", "started_at", "duration_s")  # when narrow
HISTORY_HEADERS = {"changed_at": "at", "from_status": "from", "to_status": "to"}
LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


def job_filters(command):
    """The options that choose jobs by status, kind and name (``list``, ``watch``)."""
    for option in reversed([
            click.option("--status", multiple=True,
                         type=click.Choice([s.value for s in Status]),
                         help="Only jobs in this status (repeatable)."),
            click.option("--kind", help="Only jobs of this kind (import, export, python)."),
            click.option("--name", help="Only jobs whose name contains this text.")]):
        command = option(command)
    return command


@main.command("list")
@DB_OPTION
@job_filters
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@JSON_OPTION
def list_jobs(db, status, kind, name, limit, as_json):
    """List jobs, newest first.

    Example: jobobs list --status failed --limit 10
    """
    with client(db) as jobs:
        frame = jobs.jobs(status=list(status), kind=kind, name=name, limit=limit)
    show(frame if as_json else frame[LIST_COLUMNS], as_json, LIST_HEADERS, LIST_SPARE)


@main.command("show")
@DB_OPTION
@click.argument("job_id", type=int)
@JSON_OPTION
def show_command(db, job_id, as_json):
    """Show one job: status, counters, progress, and its status history.

    Example: jobobs show 42 --json
    """
    with client(db) as jobs:
        frame, history = jobs.job(job_id), jobs.transitions(job_id)
    document = job_document(frame)
    spec = json.loads(frame["spec"].iloc[0] or "null")
    if as_json:
        document["spec"] = spec
        document["transitions"] = records(history)
        click.echo(json.dumps(document))
        return
    show_job(frame, False)
    click.echo("\nspec")
    click.echo(textwrap.indent(json.dumps(spec, indent=2), "  "))
    click.echo("\nhistory")
    show(history, False, HISTORY_HEADERS)


@main.command()
@DB_OPTION
@click.argument("job_id", type=int, required=False)
@click.option("--search", "text", help="Search every job's journal (or job ID's) for lines "
              "containing this text, ignoring case; newest first.")
@click.option("--name", help="Searching: only jobs whose name contains this text.")
@click.option("--code", help="Searching: only lines with this code.")
@click.option("--since", help="Searching: only lines from then on: an age (2h, 7d) or an "
              "ISO time (UTC unless it says otherwise).")
@click.option("--until", help="Searching: only lines before then (as --since).")
@click.option("--after", default=0, show_default=True, help="Only lines after this number.")
@click.option("--level", type=LEVELS, help="Minimum level.")
@click.option("--limit", type=click.IntRange(1), help="At most this many lines  "
              "[default: 1000, searching 100].")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job "
              "stops (Ctrl-C to leave).")
@JSON_OPTION
def journal(db, job_id, text, name, code, since, until, after, level, limit, follow,
            as_json):
    """Print a job's journal lines; --follow prints new ones as they come. With --search
    (or --name, --code, --since, --until) search every job's journal at once.

    Example: jobobs journal --search timeout --level warning --since 1d
    """
    searching = any(value is not None for value in (text, name, code, since, until))
    if job_id is None and not searching:
        raise click.UsageError("give a job ID, or --search TEXT to search every job's "
                               "journal")
    if searching and (follow or after):
        raise click.UsageError("--follow and --after read one job's journal; they do not "
                               "go with --search, --name, --code, --since or --until")
    if searching:
        try:
            window = {key: search.when(value) for key, value in
                      (("since", since), ("until", until)) if value is not None}
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--since/--until") from None
        with client(db) as jobs:
            if job_id is not None:
                jobs.job(job_id)
            lines = search.search(jobs.connection(), text, level=level, code=code, name=name,
                                  job_id=job_id, limit=limit or 100, **window)
        if as_json or lines.empty:
            show(lines, as_json)
        else:
            click.echo("\n".join(_journal_text(line) for line in records(lines)))
        return
    limit = limit or 1000
    with client(db) as jobs:
        jobs.job(job_id)  # an unknown id is one clear line
        if not follow:
            lines = jobs.journal(job_id, after=after, level=level, limit=limit)
            if as_json or lines.empty:
                show(lines, as_json)
            else:
                click.echo("\n".join(_journal_text(line) for line in records(lines)))
            return
        try:
            while True:
                active = Status(jobs.info(job_id).status) in ACTIVE
                while True:  # everything up to now, in pages
                    lines = jobs.journal(job_id, after=after, level=level, limit=limit)
                    for line in records(lines):
                        click.echo(json.dumps(line) if as_json else _journal_text(line))
                    if len(lines):
                        after = int(lines["seq"].iloc[-1])
                    if len(lines) < limit:
                        break
                if not active:
                    return
                time.sleep(0.3)
        except KeyboardInterrupt:
            return


def _journal_text(line: dict[str, Any]) -> str:
    """A journal line as text. A message of several lines (a traceback) goes on under its
    first, indented to where the message starts, so each entry stays one block."""
    head = f"{line['seq']:>6} {line['logged_at']} {line['level']:<7} "
    if "job_id" in line:  # a search's line, of any job: `job 42 name  time  LEVEL  message`
        head = (f"job {line['job_id']} {_printable(line['name'])}  "
                f"{humane.moment(line['logged_at'])}  {line['level']:<7}  ")
    if line.get("code"):
        head += f"{line['code']} "
    message = _printable(line["message"]) if "job_id" in line else str(line["message"])
    first, *more = message.splitlines() or [""]
    return "\n".join([head + first, *(" " * len(head) + text for text in more)])


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(text: Any) -> str:
    """A text of any job without the control characters (ESC and the other C0 ones, but
    tab and newline) that would drive the terminal, as rich tables leave them out."""
    return _CONTROL.sub("", str(text))


@main.command()
@DB_OPTION
@click.argument("job_id", type=int)
@click.option("--limit", type=click.IntRange(1), help="At most this many rejects.")
@click.option("--to", "to", type=click.Path(dir_okay=False), help="Write them to a CSV file.")
@JSON_OPTION
def rejects(db, job_id, limit, to, as_json):
    """Print a job's rejected records, or write them to a CSV file to fix and replay.

    Example: jobobs rejects 42 --to rejects.csv
    """
    with client(db) as jobs:
        if to:
            count = jobs.export_rejects(job_id, to)
            click.echo(json.dumps({"job": job_id, "rejects": count, "to": to}) if as_json
                       else f"{count} rejects written to {to}")
            return
        jobs.job(job_id)
        show(jobs.rejects(job_id, limit=limit), as_json)


@main.command()
@DB_OPTION
@click.argument("query")
@JSON_OPTION
def sql(db, query, as_json):
    """Answer a read-only SQL query over the history (tables and views in docs/sql.md).
    Analysts without the server's token set JOBOBS_URL to the dashboard's address and
    JOBOBS_ANALYST_TOKEN to the token in DB.analyst-token.

    Example: jobobs sql "SELECT name, avg(duration_s) FROM job_runs GROUP BY name"
    """
    with client(db) as jobs:
        show(jobs.sql(query), as_json)
