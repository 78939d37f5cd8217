"""Shared fixtures: the offline mnist-5k digits, loaded once per test session."""

import os

import pytest
import torch

from course_lib.data import Dataset, load_dataset

# Two threads: the unit tests' cores. `make mutation` runs two test processes at once and sets one thread each.
THREADS = int(os.environ.get("COURSE_TEST_THREADS", "2"))


@pytest.fixture(scope="session")
def mnist5k() -> Dataset:
    return load_dataset("mnist-5k")


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(THREADS)
