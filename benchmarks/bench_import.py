"""Import benchmark against DuckDB's raw reader, measured in the same run.

    python benchmarks/bench_import.py [--rows 5000000] [--runs 5] [--samples 5]
                                      [--format csv|ndjson|both]

Generates a CSV with 1% bad rows of four kinds (a text in a number column, an extra
column, missing columns, an impossible date), then reports medians of:
- wall time and peak memory of a jobobs import, as ratios to DuckDB's raw
  ``read_csv(..., store_rejects=true)`` into a table (targets: 1.1x and 1.3x), each run
  in a fresh process. Both sides end with a CHECKPOINT, so DuckDB's write of the WAL
  into the file (which the runtime's next commit would otherwise trigger) counts on both;
- rejects counted by each (they must be equal);
- the time from a pause request to the recorded ``paused`` during that import (target:
  p95 at most 1 s) and the time from resume to finished.

Then the same rows as newline-delimited JSON, 1% bad of four kinds (a text in a number
column, a line that is not JSON, a line that is not an object, an impossible date): wall
time and peak memory of a jobobs import (line-level rejects, staged then loaded) as ratios
to DuckDB's raw ``read_json(..., columns=..., ignore_errors=true)`` into a table on the
same file (it cannot reject a line: it sets what it cannot read to NULL), and the lines
rejected against the bad lines generated.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = {"id": "BIGINT", "name": "VARCHAR", "score": "INTEGER", "day": "DATE"}

# DuckDB's own reader into a table, timed as jobobs' import is; {read} is the reader and
# {rejected} the count of rejected lines (None: the reader does not keep them).
RAW_SCRIPT = """
import duckdb, json, resource, sys, time
source, db, columns = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
con = duckdb.connect(db)
struct = "{{" + ", ".join(f"'{{n}}': '{{t}}'" for n, t in columns.items()) + "}}"
started = time.perf_counter()
con.execute(f"CREATE TABLE t AS SELECT * FROM {read}")
con.execute("CHECKPOINT")
seconds = time.perf_counter() - started
rejected = {rejected}
print(json.dumps({{"seconds": seconds, "rejected": rejected,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""
RAW = RAW_SCRIPT.format(
    read="read_csv('{source}', header=true, columns={struct}, auto_detect=false, "
         "store_rejects=true)",
    rejected='con.execute("SELECT count(*) FROM (SELECT DISTINCT file_id, line FROM '
             'reject_errors)").fetchone()[0]')
RAW_NDJSON = RAW_SCRIPT.format(
    read="read_json('{source}', columns={struct}, format='newline_delimited', "
         "ignore_errors=true)",
    rejected="None")

OURS = """
import json, resource, sys, time
import jobobs
from jobobs.kinds import importing
source, db, columns = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with jobobs.Runtime(db, workers=1, handle_signals=False) as rt:
    started = time.perf_counter()
    info = importing.submit(rt, source, "t", columns=columns, max_rejects=None).wait()
    rt.store.reader().execute("CHECKPOINT")
    seconds = time.perf_counter() - started
assert info.status.value == "finished", info.error
print(json.dumps({"seconds": seconds, "rejected": info.rejected,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def generate(path: Path, rows: int) -> None:
    import duckdb

    body = path.with_suffix(".body")
    duckdb.sql(f"""COPY (SELECT CASE
        WHEN i % 400 = 11 THEN i || ',name' || i || ',notanumber,2024-01-01'
        WHEN i % 400 = 57 THEN i || ',name' || i || ',5,2024-01-01,extra'
        WHEN i % 400 = 133 THEN i || ',name' || i
        WHEN i % 400 = 271 THEN i || ',name' || i || ',5,2024-13-45'
        ELSE i || ',name' || i || ',' || (i % 1000) || ','
             || strftime(DATE '2020-01-01' + (i % 1500)::INT, '%Y-%m-%d')
        END FROM range({rows}) t(i)) TO '{body}'
        (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\\x01')""")
    with open(path, "wb") as out, open(body, "rb") as lines:
        out.write(b"id,name,score,day\n")
        while chunk := lines.read(1 << 24):
            out.write(chunk)
    body.unlink()


def generate_ndjson(path: Path, rows: int) -> int:
    """The rows of ``generate`` as newline-delimited JSON, 1% bad; returns the bad lines."""
    import duckdb

    duckdb.sql(f"""COPY (SELECT CASE
        WHEN i % 400 = 11 THEN '{{"id":' || i || ',"name":"name' || i
             || '","score":"notanumber","day":"2024-01-01"}}'
        WHEN i % 400 = 57 THEN '{{"id":' || i || ',"name":"name' || i || '","sco'
        WHEN i % 400 = 133 THEN '[' || i || ',"name' || i || '"]'
        WHEN i % 400 = 271 THEN '{{"id":' || i || ',"name":"name' || i
             || '","score":5,"day":"2024-13-45"}}'
        ELSE '{{"id":' || i || ',"name":"name' || i || '","score":' || (i % 1000)
             || ',"day":"' || strftime(DATE '2020-01-01' + (i % 1500)::INT, '%Y-%m-%d')
             || '"}}'
        END FROM range({rows}) t(i)) TO '{path}'
        (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\\x01')""")
    return sum(1 for i in range(rows) if i % 400 in (11, 57, 133, 271))


def measure(script: str, source: Path, folder: Path) -> dict:
    db = tempfile.mktemp(suffix=".duckdb", dir=folder)
    out = subprocess.run([sys.executable, "-c", script, str(source), db, json.dumps(COLUMNS)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def pause_samples(source: Path, folder: Path, samples: int, expected: float) -> tuple:
    import jobobs
    from jobobs.kinds import importing
    from jobobs.testing import wait_for_status

    latencies, resumes = [], []
    with jobobs.Runtime(str(folder / "pause.duckdb"), workers=1, handle_signals=False) as rt:
        for _ in range(samples):
            job = importing.submit(rt, str(source), "t", columns=COLUMNS, max_rejects=None,
                                   mode="replace")
            wait_for_status(rt, job.id, "running")
            time.sleep(random.uniform(0.1, expected * 0.6))
            try:
                rt.pause(job.id)
            except jobobs.IllegalRequest:
                rt.wait(job.id)
                continue  # it finished first
            if rt.wait(job.id, timeout=60).status.value != "paused":
                continue
            rt.flush()
            (latency,) = rt.store.reader().execute(
                """SELECT date_diff('microsecond', c.requested_at, t.changed_at) / 1e6
                   FROM job_commands c JOIN job_transitions t USING (job_id)
                   WHERE c.job_id = ? AND t.to_status = 'paused'""", [job.id]).fetchone()
            latencies.append(latency)
            started = time.perf_counter()
            rt.resume(job.id)
            assert rt.wait(job.id, timeout=120).status.value == "finished"
            resumes.append(time.perf_counter() - started)
    return latencies, resumes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--format", choices=["csv", "ndjson", "both"], default="both")
    args = parser.parse_args(argv)
    print(f"{args.rows:,} rows, 1% bad; median of {args.runs} runs each, fresh processes")
    print(f"{'figure':28} {'value':>10}  {'reference':32} {'ratio':>7}  {'target':12} ok")
    rows = []
    if args.format in ("csv", "both"):
        rows += csv_rows(args)
    if args.format in ("ndjson", "both"):
        rows += ndjson_rows(args)
    return 0 if all(r[-1] for r in rows) else 1


def show(rows: list[tuple]) -> None:
    for name, value, ref, ratio, target, passed in rows:
        print(f"{name:28} {value:>10}  {ref:32} {ratio:>7}  {target:12} "
              f"{'yes' if passed else 'NO'}", flush=True)


def compared(raw_script: str, source: Path, folder: Path, runs: int) -> tuple:
    """Medians of ``runs`` fresh-process imports each, raw and jobobs: seconds and peak
    memory (raw, ours), and each side's rejected counts."""
    raw, ours = [], []
    for _ in range(runs):
        raw.append(measure(raw_script, source, folder))
        ours.append(measure(OURS, source, folder))
    medians = [statistics.median(r[key] for r in side) for key in ("seconds", "rss")
               for side in (raw, ours)]
    return (*medians, {r["rejected"] for r in raw}, {r["rejected"] for r in ours})


def ratio_rows(label: str, reference: str, raw_s: float, ours_s: float, raw_m: float,
               ours_m: float, targets: tuple[float, float] | None) -> list[tuple]:
    """The wall-time and memory rows of one format, against their targets if any."""
    time_target, memory_target = targets or (None, None)
    return [
        (f"{label} wall time, s", f"{ours_s:.2f}", f"{raw_s:.2f} {reference}",
         f"{ours_s / raw_s:.2f}x", f"<= {time_target}x" if targets else "",
         not targets or ours_s / raw_s <= time_target),
        (f"{label} peak memory, MB", f"{ours_m / 1024:.0f}", f"{raw_m / 1024:.0f} {reference}",
         f"{ours_m / raw_m:.2f}x", f"<= {memory_target}x" if targets else "",
         not targets or ours_m / raw_m <= memory_target),
    ]


def csv_rows(args: argparse.Namespace) -> list[tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "input.csv"
        generate(source, args.rows)
        raw_s, ours_s, raw_m, ours_m, raw_n, ours_n = compared(RAW, source, folder, args.runs)
        latencies, resumes = pause_samples(source, folder, args.samples, ours_s)
    samples, latencies = len(latencies), latencies or [float("nan")]  # none: all finished
    p95 = max(latencies) if len(latencies) < 20 else statistics.quantiles(latencies, n=20)[-1]
    rows = [
        *ratio_rows("import", "(raw read_csv)", raw_s, ours_s, raw_m, ours_m, (1.1, 1.3)),
        ("rejected lines", f"{min(ours_n):,}", f"{min(raw_n):,} (raw)", "", "equal",
         raw_n == ours_n),
        ("pause during import, ms", f"p50 {statistics.median(latencies) * 1e3:.0f}",
         f"p95 {p95 * 1e3:.0f} ({samples} samples)", "", "p95 <= 1000", p95 <= 1.0),
        ("resume to finished, s", f"{statistics.median(resumes or [float('nan')]):.2f}", "", "",
         "", True),
    ]
    show(rows)
    return rows


def ndjson_rows(args: argparse.Namespace) -> list[tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "input.ndjson"
        bad = generate_ndjson(source, args.rows)
        raw_s, ours_s, raw_m, ours_m, _, ours_n = compared(RAW_NDJSON, source, folder,
                                                           args.runs)
    rows = [
        *ratio_rows("NDJSON import", "(read_json ignore_errors)", raw_s, ours_s, raw_m,
                    ours_m, None),
        ("NDJSON rejected lines", f"{min(ours_n):,}", f"{bad:,} (generated bad)", "",
         "equal", ours_n == {bad}),
    ]
    show(rows)
    return rows


if __name__ == "__main__":
    sys.exit(main())
