"""Two runs side by side: what each was asked (its spec), what it counted, how long it took,
why it rejected records, how it failed, and where their journals part.

``compare`` answers with a plain structure (lists and dicts of JSON values) that the
``jobobs compare`` command prints and the dashboard's Compare page shows. Two runs of
different jobs may be compared; ``same_name`` says whether they are runs of one job.
Journals are compared message by message at the same sequence number, as written: the
first number where the two differ (or one journal ends) is the first difference.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

import duckdb

from jobobs.access import queries
from jobobs.model import humane
from jobobs.model.errors import JobNotFound
from jobobs.model.rows import COUNTERS

CONTEXT = 3  # journal lines shown before and after the first difference
# The fields compared, by group, in the order they are shown.
GROUPS: dict[str, tuple[str, ...]] = {
    "job": ("name", "kind", "status", "parent_id", "created_by", "run_count"),
    "counters": (*COUNTERS, "progress"),
    "durations": ("duration_s", "active_seconds", "queue_s"),
    "times": ("created_at", "started_at", "finished_at"),
}
# The line the runtime writes as a run starts, naming where: not a difference of the runs.
STARTED = "Job started (run %) on %"  # as SQL LIKE has it
STARTED_LINE = re.compile(r"Job started \(run .*\) on .*", re.S)  # the same, in Python


def _plain(value: Any) -> Any:
    """A value as JSON has it: a time as ISO text, NaN/NaT/NA as None, numpy as Python."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp, or NaT
        value = value.to_pydatetime() if value == value else None
    elif hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy's
        value = value.item()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if value != value:  # NaT, pandas' NA
            return None
    except (TypeError, ValueError):
        return None
    return value


def _row(con: duckdb.DuckDBPyConnection, job_id: int) -> dict[str, Any]:
    frame = queries.job(con, job_id)
    if frame.empty:
        raise JobNotFound(job_id)
    return {key: _plain(value) for key, value in frame.iloc[0].items()}


def _spec(row: dict[str, Any]) -> dict[str, Any]:
    try:
        spec = json.loads(row.get("spec") or "null")
    except ValueError:
        return {"spec": row.get("spec")}
    return spec if isinstance(spec, dict) else {"spec": spec}


def _field(group: str, field: str, a: Any, b: Any) -> dict[str, Any]:
    return {"group": group, "field": field, "a": a, "b": b, "differs": a != b}


def fields(first: dict[str, Any], second: dict[str, Any]) -> list[dict[str, Any]]:
    """The two jobs' rows (``queries.job``) as fields side by side, the spec's keys among
    them as ``spec.KEY`` (a value that is not text as JSON)."""
    rows = [_field(group, name, first.get(name), second.get(name))
            for group, names in GROUPS.items() for name in names]
    specs = _spec(first), _spec(second)
    keys = list(dict.fromkeys([*specs[0], *specs[1]]))

    def shown(spec: dict[str, Any], key: str) -> Any:
        value = spec.get(key)
        return value if value is None or isinstance(value, str) else json.dumps(value)

    at = len(GROUPS["job"])  # the spec right after what the job is
    rows[at:at] = [_field("spec", f"spec.{key}", shown(specs[0], key), shown(specs[1], key))
                   for key in keys]
    return rows


def reject_reasons(con: duckdb.DuckDBPyConnection, a: int, b: int) -> list[dict[str, Any]]:
    """Each reject reason of either job with its count in each, most rejects first."""
    counts = [dict(zip(frame["reason"], frame["rejects"]))
              for frame in (queries.reject_counts(con, a), queries.reject_counts(con, b))]
    reasons = sorted(set(counts[0]) | set(counts[1]),
                     key=lambda r: (-(counts[0].get(r, 0) + counts[1].get(r, 0)), r))
    return [{"reason": reason, "a": int(counts[0].get(reason, 0)),
             "b": int(counts[1].get(reason, 0)),
             "differs": counts[0].get(reason, 0) != counts[1].get(reason, 0)}
            for reason in reasons]


