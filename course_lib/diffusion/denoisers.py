"""The networks eps_theta(x_t, t) that predict the added noise: a small U-Net for pixels, an MLP for latent
vectors, a small convolutional network for spatial latents (channels x 7 x 7).

Both receive t through a sinusoidal time embedding, so one set of weights denoises at every noise level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.measure import count_flops


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (B,) -> (B, dim), as in the Transformer and DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t followed by a small MLP: the network's notion of 'how noisy is x_t'."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.dim))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding added in between, and a residual connection."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(math.gcd(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(math.gcd(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class PixelUNet(nn.Module):
    """A small U-Net eps_theta(x_t, t) for 1 x 28 x 28 images: 28 -> 14 -> 7 and back, with skip connections.

    ``channels`` are the widths at 28x28, 14x14 and 7x7. Input and output are images in [-1, 1] units.
    """

    def __init__(self, channels: Sequence[int] = (16, 32, 64), time_dim: int = 64) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.channels = tuple(channels)
        self.time_embedding = TimeEmbedding(time_dim)
        self.stem = nn.Conv2d(1, c0, 3, padding=1)
        self.down0 = ResBlock(c0, c0, time_dim)
        self.pool0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)  # 28 -> 14
        self.down1 = ResBlock(c0, c1, time_dim)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)  # 14 -> 7
        self.mid = ResBlock(c1, c2, time_dim)
        self.up1 = ResBlock(c2 + c1, c1, time_dim)  # at 14x14, after upsampling and the skip
        self.up0 = ResBlock(c1 + c0, c0, time_dim)  # at 28x28
        self.out = nn.Sequential(nn.GroupNorm(math.gcd(8, c0), c0), nn.SiLU(), nn.Conv2d(c0, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t)
        h0 = self.down0(self.stem(x), temb)  # c0 x 28 x 28
        h1 = self.down1(self.pool0(h0), temb)  # c1 x 14 x 14
        h = self.mid(self.pool1(h1), temb)  # c2 x 7 x 7
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up1(torch.cat([h, h1], dim=1), temb)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up0(torch.cat([h, h0], dim=1), temb)
        return self.out(h)


class MLPBlock(nn.Module):
    """LayerNorm-SiLU-linear, the time embedding added, SiLU-linear, and a residual connection."""

    def __init__(self, width: int, time_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.time = nn.Linear(time_dim, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        y = self.fc1(F.silu(self.norm(h))) + self.time(F.silu(temb))
        return h + self.fc2(F.silu(y))


class LatentMLP(nn.Module):
    """eps_theta(z_t, t) for latent vectors: residual MLP blocks, the time embedding added in each."""

    def __init__(self, latent_dim: int, width: int = 256, depth: int = 3, time_dim: int = 64) -> None:
        super().__init__()
        if latent_dim < 1 or width < 1 or depth < 1:
            raise ValueError("latent_dim, width and depth must be >= 1")
        self.latent_dim = latent_dim
        self.time_embedding = TimeEmbedding(time_dim)
        self.inp = nn.Linear(latent_dim, width)
        self.blocks = nn.ModuleList(MLPBlock(width, time_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, latent_dim))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t)
        h = self.inp(z)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)


class LatentConvNet(nn.Module):
    """eps_theta(z_t, t) for spatial latents, given flattened as ``latent_dim`` values: a convolution in,
    residual blocks at the latent's own resolution (no down-sampling: 7 x 7 is small), a convolution out."""

    def __init__(self, latent_shape: Sequence[int], width: int = 64, depth: int = 2, time_dim: int = 64) -> None:
        super().__init__()
        if len(latent_shape) != 3 or min(latent_shape) < 1 or width < 1 or depth < 1:
            raise ValueError(f"latent_shape must be (channels, height, width) >= 1 and width, depth >= 1, got "
                             f"{tuple(latent_shape)}, {width}, {depth}")
        self.latent_shape = tuple(latent_shape)
        self.latent_dim = math.prod(latent_shape)
        self.time_embedding = TimeEmbedding(time_dim)
        self.stem = nn.Conv2d(latent_shape[0], width, 3, padding=1)
        self.blocks = nn.ModuleList(ResBlock(width, width, time_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.GroupNorm(math.gcd(8, width), width), nn.SiLU(),
                                 nn.Conv2d(width, latent_shape[0], 3, padding=1))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t)
        h = self.stem(z.reshape(-1, *self.latent_shape))
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h).reshape(z.shape)


def flops_per_image(model: nn.Module, item_shape: Sequence[int]) -> int:
    """FLOPs of one denoising step (one forward pass of eps_theta) for a single image or latent vector."""
    device = next(model.parameters()).device
    x = torch.zeros((1, *item_shape), device=device)
    t = torch.zeros(1, dtype=torch.long, device=device)
    return count_flops(model, x, t)
