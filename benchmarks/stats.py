"""Order statistics the benchmarks report beside the median."""

from __future__ import annotations


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank value below which `share` of `values` lie (0.99: the p99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
