"""Shared fixtures: the offline mnist-5k digits, loaded once per test session."""

import pytest
import torch

from course_lib.data import Dataset, load_dataset


@pytest.fixture(scope="session")
def mnist5k() -> Dataset:
    return load_dataset("mnist-5k")


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
