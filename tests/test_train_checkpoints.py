import copy
import dataclasses
import math
import pickle
import time

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
from course_lib.train import (
    RECIPES,
    TrainConfig,
    TrainingDivergedError,
    fit,
    held_out_loss,
    train_epoch,
    training_parts,
)

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
    # a watched loss that never improves by the scheduler's 1e-4 (relative) threshold (a model all but frozen by a
    # tiny learning rate; not below 1e-7, as the scheduler ignores a cut of less than its eps 1e-8): halves every
    # epoch after the first
    torch.manual_seed(0)
    frozen = build_model(SMALL_AE)
    frozen_cfg = cfg.replace(lr=1e-7, plateau_on="test")
    lrs = fit(frozen, images, frozen_cfg, mnist5k.test_images[::10], progress=False)["lr"]
    assert lrs[1:] == pytest.approx([1e-7 * 0.5**k for k in range(3)], rel=1e-6, abs=0)


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


def test_train_epoch_takes_sgd_steps_on_each_batch_mean_and_returns_the_epoch_mean_per_image():
    """By hand with plain SGD: one step per batch on the batch's mean loss; the returned loss is the mean over all
    images of the loss each had when its batch was seen (10 images in batches of 4, 4, 2)."""
    torch.manual_seed(0)
    model = build_model(SMALL_AE)
    twin = copy.deepcopy(model)
    images = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    batches = list(BatchIterator(images, batch_size=4, seed=2))
    loss = train_epoch(model, batches, MSEObjective(), torch.optim.SGD(model.parameters(), lr=0.5), Augmentation(),
                       torch.Generator())
    seen = []
    for (batch,) in batches:
        per_image = ((twin(batch) - batch) ** 2).mean(dim=(1, 2, 3))
        seen.append(per_image.detach())
        grads = torch.autograd.grad(per_image.mean(), list(twin.parameters()))
        with torch.no_grad():
            for p, g in zip(twin.parameters(), grads):
                p -= 0.5 * g
    assert loss == pytest.approx(torch.cat(seen).mean().item(), rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parameters(), twin.parameters()))
    assert model.training


def test_training_parts_build_the_configured_optimizer_and_seeds():
    model = build_model(SMALL_AE)
    images = torch.rand(10, 1, 28, 28)
    cfg = TrainConfig(batch_size=3, optimizer="adamw", lr=2e-3, weight_decay=0.1, seed=5)
    batches, optimizer, generator = training_parts(model, images, cfg)
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.defaults["lr"] == 2e-3 and optimizer.defaults["weight_decay"] == 0.1
    assert batches.batch_size == 3 and len(batches) == 4 and torch.equal(batches.tensors[0], images)
    assert torch.equal(batches.generator.get_state(), torch.Generator().manual_seed(5).get_state())
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(6).get_state())
    _, adam, _ = training_parts(model, images, cfg.replace(optimizer="adam"))
    assert type(adam) is torch.optim.Adam and adam.defaults["weight_decay"] == 0.1


def test_fit_evaluates_and_checkpoints_on_schedule(mnist5k, tmp_path, monkeypatch):
    import course_lib.train as train_module

    saved = []
    real_save = train_module.save_checkpoint
    monkeypatch.setattr(train_module, "save_checkpoint",
                        lambda path, model, training_state: saved.append(len(training_state["history"]))
                        or real_save(path, model, training_state=training_state))
    torch.manual_seed(0)
    model = build_model(SMALL_AE)
    images, tests = mnist5k.train_images[::40], mnist5k.test_images[::40]
    cfg = TrainConfig(epochs=5, batch_size=50, lr=1e-3, eval_every=2)
    history = fit(model, images, cfg, tests, checkpoint=tmp_path / "ae.pt", checkpoint_every=2, progress=False)
    assert history["epoch"] == [1, 2, 3, 4, 5]
    assert [r["epoch"] for r in history.records if "test_mse" in r] == [2, 4, 5]
    assert saved == [2, 4, 5]
    assert history.last["test_loss"] == pytest.approx(held_out_loss(model, tests, MSEObjective()), rel=1e-6)
    assert history.last["test_mse"] == pytest.approx(evaluate(model, tests)["mse"], rel=1e-6)
    assert set(history.last) == {"epoch", "train_loss", "lr", "seconds", "test_mse", "test_psnr", "test_bce",
                                 "test_loss"}
    assert all(r["seconds"] > 0 and r["lr"] == 1e-3 for r in history.records)
    _, payload = load_checkpoint(tmp_path / "ae.pt")
    state = payload["training_state"]
    assert state["history"] == history.records and state["train_config"] == dataclasses.asdict(cfg)
    assert state["objective"] == "MSEObjective()" and state["scheduler"] is None


