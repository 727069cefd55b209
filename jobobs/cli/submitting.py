"""Commands that submit jobs (import, export, run, replay) and run the product (serve,
demo), and purge."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import click

from jobobs.cli.base import DB_OPTION, JSON_OPTION, client, database, main, show_job
from jobobs.execution.submissions import RESERVED as SUBMIT_TAKES
from jobobs.model.states import Status

WAIT_OPTION = click.option("--wait", is_flag=True, help="Wait for the job to stop, showing "
                           "its progress (always, when no server runs).")


# Set while `schedule add` reads its job's command: the command gives its spec, it does
# not submit (``job_spec``).
_SPEC_ONLY: ContextVar[list[dict[str, Any]] | None] = ContextVar("spec_only", default=None)


def _submit(db: str | None, submit, wait: bool, as_json: bool) -> None:
    """Submit through the client; without a server the job runs here, so wait for it.
    With --wait, exit 1 unless the job finished."""
    specs = _SPEC_ONLY.get()
    if specs is not None:
        specs.append(submit(_Specs()))
        return
    with client(db, workers=1) as jobs:
        job_id = submit(jobs)
        if jobs.served and not wait:
            show_job(jobs.job(job_id), as_json)
            return
        info = jobs.wait(job_id, progress=sys.stderr.isatty())
        show_job(jobs.job(job_id), as_json)
    if info.status is not Status.FINISHED:
        sys.exit(1)


class _Specs:
    """Stands in for the client while a command only gives its job's spec: the job a
    schedule submits (its files may not exist yet)."""

    served = True  # the server imports a Python job's function

    def submit(self, function, *args, **how):
        from jobobs.access.submissions import python_spec

        return python_spec(function, *args, **how)

    def submit_import(self, source, table, **options):
        from jobobs.access.submissions import import_spec

        return import_spec(source, table, files_now=False, **options)

    def submit_export(self, to, **options):
        from jobobs.access.submissions import export_spec

        return export_spec(to, **options)


JOB_COMMANDS = ("import", "export", "run")


def job_spec(args: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The spec of the job ``import|export|run ARGS...`` would submit, read by that very
    command (its options, checks and defaults), without submitting it."""
    if not args or args[0] not in JOB_COMMANDS:
        raise click.UsageError("after --, give the job as its command: import ..., "
                               "export ... or run MODULE:FUNCTION ...")
    command = main.commands[args[0]]
    specs: list[dict[str, Any]] = []
    token = _SPEC_ONLY.set(specs)
    try:
        with command.make_context(f"jobobs schedule add NAME ... -- {args[0]}",
                                  list(args[1:])) as context:
            misplaced = [f"--{name.replace('as_', '')}" for name in ("db", "wait", "as_json")
                         if context.params.get(name)]
            if misplaced:
                raise click.UsageError(f"{', '.join(misplaced)} after -- would be the job's: "
                                       "give --db and --json before --; a schedule's job is "
                                       "not waited for")
            command.invoke(context)
    finally:
        _SPEC_ONLY.reset(token)
    return specs[0]


def _duration(text: str | None, hint: str) -> float | None:
    """A duration, 30s, 5m, 1h or seconds, as seconds."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return _age(text).total_seconds()
    except click.BadParameter:
        raise click.BadParameter(f"{text!r} is not a duration such as 30s, 5m or 1h",
                                 param_hint=hint) from None


def retry_options(function):
    """``--retries``, ``--retry-delay``, ``--backoff``, ``--retry-on``: a job's (or a
    schedule's) retry policy, as the ``retry`` argument of the command."""
    for option in reversed((
        click.option("--retries", type=click.IntRange(0, 100), default=0,
                     show_default=True, help="Retry a failed run this many times, each from "
                     "its last checkpoint."),
        click.option("--retry-delay", default="30s", show_default=True,
                     help="Wait before the first retry (30s, 5m, 1h)."),
        click.option("--backoff", type=click.FloatRange(1, 100), default=2.0,
                     show_default=True, help="Each next retry waits this many times longer."),
        click.option("--retry-on", multiple=True, metavar="EXCEPTION",
                     help="Retry only failures of this exception class or a subclass "
                     "(repeatable; TooManyRejects is retried only when named).  "
                     "[default: any failure but too many rejects]"),
    )):
        function = option(function)
    return function


