"""Lesson 05's sweep (course_lib.experiments.latent_sweep): what it precomputes, its table, its fingerprinted cache."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.data import Dataset
from course_lib.experiments import latent_sweep
from course_lib.losses import BetaVAEObjective, MSEObjective
from course_lib.models import ModelConfig, build_model


@pytest.fixture(scope="module")
def tiny_sweep() -> latent_sweep.Sweep:
    """An untrained VAE (latent 2, beta 1) and AE (latent 16), 40 random test images with labels 0-9, 0-9, ..."""
    torch.manual_seed(0)
    vae, ae = (build_model(ModelConfig(kind, d, (32,), (32,))) for kind, d in (("vae", 2), ("ae", 16)))
    images, labels = torch.rand(40, 1, 28, 28), torch.arange(40) % 10
    return latent_sweep.Sweep.from_models([(vae, BetaVAEObjective(1.0)), (ae, MSEObjective())], images, labels)


def test_shown_indices_take_the_first_of_each_digit_then_the_next_images():
    labels = torch.tensor([3, 3, 0, 1, 0, 2, 1])
    assert latent_sweep.shown_indices(labels, n=5).tolist() == [2, 3, 5, 0, 1]
    assert latent_sweep.shown_indices(labels, n=10).tolist() == [2, 3, 5, 0, 1, 4, 6]


def test_a_sweep_model_holds_its_encodings_reconstructions_and_prior_samples(tiny_sweep):
    entry = tiny_sweep.vae(2, 1.0)
    model, images = entry.model, tiny_sweep.test_images
    assert tiny_sweep.shown.tolist() == list(range(10))  # labels 0..9 come first
    with torch.no_grad():
        mu, _ = model.encode(images)
        torch.testing.assert_close(entry.test_codes, mu)
        torch.testing.assert_close(entry.reconstructions, model.decode(mu[:10]))
        z = torch.randn(2 * latent_sweep.N_SHOWN, 2, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(entry.prior_samples, model.decode(z))
    assert entry.beta == 1.0 and entry.name == "VAE latent 2, beta 1"
    ae = tiny_sweep.ae(16)
    assert ae.beta is None and ae.name == "AE latent 16"
    assert ae.prior_samples.shape == (2 * latent_sweep.N_SHOWN, 1, 28, 28)
    mse = ((ae.model(images) - images) ** 2).mean().item()
    assert ae.metrics["mse"] == pytest.approx(mse, rel=1e-5)
    assert tiny_sweep.vae(3, 0.1) is None and tiny_sweep.ae(2) is None


def test_the_table_has_one_row_per_model_and_dashes_where_a_metric_does_not_apply(tiny_sweep):
    lines = tiny_sweep.table().splitlines()
    assert lines[0].split() == ["model", "MSE/pixel", "D", "nats", "BCE(z=mu)", "R=KL", "nats", "-ELBO", "active",
                                "active(KL)"]
    vae, ae = lines[2], lines[3]
    m = tiny_sweep.vae(2, 1.0).metrics
    assert vae.startswith("VAE latent 2, beta 1")
    assert vae.split()[-7:] == [f"{m['mse']:.4f}", f"{m['distortion']:.1f}", f"{m['bce']:.1f}", f"{m['kl']:.2f}",
                                f"{m['neg_elbo']:.1f}", f"{int(m['active_units_cov'])}/2",
                                f"{int(m['active_units'])}/2"]
    assert ae.startswith("AE latent 16") and ae.split()[-7:-5] == [f"{tiny_sweep.ae(16).metrics['mse']:.4f}", "-"]
    assert ae.split()[-4:] == ["-", "-", "-", "-"]


def test_each_vae_holds_its_units_activity_and_names_its_collapsed_units(tiny_sweep):
    entry = tiny_sweep.vae(2, 1.0)
    with torch.no_grad():
        mu, logvar = entry.model.encode(tiny_sweep.test_images)
    torch.testing.assert_close(entry.unit_variance, mu.var(0, correction=0), rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(entry.unit_kl, (0.5 * (mu**2 + logvar.exp() - logvar - 1)).mean(0))
    assert entry.collapsed_units() == [u for u in range(2) if mu[:, u].var(correction=0) <= 0.01]
    assert tiny_sweep.ae(16).unit_variance is None and tiny_sweep.ae(16).collapsed_units() is None
    # units with the given variances: 1 and 3 collapsed
    entry = latent_sweep.SweepModel(entry.model, entry.objective, {"kl": 1.5, "active_units_cov": 2,
                                    "active_units": 3}, mu, mu, mu, torch.tensor([0.5, 0.01, 0.02, 0.0]),
                                    torch.zeros(4))  # fmt: skip
    assert entry.collapsed_units() == [1, 3]


def test_the_units_table_lists_each_beta_with_both_counts_and_the_collapsed_units(tiny_sweep):
    lines = tiny_sweep.units_table(2).splitlines()
    assert lines[0].split()[:4] == ["beta", "R=KL", "nats", "active"]
    assert [line.split()[0] for line in lines[2:]] == ["1"]  # one VAE of latent dimension 2
    m, entry = tiny_sweep.vae(2, 1.0).metrics, tiny_sweep.vae(2, 1.0)
    collapsed = ", ".join(map(str, entry.collapsed_units())) or "none"
    assert lines[2].split(maxsplit=4) == ["1", f"{m['kl']:.2f}", f"{int(m['active_units_cov'])}/2",
                                          f"{int(m['active_units'])}/2", collapsed]
    assert len(tiny_sweep.units_table(3).splitlines()) == 2  # no model: the header alone


def test_spec_validates_its_grid():
    with pytest.raises(ValueError, match="beta"):
        latent_sweep.SweepSpec("mnist-5k", (2,), (-1.0,))
    with pytest.raises(ValueError, match="latent_dim"):
        latent_sweep.SweepSpec("mnist-5k", (0,), (1.0,))
    assert len(latent_sweep.SweepSpec("mnist", latent_sweep.LATENT_DIMS, latent_sweep.BETAS).members()) == 6 * 9 + 1


# --- the cache ---------------------------------------------------------------------------------------------
@pytest.fixture()
def tiny_data() -> Dataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(60, 1, 28, 28, generator=generator)
    labels = torch.arange(60) % 10
    return Dataset("mnist-5k", images[:40], labels[:40], images[40:], labels[40:], "random test images")


def _spec(**changes) -> latent_sweep.SweepSpec:
    fields = {"dataset": "mnist-5k", "latent_dims": (2,), "betas": (1.0,), "ae_latent_dims": (2,), "epochs": 1,
              "batch_size": 20, "encoder_widths": (16,), "decoder_widths": (16,)}  # fmt: skip
    return latent_sweep.SweepSpec(**(fields | changes))


def _actions(sweep: latent_sweep.Sweep) -> list[str]:
    return [line.split("] ")[1].split(",")[0].split(" ")[0] for line in sweep.log]


def test_sweep_trains_once_then_loads_from_the_cache(tmp_path, monkeypatch, tiny_data):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    spec = _spec()
    first = latent_sweep.train_or_load(spec, tiny_data, progress=False, verbose=False)
    assert spec.folder.is_relative_to(tmp_path)
    assert sorted(p.name.rsplit("_", 1)[0] for p in spec.folder.glob("*.pt")) == ["ae_z2", "vae_z2_beta1"]
    assert _actions(first) == ["trained", "trained"]
    second = latent_sweep.train_or_load(spec, tiny_data, progress=False, verbose=False)
    assert _actions(second) == ["loaded", "loaded"]
    assert second.vae(2, 1.0).metrics == pytest.approx(first.vae(2, 1.0).metrics)
    assert second.vae(2, 1.0).metrics == pytest.approx(
        latent_sweep.evaluate(second.vae(2, 1.0).model, tiny_data.test_images, seed=spec.seed))
    torch.testing.assert_close(second.vae(2, 1.0).test_codes, first.vae(2, 1.0).test_codes)
    torch.testing.assert_close(second.ae(2).test_codes, first.ae(2).test_codes)
    with pytest.raises(ValueError, match="sweep spec is for"):
        latent_sweep.train_or_load(_spec(dataset="mnist"), tiny_data, verbose=False)


def test_a_changed_recipe_or_data_gets_a_new_key_and_is_retrained(tmp_path, monkeypatch, tiny_data):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    spec = _spec()
    vae_config, vae_objective = spec.members()[0][1:]
    ae_config, ae_objective = spec.members()[1][1:]
    key = spec.cache_key(vae_config, vae_objective, tiny_data)
    assert spec.cache_key(vae_config, BetaVAEObjective(0.5), tiny_data) != key
    assert _spec(epochs=2).cache_key(vae_config, vae_objective, tiny_data) != key
    assert _spec(lr=1e-3).cache_key(vae_config, vae_objective, tiny_data) != key
    other_data = Dataset("mnist-5k", tiny_data.train_images[:30], tiny_data.train_labels[:30],
                         tiny_data.test_images, tiny_data.test_labels, "fewer images")  # fmt: skip
    assert spec.cache_key(vae_config, vae_objective, other_data) != key
    assert spec.cache_key(ae_config, ae_objective, tiny_data) != key

    latent_sweep.train_or_load(spec, tiny_data, progress=False, verbose=False)
    longer = latent_sweep.train_or_load(_spec(epochs=2), tiny_data, progress=False, verbose=False)
    assert _actions(longer) == ["trained", "trained"]  # never the 1-epoch models
    # A new beta changes only the VAE's objective: the AE, whose objective has no beta, is loaded.
    new_beta = latent_sweep.train_or_load(_spec(betas=(0.5,)), tiny_data, progress=False, verbose=False)
    assert _actions(new_beta) == ["trained", "loaded"]
    assert len(list(spec.folder.glob("*.pt"))) == 5


def test_a_corrupt_cached_checkpoint_is_retrained_with_a_message(tmp_path, monkeypatch, tiny_data, capsys):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    spec = _spec()
    first = latent_sweep.train_or_load(spec, tiny_data, progress=False, verbose=False)
    (vae_file,) = spec.folder.glob("vae_*.pt")
    vae_file.write_bytes(b"\x00 not a checkpoint " * 10)
    capsys.readouterr()
    second = latent_sweep.train_or_load(spec, tiny_data, progress=False, verbose=True)
    out = capsys.readouterr().out
    assert f"{vae_file.name} cannot be used" in out and "training it again" in out
    assert _actions(second) == ["trained", "loaded"]
    assert "1 trained, 1 loaded" in out
    # Retraining from the same seed reproduces the lost model.
    assert second.vae(2, 1.0).metrics == pytest.approx(first.vae(2, 1.0).metrics)
    assert all(math.isfinite(v) for v in second.vae(2, 1.0).metrics.values())


def test_default_spec_is_a_corner_in_fast_mode_and_the_grid_otherwise(monkeypatch):
    from course_lib import config

    monkeypatch.setattr(config, "MODE", "fast")
    fast = latent_sweep.default_spec()
    assert (fast.dataset, fast.latent_dims, fast.betas, fast.epochs, fast.batch_size, fast.lr) == (
        "mnist-5k", (2, 16), (0.5, 1.0, 8.0), 10, 128, 2e-3)
    assert len(fast.members()) == 2 * 3 + 1  # small: CI trains it
    grid = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    monkeypatch.setattr(config, "MODE", "reference")
    reference = latent_sweep.default_spec()
    assert (reference.dataset, reference.latent_dims, reference.betas, reference.epochs, reference.batch_size) == (
        "mnist-5k", (2, 3, 4, 8, 16, 32), grid, 30, 128)
    # the stored run covers the whole grid the sliders offer
    assert [name for name, _, _ in reference.members()][:-1] == [
        f"vae_z{d}_beta{b:g}" for d in latent_sweep.LATENT_DIMS for b in latent_sweep.BETAS]
    monkeypatch.setattr(config, "MODE", "full")
    full = latent_sweep.default_spec()
    assert (full.dataset, full.latent_dims, full.betas, full.epochs, full.batch_size) == (
        "mnist", (2, 3, 4, 8, 16, 32), grid, 20, 256)
    assert full.describe() == ("sweep on mnist: VAEs with latent dim [2, 3, 4, 8, 16, 32] x beta "
                               "[0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0] and AEs with latent dim [16] "
                               "(55 models), 20 epochs each, batch 256, Adam lr 0.002, seed 0")


def test_members_are_named_by_their_grid_position():
    spec = _spec(latent_dims=(2, 8), betas=(0.25, 1.0), ae_latent_dims=(4,))
    names = [name for name, _, _ in spec.members()]
    assert names == ["vae_z2_beta0.25", "vae_z2_beta1", "vae_z8_beta0.25", "vae_z8_beta1", "ae_z4"]
    _, config, objective = spec.members()[1]
    assert config == ModelConfig("vae", 2, (16,), (16,)) and objective == BetaVAEObjective(1.0)
    assert spec.members()[-1][1:] == (ModelConfig("ae", 4, (16,), (16,)), MSEObjective())
    assert spec.train_config() == latent_sweep.TrainConfig(epochs=1, batch_size=20, lr=2e-3, seed=0)
    with pytest.raises(ValueError, match="epochs"):
        _spec(epochs=0)


def test_cache_key_follows_the_dataset_and_the_test_images(tiny_data):
    spec = _spec()
    config, objective = spec.members()[0][1:]
    key = spec.cache_key(config, objective, tiny_data)
    assert _spec(dataset="mnist").cache_key(config, objective, tiny_data) != key
    other_test = Dataset("mnist-5k", tiny_data.train_images, tiny_data.train_labels, tiny_data.test_images.flip(0),
                         tiny_data.test_labels, "same images, other order")
    assert spec.cache_key(config, objective, other_test) != key
    assert _spec(seed=1).cache_key(config, objective, tiny_data) != key


def test_shown_path_hides_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    assert latent_sweep.shown_path(tmp_path / "05_latent_sweep" / "a.pt") == "<output dir>/05_latent_sweep/a.pt"
    assert latent_sweep.shown_path(tmp_path.parent / "elsewhere") == str(tmp_path.parent / "elsewhere")
    assert _spec().folder == tmp_path / "05_latent_sweep"


def test_from_models_keeps_given_metrics_and_the_grid(tiny_sweep):
    torch.manual_seed(0)
    models = [(build_model(ModelConfig("vae", d, (8,), (8,))), BetaVAEObjective(b)) for d, b in ((3, 2.0), (2, 0.5))]
    images, labels = torch.rand(12, 1, 28, 28), torch.arange(12) % 10
    sweep = latent_sweep.Sweep.from_models(models, images, labels, metrics=[{"kl": 1.0}, {"kl": 2.0}],
                                           latent_dims=(2, 3), betas=(0.5, 2))
    assert sweep.vae(3, 2.0).metrics == {"kl": 1.0} and sweep.vae(2, 0.5).metrics == {"kl": 2.0}
    assert sweep.trained_positions() == [(2, 0.5), (3, 2.0)] and sweep.aes == {}
    assert sweep.latent_dims == (2, 3) and sweep.betas == (0.5, 2.0) and isinstance(sweep.betas[1], float)
    assert sweep.vae(3, 2) is sweep.vae(3.0, 2.0) and sweep.vae(3, 1.0) is None
    assert sweep.shown.tolist() == list(range(10))


def test_sweep_prints_what_it_did(tmp_path, monkeypatch, tiny_data, capsys):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    sweep = latent_sweep.train_or_load(_spec(), tiny_data, progress=False, verbose=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[ 1/2] trained, saved vae_z2_beta1_") and out[0].endswith(" s")
    assert out[1].startswith("[ 2/2] trained, saved ae_z2_")
    assert out[2].startswith("2 trained, 0 loaded; checkpoints in <output dir>/05_latent_sweep; ")
    assert out[2].endswith(" s wall") and sweep.log == out[:2]
    latent_sweep.train_or_load(_spec(), tiny_data, progress=False, verbose=False)
    assert capsys.readouterr().out == ""


def test_the_trainer_fits_with_the_objective_checkpoints_and_resumes(tmp_path, tiny_data, capsys):
    """The train callback of the cache: fit with the spec's recipe and the given objective, checkpointing to the
    partial file and resuming from it; test metrics measured with the spec's seed."""
    spec = _spec(epochs=2, seed=3)
    config = ModelConfig("vae", 2, (16,), (16,))
    objective = BetaVAEObjective(0.5)
    train = latent_sweep._trainer(spec, tiny_data.train_images, tiny_data.test_images, objective, True, "my vae")
    torch.manual_seed(0)
    model = build_model(config)
    metrics, records = train(model, tmp_path / "m.partial.pt", False)
    assert "my vae" in capsys.readouterr().err and (tmp_path / "m.partial.pt").exists()
    torch.manual_seed(0)
    twin = build_model(config)
    history = latent_sweep.fit(twin, tiny_data.train_images, spec.train_config(), objective=objective, progress=False)
    assert [r["train_loss"] for r in records] == pytest.approx(history["train_loss"], rel=1e-6)
    assert metrics == pytest.approx(latent_sweep.evaluate(twin, tiny_data.test_images, seed=3), rel=1e-6)
    # interrupted after epoch 1: resuming the partial file finishes the same run
    torch.manual_seed(0)
    first = build_model(config)
    latent_sweep.fit(first, tiny_data.train_images, spec.train_config().replace(epochs=1), objective=objective,
                     checkpoint=tmp_path / "r.partial.pt", progress=False)
    _, resumed = train(first, tmp_path / "r.partial.pt", True)
    assert [r["train_loss"] for r in resumed] == pytest.approx(history["train_loss"], rel=1e-5)


