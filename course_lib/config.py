"""Course-wide settings read in one place: FAST mode, folders, the compute device, seeding."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.torch_version import TorchVersion

T = TypeVar("T")

FAST: bool = os.environ.get("COURSE_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}
"""True when ``COURSE_FAST=1``: every notebook uses mnist-5k, few epochs and small sweeps."""


def fast_or_full(fast: T, full: T) -> T:
    """Return ``fast`` in FAST mode and ``full`` otherwise (the one switch notebooks use)."""
    return fast if FAST else full


def _project_root() -> Path:
    """The repository root when course_lib is used from a checkout, else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def data_dir() -> Path:
    """Where datasets are stored (``COURSE_DATA_DIR``, default ``<project>/data``)."""
    return Path(os.environ.get("COURSE_DATA_DIR", _project_root() / "data"))


def output_dir() -> Path:
    """Where checkpoints and figures are written (``COURSE_OUTPUT_DIR``, default ``<project>/outputs``)."""
    return Path(os.environ.get("COURSE_OUTPUT_DIR", _project_root() / "outputs"))


def describe() -> str:
    """One line saying which mode is active and what it changes."""
    if FAST:
        return "FAST mode (COURSE_FAST=1): mnist-5k, few epochs, small sweeps, so the course runs in minutes on a CPU."
    return "Full mode: full MNIST and the article's epoch counts (set COURSE_FAST=1 for a quick run)."


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