def retry_policy(retries: int, retry_delay: str, backoff: float,
                 retry_on: tuple[str, ...]) -> Any:
    """The ``Retry`` the retry options give (None: no retries)."""
    from jobobs.model.errors import JobobsError
    from jobobs.model.retries import Retry

    if not retries:
        return None
    try:
        return Retry(retries, delay=_duration(retry_delay, "--retry-delay"), backoff=backoff,
                     on=retry_on or None)
    except JobobsError as error:
        raise click.UsageError(str(error)) from None


def _max_rejects(text: str | None) -> int | str | None:
    if text is None:
        return 100
    if text.lower() == "none":
        return None
    if text.endswith("%"):
        return text
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number, a percentage or none",
                                 param_hint="--max-rejects") from None


def _columns(text: str | None) -> dict[str, str] | None:
    """A table's column list, ``id BIGINT, "first name" VARCHAR, amount DECIMAL(12,2)``, or
    a JSON object, to a name -> type dict: read by DuckDB, in its own type names."""
    from jobobs.db.sql import parse_columns
    from jobobs.model.errors import JobobsError

    if not text:
        return None
    columns: Any = text
    if text.lstrip().startswith("{"):
        try:
            columns = json.loads(text)
        except ValueError:
            raise click.BadParameter("not a JSON object", param_hint="--columns") from None
    try:
        return parse_columns(columns)
    except JobobsError as error:
        raise click.BadParameter(str(error), param_hint="--columns") from None


def _bad_values(items: tuple[str, ...]) -> str | dict[str, str] | None:
    """``--bad-values`` items, POLICY (every column) or COLUMN=POLICY, as the import's
    ``bad_values``: one policy, or a policy by column ("*": every other column)."""
    from jobobs.kinds.sources import BAD_VALUES

    policies: dict[str, str] = {}
    for item in items:
        column, _, policy = item.rpartition("=")
        column = column.strip() if "=" in item else "*"
        if not column or policy.strip() not in BAD_VALUES:
            raise click.BadParameter(f"{item!r} is not POLICY or COLUMN=POLICY, with POLICY "
                                     f"one of {', '.join(BAD_VALUES)}",
                                     param_hint="--bad-values")
        if column in policies:
            raise click.BadParameter("a policy for " + ("every column" if column == "*" else
                                                        repr(column)) + " is given twice",
                                     param_hint="--bad-values")
        policies[column] = policy.strip()
    if not policies:
        return None
    return policies["*"] if list(policies) == ["*"] else policies


@main.command("import")
@DB_OPTION
@click.argument("source", nargs=-1, required=True)
@click.option("--table", required=True, help="The target table.")
@click.option("--columns", help="Column types as a table declares them, 'id BIGINT, "
              "amount DECIMAL(12,2), \"first name\" VARCHAR', or a JSON object "
              "(default: sniffed).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]))
@click.option("--delimiter", default=",", show_default=True)
@click.option("--quote", default='"', show_default=True)
@click.option("--no-header", is_flag=True, help="The CSV files have no header line.")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--empty-as-null/--keep-empty", default=True, show_default=True,
              help="A quoted empty CSV field (\"\") is NULL, or kept as an empty text.")
@click.option("--mode", type=click.Choice(["append", "replace", "upsert"]), default="append",
              show_default=True)
@click.option("--key", multiple=True, help="Key column (repeatable), for doubles, duplicates "
              "and upsert.")
@click.option("--doubles", type=click.Choice(["update", "ignore", "reject"]), default="update",
              show_default=True, help="A key repeated in the input.")
@click.option("--duplicates", type=click.Choice(["update", "ignore", "reject"]),
              help="A key already in the table.  [default: reject; update with upsert]")
@click.option("--max-rejects", help="Stop after N rejects, or P%, or none.  [default: 100]")
@click.option("--bad-values", "bad_values", multiple=True, metavar="[COLUMN=]POLICY",
              help="A value its column cannot take: reject the line, ignore it (NULL, with a "
              "warning reject) or stop the import; for every column, or COLUMN=POLICY for "
              "one (repeatable).  [default: reject]")