def test_sweep_log_times_each_model(tmp_path, monkeypatch, tiny_data):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    sweep = latent_sweep.train_or_load(_spec(), tiny_data, progress=False, verbose=False)
    seconds = [float(line.rsplit(" in ", 1)[1].removesuffix(" s")) for line in sweep.log]
    assert all(0 <= s < 60 for s in seconds)


def test_from_models_uses_its_seed_and_wants_one_metrics_dict_per_model():
    torch.manual_seed(0)
    vae = build_model(ModelConfig("vae", 2, (8,), (8,)))
    images, labels = torch.rand(12, 1, 28, 28), torch.arange(12) % 10
    sweep = latent_sweep.Sweep.from_models([(vae, BetaVAEObjective(1.0))], images, labels, seed=2)
    entry = sweep.vae(2, 1.0)
    assert torch.equal(entry.prior_samples, latent_sweep.sample_prior(vae, 20, seed=2))
    assert entry.metrics == pytest.approx(latent_sweep.evaluate(vae, images, seed=2))
    with pytest.raises(ValueError):
        latent_sweep.Sweep.from_models([(vae, BetaVAEObjective(1.0))], images, labels, metrics=[{}, {}])
    default = latent_sweep.SweepModel.summarise(vae, BetaVAEObjective(1.0), images, torch.arange(3))
    assert torch.equal(default.prior_samples, latent_sweep.sample_prior(vae, 20, seed=0))


