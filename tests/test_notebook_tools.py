"""course_lib.notebook_tools: the set-up cell, show_source, stripping widget state from notebooks."""

import inspect
import json
import sys
import textwrap

import pytest
import torch

from course_lib import notebook_tools


def test_setup_seeds_picks_the_device_and_says_what_runs(capsys):
    device = notebook_tools.setup(seed=3, prefer="cpu")
    assert device == torch.device("cpu")
    assert torch.rand(1).item() == torch.rand(1, generator=torch.Generator().manual_seed(3)).item()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Python ") and f"PyTorch {torch.__version__}, device: cpu" in out[0]
    assert "mode" in out[1]


def test_show_source_prints_the_code_without_ipython(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython.display", None)  # as if IPython were not installed
    notebook_tools.show_source(textwrap.dedent)  # a function of the standard library: its source never changes
    out = capsys.readouterr().out
    assert out == f"# textwrap\n{inspect.getsource(textwrap.dedent)}\n"


def test_show_source_displays_markdown_in_a_notebook(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    notebook_tools.show_source(textwrap.dedent)
    assert shown[0].data == f"`textwrap`\n```python\n{inspect.getsource(textwrap.dedent)}```"


def test_strip_widget_state_removes_only_the_widgets(tmp_path):
    path = tmp_path / "nb.ipynb"
    notebook = {"cells": [], "metadata": {"widgets": {"state": {}}, "kernelspec": {"name": "python3"}}}
    path.write_text(json.dumps(notebook))
    assert notebook_tools.strip_widget_state(path) is True
    assert json.loads(path.read_text()) == {"cells": [], "metadata": {"kernelspec": {"name": "python3"}}}
    assert path.read_text().endswith("}\n") and '\n "cells"' in path.read_text()  # indent 1, final newline
    assert notebook_tools.strip_widget_state(path) is False
    path.write_text(json.dumps({"cells": []}))
    assert notebook_tools.strip_widget_state(path) is False


def test_strip_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [], "metadata": {"widgets": {}, "note": "é"}}))
    assert notebook_tools._main(["strip", str(path), str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{path}: widget state removed", f"{path}: no widget state"]
    assert "é" in path.read_text()  # not escaped
    for argv in ([], ["strip"], ["clean", str(path)]):
        assert notebook_tools._main(argv) == 2
        assert capsys.readouterr().err.startswith("usage: python -m course_lib.notebook_tools strip NOTEBOOK")


@pytest.mark.parametrize("mode", ["fast", "reference", "full"])
def test_setup_prints_the_mode(mode, capsys, monkeypatch):
    from course_lib import config

    monkeypatch.setattr(config, "MODE", mode)
    notebook_tools.setup(prefer="cpu")
    assert capsys.readouterr().out.splitlines()[1] == config.describe()
    assert config.describe().startswith(f"{mode.capitalize()} mode: ") and f"COURSE_MODE={mode}" in config.describe()


def test_setup_passes_the_preferred_device_on_and_seeds_0_by_default(capsys):
    assert notebook_tools.setup(prefer="meta") == torch.device("meta")
    assert torch.rand(1).item() == torch.rand(1, generator=torch.Generator().manual_seed(0)).item()
    assert "device: meta" in capsys.readouterr().out


def test_unmet_requirements_reads_course_libs_own_metadata_past_its_extras(monkeypatch):
    asked = []
    requires = ['pytest>=7; extra == "test"', "no-such-package-xyz>=1.0"]  # an extra first, then a runtime need
    monkeypatch.setattr(notebook_tools.importlib.metadata, "requires", lambda name: asked.append(name) or requires)
    assert notebook_tools.unmet_requirements() == ["no-such-package-xyz>=1.0"] and asked == ["course_lib"]


def test_strip_one_notebook_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [], "metadata": {"widgets": {}}}))
    assert notebook_tools._main(["strip", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: widget state removed\n"
