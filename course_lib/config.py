"""Course-wide settings read in one place: the mode, folders, the compute device, seeding."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.torch_version import TorchVersion

T = TypeVar("T")

MODES = ("fast", "reference", "full")
"""fast: the tests (mnist-5k, a few epochs); reference: mnist-5k with the article's recipes and epoch counts,
converged (the stored notebooks); full: full MNIST (torchvision download) with the article's recipes."""

_TRUE = {"1", "true", "yes", "on"}


def read_mode(environ: dict[str, str] | None = None, cuda: bool | None = None) -> str:
    """The mode from ``COURSE_MODE`` (``COURSE_FAST=1`` is an alias of fast); by default reference on a CPU and
    full where CUDA is available."""
    environ = os.environ if environ is None else environ
    asked = environ.get("COURSE_MODE", "").strip().lower()
    fast_alias = environ.get("COURSE_FAST", "").strip().lower() in _TRUE
    if asked and asked not in MODES:
        raise ValueError(f"COURSE_MODE must be one of {', '.join(MODES)}, got {asked!r}")
    if fast_alias and asked not in ("", "fast"):
        raise ValueError(f"COURSE_FAST=1 means fast mode but COURSE_MODE={asked}: unset one of them")
    if fast_alias or asked:
        return asked or "fast"
    return "full" if (torch.cuda.is_available() if cuda is None else cuda) else "reference"


MODE: str = read_mode()
"""The active mode, one of :data:`MODES`, read once when course_lib is imported."""


def by_mode(*, fast: T, reference: T, full: T) -> T:
    """The value for the active mode (the one switch notebooks and experiments use)."""
    return {"fast": fast, "reference": reference, "full": full}[MODE]


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


_DESCRIPTIONS = {
    "fast": "Fast mode: mnist-5k, a few epochs, small sweeps; it proves that the code runs, not what it finds.",
    "reference": "Reference mode: mnist-5k (4,000 train / 1,000 test real digits) with the article's recipes and "
    "epoch counts, converged; the stored notebooks are this run.",
    "full": "Full mode: full MNIST (60,000 train / 10,000 test) with the article's recipes; meant for a GPU.",
}


def describe() -> str:
    """One line saying which mode is active, what it changes, and how to pick another."""
    return f"{_DESCRIPTIONS[MODE]} (COURSE_MODE={MODE}; choose fast, reference or full)"


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