def test_fit_refuses_what_it_cannot_do(mnist5k):
    images = mnist5k.train_images[:8]
    model = build_model(SMALL_AE)
    with pytest.raises(ValueError, match="plateau_on='test' needs test_images"):
        fit(model, images, TrainConfig(epochs=1, plateau_scheduler=True), progress=False)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint path"):
        fit(model, images, TrainConfig(epochs=1), resume=True, progress=False)
    with pytest.raises(ValueError, match="shape"):
        fit(model, images, TrainConfig(epochs=1), images[:, :, :27], progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(model, images * 2, TrainConfig(epochs=1), progress=False)


def test_fit_shows_a_progress_bar_when_asked(mnist5k, capsys, monkeypatch):
    images = mnist5k.train_images[:8]
    fit(build_model(SMALL_AE), images, TrainConfig(epochs=2, batch_size=8), progress=True)
    err = capsys.readouterr().err
    assert "AutoEncoder" in err and "2/2" in err and "train_loss=" in err
    fit(build_model(SMALL_AE), images, TrainConfig(epochs=1, batch_size=8), progress=True, desc="my run")
    assert "my run" in capsys.readouterr().err
    fit(build_model(SMALL_AE), images, TrainConfig(epochs=1, batch_size=8), progress=False)
    assert capsys.readouterr().err == ""
    import course_lib.config as course_config

    monkeypatch.setattr(course_config, "MODE", "fast")  # no bar by default in fast mode, one outside it
    fit(build_model(SMALL_AE), images, TrainConfig(epochs=1, batch_size=8))
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(course_config, "MODE", "reference")
    fit(build_model(SMALL_AE), images, TrainConfig(epochs=1, batch_size=8))
    assert "AutoEncoder" in capsys.readouterr().err


def test_divergence_message_names_the_epoch_and_the_kept_checkpoint(mnist5k, tmp_path, monkeypatch):
    import course_lib.train as train_module

    real_epoch, calls = train_module.train_epoch, []

    def diverge_in_epoch_3(*args):
        calls.append(1)
        return float("inf") if len(calls) == 3 else real_epoch(*args)

    monkeypatch.setattr(train_module, "train_epoch", diverge_in_epoch_3)
    images = mnist5k.train_images[:16]
    with pytest.raises(TrainingDivergedError) as err:
        fit(build_model(SMALL_AE), images, TrainConfig(epochs=4, batch_size=8), checkpoint=tmp_path / "a.pt",
            checkpoint_every=1, progress=False)
    message = str(err.value)
    assert "became inf in epoch 3" in message and "restored to the end of epoch 2" in message
    assert f"The last good checkpoint is kept at {tmp_path / 'a.pt'}." in message and "lr=0.0001" in message
    calls.clear()
    with pytest.raises(TrainingDivergedError) as err:
        fit(build_model(SMALL_AE), images, TrainConfig(epochs=4, batch_size=8), progress=False)
    assert "checkpoint" not in str(err.value)


def test_resume_restores_the_scheduler_and_refuses_a_file_without_training_state(mnist5k, tmp_path):
    images = mnist5k.train_images[::40]
    cfg = TrainConfig(epochs=4, batch_size=25, lr=1e-3, plateau_scheduler=True, plateau_on="train",
                      plateau_patience=0, plateau_factor=0.5)
    torch.manual_seed(0)
    frozen = cfg.replace(lr=1e-12)  # the training loss never improves: the rate halves after every epoch
    full = fit(build_model(SMALL_AE), images, frozen, progress=False)
    torch.manual_seed(0)
    model = build_model(SMALL_AE)
    fit(model, images, frozen.replace(epochs=2), checkpoint=tmp_path / "a.pt", checkpoint_every=1, progress=False)
    resumed = fit(model, images, frozen, checkpoint=tmp_path / "a.pt", resume=True, progress=False)
    assert resumed["lr"] == pytest.approx(full["lr"], rel=1e-9) and len(resumed) == 4
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-6)
    save_checkpoint(tmp_path / "plain.pt", model)
    with pytest.raises(CheckpointError, match="no training state to resume from"):
        fit(model, images, frozen, checkpoint=tmp_path / "plain.pt", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="another training config or objective"):
        fit(model, images, frozen, objective=BetaVAEObjective(), checkpoint=tmp_path / "a.pt", resume=True,
            progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"eval_every": 0}, "eval_every"),
        ({"plateau_on": "val"}, "plateau_on must be 'train' or 'test', got 'val'"),
        ({"weight_decay": math.inf}, "weight_decay must be a finite number >= 0, got inf"),
        ({"plateau_factor": 0.0}, "plateau_factor"),
        ({"plateau_factor": 1.0}, "plateau_factor"),
        ({"plateau_patience": -1}, "plateau_patience be >= 0"),
        ({"optimizer": "sgd"}, "choose one of adam, adamw"),
    ],
)
def test_more_invalid_train_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)
    assert TrainConfig(weight_decay=0.0, plateau_patience=0, lr=1e-9).replace(epochs=3).epochs == 3
    assert TrainConfig(epochs=1, batch_size=1, eval_every=1).batch_size == 1  # the smallest allowed


