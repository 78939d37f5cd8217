"""Denoising diffusion (DDPM) in pixel space and in an autoencoder's latent space.

The pieces, in the order notebook 06 teaches them:

- :class:`NoiseSchedule`: the betas (linear or cosine), the cumulative products alpha-bar, and the forward
  process q(x_t | x_0) (:meth:`NoiseSchedule.q_sample`).
- :func:`diffusion_loss`: the epsilon-prediction loss of Ho et al. (2020).
- Two denoisers eps_theta(x_t, t), both with a sinusoidal time embedding: :class:`PixelUNet` (a small
  convolutional U-Net for 1 x 28 x 28 images in [-1, 1]) and :class:`LatentMLP` (for latent vectors).
- Two samplers: :func:`ddpm_sample` (ancestral, all T steps) and :func:`ddim_sample` (deterministic at
  ``eta=0``, any number of steps).
- :func:`train_diffusion`: training until a wall-clock budget is spent, seeded, on device-resident data.
- Measuring: :func:`timed`, :func:`flops_per_image`, and the pixel-vs-latent table
  (:class:`MethodResult`, :func:`comparison_table`, :func:`goal_report`) that the notebook and
  ``benchmarks/latent_diffusion.py`` both print.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import BatchIterator
from course_lib.device import optimizer_kernel
from course_lib.flops import count_flops

SCHEDULES = ("linear", "cosine")


# ----------------------------------------------------------------------------------------------------------
# Noise schedule and forward process
# ----------------------------------------------------------------------------------------------------------
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


def diffusion_loss(
    model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The simple DDPM loss: E_{t, eps} |eps - eps_theta(x_t, t)|^2, averaged over the batch and values."""
    t = torch.randint(0, schedule.timesteps, (x0.shape[0],), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return F.mse_loss(model(schedule.q_sample(x0, t, noise), t), noise)


# ----------------------------------------------------------------------------------------------------------
# Denoisers
# ----------------------------------------------------------------------------------------------------------
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


class _MLPBlock(nn.Module):
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
        self.blocks = nn.ModuleList(_MLPBlock(width, time_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, latent_dim))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t)
        h = self.inp(z)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)


