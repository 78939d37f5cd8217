"""course_lib.compare: mean and spread over seeds, paired verdicts against SciPy's t-test, bootstrap intervals and
the verdicts they support."""

import math

import pytest
import torch
from scipy import stats

from course_lib.compare import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    Difference,
    Interval,
    bootstrap_interval,
    directional_verdict,
    equivalence_verdict,
    mean_spread,
    paired_difference,
    t_interval,
    t_quantile_975,
)


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
    assert paired_difference([1.0, 2.0], [1.0, 2.0]) == Difference(0.0, 0.0, "identical")
    one = paired_difference([1.0], [0.5])
    assert one.verdict == "one seed: no verdict" and one.half_width == math.inf and one.mean == -0.5
    with pytest.raises(ValueError, match="same number"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same number"):
        paired_difference([], [])


# ---- bootstrap intervals and the verdicts they support ----
def _normal(n, mean=0.0, std=1.0, seed=0):
    return mean + std * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _mean(values):
    return values.mean().item()


def test_bootstrap_interval_covers_the_true_mean_at_about_its_stated_rate():
    trials = 200
    intervals = [bootstrap_interval([(_normal(60, mean=1.0, seed=s),)], _mean, resamples=400, seed=s)
                 for s in range(trials)]
    covered = sum(interval.low <= 1.0 <= interval.high for interval in intervals)
    # 95 % nominal; a percentile bootstrap on n = 60 undercovers slightly. Binomial sd over 200 trials is 1.5 %.
    assert 0.89 <= covered / trials <= 0.99


def test_bootstrap_interval_of_the_mean_matches_the_normal_approximation():
    values = _normal(2000, mean=3.0, std=2.0, seed=1)
    interval = bootstrap_interval([(values,)], _mean, resamples=2000)
    half_width = 1.96 * values.std().item() / math.sqrt(len(values))
    assert interval.estimate == pytest.approx(values.mean().item())
    assert interval.high - interval.low == pytest.approx(2 * half_width, rel=0.1)
    assert interval.low < interval.estimate < interval.high


def test_bootstrap_over_seeds_carries_the_spread_between_seeds():
    # Three seeds whose means differ by 1 (seed noise), each with 500 images of small spread: resampling the images
    # alone would give an interval about 0.02 wide; resampling the seeds too must give one about as wide as the seeds.
    groups = [(_normal(500, mean=m, std=0.2, seed=i),) for i, m in enumerate([0.0, 1.0, 2.0])]
    interval = bootstrap_interval(groups, _mean, resamples=500)
    assert interval.estimate == pytest.approx(1.0, abs=0.02)
    assert interval.high - interval.low > 1.0
    one_seed = bootstrap_interval(groups[:1], _mean, resamples=500)
    assert one_seed.high - one_seed.low < 0.05


def test_bootstrap_resamples_paired_tensors_together():
    # A paired difference of constant 0.5 has no spread at all, however the images are drawn.
    a = _normal(300, seed=2)
    interval = bootstrap_interval([(a + 0.5, a)], lambda x, y: (x - y).mean().item(), resamples=200)
    assert (interval.low, interval.estimate, interval.high) == pytest.approx((0.5, 0.5, 0.5))


def test_bootstrap_is_seeded_and_rejects_bad_input():
    groups = [(_normal(50, seed=3),)]
    assert bootstrap_interval(groups, _mean, seed=4) == bootstrap_interval(groups, _mean, seed=4)
    assert bootstrap_interval(groups, _mean, seed=4) != bootstrap_interval(groups, _mean, seed=5)
    with pytest.raises(ValueError, match="same first dimension"):
        bootstrap_interval([(torch.zeros(3), torch.zeros(4))], _mean)
    with pytest.raises(ValueError, match="one or more groups"):
        bootstrap_interval([], _mean)
    with pytest.raises(ValueError, match="resamples >= 2"):
        bootstrap_interval(groups, _mean, resamples=1)
    with pytest.raises(ValueError, match="low <= high"):
        Interval(0.0, 1.0, -1.0)


def test_bootstrap_over_several_seeds_is_seeded_and_keeps_its_level():
    groups = [(_normal(30, seed=s),) for s in range(4)]  # four seeds: the seeds themselves are drawn too
    torch.manual_seed(0)
    first = bootstrap_interval(groups, _mean, resamples=50, level=0.8, seed=1)
    torch.manual_seed(1)  # the global generator plays no part
    assert bootstrap_interval(groups, _mean, resamples=50, level=0.8, seed=1) == first
    assert first.level == 0.8 and first.low < first.estimate < first.high
    assert bootstrap_interval(groups, _mean, resamples=2).level == 0.95  # two resamples: the fewest allowed
    for level in (0.0, 1.0):
        with pytest.raises(ValueError, match="0 < level < 1"):
            bootstrap_interval(groups, _mean, level=level)


def test_overlapping_intervals_give_inconclusive():
    # Two groups whose intervals overlap: the interval of their difference straddles 0.
    a, b = _normal(40, mean=0.0, seed=6), _normal(40, mean=0.1, seed=7)
    ia, ib = (bootstrap_interval([(x,)], _mean, resamples=500) for x in (a, b))
    assert ia.low <= ib.high and ib.low <= ia.high  # the two intervals overlap
    difference = bootstrap_interval([(b, a)], lambda x, y: x.mean().item() - y.mean().item(), resamples=500)
    assert difference.low < 0 < difference.high
    assert directional_verdict(difference) == INCONCLUSIVE


@pytest.mark.parametrize(("low", "estimate", "high", "margin", "verdict"), [
    (0.2, 0.5, 0.8, 0.0, HOLDS),  # clearly ahead
    (0.2, 0.5, 0.8, 0.4, HOLDS),  # ahead by more than what matters
    (0.01, 0.05, 0.09, 0.1, DOES_NOT_HOLD),  # real but too small to matter
    (-0.8, -0.5, -0.2, 0.0, DOES_NOT_HOLD),  # the reverse
    (-0.1, 0.2, 0.5, 0.0, INCONCLUSIVE),  # straddles 0
    (0.05, 0.08, 0.3, 0.1, INCONCLUSIVE),  # ahead, but maybe by less than what matters
    (0.0, 0.5, 0.8, 0.0, INCONCLUSIVE),  # the interval reaches 0: not excluded
    (0.1, 0.3, 0.5, 0.3, HOLDS),  # the estimate exactly at the margin matters
    (-0.2, 0.0, 0.3, 0.3, INCONCLUSIVE),  # the interval reaches the margin: not wholly below it
])
def test_directional_verdict(low, estimate, high, margin, verdict):
    assert directional_verdict(Interval(estimate, low, high), margin) == verdict


@pytest.mark.parametrize(("low", "high", "verdict"), [
    (-0.5, 0.5, HOLDS), (1.0, 2.0, DOES_NOT_HOLD), (-3.0, -1.0, DOES_NOT_HOLD), (0.5, 1.5, INCONCLUSIVE),
])
def test_equivalence_verdict(low, high, verdict):
    assert equivalence_verdict(Interval((low + high) / 2, low, high), margin=1.0) == verdict


def test_verdict_margins_are_checked():
    with pytest.raises(ValueError, match="margin must be >= 0"):
        directional_verdict(Interval(0, 0, 0), -1)
    with pytest.raises(ValueError, match="margin must be > 0"):
        equivalence_verdict(Interval(0, 0, 0), 0)


def test_t_interval_matches_scipy_and_needs_two_values():
    values = [0.3, 0.9, 0.4, 0.7]
    interval = t_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=stats.sem(values))
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-3)
    one = t_interval([0.5])
    assert one.estimate == 0.5 and one.low == -math.inf and one.high == math.inf
    assert directional_verdict(one) == INCONCLUSIVE
    with pytest.raises(ValueError, match="0.95 only"):
        t_interval(values, level=0.9)


