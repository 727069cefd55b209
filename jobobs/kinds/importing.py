"""Import jobs: files into a table through DuckDB's own readers, with their rejects.

An import runs in phases, each ending at a checkpoint, so a pause, a shutdown or a crash
resumes at the phase (and file) where it stopped:

1. **read**: each file is read by DuckDB's reader into the job's staging table, with the
   reader's rejects capture for CSV; one file per transaction, interrupted by a pause.
2. **check**: rejected lines (one per line, with file, line, column, raw line, reason) are
   copied into ``rejects`` with doubles and duplicates handled by their policies, and the
   reject threshold is applied: past it the job fails and nothing is written.
3. **load**: the rows go into the target, all in one transaction (``on_failure="rollback"``,
   the default: a failure or a cancel leaves the target as it was) or in chunks that each
   commit with a checkpoint (``on_failure="keep"``).

The staging tables are dropped when the job ends, and kept while it is paused or shut down.
"""

from __future__ import annotations

import glob
import gzip
import os
import time
import zlib
from dataclasses import asdict
from typing import Any

import duckdb

from jobobs.db import files
from jobobs.db.sql import StatementProgress, clear, ident, literal, table_name
from jobobs.db.steps import INBOX_PREFIX, write_rows
from jobobs.execution import submissions
from jobobs.execution.context import JobContext
from jobobs.kinds.exporting import confine
from jobobs.kinds.jsonrows import stage_file
from jobobs.kinds.onepass import OnePass
from jobobs.kinds.rawlines import first_stop, keep_raw_bytes, placed_rows
from jobobs.kinds.sources import (
    ImportOptions,
    bad_value_policy,
    bad_values,
    bad_values_policy,
    canonical,
    choose_columns,
    converted,
    expand,
    file_format,
    lines_rejected,
    reader,
    relocate,
    remove_replay_file,
    stop_message,
    threshold,
    warn_ignored,
    wide_columns,
)
from jobobs.model.definition import job
from jobobs.model.errors import CancelInterrupt, JobInterrupt, JobobsError, TooManyRejects
from jobobs.model.rows import COUNTERS

# The staged rejects' columns but their level ('error' unless said: a warning is a bad
# value set to NULL by the ``bad_values`` policy "ignore", its line imported).
REJECT_COLUMNS = "(file, path, line, column_name, reason, raw, message)"