def test_fit_records_the_seconds_each_epoch_took():
    images = torch.rand(40, 1, 28, 28)
    wall = time.perf_counter()
    seconds = fit(build_model(SMALL_AE), images, TrainConfig(epochs=2, batch_size=20), progress=False)["seconds"]
    wall = time.perf_counter() - wall
    assert len(seconds) == 2 and all(s > 0 for s in seconds) and sum(seconds) <= wall


def test_save_checkpoint_writes_plain_data_atomically(tmp_path):
    model = build_model(SMALL_VAE)
    path = save_checkpoint(tmp_path / "deep" / "er" / "vae.pt", model, metrics={"mse": 0.5}, training_state={"a": 1})
    assert path == tmp_path / "deep" / "er" / "vae.pt" and sorted(p.name for p in path.parent.iterdir()) == ["vae.pt"]
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "course_lib.checkpoint/1" and payload["config"] == SMALL_VAE.to_dict()
    assert payload["metrics"] == {"mse": 0.5} and payload["training_state"] == {"a": 1}
    assert payload["state_dict"].keys() == model.state_dict().keys()
    assert all(torch.equal(payload["state_dict"][k], v) for k, v in model.state_dict().items())
    assert torch.load(save_checkpoint(path, model), weights_only=True)["metrics"] == {}
    with pytest.raises(TypeError, match="needs a course_lib model"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_read_checkpoint_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "missing.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a course_lib checkpoint .expected format 'course_lib.checkpoint/1'"):
        read_checkpoint(tmp_path / "other.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a course_lib checkpoint"):
        read_checkpoint(tmp_path / "list.pt")
    payload = torch.load(save_checkpoint(tmp_path / "vae.pt", build_model(SMALL_VAE)), weights_only=True)
    payload["config"]["kind"] = "gan"
    torch.save(payload, tmp_path / "bad_config.pt")
    with pytest.raises(CheckpointError, match="has an invalid model config: unknown model kind 'gan'"):
        load_checkpoint(tmp_path / "bad_config.pt")
    del payload["config"]["kind"]
    torch.save(payload, tmp_path / "no_kind.pt")
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_checkpoint(tmp_path / "no_kind.pt")


@pytest.mark.parametrize("head, expected", [(b"PK\x03\x04", True), (b"\x80\x02", True), (b"\x80\x05", True),
                                            (b"\x80\x01", False), (b"\x80\x06", False), (b"P", False),
                                            (b"\x00\x02", False)])
def test_pickle_or_zip_recognises_what_torch_save_writes(tmp_path, head, expected):
    from course_lib.checkpoints import _pickle_or_zip

    path = tmp_path / "f"
    path.write_bytes(head)
    assert _pickle_or_zip(path) is expected


def test_fingerprint_follows_scalars_and_the_training_code(monkeypatch):
    import course_lib.checkpoints as checkpoints

    base = fingerprint({"a": 1}, torch.tensor(2.0))
    assert len(base) == 10 and int(base, 16) >= 0
    assert fingerprint({"a": 1}, torch.tensor(2.0)) == base != fingerprint({"a": 1}, torch.tensor(3.0))
    assert fingerprint({"a": 1}, torch.tensor([[1.0, 2.0]])) != fingerprint({"a": 1}, torch.tensor([[2.0, 1.0]]))
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert fingerprint({}, images) != fingerprint({}, images.flip(-1))  # mirrored digits are other data
    assert fingerprint({}, images) != fingerprint({}, images.transpose(-1, -2))
    assert fingerprint({"a": 1}) != fingerprint({"a": 1}, torch.zeros(3)) != fingerprint({"a": 1}, torch.zeros(4))
    # other code modules, another fingerprint; the default is TRAINING_CODE as it is at the call
    assert fingerprint({"a": 1}, torch.tensor(2.0), code_modules=checkpoints.TRAINING_CODE) == base
    assert fingerprint({"a": 1}, torch.tensor(2.0), code_modules=("course_lib.metrics",)) != base
    monkeypatch.setattr(checkpoints, "TRAINING_CODE", checkpoints.TRAINING_CODE[:-1])  # as if train.py were edited
    assert fingerprint({"a": 1}, torch.tensor(2.0)) != base


