"""Unit tests of course_lib.experiments.claim_verdicts: notebook 07's verdict rules on made-up numbers."""

from __future__ import annotations

import inspect

import pytest

from course_lib.experiments import claim_verdicts as rules
from course_lib.experiments.claim_verdicts import THRESHOLDS, Threshold


def test_every_threshold_is_described_and_used_by_a_rule():
    source = inspect.getsource(rules)
    for name, threshold in THRESHOLDS.items():
        assert threshold.value > 0 and len(threshold.meaning) > 20, name
        assert f'_limit("{name}")' in source, f"{name} is used by no rule"


def test_rules_read_the_registry_when_called(monkeypatch):
    assert rules.verdict_reconstruction(20.0, 21.5).label == "does not hold"
    monkeypatch.setitem(THRESHOLDS, "visible_psnr_db", Threshold(2.0, "a laxer eye"))
    assert rules.verdict_reconstruction(20.0, 21.5).label == "holds"
    monkeypatch.setitem(THRESHOLDS, "cost_ratio", Threshold(3.0, "a laxer budget"))
    assert "same cost" in rules.verdict_training_cost(10.0, 20.0).reason


def test_verdict_labels_validated():
    with pytest.raises(ValueError):
        rules.Verdict("maybe", "")
    assert str(rules.Verdict("holds", "x")) == "holds: x"


def test_compare_margins():
    assert rules.compare(0.9, 0.8, True, 0.05) == 1
    assert rules.compare(0.82, 0.8, True, 0.05) == 0
    assert rules.compare(0.7, 0.8, True, 0.05) == -1
    assert rules.compare(0.7, 0.8, False, 0.05) == 1
    assert rules.compare(10.0, 20.0, False, 0.2, relative=True) == 1
    assert rules.compare(18.0, 20.0, False, 0.2, relative=True) == 0  # within 20 % of 20
    assert rules.compare(25.0, 20.0, False, 0.2, relative=True) == -1
    with pytest.raises(ValueError):
        rules.compare(float("nan"), 1.0)


def test_verdict_latent_space():
    assert rules.verdict_latent_space(0.5, 0.9, 0.4, 0.8, 0.5, 0.2).label == "holds"
    assert rules.verdict_latent_space(0.9, 0.9, 0.8, 0.8, 0.2, 0.2).label == "does not hold"
    mixed = rules.verdict_latent_space(0.5, 0.9, 0.8, 0.8, 0.2, 0.2)
    assert mixed.label == "depends" and "ahead on confidence along paths" in mixed.reason
    # a max step 5 % smaller is within the 10 % smoothness margin
    assert "not on path smoothness" in rules.verdict_latent_space(0.5, 0.9, 0.4, 0.8, 0.20, 0.19).reason


def test_verdict_generation():
    assert rules.verdict_generation(100.0, 20.0, 60.0).label == "holds"
    assert rules.verdict_generation(100.0, 20.0, 21.0).label == "depends"
    assert rules.verdict_generation(100.0, 20.0, 10.0).label == "depends"
    assert rules.verdict_generation(20.0, 19.0, 10.0).label == "does not hold"


def test_verdict_anomaly():
    assert rules.verdict_anomaly(0.80, 0.90).label == "holds"
    assert "better than" in rules.verdict_anomaly(0.80, 0.90).reason
    assert "about as good as" in rules.verdict_anomaly(0.90, 0.91).reason
    assert "worse than" in rules.verdict_anomaly(0.95, 0.80).reason
    assert rules.verdict_anomaly(0.90, 0.60).label == "does not hold"
    assert "neither" in rules.verdict_anomaly(0.60, 0.60).reason


def test_verdict_outliers():
    assert rules.verdict_outliers(0.20, 0.02).label == "holds"
    assert rules.verdict_outliers(0.02, 0.03).label == "does not hold"
    assert "no clear difference" in rules.verdict_outliers(0.02, 0.03).reason
    assert "VAE moved more" in rules.verdict_outliers(0.0, 0.2).reason


def test_verdict_denoising():
    assert rules.verdict_denoising(12.0, 16.0, 15.0).label == "holds"
    assert "VAE too" in rules.verdict_denoising(12.0, 16.0, 15.0).reason
    assert "VAE does not" in rules.verdict_denoising(12.0, 16.0, 12.5).reason
    assert rules.verdict_denoising(12.0, 12.5, 16.0).label == "does not hold"


