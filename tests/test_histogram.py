from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import orjson
import pytest

from locust_aiapi._histogram import MIN_INDEXABLE, LogHistogram

QS = (0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def exact_nearest_rank(sorted_values: list[float], q: float) -> float:
    """The sample of 1-based rank ceil(q * n), q read as the decimal it is written as."""
    rank = max(1, math.ceil(Fraction(str(q)) * len(sorted_values)))
    return sorted_values[rank - 1]


def relative_error(estimate: float, exact: float) -> float:
    if exact == 0.0:
        return 0.0 if estimate == 0.0 else math.inf
    return abs(estimate - exact) / exact


def distributions() -> dict[str, list[float]]:
    rng = random.Random(20240601)
    return {
        "uniform": [rng.uniform(1.0, 1000.0) for _ in range(20_000)],
        "lognormal_heavy_tail": [rng.lognormvariate(3.0, 2.0) for _ in range(20_000)],
        "pareto": [rng.paretovariate(1.1) for _ in range(10_000)],
        "constant": [42.5] * 1_000,
        "span_1e-3_to_1e6": [10.0 ** rng.uniform(-3.0, 6.0) for _ in range(20_000)],
        "with_zeros": [0.0] * 300 + [rng.expovariate(0.01) for _ in range(700)],
        "small_n": [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0],
        "single_value": [7.25],
    }


def histogram_of(values: list[float], relative_accuracy: float = 0.005) -> LogHistogram:
    hist = LogHistogram(relative_accuracy)
    for value in values:
        hist.add(value)
    return hist


@pytest.mark.parametrize("relative_accuracy", [0.005, 0.01])
@pytest.mark.parametrize("name", sorted(distributions()))
def test_quantiles_within_relative_accuracy(name: str, relative_accuracy: float) -> None:
    values = distributions()[name]
    hist = histogram_of(values, relative_accuracy)
    ordered = sorted(values)
    for q, estimate in zip(QS, hist.quantiles(QS), strict=True):
        exact = exact_nearest_rank(ordered, q)
        assert estimate is not None
        error = relative_error(estimate, exact)
        assert error <= 0.01, (name, q, estimate, exact)
        assert error <= relative_accuracy * (1 + 1e-9), (name, q, estimate, exact)
        assert hist.quantile(q) == estimate


@pytest.mark.parametrize("name", sorted(distributions()))
def test_exact_moments_and_extremes(name: str) -> None:
    values = distributions()[name]
    hist = histogram_of(values)
    assert hist.count == len(values)
    assert hist.sum == pytest.approx(math.fsum(values), rel=1e-12)
    assert hist.mean == pytest.approx(math.fsum(values) / len(values), rel=1e-12)
    assert hist.min == min(values)
    assert hist.max == max(values)
    assert hist.quantile(1.0) == max(values)
    assert hist.quantile(0.0) == min(values)


def test_single_sample_is_returned_exactly_for_every_quantile() -> None:
    hist = histogram_of([123.456789])
    assert hist.quantiles([0.0, 0.001, 0.5, 0.99, 1.0]) == [123.456789] * 5


def test_rank_is_nearest_rank_of_sorted_samples() -> None:
    # one decade apart: every sample has its own bucket, so the rank picked is visible
    hist = histogram_of([10.0**k for k in range(10)])
    for q, expected in [(0.05, 1.0), (0.1, 1.0), (0.15, 10.0), (0.2, 10.0), (0.55, 1e5), (0.95, 1e9)]:
        estimate = hist.quantile(q)
        assert estimate is not None
        assert estimate == pytest.approx(expected, rel=0.005), q
    # 0.07 * 100 is 7.000000000000001 in floats; the rank is still 7
    hundred = histogram_of([float(v) for v in range(1, 101)])
    assert hundred.quantile(0.07) == pytest.approx(7.0, rel=0.005)
    assert hundred.quantile(0.07) != pytest.approx(8.0, rel=0.005)


def test_empty_histogram() -> None:
    hist = LogHistogram()
    assert hist.count == 0
    assert hist.quantile(0.5) is None
    assert hist.quantiles([0.5, 1.0]) == [None, None]
    assert (hist.mean, hist.min, hist.max) == (None, None, None)
    assert LogHistogram.from_dict(hist.to_dict()) == hist


@pytest.mark.parametrize("bad", [-1.0, -1e-300, math.nan, math.inf, -math.inf])
def test_rejects_negative_and_non_finite_values(bad: float) -> None:
    hist = LogHistogram()
    with pytest.raises(ValueError):
        hist.add(bad)
    assert hist.count == 0


@pytest.mark.parametrize("q", [-0.1, 1.1, math.nan])
def test_rejects_quantile_outside_unit_interval(q: float) -> None:
    with pytest.raises(ValueError):
        histogram_of([1.0]).quantile(q)


@pytest.mark.parametrize("accuracy", [0.0, 1.0, -0.1])
def test_rejects_bad_relative_accuracy(accuracy: float) -> None:
    with pytest.raises(ValueError):
        LogHistogram(accuracy)


def test_zero_and_tiny_values_share_the_zero_bucket() -> None:
    hist = histogram_of([0.0, MIN_INDEXABLE, MIN_INDEXABLE / 2, 5.0])
    assert hist.zero_count == 3
    assert sum(hist.bucket_counts().values()) == 1
    assert hist.quantile(0.5) == 0.0
    assert hist.quantile(1.0) == 5.0


def assert_same_histogram(merged: LogHistogram, whole: LogHistogram) -> None:
    assert merged.bucket_counts() == whole.bucket_counts()
    assert merged.zero_count == whole.zero_count
    assert merged.count == whole.count
    assert merged.min == whole.min
    assert merged.max == whole.max
    assert merged.sum == pytest.approx(whole.sum, rel=1e-12)
    qs = [0.0, 0.1, *QS]
    assert merged.quantiles(qs) == whole.quantiles(qs)


@pytest.mark.parametrize("name", sorted(distributions()))
def test_merge_of_random_split_equals_one_histogram(name: str) -> None:
    values = distributions()[name]
    rng = random.Random(7)
    left, right = LogHistogram(), LogHistogram()
    for value in values:
        (left if rng.random() < 0.3 else right).add(value)
    left.merge(right)
    assert_same_histogram(left, histogram_of(values))


@pytest.mark.parametrize("name", sorted(distributions()))
def test_merge_of_halves_equals_one_histogram(name: str) -> None:
    values = distributions()[name]
    half = len(values) // 2
    first, second = histogram_of(values[:half]), histogram_of(values[half:])
    second.merge(first)
    assert_same_histogram(second, histogram_of(values))


def test_merge_with_empty_histograms() -> None:
    values = distributions()["uniform"][:100]
    hist = histogram_of(values)
    hist.merge(LogHistogram())
    assert_same_histogram(hist, histogram_of(values))
    empty = LogHistogram()
    empty.merge(hist)
    assert_same_histogram(empty, histogram_of(values))


def test_merge_rejects_other_relative_accuracy() -> None:
    with pytest.raises(ValueError):
        LogHistogram(0.005).merge(LogHistogram(0.01))


def assert_json_types(node: object) -> None:
    if isinstance(node, dict):
        assert all(isinstance(key, str) for key in node)
        for value in node.values():
            assert_json_types(value)
    elif isinstance(node, list):
        for value in node:
            assert_json_types(value)
    else:
        assert node is None or type(node) in (int, float, str)


@pytest.mark.parametrize("name", sorted(distributions()))
def test_dict_round_trip_is_exact(name: str) -> None:
    hist = histogram_of(distributions()[name])
    data = hist.to_dict()
    assert_json_types(data)
    for restored in (
        LogHistogram.from_dict(data),
        LogHistogram.from_dict(orjson.loads(orjson.dumps(data))),
        LogHistogram.from_dict(json.loads(json.dumps(data))),
    ):
        assert restored == hist
        assert restored.sum == hist.sum
        assert restored.quantiles(QS) == hist.quantiles(QS)


def test_from_dict_rejects_inconsistent_or_malformed_data() -> None:
    data = histogram_of([1.0, 2.0]).to_dict()
    with pytest.raises(ValueError):
        LogHistogram.from_dict({**data, "count": 3})
    with pytest.raises(ValueError):
        LogHistogram.from_dict({key: value for key, value in data.items() if key != "buckets"})


@pytest.mark.parametrize("scale", [1.0, 1000.0])
@pytest.mark.parametrize("name", sorted(distributions()))
def test_add_all_is_add_of_each_scaled_value(name: str, scale: float) -> None:
    values = distributions()[name]
    one_by_one = histogram_of([value * scale for value in values])
    at_once = LogHistogram()
    at_once.add_all(values[: len(values) // 2], scale)
    at_once.add_all(values[len(values) // 2 :], scale)
    at_once.add_all([], scale)
    assert at_once.to_dict() == one_by_one.to_dict()  # the sum too: added in the same order


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", [0, 2, 4])
def test_add_all_raises_at_a_bad_value_like_add(bad: float, where: int) -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    values.insert(where, bad)
    at_once, one_by_one = LogHistogram(), LogHistogram()
    with pytest.raises(ValueError):
        at_once.add_all(values, 10.0)
    with pytest.raises(ValueError):
        for value in values:
            one_by_one.add(value * 10.0)
    assert at_once.count == where
    assert at_once.to_dict() == one_by_one.to_dict()


def test_add_all_of_huge_finite_values_whose_sum_overflows() -> None:
    hist = LogHistogram()
    hist.add_all([1e308, 1e308])  # each is valid; add takes them, so add_all does
    assert hist.count == 2
    assert hist.max == 1e308
