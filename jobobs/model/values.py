"""Values the job database can store, made so at the edge (a submission, a ``ctx.*`` call,
a ``logging`` record) before they reach a batch that other jobs' rows share.

Text: DuckDB stores UTF-8, so the lone surrogates Python uses for undecodable bytes
(``os.listdir`` on a file name that is not UTF-8 gives ``'caf\\udce9'``) are kept visible as
backslash escapes (``caf\\xe9``), and text longer than its limit is cut with a note of how
much was cut. Integers go into BIGINT columns, so they are range checked. Standard library
only.
"""

from __future__ import annotations

import math
import numbers
import re

from jobobs.model.errors import JobobsError

# The limits, in characters (documented in the README, "Security").
LINE_LIMIT = 65_536        # a journal line's message (a long traceback fits)
FIELD_LIMIT = 1_048_576    # a reject's raw line, record and message; a job's error
NAME_LIMIT = 256           # a job's name, an actor, a code, a column or reason
PATH_LIMIT = 4_096         # a reject's source (a file path)
SPEC_LIMIT = 1_048_576     # a job's spec (its arguments and options, as JSON)
STATE_LIMIT = 16_777_216   # a checkpoint (the job's state, as JSON)
BIGINT_MAX = 2**63 - 1
LAST_TIME = 253_402_300_799  # 9999-12-31 23:59:59, the last time stored, in epoch seconds

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    point = ord(match.group())
    # 0xDC80-0xDCFF is how surrogateescape carries the bytes 0x80-0xFF
    return f"\\x{point - 0xDC00:02x}" if 0xDC80 <= point <= 0xDCFF else f"\\u{point:04x}"


def text(value: object, limit: int = FIELD_LIMIT) -> str:
    """``value`` as text DuckDB can store: undecodable bytes escaped, at most ``limit``
    characters (the rest replaced by a note saying how many were cut)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    result = value if isinstance(value, str) else str(value)
    if not result.isascii():
        result = _SURROGATE.sub(_escape, result)
    if len(result) > limit:
        note = f"... [{len(result) - limit:,} more characters cut]"
        result = result[:max(limit - len(note), 0)] + note
    return result


def optional_text(value: object, limit: int = FIELD_LIMIT) -> str | None:
    return None if value is None else text(value, limit)


def name(value: object, what: str = "name") -> str:
    """A name (a job's, an actor's): storable text of at most NAME_LIMIT characters;
    longer is refused, since a cut name would be another name."""
    result = text(value, limit=10 * NAME_LIMIT)
    if not result.strip():
        raise JobobsError(f"the {what} must not be empty")
    if len(result) > NAME_LIMIT:
        raise JobobsError(f"the {what} is {len(result):,} characters long; "
                          f"the limit is {NAME_LIMIT}")
    return result


def bigint(what: str, value: object, *, minimum: int = 0) -> int:
    """A whole number that fits a BIGINT column (and is at least ``minimum``), or a
    JobobsError naming it."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not minimum <= value <= BIGINT_MAX):
        raise JobobsError(f"{what} must be a whole number from {minimum} to {BIGINT_MAX}, "
                          f"not {value!r}")
    return int(value)


def finite(what: str, value: object) -> float | int:
    """A finite number (an int stays an int), or a JobobsError naming it."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value)):
        raise JobobsError(f"{what} must be a finite number, not {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def sized(what: str, value: str, limit: int) -> str:
    """Refuse text over ``limit`` characters (a spec, a checkpoint): cutting JSON would
    make it unreadable."""
    if len(value) > limit:
        raise JobobsError(f"the {what} is {len(value):,} characters of JSON; "
                          f"the limit is {limit:,}")
    return value
