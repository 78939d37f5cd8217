"""course_lib.experiments.judging: the shared judge, its cache, the test-set halves and the memorisation check."""

import pytest
import torch

from course_lib.data import Dataset
from course_lib.experiments import judging
from course_lib.experiments.judging import Judge, load_judge, memorisation, nearest_distances, split_test
from course_lib.metrics import DigitClassifier


def small(data: Dataset) -> Dataset:
    """A fifth of mnist-5k, every digit kept (80 training and 20 test images per digit)."""
    return Dataset(data.name, data.train_images[::5], data.train_labels[::5], data.test_images[::5],
                   data.test_labels[::5], data.source)


def test_split_test_gives_two_disjoint_class_balanced_halves(mnist5k):
    reference, heldout = split_test(mnist5k)
    assert len(reference) == len(heldout) == 500
    flat = lambda x: {tuple(row.tolist()) for row in (x.reshape(len(x), -1) * 255).round().int()}  # noqa: E731
    assert not flat(reference) & flat(heldout)
    assert flat(reference) | flat(heldout) == flat(mnist5k.test_images)
    assert split_test(mnist5k, seed=0)[1].equal(heldout) and not split_test(mnist5k, seed=1)[1].equal(heldout)


def untrained(images, labels, epochs, seed):
    """A stand-in for train_classifier: an untrained classifier, seeded."""
    torch.manual_seed(seed)
    return DigitClassifier().eval()


def test_load_judge_trains_once_then_loads_and_retrains_when_the_file_is_bad(mnist5k, tmp_path, monkeypatch):
    data = small(mnist5k)
    trained = []
    monkeypatch.setattr(judging, "train_classifier", lambda *a, **k: trained.append(k) or untrained(*a, **k))
    first = load_judge(data, tmp_path, epochs=1, seed=3)
    assert trained == [{"epochs": 1, "seed": 3}] and first.message.startswith("trained 1 epochs")
    assert first.reference.equal(split_test(data, 3)[0])  # the halves of the judge's seed
    second = load_judge(data, tmp_path, epochs=1, seed=3)
    assert len(trained) == 1 and second.message.startswith("loaded judge-mnist-5k_")
    assert second.test_accuracy == first.test_accuracy
    assert all(a.equal(b) for a, b in zip(first.classifier.state_dict().values(),
                                          second.classifier.state_dict().values()))
    load_judge(data, tmp_path, epochs=2, seed=3)  # another epoch count is another judge
    assert len(trained) == 2 and len(list(tmp_path.glob("judge-*.pt"))) == 2
    path = tmp_path / second.message.removeprefix("loaded ")
    torch.save({"state_dict": {"conv.0.weight": torch.zeros(1)}, "test_accuracy": 1.0}, path)  # wrong weights
    assert load_judge(data, tmp_path, epochs=1, seed=3).message.startswith("trained")
    path.write_bytes(b"not a checkpoint")
    assert load_judge(data, tmp_path, epochs=1, seed=3).message.startswith("trained") and len(trained) == 4
    # a pickled module in the file is refused (weights only), not run: the judge is trained again
    torch.save({"state_dict": first.classifier.state_dict(), "test_accuracy": 0.5, "module": first.classifier}, path)
    assert load_judge(data, tmp_path, epochs=1, seed=3).message.startswith("trained") and len(trained) == 5


def test_judge_accuracy_is_measured_on_the_whole_test_split(mnist5k, tmp_path, monkeypatch):
    data = small(mnist5k)
    monkeypatch.setattr(judging, "train_classifier", untrained)
    judge = load_judge(data, tmp_path, epochs=1)
    with torch.no_grad():
        predicted = judge.classifier(data.test_images).argmax(1)
    assert judge.test_accuracy == pytest.approx((predicted == data.test_labels).float().mean().item())
    assert torch.cat([judge.reference, judge.heldout]).shape == data.test_images.shape


def test_fld_is_measured_against_the_reference_half(mnist5k):
    torch.manual_seed(0)
    classifier = DigitClassifier().eval()
    reference, heldout = split_test(mnist5k)
    judge = Judge(classifier, 0.0, reference, heldout, "")
    assert judge.fld(reference) == pytest.approx(0.0, abs=1e-6)
    assert judge.floor() == pytest.approx(judge.fld(heldout)) and judge.floor() > 0
    assert judge.fld(torch.rand(500, 1, 28, 28)) > 5 * judge.floor()


def test_nearest_distances_are_the_brute_force_minimum(mnist5k):
    images, train = mnist5k.test_images[:30], mnist5k.train_images[::7]
    expected = torch.stack([(train - image).flatten(1).norm(dim=1).min() for image in images])
    assert torch.allclose(nearest_distances(images, train, batch_size=7), expected, atol=1e-4)
    assert nearest_distances(train[:5], train).abs().max() < 1e-3  # an image is its own nearest neighbour


def test_memorisation_tells_copies_from_new_images(mnist5k):
    train, unseen = mnist5k.train_images, mnist5k.test_images[:500]
    copies = memorisation(train[:200] + 0.001, train, unseen)
    assert copies.copies == 1.0 and copies.generated_median < 0.1 < copies.real_median
    fresh = memorisation(mnist5k.test_images[500:], train, unseen)
    assert fresh.copies < 0.05
    assert fresh.generated_median == pytest.approx(fresh.real_median, rel=0.1)
    assert "median distance" in str(fresh)


def test_the_judge_trains_on_the_training_split_into_a_new_folder_and_depends_on_the_data(mnist5k, tmp_path,
                                                                                          monkeypatch):
    data, seen = small(mnist5k), []
    monkeypatch.setattr(judging, "train_classifier", lambda images, labels, **k: seen.append((images, labels)) or
                        untrained(images, labels, **k))
    judge = load_judge(data, tmp_path / "a" / "b", epochs=1)  # folders made as needed
    assert seen[0][0] is data.train_images and seen[0][1] is data.train_labels
    assert judge.message.startswith("trained") and list((tmp_path / "a" / "b").glob("judge-mnist-5k_*.pt"))
    other = Dataset(data.name, data.train_images.flip(0), data.train_labels.flip(0), data.test_images,
                    data.test_labels, data.source)
    assert load_judge(other, tmp_path / "a" / "b", epochs=1).message.startswith("trained")  # other order, other judge
