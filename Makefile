# The README's commands. `make train` and `make test` set up .venv first when needed.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# torch comes first and pinned: a CPU wheel where one is on disk, the CUDA build from PyPI on a
# GPU machine. Override with `make install TORCH_VERSION=...` (any release from 2.4 on works).
TORCH_VERSION ?= 2.13.0
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train test test-fast lint

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PYTHON) -m pip install --quiet -e ".[dev,optuna,slurm,hf,serve]"
	touch $@

# The main job; extra Hydra overrides go in ARGS, e.g. make train ARGS="model=medium"
train: install
	$(PYTHON) scripts/train.py $(ARGS)

# Every test, the slow ones included, on every core (pytest-xdist): the tests are split between
# the workers and an idle worker takes tests from a busy one (--dist worksteal), so no file's
# tests queue behind each other on one core. Shared trained runs are built once (tests/conftest.py).
test: install
	$(PYTHON) -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

test-fast: install
	$(PYTHON) -m pytest -n auto --dist worksteal -m "not slow" $(PYTEST_ARGS)

lint: install
	$(PYTHON) -m ruff check src tests scripts benchmarks
	$(PYTHON) -m ruff format --check src tests scripts benchmarks
