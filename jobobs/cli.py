"""The ``jobobs`` command line: each command parses its arguments, calls one library
function and prints the result; library errors print one line and exit 1."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from typing import Any

import click
import duckdb
import pandas as pd

from jobobs import queries
from jobobs.errors import JobobsError

DB_OPTION = click.option(
    "--db", default="jobs.duckdb", envvar="JOBOBS_DB", show_default=True,
    help="The jobobs database file (or set JOBOBS_DB).",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


class Group(click.Group):
    """Turns jobobs and DuckDB errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobobsError as error:
            raise click.ClickException(str(error)) from None
        except duckdb.IOException as error:
            raise click.ClickException(_lock_message(str(error))) from None
        except duckdb.Error as error:
            raise click.ClickException(str(error).splitlines()[0]) from None


def _lock_message(text: str) -> str:
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        who = f"process {pid.group(1)}" if pid else "another process"
        return f"the database is in use by {who}; stop it or run this command through it"
    return text.splitlines()[0]


@click.group(cls=Group)
@click.version_option(package_name="jobobs")
def main() -> None:
    """Observable, controllable import and export jobs, with their history in DuckDB."""


def _read(db: str) -> duckdb.DuckDBPyConnection:
    from jobobs.store import Store

    Store(db).close()  # creates or migrates the file, so reads never meet a missing table
    return duckdb.connect(db, read_only=True)


def _print(frame: pd.DataFrame, as_json: bool) -> None:
    if as_json:
        click.echo(frame.to_json(orient="records", date_format="iso", date_unit="ms"))
    elif frame.empty:
        click.echo("(none)")
    else:
        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            click.echo(frame.to_string(index=False))


@main.command("list")
@DB_OPTION
@click.option("--status", multiple=True, help="Only jobs in this status (repeatable).")
@click.option("--kind", help="Only jobs of this kind (import, export, python).")
@click.option("--name", help="Only jobs whose name contains this text.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@JSON_OPTION
def list_jobs(db, status, kind, name, limit, as_json):
    """List jobs, newest first.

    Example: jobobs list --status failed --limit 10
    """
    frame = queries.jobs(_read(db), status=list(status), kind=kind, name=name, limit=limit)
    if not as_json:
        frame = frame[["id", "name", "kind", "label", "has_warning", "started_at",
                       "duration_s", "processed", "rejected", "progress"]]
    _print(frame, as_json)


@main.command()
@DB_OPTION
@click.argument("job_id", type=int)
@JSON_OPTION
def show(db, job_id, as_json):
    """Show one job: status, counters, progress, and its status history.

    Example: jobobs show 42 --json
    """
    con = _read(db)
    frame = queries.job(con, job_id)
    if frame.empty:
        raise click.ClickException(f"job {job_id} does not exist")
    if as_json:
        row = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms"))[0]
        row["transitions"] = json.loads(queries.transitions(con, job_id).to_json(
            orient="records", date_format="iso", date_unit="ms"))
        click.echo(json.dumps(row))
        return
    _print(frame.T.reset_index().set_axis(["field", "value"], axis=1), False)
    click.echo()
    _print(queries.transitions(con, job_id), False)


@main.command()
@DB_OPTION
@click.argument("job_id", type=int)
@click.option("--after", default=0, show_default=True, help="Only lines after this number.")
@click.option("--level", type=click.Choice(["debug", "info", "warning", "error"],
                                           case_sensitive=False), help="Minimum level.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1))
@JSON_OPTION
def journal(db, job_id, after, level, limit, as_json):
    """Print a job's journal lines.

    Example: jobobs journal 42 --level warning
    """
    _print(queries.journal(_read(db), job_id, after=after, level=level, limit=limit), as_json)


@main.command()
@DB_OPTION
@click.argument("job_id", type=int)
@click.option("--limit", type=click.IntRange(1), help="At most this many rejects.")
@JSON_OPTION
def rejects(db, job_id, limit, as_json):
    """Print a job's rejected records.

    Example: jobobs rejects 42 --json
    """
    _print(queries.rejects(_read(db), job_id, limit=limit), as_json)


def _control(command: str):
    @DB_OPTION
    @click.argument("job_id", type=int)
    @click.option("--by", help="Who asks (default: your user name).")
    def control(db, job_id, by):
        from jobobs.commands import check_request, current_user
        from jobobs.store import Store

        store = Store(db)
        try:
            check_request(job_id, command, store.status(job_id))
            command_id = store.request(job_id, command, by=by or current_user(), now=_now())
        finally:
            store.close()
        click.echo(f"{command} of job {job_id} requested (request {command_id}); the runtime "
                   "that owns the database carries it out")

    control.__doc__ = (f"Request that a job {command}.\n\n"
                       f"Example: jobobs {command} 42")
    return control


for _command in ("start", "pause", "resume", "cancel"):
    main.command(_command)(_control(_command))


@main.command()
@DB_OPTION
@click.argument("target")
@click.argument("args", nargs=-1)
@click.option("--name", help="The job's name (default: the function's).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1))
@JSON_OPTION
def run(db, target, args, name, workers, as_json):
    """Run a Python job MODULE:FUNCTION here and wait for it; ARGS are passed as JSON values
    where they parse as JSON, else as text.

    Example: jobobs run jobobs.demo:score_customers 500
    """
    from jobobs.job import resolve
    from jobobs.runtime import Runtime

    values = [_json_or_text(arg) for arg in args]
    sys.path.insert(0, ".")
    definition = resolve(target)
    with Runtime(db, workers=workers) as rt:
        info = rt.submit(definition, *values, name=name).wait()
    _print(pd.DataFrame([{k: info[k] for k in ("id", "name", "kind", "status", "processed",
                                               "rejected", "warnings", "error")}]), as_json)
    if info.status.value == "failed":
        sys.exit(1)


@main.command()
@DB_OPTION
@click.option("--older-than", "age", required=True, help="An age such as 30d, 12h or 90m.")
def purge(db, age):
    """Delete journal lines, rejects and finished jobs older than an age.

    Example: jobobs purge --older-than 30d
    """
    from jobobs.store import Store

    store = Store(db)
    try:
        counts = store.purge(before=_now() - _age(age).total_seconds())
    finally:
        store.close()
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()) + " deleted")


@main.command()
@DB_OPTION
@click.option("--workers", default=3, show_default=True, type=click.IntRange(1))
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0.01, 100),
              help="Make the demo jobs longer or shorter.")
def demo(db, workers, scale):
    """Run a mix of demo jobs with live progress, then show where their history is.

    Example: jobobs demo --db demo.duckdb
    """
    from jobobs import demo as demo_jobs
    from jobobs.progress import watch
    from jobobs.runtime import Runtime

    with Runtime(db, workers=workers) as rt:
        ids = demo_jobs.run(rt, scale=scale)
        watch(rt, ids)
    click.echo(f"\nThe history is in {db}. Try:\n"
               f"  jobobs list --db {db}\n"
               f"  jobobs journal {ids[0]} --db {db}\n"
               f"  duckdb {db} \"SELECT name, label, duration_s, rejected FROM job_runs\"")


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def _age(text: str) -> timedelta:
    match = _AGE.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not an age such as 30d, 12h or 90m",
                                 param_hint="--older-than")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    return timedelta(**{unit[match.group(2)]: float(match.group(1))})


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _now() -> float:
    import time

    return time.time()
