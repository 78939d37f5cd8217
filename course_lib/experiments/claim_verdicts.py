"""Notebook 07's verdicts: each claim of the article's AE-vs-VAE table judged by a rule written down before the
results come in.

A rule sees only measured numbers (from :mod:`course_lib.experiments.claims`) and the thresholds of
:data:`THRESHOLDS`, and returns a :class:`Verdict`: "holds", "does not hold" or "depends" (with what on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOLDS, DOES_NOT_HOLD, DEPENDS = "holds", "does not hold", "depends"
VERDICT_LABELS = (HOLDS, DOES_NOT_HOLD, DEPENDS)


@dataclass(frozen=True)
class Threshold:
    """A number that a verdict rule compares against, and what it means."""

    value: float
    meaning: str


THRESHOLDS: dict[str, Threshold] = {
    "confidence_margin": Threshold(0.05, "classifier confidences (max softmax) closer than this count as equal"),
    "smoothness_margin": Threshold(0.10, "max-step ratios within this fraction of each other count as equally smooth"),
    "fld_margin": Threshold(0.20, "FLDs within this fraction of each other count as equal"),
    "auroc_useful": Threshold(0.70, "an anomaly score with an AUROC below this is not a useful detector"),
    "auroc_margin": Threshold(0.03, "AUROCs closer than this count as equal"),
    "outlier_shift_margin": Threshold(0.03, "relative test-MSE shifts closer than this count as equal"),
    "denoise_gain_db": Threshold(1.0, "dB by which a model's output must beat its noisy input to count as denoising"),
    "gap_margin": Threshold(0.05, "relative train/test gaps closer than this count as equal"),
    "cost_ratio": Threshold(1.25, "training-time ratio from which one model counts as costlier"),
    "probe_margin": Threshold(0.02, "linear-probe accuracies closer than this count as equal"),
    "correlation_margin": Threshold(0.02, "mean |correlations| between latent units closer than this count as equal"),
    "visible_psnr_db": Threshold(1.0, "mean PSNRs (dB) closer than this count as no visible difference"),
}
"""Every threshold the verdict rules use, by name; a rule reads ``THRESHOLDS[name].value`` when it is called."""


def _limit(name: str) -> float:
    return THRESHOLDS[name].value


@dataclass(frozen=True)
class Verdict:
    """A verdict on one claim: ``label`` is one of :data:`VERDICT_LABELS`, ``reason`` says why."""

    label: str
    reason: str

    def __post_init__(self) -> None:
        if self.label not in VERDICT_LABELS:
            raise ValueError(f"unknown verdict {self.label!r}; choose one of {', '.join(VERDICT_LABELS)}")

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


def compare(favoured: float, other: float, higher_is_better: bool = True, margin: float = 0.0,
            relative: bool = False) -> int:
    """+1 if ``favoured`` beats ``other`` by more than ``margin``, -1 if it loses by more, 0 if within.

    With ``relative=True`` the margin is a fraction of ``|other|``.
    """
    if not (math.isfinite(favoured) and math.isfinite(other)):
        raise ValueError(f"cannot compare non-finite values {favoured} and {other}")
    diff = favoured - other if higher_is_better else other - favoured
    limit = margin * abs(other) if relative else margin
    return 1 if diff > limit else -1 if diff < -limit else 0


def _combine(outcomes: dict[str, int], who: str = "the VAE") -> Verdict:
    """All measures favour the claim: holds; none does: does not hold; a mix: depends on the measure."""
    ahead = [name for name, c in outcomes.items() if c > 0]
    rest = [name for name, c in outcomes.items() if c <= 0]
    if not rest:
        return Verdict(HOLDS, f"{who} is ahead on every measure ({', '.join(ahead)})")
    if not ahead:
        return Verdict(DOES_NOT_HOLD, f"{who} is not ahead on any measure ({', '.join(rest)})")
    return Verdict(DEPENDS, f"on the measure: {who} is ahead on {', '.join(ahead)}, not on {', '.join(rest)}")


def verdict_latent_space(
    interp_conf_ae: float, interp_conf_vae: float, random_conf_ae: float, random_conf_vae: float,
    max_step_ae: float, max_step_vae: float,
) -> Verdict:
    """Claim: AE codes are isolated points with holes, the VAE's latent space is continuous.

    Holds when the VAE is ahead on all three: classifier confidence along interpolation paths and at random
    points of the code box (``confidence_margin``), and a smaller largest step along the paths
    (``smoothness_margin``).
    """
    confidence, smoothness = _limit("confidence_margin"), _limit("smoothness_margin")
    return _combine(
        {
            "confidence along paths": compare(interp_conf_vae, interp_conf_ae, True, confidence),
            "confidence at random points": compare(random_conf_vae, random_conf_ae, True, confidence),
            "path smoothness": compare(max_step_vae, max_step_ae, False, smoothness, relative=True),
        }
    )


def verdict_generation(fld_ae_prior: float, fld_vae_prior: float, fld_ae_fitted: float) -> Verdict:
    """Claim: generating new samples is hard with an AE and easy with a VAE (sample the prior N(0, I)).

    Does not hold unless the VAE's prior samples are clearly closer to real digits (lower FLD, ``fld_margin``)
    than the AE's N(0, I) samples. If they are, but a Gaussian fitted to the AE's codes does about as well as
    the VAE (or better), it depends on how the AE is sampled.
    """
    margin = _limit("fld_margin")
    if compare(fld_vae_prior, fld_ae_prior, False, margin, relative=True) <= 0:
        return Verdict(DOES_NOT_HOLD, f"N(0, I) samples: VAE FLD {fld_vae_prior:.3g} is not clearly below "
                                      f"the AE's {fld_ae_prior:.3g}")
    if compare(fld_ae_fitted, fld_vae_prior, False, margin, relative=True) >= 0:
        return Verdict(DEPENDS, f"on how the AE is sampled: from N(0, I) it fails (FLD {fld_ae_prior:.3g}), "
                                f"from a Gaussian fitted to its codes it matches the VAE (FLD "
                                f"{fld_ae_fitted:.3g} vs {fld_vae_prior:.3g})")
    return Verdict(HOLDS, f"VAE prior FLD {fld_vae_prior:.3g} beats the AE from N(0, I) ({fld_ae_prior:.3g}) "
                          f"and from a fitted Gaussian ({fld_ae_fitted:.3g})")


def verdict_anomaly(auroc_ae: float, auroc_vae: float) -> Verdict:
    """Claim: anomaly detection is an application of the VAE (and, in the article's text, of the AE).

    Holds when the VAE's negative ELBO reaches ``auroc_useful``; the reason says how the AE's reconstruction
    error compares (``auroc_margin``).
    """
    useful = _limit("auroc_useful")
    if auroc_vae < useful:
        other = "the AE's reconstruction error does" if auroc_ae >= useful else "neither does the AE's"
        return Verdict(DOES_NOT_HOLD, f"the VAE's -ELBO separates the unseen digit poorly (AUROC "
                                      f"{auroc_vae:.2f} < {useful}); {other} ({auroc_ae:.2f})")
    c = compare(auroc_vae, auroc_ae, True, _limit("auroc_margin"))
    how = {1: "better than", 0: "about as good as", -1: "worse than"}[c]
    return Verdict(HOLDS, f"VAE AUROC {auroc_vae:.2f}, {how} the AE's {auroc_ae:.2f}")


def verdict_outliers(shift_ae: float, shift_vae: float) -> Verdict:
    """Claim: the AE is more sensitive to outliers in the training data than the VAE.

    ``shift_*`` is the relative change of the clean test MSE caused by the corrupted training images.
    Holds when the AE's shift exceeds the VAE's by more than ``outlier_shift_margin``.
    """
    c = compare(shift_ae, shift_vae, True, _limit("outlier_shift_margin"))
    text = f"test MSE moved {shift_ae:+.1%} (AE) vs {shift_vae:+.1%} (VAE)"
    if c > 0:
        return Verdict(HOLDS, text)
    return Verdict(DOES_NOT_HOLD, text + ("; the VAE moved more" if c < 0 else "; no clear difference"))


def verdict_denoising(psnr_noisy: float, psnr_ae: float, psnr_vae: float) -> Verdict:
    """Claim: denoising is an application of the AE.

    Holds when the AE's output beats the noisy input's PSNR against the clean images by ``denoise_gain_db``;
    the reason says whether the VAE denoises too.
    """
    gain = _limit("denoise_gain_db")
    gain_ae, gain_vae = psnr_ae - psnr_noisy, psnr_vae - psnr_noisy
    vae_too = "the VAE too" if gain_vae >= gain else "the VAE does not"
    text = f"AE {gain_ae:+.1f} dB, VAE {gain_vae:+.1f} dB over the noisy input"
    if gain_ae >= gain:
        return Verdict(HOLDS, f"{text} ({vae_too})")
    return Verdict(DOES_NOT_HOLD, text)


def verdict_overfitting(gap_ae: float, gap_vae_beta0: float, gap_vae_beta1: float) -> Verdict:
    """Claim: the VAE is regularised (by its KL term) and overfits less than the AE.

    Compares relative train/test gaps at the end of training on a small subset: the VAE at beta = 1 against
    the same VAE at beta = 0 (is it the KL term?) and against the AE; better means smaller by more than
    ``gap_margin``.
    """
    margin = _limit("gap_margin")
    return _combine(
        {
            "gap vs beta = 0": compare(gap_vae_beta1, gap_vae_beta0, False, margin),
            "gap vs AE": compare(gap_vae_beta1, gap_ae, False, margin),
        },
        who="the VAE (beta = 1)",
    )


def verdict_training_cost(seconds_to_target_ae: float, seconds_to_target_vae: float) -> Verdict:
    """Claim: the VAE's training is more involved (sampling, KL term) than the AE's.

    Holds when the VAE needs at least ``cost_ratio`` times the AE's training time to reach the common test
    MSE; if the AE needs that much more, the opposite is true; otherwise they cost about the same.
    """
    costlier = _limit("cost_ratio")
    ratio = seconds_to_target_vae / seconds_to_target_ae
    text = f"the VAE needs {ratio:.2f}x the AE's time to the target test MSE"
    if ratio >= costlier:
        return Verdict(HOLDS, text)
    if ratio <= 1 / costlier:
        return Verdict(DOES_NOT_HOLD, text + " (the VAE is cheaper)")
    return Verdict(DOES_NOT_HOLD, text + " (about the same cost)")


def verdict_structure(probe_ae: float, probe_vae: float, corr_ae: float, corr_vae: float) -> Verdict:
    """Claim: the VAE's latent space is more structured / interpretable.

    Measures: linear-probe digit accuracy (higher, ``probe_margin``) and mean |correlation| between latent
    units (lower, ``correlation_margin``).
    """
    return _combine(
        {
            "linear-probe accuracy": compare(probe_vae, probe_ae, True, _limit("probe_margin")),
            "decorrelated units": compare(corr_vae, corr_ae, False, _limit("correlation_margin")),
        }
    )


def verdict_reconstruction(psnr_ae: float, psnr_vae: float) -> Verdict:
    """Claim (the article's conclusion): trained well, AE and VAE reconstruct with no visible difference.

    Holds when the mean test PSNRs differ by less than ``visible_psnr_db``.
    """
    visible = _limit("visible_psnr_db")
    diff = psnr_ae - psnr_vae
    if abs(diff) < visible:
        return Verdict(HOLDS, f"mean PSNR differs by {abs(diff):.2f} dB (< {visible} dB)")
    better = "AE" if diff > 0 else "VAE"
    return Verdict(DOES_NOT_HOLD, f"the {better} is {abs(diff):.1f} dB better (PSNR {psnr_ae:.1f} AE vs "
                                  f"{psnr_vae:.1f} VAE)")
