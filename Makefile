# Set-up and everyday commands. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE_CATALOG := data/sample_catalog.csv

# The model ships inside a Python package; nothing may reach a model hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install install-test run index-sample serve lint test clean

# torch is installed alone and pinned first: it is the CPU build that pip finds on this
# kind of machine, and the project's own `torch>=` bound is then already satisfied.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Index the sample catalog unless a version is already active, then serve on 127.0.0.1:8000.
run: install index-sample serve

index-sample: install
	$(BIN)/python -m indexer migrate
	$(BIN)/python -m indexer build --catalog $(SAMPLE_CATALOG) --activate --skip-if-active

serve: install
	$(BIN)/python -m service

# Lint and type checks run first, so that every `make test` holds them too.
lint: install-test
	$(BIN)/ruff check indexer service tests benchmarks migrations
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

# Coverage of indexer/ and service/, child processes included, must stay at 90% or more.
test: lint
	$(BIN)/python -m pytest --cov

clean:
	rm -rf $(VENV) var *.egg-info
