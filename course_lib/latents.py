"""Latent codes for latent diffusion: encode with an AE/VAE, standardise with one scale factor, decode.

Stable Diffusion multiplies its VAE's latents by 0.18215 before diffusion: that number is 1 / std of the
latents, measured once on a batch of training images, so that the diffused values have unit variance, like
the N(0, I) noise they are mixed with. :class:`LatentScaler` does the same for the course's models.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.evaluate import encode_mean


class LatentScaler:
    """z_scaled = (z - shift) * scale, with scale = 1 / std(z) measured on training latents (std over all values).

    One scalar for all latent units (as Stable Diffusion does), so relative sizes between units survive:
    a unit the VAE barely uses stays near zero instead of being blown up to unit variance.
    ``center=True`` also subtracts the latents' mean (useful for an AE, whose codes need not be centred).
    """

    def __init__(self, scale: float = 1.0, shift: float = 0.0) -> None:
        self.scale = float(scale)
        self.shift = float(shift)

    def __repr__(self) -> str:
        return f"LatentScaler(scale={self.scale:.4g}, shift={self.shift:.4g})"

    def fit(self, latents: torch.Tensor, center: bool = False) -> LatentScaler:
        """Measure shift (0, or the mean if ``center``) and scale = 1 / std on ``latents``; return self."""
        if latents.dim() != 2 or len(latents) < 2:
            raise ValueError(f"latents must be a (N >= 2, latent_dim) tensor, got shape {tuple(latents.shape)}")
        latents = latents.detach().double()
        self.shift = latents.mean().item() if center else 0.0
        std = latents.std().item()  # over all values, like Stable Diffusion's 1 / 0.18215
        if not std > 0:
            raise ValueError("latents have zero spread; cannot scale them")
        self.scale = 1.0 / std
        return self

    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        """Autoencoder latents -> the standardised values that diffusion works on."""
        return (latents - self.shift) * self.scale

    def decode(self, scaled: torch.Tensor) -> torch.Tensor:
        """Standardised values (e.g. diffusion samples) -> latents the autoencoder's decoder understands."""
        return scaled / self.scale + self.shift


def encode_images(autoencoder: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Latent codes of ``images``: the AE's z or the VAE's posterior mean mu (no sampling)."""
    return encode_mean(autoencoder, images, batch_size=batch_size)


@torch.no_grad()
def decode_latents(
    autoencoder: nn.Module, scaler: LatentScaler, scaled: torch.Tensor, batch_size: int = 1000
) -> torch.Tensor:
    """Standardised latents -> images in [0, 1], decoded in batches."""
    autoencoder.eval()
    return torch.cat([autoencoder.decode(scaler.decode(b)) for b in scaled.split(batch_size)])
