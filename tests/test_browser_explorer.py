"""Notebook 05's explorers in a real browser: JupyterLab + headless Chromium, driven with playwright.

Starts JupyterLab on a free local port over a temporary copy of notebooks/ (so nothing the browser does can
change the repository's notebook), opens 05_latent_space_explorer.ipynb, runs all cells, moves the sliders
with the keyboard (as a learner can, in ipywidgets 7 and 8), and checks that readouts and images change,
that no cell shows an error and that the browser console stays free of errors. Screenshots go to
test-artifacts/browser_explorer/. Without chromium the test is skipped, except under CI (``CI`` set), where
it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "05_latent_space_explorer.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "browser_explorer"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUN_ALL_TIMEOUT_S = 900  # a cold cache trains the FAST sweep inside the kernel first
SLIDER_HANDLE = ".noUi-handle, .ui-slider-handle"  # ipywidgets 8 (noUiSlider), ipywidgets 7 (jQuery UI)

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


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium (on PATH) and the playwright package are required under CI")
        pytest.skip("chromium or playwright not installed")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM lets the server shut its kernels down; kill the whole process group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=10)


def _wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_explorers_in_jupyterlab(tmp_path):
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    source = ROOT / "notebooks" / NOTEBOOK
    assert source.exists(), source
    before = _digest(source)
    workdir = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", workdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)

    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env |= {
        "COURSE_FAST": "1",
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
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    console_errors: list[str] = []
    started = time.monotonic()
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                # Every console error counts: nothing is filtered out.
                page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
                page.on("pageerror", lambda err: console_errors.append(f"page error: {err}"))
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}")
                _run_all_and_check(page)
            finally:
                browser.close()
    finally:
        _stop(proc)
        log.close()
        shutil.copy(tmp_path / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")
    print(f"browser test: {time.monotonic() - started:.0f} s; screenshots in {ARTIFACTS.relative_to(ROOT)}")
    assert not console_errors, "browser console errors:\n" + "\n".join(console_errors)
    assert _digest(source) == before, "the repository's notebook was modified"


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

    _wait_until(finished, RUN_ALL_TIMEOUT_S, "every code cell to run")
    _wait_for_idle_kernel(page, timeout=60)
    page.screenshot(path=str(ARTIFACTS / "02_ran_all.png"), full_page=True)

    _assert_no_error_outputs(page)

    # Explorer 1: latent dimension 16 -> 8 (no model in FAST mode: the message) -> ... -> 2, then beta 1 -> 0.5.
    explorer = page.locator(".sweep-explorer")
    readout, image = page.locator(".sweep-explorer-readout"), page.locator(".sweep-explorer-image")
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(ARTIFACTS / "10_sweep_default.png"))
    text0, shot0 = readout.inner_text(), image.screenshot()
    assert "latent dimension 16" in text0 and "active units" in text0, text0
    _press(page, ".latent-dim-slider", "ArrowLeft")
    text1 = _wait_until(lambda: _changed(readout, text0), 30, "the readout to change after latent dim -1")
    assert "No model trained at latent dimension 8" in text1, text1
    explorer.screenshot(path=str(ARTIFACTS / "11_sweep_missing_model.png"))
    _press(page, ".latent-dim-slider", "ArrowLeft", times=3)
    text2 = _wait_until(lambda: "latent dimension 2," in readout.inner_text() and readout.inner_text(), 30,
                        "latent dimension 2")
    assert "active units" in text2, text2
    _wait_until(lambda: image.screenshot() != shot0, 30, "the figure to change with the latent dimension")
    shot2 = image.screenshot()
    _press(page, ".beta-slider", "ArrowLeft")
    text3 = _wait_until(lambda: _changed(readout, text2), 30, "the readout to change after beta -1")
    assert "beta = 0.5" in text3, text3
    _wait_until(lambda: image.screenshot() != shot2, 30, "the figure to change with beta")
    explorer.screenshot(path=str(ARTIFACTS / "12_sweep_latent2_beta0.5.png"))

    # Explorer 2: z1 0.0 -> 0.5 with five arrow presses.
    explorer = page.locator(".latent-map-explorer")
    readout, image = page.locator(".latent-map-explorer-readout"), page.locator(".latent-map-explorer-image")
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(ARTIFACTS / "20_latent_map_default.png"))
    text0, shot0 = readout.inner_text(), image.screenshot()
    assert "z = (0.00, 0.00)" in text0, text0
    _press(page, ".z1-slider", "ArrowRight", times=5)
    _wait_until(lambda: "z = (0.50, 0.00)" in readout.inner_text(), 30, "z1 = 0.5 in the readout")
    _press(page, ".z2-slider", "ArrowLeft", times=10)
    _wait_until(lambda: "z = (0.50, -1.00)" in readout.inner_text(), 30, "z2 = -1.0 in the readout")
    _wait_until(lambda: image.screenshot() != shot0, 30, "the latent map figure to change")
    explorer.screenshot(path=str(ARTIFACTS / "21_latent_map_moved.png"))

    # Explorer 3: t 0.5 -> 0.8, then image A one step on.
    explorer = page.locator(".interpolation-explorer")
    readout, image = page.locator(".interpolation-explorer-readout"), page.locator(".interpolation-explorer-image")
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(ARTIFACTS / "30_interpolation_default.png"))
    text0, shot0 = readout.inner_text(), image.screenshot()
    assert "t = 0.50" in text0, text0
    _press(page, ".interp-t-slider", "ArrowRight", times=6)
    _wait_until(lambda: "t = 0.80" in readout.inner_text(), 30, "t = 0.80 in the readout")
    _wait_until(lambda: image.screenshot() != shot0, 30, "the interpolation figure to change")
    _press(page, ".interp-a-slider", "ArrowRight")
    _wait_until(lambda: _changed(readout, "t = 0.80") and "A = test image #" in readout.inner_text(), 30,
                "image A to change")
    explorer.screenshot(path=str(ARTIFACTS / "31_interpolation_moved.png"))

    _assert_no_error_outputs(page)
    page.screenshot(path=str(ARTIFACTS / "40_end.png"), full_page=True)


def _changed(locator, old: str) -> str | bool:
    text = locator.inner_text()
    return text if text != old and text.strip() else False


def _press(page, slider_class: str, key: str, times: int = 1) -> None:
    """Focus the slider's handle and press ``key``: how a keyboard user moves an ipywidgets slider."""
    handle = page.locator(slider_class).locator(SLIDER_HANDLE).first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        page.keyboard.press(key)
        time.sleep(0.15)


def _wait_for_idle_kernel(page, timeout: float) -> None:
    """The status bar reads e.g. "Python 3 (ipykernel) | Idle" once the kernel has started and is idle."""

    def idle() -> bool:
        text = " ".join(page.locator(".jp-StatusBar-Widget").all_inner_texts())
        return "| Idle" in text and "No Kernel" not in text

    _wait_until(idle, timeout, "an idle kernel")


def _assert_no_error_outputs(page) -> None:
    stderr = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    bad = [text for text in stderr if "Traceback" in text or "Error" in text]
    assert not bad, "cells show errors:\n" + "\n---\n".join(bad)
    widget_errors = page.get_by_text("Error displaying widget").count()
    assert widget_errors == 0, f"{widget_errors} widgets failed to display"
