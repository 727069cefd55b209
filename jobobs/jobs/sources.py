"""What an import reads and how: its options, its files, and DuckDB's readers for them.

Also the reject reason codes: DuckDB's reader error types as the short codes people
group by, one row per rejected line.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from jobobs.errors import JobobsError
from jobobs.jobs.sql import columns_struct, ident, literal, table_name

FORMATS = ("csv", "parquet", "json")
MODES = ("append", "replace", "upsert")
POLICIES = ("update", "ignore", "reject")
# DuckDB's reader error types, as the reason codes people group by.
REASONS = {
    "CAST": "cast error",
    "TOO MANY COLUMNS": "too many columns",
    "MISSING COLUMNS": "missing columns",
    "UNQUOTED VALUE": "unquoted value",
    "INVALID UNICODE": "invalid encoding",
    "LINE SIZE OVER MAXIMUM": "line too long",
}


@dataclass
class ImportOptions:
    """What to import and how; checked when the job is submitted."""

    source: str | list[str]
    table: str
    format: str | None = None            # csv, parquet or json; else from the file name
    columns: dict[str, str] | None = None  # name -> type; else sniffed from the first file
    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    header: bool = True
    encoding: str = "utf-8"
    mode: str = "append"                 # append, replace, or upsert on ``key``
    key: list[str] = field(default_factory=list)
    doubles: str = "update"              # a key repeated in the input: last wins
    duplicates: str = "reject"           # a key already in the target (append mode)
    max_rejects: int | str | None = 100  # a count, a percentage such as "5%", or None
    on_failure: str = "rollback"         # or "keep": chunks already loaded stay
    dry_run: bool = False
    chunk_rows: int = 500_000
    dataset: str | None = None           # a folder: Parquet files there instead of ``table``

    def __post_init__(self) -> None:
        sources = [self.source] if isinstance(self.source, str) else list(self.source)
        if not sources or not all(isinstance(s, str) and s for s in sources):
            raise JobobsError("source must be a file, a glob or a list of files")
        table_name(self.table)
        for name, value, allowed in (("format", self.format, FORMATS), ("mode", self.mode, MODES),
                                     ("doubles", self.doubles, POLICIES),
                                     ("duplicates", self.duplicates, POLICIES),
                                     ("on_failure", self.on_failure, ("rollback", "keep"))):
            if value is not None and value not in allowed:
                raise JobobsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if isinstance(self.key, str):
            self.key = [self.key]
        if self.mode == "upsert" and not self.key:
            raise JobobsError("mode 'upsert' needs a key")
        if self.columns is not None:
            columns_struct(self.columns)
            missing = [k for k in self.key if k not in self.columns]
            if missing:
                raise JobobsError(f"key column {missing[0]!r} is not among the columns")
        if not isinstance(self.delimiter, str) or not 1 <= len(self.delimiter) <= 4:
            raise JobobsError("delimiter must be one to four characters")
        for name in ("quote", "escape"):
            if not isinstance(getattr(self, name), str) or len(getattr(self, name)) > 1:
                raise JobobsError(f"{name} must be one character, or empty for none")
        threshold(self.max_rejects, 1)
        if not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise JobobsError("chunk_rows must be a positive whole number")
        if self.dataset is not None:
            if not isinstance(self.dataset, str) or not os.path.isdir(self.dataset):
                raise JobobsError(f"the dataset folder {self.dataset} does not exist")
            if self.mode != "append" or (self.key and self.duplicates == "update"):
                raise JobobsError("a Parquet dataset is only added to: mode 'append', and "
                                  "duplicates 'reject' or 'ignore' with a key")


def lines_rejected(path: str, reader_rejects: str) -> str:
    """One row per rejected line of ``path`` from the reader's rejects table: (path, line,
    column_name, reason, raw, message), the first error's column and reason, every
    error's message."""
    first = "arg_min({}, byte_position)"
    reason = ("CASE " + first.format("error_type") + " " + " ".join(
        f"WHEN {literal(k)} THEN {literal(v)}" for k, v in REASONS.items())
        + " ELSE lower(" + first.format("error_type") + ") END")
    return f"""SELECT {literal(path)} AS path, line, {first.format('column_name')},
        {reason}, {first.format('csv_line')},
        string_agg(error_message, '; ' ORDER BY byte_position)
        FROM {ident(reader_rejects)} GROUP BY line"""


def threshold(limit: int | str | None, records: int) -> int | None:
    """The number of rejects allowed among ``records``: a count, "N%" of them, or None."""
    if limit is None:
        return None
    if isinstance(limit, str) and limit.endswith("%"):
        try:
            percent = float(limit[:-1])
        except ValueError:
            percent = -1
        if not 0 <= percent <= 100:
            raise JobobsError(f"max_rejects {limit!r} is not a percentage between 0% and 100%")
        return int(records * percent / 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise JobobsError(f"max_rejects must be a count >= 0, a percentage or None, not {limit!r}")
    return limit


def expand(source: str | list[str]) -> list[str]:
    """The input files, in order; a glob matches sorted, a missing file is an error."""
    files = []
    for pattern in [source] if isinstance(source, str) else source:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise JobobsError(f"no file matches {pattern}")
        for path in matches:
            if os.path.isdir(path):
                raise JobobsError(f"{path} is a directory, not a file")
            if not os.path.exists(path):
                raise JobobsError(f"{path} does not exist")
            if not os.access(path, os.R_OK):
                raise JobobsError(f"{path} cannot be read (permission denied)")
            files.append(path)
    return files


def file_format(path: str, declared: str | None) -> str:
    if declared:
        return declared
    name = path.lower().removesuffix(".gz").removesuffix(".zst")
    for suffix, kind in ((".parquet", "parquet"), (".json", "json"), (".ndjson", "json"),
                         (".jsonl", "json")):
        if name.endswith(suffix):
            return kind
    return "csv"


def reader(path: str, options: ImportOptions, columns: dict[str, str] | None,
           rejects: str | None = None, sniffing: bool = False) -> str:
    """The DuckDB table function that reads one file with the job's options."""
    kind = file_format(path, options.format)
    if kind == "parquet":
        return f"read_parquet({literal(path)})"
    if kind == "json":
        typed = f", columns={columns_struct(columns)}" if columns else ""
        return f"read_json({literal(path)}{typed})"
    args = [literal(path), f"header={literal(options.header)}",
            f"delim={literal(options.delimiter)}", f"quote={literal(options.quote)}",
            f"escape={literal(options.escape)}", f"encoding={literal(options.encoding)}"]
    if columns:  # declared or already sniffed: nothing is left to guess
        args += [f"columns={columns_struct(columns)}", "auto_detect=false"]
    if rejects:
        args += ["store_rejects=true", f"rejects_table={literal(rejects)}",
                 f"rejects_scan={literal(rejects + '_scan')}"]
    if sniffing:
        args.append("ignore_errors=true")
    return f"read_csv({', '.join(args)})"
