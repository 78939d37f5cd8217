"""Reconstruction losses, the closed-form KL term and the two training objectives, each in stated units.

Every function returns one value per image (shape (B,)): ``*_per_pixel`` is averaged over the 784 pixels,
``*_per_image`` is summed over them. Likelihood terms are in nats (natural log). The objectives are what
:func:`course_lib.train.fit` minimises: :class:`MSEObjective` (or :class:`BCEObjective`) for an AE,
:class:`BetaVAEObjective` (which owns beta) for a VAE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models import is_vae


def mse_per_pixel(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, one value per image (the article's AE loss is its batch mean)."""
    return F.mse_loss(x_hat, x, reduction="none").flatten(1).mean(dim=1)


def bce_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over the pixels, in nats per image: -log p(x|z) of a Bernoulli decoder.

    ``x_hat`` holds probabilities in [0, 1], ``x`` the data (PyTorch clamps each log at -100).
    """
    return F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(dim=1)


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) of each latent unit of each image, (B, latent_dim), in nats.

    KL_j = 1/2 (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1) (Kingma and Welling 2014, appendix B).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def kl_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) of a diagonal Gaussian, summed over latent units, nats per image."""
    return kl_per_unit(mu, logvar).sum(dim=1)


def beta_vae_loss(
    x_hat: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> torch.Tensor:
    """BCE + beta * KL in nats per image; at beta = 1 this is the negative ELBO."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return bce_per_image(x_hat, x) + beta * kl_per_image(mu, logvar)


class Objective(Protocol):
    """What training minimises: one loss value per image of a batch."""

    def __call__(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class MSEObjective:
    """An AE's objective: the per-pixel MSE between its reconstruction of ``inputs`` and ``targets``."""

    def __call__(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return mse_per_pixel(model(inputs), targets)


@dataclass(frozen=True)
class BCEObjective:
    """An AE trained on a VAE's reconstruction loss: BCE summed over the pixels, nats per image (a Bernoulli
    decoder, where MSE is a Gaussian one); it separates the change of loss from the variational part."""

    def __call__(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        return bce_per_image(model(inputs), targets)


@dataclass(frozen=True)
class BetaVAEObjective:
    """A VAE's objective: BCE(targets, decode(z)) + beta * KL with z ~ q(z|inputs), nats per image.

    beta = 1 is the negative ELBO; the article's improved VAE uses beta = 0.5.
    """

    beta: float = 1.0

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise ValueError(f"beta must be a number >= 0, got {self.beta}")

    def __call__(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        x_hat, mu, logvar = model(inputs, generator)
        return beta_vae_loss(x_hat, targets, mu, logvar, self.beta)


def default_objective(model: nn.Module) -> MSEObjective | BetaVAEObjective:
    """MSE for an AE, the negative ELBO (beta = 1) for a VAE."""
    return BetaVAEObjective() if is_vae(model) else MSEObjective()