def test_t_quantile_table_is_scipys_rounded_to_three_decimals_up_to_20():
    assert [t_quantile_975(d) for d in range(1, 21)] == [round(stats.t.ppf(0.975, d), 3) for d in range(1, 21)]


@pytest.mark.parametrize(("dof", "tolerance"), [(100, 3e-6), (1000, 1.6e-8)])
def test_t_quantile_expansion_is_within_its_next_order_error(dof, tolerance):
    # the two-term Cornish-Fisher expansion errs by O(1 / dof^3): 2.6e-6 at 100, 1.3e-8 at 1000
    assert abs(t_quantile_975(dof) - stats.t.ppf(0.975, dof)) < tolerance


def test_mean_spread_of_two_values_and_identical_runs_have_zero_width():
    assert mean_spread([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    identical = paired_difference([0.3, 0.4], [0.3, 0.4])
    assert (identical.mean, identical.half_width, identical.verdict) == (0.0, 0.0, "identical")


def test_equivalence_needs_the_interval_strictly_inside_the_margins():
    assert equivalence_verdict(Interval(0.0, -0.5, 0.5), 1.0) == HOLDS
    assert equivalence_verdict(Interval(0.0, -1.0, 0.5), 1.0) == INCONCLUSIVE  # touches -margin
    assert equivalence_verdict(Interval(0.0, -0.5, 1.0), 1.0) == INCONCLUSIVE  # touches +margin
    assert equivalence_verdict(Interval(-2.0, -3.0, -1.0), 1.0) == DOES_NOT_HOLD  # wholly at or below -margin
    assert equivalence_verdict(Interval(0.0, -3.0, 0.5), 1.0) == INCONCLUSIVE  # straddles -margin


def test_t_interval_of_two_seeds_is_finite_and_of_one_seed_unbounded():
    two = t_interval([1.0, 3.0])
    half = stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2)  # t(0.975, 1 dof) x sd / sqrt(n)
    assert two.estimate == 2.0 and two.level == 0.95
    assert (two.low, two.high) == pytest.approx((2.0 - half, 2.0 + half), rel=1e-3)
    one = t_interval([5.0])
    assert (one.estimate, one.low, one.high, one.level) == (5.0, -math.inf, math.inf, 0.95)
    with pytest.raises(ValueError, match="t_interval supports level 0.95 only"):
        t_interval([1.0, 2.0], level=0.9)
