"""Using a trained AE or VAE: reconstruct, encode, decode, sample the prior, and test-set metrics in stated units.

Everything here runs in eval mode without gradients, in batches, and never augments.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib import losses
from course_lib.data import check_images
from course_lib.metrics import psnr_db
from course_lib.models import is_vae

ACTIVE_UNIT_THRESHOLD = 0.01
"""A latent unit u is active when the variance over images of its encoder mean, Cov_x(E_q[z_u | x]), exceeds
this value (Burda, Grosse and Salakhutdinov, "Importance weighted autoencoders", ICLR 2016). The KL-based count
(``active_units``) uses the same number, in nats: the unit's KL, averaged over images, exceeds 0.01 nats."""


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Latent codes (N, latent_dim): the AE's z, or the VAE's posterior mean mu (no sampling)."""
    model.eval()
    with torch.no_grad():
        codes = [model.encode(b)[0] if is_vae(model) else model.encode(b) for b in images.split(batch_size)]
    return torch.cat(codes)


def decode(model: nn.Module, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Images (N, 1, 28, 28) in [0, 1] decoded from latent points (N, latent_dim)."""
    model.eval()
    z = z.to(_device_of(model), torch.float32)
    with torch.no_grad():
        return torch.cat([model.decode(b) for b in z.split(batch_size)])


def reconstruct(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Deterministic reconstructions: the AE's output, or the VAE decoded at z = mu."""
    return decode(model, encode(model, images, batch_size), batch_size)


def sample_prior(model: nn.Module, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images decoded from z ~ N(0, I), drawn with a generator seeded by ``seed``.

    For a VAE this is its own generator; for an AE the same recipe shows what its decoder makes of points
    it was never trained to place there.
    """
    device = _device_of(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    return decode(model, torch.randn(n, model.config.latent_dim, generator=generator, device=device))


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, frames: int) -> torch.Tensor:
    """Straight lines between pairs of codes: (P, D) and (P, D) -> (P, frames, D), endpoints included."""
    if frames < 2:
        raise ValueError(f"an interpolation path needs at least 2 frames, got {frames}")
    if z_start.shape != z_end.shape:
        raise ValueError(f"start and end codes differ in shape: {tuple(z_start.shape)} vs {tuple(z_end.shape)}")
    t = torch.linspace(0.0, 1.0, frames, device=z_start.device, dtype=z_start.dtype).view(1, frames, 1)
    return z_start.unsqueeze(1) * (1 - t) + z_end.unsqueeze(1) * t


def _unit_statistics(mus: list[torch.Tensor], unit_kls: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-unit variance over images of the encoder mean and per-unit KL averaged over images, from batches."""
    mu = torch.cat(mus).double()
    return {
        "mean_variance": mu.var(dim=0, correction=0).float(),
        "kl": (torch.cat(unit_kls).double().sum(0) / len(mu)).float(),
    }


def unit_activity(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> dict[str, torch.Tensor]:
    """How much each latent unit of a VAE is used on ``images``: two tensors of shape (latent_dim,).

    ``mean_variance``: the variance over the images of the unit's encoder mean, Var_x(mu_u(x)) =
    Cov_x(E_q[z_u | x]) (divisor N), in squared latent units: 0 for a unit whose mean ignores the input.
    ``kl``: the unit's KL(q(z_u | x) || N(0, 1)) averaged over the images, in nats (the rate, unit by unit).
    A unit is active when either exceeds :data:`ACTIVE_UNIT_THRESHOLD` (by its definition).
    """
    if not is_vae(model):
        raise TypeError("unit_activity needs a VAE (an encoder that returns mu and logvar)")
    check_images(images)
    model.eval()
    mus, unit_kls = [], []
    with torch.no_grad():
        for batch in images.split(batch_size):
            mu, logvar = model.encode(batch)
            mus.append(mu)
            unit_kls.append(losses.kl_per_unit(mu, logvar))
    return _unit_statistics(mus, unit_kls)


def evaluate(model: nn.Module, images: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Metrics on ``images`` (use the test set): per-pixel MSE, PSNR (dB), BCE (nats per image).

    MSE, PSNR and BCE use the deterministic reconstruction (z = mu for a VAE). For a VAE also, in nats per
    image: ``kl`` (the rate R), ``distortion`` (the BCE with a sampled z ~ q(z|x), one draw per image: an
    unbiased estimate of the distortion D = E_q[-log p(x|z)]), ``neg_elbo`` = distortion + kl (the negative
    ELBO at beta = 1, one-sample estimate) and ``neg_elbo_z_mean`` = bce + kl (z = mu); and the number of
    active latent units, ``active_units_cov`` by the covariance definition (Var_x mu_u(x) > 0.01) and
    ``active_units`` by the KL one (average KL of the unit > 0.01 nats; the count notebooks 02-04 teach and the
    course's caches hold); see :func:`unit_activity`.
    """
    check_images(images)
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    sums: dict[str, float] = {}
    mus, unit_kls = [], []
    with torch.no_grad():
        for batch in images.split(batch_size):
            if is_vae(model):
                mu, logvar = model.encode(batch)
                x_mean = model.decode(mu)
                x_sampled = model.decode(model.reparameterize(mu, logvar, generator))
                kl = losses.kl_per_image(mu, logvar)
                distortion = losses.bce_per_image(x_sampled, batch)
                mus.append(mu)
                unit_kls.append(losses.kl_per_unit(mu, logvar))
                per_image = {
                    "kl": kl,
                    "distortion": distortion,
                    "neg_elbo": distortion + kl,
                    "neg_elbo_z_mean": losses.bce_per_image(x_mean, batch) + kl,
                }
            else:
                x_mean = model(batch)
                per_image = {}
            mse = losses.mse_per_pixel(x_mean, batch)
            per_image |= {"mse": mse, "psnr": psnr_db(mse), "bce": losses.bce_per_image(x_mean, batch)}
            for key, values in per_image.items():
                sums[key] = sums.get(key, 0.0) + values.sum().item()
    n = len(images)
    metrics = {key: total / n for key, total in sums.items()}
    if mus:
        units = _unit_statistics(mus, unit_kls)
        metrics["active_units_cov"] = float((units["mean_variance"] > ACTIVE_UNIT_THRESHOLD).sum().item())
        metrics["active_units"] = float((units["kl"] > ACTIVE_UNIT_THRESHOLD).sum().item())
    return metrics
