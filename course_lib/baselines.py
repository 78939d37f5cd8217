"""PCA, the linear baseline every autoencoder should beat at the same number of dimensions."""

from __future__ import annotations

import torch


class PCA:
    """Principal component analysis fitted on flattened training images (via SVD)."""

    def __init__(self, n_components: int) -> None:
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
        self.n_components = n_components

    def fit(self, images: torch.Tensor) -> PCA:
        x = images.reshape(len(images), -1).double()
        self.mean = x.mean(0)
        _, singular_values, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        self.components = vh[: self.n_components]
        variance = singular_values.pow(2)
        self.explained_variance_ratio = (variance[: self.n_components] / variance.sum()).float()
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return ((images.reshape(len(images), -1).double() - self.mean) @ self.components.T).float()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        x = codes.double() @ self.components + self.mean
        return x.float().reshape(-1, 1, 28, 28)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))


def pca_test_mse(train_images: torch.Tensor, test_images: torch.Tensor, n_components: int) -> float:
    """Per-pixel test MSE of PCA with ``n_components`` fitted on the training images (clipped to [0, 1])."""
    pca = PCA(n_components).fit(train_images)
    recon = pca.reconstruct(test_images).clamp(0, 1)
    return (recon - test_images).pow(2).mean().item()
