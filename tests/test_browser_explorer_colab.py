"""Notebook 05's explorers on Colab's widget stack: the classic Notebook 6.5 with ipywidgets 7.7 and
widgetsnbextension 3.6 (the widget protocol and widget manager Colab implements), in headless Chromium.

The server and the kernel run in .venv-colab, which `make test` builds with Colab's versions from
tests/colab_pins.txt (PyTorch and course_lib come from the main venv). The test checks that the server and the kernel
really run those versions and that the page renders the widgets with ipywidgets 7's front end, then runs all
cells of a copy of notebook 05 and takes the same walk through its three explorers as the JupyterLab test:
sliders moved with the keyboard, readouts and images must change, no cell may show an error and the browser console
must stay free of errors. Screenshots go to test-artifacts/browser_explorer_colab/. Without .venv-colab (made by
`make test` or `make install-colab`) or chromium the test is skipped, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

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
from test_colab_install import colab_pins

ARTIFACTS = ROOT / "test-artifacts" / "browser_explorer_colab"
# Colab's widget stack: the distributions of colab_pins.txt that .venv-colab holds, as (distribution, module).
STACK = {"notebook": "notebook", "ipywidgets": "ipywidgets", "widgetsnbextension": "widgetsnbextension",
         "ipykernel": "ipykernel", "ipython": "IPython", "jupyter-client": "jupyter_client",
         "traitlets": "traitlets", "tornado": "tornado"}  # fmt: skip
VERSIONS = (
    "import importlib.metadata, json, sys; "
    f"print(json.dumps({{name: importlib.metadata.version(name) for name in {sorted(STACK)!r}}}))"
)

pytestmark = pytest.mark.browser


def _colab_python() -> Path:
    venv = Path(os.environ.get("COURSE_COLAB_VENV", ROOT / ".venv-colab"))
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{venv} is missing under CI: `make test` builds it (`make install-colab`)")
        pytest.skip(f"{venv} is missing: `make install-colab` builds it")
    return python


def _installed_versions(python: Path) -> dict[str, str]:
    result = subprocess.run([str(python), "-c", VERSIONS], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_explorers_on_colabs_widget_stack(tmp_path):
    path = chromium()
    python = _colab_python()
    _, pins = colab_pins()
    stack = {name: pins[name] for name in STACK}
    assert _installed_versions(python) == stack, "the server's venv does not hold Colab's versions"

    workdir = copy_notebooks(tmp_path)
    # The copy starts with no execution counts ("In [ ]:"), so "every cell has run" cannot be mistaken.
    copy = workdir / NOTEBOOK
    notebook = json.loads(copy.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = None
    copy.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    config_dir = tmp_path / "jupyter-config"
    (config_dir / "custom").mkdir(parents=True)  # the classic page asks for custom.css and custom.js: empty ones
    (config_dir / "custom" / "custom.css").write_text("")
    (config_dir / "custom" / "custom.js").write_text("")
    fresh_folder(ARTIFACTS)

    port, token = free_port(), secrets.token_hex(16)
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "JUPYTER_PATH"}}
    env |= {
        "COURSE_MODE": "fast",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    command = [
        str(python), "-m", "notebook",
        "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--notebook-dir={workdir}", f"--NotebookApp.token={token}",
        # Formulas stay TeX source: the pip-installed classic Notebook's MathJax 2 lacks fonts it asks for and
        # probes one at about:blank, console errors that have nothing to do with widgets (Colab draws math itself).
        "--NotebookApp.enable_mathjax=False",
    ]  # fmt: skip

    def drive(page) -> None:
        _run_all_and_check(page, stack)

    run_in_browser(
        path, command, env, workdir, tmp_path, ARTIFACTS,
        status_url=f"http://127.0.0.1:{port}/api/status?token={token}",
        page_url=f"http://127.0.0.1:{port}/notebooks/{NOTEBOOK}?token={token}",
        drive=drive,
    )  # fmt: skip


KERNEL_VERSIONS = """() => new Promise((resolve, reject) => {
  const kernel = Jupyter.notebook.kernel;
  const expression = "__import__('json').dumps({m.__name__: m.__version__ for m in map(__import__, %s)})";
  kernel.execute("", {shell: {reply: (msg) => {
    const value = msg.content.user_expressions.versions;
    if (value.status !== "ok") { reject(new Error(value.ename + ": " + value.evalue)); return; }
    resolve(JSON.parse(value.data["text/plain"].slice(1, -1)));  // the repr of a JSON string: '{...}'
  }}}, {silent: true, user_expressions: {versions: expression}});
})"""


def _run_all_and_check(page, stack: dict[str, str]) -> None:
    page.wait_for_selector("#notebook-container .cell", timeout=120_000)
    _wait_for_idle_kernel(page, timeout=120)
    page.screenshot(path=str(ARTIFACTS / "01_opened.png"))

    page.locator("#celllink").click()
    page.locator("#run_all_cells > a").click()
    n_code = page.locator("#notebook-container .code_cell").count()

    def finished() -> bool:
        prompts = page.locator("#notebook-container .code_cell .input_prompt").all_inner_texts()
        done = [p for p in prompts if p.replace("\xa0", " ").strip()[4:-2].strip().isdigit()]  # "In [12]:"
        return len(done) == n_code

    wait_until(finished, RUN_ALL_TIMEOUT_S, "every code cell to run")
    _wait_for_idle_kernel(page, timeout=60)
    page.screenshot(path=str(ARTIFACTS / "02_ran_all.png"))
    _assert_no_error_outputs(page)

    # The kernel runs Colab's versions, and the page draws the widgets with ipywidgets 7's front end (jQuery UI
    # sliders; ipywidgets 8 draws noUiSlider ones).
    modules = [STACK[name] for name in ("ipywidgets", "ipykernel", "ipython", "jupyter-client", "traitlets")]
    versions = page.evaluate(KERNEL_VERSIONS % json.dumps(modules).replace('"', "'"))
    expected = {STACK[name]: stack[name] for name in ("ipywidgets", "ipykernel", "ipython", "jupyter-client",
                                                       "traitlets")}  # fmt: skip
    assert versions == expected, f"the kernel runs {versions}, not Colab's {expected}"
    assert page.locator(".sweep-explorer .ui-slider-handle").count() >= 2
    assert page.locator(".noUi-handle").count() == 0

    check_explorers(page, ARTIFACTS, _assert_no_error_outputs)


def _wait_for_idle_kernel(page, timeout: float) -> None:
    """The kernel indicator in the classic Notebook's menu bar is an empty circle once the kernel is idle."""

    def idle() -> bool:
        return page.locator("#kernel_indicator_icon.kernel_idle_icon").count() == 1 and page.evaluate(
            "() => Boolean(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
            " && Jupyter.notebook.kernel.is_connected())"
        )

    wait_until(idle, timeout, "an idle kernel")


def _assert_no_error_outputs(page) -> None:
    errors = page.locator("#notebook-container .output_error").all_inner_texts()
    assert not errors, "cells show errors:\n" + "\n---\n".join(errors)
    stderr = page.locator("#notebook-container .output_stderr").all_inner_texts()
    bad = [text for text in stderr if "Traceback" in text or "Error" in text]
    assert not bad, "cells show errors on stderr:\n" + "\n---\n".join(bad)
    for message in ("Error displaying widget", "could not be displayed", "Error rendering"):
        count = page.get_by_text(message).count()
        assert count == 0, f"{count} widgets failed to display: {message!r}"
