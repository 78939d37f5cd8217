"""Test-set metrics for an AE or VAE, computed without augmentation and in stated units."""

from __future__ import annotations

import torch
from torch import nn

from course_lib import losses
from course_lib.data import check_images
from course_lib.models import is_vae

ACTIVE_UNIT_THRESHOLD = 0.01
"""A latent unit is active when its average KL exceeds this many nats (a common choice)."""


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Deterministic reconstructions: the AE's output, or the VAE decoded at z = mu."""
    model.eval()
    outputs = []
    for batch in images.split(batch_size):
        if is_vae(model):
            mu, _ = model.encode(batch)
            outputs.append(model.decode(mu))
        else:
            outputs.append(model(batch))
    return torch.cat(outputs)


@torch.no_grad()
def encode_mean(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Latent codes: the AE's z, or the VAE's posterior mean mu."""
    model.eval()
    codes = [model.encode(b)[0] if is_vae(model) else model.encode(b) for b in images.split(batch_size)]
    return torch.cat(codes)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Metrics on ``images`` (use the test set): per-pixel MSE, PSNR (dB), BCE (nats per image).

    For a VAE also: KL (nats per image), the negative ELBO at beta = 1 with a sampled z (an unbiased
    one-sample estimate) and with z = mu, and the number of active latent units. MSE, PSNR and BCE use
    the deterministic reconstruction (z = mu for a VAE).
    """
    check_images(images)
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    sums: dict[str, float] = {}
    unit_kl = []
    for batch in images.split(batch_size):
        if is_vae(model):
            mu, logvar = model.encode(batch)
            x_mean = model.decode(mu)
            x_sampled = model.decode(model.reparameterize(mu, logvar, generator))
            kl = losses.kl_per_image(mu, logvar)
            unit_kl.append(losses.kl_per_unit(mu, logvar).sum(0))
            per_image = {
                "kl": kl,
                "neg_elbo": losses.bce_per_image(x_sampled, batch) + kl,
                "neg_elbo_z_mean": losses.bce_per_image(x_mean, batch) + kl,
            }
        else:
            x_mean = model(batch)
            per_image = {}
        mse = losses.mse_per_pixel(x_mean, batch)
        per_image |= {"mse": mse, "psnr": losses.psnr_db(mse), "bce": losses.bce_per_image(x_mean, batch)}
        for key, values in per_image.items():
            sums[key] = sums.get(key, 0.0) + values.sum().item()
    n = len(images)
    metrics = {key: total / n for key, total in sums.items()}
    if unit_kl:
        per_unit = torch.stack(unit_kl).sum(0) / n
        metrics["active_units"] = float((per_unit > ACTIVE_UNIT_THRESHOLD).sum().item())
    return metrics
