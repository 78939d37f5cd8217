"""Course-wide settings read from the environment in one place: FAST mode and folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

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
