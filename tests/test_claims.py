"""Unit tests of course_lib.experiments.claims: notebook 07's measurements, checked against hand computations
(scipy for the statistics, the models' own layers for the codes and reconstructions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from course_lib.evaluate import reconstruct
from course_lib.experiments import claims
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.measure import Timing
from course_lib.models import ModelConfig, build_model
from course_lib.train import TrainConfig


def tiny(kind: str, seed: int = 0, latent: int = 4, batch_norm: bool = False):
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind, latent, (16,), (16,), batch_norm=batch_norm))


def digits(n: int, seed: int = 0) -> torch.Tensor:
    """Random images with every pixel in [0.05, 0.9]: none is 0, 0.5 or 1, so every kind of outlier changes them."""
    return 0.05 + 0.85 * torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def psnr_by_hand(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -10 * torch.log10((x_hat.double() - x.double()).pow(2).mean(dim=(1, 2, 3)))


def bce_by_hand(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    p, x = p.double(), x.double()
    return -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=(1, 2, 3))


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """float32 results against float64 hand computations: equal to float32 precision."""
    torch.testing.assert_close(actual.double(), expected.double(), rtol=1e-5, atol=1e-6)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images moved dy rows down and dx columns right, the uncovered pixels black."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = (
        x[..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)])
    return out


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
    with pytest.raises(ValueError, match=r"paths must have shape \(P, F >= 2, ...\), got \(5, 4\)"):
        claims.path_smoothness(torch.zeros(5, 4))  # no frame dimension at all


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
    assert both["max_step"].tolist() == pytest.approx([0.5, math.hypot(0.3, 0.3) / 0.6], rel=1e-5)
    with pytest.raises(ValueError, match=r"paths must have shape \(P, F >= 2, ...\), got \(1, 1, 2\)"):
        claims.path_smoothness(start.unsqueeze(1))


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_decode_paths_decodes_each_point_of_the_line(kind):
    model = tiny(kind)
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, generator=generator), torch.randn(2, 4, generator=generator)
    images = claims.decode_paths(model, a, b, 5)
    assert images.shape == (2, 5, 1, 28, 28)
    with torch.no_grad():
        for k, t in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
            for p in range(2):  # path p holds its own pair's points, frame by frame
                torch.testing.assert_close(images[p, k], model.eval().decode(a[p : p + 1] + t * (b[p] - a[p]))[0])


def test_fit_and_sample_gaussian_recovers_moments():
    generator = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    codes = torch.randn(20_000, 2, generator=generator) @ mixing.T + torch.tensor([3.0, -1.0])
    mean, cov = claims.fit_gaussian(codes)
    assert torch.allclose(mean, torch.tensor([3.0, -1.0]), atol=0.05)
    assert torch.allclose(cov, mixing @ mixing.T, atol=0.1)
    samples = claims.sample_gaussian(mean, cov, 20_000, seed=1)
    assert samples.shape == (20_000, 2)
    assert torch.allclose(samples.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(samples.T), cov, atol=0.1)
    with pytest.raises(ValueError):
        claims.fit_gaussian(torch.zeros(1, 2))


def test_fit_gaussian_is_numpys_mean_and_covariance_plus_1e_5_on_the_diagonal():
    codes = 0.01 * torch.randn(50, 3, generator=torch.Generator().manual_seed(2))  # variances ~1e-4
    mean, cov = claims.fit_gaussian(codes)
    x = codes.double().numpy()
    assert mean.double().numpy() == pytest.approx(x.mean(0), abs=1e-9)
    assert cov.double().numpy() == pytest.approx(np.cov(x.T) + 1e-5 * np.eye(3), abs=1e-9)


def test_fit_gaussian_adds_jitter_to_the_diagonal_only():
    codes = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])  # unit 2 never varies
    mean, cov = claims.fit_gaussian(codes, jitter=0.01)
    assert mean.tolist() == [2.0, 1.0]
    assert torch.allclose(cov, torch.tensor([[4.01, 0.0], [0.0, 0.01]]))  # unbiased variance of 0, 2, 4 is 4
    assert claims.sample_gaussian(mean, cov, 10).shape == (10, 2)  # positive definite thanks to the jitter
    with pytest.raises(ValueError, match=r"codes must have shape \(N >= 2, D\), got \(4,\)"):
        claims.fit_gaussian(torch.zeros(4))


def test_fit_gaussian_of_two_codes_and_default_seed():
    mean, cov = claims.fit_gaussian(torch.tensor([[0.0], [2.0]]), jitter=0.0)
    assert mean.tolist() == [1.0] and cov.tolist() == [[2.0]]
    assert torch.equal(claims.sample_gaussian(mean, cov, 5), claims.sample_gaussian(mean, cov, 5, seed=0))


def test_sample_gaussian_is_seeded_and_follows_the_covariance():
    mean, cov = torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 0.9], [0.9, 1.0]])
    a = claims.sample_gaussian(mean, cov, 20_000, seed=3)
    assert torch.equal(a, claims.sample_gaussian(mean, cov, 20_000, seed=3))
    assert not torch.equal(a, claims.sample_gaussian(mean, cov, 20_000, seed=4))
    assert torch.corrcoef(a.T)[0, 1].item() == pytest.approx(0.9, abs=0.01)
    # each point is mean + L eps, L L^T = cov, eps the seed's standard normal draws (in float64)
    eps = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    chol = torch.tensor([[1.0, 0.0], [0.9, math.sqrt(1 - 0.9**2)]], dtype=torch.float64)
    close(a, mean.double() + eps @ chol.T)


def test_posterior_samples_of_an_ae_are_its_codes():
    model = tiny("ae", batch_norm=True).train()  # a batch-norm model left in training mode
    images = digits(20)
    z = claims.posterior_samples(model, images, seed=3)
    with torch.no_grad():
        expected = model.eval().encode(images)
    torch.testing.assert_close(z, expected)


def test_posterior_samples_of_a_vae_follow_q_z_given_x_and_are_seeded():
    model = tiny("vae", batch_norm=True)
    with torch.no_grad():
        model.fc_logvar.bias.copy_(torch.tensor([-2.0, -1.0, 0.0, 1.0]))  # four different spreads
    image = digits(1, seed=5)
    with torch.no_grad():
        mu, logvar = model.eval().encode(image)
    images = image.expand(10_000, 1, 28, 28)
    model.train()  # posterior_samples must switch batch norm to its running statistics
    z = claims.posterior_samples(model, images, seed=1)
    assert z.shape == (10_000, 4) and not z.requires_grad
    std = (0.5 * logvar[0]).exp()
    torch.testing.assert_close(z.mean(0), mu[0], atol=(4 * std / 100).max().item(), rtol=0)
    torch.testing.assert_close(z.std(0), std, rtol=0.03, atol=0)
    assert torch.equal(z, claims.posterior_samples(model, images, seed=1))
    assert not torch.equal(z, claims.posterior_samples(model, images, seed=2))
    assert torch.equal(claims.posterior_samples(model, images[:5]), claims.posterior_samples(model, images[:5], 0))


# --- reconstruction, inference and denoising ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_reconstruction_psnr_decodes_the_mean_code_and_scores_against_the_targets(kind):
    model = tiny(kind, batch_norm=True).train()
    images, targets = digits(8, seed=1), digits(8, seed=2)
    with torch.no_grad():
        model.eval()
        code = model.encode(images)[0] if kind == "vae" else model.encode(images)
        recon = model.decode(code)
    model.train()
    close(claims.reconstruction_psnr(model, images), psnr_by_hand(recon, images))
    close(claims.reconstruction_psnr(model, images, targets), psnr_by_hand(recon, targets))


def test_sampled_psnr_decodes_one_seeded_draw_of_q_z_given_x():
    model = tiny("vae")
    images = digits(8, seed=1)
    with torch.no_grad():
        mu, logvar = model.eval().encode(images)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
        by_hand = psnr_by_hand(model.decode(mu + (0.5 * logvar).exp() * eps), images)
    sampled = claims.sampled_psnr(model, images, seed=5)
    close(sampled, by_hand)
    assert (sampled - claims.reconstruction_psnr(model, images)).abs().min() > 1e-4  # not the mean code
    assert torch.equal(claims.sampled_psnr(model, images), claims.sampled_psnr(model, images, seed=0))
    assert not torch.equal(sampled, claims.sampled_psnr(model, images, seed=6))
    ae = tiny("ae")
    torch.testing.assert_close(claims.sampled_psnr(ae, images), claims.reconstruction_psnr(ae, images))


def test_reconstruction_bce_is_the_cross_entropy_at_the_mean_code():
    model = tiny("vae")
    images = digits(6, seed=3)
    with torch.no_grad():
        recon = model.eval().decode(model.encode(images)[0])
    close(claims.reconstruction_bce(model, images), bce_by_hand(recon, images))


def test_reconstruction_bce_clamps_saturated_pixels_to_1e_6():
    model = tiny("ae")
    last = model.decoder[-2]  # the Linear before the sigmoid
    with torch.no_grad():  # the decoder says 1 for the first half of the pixels and 0 for the rest, for any code
        last.weight.zero_()
        last.bias.copy_(torch.where(torch.arange(784) < 392, 200.0, -200.0))
    images = digits(5, seed=4)
    assert set(reconstruct(model, images).unique().tolist()) == {0.0, 1.0}
    high, low = torch.tensor(1 - 1e-6).item(), torch.tensor(1e-6).item()  # float32, as the clamp stores them
    p = torch.where(torch.arange(784) < 392, high, low).view(1, 1, 28, 28).expand(5, 1, 28, 28)
    close(claims.reconstruction_bce(model, images), bce_by_hand(p, images))


def test_gaussian_noise_psnr_and_seeds():
    clean = torch.full((4, 1, 28, 28), 0.5)
    noisy = claims.add_gaussian_noise(clean, 0.1, seed=0)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert psnr_by_hand(noisy, clean).mean().item() == pytest.approx(20.0, abs=0.3)  # -10 log10(0.1^2) = 20 dB
    assert torch.equal(noisy, claims.add_gaussian_noise(clean, 0.1, seed=0))
    assert torch.equal(noisy, claims.add_gaussian_noise(clean, 0.1))
    assert torch.equal(claims.add_gaussian_noise(clean, 0.0), clean)
    with pytest.raises(ValueError):
        claims.add_gaussian_noise(clean, -0.1)


def test_gaussian_noise_has_the_stated_std_before_clipping():
    images = torch.full((10, 1, 28, 28), 0.5)
    noise = claims.add_gaussian_noise(images, 0.05, seed=2) - images
    assert noise.std().item() == pytest.approx(0.05, rel=0.03) and noise.mean().item() == pytest.approx(0, abs=0.002)
    assert not torch.equal(claims.add_gaussian_noise(images, 0.05, seed=3) - images, noise)
    with pytest.raises(ValueError, match="std must be >= 0, got -1"):
        claims.add_gaussian_noise(images, -1)


def test_gaussian_noise_is_clipped_to_the_unit_interval():
    black, white = torch.zeros(4, 1, 28, 28), torch.ones(4, 1, 28, 28)
    noisy_black = claims.add_gaussian_noise(black, 1.0)
    assert noisy_black.min() == 0 and (noisy_black == 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    noisy_white = claims.add_gaussian_noise(white, 1.0)
    assert noisy_white.max() == 1 and (noisy_white == 1).float().mean().item() == pytest.approx(0.5, abs=0.03)
    mid = torch.full((4, 1, 28, 28), 0.5)
    expected = (0.5 + 0.1 * torch.randn(mid.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    assert torch.allclose(claims.add_gaussian_noise(mid, 0.1, seed=3), expected)  # the noise is added, seeded


# --- anomaly scores -----------------------------------------------------------------------------------------


def neg_elbo_by_hand(model, images: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """BCE of decode(mu + sigma eps) + KL(q || N(0, I)), nats per image, averaged over ``samples`` draws."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mu, logvar = model.eval().encode(images)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        bce = [F.binary_cross_entropy(model.decode(mu + (0.5 * logvar).exp() * torch.randn(
            mu.shape, generator=generator)), images, reduction="none").sum(dim=(1, 2, 3)) for _ in range(samples)]
    return torch.stack(bce).mean(0) + kl


