"""Picking the compute device and seeding every random number generator."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.torch_version import TorchVersion


def pick_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else CUDA, then Apple's MPS, then the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def optimizer_kernel(device: torch.device) -> dict[str, bool]:
    """Keyword for Adam/AdamW's fastest implementation on ``device``: the fused kernel where PyTorch has one
    (CUDA; CPU from PyTorch 2.4), else the multi-tensor ``foreach`` one."""
    fused = device.type == "cuda" or (device.type == "cpu" and TorchVersion(torch.__version__) >= (2, 4))
    return {"fused": True} if fused else {"foreach": True}
