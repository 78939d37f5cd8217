"""Unit tests of course_lib.experiments.claim_verdicts: notebook 07's claims, thresholds, statistics and tables,
on made-up intervals and on features with a known Frechet distance."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.compare import Interval, directional_verdict, equivalence_verdict
from course_lib.evaluate import ACTIVE_UNIT_THRESHOLD
from course_lib.experiments import claim_verdicts as rules
from course_lib.experiments.claim_verdicts import THRESHOLDS, Claim, Threshold
from course_lib.metrics import frechet_distance

ENDS = ("low", "value", "high")


def cells(markdown: str) -> list[list[str]]:
    """The rows of a Markdown table as lists of cells, the header first (the |---| line left out)."""
    lines = markdown.splitlines()
    assert lines[1].startswith("|---|")
    return [[cell.strip() for cell in line[2:-2].split(" | ")] for line in [lines[0], *lines[2:]]]


# --- thresholds ---------------------------------------------------------------------------------------------


def test_a_threshold_value_must_lie_in_its_range():
    assert Threshold(0.1, 0.1, 0.2, "u", "r").value == 0.1  # either end of the range is allowed
    assert Threshold(0.2, 0.1, 0.2, "u", "r").value == 0.2
    with pytest.raises(ValueError, match=r"a threshold's value must lie in its range, got 0.3 not in \[0.1, 0.2\]"):
        Threshold(0.3, 0.1, 0.2, "u", "r")
    with pytest.raises(ValueError, match=r"got 0.05 not in \[0.1, 0.2\]"):
        Threshold(0.05, 0.1, 0.2, "u", "r")


@pytest.mark.parametrize("name", list(THRESHOLDS))
def test_every_threshold_has_a_range_a_unit_a_reason_and_suits_both_rules(name):
    t = THRESHOLDS[name]
    assert 0 < t.low <= t.value <= t.high, name
    assert t.unit.strip() and len(t.reason) > 20, name
    for margin in (t.low, t.value, t.high):  # both rules accept every value of the range as a margin
        assert directional_verdict(Interval(0.0, -10.0, 10.0), margin) == "inconclusive"
        assert equivalence_verdict(Interval(0.0, -10.0, 10.0), margin) == "inconclusive"


def test_thresholds_are_the_numbers_their_reasons_give():
    assert THRESHOLDS["collapse"].value == ACTIVE_UNIT_THRESHOLD  # Burda et al.'s 0.01, as evaluate counts units
    assert 0.5 + THRESHOLDS["auroc"].value == pytest.approx(0.7)  # "an AUROC of 0.7 is the usual minimum"
    assert math.exp(THRESHOLDS["cost_ratio"].value) == pytest.approx(1.25)  # "a quarter more training time"
    assert math.exp(THRESHOLDS["fld_ratio"].low) == pytest.approx(1.1)  # "differ by up to about 10 %"
    assert THRESHOLDS["outlier_shift"].value == 0.03 and THRESHOLDS["instability"].value == 0.05  # "3 %", "5 %"


# --- claims and their verdicts ------------------------------------------------------------------------------


def test_a_directional_claim_takes_the_directional_verdict_at_the_threshold():
    interval = Interval(0.25, 0.05, 0.4)
    claim = rules.directional("anomaly", "the VAE detects anomalies better", "AUROC difference", interval, "auroc",
                              note="held-out digits")
    assert (claim.key, claim.article, claim.measure, claim.interval, claim.threshold, claim.note) == (
        "anomaly", "the VAE detects anomalies better", "AUROC difference", interval, "auroc", "held-out digits")
    # auroc: 0.2 (0.1-0.3). The interval excludes 0 and 0.25 reaches 0.1 and 0.2; at 0.3 the estimate falls short
    # while the interval reaches past it.
    assert claim.verdict == "holds" == directional_verdict(interval, 0.2)
    assert list(claim.sensitivity().items()) == [("low", "holds"), ("value", "holds"), ("high", "inconclusive")]
    t = THRESHOLDS["auroc"]
    assert claim.sensitivity() == {end: directional_verdict(interval, getattr(t, end)) for end in ENDS}
    assert claim.flips is True
    stable = rules.directional("a", "b", "c", Interval(0.5, 0.4, 0.6), "auroc")
    assert stable.sensitivity() == dict.fromkeys(ENDS, "holds") and stable.flips is False and stable.note == ""
    against = rules.directional("a", "b", "c", Interval(-0.3, -0.5, -0.1), "auroc")
    assert against.verdict == "does not hold" and against.flips is False


def test_an_equivalence_claim_takes_the_equivalence_verdict_at_the_threshold():
    interval = Interval(0.2, -0.3, 0.7)
    claim = rules.equivalence("reconstruction", "both reconstruct alike", "PSNR difference (dB)", interval,
                              "visible_db", note="z = mu")
    assert (claim.key, claim.article, claim.measure, claim.interval, claim.threshold, claim.note) == (
        "reconstruction", "both reconstruct alike", "PSNR difference (dB)", interval, "visible_db", "z = mu")
    # visible_db: 1 (0.5-2). [-0.3, 0.7] lies within +-1 and +-2, and straddles +0.5.
    assert claim.verdict == "holds" == equivalence_verdict(interval, 1.0)
    assert list(claim.sensitivity().items()) == [("low", "inconclusive"), ("value", "holds"), ("high", "holds")]
    t = THRESHOLDS["visible_db"]
    assert claim.sensitivity() == {end: equivalence_verdict(interval, getattr(t, end)) for end in ENDS}
    assert claim.flips is True
    # the same interval read as "A beats B by 1 dB" does not hold: the rules differ
    assert rules.directional("r", "a", "m", interval, "visible_db").verdict == "does not hold"
    apart = rules.equivalence("r", "a", "m", Interval(3.0, 2.5, 3.5), "visible_db")
    assert apart.sensitivity() == dict.fromkeys(ENDS, "does not hold") and apart.flips is False
    assert apart.note == ""


def test_verdicts_read_the_threshold_when_asked(monkeypatch):
    claim = rules.equivalence("r", "a", "m", Interval(0.2, -0.3, 0.7), "visible_db")
    monkeypatch.setitem(THRESHOLDS, "visible_db", Threshold(0.5, 0.5, 0.5, "dB", "a stricter eye"))
    assert claim.verdict == "inconclusive"
    assert claim.sensitivity() == dict.fromkeys(ENDS, "inconclusive") and claim.flips is False


def test_a_claim_not_measured():
    claim = rules.not_measured("speed", "VAEs sample faster", "no sampler to time in this course")
    assert (claim.key, claim.article, claim.measure, claim.interval, claim.threshold, claim.rule, claim.note) == (
        "speed", "VAEs sample faster", "-", None, None, None, "no sampler to time in this course")
    assert claim.verdict == "not measured" == rules.NOT_MEASURED
    assert claim.sensitivity() == {} and claim.flips is False


def test_a_claim_needs_both_a_rule_and_a_threshold_for_a_verdict():
    def always(margin: float) -> str:
        return "holds"

    no_threshold = Claim("k", "a", "m", Interval(1.0, 0.5, 1.5), None, always)
    no_rule = Claim("k", "a", "m", Interval(1.0, 0.5, 1.5), "auroc", None)
    for claim in (no_threshold, no_rule):
        assert claim.verdict == "not measured" and claim.sensitivity() == {} and claim.flips is False
    both = Claim("k", "a", "m", Interval(1.0, 0.5, 1.5), "auroc", always)
    assert both.verdict == "holds" and both.sensitivity() == dict.fromkeys(ENDS, "holds")


def test_verdict_labels():
    assert rules.VERDICT_LABELS == ("holds", "does not hold", "inconclusive", "not measured")


# --- statistics the bootstrap resamples ---------------------------------------------------------------------


def test_mean_difference_leaves_out_nan_pairs():
    a = torch.tensor([1.0, float("nan"), 3.0, 4.0])
    b = torch.tensor([0.5, 2.0, float("nan"), 1.0])
    assert rules.mean_difference(a, b) == pytest.approx((0.5 + 3.0) / 2)  # pairs 1 and 4 only
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(100, generator=generator), torch.rand(100, generator=generator)
    value = rules.mean_difference(x, y)
    assert isinstance(value, float)
    assert value == pytest.approx(x.double().numpy().mean() - y.double().numpy().mean(), abs=1e-7)
    assert rules.mean_difference(y, x) == pytest.approx(-value)


def test_relative_shift_difference_compares_relative_changes():
    # AE: mean 2 -> 3 (x 1.5); VAE: mean 4 -> 5 (x 1.25)
    ae_clean, ae_shifted = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.0])
    vae_clean, vae_shifted = torch.tensor([4.0, 4.0]), torch.tensor([5.0, 5.0])
    assert rules.relative_shift_difference(ae_clean, ae_shifted, vae_clean, vae_shifted) == pytest.approx(0.25)
    assert rules.relative_shift_difference(vae_clean, vae_shifted, ae_clean, ae_shifted) == pytest.approx(-0.25)
    # the same relative change is no difference, however different the absolute ones (+1 vs +2)
    assert rules.relative_shift_difference(ae_clean, ae_shifted, vae_clean, torch.tensor([6.0, 6.0])) == (
        pytest.approx(0.0, abs=1e-7))
    assert isinstance(rules.relative_shift_difference(ae_clean, ae_shifted, vae_clean, vae_shifted), float)


def gaussian_features(d: int, sigma: float, shift: float = 0.0) -> torch.Tensor:
    """2d points +-c sigma e_i, moved by ``shift`` in every coordinate: sample mean exactly ``shift``, sample
    covariance exactly sigma^2 I (c^2 = (2d - 1) / 2)."""
    eye = torch.eye(d, dtype=torch.float64)
    return sigma * math.sqrt((2 * d - 1) / 2) * torch.cat([eye, -eye]) + shift


def test_fld_log_ratio_of_gaussians_with_a_known_frechet_distance():
    d = 6
    reference = gaussian_features(d, 1.0)
    a = gaussian_features(d, 2.0)  # FD to N(0, I): d (2 - 1)^2 = d
    b = gaussian_features(d, 3.0, shift=0.5)  # FD: |0.5|^2 d + d (3 - 1)^2 = 4.25 d
    assert frechet_distance(a, reference) == pytest.approx(d, rel=1e-9)
    assert frechet_distance(b, reference) == pytest.approx(4.25 * d, rel=1e-9)
    statistic = rules.fld_log_ratio(reference)
    assert statistic(a, b) == pytest.approx(math.log(d) - math.log(4.25 * d), rel=1e-9)  # b is farther: negative
    assert statistic(b, a) == pytest.approx(math.log(4.25), rel=1e-9)  # b is farther: positive
    assert statistic(a, a) == pytest.approx(0.0, abs=1e-12)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 3, generator=generator), 1 + torch.randn(200, 3, generator=generator)
    features = torch.randn(200, 3, generator=generator)
    assert rules.fld_log_ratio(features)(x, y) == pytest.approx(
        math.log(frechet_distance(x, features)) - math.log(frechet_distance(y, features)))


# --- tables -------------------------------------------------------------------------------------------------


def example_claims() -> list[Claim]:
    return [
        rules.equivalence("reconstruction", "both reconstruct alike", "PSNR difference (dB)",
                          Interval(0.2, -0.3, 0.7), "visible_db"),
        rules.directional("anomaly", "the VAE detects anomalies better", "AUROC difference",
                          Interval(0.5, 0.4, 0.6), "auroc", note="not shown when there is an interval"),
        rules.not_measured("speed", "VAEs sample faster", "no sampler to time"),
        rules.directional("generation", "the VAE generates better", "log FLD ratio", Interval(0.3, 0.2, 0.4),
                          "fld_ratio"),
    ]


def test_summary_table_shows_each_claims_measure_threshold_verdict_and_stability():
    rows = cells(rules.summary_table(example_claims(), markdown=True))
    assert rows[0] == ["claim", "the article says", "measured: estimate [95 % interval]",
                       "threshold (plausible range)", "verdict", "within the range"]
    assert rows[1:] == [
        ["reconstruction", "both reconstruct alike", "PSNR difference (dB): 0.2 [-0.3, 0.7]", "1 (0.5-2)", "holds",
         "flips: inconclusive / holds / holds"],
        ["anomaly", "the VAE detects anomalies better", "AUROC difference: 0.5 [0.4, 0.6]", "0.2 (0.1-0.3)", "holds",
         "stable"],
        ["speed", "VAEs sample faster", "no sampler to time", "-", "not measured", "-"],
        ["generation", "the VAE generates better", "log FLD ratio: 0.3 [0.2, 0.4]", "0.182 (0.0953-0.405)",
         "holds", "flips: holds / holds / does not hold"],
    ]


def test_summary_table_as_aligned_text():
    text = rules.summary_table(example_claims())
    lines = text.splitlines()
    assert len(lines) == 2 + 4 and not any(line.startswith("|") for line in lines)
    assert lines[0].startswith("claim") and "within the range" in lines[0]
    assert lines[2].startswith("reconstruction") and lines[2].endswith("flips: inconclusive / holds / holds")
    assert lines[3].startswith("anomaly") and lines[3].endswith("stable")
    assert lines[4].startswith("speed") and "no sampler to time" in lines[4] and lines[4].endswith("-")
    assert "not measured" in lines[4]


def test_thresholds_table_lists_every_threshold_with_its_range_unit_and_reason():
    rows = cells(rules.thresholds_table(markdown=True))
    assert rows[0] == ["threshold", "value", "plausible range", "unit", "why this value"]
    assert [row[0] for row in rows[1:]] == list(THRESHOLDS)
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["fld_ratio"][1:3] == ["0.182", "0.0953-0.405"]
    assert by_name["collapse"][1:3] == ["0.01", "0.001-0.1"]
    for name, t in THRESHOLDS.items():
        assert by_name[name][3:] == [t.unit, t.reason]
    text = rules.thresholds_table().splitlines()
    assert len(text) == 2 + len(THRESHOLDS) and text[0].startswith("threshold")
    assert [line.split()[0] for line in text[2:]] == list(THRESHOLDS)
