"""Export jobs: a query or a table to a file with DuckDB's COPY.

The file is written in a private folder beside the target and renamed when complete
(``jobobs.files.replacing``), so a failed, canceled or interrupted export never leaves a
partial file under the target name, and the target's folder is checked against the
export folder it was allowed under when the file is written, not only when the job was
submitted. A differential export remembers where it stopped (``jobobs.jobs.watermarks``)
and next time exports only the rows it has not sent; the watermark moves only when the
file is in place. A run with no new rows writes nothing by default: the last delta stays
until someone picks it up. The target may be a template (``orders-{date}-{seq}.csv``),
expanded when the job runs; the format comes from the name or ``format``, never a guess.
"""

from __future__ import annotations

import json
import os
import string
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from jobobs import files, readonly
from jobobs.context import JobContext
from jobobs.errors import JobobsError
from jobobs.job import job
from jobobs.jobs import watermarks
from jobobs.jobs.sql import StatementProgress, clear, ident, literal, table_name

FORMATS = ("csv", "parquet", "json", "xlsx")
EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json",
              ".ndjson": "json", ".xlsx": "xlsx"}
COMPRESSIONS = ("gzip", "zstd", "none")
PLACEHOLDERS = ("date", "job_id", "seq")


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
    watermark: str | None = None       # a column: export only the rows not exported yet
    key: list[str] | None = None       # the columns that name a row (default: the whole row)
    write_empty: bool = False          # a differential run with no new rows writes a file

    def __post_init__(self) -> None:
        if (self.query is None) == (self.table is None):
            raise JobobsError("give either a query or a table to export")
        if self.table is not None:
            table_name(self.table)
        if self.query is not None:  # also where the job runs: any SQL client can write a spec
            self.query = readonly.check(self.query, explain=False)
        if not isinstance(self.to, str) or not self.to or self.to.endswith(os.sep):
            raise JobobsError("to must be a file path")
        check_template(self.to)
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
        if self.key is not None and (
                not isinstance(self.key, list) or not self.key
                or not all(isinstance(k, str) and k for k in self.key)):
            raise JobobsError("key must be a list of column names")
        if self.key and not self.watermark:
            raise JobobsError("key goes with watermark: it names the rows a differential "
                              "export remembers")
        kind = self.kind  # a name that does not say the format is refused here
        if kind == "xlsx" and (self.compression or "none") != "none":
            raise JobobsError("an Excel file cannot be compressed")

    @property
    def kind(self) -> str:
        """The file's format: ``format``, else from the name (JobobsError if it does not
        say: a CSV file named .xlsx helps nobody)."""
        if self.format:
            return self.format
        name = self.to.lower().removesuffix(".gz").removesuffix(".zst")
        found = EXTENSIONS.get(os.path.splitext(name)[1])
        if found is None or (found == "xlsx" and name != self.to.lower()):
            raise JobobsError(
                f"cannot tell the format of {os.path.basename(self.to)} from its name; name "
                "it .csv, .parquet, .json or .xlsx (.csv and .json may end in .gz or .zst), "
                "or give the format")
        return found

    def target(self, *, job_id: int, seq: int, now: float) -> str:
        """The path to write: the template's placeholders filled in."""
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        folder, name = os.path.split(self.to)
        return os.path.join(folder, name.format(date=day, job_id=job_id, seq=seq))

    def copy_options(self) -> str:
        if self.kind == "xlsx":
            return f"FORMAT xlsx, HEADER {literal(self.header)}"
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


def check_template(to: str) -> None:
    """Refuse a target whose placeholders jobobs cannot fill: unknown ones, and any in the
    folder (the folder is checked against the export folders when submitted)."""
    folder, name = os.path.split(to)
    if any(field is not None for _, field, _, _ in _parsed(folder, to, strict=False)):
        raise JobobsError(f"placeholders go in the file name, not in its folder: {to}")
    for _, field, spec, conversion in _parsed(name, to, strict=True):
        if field is None:
            continue
        if field not in PLACEHOLDERS or conversion or "{" in (spec or ""):
            raise JobobsError(f"unknown placeholder {{{field}}}; use {{date}}, {{job_id}} or "
                              "{seq} (double a brace to write one: {{ }})")
    try:
        name.format(date="2024-01-31", job_id=1, seq=1)
    except ValueError as error:
        raise JobobsError(f"{to}: {error}") from None


def _parsed(text: str, to: str, strict: bool) -> list[tuple[str, str | None, str | None,
                                                            str | None]]:
    try:
        return list(string.Formatter().parse(text))
    except ValueError:
        if not strict:
            return []
        raise JobobsError(f"unbalanced brace in {to} (double a brace to write one: "
                          "{{ }})") from None


@dataclass
class Batch:
    """What one run exports, measured in its snapshot."""

    count: int
    value: str | None = None    # the watermark's highest value among the rows
    at_value: tuple[str, ...] = ()  # md5s of the rows at that value


