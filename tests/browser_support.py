"""What the two browser tests share: chromium, a notebook server on a free port over a throw-away copy of
notebooks/, a headless page that records every console error, and the walk through notebook 05's three explorers,
which is the same in JupyterLab 4 with ipywidgets 8 (tests/test_browser_explorer.py) and in the classic Notebook
6.5 with ipywidgets 7.7, Colab's widget stack (tests/test_browser_explorer_colab.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "05_latent_space_explorer.ipynb"
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


def chromium() -> str:
    """Chromium's path; without it (or playwright) the test is skipped, except under CI (``CI`` set)."""
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the notebook server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the notebook server did not answer at {url} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
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


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_notebooks(tmp_path: Path) -> Path:
    """A copy of notebooks/ to serve, so nothing the browser does can change the repository's notebooks."""
    assert (ROOT / "notebooks" / NOTEBOOK).exists()
    workdir = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", workdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return workdir


def fresh_folder(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_in_browser(
    browser_path: str, command: list[str], env: dict[str, str], workdir: Path, tmp_path: Path, artifacts: Path,
    status_url: str, page_url: str, drive: Callable,
) -> float:
    """Start the notebook server ``command`` in ``workdir``, open ``page_url`` in headless Chromium
    (``browser_path``) and call ``drive(page)``; then stop the server, keep its log in ``artifacts`` and fail on any
    browser console error (nothing is filtered out) or on a change to the repository's notebook. Returns the
    seconds it took."""
    from playwright.sync_api import sync_playwright

    before = digest(ROOT / "notebooks" / NOTEBOOK)
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    console_errors: list[str] = []
    failed: list[str] = []
    started = time.monotonic()
    try:
        wait_for_server(status_url, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
                page.on("pageerror", lambda err: console_errors.append(f"page error: {err}"))
                # Not errors of their own, but the console's "Failed to load resource" does not say which one.
                page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
                page.on("requestfailed", lambda r: failed.append(f"{r.failure} {r.url}"))
                page.goto(page_url)
                drive(page)
            finally:
                browser.close()
    finally:
        stop(proc)
        log.close()
        shutil.copy(log_path, artifacts / "server.log")
    seconds = time.monotonic() - started
    print(f"browser test: {seconds:.0f} s; screenshots in {artifacts.relative_to(ROOT)}")
    assert not console_errors, (
        "browser console errors:\n" + "\n".join(console_errors) + "\nfailed requests:\n" + "\n".join(failed)
    )
    assert digest(ROOT / "notebooks" / NOTEBOOK) == before, "the repository's notebook was modified"
    return seconds


def changed(locator, old: str) -> str | bool:
    text = locator.inner_text()
    return text if text != old and text.strip() else False


def press(page, slider_class: str, key: str, times: int = 1) -> None:
    """Focus the slider's handle and press ``key``: how a keyboard user moves an ipywidgets slider."""
    handle = page.locator(slider_class).locator(SLIDER_HANDLE).first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        page.keyboard.press(key)
        time.sleep(0.15)


def check_explorers(page, artifacts: Path, assert_no_error_outputs: Callable) -> None:
    """After "run all": move each explorer's sliders, check that readouts and images change, take screenshots."""
    # Explorer 1: latent dimension 16 -> 8 (no model in FAST mode: the message) -> ... -> 2, then beta 1 -> 0.5.
    explorer = page.locator(".sweep-explorer")
    readout, image = page.locator(".sweep-explorer-readout"), page.locator(".sweep-explorer-image")
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(artifacts / "10_sweep_default.png"))
    text0, shot0 = readout.inner_text(), image.screenshot()
    assert "latent dimension 16" in text0 and "active units" in text0, text0
    press(page, ".latent-dim-slider", "ArrowLeft")
    text1 = wait_until(lambda: changed(readout, text0), 30, "the readout to change after latent dim -1")
    assert "No model trained at latent dimension 8" in text1, text1
    explorer.screenshot(path=str(artifacts / "11_sweep_missing_model.png"))
    press(page, ".latent-dim-slider", "ArrowLeft", times=3)
    text2 = wait_until(lambda: "latent dimension 2," in readout.inner_text() and readout.inner_text(), 30,
                       "latent dimension 2")
    assert "active units" in text2, text2
    wait_until(lambda: image.screenshot() != shot0, 30, "the figure to change with the latent dimension")
    shot2 = image.screenshot()
    press(page, ".beta-slider", "ArrowLeft")
    text3 = wait_until(lambda: changed(readout, text2), 30, "the readout to change after beta -1")
    assert "beta = 0.5" in text3, text3
    wait_until(lambda: image.screenshot() != shot2, 30, "the figure to change with beta")
    explorer.screenshot(path=str(artifacts / "12_sweep_latent2_beta0.5.png"))

    # Explorer 2: z1 0.0 -> 0.5 with five arrow presses.
    explorer = page.locator(".latent-map-explorer")
    readout, image = page.locator(".latent-map-explorer-readout"), page.locator(".latent-map-explorer-image")
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(artifacts / "20_latent_map_default.png"))
    text0, shot0 = readout.inner_text(), image.screenshot()
    assert "z = (0.00, 0.00)" in text0, text0
    press(page, ".z1-slider", "ArrowRight", times=5)
    wait_until(lambda: "z = (0.50, 0.00)" in readout.inner_text(), 30, "z1 = 0.5 in the readout")
    press(page, ".z2-slider", "ArrowLeft", times=10)
    wait_until(lambda: "z = (0.50, -1.00)" in readout.inner_text(), 30, "z2 = -1.0 in the readout")
    wait_until(lambda: image.screenshot() != shot0, 30, "the latent map figure to change")
    explorer.screenshot(path=str(artifacts / "21_latent_map_moved.png"))

    # Explorer 3: t 0.5 -> 0.8, then image A one step on.
    explorer = page.locator(".interpolation-explorer")
    readout, image = page.locator(".interpolation-explorer-readout"), page.locator(".interpolation-explorer-image")
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(artifacts / "30_interpolation_default.png"))
    text0, shot0 = readout.inner_text(), image.screenshot()
    assert "t = 0.50" in text0, text0
    press(page, ".interp-t-slider", "ArrowRight", times=6)
    wait_until(lambda: "t = 0.80" in readout.inner_text(), 30, "t = 0.80 in the readout")
    wait_until(lambda: image.screenshot() != shot0, 30, "the interpolation figure to change")
    press(page, ".interp-a-slider", "ArrowRight")
    wait_until(lambda: changed(readout, "t = 0.80") and "A = test image #" in readout.inner_text(), 30,
               "image A to change")
    explorer.screenshot(path=str(artifacts / "31_interpolation_moved.png"))

    assert_no_error_outputs(page)
    page.screenshot(path=str(artifacts / "40_end.png"), full_page=True)
