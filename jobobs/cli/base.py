"""The command group, the shared options, and how results and errors are printed."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import click
import duckdb
import numpy as np
import pandas as pd
from rich.cells import cell_len
from rich.console import Console
from rich.console import Group as Stack
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from jobobs.db.endpoint import holder
from jobobs.model import humane
from jobobs.model.errors import JobobsError, one_line
from jobobs.model.rows import COUNTERS
from jobobs.model.states import Status

JOB_FIELDS = ("id", "name", "kind", "status", "label", "has_warning", "created_at",
              "started_at", "finished_at", "duration_s", *COUNTERS, "progress", "eta_at", "error",
              "parent_id", "created_by")
DB_OPTION = click.option(
    "--db", help="The jobobs database (default: $JOBOBS_DB, then ./jobobs.duckdb).",
)
PIPE_WIDTH = 200  # a table written into a pipe or a file is cut only past this (or $COLUMNS)
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


SHELLS = ("bash", "zsh", "fish")


@main.command()
@click.argument("shell", shell_complete=lambda ctx, param, incomplete: [
    shell for shell in SHELLS if shell.startswith(incomplete)])
def completion(shell):
    """Print the script that completes jobobs' commands, options and values in SHELL
    (bash, zsh or fish), as Click generates it: add eval "$(jobobs completion bash)" to
    ~/.bashrc (zsh: to ~/.zshrc; fish: jobobs completion fish >
    ~/.config/fish/completions/jobobs.fish).

    Example: jobobs completion bash
    """
    from click.shell_completion import get_completion_class

    if shell not in SHELLS:
        raise click.ClickException(f"no completion for {shell!r}: give bash, zsh or fish")
    script = get_completion_class(shell)(main, {}, "jobobs", "_JOBOBS_COMPLETE")
    click.echo(script.source())


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


def show(frame: pd.DataFrame, as_json: bool, headers: dict[str, str] | None = None,
         spare: tuple[str, ...] = ()) -> None:
    """Print a table (its cells as a person reads them), or a JSON array of row objects
    (raw values, ISO times). ``spare`` columns are left out, in that order, when the
    terminal is too narrow for them all; a line under the table says which."""
    if as_json:
        click.echo(json.dumps(records(frame)))
    else:
        out = console()
        emit(out, view(frame, headers, spare, out.width))


def view(frame: pd.DataFrame, headers: dict[str, str] | None = None,
         spare: tuple[str, ...] = (), width: int = PIPE_WIDTH) -> Any:
    """What show() prints for a frame: its table, and which columns it left out, if any."""
    if frame.empty:
        return Text("(none)")
    grid, left_out = table(frame, headers, spare, width)
    if not left_out:
        return grid
    return Stack(grid, Text(f"({', '.join(left_out)} left out at {width} columns; --json "
                            "has every column)", style="dim"))


def emit(out: Console, renderable: Any) -> None:
    """Print to a terminal as rich draws it; into a pipe or a file without the spaces
    that end the lines of a table."""
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def job_document(frame: pd.DataFrame) -> dict[str, Any]:
    """A job's row as the JSON object commands print."""
    row = records(frame)[0]
    return {key: row.get(key) for key in JOB_FIELDS}


def show_job(frame: pd.DataFrame, as_json: bool) -> None:
    """A job as JSON, or its fields in groups: what it is, when, its records, its error."""
    if as_json:
        click.echo(json.dumps(job_document(frame)))
        return
    row = frame.iloc[0].to_dict()
    groups = []
    for title, keys in JOB_GROUPS.items():
        pairs = [(key, row.get(key)) for key in keys if key in row and _worth(key, row[key])]
        if pairs:
            groups.append((title, pairs))
    show_fields(groups)


# -- how a value reads in a terminal ----------------------------------------------------------

JOB_GROUPS = {
    "job": ("id", "name", "kind", "status", "has_warning", "parent_id", "created_by"),
    "time": ("created_at", "started_at", "finished_at", "duration_s", "eta_at"),
    "records": ("progress", *COUNTERS),
    "error": ("error",),
}
STATUS_COLUMNS = frozenset({"status", "from_status", "to_status", "last_status"})
COUNT_COLUMNS = frozenset({*COUNTERS, "waiting", "rejects", "jobs"})
FIELD_NAMES = {"has_warning": "warning", "duration_s": "duration", "every_s": "every",
               "created_at": "created", "started_at": "started", "finished_at": "finished",
               "eta_at": "eta", "next_run_at": "next run", "last_run_at": "last run",
               "last_finished_at": "last finished", "parent_id": "parent"}
STATUSES = frozenset(status.value for status in Status)
KEEP_WHOLE = frozenset({"id", "name", "status", "seq", "job_id"})  # never cut nor wrapped


def console() -> Console:
    """Standard output as rich sees it: colors only in a terminal and without NO_COLOR;
    no markup or emoji codes read in the values."""
    width = None
    if not (sys.stdout.isatty() or os.environ.get("COLUMNS")):
        width = PIPE_WIDTH
    return Console(width=width, markup=False, emoji=False, highlight=False)


