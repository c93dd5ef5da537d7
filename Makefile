# The two entry points of the README. Everything they need is installed
# here, so they work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
export CARGO_TARGET_DIR ?= $(HOME)/.cache/stratagem-target
export STRATAGEM_COMPONENTIZE_PY := $(abspath $(VENV))/bin/componentize-py
# Built example components, keyed by content hash: each is built once.
export STRATAGEM_BUILD_CACHE ?= $(HOME)/.cache/stratagem-builds

.PHONY: setup run test test-rust test-python bench

setup: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt guest-sdk-python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e guest-sdk-python
	touch $@

# The service (`stratagem serve`) lands with the platform issue; until then
# `run` shows the strategy loop end to end on the debt-collection example.
run: setup
	cargo build -p stratagem-cli
	$(CARGO_TARGET_DIR)/debug/stratagem strategy run examples/debt-collection/data_load.py \
		--hook data-load --contact examples/inputs/contact.json

test: setup test-python test-rust

test-python:
	$(VENV)/bin/python -m pytest -q guest-sdk-python/tests

test-rust:
	cargo test --workspace

bench: setup
	cargo run --release -p stratagem-bench --bin runtime-bench
