"""Reconstruction losses, the closed-form KL term and the beta-VAE objective, each in stated units.

Every function returns one value per image (shape (B,)): ``*_per_pixel`` is averaged over the 784 pixels,
``*_per_image`` is summed over them. Likelihood terms are in nats (natural log).
"""

from __future__ import annotations

from typing import Any

import torch


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def mse_per_pixel(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, one value per image (the article's AE loss is its batch mean)."""
    return (_flat(x_hat) - _flat(x)).pow(2).mean(dim=1)


class _BinaryCrossEntropy(torch.autograd.Function):
    """Element-wise BCE with PyTorch's own formula and gradient (logs clamped at -100).

    ``F.binary_cross_entropy`` computes the same values, but its CPU forward kernel is not vectorized and
    took 15% of a VAE training step (so does ``log1p``); this forward uses vectorized ``log`` and ``lerp``, the
    backward is PyTorch's native one.
    """

    @staticmethod
    def forward(ctx: Any, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x_hat, x)
        log_p = torch.log(x_hat).clamp_min_(-100.0)
        log_not_p = torch.log(1 - x_hat).clamp_min_(-100.0)
        return torch.lerp(log_not_p, log_p, x).neg_()  # -(x log p + (1 - x) log(1 - p))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x_hat, x = ctx.saved_tensors
        return torch.ops.aten.binary_cross_entropy_backward(grad, x_hat, x, None, 0), None  # 0: no reduction


def bce_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over the pixels, in nats per image: -log p(x|z) of a Bernoulli decoder.

    ``x_hat`` holds probabilities in [0, 1]; the targets ``x`` are data (no gradient flows into them).
    """
    if x.requires_grad:
        raise ValueError("bce_per_image does not differentiate with respect to the targets x; pass x.detach()")
    return _BinaryCrossEntropy.apply(_flat(x_hat), _flat(x)).sum(dim=1)


def kl_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) in closed form, summed over latent units, nats per image.

    KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The same KL, one value per image and latent unit (B, latent_dim), for counting active units."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def beta_vae_loss(
    x_hat: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> torch.Tensor:
    """BCE + beta * KL in nats per image; at beta = 1 this is the negative ELBO."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return bce_per_image(x_hat, x) + beta * kl_per_image(mu, logvar)


def psnr_db(mse: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for images in [0, 1], from a per-image MSE."""
    return -10.0 * torch.log10(mse.clamp_min(1e-12))
