"""Schedules (schedule add, list, show, pause, resume, remove, run) and retries of failed
jobs (retry)."""

from __future__ import annotations

import json
import sys

import click
import pandas as pd

from jobobs.cli.base import (
    DB_OPTION,
    JSON_OPTION,
    client,
    main,
    records,
    show,
    show_fields,
)
from jobobs.cli.submitting import job_spec, retry_options, retry_policy
from jobobs.execution.scheduling import timing
from jobobs.model import humane

LIST_COLUMNS = ["name", "enabled", "when", "next_run_at", "last_run_at", "last_job_id",
                "last_status", "waiting"]
LIST_HEADERS = {"next_run_at": "next run", "last_run_at": "last run", "last_job_id": "job",
                "last_status": "status"}
LIST_SPARE = ("last_run_at", "waiting", "enabled")  # left out first in a narrow terminal
BY_OPTION = click.option("--by", help="Who asks (default: your user name).")


@main.group()
def schedule():
    """Jobs that run on their own: on a cron expression or an interval, in a time zone,
    never two runs of a schedule at once. The server runs them (jobobs serve); without
    one, a schedule waits for it.

    Example: jobobs schedule add nightly --cron '0 2 * * *' --tz Europe/Paris --retries 3
    -- import 'in/orders-*.csv' --table orders --key id
    """


@schedule.command("add")
@DB_OPTION
@click.argument("name")
@click.option("--cron", metavar="'EXPR'", help="A cron expression: minute hour day month "
              "weekday ('*/15 * * * *', '0 2 * * 1-5'), or @hourly, @daily...")
@click.option("--every", metavar="INTERVAL", help="An interval: 30s, 5m, 1h, 1d.")
@click.option("--tz", default="UTC", show_default=True,
              help="The time zone of the cron expression (Europe/Paris...).")
@click.option("--overlap", type=click.Choice(["skip", "queue"]), default="skip",
              show_default=True, help="A tick while the last run has not ended: skipped, or "
              "run once it ends (at most one waits).")
@click.option("--catch-up", "catch_up", type=click.Choice(["none", "one", "all"]),
              default="one", show_default=True, help="The ticks missed while no server ran: "
              "none run, one run, or each run in turn.")
@retry_options
@click.option("--paused", is_flag=True, help="Add it paused (resume it to start).")
@click.argument("job", nargs=-1, required=True, type=click.UNPROCESSED)
@JSON_OPTION
def add(db, name, cron, every, tz, overlap, catch_up, retries, retry_delay, backoff,
        retry_on, paused, job, as_json):
    """Add schedule NAME: after --, its job as the import, export or run command would
    submit it (their options, checked now; an import's files may come later).

    Example: jobobs schedule add scores --every 10m --overlap queue -- run
    mymodule:score_customers 500
    """
    if (cron is None) == (every is None):
        raise click.UsageError("give --cron 'EXPR' or --every INTERVAL (one of them)")
    spec = job_spec(job)
    with client(db) as jobs:
        info = jobs.schedule(name, spec, cron=cron, every=every, tz=tz, overlap=overlap,
                             catch_up=catch_up,
                             retry=retry_policy(retries, retry_delay, backoff, retry_on),
                             enabled=not paused)
    _print(info, as_json)


@schedule.command("list")
@DB_OPTION
@JSON_OPTION
def list_(db, as_json):
    """Every schedule: when it runs next, its last run and that job's status.

    Example: jobobs schedule list --json
    """
    with client(db) as jobs:
        frame = jobs.schedules()
    frame.insert(2, "when", [_when(row) for row in records(frame)])
    show(frame if as_json else frame[LIST_COLUMNS], as_json, LIST_HEADERS, LIST_SPARE)


@schedule.command("show")
@DB_OPTION
@click.argument("name")
@click.option("--lines", default=20, show_default=True, type=click.IntRange(0),
              help="How many of its last log lines to show.")