def test_anomaly_score_of_an_ae_is_its_reconstruction_mse():
    model = tiny("ae", batch_norm=True).train()
    images = torch.rand(10, 1, 28, 28)
    with torch.no_grad():
        by_hand = (model.eval()(images) - images).pow(2).mean(dim=(1, 2, 3))
    model.train()
    assert torch.allclose(claims.anomaly_scores(model, images), by_hand, atol=1e-6)


def test_anomaly_score_of_a_vae_is_its_negative_elbo_averaged_over_draws():
    model = tiny("vae")
    images = torch.rand(10, 1, 28, 28)
    scores = claims.anomaly_scores(model, images, samples=3, seed=1)
    assert torch.allclose(scores, neg_elbo_by_hand(model, images, 3, 1), rtol=1e-5)
    assert torch.equal(scores, claims.anomaly_scores(model, images, samples=3, seed=1))
    assert not torch.equal(scores, claims.anomaly_scores(model, images, samples=3, seed=2))


def test_anomaly_scores_of_a_vae_in_eval_mode_without_gradients():
    model = tiny("vae", batch_norm=True)
    images = torch.rand(6, 1, 28, 28)
    expected = neg_elbo_by_hand(model, images, 4, 0)
    model.train()
    scores = claims.anomaly_scores(model, images)  # 4 draws with seed 0 by default
    assert torch.allclose(scores, expected, rtol=1e-5)
    assert not scores.requires_grad and not model.training