def test_train_or_load_builds_the_model_from_the_seed_and_restarts_an_unreadable_partial(tmp_path, capsys):
    seen = []

    def train(model, partial, resume):
        seen.append((copy.deepcopy(model.state_dict()), partial, resume))
        return {"mse": 1.0}, [{"epoch": 1}]

    (tmp_path / "ae_k1.partial.pt").write_bytes(b"garbage")
    result = train_or_load(tmp_path, "ae", "k1", SMALL_AE, train, seed=4)
    assert "ae_k1.partial.pt cannot be resumed" in capsys.readouterr().out
    torch.manual_seed(4)
    expected = build_model(SMALL_AE).state_dict()
    state, partial, resume = seen[0]
    assert all(torch.equal(state[k], v) for k, v in expected.items())
    assert partial == tmp_path / "ae_k1.partial.pt" and resume is False
    assert result.message == "trained, saved ae_k1.pt" and result.metrics == {"mse": 1.0}
    assert result.history == [{"epoch": 1}] and sorted(p.name for p in tmp_path.iterdir()) == ["ae_k1.pt"]
    loaded = train_or_load(tmp_path, "other", "k1", SMALL_AE, train)
    assert loaded.message == "loaded ae_k1.pt" and loaded.history == [{"epoch": 1}] and len(seen) == 1
    save_checkpoint(tmp_path / "x_k2.pt", build_model(SMALL_AE))  # no training state stored: empty history
    assert train_or_load(tmp_path, "x", "k2", SMALL_AE, train).history == []
    other_model = train_or_load(tmp_path, "x", "k1", SMALL_VAE, train)  # same key, another config: retrained
    assert other_model.message.startswith("trained") and "cannot be used" in capsys.readouterr().out


def test_checkpoints_are_always_loaded_with_weights_only(tmp_path, monkeypatch):
    """The safety promise holds whatever torch.load's default is (it was False before PyTorch 2.6)."""
    path = save_checkpoint(tmp_path / "ae.pt", build_model(SMALL_AE))
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: calls.append(kwargs) or real_load(*args, **kwargs))
    load_checkpoint(path, map_location="cpu")
    assert calls == [{"map_location": "cpu", "weights_only": True}]


def test_refusal_messages_say_what_to_do(tmp_path):
    torch.save(preset("seed-baseline-ae"), tmp_path / "module.pth")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(tmp_path / "module.pth")
    assert str(err.value).endswith(
        "holds pickled Python objects (e.g. a whole module saved with torch.save(model)), which course_lib refuses to "
        "unpickle because that can run arbitrary code. Save model.state_dict() instead: "
        "course_lib.checkpoints.save_checkpoint(path, model).")
    with pytest.raises(TypeError, match=r"^save_checkpoint needs a course_lib model \(one with a ModelConfig in "
                                        r"\.config\)$"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_resuming_from_another_models_checkpoint_is_refused(mnist5k, tmp_path):
    images = mnist5k.train_images[:16]
    cfg = TrainConfig(epochs=1, batch_size=8)
    fit(build_model(SMALL_AE), images, cfg, checkpoint=tmp_path / "ae.pt", progress=False)
    other = build_model(ModelConfig("ae", 5, (32,), (32,)))
    with pytest.raises(CheckpointError, match="holds a different model"):
        fit(other, images, cfg.replace(epochs=2), checkpoint=tmp_path / "ae.pt", resume=True, progress=False)


def test_a_resumed_cache_entry_says_so_exactly(mnist5k, tmp_path):
    images = mnist5k.train_images[::8]
    key = fingerprint({"model": SMALL_AE.to_dict()}, images)
    fit(build_model(SMALL_AE), images, TrainConfig(epochs=1, batch_size=500, lr=1e-3),
        checkpoint=tmp_path / f"ae_{key}.partial.pt", progress=False)
    result = train_or_load(tmp_path, "ae", key, SMALL_AE, _trainer(images, []))
    assert result.message == f"trained (resumed), saved ae_{key}.pt"


def test_fingerprint_ignores_key_order_and_takes_any_plain_value():
    from pathlib import Path

    assert fingerprint({"a": 1, "b": {"c": 2, "d": 3}}) == fingerprint({"b": {"d": 3, "c": 2}, "a": 1})
    assert fingerprint({"where": Path("x")}) == fingerprint({"where": "x"})  # anything else as its text


def test_a_conv_model_round_trips_through_a_safe_checkpoint(tmp_path):
    config = ModelConfig("vae", 2 * 49, (4, 8), (8, 4), "leaky_relu", True, "conv", spatial_latent=True)
    torch.manual_seed(0)
    model = build_model(config).eval()
    save_checkpoint(tmp_path / "conv.pt", model, {"neg_elbo": 1.0})
    loaded, payload = load_checkpoint(tmp_path / "conv.pt", expected=config)
    images = torch.rand(3, 1, 28, 28)
    assert loaded.config == config and payload["metrics"] == {"neg_elbo": 1.0}
    assert torch.equal(loaded.eval().encode(images)[0], model.encode(images)[0])
