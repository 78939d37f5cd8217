import math
import pickle

import pytest
import torch

from course_lib.augment import Augmentation
from course_lib.baselines import pca_test_mse
from course_lib.checkpoints import (
    CheckpointError,
    fingerprint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    train_or_load,
)
from course_lib.data import BatchIterator
from course_lib.evaluate import evaluate
from course_lib.losses import BetaVAEObjective, MSEObjective, bce_per_image, kl_per_image
from course_lib.models import ModelConfig, build_model, preset, preset_config
from course_lib.train import RECIPES, TrainConfig, TrainingDivergedError, fit, held_out_loss, train_epoch

SMALL_VAE = ModelConfig("vae", 4, (64,), (64,))
SMALL_AE = ModelConfig("ae", 4, (32,), (32,))
CFG = TrainConfig(epochs=3, batch_size=256, lr=1e-3, rotation_degrees=10, noise_std=0.05, seed=7)


def small_run(mnist5k, objective=None, **changes):
    torch.manual_seed(0)
    model = build_model(SMALL_VAE)
    history = fit(model, mnist5k.train_images[::4], CFG.replace(**changes), mnist5k.test_images[::4],
                  objective=objective, progress=False)
    return model, history


def without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records]


def test_same_seed_gives_the_same_history(mnist5k):
    _, first = small_run(mnist5k)
    _, again = small_run(mnist5k)
    _, other = small_run(mnist5k, seed=8)
    assert without_seconds(first) == without_seconds(again)
    assert without_seconds(first) != without_seconds(other)
    assert first["train_loss"][-1] < first["train_loss"][0]


def test_test_data_is_not_augmented(mnist5k):
    model, history = small_run(mnist5k, rotation_degrees=30, noise_std=0.3)
    clean = evaluate(model, mnist5k.test_images[::4], seed=7)
    assert history.last["test_mse"] == pytest.approx(clean["mse"])
    assert history.last["test_neg_elbo"] == pytest.approx(clean["neg_elbo"])


def test_train_epoch_is_the_step_fit_runs(mnist5k):
    """One epoch of fit equals one hand-driven train_epoch with the same seeds and optimizer."""
    images = mnist5k.train_images[::8]
    cfg = TrainConfig(epochs=1, batch_size=100, optimizer="adam", lr=1e-3, seed=3)
    torch.manual_seed(0)
    by_fit = build_model(SMALL_AE)
    history = fit(by_fit, images, cfg, progress=False)
    torch.manual_seed(0)
    by_hand = build_model(SMALL_AE)
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=1e-3)
    loss = train_epoch(by_hand, BatchIterator(images, batch_size=100, seed=3), MSEObjective(), optimizer,
                       Augmentation(), torch.Generator().manual_seed(4))
    assert loss == pytest.approx(history.last["train_loss"], rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(by_fit.parameters(), by_hand.parameters()))


def test_beta_weights_the_kl_term_of_the_objective(mnist5k):
    torch.manual_seed(0)
    model = build_model(SMALL_VAE).eval()
    x = mnist5k.test_images[::50]
    mu, logvar = model.encode(x)
    for beta in (0.0, 0.5, 1.0):
        gen = torch.Generator().manual_seed(1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        expected = bce_per_image(model.decode(z), x) + beta * kl_per_image(mu, logvar)
        got = BetaVAEObjective(beta)(model, x, x, torch.Generator().manual_seed(1))
        assert torch.allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="beta"):
        BetaVAEObjective(float("nan"))


def test_held_out_loss_is_the_objective_on_clean_images(mnist5k):
    model, _ = small_run(mnist5k, epochs=1)
    x = mnist5k.test_images[::4]
    metrics = evaluate(model, x, seed=7)
    # evaluate's -ELBO is BCE at a sampled z + KL; beta = 0.5 removes half the KL from it
    assert held_out_loss(model, x, BetaVAEObjective(1.0), seed=7) == pytest.approx(metrics["neg_elbo"], rel=1e-4)
    half = held_out_loss(model, x, BetaVAEObjective(0.5), seed=7)
    assert half == pytest.approx(metrics["neg_elbo"] - 0.5 * metrics["kl"], rel=1e-4)