def test_anomaly_scores_average_four_draws_by_default_and_batch_by_1000():
    model = tiny("vae")
    images = torch.rand(1001, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    scores = claims.anomaly_scores(model, images[:3], seed=5)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        draws = torch.stack([BetaVAEObjective(1.0)(model, images[:3], images[:3], generator) for _ in range(4)])
    assert torch.allclose(scores, draws.mean(0), rtol=1e-5)
    all_scores = claims.anomaly_scores(model, images)
    assert all_scores.shape == (1001,)
    # the first thousand are scored as one batch: the image after them does not change their draws
    assert torch.equal(all_scores[:1000], claims.anomaly_scores(model, images[:1000]))


def test_anomaly_scores_draw_with_seed_0_by_default():
    model, images = tiny("vae"), torch.rand(3, 1, 28, 28)
    assert torch.equal(claims.anomaly_scores(model, images), claims.anomaly_scores(model, images, seed=0))


# --- outliers -----------------------------------------------------------------------------------------------


def test_outlier_kinds():
    assert claims.OUTLIER_KINDS == ("inverted", "shifted", "rotated", "occluded", "fashion")


def test_make_outliers_kinds_take_turns_and_are_seeded():
    images = digits(23)
    kept = images.clone()
    out, kinds = claims.make_outliers(images, seed=1)
    assert out.shape == images.shape and len(kinds) == 23 and torch.equal(images, kept)
    four = ["inverted", "shifted", "rotated", "occluded"]  # without fashion images, no "fashion"
    assert [kinds.count(k) for k in four] == [6, 6, 6, 5]  # 23 turns of 4 kinds
    again, kinds_again = claims.make_outliers(images, seed=1)
    assert torch.equal(out, again) and kinds == kinds_again
    assert kinds != claims.make_outliers(images, seed=2)[1]
    assert kinds == claims.make_outliers(images, 1, None)[1]
    assert claims.make_outliers(images)[1] == claims.make_outliers(images, seed=0)[1]
    fashion = torch.rand(3, 1, 28, 28)
    with_fashion = claims.make_outliers(images, seed=1, fashion=fashion)[1]
    assert [with_fashion.count(k) for k in claims.OUTLIER_KINDS] == [5, 5, 5, 4, 4]  # 23 turns of 5 kinds
    few, few_kinds = claims.make_outliers(images[:2], seed=0)  # fewer images than kinds
    assert len(set(few_kinds)) == 2 and not (few == images[:2]).flatten(1).all(1).any()


def test_each_kind_of_outlier_is_what_it_says():
    images = digits(200)
    fashion = torch.stack([torch.full((1, 28, 28), v) for v in (0.2, 0.4, 0.6)])
    out, kinds = claims.make_outliers(images, seed=0, fashion=fashion)
    index = {k: [i for i, kind in enumerate(kinds) if kind == k] for k in claims.OUTLIER_KINDS}
    assert [len(v) for v in index.values()] == [40] * 5
    assert out.min() >= 0 and out.max() <= 1
    # inverted: a digit on a white page
    inverted = index["inverted"]
    assert torch.equal(out[inverted], 1 - images[inverted])
    # shifted: all moved by 8 pixels up or down and 8 left or right, the rest of the page black
    shifted = index["shifted"]
    moves = [(dy, dx) for dy in (-8, 8) for dx in (-8, 8) if torch.equal(out[shifted], shift(images[shifted], dy, dx))]
    assert len(moves) == 1
    # rotated: each by a quarter, half or three-quarter turn (bilinear on the pixel grid: rot90 within 1e-5)
    turns = []
    for i in index["rotated"]:
        errors = [(out[i] - torch.rot90(images[i], k, (1, 2))).abs().max().item() for k in range(4)]
        turns.append(int(np.argmin(errors)))
        assert min(errors) < 1e-5
    assert set(turns) == {1, 2, 3}
    # occluded: a white 12 x 12 square (no pixel of these images is 1), the rest untouched
    corners = set()
    for i in index["occluded"]:
        white = out[i, 0] == 1
        rows, cols = white.any(1).nonzero().flatten().tolist(), white.any(0).nonzero().flatten().tolist()
        assert int(white.sum()) == 144
        assert rows == list(range(rows[0], rows[0] + 12)) and cols == list(range(cols[0], cols[0] + 12))
        assert torch.equal(out[i, 0][~white], images[i, 0][~white])
        corners |= {rows[0], cols[0]}
    assert corners == set(range(4, 12))  # the square's corner lies 4 to 11 pixels in, so it covers the centre
    # fashion: one of the given images, all of them used
    picks = {next(j for j in range(3) if torch.equal(out[i], fashion[j])) for i in index["fashion"]}
    assert picks == {0, 1, 2}


def test_shifted_outliers_move_every_way():
    moves = set()
    for seed in range(10):
        images = digits(8, seed=seed)
        out, kinds = claims.make_outliers(images, seed=seed)
        shifted = [i for i, k in enumerate(kinds) if k == "shifted"]
        moves |= {(dy, dx) for dy in (-8, 8) for dx in (-8, 8)
                  if torch.equal(out[shifted], shift(images[shifted], dy, dx))}
    assert moves == {(-8, -8), (-8, 8), (8, -8), (8, 8)}


def test_corrupt_fraction_replaces_exactly_round_fraction_n_images():
    images = digits(30)
    kept = images.clone()
    out, mask = claims.corrupt_fraction(images, 0.05, seed=0)
    assert mask.dtype == torch.bool and mask.shape == (30,)
    assert int(mask.sum()) == 2  # round(1.5)
    assert torch.equal((out != images).flatten(1).any(1), mask)  # exactly the masked images changed
    assert torch.equal(images, kept)
    for fraction, n in [(0.25, 10), (0.5, 7), (0.3, 20), (0.0, 5), (1.0, 6)]:
        out, mask = claims.corrupt_fraction(digits(n), fraction, seed=1)
        assert int(mask.sum()) == round(fraction * n)
        assert torch.equal((out != digits(n)).flatten(1).any(1), mask)


def test_corrupt_fraction_edges_seeds_and_fashion():
    images = digits(50)
    out, mask = claims.corrupt_fraction(images, 0.0)
    assert not mask.any() and torch.equal(out, images) and out is not images
    out, mask = claims.corrupt_fraction(images, 1.0)
    assert mask.all() and (out != images).flatten(1).any(1).all()
    a, mask_a = claims.corrupt_fraction(images, 0.2, seed=1)
    b, mask_b = claims.corrupt_fraction(images, 0.2, seed=1)
    c, mask_c = claims.corrupt_fraction(images, 0.2, seed=2)
    assert torch.equal(a, b) and torch.equal(mask_a, mask_b) and not torch.equal(mask_a, mask_c)
    assert torch.equal(claims.corrupt_fraction(images, 0.2)[1], claims.corrupt_fraction(images, 0.2, seed=0)[1])
    assert a[mask_a].min() >= 0 and a[mask_a].max() <= 1
    fashion = torch.stack([torch.full((1, 28, 28), 0.25), torch.full((1, 28, 28), 0.75)])
    out, _ = claims.corrupt_fraction(images[:20], 1.0, seed=3, fashion=fashion)
    from_fashion = sum(any(torch.equal(image, f) for f in fashion) for image in out)
    assert from_fashion == 4  # a fifth of the outliers: the kinds take turns
    out, _ = claims.corrupt_fraction(images[:20], 1.0, seed=3)
    assert sum(any(torch.equal(image, f) for f in fashion) for image in out) == 0
    with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\], got -0.1"):
        claims.corrupt_fraction(images, -0.1)
    with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\], got 1.5"):
        claims.corrupt_fraction(images, 1.5)


