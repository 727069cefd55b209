"""Search every journal at once on a generated history (by default 1,000,000 jobs of 20
lines each, 20,000,000 journal lines with varied text):

    python benchmarks/bench_search.py [--jobs 1000000] [--samples 20]

Prints p50/p95 of ``jobobs.access.search.search`` for a rare word, a common word, a level
filter, a name filter, a code and a time window, beside a reference measured in the same
run: DuckDB counting every journal line containing a word (a plain scan of the messages).
Target: p95 <= 300 ms for each search.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from figures import p50_p95, percentile, timed

from jobobs.access.search import search
from jobobs.db.store import Store

NAMES = 50
TARGET = 300  # ms, p95 of each search
# A job's 20 lines: most of them ordinary, a few with words found once in a while.
MESSAGES = [
    "'started reading input-' || (j % 17) || '.csv'",
    "'connected to warehouse ' || (j % 40) || ' as loader'",
    "'processed batch ' || k || ' of the input'",
    "'wrote ' || (j % 1000) || ' rows to staging table t' || (j % 9)",
    "CASE WHEN i % 99991 = 0 THEN 'checksum mismatch in block ' || i"
    " ELSE 'batch ' || k || ' committed' END",
    "CASE WHEN j % 10 = 0 THEN 'retrying after a timeout from host db-' || (j % 7)"
    " ELSE 'no retry needed' END",
    "'memory in use ' || (j % 512) || ' MB'",
    "CASE WHEN j % 500 = 0 THEN 'rejected 100% of rows in file_' || (j % 3) || '.csv'"
    " ELSE 'rejected ' || (j % 7) || ' rows' END",
]


def generate(db: str, jobs: int, lines_per_job: int) -> None:
    """A history in jobobs' own schema, written with SQL in job order (as it accrues): one
    job every 7 s, its lines 350 µs apart; one line in 50 a warning, one job in 500 an error
    with a code."""
    Store(db).close()
    con = duckdb.connect(db)
    con.execute(f"""
        INSERT INTO jobs (id, name, kind, spec, status, created_at, queued_at, started_at,
                          finished_at, updated_at, run_count, active_seconds, total, processed,
                          succeeded, rejected, progress_current, progress_total,
                          created_by, host, has_warning)
        SELECT i + 1, 'job-' || (i % {NAMES}), ['import', 'export', 'python'][i % 3 + 1], '{{}}',
               'finished', start, start, start, start + INTERVAL 5 SECOND,
               start + INTERVAL 5 SECOND, 1, 5, 1000, 1000, 1000, 0, 1000, 1000, 'bench',
               'bench-host', false
        FROM (SELECT range AS i, TIMESTAMP '2026-01-01' + to_seconds(range * 7) AS start
              FROM range({jobs}))""")
    messages = ", ".join(MESSAGES)
    con.execute(f"""
        INSERT INTO journal (job_id, seq, logged_at, level, code, message)
        SELECT j + 1, k + 1, TIMESTAMP '2026-01-01' + to_seconds(j * 7)
                             + to_microseconds(k * 350),
               CASE WHEN j % 500 = 0 AND k = {lines_per_job - 1} THEN 'ERROR'
                    WHEN i % 50 = 49 THEN 'WARNING' WHEN k = 0 THEN 'DEBUG' ELSE 'INFO' END,
               CASE WHEN j % 500 = 0 AND k = {lines_per_job - 1}
                    THEN 'E-' || (j // 500 % 4) END,
               CASE WHEN j % 500 = 0 AND k = {lines_per_job - 1}
                    THEN 'failed: could not load file_' || (j % 3) || '.csv'
                    ELSE [{messages}][k % {len(MESSAGES)} + 1] END
        FROM (SELECT i, i // {lines_per_job} AS j, i % {lines_per_job} AS k
              FROM range({jobs * lines_per_job}) t(i))""")
    con.execute("CHECKPOINT")
    con.close()


def cases(jobs: int) -> dict[str, Callable[[duckdb.DuckDBPyConnection, int], object]]:
    """The searches measured, each given a sample's number (to vary its word or day)."""
    rare = ["checksum", "CHECKSUM mismatch", "mismatch in block"]
    days = (jobs * 7) // 86_400 or 1

    def day(i: int) -> dict[str, datetime]:
        start = datetime(2026, 1, 1) + timedelta(days=(i * 37) % days)
        return {"since": start, "until": start + timedelta(days=1)}

    return {
        "rare word (whole history)": lambda con, i: search(con, rare[i % 3]),
        "word found nowhere": lambda con, i: search(con, f"zebra-{i}"),
        "common word": lambda con, i: search(con, ["timeout", "committed", "warehouse"][i % 3]),
        "level error": lambda con, i: search(con, level="error"),
        "word + level warning": lambda con, i: search(con, "rows", level="warning"),
        "code": lambda con, i: search(con, code=f"E-{i % 4}"),
        "word + job name": lambda con, i: search(con, "file_", name=f"job-{i % 50}"),
        "rare word in one day": lambda con, i: search(con, "checksum", **day(i)),
        "word in 100% (literal)": lambda con, i: search(con, "100%"),
    }


def sampled(call: Callable[[int], object], samples: int) -> list[float]:
    """The times of ``call(i)`` for i in 0..samples-1 in ms, after one untimed call."""
    call(samples)
    return [timed(lambda i=i: call(i), 1)[0] for i in range(samples)]


def reference(con: duckdb.DuckDBPyConnection, i: int) -> object:
    """A plain scan: every message of the history read and matched once."""
    return con.execute("SELECT count(*) FROM journal WHERE contains(lower(message), ?)",
                       [f"zebra-{i}"]).fetchone()


def fts(con: duckdb.DuckDBPyConnection, samples: int) -> None:
    """The option not taken: DuckDB's full-text index (words, not substrings), its build
    time and two searches, newest lines first. It is not updated by inserts."""
    from jobobs.db.quack import extension_path
    from jobobs.db.sql import literal

    con.execute(f"LOAD {literal(extension_path('fts'))}")
    started = time.perf_counter()
    con.execute("CREATE TABLE journal_text AS SELECT rowid AS line, message FROM journal")
    con.execute("PRAGMA create_fts_index('journal_text', 'line', 'message', stemmer='none', "
                "stopwords='none')")
    print(f"FTS index built in {time.perf_counter() - started:.1f} s")
    for word in ("checksum", "timeout"):
        query = f"""
            SELECT j.* FROM (SELECT line FROM journal_text
                             WHERE fts_main_journal_text.match_bm25(line, '{word}') IS NOT NULL) m
            JOIN journal j ON j.rowid = m.line ORDER BY j.logged_at DESC LIMIT 100"""
        times = sampled(lambda i, q=query: con.execute(q).fetchall(), samples)
        print(f"  FTS {word:<10} {p50_p95(times)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--lines-per-job", type=int, default=20)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--fts", action="store_true", help="Measure DuckDB's full-text "
                        "index too (needs duckdb-extension-fts; minutes at 20,000,000 lines).")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jobobs-bench-search-"))
    db = str(folder / "history.duckdb")
    started = time.perf_counter()
    generate(db, args.jobs, args.lines_per_job)
    print(f"generated {args.jobs:,} jobs, {args.jobs * args.lines_per_job:,} journal lines "
          f"in {time.perf_counter() - started:.0f} s")
    con = duckdb.connect(db, read_only=not args.fts)
    base = sampled(lambda i: reference(con, i), args.samples)
    print(f"{'reference: a scan of every message':<36}{p50_p95(base)}")
    print(f"{'search':<36}{'p50 ms':>8}{'p95 ms':>8}{'x ref':>7}  target p95 <= {TARGET} ms")
    for name, case in cases(args.jobs).items():
        times = sampled(lambda i, case=case: case(con, i), args.samples)
        p95 = percentile(times, .95)
        print(f"{name:<36}{percentile(times, .5):>8.1f}{p95:>8.1f}"
              f"{statistics.median(times) / statistics.median(base):>7.2f}  "
              f"{'yes' if p95 <= TARGET else 'NO'}")
    if args.fts:
        fts(con, args.samples)
    con.close()


if __name__ == "__main__":
    main()
