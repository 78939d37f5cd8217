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
