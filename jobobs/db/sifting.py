"""A batch the database refuses: find the rows it cannot store, so the rest is written.

The ledger writes every job's rows in one transaction. When that fails on a value (text
DuckDB cannot take, a number out of range) rather than on the database itself (a full
disk, a closed file), ``sift`` splits the batch by job and tries each part in a transaction
that is rolled back. A part that fails is cut down until the rows to blame are found:

- a journal line is replaced by one saying it could not be stored (its number is kept);
- a reject is left out;
- a job row is repaired (text made storable, numbers out of range emptied); a new job
  whose row still cannot be stored is refused, and so is the submission that asked for it.

The rest of the batch is written and the jobs to blame are failed by the runtime, so one
bad value costs one job, never the server. Probing costs a few rolled-back transactions,
and only when a write has failed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import duckdb

from jobobs.db.schema import JOB_COLUMNS, SCHEDULE_COLUMNS
from jobobs.model import values
from jobobs.model.errors import RuntimeClosed, one_line
from jobobs.model.rows import COUNTERS

log = logging.getLogger("jobobs.execution.runtime")

# Failures of the database, not of a value: the batch is kept and tried again later.
ENVIRONMENT = (duckdb.IOException, duckdb.OutOfMemoryException, duckdb.FatalException,
               duckdb.InterruptException, duckdb.TransactionException, RuntimeClosed, OSError)
PARTS = ("new_jobs", "updates", "transitions", "lines", "rejects", "handled", "rewinds",
         "schedules", "schedule_lines")
CORE = ("new_jobs", "updates", "transitions", "handled", "rewinds")
NOT_NULL = {"transition_seq": 0, "run_count": 0, "active_seconds": 0.0,
            **dict.fromkeys((name for name in COUNTERS if name != "total"), 0)}
MADE = SCHEDULE_COLUMNS.index("last_job_id")
INT32 = frozenset({"transition_seq", "run_count", "pid"})


class Verdict(NamedTuple):
    batch: dict[str, list]
    blamed: dict[int, str]   # job id: why the job fails
    refused: set[int]        # new jobs whose row could not be stored at all


def blames_values(error: BaseException) -> bool:
    """True when a failed write may be a value's fault, not the database's."""
    return isinstance(error, Exception) and not isinstance(error, ENVIRONMENT)


def why(error: BaseException) -> str:
    return values.text(one_line(error), 300)


def sift(probe: Any, batch: dict[str, Sequence]) -> Verdict | None:
    """The batch without the rows the database refuses, or None when no job's part fails
    on its own (the failure is the database's, or an atomic step's). ``probe(**part)``
    writes a part, rolls it back and returns its error."""
    kept: list[dict[str, list]] = []
    blamed: dict[int, str] = {}
    refused: set[int] = set()
    left_out = False
    for key, part in split(batch).items():
        error = probe(**part)
        if error is None:
            kept.append(part)
            continue
        if not blames_values(error):
            return None
        if key == "schedules":  # validated when added: a row refused here is left out
            kept.append(_storable_schedules(probe, part))
            left_out = True
            continue
        job_id = key if isinstance(key, int) else None
        core, gone = _storable_core(probe, {k: part[k] for k in CORE}, job_id)
        lines, bad_lines = _storable_rows(probe, "lines", part["lines"])
        rejects, bad_rejects = _storable_rows(probe, "rejects", part["rejects"])
        if gone:
            refused.add(job_id)
            lines, rejects = [], []  # the job does not exist
        else:
            lines += [_in_place_of(line, reason) for line, reason in bad_lines]
        kept.append({**core, "lines": lines, "rejects": rejects,
                     **_storable_schedules(probe, part)})
        if job_id is not None:
            blamed[job_id] = f"A value could not be stored ({why(error)})" + (
                f"; {len(bad_rejects)} rejects were left out" if bad_rejects else "")
    if not blamed and not refused and not left_out:
        return None
    return Verdict(merge(kept), blamed, refused)


def merge(parts: Sequence[dict[str, list]]) -> dict[str, list]:
    return {name: [row for part in parts for row in part.get(name, ())] for name in PARTS}


def split(batch: dict[str, Sequence]) -> dict[Any, dict[str, list]]:
    """The batch by job (a handled command with no job is a part of its own)."""
    parts: dict[Any, dict[str, list]] = {}

    def part(key: Any) -> dict[str, list]:
        return parts.setdefault(key, {name: [] for name in PARTS})

    for row in batch.get("new_jobs", ()):
        part(row[0])["new_jobs"].append(row)
    for update in batch.get("updates", ()):
        part(update["id"])["updates"].append(update)
    for name in ("transitions", "lines", "rewinds"):
        for row in batch.get(name, ()):
            part(row[0])[name].append(row)
    for reject in batch.get("rejects", ()):
        part(reject.job_id)["rejects"].append(reject)
    for handled in batch.get("handled", ()):
        part(handled[3] if handled[3] is not None else ("command", handled[0]))[
            "handled"].append(handled)
    # A schedule's row goes with the job its tick made in this batch, so the two are still
    # written together; the rest of the schedules' rows are a part of their own.
    new = {row[0] for row in batch.get("new_jobs", ())}
    for what, row in batch.get("schedules", ()):
        made = row[MADE] if what == "put" else None
        part(made if made in new else "schedules")["schedules"].append((what, row))
    for line in batch.get("schedule_lines", ()):
        part(line[-1] if line[-1] in new else "schedules")["schedule_lines"].append(line)
    return parts


def _storable_schedules(probe: Any, part: dict[str, list]) -> dict[str, list]:
    kept = {}
    for name in ("schedules", "schedule_lines"):
        kept[name], bad = _storable_rows(probe, name, part[name])
        for row, reason in bad:
            log.error("jobobs: a schedule's row could not be stored (%s); it is left out: %r",
                      reason, row[:2])
    return kept


def _storable_core(probe: Any, core: dict[str, list],
                   job_id: int | None) -> tuple[dict[str, list], bool]:
    """The job's row, transitions and handled commands as they can be stored, and whether
    the job had to be refused (a new job whose row cannot be stored)."""
    empty = {name: [] for name in PARTS}
    if probe(**core) is None:
        return {**empty, **core}, False
    repaired = {
        "new_jobs": [[_repair(column, value) for column, value in zip(JOB_COLUMNS, row)]
                     for row in core["new_jobs"]],
        "updates": [{column: value if column == "id" else _repair(column, value)
                     for column, value in update.items()} for update in core["updates"]],
        "transitions": [[values.text(v, values.FIELD_LIMIT) if isinstance(v, str) else v
                         for v in row] for row in core["transitions"]],
        "handled": [(command_id, values.text(outcome, values.FIELD_LIMIT), at, job)
                    for command_id, outcome, at, job in core["handled"]],
        "rewinds": core["rewinds"],
    }
    if probe(**repaired) is None:
        return {**empty, **repaired}, False
    new = bool(core["new_jobs"])
    # Last resort: a new job is refused (its submission says so); an existing job keeps
    # its stored row, and its history and commands go in without the change.
    handled = [(command_id, "refused: the job could not be stored", at, None)
               if new else (command_id, outcome, at, job)
               for command_id, outcome, at, job in repaired["handled"]]
    rest = {**empty, "handled": handled,
            **({} if new else {"transitions": repaired["transitions"],
                               "rewinds": repaired["rewinds"]})}
    if probe(**rest) is None:
        return rest, new
    return empty, new


def _repair(column: str, value: Any) -> Any:
    """A job column's value made storable: text escaped, numbers out of range emptied."""
    if isinstance(value, str):
        return values.text(value, values.STATE_LIMIT)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        limit = 2**31 if column in INT32 else 2**63
        if -limit <= value < limit:
            return value
    elif (isinstance(value, float) and math.isfinite(value)
          and (not column.endswith("_at") or 0 <= value <= values.LAST_TIME)):
        return value
    return NOT_NULL.get(column)


def _storable_rows(probe: Any, name: str, rows: list) -> tuple[list, list[tuple[Any, str]]]:
    """Rows of one table split into those that can be stored and those that cannot (with
    why), halving the failing ones: a few probes for a few bad rows among many."""
    if not rows:
        return [], []
    error = probe(**{name: rows})
    if error is None:
        return list(rows), []
    if len(rows) == 1:
        return [], [(rows[0], why(error))]
    middle = len(rows) // 2
    good_a, bad_a = _storable_rows(probe, name, rows[:middle])
    good_b, bad_b = _storable_rows(probe, name, rows[middle:])
    return good_a + good_b, bad_a + bad_b


def _in_place_of(line: tuple, reason: str) -> tuple:
    job_id, seq, at, _level, _code, _message = line
    at = at if isinstance(at, float) and 0 <= at <= values.LAST_TIME else 0.0
    return (job_id, seq, at, "ERROR", None,
            f"A journal line could not be stored ({reason}); it is left out")
