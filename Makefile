# kb — the two commands: `make demo` and `make test`; `make check` is the fast loop while working.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint setup notebooks bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch that lies on these machines, first: left alone pip takes a 5 GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/kb demo

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 -q

# The fast loop (under 90 s on 2 cores): lint and types, then every test but the `slow` and `model`
# ones, with warnings as errors (markers are strict everywhere: pyproject.toml). `make test` is the
# full suite, as CI runs it.
check: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 -q -m "not slow and not model" -W error

# ruff (lint and format) and mypy, configured in pyproject.toml; `make test` runs them first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

notebooks: $(STAMP)
	$(BIN)/pip install -q jupyterlab
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .kb .pytest_cache
