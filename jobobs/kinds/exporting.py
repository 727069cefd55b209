"""Export jobs: a query or a table to a file with DuckDB's COPY.

The file is written in a private folder beside the target and renamed when complete
(``jobobs.db.files.replacing``), so a failed, canceled or interrupted export never leaves a
partial file under the target name, and the target's folder is checked against the
export folder it was allowed under when the file is written, not only when the job was
submitted. A differential export remembers where it stopped (``jobobs.kinds.watermarks``)
and next time exports only the rows it has not sent; the watermark moves only when the
file is in place. A run with no new rows writes nothing by default: the last delta stays
until someone picks it up. The target may be a template (``orders-{date}-{seq}.csv``),
expanded when the job runs; a name with ``{seq}`` never replaces a file. The format comes
from the name or ``format``, never a guess. Runs of one export name take turns (the name
is held in ``export_runs`` while one runs, on a Dask worker too): two at once would take
the same number and the same delta.
"""

from __future__ import annotations

import os
import re
import string
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from jobobs.db import files, quack, readonly
from jobobs.db.sql import StatementProgress, clear, ident, literal, table_name
from jobobs.execution import submissions
from jobobs.execution.context import JobContext
from jobobs.kinds import watermarks
from jobobs.model.definition import job
from jobobs.model.errors import JobobsError
from jobobs.model.states import EXECUTING

FORMATS = ("csv", "parquet", "json", "xlsx")
EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json",
              ".ndjson": "json", ".xlsx": "xlsx"}
COMPRESSIONS = ("gzip", "zstd", "none")
PLACEHOLDERS = ("date", "job_id", "seq")
WIDTH = re.compile(r"0\d{1,2}")  # the one format a number placeholder takes: {seq:04}
MAX_WIDTH = 20
WAIT = 0.2  # seconds between looks at the run of the same name that goes first


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
        if spec and not (field != "date" and WIDTH.fullmatch(spec)
                         and int(spec) <= MAX_WIDTH):
            raise JobobsError(f"{name}: a placeholder takes no format but a zero-padded width "
                              f"up to {MAX_WIDTH}, such as {{seq:04}} ({{date}} takes none)")
    try:
        name.format(date="2024-01-31", job_id=1, seq=1)
    except ValueError as error:
        raise JobobsError(f"{to}: {error}") from None


def numbered(to: str) -> bool:
    """Whether the file name holds {seq}: each run then writes a file of its own."""
    return any(field == "seq" for _, field, _, _ in _parsed(os.path.basename(to), to, True))


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