@click.option("--keep-chunks", is_flag=True, help="On failure keep the chunks already loaded "
              "(default: all or nothing).")
@click.option("--dry-run", is_flag=True, help="Check and record rejects; write nothing.")
@click.option("--dataset", type=click.Path(file_okay=False),
              help="Write the rows as Parquet files into this folder (storage the Dask "
              "workers share) instead of into the table.")
@click.option("--name", help="The job's name.")
@retry_options
@WAIT_OPTION
@JSON_OPTION
def import_(db, source, table, columns, fmt, delimiter, quote, no_header, encoding,
            empty_as_null, mode, key, doubles, duplicates, max_rejects, bad_values,
            keep_chunks, dry_run, dataset, name, retries, retry_delay, backoff, retry_on,
            wait, as_json):
    """Import files (CSV, Parquet, JSON; globs allowed) into a table.

    Example: jobobs import 'data/customers_*.csv' --table customers --key id --max-rejects 5%

    Declared columns: --columns 'id BIGINT, amount DECIMAL(12,2), "first name" VARCHAR'
    """
    options = dict(columns=_columns(columns), format=fmt, delimiter=delimiter, quote=quote,
                   escape=quote, header=not no_header, encoding=encoding,
                   empty_as_null=empty_as_null, mode=mode, key=list(key), doubles=doubles,
                   duplicates=duplicates, max_rejects=_max_rejects(max_rejects),
                   on_failure="keep" if keep_chunks else "rollback", dry_run=dry_run,
                   dataset=dataset)
    policy = _bad_values(bad_values)
    if policy is not None:
        options["bad_values"] = policy
    sources = list(source) if len(source) > 1 else source[0]
    retry = retry_policy(retries, retry_delay, backoff, retry_on)
    _submit(db, lambda jobs: jobs.submit_import(sources, table, name=name, retry=retry,
                                                **options), wait, as_json)


@main.command("export")
@DB_OPTION
@click.option("--query", help="The SQL query to export.")
@click.option("--table", help="The table to export.")
@click.option("--to", "to", required=True, help="The file to write: .csv, .parquet, .json "
              "or .xlsx (.csv and .json may end in .gz or .zst); the file name may hold "
              "{date} (UTC, YYYY-MM-DD), {job_id} and {seq} (1, 2, 3... per export name).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json", "xlsx"]),
              help="The format, whatever the file's name.")
@click.option("--delimiter", default=",", show_default=True)
@click.option("--no-header", is_flag=True)
@click.option("--date-format", help="strftime format for dates, such as %d/%m/%Y.")
@click.option("--limit", type=click.IntRange(0), help="At most this many rows.")
@click.option("--watermark", help="Differential: only the rows not exported by the last "
              "runs of this name (above the column's last value, or at it and not sent).")
@click.option("--key", multiple=True, help="With --watermark: a column that names a row "
              "(repeatable; default: the whole row).")
@click.option("--write-empty", is_flag=True, help="With --watermark: write a file even when "
              "there are no new rows (by default the last file is left as it was).")
@click.option("--name", help="The job's name (differential exports remember by name).")
@retry_options
@WAIT_OPTION
@JSON_OPTION
def export(db, query, table, to, fmt, delimiter, no_header, date_format, limit, watermark,
           key, write_empty, name, retries, retry_delay, backoff, retry_on, wait, as_json):
    """Export a query or a table to a file.

    Example: jobobs export --table orders --to 'out/orders-{seq}.csv.gz' --watermark id
    """
    options = dict(query=query, table=table, format=fmt, delimiter=delimiter,
                   header=not no_header, date_format=date_format, limit=limit,
                   watermark=watermark, key=list(key) or None, write_empty=write_empty)
    retry = retry_policy(retries, retry_delay, backoff, retry_on)
    _submit(db, lambda jobs: jobs.submit_export(to, name=name, retry=retry, **options), wait,
            as_json)


@main.command()
@DB_OPTION
@click.argument("job_id", type=int)
@click.argument("corrected", type=click.Path(dir_okay=False))
@click.option("--name", help="The new job's name.")
@WAIT_OPTION
@JSON_OPTION
def replay(db, job_id, corrected, name, wait, as_json):
    """Import a corrected rejects file (from rejects --to) with the options of an import.

    Example: jobobs replay 42 rejects-fixed.csv
    """
    _submit(db, lambda jobs: jobs.replay(job_id, corrected, name=name), wait, as_json)


