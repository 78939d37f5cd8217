"""On-device data augmentation in batches: per-image random rotation and additive Gaussian noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image by its own angle in degrees (bilinear, zero fill, about the centre).

    The sampling grid is the one ``F.affine_grid`` makes (``align_corners=False``), computed by broadcasting:
    affine_grid's batched matrix product took most of the rotation's time on a CPU.
    """
    n, _, height, width = images.shape
    radians = (degrees.to(images) * (math.pi / 180.0)).view(n, 1, 1)
    cos, sin = torch.cos(radians), torch.sin(radians)
    xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width, device=images.device, dtype=images.dtype)
    ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height, device=images.device, dtype=images.dtype)
    xs, ys = xs.view(1, 1, width), ys.view(1, height, 1)
    grid = torch.stack([cos * xs - sin * ys, sin * xs + cos * ys], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class Augmentation:
    """Random rotation in [-rotation_degrees, +rotation_degrees] and N(0, noise_std^2) noise, clamped to [0, 1].

    Either part is off at 0. Applied to training batches only; test data is never augmented. For training an
    autoencoder use :meth:`inputs_and_targets`: the rotated image is the target, the rotated and noisy image
    the input, so noise teaches the model to remove noise (a denoising autoencoder) rather than to copy it.
    """

    rotation_degrees: float = 0.0
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if self.rotation_degrees < 0 or self.noise_std < 0:
            raise ValueError("rotation_degrees and noise_std must be >= 0")

    @property
    def active(self) -> bool:
        return self.rotation_degrees > 0 or self.noise_std > 0

    def inputs_and_targets(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rotated + noisy inputs, rotated targets); each image gets its own angle and noise.

        With both parts off, both are ``images`` itself."""
        if self.rotation_degrees > 0:
            angles = torch.rand(images.shape[0], generator=generator, device=images.device) * 2 - 1
            images = rotate(images, angles * self.rotation_degrees).clamp(0.0, 1.0)
        targets = images
        if self.noise_std > 0:
            noise = torch.randn(images.shape, generator=generator, device=images.device)
            images = (images + self.noise_std * noise).clamp(0.0, 1.0)
        return images, targets

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The augmented images (rotated, then noisy)."""
        return self.inputs_and_targets(images, generator)[0]
