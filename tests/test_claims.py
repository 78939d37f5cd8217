"""Unit tests of course_lib.claims: the measurements and the verdict rules of notebook 07."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from course_lib import claims
from course_lib.models import ModelConfig, build_model
from course_lib.train import TrainConfig, fit

# --- AUROC and ROC ------------------------------------------------------------------------------------------


def test_auroc_perfect_random_inverted():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    perfect = torch.tensor([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert claims.auroc(perfect, labels) == pytest.approx(1.0)
    assert claims.auroc(-perfect, labels) == pytest.approx(0.0)
    assert claims.auroc(torch.ones(6), labels) == pytest.approx(0.5)  # all tied: chance
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(20_000, generator=generator)
    random_labels = torch.rand(20_000, generator=generator) < 0.3
    assert claims.auroc(scores, random_labels) == pytest.approx(0.5, abs=0.02)


def test_auroc_matches_pairwise_count_with_ties():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.2])
    labels = torch.tensor([0, 0, 1, 1, 1, 0, 1])
    pos = scores[labels.bool()]
    neg = scores[~labels.bool()]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert claims.auroc(scores, labels) == pytest.approx(wins / (len(pos) * len(neg)))


def test_auroc_textbook_example():
    assert claims.auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.75)


def test_auroc_rejects_bad_input():
    with pytest.raises(ValueError, match="positive and one negative"):
        claims.auroc(torch.rand(4), torch.zeros(4))
    with pytest.raises(ValueError, match="length"):
        claims.auroc(torch.rand(4), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="finite"):
        claims.auroc(torch.tensor([0.0, float("nan")]), torch.tensor([0, 1]))


def test_roc_curve_ends_and_area():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    labels = torch.tensor([0, 0, 1, 1])
    fpr, tpr = claims.roc_curve(scores, labels)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert torch.trapezoid(tpr, fpr).item() == pytest.approx(claims.auroc(scores, labels))


# --- interpolation, smoothness, sampling --------------------------------------------------------------------


def test_interpolate_endpoints_and_midpoint():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    path = claims.interpolate(a, b, 5)
    assert path.shape == (2, 5, 3)
    assert torch.equal(path[:, 0], a) and torch.equal(path[:, -1], b)
    assert torch.allclose(path[:, 2], torch.full((2, 3), 0.5))
    with pytest.raises(ValueError):
        claims.interpolate(a, b, 1)


def test_path_smoothness_of_even_and_jumping_paths():
    start, end = torch.zeros(1, 1, 28, 28), torch.ones(1, 1, 28, 28)
    t = torch.linspace(0, 1, 9).view(1, 9, 1, 1, 1)
    even = start.unsqueeze(1) * (1 - t) + end.unsqueeze(1) * t
    stats = claims.path_smoothness(even)
    assert stats["max_step"].item() == pytest.approx(1 / 8, rel=1e-5)
    assert stats["mean_step"].item() == pytest.approx(1 / 8, rel=1e-5)
    assert stats["length"].item() == pytest.approx(1.0, rel=1e-5)
    jump = torch.cat([start.unsqueeze(1).expand(1, 5, 1, 28, 28), end.unsqueeze(1).expand(1, 4, 1, 28, 28)], 1)
    assert claims.path_smoothness(jump)["max_step"].item() == pytest.approx(1.0)
    still = start.unsqueeze(1).expand(1, 3, 1, 28, 28)
    assert math.isnan(claims.path_smoothness(still)["max_step"].item())


def test_fit_and_sample_gaussian_recovers_moments():
    generator = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    codes = torch.randn(20_000, 2, generator=generator) @ mixing.T + torch.tensor([3.0, -1.0])
    mean, cov = claims.fit_gaussian(codes)
    assert torch.allclose(mean, torch.tensor([3.0, -1.0]), atol=0.05)
    assert torch.allclose(cov, mixing @ mixing.T, atol=0.1)
    samples = claims.sample_gaussian(mean, cov, 20_000, seed=1)
    assert torch.allclose(samples.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(samples.T), cov, atol=0.1)


def test_sample_box_stays_inside_and_is_seeded():
    codes = torch.tensor([[0.0, -5.0], [1.0, 5.0], [0.5, 0.0]])
    z = claims.sample_box(codes, 500, seed=3)
    assert z.shape == (500, 2)
    assert (z >= codes.min(0).values).all() and (z <= codes.max(0).values).all()
    assert torch.equal(z, claims.sample_box(codes, 500, seed=3))


def test_decoding_helpers_shapes():
    torch.manual_seed(0)
    ae = build_model(ModelConfig("ae", 4, (16,), (16,)))
    vae = build_model(ModelConfig("vae", 4, (16,), (16,)))
    for model in (ae, vae):
        assert claims.decode(model, torch.zeros(3, 4)).shape == (3, 1, 28, 28)
        assert claims.decode_paths(model, torch.zeros(2, 4), torch.ones(2, 4), 6).shape == (2, 6, 1, 28, 28)
        assert claims.sample_standard_normal(model, 5).shape == (5, 1, 28, 28)


# --- anomaly scores, corruption, noise ----------------------------------------------------------------------


def test_anomaly_scores_units_and_determinism():
    torch.manual_seed(0)
    images = torch.rand(10, 1, 28, 28)
    ae = build_model(ModelConfig("ae", 4, (16,), (16,)))
    vae = build_model(ModelConfig("vae", 4, (16,), (16,)))
    ae_scores = claims.anomaly_scores(ae, images)
    assert ae_scores.shape == (10,)
    assert torch.allclose(ae_scores, claims.reconstruction_mse(ae, images))
    vae_scores = claims.anomaly_scores(vae, images, seed=1)
    assert vae_scores.shape == (10,) and (vae_scores > 0).all()
    assert torch.equal(vae_scores, claims.anomaly_scores(vae, images, seed=1))
    assert vae_scores.mean() > 100  # nats per image: summed over 784 pixels


def test_corrupt_fraction_replaces_exactly_that_many():
    images = torch.zeros(200, 1, 28, 28)
    noisy, mask = claims.corrupt_fraction(images, 0.05, "noise", seed=0)
    assert int(mask.sum()) == 10
    assert torch.equal(noisy[~mask], images[~mask])
    assert (noisy[mask].flatten(1).std(1) > 0.2).all()  # uniform noise, std about 0.29
    inverted, mask2 = claims.corrupt_fraction(images, 0.1, "invert", seed=0)
    assert int(mask2.sum()) == 20 and torch.equal(inverted[mask2], torch.ones(20, 1, 28, 28))
    with pytest.raises(ValueError):
        claims.corrupt_fraction(images, 1.5)
    with pytest.raises(ValueError):
        claims.corrupt_fraction(images, 0.1, "blur")


def test_gaussian_noise_and_psnr():
    clean = torch.full((4, 1, 28, 28), 0.5)
    noisy = claims.add_gaussian_noise(clean, 0.1, seed=0)
    assert noisy.min() >= 0 and noisy.max() <= 1
    psnr = claims.psnr_per_image(noisy, clean)
    assert psnr.mean().item() == pytest.approx(20.0, abs=0.3)  # -10 log10(0.1^2) = 20 dB
    assert torch.equal(noisy, claims.add_gaussian_noise(clean, 0.1, seed=0))
    assert torch.equal(claims.add_gaussian_noise(clean, 0.0), clean)


def test_fit_tracked_records_train_and_test_mse(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    torch.manual_seed(0)
    train, test = torch.rand(64, 1, 28, 28), torch.rand(32, 1, 28, 28)
    torch.manual_seed(1)
    model = build_model(ModelConfig("ae", 4, (16,), (16,)))
    records = claims.fit_tracked(model, train, test, TrainConfig(epochs=5, batch_size=32, lr=1e-2), every=2)
    assert [r["epoch"] for r in records] == [0, 2, 4, 5]
    assert all(r["train_mse"] > 0 and r["test_mse"] > 0 for r in records)
    assert records[-1]["train_mse"] < records[0]["train_mse"]
    assert list(tmp_path.iterdir()) == []  # the temporary checkpoints are gone
    # the pauses change nothing: one uninterrupted run ends with the same weights
    torch.manual_seed(1)
    twin = build_model(ModelConfig("ae", 4, (16,), (16,)))
    fit(twin, train, TrainConfig(epochs=5, batch_size=32, lr=1e-2), progress=False)
    for a, b in zip(model.state_dict().values(), twin.state_dict().values()):
        assert torch.allclose(a, b)


def test_seconds_per_epoch_leaves_models_untouched():
    torch.manual_seed(0)
    models = {kind: build_model(ModelConfig(kind, 4, (16,), (16,))) for kind in ("ae", "vae")}
    before = {k: [p.clone() for p in m.parameters()] for k, m in models.items()}
    seconds = claims.seconds_per_epoch(models, torch.rand(64, 1, 28, 28), TrainConfig(batch_size=32), repeats=2)
    assert set(seconds) == {"ae", "vae"} and all(0 < s < 60 for s in seconds.values())
    for name, model in models.items():
        assert all(torch.equal(a, b) for a, b in zip(before[name], model.parameters()))


def test_gap_and_epochs_to_target():
    assert claims.generalisation_gap({"train_mse": 0.01, "test_mse": 0.015}) == pytest.approx(0.5)
    assert claims.epochs_to_target([0.5, 0.3, 0.2, 0.1], 0.25) == 3
    assert claims.epochs_to_target([0.5, 0.3], 0.1) is None


# --- structure of the latent space --------------------------------------------------------------------------


def test_linear_probe_separable_and_random():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (600,), generator=generator)
    centres = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    codes = centres[labels] + torch.randn(600, 2, generator=generator)
    assert claims.linear_probe(codes[:400], labels[:400], codes[400:], labels[400:]) > 0.95
    noise = torch.randn(600, 2, generator=generator)
    assert claims.linear_probe(noise[:400], labels[:400], noise[400:], labels[400:]) < 0.5


def test_latent_statistics():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 1, generator=generator)
    codes = torch.cat([x, 2 * x + 1, torch.randn(5000, 1, generator=generator)], 1)
    stats = claims.latent_statistics(codes)
    assert stats["corr"].shape == (3, 3)
    assert stats["corr"][0, 1].item() == pytest.approx(1.0, abs=1e-4)
    assert abs(stats["corr"][0, 2].item()) < 0.05
    assert stats["std"][1].item() == pytest.approx(2.0, rel=0.05)
    assert stats["mean_abs_corr"] == pytest.approx((1 + 2 * abs(stats["corr"][0, 2].item())) / 3, abs=0.03)
    dead = claims.latent_statistics(torch.cat([x, torch.zeros(5000, 1)], 1))  # a constant unit: no NaN
    assert torch.isfinite(dead["corr"]).all()


# --- verdict rules on made-up numbers -----------------------------------------------------------------------


def test_verdict_labels_validated():
    with pytest.raises(ValueError):
        claims.Verdict("maybe", "")
    assert str(claims.Verdict("holds", "x")) == "holds: x"


def test_compare_margins():
    assert claims.compare(0.9, 0.8, True, 0.05) == 1
    assert claims.compare(0.82, 0.8, True, 0.05) == 0
    assert claims.compare(0.7, 0.8, True, 0.05) == -1
    assert claims.compare(10.0, 20.0, False, 0.2, relative=True) == 1
    assert claims.compare(18.0, 20.0, False, 0.2, relative=True) == 0
    with pytest.raises(ValueError):
        claims.compare(float("nan"), 1.0)


def test_verdict_latent_space():
    assert claims.verdict_latent_space(0.5, 0.9, 0.4, 0.8, 0.5, 0.2).label == "holds"
    assert claims.verdict_latent_space(0.9, 0.9, 0.8, 0.8, 0.2, 0.2).label == "does not hold"
    mixed = claims.verdict_latent_space(0.5, 0.9, 0.8, 0.8, 0.2, 0.2)
    assert mixed.label == "depends" and "confidence along paths" in mixed.reason


def test_verdict_generation():
    assert claims.verdict_generation(100.0, 20.0, 60.0).label == "holds"
    assert claims.verdict_generation(100.0, 20.0, 21.0).label == "depends"
    assert claims.verdict_generation(100.0, 20.0, 10.0).label == "depends"
    assert claims.verdict_generation(20.0, 19.0, 10.0).label == "does not hold"


def test_verdict_anomaly():
    assert claims.verdict_anomaly(0.80, 0.90).label == "holds"
    assert "about as good as" in claims.verdict_anomaly(0.90, 0.91).reason
    assert claims.verdict_anomaly(0.90, 0.60).label == "does not hold"


def test_verdict_outliers():
    assert claims.verdict_outliers(0.20, 0.02).label == "holds"
    assert claims.verdict_outliers(0.02, 0.03).label == "does not hold"
    assert "VAE moved more" in claims.verdict_outliers(0.0, 0.2).reason


def test_verdict_denoising():
    assert claims.verdict_denoising(12.0, 16.0, 15.0).label == "holds"
    assert "VAE too" in claims.verdict_denoising(12.0, 16.0, 15.0).reason
    assert claims.verdict_denoising(12.0, 12.5, 16.0).label == "does not hold"


def test_verdict_overfitting():
    assert claims.verdict_overfitting(0.5, 0.6, 0.1).label == "holds"
    assert claims.verdict_overfitting(0.1, 0.1, 0.3).label == "does not hold"
    assert claims.verdict_overfitting(0.1, 0.6, 0.1).label == "depends"


def test_verdict_training_cost():
    assert claims.verdict_training_cost(10.0, 20.0).label == "holds"
    assert "same cost" in claims.verdict_training_cost(10.0, 11.0).reason
    assert "cheaper" in claims.verdict_training_cost(10.0, 5.0).reason


def test_verdict_structure_and_reconstruction():
    assert claims.verdict_structure(0.80, 0.90, 0.30, 0.10).label == "holds"
    assert claims.verdict_structure(0.90, 0.90, 0.10, 0.10).label == "does not hold"
    assert claims.verdict_structure(0.80, 0.90, 0.10, 0.30).label == "depends"
    assert claims.verdict_reconstruction(20.0, 20.5).label == "holds"
    bad = claims.verdict_reconstruction(22.0, 18.0)
    assert bad.label == "does not hold" and "AE is 4.0 dB better" in bad.reason


def test_markdown_table():
    table = claims.markdown_table(["a", "b"], [[1, "x|y"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |"]
    with pytest.raises(ValueError):
        claims.markdown_table(["a"], [[1, 2]])