# --- the aggregate posterior --------------------------------------------------------------------------------


def test_ks_to_standard_normal_is_scipys_kolmogorov_smirnov_statistic_per_dimension():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(500, 4, generator=generator)
    z[:, 1] += 0.5  # shifted
    z[:, 2] *= 2.0  # too wide
    z[:, 3] = z[:, 3].exp()  # skewed
    ks = claims.ks_to_standard_normal(z)
    assert ks.shape == (4,)
    expected = [scipy.stats.kstest(z[:, j].double().numpy(), "norm").statistic for j in range(4)]
    assert ks.tolist() == pytest.approx(expected, abs=1e-6)
    assert ks[0] < 0.1 < ks[1]
    two = torch.tensor([[-1.0, 0.3], [2.0, 0.1]])
    assert claims.ks_to_standard_normal(two).tolist() == pytest.approx(
        [scipy.stats.kstest(two[:, j].numpy(), "norm").statistic for j in range(2)], abs=1e-6)
    with pytest.raises(ValueError, match=r"z must have shape \(N >= 2, D\), got \(5,\)"):
        claims.ks_to_standard_normal(torch.zeros(5))
    with pytest.raises(ValueError, match=r"z must have shape \(N >= 2, D\), got \(1, 3\)"):
        claims.ks_to_standard_normal(torch.zeros(1, 3))


