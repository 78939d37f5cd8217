"""Checkpoints as plain data (model config + state_dict + metrics, + training state to resume), and the one
train-or-load cache of the course.

Loading always uses ``torch.load(..., weights_only=True)``: a file holding a pickled whole module, or
anything but tensors and plain Python values, is refused instead of executed.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
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


def _pickle_or_zip(path: Path) -> bool:
    """Whether the file starts like a pickle (protocol 2-5) or a zip archive, the two formats torch.save writes."""
    with path.open("rb") as f:
        head = f.read(2)
    return head == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint's payload safely (``weights_only=True``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not _pickle_or_zip(path):
            raise CheckpointError(f"{path} is not a checkpoint: torch.save did not write this file") from err
        raise CheckpointError(
            f"{path} holds pickled Python objects (e.g. a whole module saved with torch.save(model)), which "
            "course_lib refuses to unpickle because that can run arbitrary code. Save model.state_dict() "
            "instead: course_lib.checkpoints.save_checkpoint(path, model)."
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
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
    return model.to(map_location), payload


# ----------------------------------------------------------------------------------------------------------
# The train-or-load cache
# ----------------------------------------------------------------------------------------------------------
TRAINING_CODE = ("course_lib.data", "course_lib.augment", "course_lib.models", "course_lib.losses", "course_lib.train")
"""The modules whose source a cached model depends on: editing any of them retrains instead of loading."""


def _summary(tensor: torch.Tensor) -> list[Any]:
    """Shape, sum and two order-sensitive sums of a tensor: of its rows weighted by their position, and of its
    columns weighted by theirs (so a reordering of the items, or of the pixels within each, changes the summary)."""
    flat = tensor.reshape(len(tensor), -1).double() if tensor.dim() else tensor.double().reshape(1, 1)
    rows, columns = flat.sum(1), flat.sum(0)
    row_weights = torch.arange(1, len(rows) + 1, dtype=torch.float64, device=flat.device)
    column_weights = torch.arange(1, len(columns) + 1, dtype=torch.float64, device=flat.device)
    return [list(tensor.shape), round(float(rows.sum()), 3), round(float(rows @ row_weights / len(rows)), 3),
            round(float(columns @ column_weights / len(columns)), 3)]


def fingerprint(spec: dict[str, Any], *tensors: torch.Tensor, code_modules: tuple[str, ...] | None = None) -> str:
    """10 hex digits that change when ``spec`` (plain data: configs, seed), the data (each tensor's shape,
    sum and order) or the source of ``code_modules`` (default :data:`TRAINING_CODE`) changes: equal fingerprints
    mean identical training runs."""
    code = [inspect.getsource(importlib.import_module(name)) for name in code_modules or TRAINING_CODE]
    content = {
        "spec": spec,
        "data": [_summary(t) for t in tensors],
        "code": hashlib.sha1("".join(code).encode()).hexdigest(),
    }
    return hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:10]


@dataclass
class CachedModel:
    """A model from :func:`train_or_load`, with its test metrics, training history and what happened."""

    model: Model
    metrics: dict[str, float]
    history: list[dict[str, float]]
    message: str


def _find(folder: Path, key: str, suffix: str) -> Path | None:
    return min(folder.glob(f"*_{key}{suffix}"), default=None)


def train_or_load(
    folder: str | Path,
    name: str,
    key: str,
    config: ModelConfig,
    train: Callable[[Model, Path, bool], tuple[dict[str, float], list[dict[str, float]]]],
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> CachedModel:
    """The model with fingerprint ``key`` from ``folder``, trained only if no file holds it yet.

    ``train(model, partial_path, resume)`` trains a fresh model (built with ``torch.manual_seed(seed)``)
    in place, checkpointing to ``partial_path`` and resuming from it when ``resume`` is True, and returns
    (test metrics, history records). The finished model is saved as ``<name>_<key>.pt``; a file of any name
    with the same key is loaded instead of training. An unreadable cached file is reported and retrained.
    """
    folder = Path(folder)
    final = _find(folder, key, ".pt")
    if final is not None:
        try:
            model, payload = load_checkpoint(final, expected=config, map_location=device)
            state = payload["training_state"] or {}
            return CachedModel(model, payload["metrics"], list(state.get("history", [])), f"loaded {final.name}")
        except CheckpointError as err:
            print(f"{final.name} cannot be used ({err}); training it again")
            final.unlink()
    partial = _find(folder, key, ".partial.pt")
    if partial is not None:
        try:
            read_checkpoint(partial)
        except CheckpointError as err:
            print(f"{partial.name} cannot be resumed ({err}); starting that model again")
            partial.unlink()
            partial = None
    resume = partial is not None
    partial = partial or folder / f"{name}_{key}.partial.pt"
    torch.manual_seed(seed)
    model = build_model(config).to(device)
    metrics, history = train(model, partial, resume)
    final = folder / f"{name}_{key}.pt"
    save_checkpoint(final, model, metrics=metrics, training_state={"history": history})
    partial.unlink(missing_ok=True)
    return CachedModel(model, metrics, history, f"trained{' (resumed)' if resume else ''}, saved {final.name}")
