"""Export jobs: a query or a table to a file with DuckDB's COPY.

The file is written in a private folder beside the target and renamed when complete
(``jobobs.files.replacing``), so a failed, canceled or interrupted export never leaves a
partial file under the target name, and the target's folder is checked against the
export folder it was allowed under when the file is written, not only when the job was
submitted. A differential export remembers the highest value of a watermark column in
``export_watermarks`` and next time exports only the rows above it; the watermark moves
only when the file is in place.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import duckdb

from jobobs import files, readonly
from jobobs.context import JobContext
from jobobs.errors import JobobsError
from jobobs.job import job
from jobobs.jobs.sql import StatementProgress, clear, ident, literal, table_name

FORMATS = ("csv", "parquet", "json")
COMPRESSIONS = ("gzip", "zstd", "none")


@dataclass
class ExportOptions:
    """What to export and how; checked when the job is submitted."""

    to: str
    query: str | None = None
    table: str | None = None
    format: str | None = None          # csv, parquet or json; else from the file name
    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    date_format: str | None = None     # strftime format, such as %d/%m/%Y
    timestamp_format: str | None = None
    compression: str | None = None     # gzip, zstd or none; else from the file name
    limit: int | None = None
    watermark: str | None = None       # a column: export only rows above the last run's max

    def __post_init__(self) -> None:
        if (self.query is None) == (self.table is None):
            raise JobobsError("give either a query or a table to export")
        if self.table is not None:
            table_name(self.table)
        if self.query is not None:  # also where the job runs: any SQL client can write a spec
            self.query = readonly.check(self.query, explain=False)
        if not isinstance(self.to, str) or not self.to or self.to.endswith(os.sep):
            raise JobobsError("to must be a file path")
        folder = os.path.dirname(os.path.abspath(self.to))
        if not os.path.isdir(folder):
            raise JobobsError(f"the folder {folder} does not exist")
        if os.path.isdir(self.to):
            raise JobobsError(f"{self.to} is a directory, not a file")
        for name, value, allowed in (("format", self.format, FORMATS),
                                     ("compression", self.compression, COMPRESSIONS)):
            if value is not None and value not in allowed:
                raise JobobsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 0):
            raise JobobsError("limit must be a whole number >= 0")
        if not isinstance(self.delimiter, str) or not 1 <= len(self.delimiter) <= 4:
            raise JobobsError("delimiter must be one to four characters")

    @property
    def kind(self) -> str:
        if self.format:
            return self.format
        name = self.to.lower().removesuffix(".gz").removesuffix(".zst")
        return next((k for k in FORMATS if name.endswith("." + k)), "csv")

    def copy_options(self) -> str:
        options = [f"FORMAT {self.kind}"]
        if self.kind == "csv":
            options += [f"HEADER {literal(self.header)}", f"DELIMITER {literal(self.delimiter)}",
                        f"QUOTE {literal(self.quote)}"]
            if self.date_format:
                options.append(f"DATEFORMAT {literal(self.date_format)}")
            if self.timestamp_format:
                options.append(f"TIMESTAMPFORMAT {literal(self.timestamp_format)}")
        compression = self.compression or (
            "gzip" if self.to.endswith(".gz") else "zstd" if self.to.endswith(".zst") else None)
        if compression and self.kind != "parquet":
            options.append(f"COMPRESSION {literal(compression)}")
        return ", ".join(options)


class Export:
    def __init__(self, ctx: JobContext, options: ExportOptions, within: str | None = None):
        self.ctx, self.options, self.within = ctx, options, within
        self.cursor = ctx.cursor()

    def run(self) -> None:
        ctx, options, cur = self.ctx, self.options, self.cursor
        started = time.monotonic()
        ctx.log.info("--- Export data to %s ---", options.to)
        query = options.query or f"SELECT * FROM {table_name(options.table)}"
        query, previous = self.differential(query)
        if options.limit is not None:  # by the watermark, so the rows left out come next time
            order = f" ORDER BY {ident(options.watermark)}" if options.watermark else ""
            query = f"SELECT * FROM ({query}){order} LIMIT {int(options.limit)}"
        on_server = ctx.on_server  # the query runs where the data is (see JobContext)
        with files.replacing(options.to, self.within) as temporary, \
                ctx.interruptible(cur.interrupt):
            cur.execute("BEGIN TRANSACTION")  # one snapshot for the count, the max and the file
            try:
                mark = None
                if options.watermark:
                    mark = cur.execute(f"""SELECT * FROM {on_server(
                        f'SELECT max({ident(options.watermark)})::VARCHAR FROM ({query})')}"""
                    ).fetchone()[0]
                    if mark is not None:  # rows that come in meanwhile are for next time
                        query = self.bounded(query, mark)
                count = cur.execute(f"SELECT * FROM {on_server(f'SELECT count(*) FROM ({query})')}"
                                    ).fetchone()[0]
                ctx.progress(0, count)
                ctx.log.info("Starting export of %d records", count)
                with StatementProgress(cur, lambda percent: ctx.progress(
                        int(count * percent / 100), count), lambda: ctx.stop_requested):
                    cur.execute(f"COPY (SELECT * FROM {on_server(query)}) TO "
                                f"{literal(temporary)} ({options.copy_options()}, "
                                "USE_TMP_FILE false)")
                ctx.check_interrupt()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        ctx.progress(count, count)
        ctx.count(succeeded=count)
        # The file is in place: a pause or cancel now is too late, and the mark must move.
        steps = []
        if options.watermark:
            steps.append({"kind": "watermark", "name": ctx.name, "column": options.watermark,
                          "value": mark or previous, "job_id": ctx.job_id})
        ctx.save(steps=steps, state={"done": True})
        ctx.log.info("End of export (%d records to %s in %.1fs)", count, options.to,
                     time.monotonic() - started)

    def differential(self, query: str) -> tuple[str, str | None]:
        """The query narrowed to rows above the last watermark, and that watermark."""
        column = self.options.watermark
        if not column:
            return query, None
        row = self.cursor.execute("SELECT value FROM export_watermarks WHERE name = ?",
                                  [self.ctx.name]).fetchone()
        if row is None or row[0] is None:
            self.ctx.log.info("Differential export on %s: first run, every row", column)
            return query, None
        cast = self.typed(query, row[0])
        self.ctx.log.info("Differential export: rows with %s above %s", column, row[0])
        return f"SELECT * FROM ({query}) WHERE {ident(column)} > {cast}", row[0]

    def bounded(self, query: str, mark: str) -> str:
        """The query up to the watermark's value ``mark``."""
        column = ident(self.options.watermark)
        return f"SELECT * FROM ({query}) WHERE {column} <= {self.typed(query, mark)}"

    def typed(self, query: str, value: str) -> str:
        """``value`` (text) as a literal of the watermark column's type."""
        column = ident(self.options.watermark)
        kind = self.cursor.execute(f"""SELECT * FROM {self.ctx.on_server(
            f'SELECT typeof({column}) FROM ({query}) LIMIT 1')}""").fetchone()
        return f"CAST({literal(value)} AS {kind[0]})" if kind else literal(value)


