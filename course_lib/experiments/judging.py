"""The judge of notebooks 06 and 07: one digit classifier per dataset, trained once and cached; Frechet distances
(FLD) to real test digits that it never trained on; and a check that generated images are not copies of training
images."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from course_lib.checkpoints import fingerprint
from course_lib.config import by_mode
from course_lib.data import Dataset, balanced_subset
from course_lib.metrics import DigitClassifier, accuracy, embed, frechet_distance, train_classifier

JUDGE_EPOCHS = by_mode(fast=2, reference=15, full=15)
"""Epochs of the judge's training: 15 reach about 98 % test accuracy on mnist-5k."""
MIN_ACCURACY = by_mode(fast=0.80, reference=0.97, full=0.97)
"""The judge's test accuracy that notebooks 06 and 07 assert before they trust its features."""
JUDGE_CODE = ("course_lib.data", "course_lib.augment", "course_lib.metrics")
"""The modules whose source the cached judge depends on."""
FORMAT = "course_lib.judge/1"


@dataclass
class Judge:
    """A trained digit classifier and the two halves of the test set it judges with.

    ``reference``: the real digits every FLD is measured against; ``heldout``: the other half, real digits that
    trained nothing, whose FLD to ``reference`` is the floor a perfect generator would reach with as many images.
    """

    classifier: DigitClassifier
    test_accuracy: float
    reference: torch.Tensor
    heldout: torch.Tensor
    message: str

    def __post_init__(self) -> None:
        self._reference_features = embed(self.classifier, self.reference)

    def fld(self, images: torch.Tensor) -> float:
        """FLD of ``images`` to the reference half of the test set (lower is closer to real digits)."""
        return frechet_distance(embed(self.classifier, images), self._reference_features)

    def floor(self) -> float:
        """FLD of the held-out real digits: what a generator of perfect digits would score."""
        return self.fld(self.heldout)


def split_test(data: Dataset, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images in two class-balanced halves: (reference, heldout)."""
    heldout = balanced_subset(data.test_labels, len(data.test_labels) // 2, seed=seed).to(data.test_images.device)
    keep = torch.ones(len(data.test_images), dtype=torch.bool, device=data.test_images.device)
    keep[heldout] = False
    return data.test_images[keep], data.test_images[heldout]


def _load(path: Path, device: torch.device) -> tuple[DigitClassifier, float] | None:
    """The cached judge at ``path``, or None if it is missing or unreadable (weights only, never unpickled code)."""
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        classifier = DigitClassifier().to(device)
        classifier.load_state_dict(payload["state_dict"])
        return classifier.eval(), float(payload["test_accuracy"])
    except (FileNotFoundError, pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError):
        return None


def load_judge(data: Dataset, folder: str | Path, epochs: int = JUDGE_EPOCHS, seed: int = 0) -> Judge:
    """The judge for ``data``: loaded from ``folder`` if this dataset, epoch count, seed and code trained one
    before, otherwise trained on the training split (:func:`course_lib.metrics.train_classifier`) and saved."""
    device = data.train_images.device
    key = fingerprint({"dataset": data.name, "epochs": epochs, "seed": seed}, data.train_images, data.train_labels,
                      code_modules=JUDGE_CODE)
    path = Path(folder) / f"judge-{data.name}_{key}.pt"
    cached = _load(path, device)
    if cached is not None:
        classifier, test_accuracy = cached
        message = f"loaded {path.name}"
    else:
        classifier = train_classifier(data.train_images, data.train_labels, epochs=epochs, seed=seed)
        test_accuracy = accuracy(classifier, data.test_images, data.test_labels)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        state = {k: v.detach().cpu() for k, v in classifier.state_dict().items()}
        torch.save({"format": FORMAT, "state_dict": state, "test_accuracy": test_accuracy}, tmp)
        os.replace(tmp, path)
        message = f"trained {epochs} epochs, saved {path.name}"
    reference, heldout = split_test(data, seed)
    return Judge(classifier, test_accuracy, reference, heldout, message)


# ---- Memorisation: are generated images copies of training images? ----
def nearest_distances(images: torch.Tensor, train_images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Each image's Euclidean distance (pixels in [0, 1]) to its nearest training image."""
    flat_train = train_images.reshape(len(train_images), -1).float()
    exact = "donot_use_mm_for_euclid_dist"  # the matrix-product shortcut is off by up to 0.01 near 0
    return torch.cat([torch.cdist(b.reshape(len(b), -1).float(), flat_train, compute_mode=exact).min(1).values
                      for b in images.split(batch_size)])


@dataclass(frozen=True)
class Memorisation:
    """Nearest-training-image distances of generated images against those of real unseen images.

    ``copies``: the fraction of generated images closer to a training image than all but 1 % of the unseen
    real images are (about 0.01 for a generator that does not copy, near 1 for one that does).
    """

    generated_median: float
    real_median: float
    copies: float

    def __str__(self) -> str:
        return (f"nearest training image: median distance {self.generated_median:.2f} (generated) vs "
                f"{self.real_median:.2f} (unseen real digits); {self.copies:.1%} closer than the nearest 1 % of "
                f"real ones")


def memorisation(generated: torch.Tensor, train_images: torch.Tensor, unseen: torch.Tensor) -> Memorisation:
    """Compare how close generated and unseen real images come to the training images."""
    generated_d, real_d = nearest_distances(generated, train_images), nearest_distances(unseen, train_images)
    close = torch.quantile(real_d, 0.01)
    return Memorisation(generated_d.median().item(), real_d.median().item(),
                        (generated_d < close).float().mean().item())
