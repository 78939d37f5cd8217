"""Unit tests of course_lib.experiments.claims: notebook 07's measurements, checked against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.experiments import claims
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.measure import Timing
from course_lib.models import ModelConfig, build_model
from course_lib.train import TrainConfig, fit


def tiny(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind, 4, (16,), (16,)))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.allclose(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --- latent paths and points --------------------------------------------------------------------------------


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
    detour = torch.cat([start, end, start, end]).unsqueeze(0)  # three steps of the full distance
    assert claims.path_smoothness(detour)["length"].item() == pytest.approx(3.0)
    still = start.unsqueeze(1).expand(1, 3, 1, 28, 28)
    assert math.isnan(claims.path_smoothness(still)["max_step"].item())
    with pytest.raises(ValueError):
        claims.path_smoothness(torch.zeros(2, 1, 784))


def test_decode_paths_decodes_each_point_of_the_line():
    model = tiny("vae")
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    images = claims.decode_paths(model, a, b, 5)
    assert images.shape == (2, 5, 1, 28, 28)
    with torch.no_grad():
        for k, t in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
            assert torch.allclose(images[:, k], model.eval().decode(a + t * (b - a)), atol=1e-6)


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
    with pytest.raises(ValueError):
        claims.fit_gaussian(torch.zeros(1, 2))


def test_sample_box_fills_the_box_and_is_seeded():
    codes = torch.tensor([[0.0, -5.0], [1.0, 5.0], [0.5, 0.0]])
    z = claims.sample_box(codes, 5000, seed=3)
    assert z.shape == (5000, 2)
    assert (z >= codes.min(0).values).all() and (z <= codes.max(0).values).all()
    assert torch.allclose(z.mean(0), torch.tensor([0.5, 0.0]), atol=0.1)  # uniform: the box's centre
    assert torch.equal(z, claims.sample_box(codes, 5000, seed=3))


# --- anomaly scores, corruption, noise ----------------------------------------------------------------------


def test_anomaly_score_of_an_ae_is_its_reconstruction_mse():
    model = tiny("ae")
    images = torch.rand(10, 1, 28, 28)
    with torch.no_grad():
        by_hand = (model.eval()(images) - images).pow(2).mean(dim=(1, 2, 3))
    assert torch.allclose(claims.anomaly_scores(model, images), by_hand, atol=1e-6)


def test_anomaly_score_of_a_vae_is_its_negative_elbo_averaged_over_draws():
    model = tiny("vae")
    images = torch.rand(10, 1, 28, 28)
    scores = claims.anomaly_scores(model, images, samples=3, seed=1)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        mu, logvar = model.eval().encode(images)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        bce = [
            F.binary_cross_entropy(
                model.decode(mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator)), images,
                reduction="none").sum(dim=(1, 2, 3))
            for _ in range(3)
        ]
    assert torch.allclose(scores, torch.stack(bce).mean(0) + kl, rtol=1e-5)
    assert torch.equal(scores, claims.anomaly_scores(model, images, samples=3, seed=1))
    assert not torch.equal(scores, claims.anomaly_scores(model, images, samples=3, seed=2))


def test_corrupt_fraction_replaces_exactly_that_many():
    images = torch.zeros(200, 1, 28, 28)
    noisy, mask = claims.corrupt_fraction(images, 0.05, "noise", seed=0)
    assert int(mask.sum()) == 10
    assert torch.equal(noisy[~mask], images[~mask])
    assert noisy[mask].std().item() == pytest.approx((1 / 12) ** 0.5, rel=0.05)  # uniform noise on [0, 1]
    inverted, mask2 = claims.corrupt_fraction(images, 0.1, "invert", seed=0)
    assert int(mask2.sum()) == 20 and torch.equal(inverted[mask2], torch.ones(20, 1, 28, 28))
    with pytest.raises(ValueError):
        claims.corrupt_fraction(images, 1.5)
    with pytest.raises(ValueError):
        claims.corrupt_fraction(images, 0.1, "blur")


def test_gaussian_noise_psnr_and_denoise_psnr():
    clean = torch.full((4, 1, 28, 28), 0.5)
    noisy = claims.add_gaussian_noise(clean, 0.1, seed=0)
    assert noisy.min() >= 0 and noisy.max() <= 1
    psnr = -10 * torch.log10((noisy - clean).pow(2).mean(dim=(1, 2, 3)))
    assert psnr.mean().item() == pytest.approx(20.0, abs=0.3)  # -10 log10(0.1^2) = 20 dB
    assert torch.equal(noisy, claims.add_gaussian_noise(clean, 0.1, seed=0))
    assert torch.equal(claims.add_gaussian_noise(clean, 0.0), clean)
    with pytest.raises(ValueError):
        claims.add_gaussian_noise(clean, -0.1)
    model = tiny("ae")
    with torch.no_grad():
        output = model.eval()(noisy)
    by_hand = (-10 * torch.log10((output - clean).pow(2).mean(dim=(1, 2, 3)))).mean().item()
    assert claims.denoise_psnr(model, noisy, clean) == pytest.approx(by_hand, rel=1e-5)


# --- training runs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_fit_tracked_is_the_run_fit_makes(kind):
    torch.manual_seed(0)
    train, test = torch.rand(64, 1, 28, 28), torch.rand(32, 1, 28, 28)
    cfg = TrainConfig(epochs=5, batch_size=32, optimizer="adamw", lr=1e-2, weight_decay=1e-5)
    objective = BetaVAEObjective(0.5) if kind == "vae" else None
    model = tiny(kind, seed=1)
    with torch.no_grad():
        untrained = (model.eval()(train) if kind == "ae" else model.eval().decode(model.encode(train)[0]))
    records = claims.fit_tracked(model, train, test, cfg, objective=objective, every=2)
    assert [r["epoch"] for r in records] == [0, 2, 4, 5]
    assert records[0]["train_mse"] == pytest.approx((untrained - train).pow(2).mean().item(), rel=1e-5)
    assert records[-1]["train_mse"] < records[0]["train_mse"]
    twin = tiny(kind, seed=1)
    fit(twin, train, cfg, objective=objective, progress=False)
    assert same_weights(model, twin)
    if kind == "vae":  # the objective it is given is the one it minimises
        other = tiny(kind, seed=1)
        claims.fit_tracked(other, train, test, cfg, objective=BetaVAEObjective(0.0))
        assert not same_weights(model, other)


def test_fit_tracked_rejects_what_it_cannot_do():
    images = torch.rand(8, 1, 28, 28)
    with pytest.raises(ValueError, match="every"):
        claims.fit_tracked(tiny("ae"), images, images, TrainConfig(epochs=1), every=0)
    with pytest.raises(ValueError, match="plateau"):
        claims.fit_tracked(tiny("ae"), images, images, TrainConfig(epochs=1, plateau_scheduler=True))


def test_seconds_per_epoch_times_copies_and_leaves_models_untouched():
    models = {kind: tiny(kind) for kind in ("ae", "vae")}
    objectives = {"ae": MSEObjective(), "vae": BetaVAEObjective(0.5)}
    before = {k: [p.clone() for p in m.parameters()] for k, m in models.items()}
    timings = claims.seconds_per_epoch(models, objectives, torch.rand(64, 1, 28, 28), TrainConfig(batch_size=32),
                                       repeats=2)
    assert set(timings) == {"ae", "vae"}
    assert all(isinstance(t, Timing) and len(t.seconds) == 2 and min(t.seconds) > 0 for t in timings.values())
    for name, model in models.items():
        assert all(torch.equal(a, b) for a, b in zip(before[name], model.parameters()))
    with pytest.raises(ValueError):
        claims.seconds_per_epoch(models, objectives, torch.rand(8, 1, 28, 28), TrainConfig(), repeats=0)


def test_gap_and_epochs_to_target():
    assert claims.generalisation_gap({"train_mse": 0.01, "test_mse": 0.015}) == pytest.approx(0.5)
    assert claims.epochs_to_target([0.5, 0.3, 0.2, 0.1], 0.25) == 3
    assert claims.epochs_to_target([0.5, 0.3, 0.2, 0.1], 0.3) == 2  # reaching the target exactly counts
    assert claims.epochs_to_target([0.5, 0.3], 0.1) is None


def test_fit_gaussian_adds_jitter_to_the_diagonal_only():
    codes = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])  # unit 2 never varies
    mean, cov = claims.fit_gaussian(codes, jitter=0.01)
    assert mean.tolist() == [2.0, 1.0]
    assert torch.allclose(cov, torch.tensor([[4.01, 0.0], [0.0, 0.01]]))  # unbiased variance of 0, 2, 4 is 4
    assert claims.sample_gaussian(mean, cov, 10).shape == (10, 2)  # positive definite thanks to the jitter
    with pytest.raises(ValueError, match=r"codes must have shape \(N >= 2, D\), got \(4,\)"):
        claims.fit_gaussian(torch.zeros(4))


def test_sample_gaussian_is_seeded_and_follows_the_covariance():
    mean, cov = torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 0.9], [0.9, 1.0]])
    a = claims.sample_gaussian(mean, cov, 20_000, seed=3)
    assert torch.equal(a, claims.sample_gaussian(mean, cov, 20_000, seed=3))
    assert not torch.equal(a, claims.sample_gaussian(mean, cov, 20_000, seed=4))
    assert torch.corrcoef(a.T)[0, 1].item() == pytest.approx(0.9, abs=0.01)


def test_corrupt_fraction_edges_and_seeds():
    images = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    out, mask = claims.corrupt_fraction(images, 0.0)
    assert not mask.any() and torch.equal(out, images) and out is not images
    out, mask = claims.corrupt_fraction(images, 1.0, "invert")
    assert mask.all() and torch.allclose(out, 1 - images)
    a, mask_a = claims.corrupt_fraction(images, 0.2, seed=1)
    b, mask_b = claims.corrupt_fraction(images, 0.2, seed=1)
    c, mask_c = claims.corrupt_fraction(images, 0.2, seed=2)
    assert torch.equal(a, b) and torch.equal(mask_a, mask_b) and not torch.equal(mask_a, mask_c)
    assert int(mask_a.sum()) == 10 and a[mask_a].min() >= 0 and a[mask_a].max() <= 1
    assert torch.equal(images, torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0)))  # untouched
    with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\], got -0.1"):
        claims.corrupt_fraction(images, -0.1)
    with pytest.raises(ValueError, match="choose one of noise, invert"):
        claims.corrupt_fraction(images, 0.1, "blur")


def test_gaussian_noise_has_the_stated_std_before_clipping():
    images = torch.full((10, 1, 28, 28), 0.5)
    noise = claims.add_gaussian_noise(images, 0.05, seed=2) - images
    assert noise.std().item() == pytest.approx(0.05, rel=0.03) and noise.mean().item() == pytest.approx(0, abs=0.002)
    assert not torch.equal(claims.add_gaussian_noise(images, 0.05, seed=3) - images, noise)
    with pytest.raises(ValueError, match="std must be >= 0, got -1"):
        claims.add_gaussian_noise(images, -1)


def test_anomaly_scores_average_four_draws_by_default_and_batch_by_1000():
    model = tiny("vae")
    images = torch.rand(1001, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    scores = claims.anomaly_scores(model, images[:3], seed=5)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        draws = torch.stack([BetaVAEObjective(1.0)(model, images[:3], images[:3], generator) for _ in range(4)])
    assert torch.allclose(scores, draws.mean(0), rtol=1e-5)
    assert claims.anomaly_scores(model, images).shape == (1001,)
    assert not model.training


def test_seconds_per_epoch_trains_each_model_repeats_times(monkeypatch):
    calls = []
    real_epoch = claims.train_epoch
    monkeypatch.setattr(claims, "train_epoch", lambda model, *args: calls.append(model) or real_epoch(model, *args))
    models = {"ae": tiny("ae"), "vae": tiny("vae")}
    timings = claims.seconds_per_epoch(models, {"ae": MSEObjective(), "vae": BetaVAEObjective()},
                                       torch.rand(16, 1, 28, 28), TrainConfig(batch_size=8), repeats=3)
    assert [type(m).__name__ for m in calls] == ["AutoEncoder", "VariationalAutoEncoder"] * 3  # taking turns
    assert all(m is not models["ae"] and m is not models["vae"] for m in calls)
    assert len(set(map(id, calls))) == 6 and all(len(t.seconds) == 3 for t in timings.values())


def test_fit_tracked_records_at_the_end_and_stops_on_divergence(monkeypatch):
    torch.manual_seed(0)
    images = torch.rand(16, 1, 28, 28)
    records = claims.fit_tracked(tiny("ae"), images, images, TrainConfig(epochs=3, batch_size=8), every=5)
    assert [r["epoch"] for r in records] == [0, 3] and set(records[0]) == {"epoch", "train_mse", "test_mse"}
    test = torch.zeros(4, 1, 28, 28)
    model = tiny("ae")
    records = claims.fit_tracked(model, images, test, TrainConfig(epochs=1, batch_size=8))
    with torch.no_grad():
        assert records[-1]["test_mse"] == pytest.approx(model.eval()(test).pow(2).mean().item(), rel=1e-5)
    monkeypatch.setattr(claims, "train_epoch", lambda *args: float("nan"))
    with pytest.raises(claims.TrainingDivergedError, match="the training loss became nan in epoch 1"):
        claims.fit_tracked(tiny("ae"), images, images, TrainConfig(epochs=2))
    with pytest.raises(ValueError, match="shape"):
        claims.fit_tracked(tiny("ae"), images[:, :, 1:], images, TrainConfig(epochs=1))


def test_path_smoothness_of_latent_paths_two_frames_and_loops():
    start, end = torch.tensor([[0.2, 0.2]]), torch.tensor([[0.8, 0.2]])
    short = torch.stack([start, (start + end) / 2, end], 1)  # (1, 3, 2): a 3-D path of latent codes, span 0.6
    assert claims.path_smoothness(short)["max_step"].item() == pytest.approx(0.5)
    two = torch.stack([start, end], 1)  # two frames: one step, the whole way
    assert claims.path_smoothness(two)["length"].item() == pytest.approx(1.0)
    loop = torch.stack([start, end, start], 1)  # back where it started: no span to compare with
    assert math.isnan(claims.path_smoothness(loop)["max_step"].item())
    # two paths at once, each against its own span: a straight one, and one twice as long as its span
    detour = torch.stack([start, torch.tensor([[0.5, 0.5]]), end], 1)
    both = claims.path_smoothness(torch.cat([short, detour]))
    assert both["length"].tolist() == pytest.approx([1.0, 2 * math.hypot(0.3, 0.3) / 0.6], rel=1e-5)
    assert both["mean_step"].tolist() == pytest.approx([0.5, math.hypot(0.3, 0.3) / 0.6], rel=1e-5)
    with pytest.raises(ValueError, match=r"paths must have shape \(P, F >= 2, ...\), got \(1, 1, 2\)"):
        claims.path_smoothness(start.unsqueeze(1))


def test_fit_gaussian_of_two_codes_and_default_seeds():
    mean, cov = claims.fit_gaussian(torch.tensor([[0.0], [2.0]]), jitter=0.0)
    assert mean.tolist() == [1.0] and cov.tolist() == [[2.0]]
    codes = torch.tensor([[0.0, -1.0], [1.0, 1.0]])
    assert torch.equal(claims.sample_box(codes, 5), claims.sample_box(codes, 5, seed=0))
    assert torch.equal(claims.sample_gaussian(mean, cov, 5), claims.sample_gaussian(mean, cov, 5, seed=0))
    images = torch.rand(20, 1, 28, 28)
    assert torch.equal(claims.add_gaussian_noise(images, 0.1), claims.add_gaussian_noise(images, 0.1, seed=0))
    assert torch.equal(claims.corrupt_fraction(images, 0.5)[0], claims.corrupt_fraction(images, 0.5, seed=0)[0])


def test_gaussian_noise_is_clipped_to_the_unit_interval():
    black, white = torch.zeros(4, 1, 28, 28), torch.ones(4, 1, 28, 28)
    noisy_black = claims.add_gaussian_noise(black, 1.0)
    assert noisy_black.min() == 0 and (noisy_black == 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    noisy_white = claims.add_gaussian_noise(white, 1.0)
    assert noisy_white.max() == 1 and (noisy_white == 1).float().mean().item() == pytest.approx(0.5, abs=0.03)
    mid = torch.full((4, 1, 28, 28), 0.5)
    expected = (0.5 + 0.1 * torch.randn(mid.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    assert torch.allclose(claims.add_gaussian_noise(mid, 0.1, seed=3), expected)  # the noise is added, seeded


def test_seconds_per_epoch_repeats_three_times_by_default_and_once_if_asked():
    models, objectives = {"ae": tiny("ae")}, {"ae": MSEObjective()}
    images = torch.rand(8, 1, 28, 28)
    assert len(claims.seconds_per_epoch(models, objectives, images, TrainConfig(batch_size=8))["ae"].seconds) == 3
    assert len(claims.seconds_per_epoch(models, objectives, images, TrainConfig(batch_size=8),
                                        repeats=1)["ae"].seconds) == 1
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        claims.seconds_per_epoch(models, objectives, images, TrainConfig(), repeats=0)


def test_fit_tracked_defaults_every_5_epochs_and_the_negative_elbo():
    torch.manual_seed(0)
    images = torch.rand(16, 1, 28, 28)
    cfg = TrainConfig(epochs=6, batch_size=8, lr=1e-2)
    assert [r["epoch"] for r in claims.fit_tracked(tiny("ae"), images, images, cfg)] == [0, 5, 6]
    assert [r["epoch"] for r in claims.fit_tracked(tiny("ae"), images, images, cfg.replace(epochs=2), every=1)] == [
        0, 1, 2]
    model, twin = tiny("vae", seed=1), tiny("vae", seed=1)
    claims.fit_tracked(model, images, images, cfg.replace(epochs=1))
    fit(twin, images, cfg.replace(epochs=1), objective=BetaVAEObjective(1.0), progress=False)
    assert same_weights(model, twin)
    with pytest.raises(ValueError, match="^fit_tracked keeps the learning rate constant; use a config without "
                                         "plateau_scheduler$"):
        claims.fit_tracked(tiny("ae"), images, images, cfg.replace(plateau_scheduler=True))


def test_anomaly_scores_draw_with_seed_0_by_default():
    model, images = tiny("vae"), torch.rand(3, 1, 28, 28)
    assert torch.equal(claims.anomaly_scores(model, images), claims.anomaly_scores(model, images, seed=0))
