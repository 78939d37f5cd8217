"""Notebook 05's explorers in a real browser: JupyterLab 4 + ipywidgets 8 + headless Chromium, driven with playwright.

Starts JupyterLab on a free local port over a temporary copy of notebooks/ (so nothing the browser does can
change the repository's notebook), opens 05_latent_space_explorer.ipynb, runs all cells, moves the sliders
with the keyboard (as a learner can, in ipywidgets 7 and 8), and checks that readouts and images change,
that no cell shows an error and that the browser console stays free of errors. Screenshots go to
test-artifacts/browser_explorer/. Without chromium the test is skipped, except under CI (``CI`` set), where
it fails. The same walk on Colab's stack (classic Notebook, ipywidgets 7.7) is tests/test_browser_explorer_colab.py;
what the two share is in tests/browser_support.py.
"""

from __future__ import annotations

import json
import os
import secrets
import sys

import pytest
from browser_support import (
    NOTEBOOK,
    ROOT,
    RUN_ALL_TIMEOUT_S,
    check_explorers,
    chromium,
    copy_notebooks,
    free_port,
    fresh_folder,
    run_in_browser,
    wait_until,
)

ARTIFACTS = ROOT / "test-artifacts" / "browser_explorer"

# JupyterLab user settings for the run: no autosave (the copy is thrown away anyway), every cell kept in the
# DOM (no virtual scrolling), no news or update checks (there is no network).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}

pytestmark = pytest.mark.browser


def test_explorers_in_jupyterlab(tmp_path):
    path = chromium()
    workdir = copy_notebooks(tmp_path)
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    fresh_folder(ARTIFACTS)

    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env |= {
        "COURSE_MODE": "fast",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={workdir}", f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    run_in_browser(
        path, command, env, workdir, tmp_path, ARTIFACTS,
        status_url=f"http://127.0.0.1:{port}/api/status?token={token}",
        page_url=f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}",
        drive=_run_all_and_check,
    )  # fmt: skip


def _run_all_and_check(page) -> None:
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    _wait_for_idle_kernel(page, timeout=120)
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()  # focus the notebook, so the menu acts on it
    page.screenshot(path=str(ARTIFACTS / "01_opened.png"))

    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    n_code = page.locator(".jp-CodeCell").count()

    def finished() -> bool:
        prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        done = [p for p in prompts if p.strip().startswith("[") and p.strip()[1:-2].strip().isdigit()]
        return len(done) == n_code

    wait_until(finished, RUN_ALL_TIMEOUT_S, "every code cell to run")
    _wait_for_idle_kernel(page, timeout=60)
    page.screenshot(path=str(ARTIFACTS / "02_ran_all.png"), full_page=True)

    _assert_no_error_outputs(page)
    check_explorers(page, ARTIFACTS, _assert_no_error_outputs)


def _wait_for_idle_kernel(page, timeout: float) -> None:
    """The status bar reads e.g. "Python 3 (ipykernel) | Idle" once the kernel has started and is idle."""

    def idle() -> bool:
        text = " ".join(page.locator(".jp-StatusBar-Widget").all_inner_texts())
        return "| Idle" in text and "No Kernel" not in text

    wait_until(idle, timeout, "an idle kernel")


def _assert_no_error_outputs(page) -> None:
    stderr = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    bad = [text for text in stderr if "Traceback" in text or "Error" in text]
    assert not bad, "cells show errors:\n" + "\n---\n".join(bad)
    widget_errors = page.get_by_text("Error displaying widget").count()
    assert widget_errors == 0, f"{widget_errors} widgets failed to display"