# ----------------------------------------------------------------------------------------------------------
# Samplers
# ----------------------------------------------------------------------------------------------------------
def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
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
    device = _device_of(model)
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(tuple(shape), generator=generator, device=device)
    betas, abar = (v.tolist() for v in schedule._float64)
    for t in reversed(range(schedule.timesteps)):
        eps = model(x, torch.full((x.shape[0],), t, device=device, dtype=torch.long))
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
            x = mean + math.sqrt(var) * torch.randn(x.shape, generator=generator, device=device)
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
    device = _device_of(model)
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(tuple(shape), generator=generator, device=device)
    abar = schedule._float64[1].tolist()
    timesteps = schedule.sampling_timesteps(steps)
    for i, t in enumerate(timesteps):
        a_t = abar[t]
        a_prev = abar[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        eps = model(x, torch.full((x.shape[0],), t, device=device, dtype=torch.long))
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=device)
    return x


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> [-1, 1], the range pixel-space diffusion works in."""
    return images * 2 - 1


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """Pixel-diffusion output in [-1, 1] (clamped) -> images in [0, 1]."""
    return ((x.clamp(-1, 1) + 1) / 2).contiguous()


def sample_pixel_images(
    model: nn.Module, schedule: NoiseSchedule, n: int, steps: int, seed: int = 0, eta: float = 0.0
) -> torch.Tensor:
    """``n`` images in [0, 1] from a pixel-space denoiser with ``steps`` DDIM steps (x_0 clipped to [-1, 1])."""
    return to_image_range(ddim_sample(model, schedule, (n, 1, 28, 28), steps=steps, eta=eta, seed=seed, clip=1.0))


def sample_latent_images(
    model: nn.Module,
    schedule: NoiseSchedule,
    autoencoder: nn.Module,
    scaler: Any,
    n: int,
    steps: int,
    seed: int = 0,
    eta: float = 0.0,
) -> torch.Tensor:
    """``n`` images in [0, 1]: ``steps`` DDIM steps in the scaled latent space, then one pass of the decoder."""
    from course_lib.latents import decode_latents

    latent_dim = model.latent_dim
    z = ddim_sample(model, schedule, (n, latent_dim), steps=steps, eta=eta, seed=seed)
    return decode_latents(autoencoder, scaler, z)


# ----------------------------------------------------------------------------------------------------------
# Training with a wall-clock budget
# ----------------------------------------------------------------------------------------------------------
@dataclass
class DiffusionHistory:
    """What :func:`train_diffusion` did: logged (step, seconds, mean loss since the last log), totals."""

    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    total_steps: int = 0
    total_seconds: float = 0.0
    epochs: float = 0.0

    def loss_fell(self) -> bool:
        """True when the last logged loss is below the first one."""
        return len(self.losses) >= 2 and self.losses[-1] < self.losses[0]


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so that a wall-clock time measures what was computed."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def train_diffusion(
    model: nn.Module,
    schedule: NoiseSchedule,
    data: torch.Tensor,
    budget_s: float,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    max_steps: int | None = None,
    min_steps: int = 1,
    log_every: int = 10,
    grad_clip: float | None = 1.0,
) -> DiffusionHistory:
    """Train ``model`` in place on ``data`` (already on the model's device) until ``budget_s`` seconds pass.

    Adam on the epsilon loss; batches from a seeded :class:`course_lib.data.BatchIterator`, t and noise from
    a seeded generator. The clock is checked after every step, so training ends at most one step past the
    budget (``max_steps`` stops it earlier; at least ``min_steps`` are always taken). The number of steps
    depends on the machine's speed; the seed fixes which batches, timesteps and noise come in which order.
    """
    if budget_s < 0 or (budget_s == 0 and min_steps < 1):
        raise ValueError(f"budget_s must be > 0 seconds (or 0 with min_steps >= 1), got {budget_s}")
    device = _device_of(model)
    if data.device != device:
        raise ValueError(f"data is on {data.device} but the model on {device}; move it once, before training")
    schedule.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    batches = BatchIterator(data, batch_size=batch_size, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, **optimizer_kernel(device))
    history = DiffusionHistory()
    model.train()
    running = torch.zeros((), device=device)
    count = 0
    step = 0
    synchronize(device)
    start = time.perf_counter()
    done = False
    while not done:
        for (x0,) in batches:
            loss = diffusion_loss(model, schedule, x0, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            running += loss.detach()
            count += 1
            step += 1
            if step % log_every == 0:
                history.steps.append(step)
                history.losses.append(running.item() / count)  # .item() also waits for the device
                history.seconds.append(time.perf_counter() - start)
                running.zero_()
                count = 0
            out_of_time = time.perf_counter() - start >= budget_s and step >= min_steps
            if out_of_time or (max_steps is not None and step >= max_steps):
                done = True
                break
    synchronize(device)
    history.total_seconds = time.perf_counter() - start
    if count:
        history.steps.append(step)
        history.losses.append(running.item() / count)
        history.seconds.append(history.total_seconds)
    history.total_steps = step
    history.epochs = step * batch_size / len(data)
    model.eval()
    return history


# ----------------------------------------------------------------------------------------------------------
# Measuring: time, FLOPs, sample quality helpers, the comparison table
# ----------------------------------------------------------------------------------------------------------
def timed(fn: Callable[..., Any], *args: Any, device: torch.device | str | None = None, **kwargs: Any):
    """Run ``fn(*args, **kwargs)`` once; return (its result, wall-clock seconds), waiting for the GPU."""
    if device is not None:
        synchronize(device)
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    if device is not None:
        synchronize(device)
    return result, time.perf_counter() - start


def flops_per_image(model: nn.Module, item_shape: Sequence[int]) -> int:
    """FLOPs of one denoising step (one forward pass of eps_theta) for a single image or latent vector."""
    device = _device_of(model)
    x = torch.zeros((1, *item_shape), device=device)
    t = torch.zeros(1, dtype=torch.long, device=device)
    return count_flops(model, x, t)


def balanced_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` items with (as nearly as possible) equal counts per class, drawn at random.

    Never take the first n of a label-sorted array such as mnist-5k: that would be mostly zeros.
    """
    labels = labels.cpu()
    classes = labels.unique()
    generator = torch.Generator().manual_seed(seed)
    per_class, extra = divmod(n, len(classes))
    chosen = []
    for i, c in enumerate(classes.tolist()):
        idx = torch.nonzero(labels == c).flatten()
        k = per_class + (1 if i < extra else 0)
        if k > len(idx):
            raise ValueError(f"class {c} has only {len(idx)} items, need {k}")
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:k]])
    out = torch.cat(chosen)
    return out[torch.randperm(len(out), generator=generator)]


