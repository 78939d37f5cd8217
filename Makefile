# The course's two commands: `make lab` (set up, then open JupyterLab) and `make test` (set up, then run
# every test: unit tests, the two browser tests of the widgets, and every notebook under strict nbval in FAST mode).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two cores are shared by the kernel, pytest and the browser: keep BLAS/OpenMP from oversubscribing.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2

.PHONY: lab test reference mutation install install-test install-colab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make lab`: course_lib, what the notebooks import and the `lab` extra (JupyterLab); `make test` adds the `test`
# extra (pyproject.toml says what runs where).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[lab]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[lab,test]'
	touch $@ $(VENV)/.installed

# Colab's widget stack for the second browser test (tests/test_browser_explorer_colab.py), in a venv of its own:
# Colab's versions of the classic Notebook, ipywidgets 7, ipykernel, IPython... (tests/colab_pins.txt) in its own
# site-packages, and after them, through a .pth file, the main venv's (PyTorch, course_lib and the rest), so
# PyTorch is not installed twice. Same Python as $(VENV); rebuilt when the pins change.
COLAB_VENV ?= .venv-colab
COLAB_PINS := tests/colab_pins.txt
COLAB_STACK := notebook ipywidgets widgetsnbextension ipykernel ipython jupyter_client traitlets tornado
PURELIB := import sysconfig; print(sysconfig.get_path('purelib'))

$(COLAB_VENV)/.installed: $(COLAB_PINS) | $(VENV)/.installed-test
	rm -rf $(COLAB_VENV)
	$(BIN)/python -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install -q -c $(COLAB_PINS) $(COLAB_STACK)
	echo "import site; site.addsitedir('$$($(BIN)/python -c "$(PURELIB)")')" \
	  > "$$($(COLAB_VENV)/bin/python -c "$(PURELIB)")/zz-course-main-venv.pth"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-colab: $(COLAB_VENV)/.installed

# Extra JupyterLab arguments, e.g. `make lab LAB_ARGS="--no-browser --port 8890"`. Jupyter refuses to run as root
# (Docker containers, cloud VMs) unless told --allow-root, so the flag is added for root only.
LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: install
	exec $(BIN)/jupyter lab $(ALLOW_ROOT) $(LAB_ARGS) notebooks

# The tests run a kernel, pytest and a browser on the same cores: threads that sleep while they wait for work
# (instead of spinning) keep them from starving each other. `make lab` keeps the default, faster for one kernel.
test: export OMP_WAIT_POLICY ?= PASSIVE
test: export COURSE_COLAB_VENV ?= $(abspath $(COLAB_VENV))
test: install-test install-colab
	$(BIN)/ruff check .
	COURSE_MODE=fast COURSE_SOLVE_EXERCISES=1 $(BIN)/python -m pytest --durations=10 --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks

# The stored notebooks: every notebook executed in place in reference mode (mnist-5k, the article's recipes and
# epoch counts), widget state stripped, and each one's wall-clock time printed. Trained models are cached under
# outputs/, so an interrupted run resumes (`make reference NOTEBOOKS=notebooks/04_eight_improvements.ipynb` redoes
# one). Exercises stay unanswered, as a learner gets them. Each time is appended to outputs/reference_times.tsv.
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
reference: export COURSE_MODE = reference
reference: install
	@mkdir -p outputs
	@for notebook in $(NOTEBOOKS); do \
	  start=$$(date +%s); \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 $$notebook \
	    || exit 1; \
	  $(BIN)/python -m course_lib.notebook_tools strip $$notebook; \
	  seconds=$$(( $$(date +%s) - start )); \
	  printf '%s\t%s\t%s\n' "$$(date -u +%FT%TZ)" "$$notebook" "$$seconds" >> outputs/reference_times.tsv; \
	  echo "reference run: $$notebook took $$seconds s"; \
	done

# Mutation testing, not part of `make test` (see tests/MUTATION.md; the README says how long it takes on 2 cores):
# mutmut plants one-line bugs in course_lib, one at a time, runs the unit tests that reach the changed function,
# and the score per package is printed. A fresh run each time, so the score is that of the current tests;
# `make mutation MUTATION_FRESH=0` continues an interrupted run. Two test processes of one thread each (a BLAS
# thread pool started before mutmut forks its test processes would deadlock them).
MUTATION_CHILDREN ?= 2
MUTATION_FRESH ?= 1
mutation: export COURSE_TEST_THREADS ?= 1
mutation: export OMP_NUM_THREADS = $(COURSE_TEST_THREADS)
mutation: export MKL_NUM_THREADS = $(COURSE_TEST_THREADS)
mutation: export COURSE_MODE = fast
mutation: install-test
	$(if $(filter 1,$(MUTATION_FRESH)),rm -rf mutants)
	$(BIN)/mutmut run --max-children $(MUTATION_CHILDREN)
	$(BIN)/python tests/mutation_score.py

clean:
	rm -rf $(VENV) $(COLAB_VENV) outputs .pytest_cache
