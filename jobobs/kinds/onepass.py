"""One-pass imports: the common case (no key, all or nothing) read straight into the target.

The files are read by DuckDB's reader directly into the target table, in one transaction
on the job's own connection, so the import costs about what the raw reader costs. The
reader's rejects go into a per-job holding table in the same transaction; its existence
after a crash means the rows are in, and a checkpoint then moves the rejects into
``rejects`` and drops it. A pause or cancel interrupts the transaction and rolls it back;
past the reject threshold it is rolled back too and the files are read once more, without
writing, to record the rejects.

Integer, decimal and the other columns DuckDB's reader cannot be trusted with are read as
text and checked (see ``sources.wide_type``). A value that does not fit stops the pass; it
is then done again, carefully: the rows that fit go in (with NULL where a bad value is
ignored) and the others become rejects, placed by DuckDB's reader where it can (see
``rawlines.typed_rejects``), else by reading the file once more. A bad value in a column
whose bad values stop the import rolls it back.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import duckdb

from jobobs.db.sql import StatementProgress, ident, literal, table_name
from jobobs.kinds.rawlines import first_stop, keep_raw_bytes, placed_rows, typed_rejects
from jobobs.kinds.sources import (
    ImportOptions,
    bad_value_policy,
    bad_values,
    converted,
    fits,
    lines_rejected,
    reader,
    relocate,
    stop_message,
    threshold,
    warn_ignored,
    wide_columns,
)
from jobobs.model.errors import JobobsError, TooManyRejects

if TYPE_CHECKING:
    from jobobs.kinds.importing import Import

INEXACT = "_jobobs_inexact_value"  # the error that stops a pass at a value to reject
HELD = "(path, line, column_name, reason, raw, message)"  # a held reject but its level


class OnePass:
    def __init__(self, run: Import):
        self.run = run
        self.ctx, self.options, self.cursor = run.ctx, run.options, run.cursor
        # The held rejects live in the target's database: a DuckDB transaction writes to
        # one database only, and they must commit with the rows.
        self.database = run.target_database()
        self.holder_name = f"_jobobs_rejects_held_{self.ctx.job_id}"
        self.holder = self.qualified(self.holder_name)
        self.marker_name = f"_jobobs_committed_{self.ctx.job_id}"
        self.marker = self.qualified(self.marker_name)

    def import_files(self, files: list[str], columns: dict[str, str],
                     state: dict[str, Any]) -> None:
        ctx, options, cur = self.ctx, self.options, self.cursor
        base = {"files": files, "columns": columns}
        if state.get("phase") == "reread":  # rolled back; its rejects were being read again
            self.finish_without_rows(files, columns, state)
            return
        if not self.committed():  # else the rows went in before an interruption
            ctx.log.info("--- Import data into %s (all or nothing, in one pass) ---",
                         options.table)
            sizes = [os.path.getsize(f) for f in files]
            at = [0]
            with ctx.interruptible(cur.interrupt), self.progress(sizes, at):
                loaded = self.load(files, columns, sizes, at, careful=False)
                if loaded is None:
                    ctx.log.info("A value does not fit its column: reading again, to set it "
                                 "aside")
                    loaded = self.load(files, columns, sizes, at, careful=True)
            imported, rejected, limit, over, stop = loaded
            ctx.log.info("Starting import of %d records", imported + rejected)
            if not imported + rejected:
                ctx.warn("The input has no records")
            if options.dry_run or over or stop:
                outcome = {**base, "phase": "reread", "imported": imported,
                           "rejected": rejected, "limit": limit, "stop": stop,
                           "outcome": "stopped" if stop else "failed" if over else "dry run"}
                ctx.checkpoint(outcome)
                self.finish_without_rows(files, columns, outcome)
                return
        # held by a version before bad values had a policy: every reject an error
        cur.execute(f"ALTER TABLE {self.holder} ADD COLUMN IF NOT EXISTS level VARCHAR "
                    "DEFAULT 'error'")
        imported, rejected = cur.execute(f"SELECT imported, rejected FROM {self.marker}"
                                         ).fetchone()
        ctx.count(total=imported + rejected, processed=imported + rejected,
                  succeeded=imported, rejected=rejected)
        self.record_rejects({**base, "phase": "done"})

    def load(self, files: list[str], columns: dict[str, str], sizes: list[int],
             at: list[int], careful: bool) -> tuple[int, int, int | None, bool, str | None] | None:
        """Read the files into the target in one transaction; return what it imported and
        rejected, the threshold, whether it was passed, and why the import stops (a bad value
        in a column whose bad values stop it; the files after it are not read). Not ``careful``:
        None, with nothing written, at the first value that does not fit its column."""
        ctx, options, cur = self.ctx, self.options, self.cursor
        target = table_name(options.table)
        typed = ", ".join(f"{ident(n)} {t}" for n, t in columns.items())
        imported, stop = 0, None
        cur.execute("BEGIN TRANSACTION")
        try:
            # A new table is created from the first file's rows (as fast as the raw
            # reader); an existing one is appended to by name.
            create = options.mode == "replace" or not self.run.exists()
            self.create_holder(cur)
            for index, path in enumerate(files):
                at[0] = index
                if not sizes[index]:
                    ctx.warn("%s is empty", path)
                    continue
                rejects = f"_jobobs_reader_rejects_{ctx.job_id}_{index}"
                wide = wide_columns(cur, path, self.options, columns)
                rows = self.fitting_rows(columns, wide, reader(path, options, {**columns, **wide},
                                                               rejects), careful, options)
                ctx.check_interrupt()
                if create:
                    cur.execute(f"CREATE OR REPLACE TABLE {target} AS {rows}")
                    read = cur.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
                    create = False
                else:
                    read = cur.execute(f"INSERT INTO {target} BY NAME {rows}").fetchone()[0]
                imported += read
                ctx.check_interrupt()
                cur.execute(f"INSERT INTO {self.holder} {HELD} "
                            f"{lines_rejected(path, rejects)}")
                keep_raw_bytes(cur, path, rejects, self.holder, options)
                if careful and wide:
                    self.hold_bad_values(path, columns, wide, rejects, read)
                relocate(cur, self.holder, path, options)
                stop = self.stopping(path)
                if stop:
                    break
            if create:  # every file was empty
                cur.execute(f"CREATE OR REPLACE TABLE {target} ({typed})")
            rejected = cur.execute(f"SELECT count(*) FROM {self.holder} WHERE level = 'error'"
                                   ).fetchone()[0]
            limit = threshold(options.max_rejects, imported + rejected)
            over = limit is not None and rejected > limit
            # The marker that says the rows are in, with what they count.
            cur.execute(f"CREATE TABLE {self.marker} AS SELECT {int(imported)} AS "
                        f"imported, {int(rejected)} AS rejected")
            ctx.check_interrupt()
            cur.execute("ROLLBACK" if options.dry_run or over or stop else "COMMIT")
        except BaseException as error:
            cur.execute("ROLLBACK")
            if not careful and isinstance(error, duckdb.InvalidInputException) and \
                    INEXACT in str(error):
                return None
            raise
        return imported, rejected, limit, over, stop

    @staticmethod
    def fitting_rows(columns: dict[str, str], wide: dict[str, str], source: str,
                     careful: bool, options: ImportOptions) -> str:
        """The query of the rows of ``source`` in their columns' types. A value read
        ``wide`` that does not fit its column stops the query; ``careful``, its row is left
        out instead, or keeps NULL there where the column's bad values are ignored."""
        ignored = {c for c in wide if bad_value_policy(options, c) == "ignore"}
        names = ", ".join(f"{converted(c, columns[c], wide[c], c in ignored)} AS {ident(c)}"
                          if c in wide else ident(c) for c in columns)
        if not wide:
            return f"SELECT {names} FROM {source}"
        if careful:
            where = " AND ".join(fits(c, columns[c], wide[c]) for c in wide
                                 if c not in ignored) or "true"
        else:
            every = " AND ".join(fits(c, columns[c], wide[c]) for c in wide)
            where = f"CASE WHEN {every} THEN true ELSE error({literal(INEXACT)}) END"
        return f"SELECT {names} FROM {source} WHERE {where}"

    def hold_bad_values(self, path: str, columns: dict[str, str], wide: dict[str, str],
                        reader_rejects: str, read: int) -> None:
        """Hold the rows of ``path`` left out for a value that does not fit (``read`` rows
        went in) as rejects, and the values set to NULL as warnings. When the only ones are
        values that are no number at all in a number column, DuckDB's reader places them
        (``rawlines.typed_rejects``); else the file is read once more."""
        if not any(bad_value_policy(self.options, c) == "ignore" for c in wide):
            typed = typed_rejects(self.cursor, path, self.options, columns, wide,
                                  reader_rejects)
            if typed is not None:
                (rejected,) = self.cursor.execute(
                    f"SELECT count(DISTINCT line) FROM {ident(reader_rejects)}").fetchone()
                if typed.records - rejected - read == len(typed.lines):
                    self.cursor.execute(
                        f"""INSERT INTO {self.holder} {HELD} SELECT {literal(path)},
                        unnest(?::BIGINT[]), unnest(?::VARCHAR[]), 'cast error',
                        unnest(?::VARCHAR[]), unnest(?::VARCHAR[])""",
                        [[line for line, _, _, _ in typed.lines],
                         [column for _, _, column, _ in typed.lines],
                         [raw for _, raw, _, _ in typed.lines],
                         [message for _, _, _, message in typed.lines]])
                    return
        self.hold_read_again(path, columns, wide, reader_rejects)

    def hold_read_again(self, path: str, columns: dict[str, str], wide: dict[str, str],
                        reader_rejects: str) -> None:
        """Read ``path`` again to hold its rows with a value that does not fit as rejects,
        and its values set to NULL as warnings, at their line (see rawlines.placed_rows)."""
        cur, again = self.cursor, f"{reader_rejects}_again"
        bad = bad_values(columns, wide, self.options)
        source = reader(path, self.options, {**columns, **wide}, again)
        found = cur.execute(f"""SELECT * FROM (SELECT row_number() OVER () AS _row,
            {bad.values} AS _values, {bad.column} AS _column, {bad.message} AS _message,
            {bad.ignored} AS _ignored, {bad.ignored_messages} AS _ignored_messages
            FROM {source}) WHERE _values IS NOT NULL""").fetchall()
        for table in (again, again + "_scan"):
            cur.execute(f"DROP TABLE IF EXISTS {ident(table)}")
        placed = {row: (line, raw) for row, line, raw in placed_rows(
            cur, path, self.options, columns, wide, [(row, values) for row, values, *_ in found],
            reader_rejects)}
        held = []
        for row, _, column, message, ignored, ignored_messages in found:
            line, raw = placed[row]
            if column is not None:
                held.append((line, column, raw, message, "error"))
            else:
                held += [(line, c, raw, m, "warning")
                         for c, m in zip(ignored, ignored_messages)]
        cur.execute(f"""INSERT INTO {self.holder} SELECT {literal(path)}, unnest(?::BIGINT[]),
            unnest(?::VARCHAR[]), 'cast error', unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
            unnest(?::VARCHAR[])""", [list(column) for column in zip(*held)] or [[]] * 5)

    def stopping(self, path: str) -> str | None:
        """Why the import stops at a rejected line of ``path``: the first with a bad value
        in a column whose bad values stop it, if any (see rawlines.first_stop)."""
        found = first_stop(self.cursor, self.holder, f"path = {literal(path)}", "line",
                           self.options, self.run.columns)
        return None if found is None else stop_message(*found)

    def finish_without_rows(self, files: list[str], columns: dict[str, str],
                            state: dict[str, Any]) -> None:
        """After a rollback (dry run, past the threshold, or stopped): record the rejects."""
        imported, rejected = state["imported"], state["rejected"]
        self.hold_rejects_only(files, columns, stop=state["outcome"] == "stopped")
        self.ctx.count(total=imported + rejected, processed=imported + rejected, succeeded=0,
                       rejected=rejected)
        if state["outcome"] == "stopped":
            self.record_rejects({**state, "phase": "failed"})
            raise JobobsError(state["stop"])
        if state["outcome"] == "failed":
            self.record_rejects({**state, "phase": "failed"})
            raise TooManyRejects(rejected, state["limit"])
        self.ctx.log.info("Dry run: %d records would be imported into %s; nothing was "
                          "written", imported, self.options.table)
        self.record_rejects({**state, "phase": "done"})

    def create_holder(self, cur: duckdb.DuckDBPyConnection, replace: bool = False) -> None:
        cur.execute(f"""CREATE {'OR REPLACE ' if replace else ''}TABLE {self.holder} (
            path VARCHAR, line BIGINT, column_name VARCHAR, reason VARCHAR, raw VARCHAR,
            message VARCHAR, level VARCHAR DEFAULT 'error')""")

    def hold_rejects_only(self, files: list[str], columns: dict[str, str],
                          stop: bool = False) -> None:
        """Read the files again without writing, to keep their rejects (``stop``: up to the
        file where the import stopped)."""
        cur = self.cursor
        self.create_holder(cur, replace=True)
        for index, path in enumerate(files):
            if not os.path.getsize(path):
                continue
            rejects = f"_jobobs_reader_rejects_{self.ctx.job_id}_{index}"
            every = ", ".join(ident(c) for c in columns)  # so that every value is parsed
            wide = wide_columns(cur, path, self.options, columns)
            source = reader(path, self.options, {**columns, **wide}, rejects)
            with self.ctx.interruptible(cur.interrupt):
                cur.execute(f"SELECT sum(hash({every})) FROM {source}").fetchall()
                if wide:
                    self.hold_read_again(path, columns, wide, rejects)
                self.ctx.check_interrupt()
            cur.execute(f"INSERT INTO {self.holder} {HELD} "
                        f"{lines_rejected(path, rejects)}")
            keep_raw_bytes(cur, path, rejects, self.holder, self.options)
            relocate(cur, self.holder, path, self.options)
            if stop and self.stopping(path):
                return

    def record_rejects(self, state: dict[str, Any]) -> None:
        """Move the held rejects into ``rejects`` with the checkpoint that says so.

        The rows are in by now, so a pause or cancel that comes now is too late: this
        saves without honouring it, and the job ends as it is. The holding table goes in
        the same transaction, or (in another database) right after the checkpoint, which
        a resume reads first."""
        count, warned = self.cursor.execute(
            f"SELECT count(*), count(*) FILTER (level = 'warning') FROM {self.holder}"
        ).fetchone()
        first = self.ctx.reserve_rejects(count)

        def move(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"""INSERT INTO rejects SELECT ?, ? + row_number() OVER
                (ORDER BY list_position(?::VARCHAR[], path), line, level), now()::TIMESTAMP,
                level, path, line, column_name, raw, NULL, reason, message FROM {self.holder}""",
                        [self.ctx.job_id, first, state["files"]])
            if not self.database:
                con.execute(f"DROP TABLE {self.holder}")
                con.execute(f"DROP TABLE IF EXISTS {self.marker}")

        if warned:
            warn_ignored(self.ctx, warned)
        self.ctx.save(atomic=move, state=state)
        self.drop()

    def qualified(self, name: str) -> str:
        return f"{ident(self.database)}.main.{ident(name)}" if self.database else ident(name)

    def committed(self) -> bool:
        """True when the import's transaction committed (its marker exists)."""
        return bool(self.cursor.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
            "AND database_name = coalesce(?, current_database())",
            [self.marker_name, self.database]).fetchone()[0])

    def drop(self, failed: bool = False) -> None:
        """Drop the held rejects and the marker; after a failure, not once the rows
        committed: a retry then records the rejects without loading the rows again."""
        if failed and self.committed():
            return
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.holder}")
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.marker}")

    def progress(self, sizes: list[int], at: list[int]) -> StatementProgress:
        """Report the reader's progress through the files (``at[0]`` is the current one)."""
        total = sum(sizes) or 1

        def report(percent: float) -> None:
            done = sum(sizes[: at[0]]) + sizes[at[0]] * percent / 100
            self.ctx.progress(done, total, counts=False)

        return StatementProgress(self.cursor, report, lambda: self.ctx.stop_requested)