def class_histogram(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """How many of ``images`` the classifier assigns to each digit 0-9 (a tensor of 10 counts)."""
    from course_lib.sample_quality import predict_proba

    predicted = predict_proba(classifier, images).argmax(1).cpu()
    return torch.bincount(predicted, minlength=10)


def plot_class_histograms(histograms: dict[str, torch.Tensor], ax=None, title: str | None = None):
    """Grouped bars: the predicted-class counts of several image sets, with the uniform count as a line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / max(len(histograms), 1)
    for i, (name, counts) in enumerate(histograms.items()):
        xs = [d + (i - (len(histograms) - 1) / 2) * width for d in range(10)]
        ax.bar(xs, counts.tolist(), width=width, label=name)
    total = int(next(iter(histograms.values())).sum()) if histograms else 0
    if total:
        ax.axhline(total / 10, color="black", lw=1, ls="--", label="uniform (N / 10)")
    ax.set_xticks(range(10))
    ax.set_xlabel("digit predicted by the course classifier")
    ax.set_ylabel("number of images")
    ax.set_title(title or "Which digits does each model generate?")
    ax.legend(fontsize=8)
    return ax


@torch.no_grad()
def prior_samples(vae: nn.Module, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images decoded from z ~ N(0, I): what a VAE generates on its own, without diffusion."""
    device = _device_of(vae)
    vae.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    return vae.decode(torch.randn(n, vae.config.latent_dim, generator=generator, device=device))


def reference_flds(
    classifier: nn.Module,
    autoencoder: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    n: int,
    seed: int = 0,
) -> dict[str, float]:
    """FLDs (to the whole test set) that generated images are judged against, each from ``n`` images:

    - ``"floor"``: real training digits (class-balanced subset), the best any generator can hope for;
    - ``"reconstructions"``: the autoencoder's reconstructions (z = mean) of a class-balanced subset of the
      test set: the decoder's quality, which caps latent diffusion (slightly optimistic: the originals are
      in the reference set);
    - ``"prior"`` (VAE only): images decoded from N(0, I) samples, the VAE's own generator.
    """
    from course_lib.evaluate import reconstruct
    from course_lib.models import is_vae
    from course_lib.sample_quality import fld

    device = test_images.device
    train_idx = balanced_subset(train_labels, n, seed=seed).to(device)
    test_idx = balanced_subset(test_labels, min(n, len(test_images)), seed=seed).to(device)
    out = {
        "floor": fld(classifier, train_images[train_idx], test_images),
        "reconstructions": fld(classifier, reconstruct(autoencoder, test_images[test_idx]), test_images),
    }
    if is_vae(autoencoder):
        out["prior"] = fld(classifier, prior_samples(autoencoder, n, seed=seed), test_images)
    return out


def reference_labels(n: int, kind: str = "VAE") -> dict[str, str]:
    """How :func:`comparison_table` names the entries of :func:`reference_flds`."""
    return {
        "floor": f"real train ({n}, class-balanced) vs real test (the floor)",
        "reconstructions": f"{kind} reconstructions of {n} test images (latent diffusion's cap)",
        "prior": f"{kind} decoded from its N(0, I) prior ({n}, no diffusion)",
    }


@dataclass
class MethodResult:
    """One side of the comparison, as measured: sizes, costs, seconds and sample quality (FLD)."""

    name: str
    denoiser_params: int
    flops_per_step: int
    steps: int
    n_samples: int
    train_seconds: float
    sample_seconds: float
    fld: float
    autoencoder_params: int = 0
    decode_flops: int = 0
    autoencoder_seconds: float = 0.0

    @property
    def flops_per_sample(self) -> int:
        """All FLOPs to make one image: ``steps`` denoising steps plus (latent side) one decoding."""
        return self.steps * self.flops_per_step + self.decode_flops


def _fmt(value: float) -> str:
    """Counts with thousands separators (millions as 'M'), seconds and FLD with 3 significant digits."""
    if value != value:  # NaN
        return "-"
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{value / 1e6:,.3g} M" if abs(value) >= 1e6 else f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def comparison_table(pixel: MethodResult, latent: MethodResult, references: dict[str, float] | None = None) -> str:
    """The notebook's and the benchmark's table: each quantity for pixel and latent diffusion and their ratio,
    then the FLD references (lower FLD is better). ``references`` maps labels (or the keys of
    :func:`reference_flds`) to FLDs."""
    rows: list[tuple[str, float, float]] = [
        ("denoiser parameters", pixel.denoiser_params, latent.denoiser_params),
        ("autoencoder parameters (decoder used)", pixel.autoencoder_params, latent.autoencoder_params),
        ("FLOPs per denoising step, per image", pixel.flops_per_step, latent.flops_per_step),
        ("FLOPs of decoding, per image (once)", pixel.decode_flops, latent.decode_flops),
        (f"FLOPs per generated image ({pixel.steps} steps)", pixel.flops_per_sample, latent.flops_per_sample),
        ("training time, s (latent: AE + diffusion)", pixel.train_seconds, latent.train_seconds),
        (f"sampling time for {pixel.n_samples} images, s", pixel.sample_seconds, latent.sample_seconds),
        ("FLD to the test set (lower is better)", pixel.fld, latent.fld),
    ]
    name_w = max(len(r[0]) for r in rows) + 2
    header = f"{'':<{name_w}}{pixel.name:>14}{latent.name:>14}{'pixel/latent':>14}"
    lines = [header, "-" * len(header)]
    for label, p, q in rows:
        ratio = f"{p / q:,.1f}x" if p and q else "-"
        lines.append(f"{label:<{name_w}}{_fmt(p):>14}{_fmt(q):>14}{ratio:>14}")
    if latent.autoencoder_seconds:
        lines.append(f"  (of the latent side's training time, the autoencoder took {latent.autoencoder_seconds:.3g} s)")
    if references:
        lines += ["", "FLD references (same classifier, same test set):"]
        names = reference_labels(latent.n_samples)
        for key, value in references.items():
            label = names.get(key, key)
            lines.append(f"  {label:<{name_w + 30}}{value:>10.3g}")
    return "\n".join(lines)


def goal_report(
    pixel: MethodResult, latent: MethodResult, prior_fld: float, min_speedup: float = 50.0
) -> tuple[list[tuple[str, str, bool]], str]:
    """Check the course's goals on measured numbers; return (goal, measured, met) rows and their text."""
    speedup = pixel.sample_seconds / latent.sample_seconds
    goals = [
        (
            f"latent sampling >= {min_speedup:g}x faster than pixel sampling (same steps, same batch)",
            f"{speedup:,.1f}x",
            speedup >= min_speedup,
        ),
        (
            "latent FLD no worse than pixel FLD at the same training wall-clock",
            f"{latent.fld:.3g} vs {pixel.fld:.3g}",
            latent.fld <= pixel.fld,
        ),
        (
            "latent FLD better than the VAE's own prior samples",
            f"{latent.fld:.3g} vs {prior_fld:.3g}",
            latent.fld < prior_fld,
        ),
    ]
    why_not = [
        f"  why: fixed per-step costs (Python, dispatch, GPU kernel launches) dominate both models at this batch; "
        f"the FLOP ratio per step is {pixel.flops_per_step / max(latent.flops_per_step, 1):,.0f}x",
        "  why: the pixel model had enough time to fit, and the VAE decoder's blur (its reconstruction FLD) caps "
        "the latent side",
        "  why: the latent model's share of the budget (after the VAE) was too short to model the latents better "
        "than N(0, I); raise the budget",
    ]
    lines = []
    for (goal, measured, met), reason in zip(goals, why_not):
        lines.append(f"[{'met' if met else 'NOT met':>7}] {goal}: {measured}")
        if not met:
            lines.append(reason)
    return goals, "\n".join(lines)
