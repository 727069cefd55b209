"""One-pass imports: the common case (no key, all or nothing) read straight into the target.

The files are read by DuckDB's reader directly into the target table, in one transaction
on the job's own connection, so the import costs about what the raw reader costs. The
reader's rejects go into a per-job holding table in the same transaction; its existence
after a crash means the rows are in, and a checkpoint then moves the rejects into
``rejects`` and drops it. A pause or cancel interrupts the transaction and rolls it back;
past the reject threshold it is rolled back too and the files are read once more, without
writing, to record the rejects.

Integer and decimal columns are read in a wider exact type and checked (see
``sources.wide_type``). A value that its column would round stops the pass; it is then
done again, carefully: the exact rows go in and the others are read once more as rejects.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import duckdb

from jobobs.db.sql import StatementProgress, ident, literal, table_name
from jobobs.kinds.rawlines import keep_raw_bytes, located_rows
from jobobs.kinds.sources import (
    exact,
    inexact_reject,
    lines_rejected,
    reader,
    relocate,
    threshold,
    wide_columns,
)
from jobobs.model.errors import TooManyRejects

if TYPE_CHECKING:
    from jobobs.kinds.importing import Import

INEXACT = "_jobobs_inexact_value"  # the error that stops a pass at a value to reject


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
                    ctx.log.info("A value would be rounded: reading again, to reject it")
                    loaded = self.load(files, columns, sizes, at, careful=True)
            imported, rejected, limit, over = loaded
            ctx.log.info("Starting import of %d records", imported + rejected)
            if not imported + rejected:
                ctx.warn("The input has no records")
            if options.dry_run or over:
                outcome = {**base, "phase": "reread", "imported": imported,
                           "rejected": rejected, "limit": limit,
                           "outcome": "failed" if over else "dry run"}
                ctx.checkpoint(outcome)
                self.finish_without_rows(files, columns, outcome)
                return
        imported, rejected = cur.execute(f"SELECT imported, rejected FROM {self.marker}"
                                         ).fetchone()
        ctx.count(total=imported + rejected, processed=imported + rejected,
                  succeeded=imported, rejected=rejected)
        self.record_rejects({**base, "phase": "done"})

    def load(self, files: list[str], columns: dict[str, str], sizes: list[int],
             at: list[int], careful: bool) -> tuple[int, int, int | None, bool] | None:
        """Read the files into the target in one transaction; return what it imported and
        rejected, the threshold and whether it was passed. Not ``careful``: None, with
        nothing written, at the first value that its column would round."""
        ctx, options, cur = self.ctx, self.options, self.cursor
        target = table_name(options.table)
        typed = ", ".join(f"{ident(n)} {t}" for n, t in columns.items())
        imported = 0
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
                rows = self.exact_rows(columns, wide, reader(path, options, {**columns, **wide},
                                                             rejects), careful)
                ctx.check_interrupt()
                if create:
                    cur.execute(f"CREATE OR REPLACE TABLE {target} AS {rows}")
                    imported += cur.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
                    create = False
                else:
                    imported += cur.execute(f"INSERT INTO {target} BY NAME {rows}"
                                            ).fetchone()[0]
                ctx.check_interrupt()
                cur.execute(f"INSERT INTO {self.holder} {lines_rejected(path, rejects)}")
                keep_raw_bytes(cur, path, rejects, self.holder, options)
                if careful and wide:
                    self.hold_inexact(path, columns, wide, rejects)
                relocate(cur, self.holder, path, options)
            if create:  # every file was empty
                cur.execute(f"CREATE OR REPLACE TABLE {target} ({typed})")
            rejected = cur.execute(f"SELECT count(*) FROM {self.holder}").fetchone()[0]
            limit = threshold(options.max_rejects, imported + rejected)
            over = limit is not None and rejected > limit
            # The marker that says the rows are in, with what they count.
            cur.execute(f"CREATE TABLE {self.marker} AS SELECT {int(imported)} AS "
                        f"imported, {int(rejected)} AS rejected")
            ctx.check_interrupt()
            cur.execute("ROLLBACK" if options.dry_run or over else "COMMIT")
        except BaseException as error:
            cur.execute("ROLLBACK")
            if not careful and isinstance(error, duckdb.InvalidInputException) and \
                    INEXACT in str(error):
                return None
            raise
        return imported, rejected, limit, over

    @staticmethod
    def exact_rows(columns: dict[str, str], wide: dict[str, str], source: str,
                   careful: bool) -> str:
        """The query of the rows of ``source`` in their columns' types; the rows with a
        value read ``wide`` that its column would round are left out (``careful``) or
        stop the query."""
        names = ", ".join(f"CAST({ident(c)} AS {columns[c]}) AS {ident(c)}" if c in wide
                          else ident(c) for c in columns)
        if not wide:
            return f"SELECT {names} FROM {source}"
        fits = " AND ".join(exact(c, columns[c]) for c in wide)
        where = fits if careful else \
            f"CASE WHEN {fits} THEN true ELSE error({literal(INEXACT)}) END"
        return f"SELECT {names} FROM {source} WHERE {where}"

    def hold_inexact(self, path: str, columns: dict[str, str], wide: dict[str, str],
                     reader_rejects: str) -> None:
        """Read ``path`` again to hold its rows with a value that its column would round
        as rejects, at their line (see records.located_rows)."""
        cur, again = self.cursor, f"{reader_rejects}_again"
        column, message, values = inexact_reject(columns, wide)
        source = reader(path, self.options, {**columns, **wide}, again)
        inexact = cur.execute(f"""SELECT * FROM (SELECT row_number() OVER () AS _row,
            {values} AS _values, {column} AS _column, {message} AS _message FROM {source})
            WHERE _column IS NOT NULL""").fetchall()
        for table in (again, again + "_scan"):
            cur.execute(f"DROP TABLE IF EXISTS {ident(table)}")
        found = located_rows(cur, path, self.options, columns, wide,
                             [(row, values) for row, values, _, _ in inexact], reader_rejects)
        cur.execute(f"""INSERT INTO {self.holder} SELECT {literal(path)}, unnest(?::BIGINT[]),
            unnest(?::VARCHAR[]), 'cast error', unnest(?::VARCHAR[]), unnest(?::VARCHAR[])""",
                    [[line for _, line, _ in found], [c for _, _, c, _ in inexact],
                     [raw for _, _, raw in found], [m for _, _, _, m in inexact]])

    def finish_without_rows(self, files: list[str], columns: dict[str, str],
                            state: dict[str, Any]) -> None:
        """After a rollback (dry run, or past the threshold): record the rejects."""
        imported, rejected = state["imported"], state["rejected"]
        self.hold_rejects_only(files, columns)
        self.ctx.count(total=imported + rejected, processed=imported + rejected, succeeded=0,
                       rejected=rejected)
        if state["outcome"] == "failed":
            self.record_rejects({**state, "phase": "failed"})
            raise TooManyRejects(rejected, state["limit"])
        self.ctx.log.info("Dry run: %d records would be imported into %s; nothing was "
                          "written", imported, self.options.table)
        self.record_rejects({**state, "phase": "done"})

    def create_holder(self, cur: duckdb.DuckDBPyConnection, replace: bool = False) -> None:
        cur.execute(f"""CREATE {'OR REPLACE ' if replace else ''}TABLE {self.holder} (
            path VARCHAR, line BIGINT, column_name VARCHAR, reason VARCHAR, raw VARCHAR,
            message VARCHAR)""")

    def hold_rejects_only(self, files: list[str], columns: dict[str, str]) -> None:
        """Read the files again without writing, to keep their rejects."""
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
                    self.hold_inexact(path, columns, wide, rejects)
                self.ctx.check_interrupt()
            cur.execute(f"INSERT INTO {self.holder} {lines_rejected(path, rejects)}")
            keep_raw_bytes(cur, path, rejects, self.holder, self.options)
            relocate(cur, self.holder, path, self.options)

    def record_rejects(self, state: dict[str, Any]) -> None:
        """Move the held rejects into ``rejects`` with the checkpoint that says so.

        The rows are in by now, so a pause or cancel that comes now is too late: this
        saves without honouring it, and the job ends as it is. The holding table goes in
        the same transaction, or (in another database) right after the checkpoint, which
        a resume reads first."""
        count = self.cursor.execute(f"SELECT count(*) FROM {self.holder}").fetchone()[0]
        first = self.ctx.reserve_rejects(count)

        def move(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"""INSERT INTO rejects SELECT ?, ? + row_number() OVER
                (ORDER BY path, line), now()::TIMESTAMP, 'error', path, line, column_name,
                raw, NULL, reason, message FROM {self.holder}""", [self.ctx.job_id, first])
            if not self.database:
                con.execute(f"DROP TABLE {self.holder}")
                con.execute(f"DROP TABLE IF EXISTS {self.marker}")

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

    def drop(self) -> None:
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.holder}")
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.marker}")

    def progress(self, sizes: list[int], at: list[int]) -> StatementProgress:
        """Report the reader's progress through the files (``at[0]`` is the current one)."""
        total = sum(sizes) or 1

        def report(percent: float) -> None:
            done = sum(sizes[: at[0]]) + sizes[at[0]] * percent / 100
            self.ctx.progress(done, total, counts=False)

        return StatementProgress(self.cursor, report, lambda: self.ctx.stop_requested)
