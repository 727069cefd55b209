"""Scale-out benchmark: jobs on a Dask cluster (``jobobs serve --executor dask``).

    python benchmarks/bench_dask.py [--files 8] [--rows 500000] [--lines 20000] [--runs 3]

Prints medians of ``--runs`` runs of:
- eight imports (one CSV each, 0.1% bad lines, into eight tables) on a local cluster of one
  worker process, then of two, in rows per second from the first submission to the last
  job finished, with their ratio; against DuckDB's raw reader over the same files in one
  process (read_csv with its rejects capture, into tables) as the reference, and the same
  imports on the server's own threads, two at once; then again with each job's DuckDB
  limited to one thread (``--worker-threads 1``), as when each worker has one core of its
  own, which shows whether a second worker adds throughput where the first is CPU-bound;
- the cost of reporting through Quack: a job that writes ``--lines`` journal lines, with
  progress, a reject and a checkpoint every 100, run on the server's own threads and then
  on a Dask worker (the job's own run time, from its row), and the ratio;
- the time from a pause or cancel request to the recorded status for a job on a worker.
Each configuration is a real ``jobobs serve`` on a fresh database.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import duckdb
from figures import p50_p95
from serving import Server, wait_status

import jobobs

COLUMNS = {"id": "BIGINT", "customer": "VARCHAR", "amount": "DOUBLE"}


def make_files(folder: Path, files: int, rows: int) -> list[str]:
    paths = []
    for n in range(files):
        path = folder / f"orders-{n}.csv"
        duckdb.sql(f"""COPY (SELECT range AS id, 'c' || (range % 997) AS customer,
            CASE WHEN range % 1000 = 7 THEN 'n/a' ELSE (range % 5000 / 4)::VARCHAR END AS amount
            FROM range({rows})) TO '{path}' (HEADER)""")
        paths.append(str(path))
    return paths


def raw_reader(folder: Path, paths: list[str]) -> float:
    con = duckdb.connect(str(folder / f"raw-{time.monotonic_ns()}.duckdb"))
    struct = "{" + ", ".join(f"'{n}': '{t}'" for n, t in COLUMNS.items()) + "}"
    started = time.perf_counter()
    for i, path in enumerate(paths):
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv('{path}', header=true, "
                    f"columns={struct}, auto_detect=false, store_rejects=true)")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def serve(folder: Path, *extra: str, workers: int) -> Server:
    db = folder / f"jobs-{time.monotonic_ns()}.duckdb"
    return Server(str(db), *extra, "--export-dir", str(folder), workers=workers).wait_ready(120)


def imports(folder: Path, paths: list[str], dask_workers: int, threads: int = 0) -> float:
    """Seconds for the imports on a local cluster of ``dask_workers`` (0: on the server's
    own threads, two at once), each job's DuckDB on ``threads`` threads (0: all cores)."""
    extra = ("--executor", "dask", "--dask-workers", str(dask_workers)) if dask_workers else ()
    if threads:
        extra += ("--worker-threads", str(threads))
    server = serve(folder, *extra, workers=dask_workers or 2)
    try:
        with jobobs.connect(server.db) as client:
            started = time.perf_counter()
            ids = [client.submit_import(path, f"orders_{i}", columns=COLUMNS,
                                        max_rejects=None, on_failure="keep")
                   for i, path in enumerate(paths)]
            for job_id in ids:
                status = wait_status(client, job_id, "finished", "failed", timeout=1800)
                assert status == "finished", client.journal(job_id)["message"].tolist()
            return time.perf_counter() - started
    finally:
        server.stop(timeout=60)


def reporting(folder: Path, lines: int, dask: bool) -> float:
    extra = ("--executor", "dask", "--dask-workers", "1") if dask else ()
    server = serve(folder, *extra, workers=1)
    try:
        with jobobs.connect(server.db) as client:
            job_id = client.submit("jobs:reporter", lines=lines)
            assert wait_status(client, job_id, "finished", "failed", timeout=600) == "finished"
            info = client.info(job_id)
            assert info.rejected == lines // 100
            return float(info.active_seconds)
    finally:
        server.stop(timeout=60)


def control(folder: Path, samples: int) -> tuple[list[float], list[float]]:
    """Milliseconds from a pause (and a cancel) request until the job on a Dask worker is
    recorded ``paused`` (``canceled``): the job checkpoints every 20 ms."""
    server = serve(folder, "--executor", "dask", "--dask-workers", "1", workers=1)
    pauses, cancels = [], []
    try:
        with jobobs.connect(server.db) as client:
            for _ in range(samples):
                job_id = client.submit("jobs:steps", count=100_000, delay=0.02)
                wait_status(client, job_id, "running")
                while not str(client.info(job_id).worker).startswith("tcp://"):
                    time.sleep(0.01)
                for command, status, into in (("pause", "paused", pauses),
                                              ("resume", "running", None),
                                              ("cancel", "canceled", cancels)):
                    if command == "cancel":  # running on a worker again
                        while client.info(job_id).run_count < 2 or not str(
                                client.info(job_id).worker).startswith("tcp://"):
                            time.sleep(0.01)
                    started = time.perf_counter()
                    client.request(job_id, command)
                    wait_status(client, job_id, status, timeout=30)
                    if into is not None:
                        into.append((time.perf_counter() - started) * 1000)
    finally:
        server.stop(timeout=60)
    return pauses, cancels



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jobobs-bench-dask-"))
    paths = make_files(folder, args.files, args.rows)
    total = args.files * args.rows
    raw, threads, one, two, one_1, two_1, local, remote = [], [], [], [], [], [], [], []
    for _ in range(args.runs):
        raw.append(raw_reader(folder, paths))
        threads.append(imports(folder, paths, 0))
        one.append(imports(folder, paths, 1))
        two.append(imports(folder, paths, 2))
        one_1.append(imports(folder, paths, 1, threads=1))
        two_1.append(imports(folder, paths, 2, threads=1))
        local.append(reporting(folder, args.lines, dask=False))
        remote.append(reporting(folder, args.lines, dask=True))
    pauses, cancels = control(folder, args.samples)
    median = statistics.median
    print(f"{args.files} imports of {args.rows:,} rows each ({total:,} rows), "
          f"median of {args.runs} runs:")
    for name, seconds in (("DuckDB's raw reader, one process", raw),
                          ("jobobs on the server's threads (2)", threads),
                          ("jobobs on 1 Dask worker", one), ("jobobs on 2 Dask workers", two),
                          ("1 worker, 1 DuckDB thread a job", one_1),
                          ("2 workers, 1 DuckDB thread a job", two_1)):
        print(f"  {name:34} {median(seconds):7.2f} s  {total / median(seconds):>12,.0f} rows/s"
              f"  ({median(seconds) / median(raw):.2f}x the raw reader's time)")
    print(f"  2 workers against 1: {median(one) / median(two):.2f}x the throughput; with one "
          f"DuckDB thread a job: {median(one_1) / median(two_1):.2f}x")
    print(f"reporting {args.lines:,} journal lines with {args.lines // 100} checkpoints, "
          "progress updates and rejects (the job's run time):")
    print(f"  on the server's threads  {median(local):6.2f} s")
    print(f"  on a Dask worker         {median(remote):6.2f} s  "
          f"({median(remote) / median(local):.2f}x, through Quack)")
    print(f"request to recorded status, job on a Dask worker ({args.samples} samples):")
    for name, values in (("pause", pauses), ("cancel", cancels)):
        print(f"  {name:<7} {p50_p95(values, digits=0)}  (target: within 1,000 ms)")


if __name__ == "__main__":
    main()
