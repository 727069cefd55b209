"""One-pass imports: the common case (no key, all or nothing) read straight into the target.

The files are read by DuckDB's reader directly into the target table, in one transaction
on the job's own connection, so the import costs about what the raw reader costs. The
reader's rejects go into a per-job holding table in the same transaction; its existence
after a crash means the rows are in, and a checkpoint then moves the rejects into
``rejects`` and drops it. A pause or cancel interrupts the transaction and rolls it back;
past the reject threshold it is rolled back too and the files are read once more, without
writing, to record the rejects.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import duckdb

from jobobs.errors import TooManyRejects
from jobobs.jobs.sql import StatementProgress, ident, table_name

if TYPE_CHECKING:
    from jobobs.jobs.importing import Import


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
        from jobobs.jobs.sources import lines_rejected, reader, threshold

        ctx, options, cur = self.ctx, self.options, self.cursor
        base = {"files": files, "columns": columns}
        if state.get("phase") == "reread":  # rolled back; its rejects were being read again
            self.finish_without_rows(files, columns, state)
            return
        if not self.committed():  # else the rows went in before an interruption
            target = table_name(options.table)
            ctx.log.info("--- Import data into %s (all or nothing, in one pass) ---",
                         options.table)
            sizes = [os.path.getsize(f) for f in files]
            names = ", ".join(ident(c) for c in columns)
            typed = ", ".join(f"{ident(n)} {t}" for n, t in columns.items())
            imported = 0
            at = [0]
            with ctx.interruptible(cur.interrupt), self.progress(sizes, at):
                cur.execute("BEGIN TRANSACTION")
                try:
                    # A new table is created from the first file's rows (as fast as the
                    # raw reader); an existing one is appended to by name.
                    create = options.mode == "replace" or not self.run.exists()
                    self.create_holder(cur)
                    for index, path in enumerate(files):
                        at[0] = index
                        if not sizes[index]:
                            ctx.warn("%s is empty", path)
                            continue
                        rejects = f"_jobobs_reader_rejects_{ctx.job_id}_{index}"
                        source = reader(path, options, columns, rejects)
                        ctx.check_interrupt()
                        if create:
                            cur.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT {names} "
                                        f"FROM {source}")
                            imported += cur.execute(f"SELECT count(*) FROM {target}"
                                                    ).fetchone()[0]
                            create = False
                        else:
                            imported += cur.execute(f"INSERT INTO {target} BY NAME SELECT "
                                                    f"{names} FROM {source}").fetchone()[0]
                        ctx.check_interrupt()
                        cur.execute(f"INSERT INTO {self.holder} "
                                    f"{lines_rejected(path, rejects)}")
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
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
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
        from jobobs.jobs.sources import lines_rejected, reader

        cur = self.cursor
        self.create_holder(cur, replace=True)
        for index, path in enumerate(files):
            if not os.path.getsize(path):
                continue
            rejects = f"_jobobs_reader_rejects_{self.ctx.job_id}_{index}"
            every = ", ".join(ident(c) for c in columns)  # so that every value is parsed
            with self.ctx.interruptible(cur.interrupt):
                cur.execute(f"SELECT sum(hash({every})) "
                            f"FROM {reader(path, self.options, columns, rejects)}").fetchall()
                self.ctx.check_interrupt()
            cur.execute(f"INSERT INTO {self.holder} {lines_rejected(path, rejects)}")

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
