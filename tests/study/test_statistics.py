"""Aggregation over replicates, with values worked out by hand (and the quantiles scipy's)."""

import math

import pytest
from scipy import stats

from augir.study.statistics import (
    Estimate,
    cell_estimate,
    corrected_p_values,
    delta_estimate,
    paired_p_value,
    per_query_mean,
)

T_975_DF2 = 4.302652729911275  # the 97.5% quantile of Student's t with 2 degrees of freedom


def test_a_cell_is_the_mean_over_seeds_with_the_t_interval():
    estimate = cell_estimate([0.3, 0.4, 0.5])
    half = T_975_DF2 * 0.1 / math.sqrt(3)  # standard deviation 0.1 over three seeds
    assert estimate.mean == pytest.approx(0.4) and estimate.seeds == 3
    assert (estimate.low, estimate.high) == (pytest.approx(0.4 - half), pytest.approx(0.4 + half))
    assert half == pytest.approx(0.248414, abs=1e-6)


def test_one_seed_has_no_interval_and_identical_seeds_a_point():
    assert cell_estimate([0.25]) == Estimate(0.25, None, None, 1)
    assert cell_estimate([0.25, 0.25]) == Estimate(0.25, 0.25, 0.25, 2)


def test_a_delta_pairs_the_seeds_both_cells_share():
    treated = {0: 0.5, 1: 0.6, 2: 0.8, 7: 0.9}  # seed 7 has no reference: left out
    reference = {0: 0.4, 1: 0.5, 2: 0.5}
    estimate = delta_estimate(treated, reference)
    # differences 0.1, 0.1, 0.3: mean 1/6, standard deviation 0.2/sqrt(3), standard error 0.2/3
    half = T_975_DF2 * 0.2 / 3
    assert estimate.mean == pytest.approx(1 / 6) and estimate.seeds == 3
    assert (estimate.low, estimate.high) == (pytest.approx(1 / 6 - half), pytest.approx(1 / 6 + half))


def test_per_query_scores_are_averaged_over_seeds_and_tested_in_pairs():
    seeds = [{"a": 1.0, "b": 0.0, "c": 0.5}, {"a": 0.0, "b": 0.0, "c": 1.0}]
    assert per_query_mean(seeds) == {"a": 0.5, "b": 0.0, "c": 0.75}
    reference = {"a": 0.25, "b": 0.0, "c": 0.25}
    expected = stats.ttest_rel([0.5, 0.0, 0.75], [0.25, 0.0, 0.25]).pvalue
    assert paired_p_value(per_query_mean(seeds), reference) == pytest.approx(expected)
    assert paired_p_value(reference, dict(reference)) is None
    with pytest.raises(ValueError, match="same queries"):
        per_query_mean([{"a": 1.0}, {"b": 1.0}])


def test_holm_and_benjamini_hochberg_by_hand():
    raw = [0.01, 0.04, 0.03, None]
    assert corrected_p_values(raw, "none") == raw
    # Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04, made non-decreasing: 0.03, 0.06, 0.06
    assert corrected_p_values(raw, "holm") == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06), None]
    # BH: 0.01*3/1, 0.03*3/2, 0.04*3/3 = 0.03, 0.045, 0.04, made non-increasing from the top: 0.03, 0.04, 0.04
    assert corrected_p_values(raw, "bh") == [pytest.approx(0.03), pytest.approx(0.04), pytest.approx(0.04), None]


def test_the_bootstrap_interval_is_scipys_over_queries():
    seeds = [{f"q{i}": (i % 5) / 4 for i in range(40)}, {f"q{i}": ((i + 1) % 5) / 4 for i in range(40)}]
    estimate = cell_estimate([0.5, 0.5], seeds, interval="bootstrap")
    averaged = list(per_query_mean(seeds).values())
    expected = stats.bootstrap((averaged,), lambda x: sum(x) / len(x), n_resamples=2000, method="BCa",
                               random_state=0).confidence_interval
    assert estimate.low < estimate.mean < estimate.high
    assert (estimate.low, estimate.high) == (pytest.approx(expected.low, abs=1e-9), pytest.approx(expected.high, abs=1e-9))
