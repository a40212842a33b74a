# Two entry points (see README): `make demo` and `make test`. Both install into .venv.
PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The stamp's name changes whenever the pins change, so an outdated .venv is refreshed.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install build demo test test-fast lint samples clean gpu-check

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

build: install
	$(PY) -m autograder build

demo: install
	$(PY) -m autograder demo

# The fast layer (unit tests of pure functions, no kernels, no grading) runs first.
# FULL=1 runs the otter, nbgrader, browser and build end-to-end tests on every assignment, not one (README).
test: install
	$(PY) -m pytest -m fast
	$(PY) -m pytest -m "not fast"

test-fast: install
	$(PY) -m pytest -m fast

lint: install
	$(PY) -m ruff check .

samples: install
	$(PY) -m tools.make_samples

# On a CUDA machine: CUDA tests, 20 gradings, GPU benchmarks, one summary table; elsewhere a dry run.
# Needs no .venv: any Python with torch (the .venv's when it exists, else python3). README: Instructors.
PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-check:
	$(PYTHON) tools/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf demo-output .pytest_cache