@main.command()
@DB_OPTION
@click.argument("target")
@click.argument("args", nargs=-1)
@click.option("--name", help="The job's name (default: the function's).")
@retry_options
@WAIT_OPTION
@JSON_OPTION
def run(db, target, args, name, retries, retry_delay, backoff, retry_on, wait, as_json):
    """Run a Python job MODULE:FUNCTION. ARGS are positional values, and KEY=VALUE ones
    keyword arguments; each value is JSON where it parses as JSON, else text. A positional
    text holding '=' is written as a JSON string: '"a=b"'.

    Example: jobobs run jobobs.demo:score_customers 500 delay=0.2
    """
    values, keywords = _arguments(args)
    sys.path.insert(0, os.getcwd())
    here = _import_here(target, values, keywords)
    retry = retry_policy(retries, retry_delay, backoff, retry_on)
    _submit(db, lambda jobs: _submit_function(jobs, target, values, keywords, name, here,
                                              retry), wait, as_json)


_KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)
RESERVED = ("function", "self", *SUBMIT_TAKES)  # names Client.submit takes for itself


def _arguments(texts: tuple[str, ...]) -> tuple[list[Any], dict[str, Any]]:
    """``run``'s ARGS as positional values and KEY=VALUE keyword arguments."""
    values, keywords = [], {}
    for text in texts:
        match = _KEYWORD.fullmatch(text)
        if match is None:
            values.append(_json_or_text(text))
            continue
        key, value = match.groups()
        if key in keywords:
            raise click.BadParameter(f"{key}= is given twice", param_hint="ARGS")
        if key in RESERVED:
            raise click.BadParameter(f"a keyword argument cannot be called {key}= here; "
                                     "pass it by position", param_hint="ARGS")
        keywords[key] = _json_or_text(value)
    return values, keywords


def _import_here(target: str, values: list[Any], keywords: dict[str, Any]) -> str | None:
    """Import the function in this process to check its arguments; return why it cannot be
    imported here (with a server, only the server needs to import it)."""
    from jobobs.model.definition import check_arguments, resolve
    from jobobs.model.errors import JobDefinitionError

    try:
        definition = resolve(target, by="this command")
    except JobDefinitionError as error:
        return str(error)
    check_arguments(definition, values, keywords)
    return None


def _submit_function(jobs, target: str, values: list[Any], keywords: dict[str, Any],
                     name: str | None, here: str | None, retry: Any = None) -> int:
    """Submit the job, saying which side could not import its function: with no server
    the job runs in this command; with one, in the server."""
    from jobobs.model.errors import JobDefinitionError

    if here is not None and not jobs.served:
        raise JobDefinitionError(f"{here} (no server runs, so the job runs in this command: "
                                 "run it from the module's folder or set PYTHONPATH)")
    try:
        return jobs.submit(target, *values, name=name, retry=retry, **keywords)
    except JobDefinitionError as error:
        if here is not None or "cannot be found by the server" not in str(error):
            raise
        raise JobDefinitionError(f"{error}; this command can import it: install the module "
                                 "where the server runs, or add its folder to the server's "
                                 "PYTHONPATH") from None


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@main.command()
@DB_OPTION
@click.option("--older-than", "age", required=True, help="An age such as 30d, 12h or 90m.")
def purge(db, age):
    """Delete journal lines, rejects and finished jobs older than an age.

    Example: jobobs purge --older-than 30d
    """
    with client(db) as jobs:
        counts = jobs.purge(_age(age))
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()) + " deleted")


def _age(text: str) -> timedelta:
    from jobobs.access.search import age

    try:
        return age(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an age such as 30d, 12h or 90m",
                                 param_hint="--older-than") from None


HOST_OPTION = click.option("--host", default="127.0.0.1", show_default=True,
                           help="The address the dashboard and Quack listen on.")
PORT_OPTION = click.option("--port", type=click.IntRange(1, 65535), envvar="JOBOBS_PORT",
                           default=5006, show_default=True,
                           help="The dashboard's port (or set JOBOBS_PORT).")
