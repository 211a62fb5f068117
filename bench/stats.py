"""Latency statistics: percentiles by linear interpolation (numpy's default), and a summary."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``samples``, interpolating between closest ranks.

    Same definition as ``numpy.percentile(..., method="linear")``: with ``n`` sorted values the
    rank is ``q/100 * (n - 1)``. An empty sample has no percentile: ``ValueError``.
    """
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(samples)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def summarize(samples: Iterable[float], quantiles: Iterable[float] = (50, 95, 99)) -> dict:
    """Count, min, mean, max and the ``quantiles`` of ``samples`` (keys ``p50``, ``p95``...)."""
    values = [float(value) for value in samples]
    if not values:
        return {"count": 0}
    summary: dict[str, float | int] = {
        "count": len(values),
        "min": min(values),
        "mean": sum(values) / len(values),
        "max": max(values),
    }
    for q in quantiles:
        summary[f"p{q:g}"] = percentile(values, q)
    return summary


def rate(count: int, seconds: float) -> float:
    """Items per second (0 when no time passed, never a division by zero)."""
    return count / seconds if seconds > 0 else 0.0
