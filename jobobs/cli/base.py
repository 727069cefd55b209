"""The command group, the shared options, and how results and errors are printed."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import duckdb
import pandas as pd

from jobobs.db.endpoint import holder
from jobobs.model.errors import JobobsError, one_line
from jobobs.model.rows import COUNTERS

JOB_FIELDS = ("id", "name", "kind", "status", "label", "has_warning", "created_at",
              "started_at", "finished_at", "duration_s", *COUNTERS, "progress", "eta_at", "error",
              "parent_id", "created_by")
DB_OPTION = click.option(
    "--db", help="The jobobs database (default: $JOBOBS_DB, then ./jobobs.duckdb).",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


class Group(click.Group):
    """Turns jobobs and DuckDB errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # the reader stopped (| head): not an error of ours
            _discard_output()
            raise click.exceptions.Exit(0) from None
        except JobobsError as error:
            raise click.ClickException(str(error)) from None
        except TimeoutError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:  # a file that cannot be read or written
            raise click.ClickException(f"{error.filename or ''}: {error.strerror or error}"
                                       .lstrip(": ")) from None
        except duckdb.IOException as error:
            raise click.ClickException(_lock_message(error)) from None
        except duckdb.Error as error:
            raise click.ClickException(one_line(error)) from None


def _discard_output() -> None:
    """Point standard output at /dev/null, so the exit's last flush into the closed pipe
    does not print an error after all."""
    try:
        target = sys.stdout.fileno()
    except (OSError, ValueError):  # not a file (a test runner's capture): nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, target)
    os.close(devnull)


def _lock_message(error: duckdb.IOException) -> str:
    if "lock" in str(error).lower():
        return (f"the database is in use by {holder(str(error))}; stop it or run this "
                "command through it")
    return one_line(error)


@click.group(cls=Group)
@click.option("--db", "root_db", metavar="PATH",
              help="The jobobs database (default: $JOBOBS_DB, then ./jobobs.duckdb).")
@click.version_option(package_name="jobobs")
def main(root_db: str | None) -> None:
    """Observable, controllable import and export jobs, with their history in DuckDB.

    Commands go to the server that owns the database (`jobobs serve`) when one runs,
    else straight to the file.
    """


def database(db: str | None) -> str | None:
    """The command's --db, else the group's (else connect() uses $JOBOBS_DB or the default)."""
    if db:
        return db
    root = click.get_current_context().find_root()
    return root.params.get("root_db")


@contextmanager
def client(db: str | None, workers: int = 4) -> Iterator[Any]:
    from jobobs.access.client import connect

    with connect(database(db), workers=workers) as opened:
        yield opened


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms"))


def show(frame: pd.DataFrame, as_json: bool) -> None:
    """Print a table, or a JSON array of row objects."""
    if as_json:
        click.echo(json.dumps(records(frame)))
    elif frame.empty:
        click.echo("(none)")
    else:
        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            click.echo(frame.to_string(index=False))


def job_document(frame: pd.DataFrame) -> dict[str, Any]:
    """A job's row as the JSON object commands print."""
    row = records(frame)[0]
    return {key: row.get(key) for key in JOB_FIELDS}


def show_job(frame: pd.DataFrame, as_json: bool) -> None:
    document = job_document(frame)
    if as_json:
        click.echo(json.dumps(document))
        return
    shown = {k: v for k, v in document.items() if v not in (None, False, 0, "")}
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        click.echo(f"{key:<{width}}  {value}")