QUACK_OPTION = click.option("--quack-port", type=click.IntRange(1, 65535), default=9494,
                            show_default=True, help="The Quack endpoint's port.")


def _path(db: str | None) -> str:
    from jobobs.access.client import DEFAULT_DB

    return database(db) or os.environ.get("JOBOBS_DB") or DEFAULT_DB


def _retention(ctx: click.Context, param: click.Parameter, text: str | None
               ) -> timedelta | None:
    """``serve --retention``: an age as ``purge --older-than`` takes it, more than 0."""
    if text is None:
        return None
    try:
        age = _age(text)
    except click.BadParameter as error:
        raise click.BadParameter(error.message, ctx, param) from None
    if not age:
        raise click.BadParameter("a retention of 0 would purge every job as it ends; "
                                 "give an age such as 30d", ctx, param)
    return age


@main.command()
@DB_OPTION
@HOST_OPTION
@PORT_OPTION
@QUACK_OPTION
@click.option("--workers", type=click.IntRange(1),
              help="Jobs that run at once [default: 4; with Dask, the cluster's threads].")
@click.option("--executor", type=click.Choice(["threads", "dask"]), default="threads",
              show_default=True, help="Run jobs on this process's threads, or on a Dask "
              "cluster (pip install 'jobobs[dask]').")
@click.option("--scheduler", metavar="TCP://HOST:PORT",
              help="The Dask scheduler of an existing cluster (with --executor dask).")
@click.option("--dask-workers", type=click.IntRange(1),
              help="Start a local Dask cluster of this many worker processes (with "
              "--executor dask, without --scheduler; default 2).")
@click.option("--worker-threads", type=click.IntRange(1),
              help="DuckDB threads each job may use on its Dask worker [default: the "
              "worker machine's cores].")
@click.option("--scratch", type=click.Path(file_okay=False),
              help="A folder all Dask workers share, for imports' staging tables "
              "[default: DB.scratch beside the database].")
@click.option("--users", type=click.Path(dir_okay=False),
              help="Ask people to sign in: the users file `jobobs passwd` writes (mode "
              "600); viewers may look, operators may also act.")
@click.option("--session-hours", type=click.FloatRange(0.01, 24 * 30), default=12.0,
              show_default=True, help="A sign-in lasts this long (with --users).")
@click.option("--export-dir", "export_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A folder exports may write to (repeatable; default: the current one).")
@click.option("--stall-timeout", type=click.FloatRange(1), default=600.0, show_default=True,
              help="Fail a job with no progress, journal line or checkpoint for this many "
              "seconds, and replace its worker.")
@click.option("--analyst-token-file", type=click.Path(dir_okay=False),
              help="The analysts' read-only token (made when missing) "
              "[default: DB.analyst-token].")
@click.option("--analyst-group", metavar="GROUP",
              help="Let this Unix group read the analyst token file (mode 640).")
@click.option("--retention", metavar="AGE", callback=_retention,
              help="Purge jobs that ended longer ago than this age (30d, 12h, 90m), with "
              "their journal lines and rejects: at start and every hour.")
@click.option("--alerts", "alerts_file", type=click.Path(dir_okay=False),
              help="The alert rules, a TOML or YAML file (README, \"Alerts and "
              "notifications\") [default: failed, shut down and slower than usual jobs].")
@click.option("--notify", "targets", multiple=True, metavar="URL",
              help="Send every alert to this apprise URL (mailtos://, slack://, json://...; "
              "repeatable).")
