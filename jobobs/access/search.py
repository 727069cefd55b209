"""Search every job's journal at once: by text, level, code, job name and time window.

``text`` is a case-insensitive substring of the message, taken literally (``%``, ``_``
and ``\\`` are characters like any other). The search is a scan of the journal table,
pruned first by the time window (the journal is written in time order, so DuckDB skips
whole row groups outside it) and by the job name through the jobs table. Newest lines come
first, and the scan starts with the newest: it looks at the last few hours, and only when
they hold fewer than ``limit`` lines at the rest of the history, in one scan; so a common
word costs a look at the last few hours, and a rare one two scans. Lines written a moment
ago are found like any other: there is no index to go stale (DuckDB's full-text index was
measured and not taken: words only, not updated by inserts, and slower than this scan for
common words; see the README).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import duckdb

from jobobs.access import queries

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["job_id", "name", "seq", "logged_at", "level", "code", "message"]
# The first look back from the newest line; the second is all the rest.
FIRST_WINDOW = timedelta(hours=6)


def _filters(text: str | None, level: str | None, code: str | None,
             name: str | None) -> tuple[list[str], list]:
    """The WHERE terms on the journal, other than time, every value a parameter."""
    where: list[str] = []
    params: list = []
    if text:
        # contains() has no wildcards to escape, and is faster than ILIKE with ESCAPE
        where.append("contains(lower(message), lower(?))")
        params.append(text)
    if level is not None:
        levels = queries.at_least(level)
        where.append(f"level IN ({', '.join('?' * len(levels))})")
        params += levels
    if code:
        where.append("code = ?")
        params.append(code)
    if name:
        where.append("job_id IN (SELECT id FROM jobs WHERE contains(lower(name), lower(?)))")
        params.append(name)
    return where, params


def search(
    con: duckdb.DuckDBPyConnection, text: str | None = None, *, level: str | None = None,
    code: str | None = None, name: str | None = None, since: datetime | None = None,
    until: datetime | None = None, job_id: int | None = None, limit: int = 100,
) -> pd.DataFrame:
    """Journal lines of every job (or of ``job_id``), newest first: ``text`` a
    case-insensitive substring of the message (taken literally), ``level`` a minimum,
    ``code`` exact, ``name`` part of the job's name (ignoring case), ``since``/``until`` the
    time window on ``logged_at`` (``until`` excluded; naive times are UTC, as stored).
    Columns: job_id, name, seq, logged_at, level, code, message."""
    where, params = _filters(text, level, code, name)
    if job_id is not None:
        where.append("job_id = ?")
        params.append(job_id)
    since, until = _stored(since), _stored(until)
    first, last = con.execute("SELECT min(logged_at), max(logged_at) FROM journal").fetchone()
    if first is None:
        return _named(con, _lines(con, ["false"], [], limit))
    low = max(first, since) if since else first
    high = min(last, until - timedelta(microseconds=1)) if until else last
    if low > high:
        return _named(con, _lines(con, ["false"], [], limit))
    # two disjoint windows back from the newest line, the recent hours and all the rest:
    # none is read twice; a bound that the whole history is within is left out (a
    # comparison a line)
    found, end, window = [], high, FIRST_WINDOW
    while True:
        start = max(low, end - window)
        bounds, values = [], []
        if start > first:
            bounds.append(f"logged_at {'>=' if start <= low else '>'} ?")
            values.append(start)
        if end < last:
            bounds.append("logged_at <= ?")
            values.append(end)
        found.append(_lines(con, where + bounds, params + values, limit))
        limit -= len(found[-1])
        if limit <= 0 or start <= low:
            break
        end, window = start, high - low  # the rest, whatever its length
    found = [lines for lines in found if len(lines)] or found[-1:]
    if len(found) > 1:
        import pandas as pd  # only here: a search that needed several windows

        found = [pd.concat(found, ignore_index=True)]
    return _named(con, found[0])


def _stored(moment: datetime | None) -> datetime | None:
    """A time as the journal stores it: naive UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age(text: str) -> timedelta:
    """An age such as "90m", "2h" or "7d" as a timedelta; ValueError for anything else, or
    one too long to count."""
    match = AGE.match(text)
    if match:
        try:
            return timedelta(**{UNITS[match.group(2)]: float(match.group(1))})
        except OverflowError:
            pass
    raise ValueError(f"{text!r} is not an age such as 30d, 12h or 90m")


def when(text: str, now: datetime | None = None) -> datetime:
    """A moment given as an age ("90m", "2h", "7d": that long before ``now``) or an ISO time
    (UTC unless it says otherwise), as naive UTC; ValueError for anything else."""
    try:
        if AGE.match(text):
            now = _stored(now) or datetime.now(UTC).replace(tzinfo=None)
            return now - age(text)
        return _stored(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is neither an age such as 2h or 7d nor an ISO time "
                         "such as 2026-12-01T08:00") from None


def _lines(con: duckdb.DuckDBPyConnection, where: list[str], params: list,
           limit: int) -> pd.DataFrame:
    """The newest ``limit`` lines matching ``where``."""
    return con.execute(
        f"""SELECT job_id, seq, logged_at, level, code, message FROM journal
            WHERE {' AND '.join(where) or 'true'}
            ORDER BY logged_at DESC, job_id DESC, seq DESC LIMIT ?""",
        [*params, limit]).df()


def _named(con: duckdb.DuckDBPyConnection, lines: pd.DataFrame) -> pd.DataFrame:
    """The lines with their job's name, read for those jobs only (not a join with every
    job, whose hash table would cost more than the search)."""
    ids = sorted({int(job_id) for job_id in lines["job_id"]})
    names = dict(con.execute(
        f"SELECT id, name FROM jobs WHERE id IN ({', '.join('?' * len(ids))})",
        ids).fetchall()) if ids else {}
    lines.insert(1, "name", [names.get(int(job_id)) for job_id in lines["job_id"]])
    return lines
