# The two commands of the README: `make demo` and `make test`.
# Both create .venv (with the system's python3, >= 3.10) and install what they need;
# `make test` also installs its Debian packages (sshd, ssh, chromium) when missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# test processes (pytest-xdist); whole files go to one process, slowest first (tests/conftest.py)
PYTEST_WORKERS ?= 2

.PHONY: demo test lint clean venv system-packages

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || \
	  { echo "dynasplit needs Python >= 3.10; found: $$($(PYTHON) --version)"; exit 1; }
	@PYTHON=$(PYTHON) sh scripts/system-packages.sh venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/dynasplit demo

system-packages:
	@sh scripts/system-packages.sh test

test: system-packages $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check toolkit tests benchmarks

clean:
	rm -rf $(VENV) dynasplit-demo .pytest_cache .ruff_cache *.egg-info
