"""course_lib.compare: mean and spread over seeds, and paired verdicts against SciPy's t-test."""

import math

import pytest
from scipy import stats

from course_lib.compare import mean_spread, paired_difference, t_quantile_975


@pytest.mark.parametrize("dof", [1, 2, 3, 5, 10, 11, 15, 20, 21, 30, 100, 1000])
def test_t_quantile_matches_scipy(dof):
    assert t_quantile_975(dof) == pytest.approx(stats.t.ppf(0.975, dof), abs=1e-3)


def test_t_quantile_needs_a_degree_of_freedom():
    with pytest.raises(ValueError, match="degrees of freedom must be >= 1, got 0"):
        t_quantile_975(0)


def test_mean_spread_is_the_sample_mean_and_standard_deviation():
    mean, spread = mean_spread([1.0, 2.0, 6.0])
    assert mean == 3.0 and spread == pytest.approx(math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert mean_spread([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError, match="no values"):
        mean_spread([])


@pytest.mark.parametrize(("before", "after"), [
    ([1.0, 2.0, 3.0], [0.5, 1.4, 2.6]),  # a clear improvement
    ([1.0, 2.0, 3.0], [1.2, 1.9, 3.4]),  # noise
    ([0.10, 0.12, 0.11, 0.13], [0.14, 0.15, 0.16, 0.15]),  # a clear worsening
])
def test_paired_interval_agrees_with_scipys_paired_t_test(before, after):
    difference = paired_difference(before, after)
    diffs = [b - a for a, b in zip(before, after)]
    assert difference.mean == pytest.approx(sum(diffs) / len(diffs))
    low, high = stats.ttest_rel(after, before).confidence_interval(0.95)
    assert difference.half_width == pytest.approx((high - low) / 2, rel=1e-3)
    p_value = stats.ttest_rel(after, before).pvalue
    if p_value < 0.05:
        assert difference.verdict == ("helps" if difference.mean < 0 else "hurts")
    else:
        assert difference.verdict == "within seed noise"


def test_verdicts_read_the_direction_of_the_metric():
    better_if_lower = paired_difference([1.0, 2.0, 3.0], [0.5, 1.4, 2.6])
    assert better_if_lower.verdict == "helps" and better_if_lower.mean < 0
    assert paired_difference([1.0, 2.0, 3.0], [0.5, 1.4, 2.6], lower_is_better=False).verdict == "hurts"
    assert paired_difference([0.5, 1.4, 2.6], [1.0, 2.0, 3.0]).verdict == "hurts"


def test_pairing_removes_the_spread_between_seeds():
    # Seed-to-seed spread of 1.0, a constant improvement of 0.01: unpaired it is noise, paired it is a finding.
    before, after = [1.0, 2.0, 3.0], [0.99, 1.989, 2.991]
    assert paired_difference(before, after).verdict == "helps"


def test_identical_runs_one_seed_and_bad_input():
    assert paired_difference([1.0, 2.0], [1.0, 2.0]).verdict == "identical"
    one = paired_difference([1.0], [0.5])
    assert one.verdict == "one seed: no verdict" and one.half_width == math.inf and one.mean == -0.5
    with pytest.raises(ValueError, match="same number"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same number"):
        paired_difference([], [])
