"""Notebook 07's verdicts: each claim of the article's AE-vs-VAE table, an interval on its measure, and a verdict by
a rule fixed before the results.

Every measure is a difference or a ratio oriented so that a positive value favours the claim, with a bootstrap
interval over test images and training seeds (:func:`course_lib.compare.bootstrap_interval`). A rule turns the
interval and one threshold of :data:`THRESHOLDS` into "holds", "does not hold" or "inconclusive"
(:func:`course_lib.compare.directional_verdict`, :func:`course_lib.compare.equivalence_verdict`). Each threshold has
a plausible range, and :meth:`Claim.sensitivity` shows whether the verdict flips within it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from course_lib.compare import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    Interval,
    directional_verdict,
    equivalence_verdict,
)
from course_lib.metrics import frechet_distance
from course_lib.report import table

NOT_MEASURED = "not measured"
VERDICT_LABELS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_MEASURED)


@dataclass(frozen=True)
class Threshold:
    """A number a verdict rule compares against, the range of values one could defend, and why this value."""

    value: float
    low: float
    high: float
    unit: str
    reason: str

    def __post_init__(self) -> None:
        if not self.low <= self.value <= self.high:
            raise ValueError(f"a threshold's value must lie in its range, got {self.value} not in "
                             f"[{self.low}, {self.high}]")


THRESHOLDS: dict[str, Threshold] = {
    "confidence": Threshold(0.02, 0.01, 0.05, "mean judge confidence (0-1)",
                            "0.02 is as if 2 images in 100 went from a sure digit to a guess"),
    "fld_ratio": Threshold(math.log(1.2), math.log(1.1), math.log(1.5), "log FLD ratio",
                           "two sample sets of one generator differ by 10-20 % in FLD (notebook 06, section 7)"),
    "auroc": Threshold(0.2, 0.1, 0.3, "AUROC above chance (0.5)",
                       "an AUROC of 0.7 is the usual minimum for a useful detector"),
    "outlier_shift": Threshold(0.03, 0.01, 0.1, "relative change of clean test MSE",
                               "3 % of test MSE is below what the eye sees in a reconstruction"),
    "denoise_db": Threshold(1.0, 0.5, 2.0, "dB of PSNR", "about the smallest PSNR gain visible side by side"),
    "overfit_nats": Threshold(1.0, 0.5, 3.0, "nats of test cross-entropy per image",
                              "1 nat is about 1 % of a test digit's cross-entropy (about 100 nats)"),
    "cost_ratio": Threshold(math.log(1.25), math.log(1.1), math.log(1.5), "log time ratio",
                            "a quarter more training time is the least anyone would call 'slower'"),
    "instability": Threshold(0.05, 0.02, 0.1, "relative spread of final test MSE across seeds",
                             "a 5 % seed-to-seed spread is what 'unstable' would have to exceed to matter"),
    "collapse": Threshold(0.01, 0.001, 0.1, "variance of a unit's encoder mean over images",
                          "Burda et al. (2016) call a unit active above 0.01"),
    "gaussian_ks": Threshold(0.1, 0.05, 0.2, "Kolmogorov-Smirnov distance to N(0, 1)",
                             "at 0.1 a histogram visibly departs from the bell curve"),
    "visible_db": Threshold(1.0, 0.5, 2.0, "dB of PSNR", "about the smallest PSNR difference visible side by side"),
    "probe": Threshold(0.02, 0.01, 0.05, "linear-probe accuracy",
                       "2 points of accuracy is about the spread between training seeds"),
    "augmentation": Threshold(0.01, 0.005, 0.03, "classifier test accuracy",
                              "one point of accuracy is the least gain worth the extra training"),
}
"""Every threshold a rule uses, by name: value, plausible range, unit and reason, declared once."""


@dataclass(frozen=True)
class Claim:
    """One claim of the article: its words, the measure (positive = in the claim's favour), the interval on it,
    and the rule that turns a threshold value into a verdict."""

    key: str
    article: str
    measure: str
    interval: Interval | None
    threshold: str | None
    rule: Callable[[float], str] | None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.rule is None or self.threshold is None:
            return NOT_MEASURED
        return self.rule(THRESHOLDS[self.threshold].value)

    def sensitivity(self) -> dict[str, str]:
        """The verdict at the low end, the value and the high end of the threshold's plausible range."""
        if self.rule is None or self.threshold is None:
            return {}
        t = THRESHOLDS[self.threshold]
        return {"low": self.rule(t.low), "value": self.rule(t.value), "high": self.rule(t.high)}

    @property
    def flips(self) -> bool:
        return len(set(self.sensitivity().values())) > 1


def directional(key: str, article: str, measure: str, interval: Interval, threshold: str, note: str = "") -> Claim:
    """A claim "A beats B": holds when the interval excludes 0 and the estimate reaches the threshold."""
    return Claim(key, article, measure, interval, threshold, lambda m: directional_verdict(interval, m), note)


def equivalence(key: str, article: str, measure: str, interval: Interval, threshold: str, note: str = "") -> Claim:
    """A claim "A and B are the same": holds when the whole interval lies within +-threshold."""
    return Claim(key, article, measure, interval, threshold, lambda m: equivalence_verdict(interval, m), note)


def not_measured(key: str, article: str, why: str) -> Claim:
    return Claim(key, article, "-", None, None, None, why)


# ---- Statistics the bootstrap resamples (each takes one seed's tensors, indexed by image) ----
def mean_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """mean(a - b) over paired values (NaN pairs left out)."""
    return (a - b).double().nanmean().item()


def relative_shift_difference(ae_clean: torch.Tensor, ae_shifted: torch.Tensor, vae_clean: torch.Tensor,
                              vae_shifted: torch.Tensor) -> float:
    """How much more the AE's mean error moved than the VAE's, each relative to its clean mean."""
    return (ae_shifted.mean() / ae_clean.mean() - vae_shifted.mean() / vae_clean.mean()).item()


def fld_log_ratio(reference: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """log FLD(a) - log FLD(b), both to the fixed ``reference`` features: positive when b is closer."""
    def statistic(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
        return math.log(frechet_distance(features_a, reference)) - math.log(frechet_distance(features_b, reference))

    return statistic


# ---- The summary ----
def summary_table(claims: list[Claim], markdown: bool = False) -> str:
    """Claim by claim: the article's words, the measure with its 95 % interval, the threshold, the verdict and
    whether the verdict flips within the threshold's plausible range."""
    rows = []
    for c in claims:
        t = THRESHOLDS.get(c.threshold) if c.threshold else None
        rows.append({
            "claim": c.key, "article": c.article,
            "measured": f"{c.measure}: {c.interval}" if c.interval else c.note,
            "threshold": f"{t.value:.3g} ({t.low:.3g}-{t.high:.3g})" if t else "-",
            "verdict": c.verdict,
            "stable": "-" if not t else ("flips: " + " / ".join(c.sensitivity().values()) if c.flips else "stable"),
        })
    return table(rows, [("claim", "claim", str), ("article", "the article says", str),
                        ("measured", "measured: estimate [95 % interval]", str),
                        ("threshold", "threshold (plausible range)", str), ("verdict", "verdict", str),
                        ("stable", "within the range", str)], markdown=markdown)


def thresholds_table(markdown: bool = False) -> str:
    rows = [{"name": name, "value": f"{t.value:.3g}", "range": f"{t.low:.3g}-{t.high:.3g}", "unit": t.unit,
             "reason": t.reason} for name, t in THRESHOLDS.items()]
    return table(rows, [("name", "threshold", str), ("value", "value", str), ("range", "plausible range", str),
                        ("unit", "unit", str), ("reason", "why this value", str)], markdown=markdown)