def test_moments_are_numpys_and_scipys_per_dimension():
    generator = torch.Generator().manual_seed(1)
    z = torch.stack([torch.randn(1000, generator=generator).exp(),  # skewed, heavy tail
                     3 * torch.randn(1000, generator=generator) + 1,
                     0.3 * torch.rand(1000, generator=generator)], 1)  # flat: negative excess kurtosis
    m = claims.moments(z)
    assert set(m) == {"mean", "std", "skew", "excess kurtosis"}
    x = z.double().numpy()
    assert m["mean"].tolist() == pytest.approx(x.mean(0), rel=1e-5)
    assert m["std"].tolist() == pytest.approx(x.std(0, ddof=0), rel=1e-5)
    assert m["skew"].tolist() == pytest.approx(scipy.stats.skew(x, axis=0, bias=True), rel=1e-4, abs=1e-6)
    assert m["excess kurtosis"].tolist() == pytest.approx(
        scipy.stats.kurtosis(x, axis=0, fisher=True, bias=True), rel=1e-4, abs=1e-6)
    constant = claims.moments(torch.full((10, 1), 2.0))  # a collapsed unit: no spread, and no NaN
    assert constant["mean"].item() == 2.0 and constant["std"].item() == 0.0
    assert all(torch.isfinite(v).all() for v in constant.values())


