"""course_lib.baselines: PCA against the eigendecomposition of the centred covariance, on data that is not centred."""

import pytest
import torch

from course_lib.baselines import PCA, pca_test_mse


def offset_data(n=300, seed=0):
    """Images far from centred (every pixel around 0.6) that vary along three fixed directions, with standard
    deviations 0.3, 0.2 and 0.1, plus a little isotropic noise (std 0.002 per pixel)."""
    directions = torch.linalg.qr(torch.randn(784, 3, generator=torch.Generator().manual_seed(0),
                                             dtype=torch.float64))[0].T  # the same three for every seed
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(n, 3, generator=generator, dtype=torch.float64) * torch.tensor([0.3, 0.2, 0.1])
    noise = 0.002 * torch.randn(n, 784, generator=generator, dtype=torch.float64)
    return (0.6 + weights @ directions + noise).float().reshape(n, 1, 28, 28)


def test_pca_components_are_the_top_eigenvectors_of_the_centred_covariance():
    images = offset_data()
    x = images.reshape(len(images), -1).double()
    eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(x.T))
    top = eigenvectors[:, -2:].flip(1).T  # the two largest, largest first
    pca = PCA(2).fit(images)
    assert pca.components.shape == (2, 784)
    for component, expected in zip(pca.components, top):
        assert abs(torch.dot(component, expected).item()) == pytest.approx(1.0, abs=1e-6)  # same up to sign
    ratios = eigenvalues.flip(0)[:2] / eigenvalues.sum()
    assert torch.allclose(pca.explained_variance_ratio.double(), ratios, rtol=1e-4)
    assert torch.allclose(pca.mean, x.mean(0))


def test_pca_codes_decodings_and_test_mse_by_hand():
    images, test = offset_data(), offset_data(seed=1)[:50]
    pca = PCA(3).fit(images)
    x = test.reshape(50, -1).double()
    codes = (x - pca.mean) @ pca.components.T
    assert torch.allclose(pca.encode(test).double(), codes, atol=1e-5)
    recon = codes @ pca.components + pca.mean
    assert torch.allclose(pca.decode(pca.encode(test)).double(), recon.reshape(50, 1, 28, 28), atol=1e-5)
    assert torch.allclose(pca.reconstruct(test), pca.decode(pca.encode(test)))
    # three components hold the signal: what is left is the small isotropic noise (std 0.002 per pixel)
    mse = pca_test_mse(images, test, 3)
    assert mse == pytest.approx((recon.clamp(0, 1) - x).pow(2).mean().item(), rel=1e-4)
    assert 0.002**2 * 0.9 < mse < 0.002**2 * 1.1
    assert pca_test_mse(images, test, 1) > 0.2**2 / 784  # the second direction's variance is left out


def test_pca_test_mse_clips_reconstructions_to_the_image_range():
    """Training images: ink on the left half or on the right half. A test image with a white left half and a black
    right half reconstructs as 0.75 on the left and -0.25 on the right, clipped to 0: MSE 0.0625 / 2."""
    left, right = torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    left[..., :14], right[..., 14:] = 0.5, 0.5
    test = torch.zeros(1, 1, 28, 28)
    test[..., :14] = 1.0
    assert pca_test_mse(torch.cat([left, right] * 5), test, 1) == pytest.approx(0.0625 / 2, rel=1e-5)


def test_pca_needs_a_component():
    with pytest.raises(ValueError, match="n_components"):
        PCA(0)