def test_verdict_overfitting():
    assert rules.verdict_overfitting(0.5, 0.6, 0.1).label == "holds"
    assert rules.verdict_overfitting(0.1, 0.1, 0.3).label == "does not hold"
    assert rules.verdict_overfitting(0.1, 0.6, 0.1).label == "depends"


def test_verdict_training_cost():
    assert rules.verdict_training_cost(10.0, 20.0).label == "holds"
    assert rules.verdict_training_cost(10.0, 12.5).label == "holds"  # exactly the cost ratio
    assert "same cost" in rules.verdict_training_cost(10.0, 11.0).reason
    assert "cheaper" in rules.verdict_training_cost(10.0, 5.0).reason


def test_verdict_structure_and_reconstruction():
    assert rules.verdict_structure(0.80, 0.90, 0.30, 0.10).label == "holds"
    assert rules.verdict_structure(0.90, 0.90, 0.10, 0.10).label == "does not hold"
    assert rules.verdict_structure(0.80, 0.90, 0.10, 0.30).label == "depends"
    assert rules.verdict_reconstruction(20.0, 20.5).label == "holds"
    bad = rules.verdict_reconstruction(22.0, 18.0)
    assert bad.label == "does not hold" and "AE is 4.0 dB better" in bad.reason
    assert "VAE is 4.0 dB better" in rules.verdict_reconstruction(18.0, 22.0).reason


def test_compare_at_the_margin_is_a_tie():
    assert rules.compare(1.5, 1.0, True, 0.5) == 0 and rules.compare(0.5, 1.0, True, 0.5) == 0
    assert rules.compare(1.5001, 1.0, True, 0.5) == 1 and rules.compare(0.4999, 1.0, True, 0.5) == -1
    assert rules.compare(-12.0, -10.0, True, 0.1, relative=True) == -1  # the margin is 10 % of |other| = 1
    assert rules.compare(-10.5, -10.0, True, 0.1, relative=True) == 0
    assert rules.compare(1.0, 1.0) == 0 and rules.compare(1.0, 0.0) == 1 and rules.compare(0.0, 1.0) == -1
    with pytest.raises(ValueError, match="cannot compare non-finite values 1.0 and inf"):
        rules.compare(1.0, float("inf"))


def test_verdict_reasons_say_who_is_ahead_on_what():
    assert str(rules.verdict_latent_space(0.5, 0.9, 0.4, 0.8, 0.5, 0.2)) == (
        "holds: the VAE is ahead on every measure (confidence along paths, confidence at random points, "
        "path smoothness)")
    assert str(rules.verdict_latent_space(0.9, 0.9, 0.8, 0.8, 0.2, 0.2)) == (
        "does not hold: the VAE is not ahead on any measure (confidence along paths, confidence at random points, "
        "path smoothness)")
    assert str(rules.verdict_latent_space(0.5, 0.9, 0.8, 0.8, 0.2, 0.2)) == (
        "depends: on the measure: the VAE is ahead on confidence along paths, not on confidence at random points, "
        "path smoothness")
    # the random-point confidence and the smoothness each decide their own measure
    assert rules.verdict_latent_space(0.9, 0.9, 0.4, 0.8, 0.2, 0.2).reason.endswith(
        "ahead on confidence at random points, not on confidence along paths, path smoothness")
    assert rules.verdict_latent_space(0.9, 0.9, 0.8, 0.8, 0.2, 0.1).reason.endswith(
        "ahead on path smoothness, not on confidence along paths, confidence at random points")
    assert str(rules.verdict_overfitting(0.5, 0.6, 0.1)) == (
        "holds: the VAE (beta = 1) is ahead on every measure (gap vs beta = 0, gap vs AE)")
    assert rules.verdict_overfitting(0.5, 0.1, 0.1).reason == (
        "on the measure: the VAE (beta = 1) is ahead on gap vs AE, not on gap vs beta = 0")
    assert rules.verdict_structure(0.9, 0.9, 0.3, 0.1).reason == (
        "on the measure: the VAE is ahead on decorrelated units, not on linear-probe accuracy")


