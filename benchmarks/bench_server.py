"""Server benchmarks: a real ``jobobs serve`` subprocess and this process as its client.

    python benchmarks/bench_server.py [--jobs 5000] [--samples 40]

Prints:
- the job-list query (50 newest jobs) through Quack from another process, p50/p95,
  against the same query in-process on the same file (measured first, before the server
  owns it), and their ratio;
- the same query with the analysts' read-only token (``POST /api/sql``: the server checks
  it, runs it and answers Arrow), against Quack in the same run, and the check alone;
- request-to-acknowledged time for pause and cancel made from another process: from the
  call until the server's runtime has recorded the request's outcome (target: p95 <= 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from figures import p50_p95, timed
from serving import Server, wait_status

import jobobs
from jobobs.access import queries
from jobobs.db import readonly


def history(db: str, count: int) -> None:
    with jobobs.Runtime(db, workers=4, handle_signals=False) as rt:
        for i in range(count):
            rt.submit(_noop, name=f"history-{i % 20}")
        rt.run_until_idle(timeout=600)


@jobobs.job(name="bench-noop")
def _noop(ctx):
    ctx.log.info("done")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jobobs-bench-server-"))
    db = str(folder / "jobs.duckdb")
    history(db, args.jobs)
    with jobobs.Runtime(db, handle_signals=False) as rt:
        local = timed(lambda: queries.jobs(rt.store.reader(), limit=50), args.samples)

    server = Server(db, workers=4).wait_ready()
    try:
        with jobobs.connect(db) as client:
            client.jobs(limit=50)  # attach and warm up
            remote = timed(lambda: client.jobs(limit=50), args.samples)
            with jobobs.connect(url=server.dashboard,
                                analyst_token=server.analyst_token) as reader:
                reader.jobs(limit=50)
                quack, analysts = [], []  # alternated, so the machine's noise hits both
                for _ in range(args.samples):
                    quack += timed(lambda: client.jobs(limit=50), 1)
                    analysts += timed(lambda: reader.jobs(limit=50), 1)
            query = (f"SELECT {queries.JOB_LIST_COLUMNS} FROM job_runs WHERE id IN (SELECT id "
                     "FROM jobs WHERE true ORDER BY id DESC LIMIT 50 OFFSET 0) ORDER BY id DESC")
            checks = timed(lambda: readonly.check(query), args.samples)
            pauses, cancels = [], []
            for _ in range(max(5, args.samples // 4)):
                job_id = client.submit("jobobs.demo:score_customers", 100_000, 0.002)
                wait_status(client, job_id, "running")
                pauses += timed(lambda: client.pause(job_id), 1)  # noqa: B023
                client.wait(job_id, timeout=30, progress=False)
                client.resume(job_id)
                wait_status(client, job_id, "running")
                cancels += timed(lambda: client.cancel(job_id), 1)  # noqa: B023
                client.wait(job_id, timeout=30, progress=False)
    finally:
        server.stop()

    print(f"job list (50 of {args.jobs} jobs), {args.samples} samples:")
    print(f"  in-process      {p50_p95(local)}")
    print(f"  through Quack   {p50_p95(remote)}  "
          f"(ratio of medians {statistics.median(remote) / statistics.median(local):.2f}x)")
    print(f"the same with the analyst token, alternated with Quack, {args.samples} samples:")
    print(f"  through Quack   {p50_p95(quack)}")
    print(f"  analyst route   {p50_p95(analysts)}  "
          f"(ratio of medians {statistics.median(analysts) / statistics.median(quack):.2f}x)")
    print(f"  its read-only check alone  {p50_p95(checks, digits=2)}")
    print(f"request to acknowledged, from another process ({len(pauses)} samples each):")
    for name, values in (("pause", pauses), ("cancel", cancels)):
        print(f"  {name:<7} {p50_p95(values)}  (target p95 <= 1000 ms)")


if __name__ == "__main__":
    main()
