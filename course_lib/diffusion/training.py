"""The epsilon-prediction loss of Ho et al. (2020), and training for a number of steps with snapshots of the weights."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, islice, repeat

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


@dataclass(frozen=True)
class Snapshot:
    """The denoiser's weights after ``step`` optimizer steps, and the training seconds spent to get there."""

    step: int
    seconds: float
    state: dict[str, torch.Tensor]


@dataclass
class DiffusionHistory:
    """What :func:`train_diffusion` did: logged (step, seconds, mean loss since the last log), snapshots, totals."""

    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
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
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 10,
    grad_clip: float | None = 1.0,
    snapshot_steps: Sequence[int] = (),
) -> DiffusionHistory:
    """Train ``model`` in place on ``data`` (already on the model's device) for ``steps`` optimizer steps.

    Adam on the epsilon loss; batches from a seeded :class:`course_lib.data.BatchIterator`, t and noise from
    a seeded generator, so the seed fixes the weights after every step, whatever the machine's speed. After each
    step in ``snapshot_steps`` a copy of the weights and the seconds so far go into ``history.snapshots``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if any(not 1 <= s <= steps for s in snapshot_steps):
        raise ValueError(f"snapshot steps must lie in [1, {steps}], got {list(snapshot_steps)}")
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
    snapshot_at = set(snapshot_steps)
    model.train()
    running = torch.zeros((), device=device)
    count = 0
    synchronize(device)
    start = time.perf_counter()
    for step, (x0,) in enumerate(islice(chain.from_iterable(repeat(batches)), steps), start=1):  # epoch after epoch
        loss = diffusion_loss(model, schedule, x0, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        running += loss.detach()
        count += 1
        if step % log_every == 0 or step == steps:
            history.steps.append(step)
            history.losses.append(running.item() / count)  # .item() also waits for the device
            history.seconds.append(time.perf_counter() - start)
            running.zero_()
            count = 0
        if step in snapshot_at:
            synchronize(device)
            copy_start = time.perf_counter()
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history.snapshots.append(Snapshot(step, copy_start - start, state))
            start += time.perf_counter() - copy_start  # the copy is not training time
    synchronize(device)
    history.total_seconds = time.perf_counter() - start
    history.total_steps = steps
    history.epochs = steps * batch_size / len(data)
    model.eval()
    return history