# --- training cost ------------------------------------------------------------------------------------------


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


def test_seconds_per_epoch_trains_each_model_repeats_times(monkeypatch):
    calls = []
    real_epoch = claims.train_epoch

    def spy(model, batches, objective, *args):
        calls.append((model, objective, len(batches.tensors[0])))
        return real_epoch(model, batches, objective, *args)

    monkeypatch.setattr(claims, "train_epoch", spy)
    models = {"ae": tiny("ae"), "vae": tiny("vae")}
    objectives = {"ae": MSEObjective(), "vae": BetaVAEObjective()}
    timings = claims.seconds_per_epoch(models, objectives, torch.rand(16, 1, 28, 28), TrainConfig(batch_size=8),
                                       repeats=3)
    assert [type(m).__name__ for m, _, _ in calls] == ["AutoEncoder", "VariationalAutoEncoder"] * 3  # taking turns
    assert all(objective is objectives["vae" if type(m).__name__.startswith("V") else "ae"]
               for m, objective, _ in calls)
    assert all(n == 16 for _, _, n in calls)
    assert all(m is not models["ae"] and m is not models["vae"] for m, _, _ in calls)
    assert len({id(m) for m, _, _ in calls}) == 6 and all(len(t.seconds) == 3 for t in timings.values())


def test_seconds_per_epoch_repeats_three_times_by_default_and_once_if_asked():
    models, objectives = {"ae": tiny("ae")}, {"ae": MSEObjective()}
    images = torch.rand(8, 1, 28, 28)
    assert len(claims.seconds_per_epoch(models, objectives, images, TrainConfig(batch_size=8))["ae"].seconds) == 3
    assert len(claims.seconds_per_epoch(models, objectives, images, TrainConfig(batch_size=8),
                                        repeats=1)["ae"].seconds) == 1
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        claims.seconds_per_epoch(models, objectives, images, TrainConfig(), repeats=0)


def test_epochs_to_target():
    assert claims.epochs_to_target([0.5, 0.3, 0.2, 0.1], 0.25) == 3
    assert claims.epochs_to_target([0.5, 0.3, 0.2, 0.1], 0.3) == 2  # reaching the target exactly counts
    assert claims.epochs_to_target([0.1, 0.3], 0.2) == 1  # epochs count from 1
    assert claims.epochs_to_target([0.5, 0.3], 0.1) is None
    assert claims.epochs_to_target([], 0.1) is None