class Export:
    def __init__(self, ctx: JobContext, options: ExportOptions, within: str | None = None,
                 now: float | None = None):
        self.ctx, self.options, self.within = ctx, options, within
        self.now = time.time() if now is None else now
        self.cursor = ctx.cursor()

    def run(self) -> None:
        ctx, options, cur = self.ctx, self.options, self.cursor
        started = time.monotonic()
        seq = self.last_seq() + 1
        target = options.target(job_id=ctx.job_id, seq=seq, now=self.now)
        ctx.log.info("--- Export data to %s ---", target)
        previous = self.previous()
        query = self.selection(previous)
        with ctx.interruptible(cur.interrupt):
            cur.execute("BEGIN TRANSACTION")  # one snapshot for the count, the mark and the file
            try:
                batch = self.measure(query)
                if batch.value is not None:  # rows that come in meanwhile are for next time
                    query = self.bounded(query, batch.value)
                ctx.progress(0, batch.count)
                written = self.wanted(batch, target, previous)
                if written:
                    self.write(query, target, batch.count)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        ctx.progress(batch.count, batch.count)
        ctx.count(succeeded=batch.count if written else 0)
        # The file is in place: a pause or cancel now is too late, and the mark must move.
        ctx.save(steps=self.steps(batch, previous, seq, target) if written else [],
                 state={"done": True})
        if written:
            ctx.log.info("End of export (%d records to %s in %.1fs)", batch.count, target,
                         time.monotonic() - started)

    def last_seq(self) -> int:
        row = self.cursor.execute("SELECT seq FROM export_files WHERE name = ?",
                                  [self.ctx.name]).fetchone()
        return 0 if row is None else int(row[0])

    def previous(self) -> watermarks.Mark | None:
        """The last run's watermark (None: no watermark, or a first run)."""
        column = self.options.watermark
        if not column:
            return None
        mark = watermarks.read(self.cursor, self.ctx.name)
        if mark is not None and mark.column != column:
            raise JobobsError(f"the watermark {self.ctx.name!r} follows the column "
                              f"{mark.column}, not {column}; reset it (jobobs watermark reset "
                              f"{self.ctx.name!r}) or give the export another name")
        if mark is None or mark.value is None:
            self.ctx.log.info("Differential export on %s: first run, every row", column)
            return None
        self.ctx.log.info("Differential export: rows with %s above %s, or at it and not "
                          "exported yet", column, mark.value)
        return mark

    def selection(self, previous: watermarks.Mark | None) -> str:
        """The query of the rows to export: those not exported yet, at most ``limit`` in
        the watermark's order (then by row, so the rows left out come next time)."""
        options = self.options
        query = options.query or f"SELECT * FROM {table_name(options.table)}"
        if previous is not None:
            query = watermarks.after(query, previous, options.key,
                                     self.typed(query, previous.value))
        if options.limit is not None:
            order = ""
            if options.watermark:
                order = (f" ORDER BY {ident(options.watermark)}, "
                         f"{watermarks.identity(options.key)}")
            query = (f"SELECT * FROM ({query}) AS {watermarks.ROW}{order} "
                     f"LIMIT {int(options.limit)}")
        return query

    def measure(self, query: str) -> Batch:
        """How many rows, and with a watermark their highest value and the rows at it."""
        column = self.options.watermark
        value = None
        if column:
            value = self.first(f"SELECT max({ident(column)})::VARCHAR FROM ({query})")
        if value is not None:
            query = self.bounded(query, value)
        count = self.first(f"SELECT count(*) FROM ({query})")
        if value is None:
            return Batch(count)
        at = self.cursor.execute(f"""SELECT * FROM {self.ctx.on_server(
            f"SELECT {watermarks.identity(self.options.key)} FROM ({query}) AS "
            f"{watermarks.ROW} WHERE {ident(column)} = {self.typed(query, value)}")}"""
        ).fetchall()
        return Batch(count, value, tuple(row[0] for row in at))

    def wanted(self, batch: Batch, target: str, previous: watermarks.Mark | None) -> bool:
        """Whether to write the file: not for a differential run with no new rows (the
        last delta may not have been picked up yet), unless ``write_empty``."""
        options = self.options
        if batch.count or not options.watermark or options.write_empty:
            return True
        where = (f"{options.watermark} = {previous.value}" if previous is not None
                 else f"{options.watermark} (none yet)")
        self.ctx.log.info("Differential export: no new rows, so %s is left as it was and "
                          "the watermark stays at %s (write_empty writes a file anyway)",
                          target, where)
        return False

    def write(self, query: str, target: str, count: int) -> None:
        ctx, cur = self.ctx, self.cursor
        ctx.log.info("Starting export of %d records", count)
        if self.options.kind == "xlsx":
            from jobobs.quack import extension_path

            cur.execute(f"LOAD {literal(extension_path('excel'))}")
        with files.replacing(target, self.within) as temporary, \
                StatementProgress(cur, lambda percent: ctx.progress(
                    int(count * percent / 100), count), lambda: ctx.stop_requested):
            cur.execute(f"COPY (SELECT * FROM {ctx.on_server(query)}) TO "
                        f"{literal(temporary)} ({self.options.copy_options()}, "
                        "USE_TMP_FILE false)")
            ctx.check_interrupt()

    def steps(self, batch: Batch, previous: watermarks.Mark | None, seq: int,
              target: str) -> list[dict[str, Any]]:
        """What commits with the checkpoint once the file is in place: its number, and
        the watermark moved to the rows just written."""
        ctx = self.ctx
        steps = [{"kind": "export file", "name": ctx.name, "seq": seq, "path": target,
                  "job_id": ctx.job_id}]
        if batch.value is not None:
            remembered = watermarks.at_value(previous, batch.value, list(batch.at_value))
            steps.append({"kind": "watermark", "name": ctx.name,
                          "column": self.options.watermark, "value": batch.value,
                          "at_value": json.dumps(remembered), "job_id": ctx.job_id})
        return steps

    def first(self, query: str) -> Any:
        """The one value ``query`` answers, run where the data is."""
        return self.cursor.execute(f"SELECT * FROM {self.ctx.on_server(query)}").fetchone()[0]

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
