"""Percentiles as numpy defines them (linear interpolation), and the summary around them."""

from __future__ import annotations

import pytest

from bench.stats import percentile, rate, summarize


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([1.0], 50, 1.0),
        ([1.0], 99, 1.0),
        ([1, 2, 3, 4], 0, 1.0),
        ([1, 2, 3, 4], 100, 4.0),
        ([1, 2, 3, 4], 50, 2.5),
        ([4, 1, 3, 2], 50, 2.5),
        ([1, 2, 3, 4, 5], 95, 4.8),
        (list(range(1, 101)), 99, 99.01),
        (list(range(1, 101)), 95, 95.05),
        ([10, 20], 25, 12.5),
    ],
)
def test_percentile_interpolates_between_closest_ranks(samples, q, expected):
    assert percentile(samples, q) == pytest.approx(expected)


def test_percentile_of_an_empty_sample_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_outside_the_range_is_an_error(q):
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0, 2.0], q)


def test_percentile_does_not_reorder_the_callers_list():
    samples = [3.0, 1.0, 2.0]
    percentile(samples, 50)
    assert samples == [3.0, 1.0, 2.0]


def test_summary_names_each_quantile():
    summary = summarize([0.1, 0.2, 0.3, 0.4], quantiles=(50, 95, 99.9))
    assert summary["count"] == 4
    assert summary["min"] == pytest.approx(0.1)
    assert summary["max"] == pytest.approx(0.4)
    assert summary["mean"] == pytest.approx(0.25)
    assert summary["p50"] == pytest.approx(0.25)
    assert summary["p95"] == pytest.approx(0.385)
    assert "p99.9" in summary


def test_summary_of_nothing_is_just_a_zero_count():
    assert summarize([]) == {"count": 0}


def test_rate_never_divides_by_zero():
    assert rate(100, 4.0) == 25.0
    assert rate(100, 0.0) == 0.0
