"""What the benchmarks share: percentiles of samples."""

from __future__ import annotations


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of the samples fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def p50_p95(values: list[float], unit: str = "ms", digits: int = 1) -> str:
    return (f"p50 {percentile(values, .5):6.{digits}f} {unit}  "
            f"p95 {percentile(values, .95):6.{digits}f} {unit}")
