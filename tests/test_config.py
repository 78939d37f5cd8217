"""course_lib.config: the mode switch, the folders, the device, seeding, the optimizer kernel."""

import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mode", config.MODES)
def test_by_mode_picks_the_active_modes_value(monkeypatch, mode):
    monkeypatch.setattr(config, "MODE", mode)
    assert config.by_mode(fast=1, reference=2, full=3) == {"fast": 1, "reference": 2, "full": 3}[mode]
    assert config.describe().startswith(f"{mode.capitalize()} mode: ")


@pytest.mark.parametrize(("environ", "cuda", "mode"), [
    ({}, False, "reference"),  # the default on a CPU
    ({}, True, "full"),  # and where CUDA is available
    ({"COURSE_MODE": "fast"}, True, "fast"),
    ({"COURSE_MODE": " Reference "}, True, "reference"),
    ({"COURSE_MODE": "full"}, False, "full"),
    ({"COURSE_FAST": "1"}, True, "fast"),  # the old switch is an alias of fast
    ({"COURSE_FAST": "yes", "COURSE_MODE": "fast"}, False, "fast"),
    ({"COURSE_FAST": "0"}, False, "reference"),
    ({"COURSE_FAST": "0", "COURSE_MODE": "full"}, False, "full"),
    ({"COURSE_FAST": " TRUE "}, False, "fast"),  # any case, any spaces
])
def test_read_mode(environ, cuda, mode):
    assert config.read_mode(environ, cuda=cuda) == mode


def test_read_mode_defaults_to_the_process_environment_and_the_cuda_check(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "fast")
    assert config.read_mode(cuda=False) == "fast"
    monkeypatch.delenv("COURSE_MODE")
    monkeypatch.delenv("COURSE_FAST", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.read_mode({}) == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.read_mode({}) == "reference"


@pytest.mark.parametrize(("environ", "message"), [
    ({"COURSE_MODE": "quick"}, "COURSE_MODE must be one of fast, reference, full, got 'quick'"),
    ({"COURSE_FAST": "1", "COURSE_MODE": "full"}, "COURSE_FAST=1 means fast mode but COURSE_MODE=full"),
])
def test_read_mode_rejects_unknown_or_contradicting_settings(environ, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        config.read_mode(environ, cuda=False)


def test_folders_default_to_the_checkout_and_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # wherever the notebook runs, a checkout's folders are its own
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.delenv("COURSE_OUTPUT_DIR", raising=False)
    assert config.data_dir() == ROOT / "data" and config.output_dir() == ROOT / "outputs"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path / "o"))
    assert config.data_dir() == tmp_path / "d" and config.output_dir() == tmp_path / "o"


def test_outside_a_checkout_the_folders_are_under_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "__file__", str(tmp_path / "site-packages" / "course_lib" / "config.py"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert config.data_dir() == tmp_path / "data"


def test_pick_device_prefers_the_request_then_cuda_then_mps(monkeypatch):
    assert config.pick_device("meta") == torch.device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.pick_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.pick_device() == torch.device("cpu")


def test_seed_everything_seeds_python_numpy_and_torch():
    seed = 2**32 + 5  # NumPy takes seeds below 2**32: it is seeded with seed mod 2**32
    generator = config.seed_everything(seed)
    draws = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=generator).item())
    assert draws[0] == random.Random(seed).random()
    assert draws[1] == np.random.RandomState(5).rand()
    assert draws[2] == torch.rand(1, generator=torch.Generator().manual_seed(seed)).item() == draws[3]


def test_optimizer_kernel_is_fused_where_pytorch_has_one(monkeypatch):
    assert config.optimizer_kernel(torch.device("cuda")) == {"fused": True}
    assert config.optimizer_kernel(torch.device("mps")) == {"foreach": True}
    monkeypatch.setattr(torch, "__version__", "2.4.0")
    assert config.optimizer_kernel(torch.device("cpu")) == {"fused": True}
    monkeypatch.setattr(torch, "__version__", "2.3.1")
    assert config.optimizer_kernel(torch.device("cpu")) == {"foreach": True}
    assert config.optimizer_kernel(torch.device("cuda")) == {"fused": True}
