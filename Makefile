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

# The service on the embedded SQLite default (data in .stratagem/). The
# first run creates a tenant and prints its API key.
run: setup
	cargo build -p stratagem-cli
	@test -f .stratagem/stratagem.db || $(CARGO_TARGET_DIR)/debug/stratagem tenant create "Local tenant"
	$(CARGO_TARGET_DIR)/debug/stratagem serve

test: setup test-python test-rust

test-python:
	$(VENV)/bin/python -m pytest -q guest-sdk-python/tests

# API and storage tests create one PostgreSQL database each; drop the ones
# earlier runs left behind.
test-rust:
	-psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'stratagem_test_%'" 2>/dev/null \
		| xargs -r -n1 dropdb -h 127.0.0.1 -U postgres
	cargo test --workspace

bench: setup
	cargo run --release -p stratagem-bench --bin runtime-bench
