"""What the benchmarks share: timing calls, percentiles of samples."""

from __future__ import annotations

import time
from collections.abc import Callable


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of the samples fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def p50_p95(values: list[float], unit: str = "ms", digits: int = 1) -> str:
    return (f"p50 {percentile(values, .5):6.{digits}f} {unit}  "
            f"p95 {percentile(values, .95):6.{digits}f} {unit}")


def timed(call: Callable[[], object], samples: int, warm: int = 0) -> list[float]:
    """The times of ``samples`` calls of ``call()`` in ms, after ``warm`` untimed calls."""
    for _ in range(warm):
        call()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times