class Import:
    """One run of an import job: its options, files and tables."""

    def __init__(self, ctx: JobContext, options: ImportOptions, within: str | None = None):
        self.ctx, self.options = ctx, options
        self.within = within  # a dataset's export folder, checked again at each write
        self.target = (table_name(options.table) if options.dataset is None else
                       f"read_parquet({literal(os.path.join(options.dataset, '*.parquet'))})")
        # staging tables: in the job database, or on a Dask worker in its scratch database
        self.stage = ctx.staging(f"_jobobs_stage_{ctx.job_id}")
        self.stage_rejects = ctx.staging(f"_jobobs_stage_rejects_{ctx.job_id}")
        self.load = ctx.staging(f"_jobobs_load_{ctx.job_id}")
        self.inbox = f"{INBOX_PREFIX}{ctx.job_id}"  # a worker's rows, on the server
        self.cursor = ctx.cursor()
        self.columns: dict[str, str] = {}
        self.started = time.monotonic()
        self.in_one_pass = False

    # -- phases -------------------------------------------------------------------

    def run(self) -> None:
        state = self.ctx.resume_state or {"phase": "read", "file": 0}
        files = expand(self.options.source)
        if state.get("files", files) != files:
            raise JobobsError("the input files changed since the job started; start a new job")
        self.in_one_pass = (not self.ctx.remote and not self.options.dataset
                            and self.one_pass(files))
        if state["phase"] == "failed":  # past the threshold or stopped; rejects recorded
            self.drop_staging()
            if state.get("stop"):
                raise JobobsError(state["stop"])
            raise TooManyRejects(self.ctx.counters["rejected"] or 0, state.get("limit") or 0)
        if self.in_one_pass:
            if state["phase"] != "done":
                self.one_pass_import(files, state)
        elif not self.ctx.remote and not self.options.dataset and self.target_database():
            raise JobobsError(f"{self.options.table} is in another attached database: an "
                              "import there must be all or nothing (on_failure='rollback') "
                              "without a key, since a DuckDB transaction writes to one "
                              "database only")
        else:
            if ((state["phase"] in ("check", "load") or state.get("file", 0) > 0)
                    and not self.staged()):
                state = self.start_over(state)
            self.upgrade_staging()
            if state["phase"] == "read":
                state = self.read(files, state)
            self.columns = state["columns"]
            if state["phase"] == "check":
                state = self.check(state)
            if state["phase"] == "load":
                self.load_rows(state)
        self.drop_staging()  # a dry run ends here, and a resume after the last chunk
        counters = self.ctx.counters
        self.ctx.log.info("End of import (%d processed, %d imported, %d rejected in %.1fs)",
                          counters["processed"], counters["succeeded"], counters["rejected"],
                          time.monotonic() - self.started)

    def read(self, files: list[str], state: dict[str, Any]) -> dict[str, Any]:
        ctx = self.ctx
        if state["file"] == 0:
            ctx.log.info("--- Read the input ---")
        columns = state.get("columns") or self.choose_columns(files)
        sizes = [os.path.getsize(f) for f in files]
        self.cursor.execute(f"""CREATE TABLE IF NOT EXISTS {self.stage} (_file INTEGER,
            _row BIGINT, {', '.join(f'{ident(n)} {t}' for n, t in columns.items())},
            _inexact VARCHAR, _inexact_message VARCHAR, _inexact_values VARCHAR[],
            _ignored VARCHAR[], _ignored_messages VARCHAR[])""")
        self.cursor.execute(f"""CREATE TABLE IF NOT EXISTS {self.stage_rejects} (
            file INTEGER, path VARCHAR, line BIGINT, column_name VARCHAR, reason VARCHAR,
            raw VARCHAR, message VARCHAR, level VARCHAR DEFAULT 'error')""")
        for index in range(state["file"], len(files)):
            path = files[index]
            ctx.log.info("Reading %s (%s bytes)", path, f"{sizes[index]:,}")
            if not sizes[index]:
                ctx.warn("%s is empty", path)
                continue
            if path.endswith(".gz"):
                self.check_gzip(path)
            self.read_file(index, path, columns)
            ctx.progress(sum(sizes[: index + 1]), sum(sizes) or 1, counts=False)
            ctx.checkpoint({"phase": "read", "file": index + 1, "files": files,
                            "columns": columns})
        state = {"phase": "check", "files": files, "columns": columns}
        ctx.checkpoint(state)
        return state

    def choose_columns(self, files: list[str]) -> dict[str, str]:
        """The declared columns, else those of the files (see sources.choose_columns),
        journaled."""
        if self.options.columns:
            return canonical(self.cursor, self.options.columns)
        adding = self.options.mode != "replace" and self.exists()
        path, columns = choose_columns(self.cursor, files, self.options,
                                       self.target if adding else None)
        bad_values_policy(self.options.bad_values, columns)  # names only columns there are
        what = (f"Columns of {self.options.dataset or self.options.table}" if adding
                else f"Columns sniffed from {path}")
        self.ctx.log.info("%s: %s", what, ", ".join(f"{n} {t}" for n, t in columns.items()))
        return columns

    def read_file(self, index: int, path: str, columns: dict[str, str]) -> None:
        """Read one file into the staging tables, replacing what an earlier try staged."""
        if file_format(path, self.options.format) != "csv":
            return stage_file(self, index, path, columns)  # JSON and Parquet: jsonrows.py
        cur, rejects = self.cursor, f"_jobobs_rejects_{self.ctx.job_id}"
        is_csv = file_format(path, self.options.format) == "csv"
        wide = wide_columns(cur, path, self.options, columns)
        source = reader(path, self.options, {**columns, **wide}, rejects if is_csv else None)
        names = ", ".join(converted(c, columns[c], wide[c], bad_value_policy(self.options, c)
                                    == "ignore") if c in wide else ident(c) for c in columns)
        bad = ", ".join(bad_values(columns, wide, self.options)) if wide else \
            "NULL, NULL, NULL, NULL, NULL"
        with self.ctx.interruptible(cur.interrupt):
            cur.execute("BEGIN TRANSACTION")
            try:
                cur.execute(f"DELETE FROM {self.stage} WHERE _file >= ?", [index])
                cur.execute(f"DELETE FROM {self.stage_rejects} WHERE file >= ?", [index])
                with StatementProgress(cur, lambda percent: None,
                                       lambda: self.ctx.stop_requested):
                    cur.execute(f"""INSERT INTO {self.stage} SELECT {index},
                                    row_number() OVER (), {names}, {bad} FROM {source}""")
                self.ctx.check_interrupt()
                if is_csv:
                    cur.execute(f"INSERT INTO {self.stage_rejects} {REJECT_COLUMNS} SELECT "
                                f"{index}, * FROM ({lines_rejected(path, rejects)})")
                    keep_raw_bytes(cur, path, rejects, self.stage_rejects, self.options)
                if wide:
                    self.reject_bad_values(index, path, columns, wide,
                                           rejects if is_csv else None)
                if is_csv:
                    relocate(cur, self.stage_rejects, path, self.options)
                    cur.execute(f"DROP TABLE {ident(rejects)}")
                    cur.execute(f"DROP TABLE {ident(rejects + '_scan')}")
                self.ctx.check_interrupt()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def reject_bad_values(self, index: int, path: str, columns: dict[str, str],
                          wide: dict[str, str], reader_rejects: str | None) -> None:
        """Move the staged rows of file ``index`` with a value that does not fit its column
        into the staged rejects, and record the values set to NULL as warnings, at their
        line of the file (see rawlines.placed_rows)."""
        cur = self.cursor
        found = placed_rows(cur, path, self.options, columns, wide, cur.execute(
            f"SELECT _row, _inexact_values FROM {self.stage} WHERE _file = ? AND "
            "_inexact_values IS NOT NULL ORDER BY _row", [index]).fetchall(), reader_rejects)
        bad = f"""SELECT _row, _inexact AS c, _inexact_message AS m, 'error' AS level
            FROM {self.stage} WHERE _file = {index} AND _inexact IS NOT NULL UNION ALL
            SELECT _row, unnest(_ignored), unnest(_ignored_messages), 'warning'
            FROM {self.stage} WHERE _file = {index} AND _inexact IS NULL"""
        cur.execute(f"""INSERT INTO {self.stage_rejects} SELECT {index}, {literal(path)},
            f._line, c, 'cast error', f._raw, m, level FROM ({bad}) s
            JOIN (SELECT unnest(?::BIGINT[]) AS _row, unnest(?::BIGINT[]) AS _line,
            unnest(?::VARCHAR[]) AS _raw) f USING (_row)""",
                    [list(column) for column in zip(*found)] or [[], [], []])
        cur.execute(f"DELETE FROM {self.stage} WHERE _file = ? AND _inexact IS NOT NULL",
                    [index])

    def check_gzip(self, path: str) -> None:
        """Read a gzip file to its end: DuckDB reads a truncated one without a word."""
        try:
            with gzip.open(path, "rb") as stream:
                while stream.read(1 << 22):
                    if self.ctx.stop_requested:
                        self.ctx.checkpoint()
        except (EOFError, OSError, zlib.error) as error:
            raise JobobsError(f"{path} is not a complete gzip file ({error})") from None

    def check(self, state: dict[str, Any]) -> dict[str, Any]:
        """Apply doubles and duplicates, record every reject, apply the threshold."""
        ctx, options, cur = self.ctx, self.options, self.cursor
        ctx.log.info("--- Check the records ---")
        key = ", ".join(ident(k) for k in options.key)
        order = "_file DESC, _row DESC" if options.doubles == "update" else "_file, _row"
        keep = f"row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1" if key else "true"
        match = " AND ".join(f"t.{ident(k)} IS NOT DISTINCT FROM s.{ident(k)}"
                             for k in options.key)
        dup = (f"EXISTS (SELECT 1 FROM {self.target} t WHERE {match})"
               if key and options.mode != "replace" and self.exists() else "false")
        written = self.writes()
        with ctx.interruptible(cur.interrupt):
            cur.execute(f"""CREATE OR REPLACE TABLE {self.load} AS
                SELECT *, CASE WHEN {written} THEN row_number() OVER
                              (PARTITION BY {written} ORDER BY _file, _row) END AS _n
                FROM (SELECT *, {keep} AS _keep, {dup} AS _dup FROM {self.stage} s)""")
            ctx.check_interrupt()
        bad_lines, warned, staged, doubles, duplicates = cur.execute(f"""SELECT
            (SELECT count(*) FILTER (level = 'error') FROM {self.stage_rejects}),
            (SELECT count(*) FILTER (level = 'warning') FROM {self.stage_rejects}), count(*),
            count(*) FILTER (NOT _keep), count(*) FILTER (_keep AND _dup) FROM {self.load}"""
        ).fetchone()
        records = bad_lines + staged
        ctx.log.info("Starting import of %d records", records)
        if not records:
            ctx.warn("The input has no records")
        reasons = [(None, bad_lines + warned)]
        if options.key and options.doubles == "reject":
            reasons.append(("double", doubles))
        if options.key and self.duplicates_policy() == "reject":
            reasons.append(("duplicate", duplicates))
        first = ctx.reserve_rejects(sum(n for _, n in reasons))
        rejected = sum(n for _, n in reasons) - warned
        ctx.count(total=records, processed=records, rejected=rejected, doubles=doubles,
                  duplicates=duplicates, succeeded=0)
        limit = threshold(options.max_rejects, records)
        over = limit is not None and rejected > limit
        stop = self.stopping()
        ctx.progress(records, records, counts=False)
        next_state = {**state, "phase": "failed" if over or stop else "done" if options.dry_run
                      else "load", "row": 0, "limit": limit, "stop": stop}
        if warned:
            warn_ignored(ctx, warned)
        ctx.checkpoint(next_state, atomic=lambda con: self.record_rejects(con, first, reasons))
        if doubles:
            ctx.log.info("%d doubles (a key repeated in the input): %s", doubles,
                         {"update": "the last one wins", "ignore": "the first one wins",
                          "reject": "rejected"}[options.doubles])
        if duplicates:
            ctx.log.info("%d duplicates (a key already in %s): %s", duplicates, options.table,
                         {"update": "updated", "ignore": "ignored",
                          "reject": "rejected"}[self.duplicates_policy()])
        if over or stop:
            self.drop_staging()
            if stop:
                raise JobobsError(stop)
            raise TooManyRejects(rejected, limit)
        if options.dry_run:
            ctx.log.info("Dry run: %d records would be imported into %s; nothing was written",
                         self.count_writes(), options.table)
        return next_state

    def stopping(self) -> str | None:
        """Why the import stops: the first staged reject with a bad value in a column whose
        bad values stop it, if any (see rawlines.first_stop)."""
        found = first_stop(self.cursor, self.stage_rejects, "true", "file, line",
                           self.options, self.columns)
        return None if found is None else stop_message(*found)

    def record_rejects(self, con: duckdb.DuckDBPyConnection, first: int,
                       reasons: list[tuple[str | None, int]]) -> None:
        """Copy the rejects into the rejects table, numbered from ``first``."""
        names = list(self.columns)
        record = ("to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in names)
                  + "))")
        offset = first
        for reason, count in reasons:
            if reason is None:
                con.execute(f"""INSERT INTO rejects SELECT ?, ? + row_number() OVER
                    (ORDER BY file, line, level), now()::TIMESTAMP, level, path, line, column_name,
                    raw, NULL, reason, message FROM {self.stage_rejects}""",
                            [self.ctx.job_id, offset])
            else:
                where = "NOT _keep" if reason == "double" else "_keep AND _dup"
                message = ("the key is repeated in the input" if reason == "double"
                           else f"the key is already in {self.options.table}")
                con.execute(f"""INSERT INTO rejects SELECT ?, ? + row_number() OVER
                    (ORDER BY _file, _row), now()::TIMESTAMP, 'error', NULL, NULL,
                    {literal(self.options.key[0])}, NULL, {record}, ?, ?
                    FROM {self.load} WHERE {where}""",
                            [self.ctx.job_id, offset, reason, message])
            offset += count

    def load_rows(self, state: dict[str, Any]) -> None:
        ctx, options = self.ctx, self.options
        total = self.count_writes()
        ctx.log.info("--- Import data into %s (%s) ---", options.dataset or options.table,
                     "all or nothing" if options.on_failure == "rollback"
                     else f"chunks of {options.chunk_rows:,} rows that stay if the job fails")
        chunk = total if options.on_failure == "rollback" else options.chunk_rows
        done = state["row"]
        while True:
            end = min(done + max(chunk, 1), total)
            final = end >= total

            def write(con: duckdb.DuckDBPyConnection, start: int = done, end: int = end,
                      final: bool = final) -> None:
                self.write_rows(con, start, end)
                if final:
                    self.drop_staging(con)

            ctx.count(succeeded=end)
            ctx.progress(end, total or 1, counts=False)
            next_state = {**state, "phase": "done" if final else "load", "row": end}
            try:
                if options.dataset:  # a file in place, then the state that counts it
                    self.write_part(done, end)
                    ctx.save(state=next_state)
                    if not final:
                        ctx.checkpoint()  # where a request is honoured
                elif ctx.remote:  # the rows go to the server, which loads them with the state
                    ctx.checkpoint(next_state, steps=[self.send_rows(done, end, final)])
                else:
                    ctx.checkpoint(next_state, atomic=write)
            except BaseException:
                ctx.count(succeeded=done)  # the chunk was rolled back
                raise
            done = end
            if final:
                return

    def write_rows(self, con: duckdb.DuckDBPyConnection, start: int, end: int) -> None:
        cols = ", ".join(ident(c) for c in self.columns)
        rows = f"SELECT {cols} FROM {self.load} WHERE _n > {start} AND _n <= {end} ORDER BY _n"
        write_rows(con, self.target, rows, first=start == 0,
                   replace=self.options.mode == "replace", key=self.update_key())

    def write_part(self, start: int, end: int) -> None:
        """Rows ``start`` < _n <= ``end`` as one Parquet file of the dataset, named by the job
        and its first row: written again under the same name if the job resumes before
        the checkpoint that counts it, so no row is there twice."""
        cols = ", ".join(ident(c) for c in self.columns)
        name = f"part-{self.ctx.job_id:08d}-{start:012d}.parquet"
        final = os.path.join(self.options.dataset, name)
        with files.replacing(final, self.within) as temporary:
            self.cursor.execute(f"COPY (SELECT {cols} FROM {self.load} WHERE _n > {start} AND "
                                f"_n <= {end} ORDER BY _n) TO {literal(temporary)} "
                                "(FORMAT parquet, USE_TMP_FILE false)")

    def update_key(self) -> list[str]:
        """The key of rows that replace the target's rows with the same key, if any."""
        return list(self.options.key) if self.options.key and \
            self.duplicates_policy() == "update" else []

    def send_rows(self, start: int, end: int, final: bool) -> dict[str, Any]:
        """On a Dask worker: send rows ``start`` < _n <= ``end`` to the server, as a Parquet
        file in the scratch folder when the server reads it too, else into the job's inbox
        table through Quack (replacing what an earlier try sent), and return the
        checkpoint step that moves them into the target."""
        cur, inbox = self.cursor, ident(self.inbox)
        cols = ", ".join(ident(c) for c in self.columns)
        step = {"kind": "load", "table": self.options.table, "inbox": self.inbox,
                "columns": list(self.columns), "start": start, "end": end, "final": final,
                "replace": self.options.mode == "replace", "key": self.update_key()}
        path = self.ctx.handoff(start)
        if path is not None:  # a file the server reads, in place before the report
            with files.replacing(path) as temporary:
                cur.execute(f"COPY (SELECT _n, {cols} FROM {self.load} WHERE _n > {start} AND "
                            f"_n <= {end}) TO {literal(temporary)} "
                            "(FORMAT parquet, USE_TMP_FILE false)")
            self.ctx.log.debug("Rows %d to %d sent as Parquet in the shared scratch folder",
                               start + 1, end)
            return {**step, "parquet": path}
        cur.execute(f"CREATE TABLE IF NOT EXISTS {inbox} AS SELECT _n, {cols} FROM {self.load} "
                    "LIMIT 0")
        cur.execute(f"FROM {self.ctx.on_server(f'DELETE FROM {inbox} WHERE _n > {start}')}")
        cur.execute(f"INSERT INTO {inbox} SELECT _n, {cols} FROM {self.load} "
                    f"WHERE _n > {start} AND _n <= {end}")
        self.ctx.log.debug("Rows %d to %d sent through Quack", start + 1, end)
        return step

    def one_pass_import(self, files: list[str], state: dict[str, Any]) -> None:
        """No key and all or nothing: read straight into the target (see onepass.py)."""
        self.ctx.log.info("--- Read the input ---")
        columns = state.get("columns") or self.choose_columns(files)
        self.columns = columns
        for path in files:
            if path.endswith(".gz"):
                self.check_gzip(path)
        if not state.get("columns"):
            self.ctx.checkpoint({"phase": "read", "file": 0, "files": files, "columns": columns})
        OnePass(self).import_files(files, columns, state)

    # -- helpers --------------------------------------------------------------------

    def target_database(self) -> str | None:
        """The attached database the target is in, when it is not the job database."""
        parts = self.options.table.split(".")
        if len(parts) == 1:
            return None
        current = self.cursor.execute("SELECT current_database()").fetchone()[0]
        found = self.cursor.execute("SELECT count(*) FROM duckdb_databases() WHERE "
                                    "database_name = ?", [parts[0]]).fetchone()[0]
        if (len(parts) == 3 or found) and parts[0] != current:
            return parts[0]
        return None

    def one_pass(self, files: list[str]) -> bool:
        """No key, all or nothing, CSV: the files can go straight into the target."""
        options = self.options
        return (options.on_failure == "rollback" and not options.key
                and all(file_format(f, options.format) == "csv" for f in files))

    def duplicates_policy(self) -> str:
        return self.options.duplicates if self.options.mode == "append" else "update"

    def writes(self) -> str:
        """Which staged rows are written: kept doubles, and duplicates unless set aside."""
        if self.duplicates_policy() in ("reject", "ignore") and self.options.key:
            return "_keep AND NOT _dup"
        return "_keep"

    def count_writes(self) -> int:
        return self.cursor.execute(
            f"SELECT count(*) FROM {self.load} WHERE _n IS NOT NULL").fetchone()[0]

    def exists(self) -> bool:
        if self.options.dataset:
            return bool(glob.glob(os.path.join(self.options.dataset, "*.parquet")))
        try:
            self.cursor.execute(f"SELECT 1 FROM {self.target} LIMIT 0")
        except duckdb.CatalogException:
            return False
        return True

    def say_what_stays(self) -> None:
        """Journal what the failure leaves in the target, by the on_failure policy."""
        loaded = self.ctx.counters["succeeded"] or 0
        if self.options.on_failure == "keep" and loaded:
            self.ctx.log.info("The %d rows loaded before the failure stay in %s "
                              "(on_failure=keep)", loaded, self.options.table)
        else:
            self.ctx.log.info("Nothing was written to %s (on_failure=%s)", self.options.table,
                              self.options.on_failure)

    def upgrade_staging(self) -> None:
        """Staging tables kept by a job paused before bad values had a policy get the
        columns that came with it."""
        if not self.staged():
            return
        for table, column, kind in ((self.stage, "_ignored", "VARCHAR[]"),
                                    (self.stage, "_ignored_messages", "VARCHAR[]"),
                                    (self.stage_rejects, "level", "VARCHAR DEFAULT 'error'")):
            self.cursor.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")

    def start_over(self, state: dict[str, Any]) -> dict[str, Any]:
        """A resume whose staging tables are gone: dropped when the job failed for good,
        then retried by hand. If nothing of it is in the target, it starts over from its
        files (its rejects and counters anew); else it cannot go on."""
        if self.ctx.remote:
            raise JobobsError(f"the staging tables of job {self.ctx.job_id} are gone (dropped "
                              "when it failed, or not in a scratch folder its Dask workers "
                              "share: serve --scratch); import the files again as a new job")
        if state["phase"] == "load" and state.get("row"):
            raise JobobsError(f"{state['row']:,} rows of this import stay in "
                              f"{self.options.table} from before it failed, and its staging "
                              "tables were dropped then: it cannot go on; import the rest "
                              "with a new job")
        self.ctx.log.warning("The staging tables were dropped when the job failed: the "
                             "import starts over from its files")
        self.cursor.execute("DELETE FROM rejects WHERE job_id = ?", [self.ctx.job_id])
        self.ctx.count(total=None, **{c: 0 for c in COUNTERS if c != "total"})
        return {"phase": "read", "file": 0}

    def staged(self) -> bool:
        try:
            self.cursor.execute(f"SELECT 1 FROM {self.stage} LIMIT 0")
        except duckdb.CatalogException:
            return False
        return True

    def drop_staging(self, con: duckdb.DuckDBPyConnection | None = None,
                     failed: bool = False) -> None:
        """Drop the staging tables (after a failure, a one-pass import's marker stays once
        its rows committed)."""
        con = con or self.cursor
        for table in (self.stage, self.stage_rejects, self.load):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        if self.ctx.remote:
            drop = f"DROP TABLE IF EXISTS {ident(self.inbox)}"
            con.execute(f"FROM {self.ctx.on_server(drop)}")
        if self.in_one_pass:
            OnePass(self).drop(failed=failed)


