"""Notebook 07's measurements: the seed article's AE-vs-VAE table tested claim by claim on held-out data.

Each helper measures one thing and returns plain numbers or tensors; :mod:`course_lib.experiments.claim_verdicts`
turns them into verdicts. Decoding, sampling the prior, AUROC, the linear probe and latent statistics come from
the core (:mod:`course_lib.evaluate`, :mod:`course_lib.metrics`).

Units: images are in [0, 1]; MSE is per pixel; PSNR in dB; negative ELBO in nats per image.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from course_lib.data import check_images
from course_lib.evaluate import decode, interpolate, reconstruct, reconstruction_mse
from course_lib.losses import BetaVAEObjective, Objective, default_objective, mse_per_pixel
from course_lib.measure import Timing, timed
from course_lib.metrics import psnr_db
from course_lib.models import is_vae
from course_lib.train import TrainConfig, TrainingDivergedError, train_epoch, training_parts

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


def sample_box(codes: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points uniform in the box spanned by the codes (per unit, from its min to its max).

    "Random points in the region where the codes live": the same recipe for an AE and a VAE, whatever
    the scale of their latent spaces.
    """
    low, high = codes.min(0).values, codes.max(0).values
    generator = torch.Generator(device=codes.device).manual_seed(seed)
    u = torch.rand(n, codes.shape[1], generator=generator, device=codes.device)
    return low + u * (high - low)


# ----------------------------------------------------------------------------------------------------------
# Anomalies, outliers and noise
# ----------------------------------------------------------------------------------------------------------


def anomaly_scores(model: nn.Module, images: torch.Tensor, samples: int = 4, seed: int = 0) -> torch.Tensor:
    """One score per image, higher = more anomalous.

    AE: reconstruction MSE per pixel. VAE: the negative ELBO (``BetaVAEObjective(beta=1)``) in nats per
    image, averaged over ``samples`` draws of z ~ q(z|x).
    """
    if not is_vae(model):
        return reconstruction_mse(model, images)
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    neg_elbo = BetaVAEObjective(beta=1.0)
    with torch.no_grad():
        return torch.cat([torch.stack([neg_elbo(model, b, b, generator) for _ in range(samples)]).mean(0)
                          for b in images.split(1000)])


CORRUPTIONS = ("noise", "invert")


def corrupt_fraction(
    images: torch.Tensor, fraction: float, kind: str = "noise", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``images`` with a random ``fraction`` replaced by outliers, and the boolean mask of which.

    ``kind="noise"``: uniform random pixels in [0, 1] (no digit at all); ``kind="invert"``: 1 - x, a white
    page with a black digit.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    generator = torch.Generator().manual_seed(seed)
    n = len(images)
    chosen = torch.randperm(n, generator=generator)[: round(fraction * n)].to(images.device)
    mask = torch.zeros(n, dtype=torch.bool, device=images.device)
    mask[chosen] = True
    out = images.clone()
    if kind == "noise":
        out[chosen] = torch.rand((len(chosen), *images.shape[1:]), generator=generator).to(images)
    else:
        out[chosen] = 1.0 - images[chosen]
    return out, mask


def add_gaussian_noise(images: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """``images`` + N(0, std^2) noise, clipped back to [0, 1]."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator).to(images)
    return (images + std * noise).clamp(0.0, 1.0)


def denoise_psnr(model: nn.Module, noisy: torch.Tensor, clean: torch.Tensor) -> float:
    """Mean PSNR (dB) of the model's reconstruction of ``noisy`` against ``clean`` (VAE at z = mu)."""
    return psnr_db(mse_per_pixel(reconstruct(model, noisy), clean)).mean().item()


# ----------------------------------------------------------------------------------------------------------
# Training runs: errors along the way, time per epoch
# ----------------------------------------------------------------------------------------------------------


def fit_tracked(
    model: nn.Module,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    cfg: TrainConfig,
    objective: Objective | None = None,
    every: int = 5,
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``cfg.epochs`` epochs of :func:`course_lib.train.train_epoch`, measuring the
    per-pixel MSE on the training and the test images (eval mode, VAE at z = mu) before training and every
    ``every`` epochs. Seeded like :func:`course_lib.train.fit`, so it ends with the same weights."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if cfg.plateau_scheduler:
        raise ValueError("fit_tracked keeps the learning rate constant; use a config without plateau_scheduler")
    check_images(train_images)
    objective = objective or default_objective(model)
    batches, optimizer, generator = training_parts(model, train_images, cfg)

    def record(epoch: int) -> dict[str, float]:
        return {"epoch": epoch, "train_mse": reconstruction_mse(model, train_images).mean().item(),
                "test_mse": reconstruction_mse(model, test_images).mean().item()}

    records = [record(0)]
    for epoch in range(1, cfg.epochs + 1):
        loss = train_epoch(model, batches, objective, optimizer, cfg.augmentation, generator)
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"the training loss became {loss} in epoch {epoch}")
        if epoch % every == 0 or epoch == cfg.epochs:
            records.append(record(epoch))
    return records


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


def generalisation_gap(record: dict[str, float]) -> float:
    """Relative train/test gap: test MSE / train MSE - 1 (0 = no gap, 1 = test error twice the train error)."""
    return record["test_mse"] / record["train_mse"] - 1.0


def epochs_to_target(values: Sequence[float], target: float) -> int | None:
    """The first epoch (1-based) whose value is at or below ``target``, or None if never reached."""
    for epoch, value in enumerate(values, start=1):
        if value <= target:
            return epoch
    return None
