"""Measuring cost: FLOPs of a forward pass (PyTorch's FlopCounterMode) and wall-clock time that waits for the GPU.

``torch.utils.flop_counter.FlopCounterMode`` counts the operators that dominate the cost of a network
(matrix multiplies, convolutions, attention) at 2 FLOPs per multiply-add. Element-wise operations
(activations, additions, normalisation) are not counted; for the small MLPs and conv nets of this course
they add a few percent of the FLOPs at most, but on a CPU they can cost a large share of the time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[..., Any], *inputs: Any, **kwargs: Any) -> int:
    """FLOPs of one call ``fn(*inputs, **kwargs)`` (a module or any function), without autograd.

    The count is for the whole batch in ``inputs``; divide by the batch size for a per-image cost.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*inputs, **kwargs)
    return int(counter.get_total_flops())


def flops_by_operator(fn: Callable[..., Any], *inputs: Any, **kwargs: Any) -> dict[str, int]:
    """The same count split by operator, e.g. ``{"addmm": 8192}`` or ``{"convolution": 451584}``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*inputs, **kwargs)
    totals = counter.get_flop_counts().get("Global", {})
    return {getattr(op, "__name__", str(op)).split(".")[0]: int(n) for op, n in totals.items()}


def format_flops(flops: float) -> str:
    """A FLOP count with an SI prefix: ``format_flops(15_353_856) == '15.4 MFLOP'``."""
    if flops < 0:
        raise ValueError(f"a FLOP count cannot be negative, got {flops}")
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.3g} {prefix}FLOP"
    return f"{flops:.0f} FLOP"


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so that a wall-clock time measures what was computed."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[..., Any], *args: Any, device: torch.device | str = "cpu", **kwargs: Any) -> tuple[Any, float]:
    """Run ``fn(*args, **kwargs)`` once; return (its result, wall-clock seconds), waiting for ``device``."""
    synchronize(device)
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    synchronize(device)
    return result, time.perf_counter() - start


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated runs: their median and range."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def __str__(self) -> str:
        low, high = min(self.seconds), max(self.seconds)
        return f"{self.median:.3g} s (median of {len(self.seconds)}, range {low:.3g}-{high:.3g})"


def time_repeats(
    fn: Callable[..., Any], *args: Any, repeats: int = 3, device: torch.device | str = "cpu", **kwargs: Any
) -> tuple[Any, Timing]:
    """Run ``fn`` ``repeats`` times; return the last result and the :class:`Timing` of the runs."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    runs = [timed(fn, *args, device=device, **kwargs) for _ in range(repeats)]
    return runs[-1][0], Timing(tuple(seconds for _, seconds in runs))