def cell(column: str, value: Any) -> str | Text:
    """One value as a person reads it: never "nan" or "None" (a blank), times local to the
    second, durations, percents and counts in words, statuses as icon and label; a list or
    a struct as JSON."""
    if isinstance(value, np.generic):  # as Python prints it ("0.0005", not 5e-04)
        value = value.item()
    if isinstance(value, list | tuple | dict | np.ndarray):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value,
                          default=str)
    if humane.missing(value):
        return ""
    if column in STATUS_COLUMNS and value in STATUSES:
        return Text(humane.status(value), style=humane.LOOK[Status(value)][1])
    if column == "has_warning":
        return "⚠" if value else ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column == "progress":
        return humane.percent(value)
    if column.endswith("_s") and isinstance(value, int | float):
        return humane.duration(value)
    if isinstance(value, timedelta):
        return humane.duration(value.total_seconds())
    if column in COUNT_COLUMNS and isinstance(value, int | float):
        return humane.count(value)
    if isinstance(value, datetime) or (column.endswith("_at") and _iso(value)):
        return humane.moment(value)
    return str(value)


def table(frame: pd.DataFrame, headers: dict[str, str] | None = None,
          spare: tuple[str, ...] = (), width: int = PIPE_WIDTH) -> tuple[Table, list[str]]:
    """A frame as a table without borders, like kubectl's and gh's, a row a line, and the
    headers of the columns it left out to fit ``width``: the ``spare`` ones first, then
    from the right (never the id, name or status). Ids, names, statuses, numbers and times
    are never cut; other texts end with an ellipsis when they must."""
    headers = headers or {}
    columns: dict[str, dict[str, Any]] = {}
    for column in frame.columns:
        kind = frame[column].dtype
        numeric = pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
        header = headers.get(column, column)
        if _dates(column, frame[column]):  # a DATE column: its days, not midnights moved to local
            cells = [value.date().isoformat() if isinstance(value, datetime) else ""
                     for value in frame[column]]
        else:
            cells = [_one_line(cell(column, value)) for value in frame[column]]
        whole = (column in KEEP_WHOLE or column in STATUS_COLUMNS or numeric
                 or pd.api.types.is_datetime64_any_dtype(kind))
        natural = max([cell_len(header), *(cell_len(_plain(value)) for value in cells)])
        columns[column] = {"header": header, "cells": cells, "numeric": numeric,
                           "natural": natural, "least": natural if whole else min(natural, 8)}
    left_out = []
    rest = [column for column in reversed(frame.columns)
            if column not in spare and column not in KEEP_WHOLE | STATUS_COLUMNS]
    for column in [*spare, *rest]:
        if sum(c["least"] + 2 for c in columns.values()) - 2 <= width:
            break
        if column in columns:
            left_out.append(columns.pop(column)["header"])
    _share(list(columns.values()), width - 2 * (len(columns) - 1))
    grid = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for c in columns.values():
        grid.add_column(c["header"], justify="right" if c["numeric"] else "left",
                        no_wrap=True, overflow="ellipsis", width=c["width"])
    for row in zip(*(c["cells"] for c in columns.values()), strict=True):
        grid.add_row(*row)
    return grid, left_out


def _share(columns: list[dict[str, Any]], room: int) -> None:
    """Each column's width: its natural one when they all fit, else the columns that may be
    cut share what the others leave, the narrow ones taking only what they need."""
    for c in columns:
        c["width"] = c["least"]
    cuttable = sorted((c for c in columns if c["least"] < c["natural"]),
                      key=lambda c: c["natural"])
    room -= sum(c["least"] for c in columns)
    for n, c in enumerate(cuttable):
        extra = min(c["natural"] - c["least"], max(room, 0) // (len(cuttable) - n))
        c["width"] += extra
        room -= extra


def show_fields(groups: list[tuple[str | None, list[tuple[str, Any]]]]) -> None:
    """Key and value pairs, under their group's title when it has one; a missing value
    leaves its key out."""
    parts: list[Any] = []
    for title, pairs in groups:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in pairs:
            if not humane.missing(value):
                grid.add_row(FIELD_NAMES.get(key, key.replace("_", " ")), cell(key, value))
        if parts:
            parts.append(Text(""))
        if title is None:
            parts.append(grid)
        else:
            parts += [Text(title, style="bold"), Padding(grid, (0, 0, 0, 2), expand=False)]
    emit(console(), Stack(*parts))


def _worth(key: str, value: Any) -> bool:
    """Whether a job's field says something: not missing, not a zero counter or a false flag
    (the records processed always show, 0 too)."""
    if humane.missing(value) or value is False or value == "":
        return False
    return key in ("processed", "id") or value != 0


def _dates(column: str, values: pd.Series) -> bool:
    """Whether a column of times holds dates (a DATE column, in SQL): only midnights, in a
    column that is no moment (DuckDB gives a DATE the type of a TIMESTAMP, so a name in
    ``_at`` or a time zone says it is a moment, whatever its values)."""
    if (not pd.api.types.is_datetime64_any_dtype(values.dtype) or column.endswith("_at")
            or isinstance(values.dtype, pd.DatetimeTZDtype) or values.isna().all()):
        return False
    present = values.dropna()
    return bool((present == present.dt.normalize()).all())


def _iso(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _plain(value: str | Text) -> str:
    return value.plain if isinstance(value, Text) else value


def _one_line(value: str | Text) -> str | Text:
    """A table cell on one line: a text of several lines (a traceback) joined by spaces."""
    if "\n" not in _plain(value):
        return value
    return " ".join(_plain(value).split())
