"""Schedule benchmarks, each against a reference measured in the same run.

    python benchmarks/bench_schedules.py [--runs 5] [--schedules 1000]

Prints medians of several runs:
- the scheduler's look at ``--schedules`` schedules of which none is due (what the
  control loop pays five times a second), p50 and p95, and the ratio to the loop's own
  look at the pending requests (``Store.pending_commands``) on the same file;
- a due tick: its job made and committed with the schedule's row (one ``tick`` and one
  flush), and the ratio to ``Runtime.submit`` of the same job and a flush.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jobobs
from jobobs.access.submissions import python_spec

T0 = 1_900_000_000.0


@jobobs.job(name="bench-noop")
def noop(ctx):
    pass


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def one_run(folder: Path, schedules: int) -> dict[str, float]:
    now = [T0]
    rt = jobobs.Runtime(str(folder / "bench.duckdb"), workers=2, handle_signals=False,
                        clock=lambda: now[0], run_schedules=True, log_level=None)
    try:
        spec = python_spec(noop)
        for i in range(schedules):
            rt.schedules.apply({"verb": "add", "name": f"s{i:05d}", "every": "1h",
                                "spec": spec}, "bench")
        rt.flush()
        looks, polls = [], []
        for _ in range(200):
            started = time.perf_counter()
            rt.schedules.tick(force=True)
            looks.append(time.perf_counter() - started)
            started = time.perf_counter()
            rt.store.pending_commands(limit=100)
            polls.append(time.perf_counter() - started)
        ticks, submits = [], []
        for i in range(20):  # one schedule due at a time
            now[0] += 1
            rt.schedules.schedules[f"s{i:05d}"].next_run_at = now[0]
            started = time.perf_counter()
            rt.schedules.tick(force=True)
            rt.flush()
            ticks.append(time.perf_counter() - started)
            started = time.perf_counter()
            rt.submit(noop)
            rt.flush()
            submits.append(time.perf_counter() - started)
        rt.run_until_idle(60)
    finally:
        rt.close()
    return {"look_p50": statistics.median(looks), "look_p95": percentile(looks, 0.95),
            "poll_p50": statistics.median(polls), "tick": statistics.median(ticks),
            "submit": statistics.median(submits)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--schedules", type=int, default=1000)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            results.append(one_run(Path(folder), args.schedules))

    def median(key: str) -> float:
        return statistics.median(r[key] for r in results)

    ms = 1000
    print(f"scheduler look at {args.schedules:,} schedules, none due: p50 "
          f"{median('look_p50') * ms:.2f} ms, p95 {median('look_p95') * ms:.2f} ms; the "
          f"loop's look at its requests: {median('poll_p50') * ms:.2f} ms "
          f"(ratio {median('look_p50') / median('poll_p50'):.2f}x)")
    print(f"a due tick, its job committed with the schedule: {median('tick') * ms:.2f} ms; "
          f"Runtime.submit and a flush: {median('submit') * ms:.2f} ms "
          f"(ratio {median('tick') / median('submit'):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