def test_train_or_load_trains_each_member_with_its_own_objective_name_and_seed(tmp_path, monkeypatch, tiny_data,
                                                                                capsys):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    seen = []
    real_fit = latent_sweep.fit

    def recording_fit(model, *args, **kwargs):
        seen.append((kwargs["objective"], kwargs["progress"], kwargs["desc"]))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(latent_sweep, "fit", recording_fit)
    spec = _spec(betas=(0.5,), seed=2)
    sweep = latent_sweep.train_or_load(spec, tiny_data, progress=False)  # verbose by default
    assert seen == [(BetaVAEObjective(0.5), False, "vae_z2_beta0.5"), (MSEObjective(), False, "ae_z2")]
    out = capsys.readouterr().out
    assert "[ 1/2] trained" in out and float(out.rsplit("; ", 1)[1].removesuffix(" s wall\n")) < 600
    entry = sweep.vae(2, 0.5)
    assert torch.equal(entry.prior_samples, latent_sweep.sample_prior(entry.model, 20, seed=2))


def test_loaded_metrics_are_measured_again_with_the_current_evaluation(tmp_path, monkeypatch, tiny_data):
    """Metrics stored in a checkpoint by older evaluation code (here: one key only) are not what the sweep shows."""
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    spec = _spec()
    latent_sweep.train_or_load(spec, tiny_data, progress=False, verbose=False)
    from course_lib.checkpoints import read_checkpoint

    (vae_file,) = spec.folder.glob("vae_*.pt")
    payload = read_checkpoint(vae_file)
    payload["metrics"] = {"kl": -1.0}
    torch.save(payload, vae_file)
    loaded = latent_sweep.train_or_load(spec, tiny_data, progress=False, verbose=False)
    assert _actions(loaded) == ["loaded", "loaded"]
    entry = loaded.vae(2, 1.0)
    assert entry.metrics == pytest.approx(latent_sweep.evaluate(entry.model, tiny_data.test_images, seed=spec.seed))
    assert {"distortion", "active_units_cov", "active_units"} <= set(entry.metrics)


def test_grid_table_puts_a_metric_at_its_beta_row_and_latent_dimension_column():
    torch.manual_seed(0)
    models = [(build_model(ModelConfig("vae", d, (8,), (8,))), BetaVAEObjective(b)) for d, b in ((3, 2.0), (2, 0.5))]
    images, labels = torch.rand(12, 1, 28, 28), torch.arange(12) % 10
    sweep = latent_sweep.Sweep.from_models(models, images, labels, metrics=[{"kl": 1.25}, {"kl": 2.5}])
    assert sweep.grid_table("kl", ".2f").splitlines() == [
        "beta   d=2   d=3",
        "----  ----  ----",
        "0.5   2.50     -",
        "2        -  1.25",
    ]
