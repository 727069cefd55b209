"""A job's rejects out to a file, and a corrected file back in as a new import."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import duckdb

from jobobs.db import files
from jobobs.db.sql import literal
from jobobs.kinds import importing, sources
from jobobs.model.errors import JobobsError

COLUMNS = "seq, kind, source, line_no, column_name, reason, message, raw, record"


def export_rejects(con: duckdb.DuckDBPyConnection, job_id: int, path: str) -> int:
    """Write a job's rejects to a CSV file (written aside, then renamed); return how many."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise JobobsError(f"the folder {folder} does not exist")
    query = f"SELECT {COLUMNS} FROM rejects WHERE job_id = {int(job_id)} ORDER BY seq"
    with files.replacing(path) as temporary:
        con.execute(f"COPY ({query}) TO {literal(temporary)} (HEADER, USE_TMP_FILE false)"
                    ).fetchall()
    return con.execute("SELECT count(*) FROM rejects WHERE job_id = ?", [job_id]).fetchone()[0]


def write_frame(frame: Any, path: str) -> int:
    """Write rejects read as a DataFrame to a CSV file (written aside, then renamed)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise JobobsError(f"the folder {folder} does not exist")
    with files.replacing(path) as temporary:
        frame[[c.strip() for c in COLUMNS.split(",")]].to_csv(temporary, index=False)
    return len(frame)


def replay_options(original: dict[str, Any], corrected: str, *,
                   name: str | None = None) -> dict[str, Any]:
    """The import of the ``raw`` lines of a corrected rejects file with the options of the
    import ``original`` (its job row), as keyword arguments of ``importing.submit``. The
    lines are written beside the corrected file, where the import reads them."""
    job_id = original["id"]
    if original["kind"] != "import":
        raise JobobsError(f"job {job_id} is not an import")
    options = json.loads(original["spec"])["args"][0]
    state = json.loads(original.get("checkpoint") or "{}").get("state") or {}
    columns = options.get("columns") or state.get("columns")
    if sources.file_format(str(options["source"]), options.get("format")) != "csv":
        raise JobobsError("only the rejects of CSV imports can be replayed from their raw lines")
    if not columns:
        raise JobobsError(f"job {job_id} never read its columns; there is nothing to replay")
    if not os.path.exists(corrected):
        raise JobobsError(f"{corrected} does not exist")
    read = f"read_csv({literal(corrected)}, header=true, all_varchar=true)"
    try:
        # a warning's line was imported (its bad value as NULL): only errors are replayed
        kept = ("AND kind IS DISTINCT FROM 'warning'" if "kind" in
                duckdb.sql(f"SELECT * FROM {read} LIMIT 0").columns else "")
        lines = duckdb.sql(f"SELECT raw, source, TRY_CAST(line_no AS BIGINT) FROM {read} "
                           f"WHERE raw IS NOT NULL {kept}").fetchall()
    except duckdb.Error as error:
        raise JobobsError(f"{corrected} is not a rejects file with a raw column") from error
    # a name of its own: two replays of one corrected file must not share it
    lines_file = f"{os.path.abspath(corrected)}.{secrets.token_hex(4)}{sources.REPLAY_SUFFIX}"
    with files.replacing(lines_file) as temporary, \
            open(temporary, "w", encoding=options.get("encoding") or "utf-8") as out:
        if options.get("header", True):
            out.write(options.get("delimiter", ",").join(columns) + "\n")
        out.writelines(raw + "\n" for raw, _, _ in lines)
    options.update(source=lines_file, columns=columns, dry_run=False, parent=job_id,
                   name=name or f"replay of job {job_id}",
                   replay_lines=[[source, line] for _, source, line in lines],
                   mode="append" if options["mode"] == "replace" else options["mode"])
    if options["mode"] == "upsert":  # specs stored before upserts refused other policies
        options["duplicates"] = "update"
    return options


def replay(rt: Any, job_id: int, corrected: str, *, name: str | None = None) -> Any:
    """Import a corrected rejects file with the options of import ``job_id``, as a new job
    whose parent is that one."""
    return importing.submit(rt, **replay_options(rt.job(job_id), corrected, name=name))