@JSON_OPTION
def show_(db, name, lines, as_json):
    """One schedule, its job's spec and its last log lines (runs made, ticks skipped or
    missed, changes).

    Example: jobobs schedule show nightly
    """
    with client(db) as jobs:
        info = jobs.schedule_info(name)
        log = jobs.schedule_log(name, limit=lines)
    document = _document(info)
    if as_json:
        click.echo(json.dumps({**document, "log": records(log)}))
        return
    _print(info, False)
    if not log.empty:
        click.echo("")
        for line in reversed(records(log)):
            click.echo(f"{humane.moment(line['logged_at'])}  {line['level']:<7}  "
                       f"{line['message']}")


def _verb(verb: str, done: str):
    @DB_OPTION
    @click.argument("name")
    @BY_OPTION
    def command(db, name, by):
        with client(db) as jobs:
            getattr(jobs, f"{verb}_schedule")(name, by=by)
        click.echo(f"schedule {name} {done}")

    return command


schedule.command("pause", help="Run NAME no more until it is resumed (a run under way goes "
                 "on).\n\nExample: jobobs schedule pause nightly")(_verb("pause", "paused"))
schedule.command("resume", help="Run NAME again from its next tick (the ticks while it was "
                 "paused are not run).\n\nExample: jobobs schedule resume nightly")(
    _verb("resume", "resumed"))
schedule.command("remove", help="Delete NAME (its jobs and its log stay).\n\n"
                 "Example: jobobs schedule remove nightly")(_verb("remove", "removed"))


@schedule.command("run")
@DB_OPTION
@click.argument("name")
@BY_OPTION
@JSON_OPTION
def run_(db, name, by, as_json):
    """Run NAME's job now; its next tick stays when it was. Refused while its last run
    has not ended (with --overlap queue, it waits for it). With no server, the job runs
    here.

    Example: jobobs schedule run nightly
    """
    with client(db) as jobs:
        job_id = jobs.run_schedule(name, by=by)
        if job_id is not None and not jobs.served:  # it runs here: wait for it
            jobs.wait(job_id, progress=sys.stderr.isatty())
    if as_json:
        click.echo(json.dumps({"schedule": name, "job_id": job_id}))
    elif job_id is None:
        click.echo(f"schedule {name}: the run waits for the last one to end")
    else:
        click.echo(f"schedule {name}: job {job_id}")


@main.command()
@DB_OPTION
@click.argument("job_id", type=int, required=False)
@click.option("--error", help="Retry every failed job of this error group (as the "
              "dashboard's failures by error lists them; a part of it naming one group "
              "will do).")
@BY_OPTION
@JSON_OPTION
def retry(db, job_id, error, by, as_json):
    """Run a failed job again from its last checkpoint (its rejects and counters as the
    checkpoint left them), with its automatic retries anew; or every failed job of one
    error group. With no server, they run here.

    Example: jobobs retry 42        jobobs retry --error 'ConnectionError: <value> refused'
    """
    if (job_id is None) == (error is None):
        raise click.UsageError("give a job ID or --error TEXT (one of them)")
    with client(db) as jobs:
        ids = [job_id] if error is None else jobs.retry_failed(error, by=by)
        if error is None:
            jobs.retry(job_id, by=by)
        if not jobs.served:  # they run here: wait for them
            for retried in ids:
                jobs.wait(retried, progress=sys.stderr.isatty())
    if as_json:
        click.echo(json.dumps({"retried": ids}))
    else:
        click.echo(f"{len(ids)} job(s) queued again: {', '.join(map(str, ids))}")


def _when(info: dict) -> str:
    return timing(info.get("cron"), info.get("tz"), info.get("every_s"))


def _document(info: dict) -> dict:
    document = records(pd.DataFrame([info]))[0]
    document["spec"] = json.loads(document.get("spec") or "null")
    return document


def _print(info: dict, as_json: bool) -> None:
    document = _document(info)
    if as_json:
        click.echo(json.dumps(document))
        return
    spec = json.dumps(document.pop("spec"))
    document = {"name": document.pop("name"), "when": _when(info), **document, "spec": spec}
    show_fields([(None, list(document.items()))])

