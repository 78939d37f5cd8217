"""Differences measured over seeds: a metric's mean and spread, and whether a change exceeds the seed noise."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

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