class Export:
    def __init__(self, ctx: JobContext, options: ExportOptions, within: str | None = None,
                 now: float | None = None):
        self.ctx, self.options, self.within = ctx, options, within
        self.now = time.time() if now is None else now
        self.cursor = ctx.cursor()

    def run(self) -> None:
        ctx = self.ctx
        if (ctx.resume_state or {}).get("done"):  # its file and mark went in; it stopped after
            ctx.log.info("This export wrote its file before it stopped: nothing more to do")
            return
        self.take_turn()
        try:
            self.export()
        finally:
            with suppress(duckdb.Error):  # else the next run takes it over once this one ends
                self.change("DELETE FROM export_runs WHERE name = ? AND job_id = ?",
                            [ctx.name, ctx.job_id])

    def export(self) -> None:
        ctx, options, cur = self.ctx, self.options, self.cursor
        started = time.monotonic()
        seq = self.last_seq() + 1
        target = options.target(job_id=ctx.job_id, seq=seq, now=self.now)
        ctx.log.info("--- Export data to %s ---", target)
        if numbered(options.to) and os.path.lexists(target):
            raise self.exists(target)
        previous = self.previous()
        query = self.selection(previous)
        with ctx.interruptible(cur.interrupt):
            cur.execute("BEGIN TRANSACTION")  # one snapshot for the count, the mark and the file
            try:
                batch = self.measure(query)
                if batch.value is not None:  # rows that come in meanwhile are for next time
                    query = self.bounded(query, batch.value)
                ctx.progress(0, batch.count)
                self.count_unplaced()
                written, remembered = self.wanted(batch, target, previous), None
                if written:
                    remembered = self.remember(query, batch, previous)
                    self.write(query, target, batch.count)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        ctx.progress(batch.count, batch.count)
        ctx.count(succeeded=batch.count if written else 0)
        # The file is in place: a pause or cancel now is too late, and the mark must move.
        ctx.save(steps=self.steps(batch, remembered, seq, target) if written else [],
                 state={"done": True})
        if written:
            ctx.log.info("End of export (%d records to %s in %.1fs)", batch.count, target,
                         time.monotonic() - started)

    def take_turn(self) -> None:
        """Hold this export's name in ``export_runs``, once no other run holds it: runs of
        one name take turns, or two would write the same number and the same delta. A
        hold is taken over when its job no longer runs (its process died). The job's
        status is written first, so the next run sees that this one runs."""
        ctx, cur = self.ctx, self.cursor
        ctx.checkpoint(durable=True)
        executing = ", ".join(literal(s.value) for s in EXECUTING)
        told = None
        while True:
            try:
                self.change("DELETE FROM export_runs WHERE name = ? AND (job_id = ? OR job_id "
                            f"NOT IN (SELECT id FROM jobs WHERE status IN ({executing})))",
                            [ctx.name, ctx.job_id])
                self.change("INSERT INTO export_runs VALUES (?, ?, now()::TIMESTAMP)",
                            [ctx.name, ctx.job_id])
                return
            except duckdb.Error as error:
                if not conflict(error):
                    raise
                holder = cur.execute("SELECT job_id FROM export_runs WHERE name = ?",
                                     [ctx.name]).fetchone()
            if holder is not None and holder[0] != told:
                told = holder[0]
                ctx.log.info("Waiting for export job %s to end: runs of one export name "
                             "(%s) take turns", told, ctx.name)
            ctx.checkpoint()  # a pause or cancel while it waits
            time.sleep(WAIT)

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
        query = self.source()
        if options.watermark:
            query = (f"SELECT * FROM ({query}) AS {watermarks.ROW} "
                     f"WHERE {ident(options.watermark)} IS NOT NULL")
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

    def source(self) -> str:
        options = self.options
        return options.query or f"SELECT * FROM {table_name(options.table)}"

    def measure(self, query: str) -> Batch:
        """How many rows, and with a watermark their highest value."""
        column = self.options.watermark
        value = None
        if column:
            value = self.first(f"SELECT max({ident(column)})::VARCHAR FROM ({query})")
        if value is not None:
            query = self.bounded(query, value)
        return Batch(self.first(f"SELECT count(*) FROM ({query})"), value)

    def count_unplaced(self) -> None:
        """Warn of the rows a differential export never sends: those whose watermark
        column is NULL have no place in its order."""
        column = self.options.watermark
        if not column:
            return
        unplaced = self.first(f"SELECT count(*) FROM ({self.source()}) AS {watermarks.ROW} "
                              f"WHERE {ident(column)} IS NULL")
        if unplaced:
            self.ctx.warn("%d %s no %s (NULL) and %s not exported: a differential export "
                          "follows the values of %s; give %s one, or export them with a "
                          "query of their own", unplaced,
                          "row has" if unplaced == 1 else "rows have", column,
                          "is" if unplaced == 1 else "are", column,
                          "it" if unplaced == 1 else "them")

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
            from jobobs.db.quack import extension_path

            cur.execute(f"LOAD {literal(extension_path('excel'))}")
        try:
            with files.replacing(target, self.within,
                                 replace=not numbered(self.options.to)) as temporary, \
                    StatementProgress(cur, lambda percent: ctx.progress(
                        int(count * percent / 100), count), lambda: ctx.stop_requested):
                cur.execute(f"COPY (SELECT * FROM {ctx.on_server(query)}) TO "
                            f"{literal(temporary)} ({self.options.copy_options()}, "
                            "USE_TMP_FILE false)")
                ctx.check_interrupt()
        except FileExistsError:  # came meanwhile, from outside jobobs
            raise self.exists(target) from None

    def exists(self, target: str) -> JobobsError:
        return JobobsError(f"{target} exists already: a file name with {{seq}} never replaces "
                           "a file; move it away, or give the export another name")

    def remember(self, query: str, batch: Batch, previous: watermarks.Mark | None
                 ) -> int | None:
        """Count the rows to write at the batch's value, by md5, into
        ``export_watermark_rows`` under this job (with the mark's, if the value did not
        move); the watermark step makes them the mark's once the file is in place. Return
        how many."""
        if batch.value is None:
            return None
        ctx, cur, column = self.ctx, self.cursor, self.options.watermark
        counts = watermarks.at_value(query, column, self.typed(query, batch.value),
                                     self.options.key, previous, batch.value)
        self.change("DELETE FROM export_watermark_rows WHERE name = ? AND job_id = ?",
                    [ctx.name, ctx.job_id])  # an earlier run's, that failed
        self.change(f"INSERT INTO export_watermark_rows SELECT {literal(ctx.name)}, "
                    f"{int(ctx.job_id)}, md5, count FROM ({counts})")
        return int(cur.execute("SELECT coalesce(sum(count), 0) FROM export_watermark_rows "
                               "WHERE name = ? AND job_id = ?", [ctx.name, ctx.job_id]
                               ).fetchone()[0])

    def steps(self, batch: Batch, remembered: int | None, seq: int,
              target: str) -> list[dict[str, Any]]:
        """What commits with the checkpoint once the file is in place: its number, and
        the watermark moved to the rows just written."""
        ctx = self.ctx
        steps = [{"kind": "export file", "name": ctx.name, "seq": seq, "path": target,
                  "job_id": ctx.job_id}]
        if batch.value is not None:
            steps.append({"kind": "watermark", "name": ctx.name,
                          "column": self.options.watermark, "value": batch.value,
                          "rows_at_value": remembered, "job_id": ctx.job_id})
        return steps

    def change(self, sql: str, params: list[Any] | None = None) -> None:
        """Run a write whole where the job database is (on a Dask worker, on the server:
        Quack writes only through a query sent whole)."""
        if self.ctx.remote:
            sql = quack.bind(sql, params) if params else sql
            self.cursor.execute(f"FROM {self.ctx.on_server(sql)}").fetchall()
        else:
            self.cursor.execute(sql, params or []).fetchall()

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


def conflict(error: duckdb.Error) -> bool:
    """Whether ``error`` is another transaction's write to the same row (here, another run
    that took the export's name first), as DuckDB says it, on the server or through Quack."""
    text = str(error)
    return any(words in text for words in ("PRIMARY KEY or UNIQUE constraint", "Conflict on",
                                           "violates primary key constraint"))


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
           parent: int | None = None, check: bool = False, **options: Any) -> Any:
    """Submit an export to ``to``; options are ExportOptions' fields (``query`` or ``table``),
    and ``schedule`` and ``retry`` go to ``Runtime.submit``. A runtime with ``export_dirs``
    refuses targets outside them; ``parent`` links it to the job it follows up. ``check``:
    only check them."""
    how = {k: options.pop(k) for k in ("schedule", "retry") if k in options}
    checked = ExportOptions(to=to, **options)
    within = confine(checked.to, getattr(rt, "export_dirs", None))
    if check:
        return None
    return rt.submit(export_job, asdict(checked), name=name or f"export {os.path.basename(to)}",
                     actor=actor, parent=parent, **how,
                     **({} if within is None else {"within": within}))


submissions.register("export", submit)