def test_scheduler_steps_on_the_chosen_metric(mnist5k):
    """patience 0: the learning rate halves after every epoch whose watched loss does not improve."""
    images = mnist5k.train_images[::8]
    cfg = TrainConfig(epochs=4, batch_size=500, lr=1e-3, plateau_scheduler=True, plateau_on="train",
                      plateau_patience=0, plateau_factor=0.5)
    torch.manual_seed(0)
    history = fit(build_model(SMALL_AE), images, cfg, progress=False)
    losses, lrs = history["train_loss"], history["lr"]
    expected = [1e-3]
    for before, after in zip(losses, losses[1:]):
        expected.append(expected[-1] * (0.5 if after >= before else 1.0))
    assert lrs == pytest.approx(expected)
    # a watched loss that never improves (a frozen model's): halves every epoch after the first
    torch.manual_seed(0)
    frozen = build_model(SMALL_AE)
    frozen_cfg = cfg.replace(lr=1e-12, plateau_on="test")
    lrs = fit(frozen, images, frozen_cfg, mnist5k.test_images[::10], progress=False)["lr"]
    assert lrs[1:] == pytest.approx([1e-12 * 0.5**k for k in range(3)], rel=1e-6)


def test_checkpoint_round_trip_and_resume_is_exact(mnist5k, tmp_path):
    path = tmp_path / "vae.pt"
    _, full = small_run(mnist5k, epochs=4)
    torch.manual_seed(0)
    model = build_model(SMALL_VAE)
    images, tests = mnist5k.train_images[::4], mnist5k.test_images[::4]
    fit(model, images, CFG.replace(epochs=2), tests, checkpoint=path, checkpoint_every=1, progress=False)
    loaded, payload = load_checkpoint(path, expected=SMALL_VAE)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    resumed = fit(loaded, images, CFG.replace(epochs=4), tests, checkpoint=path, resume=True, progress=False)
    assert [r["train_loss"] for r in resumed.records] == pytest.approx(full["train_loss"], rel=1e-5)
    assert resumed.last["test_neg_elbo"] == pytest.approx(full.last["test_neg_elbo"], rel=1e-5)
    with pytest.raises(CheckpointError, match="another training config or objective"):
        fit(loaded, images, CFG.replace(epochs=5, lr=2e-3), tests, checkpoint=path, resume=True, progress=False)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "ae.pt", preset("seed-baseline-ae"))
    with pytest.raises(CheckpointError, match="different model"):
        load_checkpoint(path, expected=preset_config("seed-baseline-vae"))


def test_pickled_whole_module_is_refused_not_executed(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(preset("seed-baseline-ae"), path)  # what the article does (erratum 4)
    with pytest.raises(CheckpointError, match="state_dict"):
        load_checkpoint(path)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump(Boom(), f)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        read_checkpoint(evil)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).tolist()))
    with pytest.raises(CheckpointError, match="not a checkpoint") as err:
        read_checkpoint(path)
    assert "pickled Python objects" not in str(err.value)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "vae.pt", preset("seed-baseline-vae"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "vae.pt", preset("seed-baseline-vae"))
    payload = torch.load(path, weights_only=True)
    payload["config"]["latent_dim"] = 5
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"optimizer": "sgdx"}, "unknown optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"epochs": 0}, "epochs"),
        ({"plateau_factor": 1.5}, "plateau_factor"),
    ],
)
def test_invalid_train_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_fit_on_no_images_says_so():
    with pytest.raises(ValueError, match="at least one training image"):
        fit(build_model(SMALL_AE), torch.zeros(0, 1, 28, 28), TrainConfig(epochs=1), progress=False)