def test_verdict_generation_reasons_and_margins():
    assert str(rules.verdict_generation(100.0, 20.0, 60.0)) == (
        "holds: VAE prior FLD 20 beats the AE from N(0, I) (100) and from a fitted Gaussian (60)")
    assert str(rules.verdict_generation(100.0, 20.0, 21.0)) == (
        "depends: on how the AE is sampled: from N(0, I) it fails (FLD 100), from a Gaussian fitted to its codes "
        "it matches the VAE (FLD 21 vs 20)")
    assert str(rules.verdict_generation(20.0, 19.0, 10.0)) == (
        "does not hold: N(0, I) samples: VAE FLD 19 is not clearly below the AE's 20")
    assert rules.verdict_generation(100.0, 80.0, 1000.0).label == "does not hold"  # 20 % better is within the margin
    assert rules.verdict_generation(100.0, 79.0, 1000.0).label == "holds"
    assert rules.verdict_generation(100.0, 50.0, 60.5).label == "holds"  # fitted AE over 20 % worse: a clear loss
    assert rules.verdict_generation(100.0, 50.0, 60.0).label == "depends"  # exactly 20 % worse: a tie


def test_verdict_anomaly_reasons():
    assert str(rules.verdict_anomaly(0.80, 0.90)) == "holds: VAE AUROC 0.90, better than the AE's 0.80"
    assert str(rules.verdict_anomaly(0.90, 0.60)) == (
        "does not hold: the VAE's -ELBO separates the unseen digit poorly (AUROC 0.60 < 0.7); the AE's "
        "reconstruction error does (0.90)")
    assert rules.verdict_anomaly(0.60, 0.60).reason.endswith("< 0.7); neither does the AE's (0.60)")
    assert rules.verdict_anomaly(0.70, 0.70).label == "holds"  # reaching the threshold is useful
    assert rules.verdict_anomaly(0.70, 0.6999).reason.endswith("the AE's reconstruction error does (0.70)")
    assert "about as good as" in rules.verdict_anomaly(0.80, 0.83).reason  # within the 0.03 margin


def test_verdict_outliers_denoising_and_cost_reasons():
    assert str(rules.verdict_outliers(0.20, 0.02)) == "holds: test MSE moved +20.0% (AE) vs +2.0% (VAE)"
    assert str(rules.verdict_outliers(0.0, 0.2)) == (
        "does not hold: test MSE moved +0.0% (AE) vs +20.0% (VAE); the VAE moved more")
    assert rules.verdict_outliers(0.04, 0.02).label == "does not hold"  # within the 3-point margin
    assert "no clear difference" in rules.verdict_outliers(0.04, 0.02).reason
    assert str(rules.verdict_denoising(12.0, 16.0, 15.0)) == (
        "holds: AE +4.0 dB, VAE +3.0 dB over the noisy input (the VAE too)")
    assert str(rules.verdict_denoising(12.0, 12.5, 16.0)) == (
        "does not hold: AE +0.5 dB, VAE +4.0 dB over the noisy input")
    assert rules.verdict_denoising(12.0, 13.0, 13.0).reason.endswith("(the VAE too)")  # a gain of exactly 1 dB
    assert str(rules.verdict_training_cost(10.0, 20.0)) == (
        "holds: the VAE needs 2.00x the AE's time to the target test MSE")
    assert str(rules.verdict_training_cost(10.0, 8.0)) == (
        "does not hold: the VAE needs 0.80x the AE's time to the target test MSE (the VAE is cheaper)")
    assert rules.verdict_training_cost(10.0, 8.1).reason.endswith("(about the same cost)")


def test_verdict_reconstruction_reasons():
    assert str(rules.verdict_reconstruction(20.0, 20.5)) == "holds: mean PSNR differs by 0.50 dB (< 1.0 dB)"
    assert rules.verdict_reconstruction(20.0, 21.0).label == "does not hold"  # a difference of exactly 1 dB shows
    assert str(rules.verdict_reconstruction(22.0, 18.0)) == (
        "does not hold: the AE is 4.0 dB better (PSNR 22.0 AE vs 18.0 VAE)")


