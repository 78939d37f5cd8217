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


# ---- `make mutation`: credit what a shared fixture runs to every test that uses the fixture ----
# mutmut runs, for each mutant, only the tests during which the mutated function ran. A function that runs while a
# module- or session-scoped fixture is set up (the digits loaded, a tiny sweep trained) runs once, inside the first
# test that asks for it, and would be tested by that one test alone. This plugin records what each shared fixture
# ran and hands it to every test that uses the fixture. It acts only while mutmut collects its statistics, and is
# registered as a plugin because a conftest's own hooks do not see the set-up of session-scoped fixtures.
class _SharedFixtureCredit:
    def __init__(self) -> None:
        self.hits: dict[str, set[str]] = {}

    @staticmethod
    def recorder():
        """mutmut's state while it records which functions each test runs, else None."""
        if os.environ.get("MUTANT_UNDER_TEST") != "stats":
            return None
        from mutmut.state import state

        return state()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef):
        recorder = self.recorder() if fixturedef.scope != "function" else None
        if recorder is None:
            yield
            return
        outer, recorder._stats = recorder._stats, set()
        try:
            yield
        finally:
            ran, recorder._stats = recorder._stats, outer | recorder._stats
            self.hits.setdefault(fixturedef.argname, set()).update(ran)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item):
        recorder = self.recorder()
        if recorder is not None:
            for name in item.fixturenames:
                recorder._stats.update(self.hits.get(name, ()))


def pytest_configure(config):
    config.pluginmanager.register(_SharedFixtureCredit(), "shared-fixture-credit")
