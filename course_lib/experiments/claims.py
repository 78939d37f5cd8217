"""Notebook 07's measurements: the pieces each claim of the article's AE-vs-VAE table is measured with.

Each helper measures one thing on one model and returns tensors with one value per image (or per path, per unit),
so that :mod:`course_lib.experiments.claim_verdicts` can put bootstrap intervals over images and seeds on them.
Decoding, sampling the prior, AUROC, the linear probe and latent statistics come from the core
(:mod:`course_lib.evaluate`, :mod:`course_lib.metrics`).

Units: images are in [0, 1]; MSE is per pixel; PSNR in dB; BCE and negative ELBO in nats per image.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.augment import rotate
from course_lib.evaluate import decode, encode, interpolate, reconstruct
from course_lib.losses import BetaVAEObjective, Objective, bce_per_image, mse_per_pixel
from course_lib.measure import Timing, timed
from course_lib.metrics import psnr_db
from course_lib.models import is_vae
from course_lib.train import TrainConfig, train_epoch, training_parts

# ----------------------------------------------------------------------------------------------------------
# Latent space: paths between codes, and points to decode
# ----------------------------------------------------------------------------------------------------------


def decode_paths(model: nn.Module, z_start: torch.Tensor, z_end: torch.Tensor, frames: int) -> torch.Tensor:
    """Decoded straight paths between pairs of codes: (P, D) and (P, D) -> images (P, frames, 1, 28, 28)."""
    paths = interpolate(z_start, z_end, frames)
    p, f, d = paths.shape
    return decode(model, paths.reshape(p * f, d)).reshape(p, f, 1, 28, 28)


def path_smoothness(paths: torch.Tensor) -> dict[str, torch.Tensor]:
    """How evenly images change along each path (P, F, ...), one value per path.

    With steps s_k = ||x_{k+1} - x_k|| (L2 over pixels) and the endpoint distance d = ||x_F - x_1||:
    ``max_step`` = max_k s_k / d (a perfectly even straight path gives 1 / (F - 1); a jump gives up to 1 or
    more), ``mean_step`` = mean_k s_k / d, ``length`` = sum_k s_k / d (1 for a straight path, more for
    detours). Paths whose endpoints decode to the same image (d = 0) get NaN.
    """
    if paths.dim() < 3 or paths.shape[1] < 2:
        raise ValueError(f"paths must have shape (P, F >= 2, ...), got {tuple(paths.shape)}")
    flat = paths.reshape(paths.shape[0], paths.shape[1], -1).double()
    steps = (flat[:, 1:] - flat[:, :-1]).norm(dim=2)
    span = (flat[:, -1] - flat[:, 0]).norm(dim=1)
    span = torch.where(span > 0, span, torch.full_like(span, float("nan")))
    return {
        "max_step": (steps.max(1).values / span).float(),
        "mean_step": (steps.mean(1) / span).float(),
        "length": (steps.sum(1) / span).float(),
    }


def fit_gaussian(codes: torch.Tensor, jitter: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and full covariance of codes (N, D), with ``jitter`` on the diagonal so it can be sampled."""
    if codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"codes must have shape (N >= 2, D), got {tuple(codes.shape)}")
    codes = codes.double()
    cov = torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
    cov = cov + jitter * torch.eye(codes.shape[1], dtype=cov.dtype, device=cov.device)
    return codes.mean(0).float(), cov.float()