@job(name="export", kind="export", max_rejects=None)
def export_job(ctx: JobContext, options: dict[str, Any], within: str | None = None) -> None:
    """The export job: ``options`` are ExportOptions' fields; ``within``, the real path of
    the export folder the target was allowed under (None: anywhere)."""
    run = Export(ctx, ExportOptions(**options), within)
    try:
        run.run()
    except duckdb.Error as error:
        raise JobobsError(clear(error)) from None
    except OSError as error:
        raise JobobsError(f"cannot write {run.options.to}: {error.strerror or error}") from None
    finally:
        run.cursor.close()


def confine(path: str, folders: list[str] | None) -> str | None:
    """Refuse a target outside ``folders`` (None: anywhere), symbolic links and ``..``
    resolved first; return the real path of the folder it is under (None: anywhere), where
    the job checks it again when it writes."""
    if folders is None:
        return None
    real = os.path.realpath(path)
    for folder in folders:
        allowed = os.path.realpath(folder)
        if os.path.commonpath([real, allowed]) == allowed:
            return allowed
    raise JobobsError(f"{path} is outside the folders exports may write to "
                      f"({', '.join(folders) or 'none'})")


def submit(rt: Any, to: str, *, name: str | None = None, actor: str | None = None,
           **options: Any) -> Any:
    """Submit an export to ``to``; options are ExportOptions' fields (``query`` or ``table``).
    A runtime with ``export_dirs`` refuses targets outside them."""
    checked = ExportOptions(to=to, **options)
    within = confine(checked.to, getattr(rt, "export_dirs", None))
    return rt.submit(export_job, asdict(checked), name=name or f"export {os.path.basename(to)}",
                     actor=actor, **({} if within is None else {"within": within}))
