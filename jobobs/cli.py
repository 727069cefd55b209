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
@click.option("--to", "to", type=click.Path(dir_okay=False), help="Write them to a CSV file.")
@JSON_OPTION
def rejects(db, job_id, limit, to, as_json):
    """Print a job's rejected records, or write them to a CSV file to fix and replay.

    Example: jobobs rejects 42 --to rejects.csv
    """
    if to:
        from jobobs.jobs.rejects import export_rejects

        click.echo(f"{export_rejects(_read(db), job_id, to)} rejects written to {to}")
        return
    _print(queries.rejects(_read(db), job_id, limit=limit), as_json)


def _run_here(db: str, submit, as_json: bool) -> None:
    """Run one job in a runtime of this process, wait for it, print it; exit 1 if it failed."""
    from jobobs.runtime import Runtime

    with Runtime(db, workers=1) as rt:
        info = submit(rt).wait()
    fields = ("id", "name", "kind", "status", "total", "processed", "succeeded", "rejected",
              "doubles", "duplicates", "warnings", "error")
    _print(pd.DataFrame([{k: info[k] for k in fields}]), as_json)
    if info.status.value != "finished":
        sys.exit(1)


def _max_rejects(text: str | None) -> int | str | None:
    if text is None:
        return 100
    if text.lower() == "none":
        return None
    return text if text.endswith("%") else _integer(text, "--max-rejects")


def _integer(text: str, hint: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number, a percentage or none",
                                 param_hint=hint) from None


def _columns(text: str | None) -> dict[str, str] | None:
    """``id BIGINT, name VARCHAR`` (or a JSON object) to a name -> type dict."""
    if not text:
        return None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            raise click.BadParameter("not a JSON object", param_hint="--columns") from None
    columns = {}
    for part in text.split(","):
        name, _, kind = part.strip().partition(" ")
        if not name or not kind.strip():
            raise click.BadParameter(f"{part.strip()!r} is not 'name TYPE'",
                                     param_hint="--columns")
        columns[name] = kind.strip()
    return columns


@main.command("import")
@DB_OPTION
@click.argument("source", nargs=-1, required=True)
@click.option("--table", required=True, help="The target table.")
@click.option("--columns", help="Column types, 'id BIGINT, name VARCHAR' (default: sniffed).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]))
@click.option("--delimiter", default=",", show_default=True)
@click.option("--quote", default='"', show_default=True)
@click.option("--no-header", is_flag=True, help="The CSV files have no header line.")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--mode", type=click.Choice(["append", "replace", "upsert"]), default="append",
              show_default=True)
@click.option("--key", multiple=True, help="Key column (repeatable), for doubles, duplicates "
              "and upsert.")
@click.option("--doubles", type=click.Choice(["update", "ignore", "reject"]), default="update",
              show_default=True, help="A key repeated in the input.")
@click.option("--duplicates", type=click.Choice(["update", "ignore", "reject"]),
              default="reject", show_default=True, help="A key already in the table.")
@click.option("--max-rejects", help="Stop after N rejects, or P%, or none.  [default: 100]")
@click.option("--keep-chunks", is_flag=True, help="On failure keep the chunks already loaded "
              "(default: all or nothing).")
@click.option("--dry-run", is_flag=True, help="Check and record rejects; write nothing.")
@click.option("--name", help="The job's name.")
@JSON_OPTION
def import_(db, source, table, columns, fmt, delimiter, quote, no_header, encoding, mode, key,
            doubles, duplicates, max_rejects, keep_chunks, dry_run, name, as_json):
    """Import files (CSV, Parquet, JSON; globs allowed) into a table, here, and wait.

    Example: jobobs import 'data/customers_*.csv' --table customers --key id --max-rejects 5%
    """
    from jobobs.jobs import importing

    options = dict(columns=_columns(columns), format=fmt, delimiter=delimiter, quote=quote,
                   escape=quote, header=not no_header, encoding=encoding, mode=mode,
                   key=list(key), doubles=doubles, duplicates=duplicates,
                   max_rejects=_max_rejects(max_rejects),
                   on_failure="keep" if keep_chunks else "rollback", dry_run=dry_run)
    sources = list(source) if len(source) > 1 else source[0]
    _run_here(db, lambda rt: importing.submit(rt, sources, table, name=name, **options),
              as_json)


@main.command("export")
@DB_OPTION
@click.option("--query", help="The SQL query to export.")
@click.option("--table", help="The table to export.")
@click.option("--to", "to", required=True, help="The file to write.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]))
@click.option("--delimiter", default=",", show_default=True)
@click.option("--no-header", is_flag=True)
@click.option("--date-format", help="strftime format for dates, such as %d/%m/%Y.")
@click.option("--limit", type=click.IntRange(0), help="At most this many rows.")
@click.option("--watermark", help="Differential: only rows whose column is above last run's.")
@click.option("--name", help="The job's name (differential exports remember by name).")
@JSON_OPTION
def export(db, query, table, to, fmt, delimiter, no_header, date_format, limit, watermark,
           name, as_json):
    """Export a query or a table to a file, here, and wait.

    Example: jobobs export --table orders --to out/orders.csv.gz --watermark id
    """
    from jobobs.jobs import exporting

    options = dict(query=query, table=table, format=fmt, delimiter=delimiter,
                   header=not no_header, date_format=date_format, limit=limit,
                   watermark=watermark)
    _run_here(db, lambda rt: exporting.submit(rt, to, name=name, **options), as_json)


@main.command()
@DB_OPTION
@click.argument("job_id", type=int)
@click.argument("corrected", type=click.Path(dir_okay=False))
@JSON_OPTION
def replay(db, job_id, corrected, as_json):
    """Import a corrected rejects file (from rejects --to) with the options of an import.

    Example: jobobs replay 42 rejects-fixed.csv
    """
    from jobobs.jobs.rejects import replay as replay_rejects

    _run_here(db, lambda rt: replay_rejects(rt, job_id, corrected), as_json)


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
@JSON_OPTION
def run(db, target, args, name, as_json):
    """Run a Python job MODULE:FUNCTION here and wait for it; ARGS are passed as JSON values
    where they parse as JSON, else as text.

    Example: jobobs run jobobs.demo:score_customers 500
    """
    from jobobs.job import resolve

    values = [_json_or_text(arg) for arg in args]
    sys.path.insert(0, ".")
    definition = resolve(target)
    _run_here(db, lambda rt: rt.submit(definition, *values, name=name), as_json)


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
