import pickle

import pytest
import torch

from course_lib.baselines import pca_test_mse
from course_lib.checkpoints import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from course_lib.evaluate import evaluate
from course_lib.models import ModelConfig, build_model, preset, preset_config
from course_lib.train import RECIPES, TrainConfig, TrainingDivergedError, fit

SMALL_VAE = ModelConfig("vae", 4, (64,), (64,))


def small_run(mnist5k, **changes):
    torch.manual_seed(0)
    model = build_model(SMALL_VAE)
    cfg = TrainConfig(epochs=3, batch_size=256, lr=1e-3, rotation_degrees=10, noise_std=0.05, seed=7).replace(**changes)
    history = fit(model, mnist5k.train_images[::4], cfg, mnist5k.test_images[::4], progress=False)
    return model, history


def test_same_seed_gives_the_same_history(mnist5k):
    _, first = small_run(mnist5k)
    _, again = small_run(mnist5k)
    _, other = small_run(mnist5k, seed=8)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h.records]  # noqa: E731
    assert strip(first) == strip(again)
    assert strip(first) != strip(other)
    assert first["train_loss"][-1] < first["train_loss"][0]


def test_test_data_is_not_augmented(mnist5k):
    model, history = small_run(mnist5k, rotation_degrees=30, noise_std=0.3)
    clean = evaluate(model, mnist5k.test_images[::4], seed=7)
    assert history.last["test_mse"] == pytest.approx(clean["mse"])
    assert history.last["test_neg_elbo"] == pytest.approx(clean["neg_elbo"])


def test_checkpoint_round_trip_and_resume_is_exact(mnist5k, tmp_path):
    path = tmp_path / "vae.pt"
    full_model, full = small_run(mnist5k, epochs=4)
    torch.manual_seed(0)
    model = build_model(SMALL_VAE)
    cfg = TrainConfig(epochs=2, batch_size=256, lr=1e-3, rotation_degrees=10, noise_std=0.05, seed=7,
                      checkpoint_every=1, checkpoint_path=str(path))
    fit(model, mnist5k.train_images[::4], cfg, mnist5k.test_images[::4], progress=False)
    loaded, payload = load_checkpoint(path, expected=SMALL_VAE)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert payload["metrics"]["test_mse"] == pytest.approx(payload["training_state"]["history"][-1]["test_mse"])
    resumed = fit(loaded, mnist5k.train_images[::4], cfg.replace(epochs=4), mnist5k.test_images[::4],
                  resume_from=path, progress=False)
    assert [r["train_loss"] for r in resumed.records] == pytest.approx(full["train_loss"], rel=1e-5)
    assert resumed.last["test_neg_elbo"] == pytest.approx(full.last["test_neg_elbo"], rel=1e-5)


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
    with pytest.raises(CheckpointError):
        read_checkpoint(evil)


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
    [({"beta": -1.0}, "beta"), ({"optimizer": "sgdx"}, "unknown optimizer"), ({"lr": 0.0}, "lr")],
)
def test_invalid_train_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_nan_loss_stops_training_with_a_message_and_keeps_last_good_weights(mnist5k, tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig("ae", 4, (32,), (32,)))
    path = tmp_path / "ae.pt"
    cfg = TrainConfig(epochs=3, batch_size=500, lr=1e-3, checkpoint_every=1, checkpoint_path=str(path))
    fit(model, mnist5k.train_images[::8], cfg.replace(epochs=1), progress=False)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.decoder[0].weight.fill_(float("nan"))
    poisoned = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDivergedError, match="learning rate too high"):
        fit(model, mnist5k.train_images[::8], cfg, progress=False)
    # in memory: the weights from before the failing epoch (a NaN step would have made every weight NaN)
    encoder_weight = model.state_dict()["encoder.0.weight"]
    assert torch.isfinite(encoder_weight).all() and torch.equal(encoder_weight, poisoned["encoder.0.weight"])
    # on disk: the last good checkpoint is kept
    kept, _ = load_checkpoint(path)
    assert all(torch.equal(kept.state_dict()[k], v) for k, v in good.items())


def test_a_few_epochs_of_the_improved_ae_beat_pca(mnist5k):
    torch.manual_seed(0)
    model = preset("seed-improved-ae")
    cfg = RECIPES["seed-improved"].replace(epochs=20, batch_size=128, rotation_degrees=0.0)
    history = fit(model, mnist5k.train_images, cfg, mnist5k.test_images, progress=False)
    pca = pca_test_mse(mnist5k.train_images, mnist5k.test_images, n_components=16)
    assert history.last["test_mse"] < pca