@click.option("--demo", is_flag=True, help="Also generate data/ and submit the demo jobs.")
def serve(db, host, port, quack_port, workers, executor, scheduler, dask_workers,
          worker_threads, scratch, users, session_hours, export_dirs, stall_timeout,
          analyst_token_file, analyst_group, retention, alerts_file, targets, demo):
    """Own the database and serve it: runtime, dashboard and Quack endpoint.

    Example: jobobs serve --db jobs.duckdb --workers 8 --retention 30d

    On a Dask cluster: jobobs serve --executor dask --scheduler tcp://sched:8786
    --host 0.0.0.0 --scratch /shared/jobobs
    """
    from jobobs.access.users import read as read_users
    from jobobs.server import serve as run_server

    if executor == "threads" and (scheduler or dask_workers or scratch or worker_threads):
        raise click.UsageError("--scheduler, --dask-workers, --worker-threads and --scratch "
                               "go with --executor dask")
    if scheduler and dask_workers:
        raise click.UsageError("give --scheduler (an existing cluster) or --dask-workers "
                               "(a local one), not both")
    users = read_users(users) if users else None  # a bad file fails before a cluster starts
    rules = alert_rules(alerts_file, targets)
    cluster = None
    if executor == "dask":
        from jobobs.dask.executor import DaskExecutor

        cluster = DaskExecutor(scheduler=scheduler, workers=dask_workers, scratch=scratch,
                               threads=worker_threads)

    on_ready = None
    if demo:
        from jobobs import demo as demo_jobs

        def on_ready(rt):
            demo_jobs.mix(rt, "data")

    run_server(_path(db), host=host, port=port, quack_port=quack_port, workers=workers,
               on_ready=on_ready, echo=click.echo, users=users, session_hours=session_hours,
               export_dirs=list(export_dirs) or None, stall_timeout=stall_timeout,
               executor=cluster, analyst_token_file=analyst_token_file,
               analyst_group=analyst_group, retention=retention, alerts=rules)


def alert_rules(path: str | None, targets: Sequence[str]) -> list[Any]:
    """``serve``'s rules: the file's, or the default ones, with ``--notify``'s targets,
    every target checked (a bad one stops the server before it starts)."""
    from jobobs.access import alertrules
    from jobobs.access.notify import check_targets

    if path is None:
        rules = [alertrules.with_targets(rule, targets) for rule in alertrules.DEFAULT_RULES]
    else:
        rules = alertrules.read(path, targets)
        if any(rule.notify for rule in rules) and os.stat(path).st_mode & 0o077:
            click.echo(f"WARNING: {path} can be read by other users, and its notification "
                       f"URLs may hold passwords or tokens: chmod 600 {path}", err=True)
    check_targets(url for rule in rules for url in rule.notify)
    return rules


@main.command()
@click.option("--db", default="demo.duckdb", show_default=True, help="The demo's database.")
@click.option("--data", default="data", show_default=True, type=click.Path(file_okay=False),
              help="Where the input files are generated.")
@HOST_OPTION
@PORT_OPTION
@QUACK_OPTION
@click.option("--workers", default=3, show_default=True, type=click.IntRange(1))
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0.001, 10),
              help="Make the data and the jobs bigger or smaller.")
@click.option("--no-serve", is_flag=True, help="Run the jobs until they stop, then exit "
              "(for notebooks and tests), instead of serving the dashboard.")
def demo(db, data, host, port, quack_port, workers, scale, no_serve):
    """Write 30 days of history (once), generate realistic files, submit a mix of imports,
    exports and Python jobs, and serve the dashboard: every status shows within a minute.
    Ctrl-C stops it.

    Example: jobobs demo --port 5006
    """
    import time

    from jobobs import demo as demo_jobs
    from jobobs.db.endpoint import read
    from jobobs.execution.runtime import Runtime
    from jobobs.server import serve as run_server

    running = read(db)
    if running is not None:  # one clear line, before touching anything
        from jobobs.db.endpoint import already_running

        raise click.ClickException(already_running(running))
    started, demodata = time.perf_counter(), demo_jobs.demodata
    if written := demodata.history(db):  # once: on a database with none yet
        click.echo(f"Wrote {demodata.HISTORY_DAYS} days of history ({written:,} runs) in "
                   f"{time.perf_counter() - started:.1f} s")
    click.echo(f"Generating the demo's files under {data}/ ...")
    demo_jobs.interrupted(db)
    if no_serve:
        with Runtime(db, workers=workers, handle_signals=False) as rt:
            ids = demo_jobs.mix(rt, data, scale=scale, wait=True)
        click.echo(f"{len(ids) + 3} demo jobs are in {db}. Try: jobobs list --db {db}")
        return
    run_server(db, host=host, port=port, quack_port=quack_port, workers=workers,
               echo=click.echo, on_ready=lambda rt: demo_jobs.mix(rt, data, scale=scale),
               export_dirs=[os.getcwd(), data])