@pytest.mark.parametrize(
    "args, ahead",
    [
        ((0.50, 0.54, 0.9, 0.9, 0.2, 0.2), []),  # paths: +0.04 is within the 0.05 confidence margin
        ((0.50, 0.56, 0.9, 0.9, 0.2, 0.2), ["confidence along paths"]),
        ((0.9, 0.9, 0.50, 0.54, 0.2, 0.2), []),  # random points: within the margin
        ((0.9, 0.9, 0.50, 0.56, 0.2, 0.2), ["confidence at random points"]),
        ((0.9, 0.9, 0.9, 0.9, 0.20, 0.185), []),  # smoothness: 7.5 % smaller is within the 10 % margin
        ((0.9, 0.9, 0.9, 0.9, 0.20, 0.17), ["path smoothness"]),
        ((0.9, 0.9, 0.9, 0.9, 0.20, 0.25), []),  # a larger max step is worse, not better
    ],
)
def test_latent_space_measures_each_have_their_margin(args, ahead):
    verdict = rules.verdict_latent_space(*args)
    assert verdict.label == ("depends" if ahead else "does not hold")
    if ahead:
        assert verdict.reason.startswith(f"on the measure: the VAE is ahead on {ahead[0]}, not on ")


def test_combined_reasons_list_every_measure_on_each_side():
    assert rules.verdict_latent_space(0.5, 0.9, 0.4, 0.8, 0.2, 0.2).reason == (
        "on the measure: the VAE is ahead on confidence along paths, confidence at random points, not on path "
        "smoothness")


@pytest.mark.parametrize(
    "args, label",
    [
        ((0.5, 0.6, 0.46), "depends"),  # 0.04 smaller than the beta = 0 gap: within the 0.05 margin, so not ahead
        ((0.5, 0.6, 0.44), "holds"),
        ((0.49, 0.9, 0.45), "depends"),  # 0.04 smaller than the AE's gap: within the margin
        ((0.9, 0.9, 0.95), "does not hold"),  # a larger gap is worse
    ],
)
def test_overfitting_gaps_each_have_their_margin(args, label):
    assert rules.verdict_overfitting(*args).label == label


@pytest.mark.parametrize(
    "args, label",
    [
        ((0.80, 0.815, 0.1, 0.1), "does not hold"),  # probe +0.015 is within the 0.02 margin
        ((0.80, 0.83, 0.1, 0.1), "depends"),
        ((0.8, 0.8, 0.30, 0.285), "does not hold"),  # correlation 0.015 lower: within the 0.02 margin
        ((0.8, 0.8, 0.30, 0.27), "depends"),
        ((0.8, 0.8, 0.30, 0.35), "does not hold"),  # more correlated is worse
    ],
)
def test_structure_measures_each_have_their_margin(args, label):
    assert rules.verdict_structure(*args).label == label


def test_generation_lower_fld_is_better_on_both_comparisons():
    assert rules.verdict_generation(20.0, 100.0, 10.0).label == "does not hold"  # the VAE's FLD is higher
    assert rules.verdict_generation(100.0, 20.0, 200.0).label == "holds"  # the fitted AE is far worse


def test_exact_reasons_of_the_remaining_cases():
    assert str(rules.verdict_anomaly(0.80, 0.82)) == "holds: VAE AUROC 0.82, about as good as the AE's 0.80"
    assert str(rules.verdict_anomaly(0.95, 0.80)) == "holds: VAE AUROC 0.80, worse than the AE's 0.95"
    assert str(rules.verdict_denoising(12.0, 16.0, 12.5)) == (
        "holds: AE +4.0 dB, VAE +0.5 dB over the noisy input (the VAE does not)")
    assert str(rules.verdict_outliers(0.04, 0.02)) == (
        "does not hold: test MSE moved +4.0% (AE) vs +2.0% (VAE); no clear difference")
    assert str(rules.verdict_reconstruction(21.0, 20.0)) == (
        "does not hold: the AE is 1.0 dB better (PSNR 21.0 AE vs 20.0 VAE)")


def test_the_beta_0_gap_has_its_own_margin_and_bad_labels_are_named():
    # 0.04 below the beta = 0 gap is within the 0.05 margin (so not ahead there); far below the AE's gap
    assert rules.verdict_overfitting(0.9, 0.50, 0.46).label == "depends"
    with pytest.raises(ValueError, match="^unknown verdict 'maybe'; choose one of holds, does not hold, depends$"):
        rules.Verdict("maybe", "")