def sample_gaussian(mean: torch.Tensor, cov: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points from N(mean, cov) (via the Cholesky factor)."""
    generator = torch.Generator(device=mean.device).manual_seed(seed)
    eps = torch.randn(n, len(mean), generator=generator, device=mean.device, dtype=torch.float64)
    chol = torch.linalg.cholesky(cov.double())
    return (mean.double() + eps @ chol.T).float()


def posterior_samples(model: nn.Module, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One code per image from the model's posterior: z ~ q(z|x) for a VAE, the code itself for an AE. Together
    they are samples of the aggregate posterior q(z) = E_x q(z|x), where the model's codes actually live."""
    if not is_vae(model):
        return encode(model, images)
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    with torch.no_grad():
        mu, logvar = model.encode(images)
        return model.reparameterize(mu, logvar, generator)


# ----------------------------------------------------------------------------------------------------------
# Reconstruction, inference and denoising: one value per image
# ----------------------------------------------------------------------------------------------------------


def reconstruction_psnr(model: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR (dB) of each image's reconstruction (VAE at z = mu) against ``targets`` (default: the images)."""
    targets = images if targets is None else targets
    return psnr_db(mse_per_pixel(reconstruct(model, images), targets))


def sampled_psnr(vae: nn.Module, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """PSNR (dB) of each image's reconstruction from one z ~ q(z|x), as the article's VAE infers."""
    return psnr_db(mse_per_pixel(decode(vae, posterior_samples(vae, images, seed)), images))


def add_gaussian_noise(images: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """``images`` + N(0, std^2) noise, clipped back to [0, 1]."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator).to(images)
    return (images + std * noise).clamp(0.0, 1.0)


def reconstruction_bce(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy (nats per image) of each image's reconstruction (VAE at z = mu): the loss both models
    are trained and scored on in the overfitting test."""
    return bce_per_image(reconstruct(model, images).clamp(1e-6, 1 - 1e-6), images)


# ----------------------------------------------------------------------------------------------------------
# Anomalies and outliers
# ----------------------------------------------------------------------------------------------------------


def anomaly_scores(model: nn.Module, images: torch.Tensor, samples: int = 4, seed: int = 0) -> torch.Tensor:
    """One score per image, higher = more anomalous.

    AE: reconstruction MSE per pixel. VAE: the negative ELBO (``BetaVAEObjective(beta=1)``) in nats per
    image, averaged over ``samples`` draws of z ~ q(z|x).
    """
    if not is_vae(model):
        return mse_per_pixel(reconstruct(model, images), images)
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    neg_elbo = BetaVAEObjective(beta=1.0)
    with torch.no_grad():
        return torch.cat([torch.stack([neg_elbo(model, b, b, generator) for _ in range(samples)]).mean(0)
                          for b in images.split(1000)])


OUTLIER_KINDS = ("inverted", "shifted", "rotated", "occluded", "fashion")
"""Realistic outliers: a digit on a white page, pushed 8 pixels off centre, turned 90-270 degrees, half hidden
under a white square; and (where Fashion-MNIST is installed) a piece of clothing."""


def make_outliers(
    images: torch.Tensor, seed: int = 0, fashion: torch.Tensor | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Each image turned into an outlier of one kind, the kinds taking turns in a seeded order (without
    ``fashion`` images, the kind "fashion" is left out); returns the outliers and each one's kind."""
    kinds = [k for k in OUTLIER_KINDS if k != "fashion" or fashion is not None]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator)
    assigned = [kinds[int(i) % len(kinds)] for i in order]
    out = images.clone()
    for kind in kinds:
        idx = torch.tensor([i for i, k in enumerate(assigned) if k == kind], dtype=torch.long)
        if len(idx) == 0:
            continue
        x = images[idx.to(images.device)]
        if kind == "inverted":
            x = 1.0 - x
        elif kind == "shifted":
            dy, dx = (torch.randint(0, 2, (2,), generator=generator) * 16 - 8).tolist()  # +-8 pixels each way
            x = torch.roll(F.pad(x, (8, 8, 8, 8)), (dy, dx), (2, 3))[:, :, 8:36, 8:36]
        elif kind == "rotated":
            angles = (torch.randint(1, 4, (len(x),), generator=generator) * 90.0).to(x)
            x = rotate(x, angles).clamp(0.0, 1.0)
        elif kind == "occluded":
            x = x.clone()
            for j, (top, left) in enumerate(torch.randint(4, 12, (len(x), 2), generator=generator).tolist()):
                x[j, :, top : top + 12, left : left + 12] = 1.0
        else:
            pick = torch.randint(0, len(fashion), (len(x),), generator=generator)
            x = fashion[pick.to(fashion.device)].to(x)
        out[idx.to(images.device)] = x
    return out, assigned


def corrupt_fraction(
    images: torch.Tensor, fraction: float, seed: int = 0, fashion: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``images`` with a random ``fraction`` replaced by realistic outliers (:func:`make_outliers`), and
    the boolean mask of which."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    n = len(images)
    chosen = torch.randperm(n, generator=generator)[: round(fraction * n)].to(images.device)
    mask = torch.zeros(n, dtype=torch.bool, device=images.device)
    mask[chosen] = True
    out = images.clone()
    out[chosen] = make_outliers(images[chosen], seed, fashion)[0]
    return out, mask


# ----------------------------------------------------------------------------------------------------------
# The aggregate posterior: how Gaussian is it?
# ----------------------------------------------------------------------------------------------------------


def ks_to_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """Per dimension of z (N, D), the Kolmogorov-Smirnov distance between the values and N(0, 1):
    sup_x |F_N(x) - Phi(x)|, F_N the empirical distribution function."""
    if z.dim() != 2 or len(z) < 2:
        raise ValueError(f"z must have shape (N >= 2, D), got {tuple(z.shape)}")
    values = z.double().sort(0).values
    n = len(values)
    cdf = 0.5 * (1 + torch.erf(values / math.sqrt(2)))
    above = torch.arange(1, n + 1, dtype=torch.float64, device=z.device).view(-1, 1) / n - cdf
    below = cdf - torch.arange(0, n, dtype=torch.float64, device=z.device).view(-1, 1) / n
    return torch.maximum(above, below).max(0).values.float()


def moments(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per dimension of z (N, D): mean, standard deviation, skewness and excess kurtosis (N(0, 1): 0, 1, 0, 0)."""
    z = z.double()
    mean, std = z.mean(0), z.std(0, unbiased=False)
    standard = (z - mean) / std.clamp_min(1e-12)
    return {"mean": mean.float(), "std": std.float(), "skew": standard.pow(3).mean(0).float(),
            "excess kurtosis": (standard.pow(4).mean(0) - 3).float()}


# ----------------------------------------------------------------------------------------------------------
# Training cost: time per epoch, epochs to a target
# ----------------------------------------------------------------------------------------------------------


def seconds_per_epoch(
    models: dict[str, nn.Module],
    objectives: dict[str, Objective],
    train_images: torch.Tensor,
    cfg: TrainConfig,
    repeats: int = 3,
) -> dict[str, Timing]:
    """Wall-clock time of one :func:`course_lib.train.train_epoch` of each model with ``cfg``, ``repeats`` times.

    Each run trains a fresh copy (the models themselves are untouched); the models take turns, so a burst of
    load on a shared machine hits all of them alike.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            twin = copy.deepcopy(model)
            batches, optimizer, generator = training_parts(twin, train_images, cfg)
            device = next(twin.parameters()).device
            _, spent = timed(train_epoch, twin, batches, objectives[name], optimizer, cfg.augmentation, generator,
                             device=device)
            seconds[name].append(spent)
    return {name: Timing(tuple(values)) for name, values in seconds.items()}


def epochs_to_target(values: Sequence[float], target: float) -> int | None:
    """The first epoch (1-based) whose value is at or below ``target``, or None if never reached."""
    for epoch, value in enumerate(values, start=1):
        if value <= target:
            return epoch
    return None
