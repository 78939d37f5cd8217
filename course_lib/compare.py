"""Differences measured over seeds: a metric's mean and spread, whether a change exceeds the seed noise, and
bootstrap intervals over seeds and images with the verdicts they support."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
          2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)
"""Student's t 0.975-quantile for 1..20 degrees of freedom."""


def t_quantile_975(dof: int) -> float:
    """Student's t 0.975-quantile (a two-sided 95 % interval) for ``dof`` degrees of freedom: a table up to 20,
    then the Cornish-Fisher expansion around the normal quantile (within 0.001 from 21 on)."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    if dof <= len(_T_975):
        return _T_975[dof - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator; 0 for a single value)."""
    if not values:
        raise ValueError("no values")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Difference:
    """``after - before`` paired by seed: its mean, the half-width of its 95 % interval, and the verdict."""

    mean: float
    half_width: float
    verdict: str


def paired_difference(before: Sequence[float], after: Sequence[float], lower_is_better: bool = True) -> Difference:
    """Compare a metric before and after a change, seed by seed (``before[i]`` and ``after[i]`` share seed i).

    The verdict is "helps" or "hurts" when the 95 % t-interval of the mean difference excludes 0, "within seed
    noise" when it does not, "identical" when every difference is exactly 0 (the same training run, or a change too
    small to move any float32 weight), and "one seed: no verdict" when there is nothing to estimate the noise from.
    """
    if len(before) != len(after) or not before:
        raise ValueError(f"need the same number (>= 1) of seeds before and after, got {len(before)} and {len(after)}")
    differences = [b - a for a, b in zip(before, after)]
    mean, spread = mean_spread(differences)
    if all(d == 0 for d in differences):
        return Difference(0.0, 0.0, "identical")
    if len(differences) == 1:
        return Difference(mean, math.inf, "one seed: no verdict")
    half_width = t_quantile_975(len(differences) - 1) * spread / math.sqrt(len(differences))
    if abs(mean) <= half_width:
        return Difference(mean, half_width, "within seed noise")
    return Difference(mean, half_width, "helps" if (mean < 0) == lower_is_better else "hurts")


# ---- Bootstrap intervals over seeds and images, and verdicts on them ----
HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Interval:
    """A measured value and its two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"an interval needs low <= high, got [{self.low}, {self.high}]")

    def __str__(self) -> str:
        return f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}]"


def bootstrap_interval(
    groups: Sequence[Sequence[torch.Tensor]],
    statistic: Callable[..., float],
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """A percentile-bootstrap interval for a statistic measured on several training seeds.

    ``groups`` holds one entry per seed: tensors whose first dimension runs over the same images (e.g. the AE's and
    the VAE's score for each test image). ``statistic(*tensors)`` turns one seed's tensors into a number; the
    estimate is its mean over the seeds. Each resample draws the seeds with replacement, then the images of each
    drawn seed with replacement, so the interval carries both the seed-to-seed and the image-to-image spread.
    """
    if not groups or any(not group or any(len(t) != len(group[0]) for t in group) for group in groups):
        raise ValueError("need one or more groups, each of tensors with the same first dimension")
    if resamples < 2 or not 0 < level < 1:
        raise ValueError(f"need resamples >= 2 and 0 < level < 1, got {resamples} and {level}")
    generator = torch.Generator().manual_seed(seed)
    estimate = statistics.fmean(statistic(*group) for group in groups)
    replicates = []
    for _ in range(resamples):
        drawn = torch.randint(len(groups), (len(groups),), generator=generator).tolist()
        values = []
        for g in drawn:
            rows = torch.randint(len(groups[g][0]), (len(groups[g][0]),), generator=generator)
            values.append(statistic(*(t[rows.to(t.device)] for t in groups[g])))
        replicates.append(statistics.fmean(values))
    tail = (1 - level) / 2
    low, high = torch.tensor(replicates, dtype=torch.float64).quantile(torch.tensor([tail, 1 - tail],
                                                                                     dtype=torch.float64)).tolist()
    return Interval(estimate, min(low, estimate), max(high, estimate), level)


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of a few per-seed values and its Student-t interval (95 % only: the course's t table)."""
    if level != 0.95:
        raise ValueError("t_interval supports level 0.95 only")
    mean, spread = mean_spread(values)
    if len(values) < 2:
        return Interval(mean, -math.inf, math.inf, level)
    half_width = t_quantile_975(len(values) - 1) * spread / math.sqrt(len(values))
    return Interval(mean, mean - half_width, mean + half_width, level)


def directional_verdict(difference: Interval, margin: float = 0.0) -> str:
    """Verdict on a claim "A beats B", from the interval of the difference (positive = in the claim's favour).

    "holds": the interval excludes 0 and the estimate is at least ``margin`` (a difference that matters);
    "does not hold": the whole interval lies below ``margin`` (no difference that matters, or the reverse);
    "inconclusive": anything else, e.g. an interval from below 0 to above ``margin``.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if difference.low > 0 and difference.estimate >= margin:
        return HOLDS
    if difference.high < margin:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def equivalence_verdict(difference: Interval, margin: float) -> str:
    """Verdict on a claim "A and B are the same", from the interval of their difference.

    "holds": the whole interval lies within (-margin, margin); "does not hold": it lies wholly outside;
    "inconclusive": it straddles a margin.
    """
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    if -margin < difference.low and difference.high < margin:
        return HOLDS
    if difference.low >= margin or difference.high <= -margin:
        return DOES_NOT_HOLD
    return INCONCLUSIVE
