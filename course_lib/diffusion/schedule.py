"""The noise schedule, the forward process q(x_t | x_0), and the two samplers that walk it back (DDPM, DDIM)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

SCHEDULES = ("linear", "cosine")


class NoiseSchedule:
    """The variances beta_1..beta_T of the forward process and the quantities derived from them.

    ``alphas = 1 - betas`` and ``alphas_cumprod[t]`` (alpha-bar_t) is their running product, so that
    q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I). Index ``t`` runs from 0 to T - 1 (the
    paper's t = 1..T). ``kind="linear"`` is Ho et al.'s 1e-4 to 0.02; ``"cosine"`` is Nichol & Dhariwal's.
    """

    def __init__(
        self,
        timesteps: int = 1000,
        kind: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        device: torch.device | str = "cpu",
    ) -> None:
        if not isinstance(timesteps, int) or timesteps < 1:
            raise ValueError(f"timesteps must be an integer >= 1, got {timesteps!r}")
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
        if kind == "linear":
            if not 0 < beta_start <= beta_end < 1:
                raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
            betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        else:
            s = 0.008
            steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        self.timesteps = timesteps
        self.kind = kind
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        self._float64 = (betas, alphas_cumprod)  # exact values for the samplers' per-step coefficients
        self.betas = betas.float().to(device)
        self.alphas = (1 - betas).float().to(device)
        self.alphas_cumprod = alphas_cumprod.float().to(device)

    def __repr__(self) -> str:
        return f"NoiseSchedule(timesteps={self.timesteps}, kind={self.kind!r})"

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """Move the schedule's tensors to ``device`` (in place) and return it."""
        for name in ("betas", "alphas", "alphas_cumprod"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps: a sample of q(x_t | x_0) in one step."""
        a = self.alphas_cumprod[t].reshape(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def sampling_timesteps(self, steps: int) -> list[int]:
        """``steps`` timesteps from T - 1 down to 0, evenly spaced (what DDIM visits)."""
        if not isinstance(steps, int) or not 1 <= steps <= self.timesteps:
            raise ValueError(f"steps must be an integer in [1, {self.timesteps}], got {steps!r}")
        return torch.linspace(self.timesteps - 1, 0, steps).round().long().tolist()


def _start(model: nn.Module, shape: Sequence[int], seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """Eval mode, a seeded generator on the model's device, and x_T ~ N(0, I) drawn from it."""
    device = next(model.parameters()).device
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator, device=device), generator


def ddpm_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    seed: int = 0,
    clip: float | None = None,
) -> torch.Tensor:
    """Ancestral sampling through all T steps: x_{t-1} = mu_theta(x_t, t) + sigma_t z, sigma_t^2 = beta-tilde_t.

    ``clip`` clamps the predicted x_0 to [-clip, clip] each step (1.0 for images in [-1, 1]).
    """
    x, generator = _start(model, shape, seed)
    betas, abar = (v.tolist() for v in schedule._float64)
    with torch.no_grad():
        for t in reversed(range(schedule.timesteps)):
            eps = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
            abar_prev = abar[t - 1] if t > 0 else 1.0
            x0 = (x - math.sqrt(1 - abar[t]) * eps) / math.sqrt(abar[t])
            if clip is not None:
                x0 = x0.clamp(-clip, clip)
            # posterior mean of q(x_{t-1} | x_t, x_0): the same as (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)
            mean = (math.sqrt(abar_prev) * betas[t] / (1 - abar[t])) * x0 + (
                math.sqrt(1 - betas[t]) * (1 - abar_prev) / (1 - abar[t])
            ) * x
            if t > 0:
                var = betas[t] * (1 - abar_prev) / (1 - abar[t])
                x = mean + math.sqrt(var) * torch.randn(x.shape, generator=generator, device=x.device)
            else:
                x = mean
    return x


@torch.no_grad()
def ddim_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    steps: int = 50,
    eta: float = 0.0,
    seed: int = 0,
    clip: float | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021) on ``steps`` evenly spaced timesteps; deterministic given the seed at ``eta=0``.

    Each step predicts x_0 from eps_theta, then jumps to the previous visited timestep:
    x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma^2) eps_hat + sigma z. ``eta=1`` gives
    DDPM-like ancestral noise on the shorter schedule.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    timesteps = schedule.sampling_timesteps(steps)
    x, generator = _start(model, shape, seed)
    abar = schedule._float64[1].tolist()
    for i, t in enumerate(timesteps):
        a_t = abar[t]
        a_prev = abar[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        eps = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device)
    return x
