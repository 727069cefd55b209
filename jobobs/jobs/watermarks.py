"""Watermarks of differential exports: where the last run stopped, and which rows it sent.

A differential export (``watermark=COLUMN``) remembers in ``export_watermarks`` the highest
value of its column that it exported and an md5 of each row it exported at exactly that
value (of the row's ``key`` columns, else of the whole row). The next run takes the rows
above the value and the rows at it that are not remembered. Comparing with ``>`` alone
would never export a row that comes later with a value already exported (a date column);
with ``>=`` alone, the rows at the value would go out again each run. The mark moves with
the checkpoint that follows the file, so only once the file is in place.

``listing``, ``show`` and ``reset`` are what ``jobobs watermark list|show|reset`` call, on
the file or on a server's connection (whole queries, one statement each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from jobobs.errors import JobobsError
from jobobs.jobs.sql import ident, literal
from jobobs.states import ACTIVE

ROW = "_jobobs_row"  # the alias that names an exported row as a whole, for its md5


@dataclass
class Mark:
    """A differential export's watermark as stored."""

    name: str
    column: str
    value: str | None
    at_value: list[str] | None  # None: set before jobobs remembered them


def read(con: Any, name: str) -> Mark | None:
    row = con.execute("SELECT column_name, value, at_value FROM export_watermarks "
                      "WHERE name = ?", [name]).fetchone()
    if row is None:
        return None
    return Mark(name, row[0], row[1], None if row[2] is None else json.loads(row[2]))


def identity(key: list[str] | None) -> str:
    """SQL for an md5 of a row of ``SELECT * FROM (...) AS _jobobs_row``: of its key
    columns, or of the whole row."""
    if key:
        return f"md5(to_json(struct_pack({', '.join(ident(k) for k in key)})))"
    return f"md5(to_json({ROW}))"


def after(query: str, mark: Mark, key: list[str] | None, value: str) -> str:
    """``query`` narrowed to the rows not exported yet; ``value`` is the mark's value as a
    SQL literal of the column's type."""
    column = ident(mark.column)
    if mark.at_value is None:
        return f"SELECT * FROM ({query}) AS {ROW} WHERE {column} > {value}"
    sent = (f"SELECT unnest(from_json(at_value, '[\"VARCHAR\"]')) FROM export_watermarks "
            f"WHERE name = {literal(mark.name)} AND value = {literal(mark.value)}")
    return (f"SELECT * FROM ({query}) AS {ROW} WHERE {column} > {value} OR "
            f"({column} = {value} AND {identity(key)} NOT IN ({sent}))")


def at_value(previous: Mark | None, value: str | None, sent: list[str]) -> list[str]:
    """The rows remembered at ``value`` once ``sent`` (md5s of the rows exported at it)
    are out: with those of the runs before, when the value did not move."""
    if previous is not None and previous.value == value and previous.at_value:
        return sorted(set(previous.at_value) | set(sent))
    return sorted(set(sent))


# -- what the command line shows and resets --------------------------------------------

LISTING = """
SELECT w.name, w.column_name AS "column", w.value,
       coalesce(json_array_length(w.at_value), 0) AS rows_at_value, w.job_id, w.updated_at,
       f.seq, f.path AS last_file, f.written_at
FROM export_watermarks w LEFT JOIN export_files f ON f.name = w.name
"""


def listing(con: Any) -> pd.DataFrame:
    """Every watermark: its column and value, how many rows it remembers at the value, the
    export that moved it and when, and the last file of that name."""
    return con.execute(f"{LISTING} ORDER BY w.name").df()


def show(con: Any, name: str) -> dict[str, Any]:
    """One watermark as a dict (JobobsError if there is none)."""
    frame = con.execute(f"{LISTING} WHERE w.name = ?", [name]).df()
    if frame.empty:
        raise JobobsError(f"no watermark named {name!r}")
    return {k: (None if pd.isna(v) else v) for k, v in frame.iloc[0].to_dict().items()}


def reset(con: Any, name: str) -> dict[str, Any]:
    """Forget a watermark, so the next run of that export sends every row; return it as
    it was. The file numbers go on (a reset never overwrites an earlier delta). Refused
    while an export of that name is queued or running: it would set the mark again."""
    mark = show(con, name)
    active = [s.value for s in ACTIVE]
    busy = con.execute(
        f"SELECT id, status FROM jobs WHERE kind = 'export' AND name = ? AND status IN "
        f"({', '.join('?' * len(active))}) ORDER BY id LIMIT 1", [name, *active]).fetchone()
    if busy is not None:
        raise JobobsError(f"export job {busy[0]} ({name}) is {busy[1]}; reset its watermark "
                          "once it stops")
    con.execute("DELETE FROM export_watermarks WHERE name = ?", [name]).fetchall()
    return mark
