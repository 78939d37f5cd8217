"""The two spaces diffusion runs in, and how images come out of each.

Pixel space: images in [0, 1] scaled to [-1, 1], so that signal and noise have comparable size. Latent space:
an autoencoder's codes times one scale factor. Stable Diffusion multiplies its VAE's latents by 0.18215: that
number is 1 / std of the latents, measured once on training images, so that the diffused values have unit
variance, like the N(0, I) noise they are mixed with. :class:`LatentScaler` does the same for the course's models.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.data import IMAGE_SHAPE
from course_lib.diffusion.schedule import NoiseSchedule, ddim_sample
from course_lib.evaluate import decode


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> [-1, 1], the range pixel-space diffusion works in."""
    return images * 2 - 1


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """Pixel-diffusion output in [-1, 1] (clamped) -> images in [0, 1]."""
    return ((x.clamp(-1, 1) + 1) / 2).contiguous()


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


def sample_pixel_images(
    model: nn.Module, schedule: NoiseSchedule, n: int, steps: int, seed: int = 0, eta: float = 0.0
) -> torch.Tensor:
    """``n`` images in [0, 1] from a pixel denoiser: ``steps`` DDIM steps, x_0 clipped to [-1, 1] each step."""
    return to_image_range(ddim_sample(model, schedule, (n, *IMAGE_SHAPE), steps=steps, eta=eta, seed=seed, clip=1.0))


def sample_latent_images(
    model: nn.Module,
    schedule: NoiseSchedule,
    autoencoder: nn.Module,
    scaler: LatentScaler,
    n: int,
    steps: int,
    seed: int = 0,
    eta: float = 0.0,
) -> torch.Tensor:
    """``n`` images in [0, 1]: ``steps`` DDIM steps in the scaled latent space, then one pass of the decoder."""
    z = ddim_sample(model, schedule, (n, model.latent_dim), steps=steps, eta=eta, seed=seed)
    return decode(autoencoder, scaler.decode(z))
