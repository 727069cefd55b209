"""Watermarks of differential exports: where the last run stopped, and which rows it sent.

A differential export (``watermark=COLUMN``) remembers in ``export_watermarks`` the highest
value of its column that it exported, and in ``export_watermark_rows`` how many rows it
exported at exactly that value, by an md5 of the row (of its ``key`` columns, else of the
whole row). The next run takes the rows above the value, and of the rows at it those not
sent yet: with k rows of one md5 remembered, a row is new when there are more than k rows
of that md5 now (so a row identical to one already sent goes out too). Comparing with
``>`` alone would never export a row that comes later with a value already exported (a
date column); with ``>=`` alone, the rows at the value would go out again each run. The
counts live in a table, not in the mark: a date column may hold a day of rows at its
value. Rows whose column is NULL have no place in that order: they are never exported,
and each run counts them in a warning. The mark moves with the checkpoint that follows
the file, so only once the file is in place.

``listing``, ``show`` and ``reset`` are what ``jobobs watermark list|show|reset`` call, on
the file or on a server's connection (whole queries, one statement each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobobs.db.sql import ident, literal
from jobobs.model.errors import JobobsError
from jobobs.model.states import ACTIVE

if TYPE_CHECKING:
    import pandas as pd

ROW = "_jobobs_row"  # the alias that names an exported row as a whole, for its md5
MD5, NTH = "_jobobs_md5", "_jobobs_nth"


@dataclass
class Mark:
    """A differential export's watermark as stored."""

    name: str
    column: str
    value: str | None
    job_id: int
    rows_at_value: int | None  # None: set before jobobs remembered the rows at the value


def read(con: Any, name: str) -> Mark | None:
    row = con.execute("SELECT column_name, value, job_id, rows_at_value FROM "
                      "export_watermarks WHERE name = ?", [name]).fetchone()
    if row is None:
        return None
    return Mark(name, row[0], row[1], int(row[2]), None if row[3] is None else int(row[3]))


def identity(key: list[str] | None) -> str:
    """SQL for an md5 of a row of ``SELECT * FROM (...) AS _jobobs_row``: of its key
    columns, or of the whole row."""
    if key:
        return f"md5(to_json(struct_pack({', '.join(ident(k) for k in key)})))"
    return f"md5(to_json({ROW}))"


def remembered(mark: Mark) -> str:
    """SQL: the md5s and counts of the rows ``mark`` remembers at its value."""
    return (f"SELECT md5, count FROM export_watermark_rows WHERE name = {literal(mark.name)} "
            f"AND job_id = {int(mark.job_id)}")


def after(query: str, mark: Mark, key: list[str] | None, value: str) -> str:
    """``query`` narrowed to the rows not exported yet; ``value`` is the mark's value as a
    SQL literal of the column's type."""
    column = ident(mark.column)
    above = f"SELECT * FROM ({query}) AS {ROW} WHERE {column} > {value}"
    if mark.rows_at_value is None:
        return above
    numbered = (f"SELECT *, row_number() OVER (PARTITION BY {MD5}) AS {NTH} FROM "
                f"(SELECT *, {identity(key)} AS {MD5} FROM ({query}) AS {ROW} "
                f"WHERE {column} = {value})")
    at = (f"SELECT n.* EXCLUDE ({MD5}, {NTH}) FROM ({numbered}) AS n "
          f"LEFT JOIN ({remembered(mark)}) AS sent ON sent.md5 = n.{MD5} "
          f"WHERE n.{NTH} > coalesce(sent.count, 0)")
    return f"{above} UNION ALL {at}"


def at_value(query: str, column: str, value: str, key: list[str] | None,
             previous: Mark | None, mark_value: str) -> str:
    """SQL: the md5s and counts to remember at ``mark_value`` once the rows of ``query``
    at it (``value``, as a literal) are out: with those of the mark before, when the value
    did not move."""
    sent = (f"SELECT {identity(key)} AS md5, count(*) AS count FROM ({query}) AS {ROW} "
            f"WHERE {ident(column)} = {value} GROUP BY ALL")
    if (previous is not None and previous.value == mark_value
            and previous.rows_at_value is not None):
        sent = f"{sent} UNION ALL {remembered(previous)}"
    return f"SELECT md5, sum(count)::BIGINT AS count FROM ({sent}) GROUP BY md5"


# -- what the command line shows and resets --------------------------------------------

LISTING = """
SELECT w.name, w.column_name AS "column", w.value,
       coalesce(w.rows_at_value, 0) AS rows_at_value, w.job_id, w.updated_at,
       f.seq, f.path AS last_file, f.written_at
FROM export_watermarks w LEFT JOIN export_files f ON f.name = w.name
"""


def listing(con: Any) -> pd.DataFrame:
    """Every watermark: its column and value, how many rows it remembers at the value, the
    export that moved it and when, and the last file of that name."""
    return con.execute(f"{LISTING} ORDER BY w.name").df()


def show(con: Any, name: str) -> dict[str, Any]:
    """One watermark as a dict (JobobsError if there is none)."""
    import pandas as pd

    frame = con.execute(f"{LISTING} WHERE w.name = ?", [name]).df()
    if frame.empty:
        raise JobobsError(f"no watermark named {name!r}")
    return {k: (None if pd.isna(v) else v) for k, v in frame.iloc[0].to_dict().items()}


def reset(con: Any, name: str) -> dict[str, Any]:
    """Forget a watermark, so the next run of that export sends every row; return it as
    it was. The file numbers go on (a reset never overwrites an earlier delta). Refused
    while an export of that name is queued or running (it would set the mark again): the
    check and the delete are one statement, so no export starts between them."""
    mark = show(con, name)
    active = [s.value for s in ACTIVE]
    statuses = ", ".join("?" * len(active))
    busy = (f"SELECT id, status FROM jobs WHERE kind = 'export' AND name = ? AND status IN "
            f"({statuses})")
    deleted = con.execute(
        f"DELETE FROM export_watermarks WHERE name = ? AND NOT EXISTS ({busy}) "
        "RETURNING name", [name, name, *active]).fetchall()
    if not deleted:
        found = con.execute(f"{busy} ORDER BY id LIMIT 1", [name, *active]).fetchone()
        if found is None:
            raise JobobsError(f"no watermark named {name!r}")
        raise JobobsError(f"export job {found[0]} ({name}) is {found[1]}; reset its "
                          "watermark once it stops")
    con.execute("DELETE FROM export_watermark_rows WHERE name = ? AND job_id = ?",
                [name, int(mark["job_id"])]).fetchall()
    return mark