def test_nan_loss_stops_training_with_a_message_and_keeps_last_good_weights(mnist5k, tmp_path):
    torch.manual_seed(0)
    model = build_model(SMALL_AE)
    path = tmp_path / "ae.pt"
    cfg = TrainConfig(epochs=3, batch_size=500, lr=1e-3)
    fit(model, mnist5k.train_images[::8], cfg.replace(epochs=1), checkpoint=path, progress=False)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.decoder[0].weight.fill_(float("nan"))
    poisoned = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDivergedError, match="learning rate too high"):
        fit(model, mnist5k.train_images[::8], cfg, checkpoint=tmp_path / "other.pt", progress=False)
    # in memory: the weights from before the failing epoch (a NaN step would have made every weight NaN)
    encoder_weight = model.state_dict()["encoder.0.weight"]
    assert torch.isfinite(encoder_weight).all() and torch.equal(encoder_weight, poisoned["encoder.0.weight"])
    # on disk: the last good checkpoint is kept
    kept, _ = load_checkpoint(path)
    assert all(torch.equal(kept.state_dict()[k], v) for k, v in good.items())


def _trainer(images, calls):
    def train(model, partial, resume):
        calls.append(resume)
        history = fit(model, images, TrainConfig(epochs=2, batch_size=500, lr=1e-3), checkpoint=partial,
                      checkpoint_every=1, resume=resume, progress=False)
        return evaluate(model, images), history.records
    return train


def test_train_or_load_trains_once_then_loads(mnist5k, tmp_path, capsys):
    images = mnist5k.train_images[::8]
    calls = []
    key = fingerprint({"model": SMALL_AE.to_dict()}, images)
    first = train_or_load(tmp_path, "ae", key, SMALL_AE, _trainer(images, calls))
    again = train_or_load(tmp_path, "renamed", key, SMALL_AE, _trainer(images, calls))
    assert calls == [False] and first.message.startswith("trained") and again.message.startswith("loaded")
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))
    assert again.metrics == first.metrics and len(again.history) == 2


def test_train_or_load_retrains_a_corrupt_file_with_a_message(mnist5k, tmp_path, capsys):
    images = mnist5k.train_images[::8]
    calls = []
    key = fingerprint({"model": SMALL_AE.to_dict()}, images)
    train_or_load(tmp_path, "ae", key, SMALL_AE, _trainer(images, calls))
    (tmp_path / f"ae_{key}.pt").write_bytes(b"not a checkpoint at all")
    result = train_or_load(tmp_path, "ae", key, SMALL_AE, _trainer(images, calls))
    assert calls == [False, False] and result.message.startswith("trained")
    assert "cannot be used" in capsys.readouterr().out


def test_train_or_load_resumes_a_partial_run(mnist5k, tmp_path):
    images = mnist5k.train_images[::8]
    key = fingerprint({"model": SMALL_AE.to_dict()}, images)
    torch.manual_seed(0)
    fit(build_model(SMALL_AE), images, TrainConfig(epochs=1, batch_size=500, lr=1e-3),
        checkpoint=tmp_path / f"ae_{key}.partial.pt", progress=False)
    calls = []
    result = train_or_load(tmp_path, "ae", key, SMALL_AE, _trainer(images, calls))
    uninterrupted = train_or_load(tmp_path / "fresh", "ae", key, SMALL_AE, _trainer(images, []))
    assert calls == [True] and "resumed" in result.message
    assert [r["train_loss"] for r in result.history] == pytest.approx([r["train_loss"] for r in uninterrupted.history])
    assert not list(tmp_path.glob("*.partial.pt"))


def test_fingerprint_changes_with_spec_and_data(mnist5k):
    images = mnist5k.train_images[::8]
    base = fingerprint({"train": {"epochs": 2}}, images)
    assert base == fingerprint({"train": {"epochs": 2}}, images.clone())
    assert base != fingerprint({"train": {"epochs": 3}}, images)
    assert base != fingerprint({"train": {"epochs": 2}}, images[1:])
    assert base != fingerprint({"train": {"epochs": 2}}, images.flip(0))


def test_a_few_epochs_of_the_improved_ae_beat_pca(mnist5k):
    torch.manual_seed(0)
    model = preset("seed-improved-ae")
    cfg = RECIPES["seed-improved"].replace(epochs=20, batch_size=128, rotation_degrees=0.0)
    history = fit(model, mnist5k.train_images, cfg, mnist5k.test_images, progress=False)
    pca = pca_test_mse(mnist5k.train_images, mnist5k.test_images, n_components=16)
    assert history.last["test_mse"] < pca
