# The course's two commands: `make lab` (set up, then open JupyterLab) and `make test` (set up, then run
# every test: unit tests, the browser test of the widgets, and every notebook under strict nbval in FAST mode).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two cores are shared by the kernel, pytest and the browser: keep BLAS/OpenMP from oversubscribing.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2

.PHONY: lab test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Extra JupyterLab arguments, e.g. `make lab LAB_ARGS="--no-browser --port 8890"`. Jupyter refuses to run as root
# (Docker containers, cloud VMs) unless told --allow-root, so the flag is added for root only.
LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: install
	exec $(BIN)/jupyter lab $(ALLOW_ROOT) $(LAB_ARGS) notebooks

# The tests run a kernel, pytest and a browser on the same cores: threads that sleep while they wait for work
# (instead of spinning) keep them from starving each other. `make lab` keeps the default, faster for one kernel.
test: export OMP_WAIT_POLICY ?= PASSIVE
test: install-test
	$(BIN)/ruff check .
	COURSE_FAST=1 $(BIN)/python -m pytest --durations=10 --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks

clean:
	rm -rf $(VENV) outputs .pytest_cache
