"""Journal lines and rejects as plain records, the small functions that shape them, and
the names of a job's counters.

A journal line is data first (structlog's processors are the model): it is built as a
tuple, passed through ``process`` (its code split out, its text made storable), and only
written, in batches, at the end. Standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from jobobs.model import values

# A job's counters (``ctx.count``'s names, and columns of the jobs table). Each starts at 0
# and is never NULL, except ``total``, which stays unknown (None) until a job says it.
COUNTERS = ("total", "processed", "succeeded", "rejected", "warnings", "doubles", "duplicates")

LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


def level_name(level: int | str) -> str:
    """Normalise a level given as a number or a name to one of LEVELS' names."""
    if isinstance(level, str):
        name = level.upper()
        if name == "WARN":
            return "WARNING"
        if name in LEVELS:
            return name
        if name == "CRITICAL":
            return "ERROR"
        raise ValueError(f"unknown journal level {level!r}; use one of {', '.join(LEVELS)}")
    if level >= 40:
        return "ERROR"
    if level >= 30:
        return "WARNING"
    return "INFO" if level >= 20 else "DEBUG"


class JournalLine(NamedTuple):
    job_id: int
    seq: int
    logged_at: float
    level: str
    code: str | None
    message: str


class Reject(NamedTuple):
    job_id: int
    seq: int
    rejected_at: float
    kind: str  # "error" or "warning"
    source: str | None
    line_no: int | None
    column_name: str | None
    raw: str | None
    record: str | None  # the record as JSON
    reason: str
    message: str


JOURNAL_COLUMNS = JournalLine._fields
REJECT_COLUMNS = Reject._fields

# An error code at the start of a message, as in "XDT-320029 Unknown column".
_CODE = re.compile(r"([A-Z][A-Z0-9]{1,9}-\d{2,9})[:\s]\s*")


def render(message: object, args: tuple) -> str:
    """%-format like logging does; a message that does not format is kept whole."""
    text = str(message)
    if args:
        try:
            return text % args
        except (TypeError, ValueError):
            return f"{text} {args!r}"
    return text


def split_code(code: str | None, message: str) -> tuple[str | None, str]:
    """Move a leading error code out of the message into the code column."""
    if code is not None:
        return str(code), message
    if message[:1].isupper():
        match = _CODE.match(message)
        if match:
            return match.group(1), message[match.end():]
    return code, message


def storable(code: str | None, message: str) -> tuple[str | None, str]:
    """Text the journal can store: undecodable bytes escaped, long messages cut."""
    if code is None and message.isascii() and len(message) <= values.LINE_LIMIT:
        return code, message  # the usual line, on the hot path
    return values.optional_text(code, values.NAME_LIMIT), values.text(message, values.LINE_LIMIT)


def process(code: str | None, message: str) -> tuple[str | None, str]:
    """A journal line's code and message as stored: the code split out, then made storable."""
    return storable(*split_code(code, message))


def to_json(value: Any) -> str:
    """JSON text for a record or state; values JSON cannot hold become their str()."""
    return json.dumps(value, default=str, ensure_ascii=False)


def raw_of(record: Any) -> str | None:
    if record is None:
        return None
    if isinstance(record, (str, bytes)):
        return record.decode("utf-8", "replace") if isinstance(record, bytes) else record
    return to_json(record)
