"""The epsilon-prediction loss of Ho et al. (2020) and training under a wall-clock budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import chain, repeat

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.config import optimizer_kernel
from course_lib.data import BatchIterator
from course_lib.diffusion.schedule import NoiseSchedule
from course_lib.measure import synchronize


def diffusion_loss(
    model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The simple DDPM loss: E_{t, eps} |eps - eps_theta(x_t, t)|^2, averaged over the batch and values."""
    t = torch.randint(0, schedule.timesteps, (x0.shape[0],), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    return F.mse_loss(model(schedule.q_sample(x0, t, noise), t), noise)


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

    def summary(self, name: str) -> str:
        """One line: steps, epochs, seconds, time per step and the loss from the first to the last log."""
        return (f"{name}: {self.total_steps} steps ({self.epochs:.3g} epochs) in {self.total_seconds:.1f} s, "
                f"{self.total_seconds / self.total_steps * 1e3:.3g} ms per step; "
                f"loss {self.losses[0]:.3f} -> {self.losses[-1]:.3f}")


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
    if len(data) == 0:
        raise ValueError("train_diffusion needs at least one training item, got 0")
    device = next(model.parameters()).device
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
    synchronize(device)
    start = time.perf_counter()
    for step, (x0,) in enumerate(chain.from_iterable(repeat(batches)), start=1):  # epoch after epoch
        loss = diffusion_loss(model, schedule, x0, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        running += loss.detach()
        count += 1
        if step % log_every == 0:
            history.steps.append(step)
            history.losses.append(running.item() / count)  # .item() also waits for the device
            history.seconds.append(time.perf_counter() - start)
            running.zero_()
            count = 0
        out_of_time = time.perf_counter() - start >= budget_s and step >= min_steps
        if out_of_time or (max_steps is not None and step >= max_steps):
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
