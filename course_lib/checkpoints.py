"""Checkpoints as plain data: model config + state_dict + metrics (+ training state to resume).

Loading always uses ``torch.load(..., weights_only=True)``: a file holding a pickled whole module, or
anything but tensors and plain Python values, is refused instead of executed.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.models import Model, ModelConfig, build_model

FORMAT = "course_lib.checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable, unsafe, or of another model than expected."""


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    metrics: dict[str, float] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s config and state_dict (and optional metrics / training state) to ``path``.

    The file is written to a temporary name and renamed, so an interrupted save never replaces a good one.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError("save_checkpoint needs a course_lib model (one with a ModelConfig in .config)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metrics": dict(metrics or {}),
        "training_state": training_state,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint's payload safely (``weights_only=True``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds pickled Python objects (e.g. a whole module saved with torch.save(model)), which "
            "course_lib refuses to unpickle because that can run arbitrary code. Save model.state_dict() "
            "instead: course_lib.checkpoints.save_checkpoint(path, model)."
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?): {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a course_lib checkpoint (expected format {FORMAT!r})")
    return payload


def load_checkpoint(
    path: str | Path,
    expected: ModelConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[Model, dict[str, Any]]:
    """Rebuild the model stored in ``path``; return it with the payload (metrics, training state).

    With ``expected``, a checkpoint of any other model config raises :class:`CheckpointError`.
    """
    payload = read_checkpoint(path, map_location)
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path} has an invalid model config: {err}") from err
    if expected is not None and config != expected:
        raise CheckpointError(f"{path} holds a different model: {config} (expected {expected})")
    model = build_model(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the model config: {err}") from err
    return model, payload
