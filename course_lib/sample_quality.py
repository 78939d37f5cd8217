"""Judging generated digits without Inception: a small MNIST classifier and the Frechet distance (FLD)
between its penultimate-layer features of two image sets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import BatchIterator, check_images


class DigitClassifier(nn.Module):
    """A small CNN: two conv blocks, a 64-unit feature layer (used for FLD), 10 logits."""

    feature_dim = 64

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, self.feature_dim), nn.ReLU())
        self.head = nn.Linear(self.feature_dim, 10)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, epochs: int = 5, batch_size: int = 128, lr: float = 1e-3, seed: int = 0
) -> DigitClassifier:
    """Train a :class:`DigitClassifier` (Adam, cross-entropy) on the device the images live on."""
    check_images(images)
    torch.manual_seed(seed)
    model = DigitClassifier().to(images.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = BatchIterator(images, labels, batch_size=batch_size, seed=seed)
    model.train()
    for _ in range(epochs):
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def predict_proba(classifier: DigitClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class probabilities (N, 10)."""
    classifier.eval()
    return torch.cat([F.softmax(classifier(b), dim=1) for b in images.split(batch_size)])


def accuracy(classifier: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images whose most probable class is the label."""
    return (predict_proba(classifier, images).argmax(1) == labels.to(images.device)).float().mean().item()


@torch.no_grad()
def embed(classifier: DigitClassifier, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Penultimate-layer features (N, 64)."""
    classifier.eval()
    return torch.cat([classifier.embed(b) for b in images.split(batch_size)])


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets:
    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)."""
    a, b = features_a.double().cpu(), features_b.double().cpu()
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least two feature vectors on each side")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eigvals, eigvecs = torch.linalg.eigh(cov_a)
    sqrt_a = eigvecs @ torch.diag(eigvals.clamp_min(0).sqrt()) @ eigvecs.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp_min(0).sqrt().sum()
    return ((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross).item()


def fld(classifier: DigitClassifier, images_a: torch.Tensor, images_b: torch.Tensor) -> float:
    """FLD: the Frechet distance between the classifier's features of two image sets (lower is closer)."""
    return frechet_distance(embed(classifier, images_a), embed(classifier, images_b))