@job(name="import", kind="import", max_rejects=None)
def import_job(ctx: JobContext, options: dict[str, Any], within: str | None = None) -> None:
    """The import job: ``options`` are ImportOptions' fields; ``within``, the real path of
    the export folder a ``dataset`` was allowed under (None: anywhere)."""
    run = Import(ctx, ImportOptions(**options), within)
    ended = True  # else paused, shut down or to be retried: a resume reads the files again
    try:
        run.run()
    except JobInterrupt as interrupt:
        ended = isinstance(interrupt, CancelInterrupt)
        if ended:
            run.drop_staging()
        raise
    except (duckdb.Error, Exception) as error:
        failure = JobobsError(clear(error)) if isinstance(error, duckdb.Error) else error
        ended = not ctx.retry_follows(failure)
        if ended:
            run.drop_staging(failed=True)
        else:
            ctx.log.info("The staging tables stay for the retry")
        run.say_what_stays()
        if failure is not error:
            raise failure from None
        raise
    finally:
        run.cursor.close()
        if ended:
            remove_replay_file(run.options)


def submit(rt: Any, source: str | list[str], table: str, *, name: str | None = None,
           parent: int | None = None, actor: str | None = None, check: bool = False,
           **options: Any) -> Any:
    """Submit an import of ``source`` into ``table``; options are ImportOptions' fields,
    and ``schedule`` and ``retry`` go to ``Runtime.submit``. ``check``: only check them."""
    how = {k: options.pop(k) for k in ("schedule", "retry") if k in options}
    checked = ImportOptions(source=source, table=table, **options)
    within = None
    if checked.dataset is not None:  # written like an export's file
        within = confine(checked.dataset, getattr(rt, "export_dirs", None))
    if check:
        return None
    return rt.submit(import_job, asdict(checked), name=name or f"import {table}", parent=parent,
                     actor=actor, **how, **({} if within is None else {"within": within}))


submissions.register("import", submit)
