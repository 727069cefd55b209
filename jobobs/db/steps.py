"""Writes that commit with a checkpoint, described as data.

A job in the server's process runs them in its checkpoint's own transaction. A job on a
Dask worker cannot (Quack commits each statement by itself), so it sends them with its
checkpoint report and the server runs them in the transaction that applies the report:
a chunk of imported rows, or an export's watermark, is written with the checkpoint that
counts it, or not at all, and exactly once.
"""

from __future__ import annotations

from typing import Any

import duckdb

from jobobs.db.sql import ident, literal, table_name
from jobobs.model.errors import JobobsError

INBOX_PREFIX = "_jobobs_inbox_"


def run(con: duckdb.DuckDBPyConnection, step: dict[str, Any]) -> None:
    kind = step.get("kind")
    if kind == "load":
        load(con, step)
    elif kind == "watermark":
        watermark(con, step)
    elif kind == "export file":
        con.execute("INSERT OR REPLACE INTO export_files VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
                    [step["name"], step["seq"], step["path"], step["job_id"]])
    else:
        raise JobobsError(f"unknown checkpoint step {kind!r}")


def watermark(con: duckdb.DuckDBPyConnection, step: dict[str, Any]) -> None:
    """Move an export's watermark to the run that just wrote its file. The rows it counted
    at the value (``export_watermark_rows`` of its job) become the mark's; those of earlier
    runs go."""
    con.execute("INSERT OR REPLACE INTO export_watermarks (name, column_name, value, job_id, "
                "updated_at, rows_at_value) VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?)",
                [step["name"], step["column"], step["value"], step["job_id"],
                 step.get("rows_at_value")])
    con.execute("DELETE FROM export_watermark_rows WHERE name = ? AND job_id <> ?",
                [step["name"], step["job_id"]])


def write_rows(con: duckdb.DuckDBPyConnection, target: str, rows: str, *, first: bool,
               replace: bool, key: list[str]) -> None:
    """Write ``rows`` (a query) into ``target``: replacing it (the first chunk of a
    replace), or appending, after deleting the rows whose ``key`` comes again."""
    if replace and first:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS {rows}")
        return
    if first:  # later chunks need the table the first one found or made
        con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS {rows} LIMIT 0")
    if key:
        names = ", ".join(ident(k) for k in key)
        con.execute(f"DELETE FROM {target} WHERE ({names}) IN (SELECT {names} FROM ({rows}))")
    con.execute(f"INSERT INTO {target} BY NAME {rows}")


def load(con: duckdb.DuckDBPyConnection, step: dict[str, Any]) -> None:
    """Move rows ``start`` < _n <= ``end`` that a worker sent, to its inbox table on the
    server or as a Parquet file in the scratch folder both share, into the import's
    target."""
    start, end = int(step["start"]), int(step["end"])
    columns = ", ".join(ident(c) for c in step["columns"])
    if step.get("parquet"):
        source = f"read_parquet({literal(str(step['parquet']))})"
    elif str(step["inbox"]).startswith(INBOX_PREFIX):
        source = inbox = ident(step["inbox"])
    else:
        raise JobobsError(f"{step['inbox']!r} is not an import's inbox table")
    rows = f"SELECT {columns} FROM {source} WHERE _n > {start} AND _n <= {end} ORDER BY _n"
    write_rows(con, table_name(step["table"]), rows, first=start == 0,
               replace=bool(step["replace"]), key=list(step["key"]))
    if step.get("parquet"):
        return
    if step["final"]:
        con.execute(f"DROP TABLE IF EXISTS {inbox}")
    else:
        con.execute(f"DELETE FROM {inbox} WHERE _n <= {end}")