def journal_difference(con: duckdb.DuckDBPyConnection, a: int, b: int,
                       context: int = CONTEXT) -> dict[str, Any]:
    """Where two journals part: the first sequence number whose message differs in the two
    (or that only one has; None when they are the same), past the runtime's "Job started
    ... on HOST pid P WORKER" lines, which differ between any two runs (where they ran is
    compared with the fields), each journal's length, and the
    lines from ``context`` before it to ``context`` after it, aligned by sequence number."""
    first, lines_a, lines_b = con.execute(
        """WITH a AS (SELECT seq, message FROM journal WHERE job_id = ?),
                b AS (SELECT seq, message FROM journal WHERE job_id = ?)
           SELECT (SELECT min(coalesce(a.seq, b.seq)) FROM a FULL JOIN b ON a.seq = b.seq
                   WHERE a.message IS DISTINCT FROM b.message
                     AND NOT coalesce(a.message LIKE ? AND b.message LIKE ?, false)),
                  (SELECT count(*) FROM a), (SELECT count(*) FROM b)""",
        [a, b, STARTED, STARTED]).fetchone()
    found = {"first": None if first is None else int(first), "lines_a": int(lines_a),
             "lines_b": int(lines_b), "rows": []}
    if first is None:
        return found
    low, high = int(first) - context, int(first) + context
    near = con.execute(
        """SELECT job_id, seq, level, message FROM journal
           WHERE job_id IN (?, ?) AND seq BETWEEN ? AND ? ORDER BY seq""",
        [a, b, low, high]).fetchall()
    by_seq: dict[int, dict[str, Any]] = {}
    for job_id, seq, level, message in near:
        line = by_seq.setdefault(int(seq), {"seq": int(seq), "a": None, "b": None,
                                            "level_a": None, "level_b": None})
        for side, side_id in (("a", a), ("b", b)):
            if job_id == side_id:
                line[side], line[f"level_{side}"] = message, level
    found["rows"] = [{**line, "differs": line["a"] != line["b"] and not (
                          _started(line["a"]) and _started(line["b"]))}
                     for _, line in sorted(by_seq.items())]
    return found


def _started(message: str | None) -> bool:
    return message is not None and STARTED_LINE.fullmatch(message) is not None


def compare(con: duckdb.DuckDBPyConnection, a: int, b: int,
            context: int = CONTEXT) -> dict[str, Any]:
    """Runs ``a`` and ``b`` side by side (JobNotFound when either does not exist):

    ``a``, ``b``: the ids; ``names``: their names; ``same_name``: runs of one job;
    ``fields``: ``{group, field, a, b, differs}`` for what the job is, its spec
    (``spec.args``...), its counters, durations and times; ``rejects``: ``{reason, a, b,
    differs}``; ``errors``: ``{a, b, differs}``; ``journal``: ``journal_difference``.
    Every value is JSON's (times as ISO text, in UTC as stored)."""
    first, second = _row(con, a), _row(con, b)
    return {
        "a": a, "b": b, "names": [first["name"], second["name"]],
        "same_name": first["name"] == second["name"],
        "fields": fields(first, second),
        "rejects": reject_reasons(con, a, b),
        "errors": {"a": first.get("error"), "b": second.get("error"),
                   "differs": first.get("error") != second.get("error")},
        "journal": journal_difference(con, a, b, context),
    }


def last_two(con: duckdb.DuckDBPyConnection, job_id: int) -> tuple[int, int] | None:
    """The last two runs of the job ``job_id`` is a run of (by name), older first; None when
    that name has fewer than two runs (or the job does not exist)."""
    ids = con.execute(
        """SELECT id FROM jobs WHERE name = (SELECT name FROM jobs WHERE id = ?)
           ORDER BY id DESC LIMIT 2""", [job_id]).fetchall()
    return (int(ids[1][0]), int(ids[0][0])) if len(ids) == 2 else None


def shown(field: str, value: Any, *, local: bool = True) -> str:
    """A compared field's value as a person reads it (a time in local time, or UTC)."""
    if humane.missing(value):
        return ""
    if field.startswith("spec."):  # a spec's value is the user's own: shown as its text
        return str(value)
    if field == "status":
        return humane.status(value)
    if field == "progress":
        return humane.percent(value)
    if field.endswith("_s") or field == "active_seconds":
        return humane.duration(value)
    if field.endswith("_at"):
        return humane.moment(value, local=local)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return humane.count(value)
