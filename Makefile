# The two entry points of the README. Everything they need is installed
# here, so they work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
export CARGO_TARGET_DIR ?= $(HOME)/.cache/stratagem-target
export STRATAGEM_COMPONENTIZE_PY := $(abspath $(VENV))/bin/componentize-py
# Built example components, keyed by content hash: each is built once.
export STRATAGEM_BUILD_CACHE ?= $(HOME)/.cache/stratagem-builds

# The web UI (web/): compiled for wasm32 and bound with wasm-bindgen-cli of
# exactly the wasm-bindgen version in web/Cargo.lock (the two must match).
WEB_DIST := web/dist
TOOLS := $(HOME)/.cache/stratagem-tools
WASM_BINDGEN_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/version = |"/, ""); print}' web/Cargo.lock)
WASM_BINDGEN := $(TOOLS)/bin/wasm-bindgen

.PHONY: setup run test test-rust test-python test-openapi bench release web wasm-tools browser build-sandbox

setup: $(VENV)/.installed build-sandbox

# Strategy builds run tenant code under bubblewrap, with limits set by
# prlimit (util-linux): host/runtime/src/build_sandbox.rs.
build-sandbox:
	@command -v bwrap >/dev/null && command -v prlimit >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap util-linux; }

$(VENV)/.installed: requirements-dev.txt guest-sdk-python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e guest-sdk-python
	touch $@

# The service on the embedded SQLite default (data in .stratagem/). The
# first run creates a tenant and prints its API key.
run: setup web
	cargo build --workspace --bins
	@test -f .stratagem/stratagem.db || $(CARGO_TARGET_DIR)/debug/stratagem tenant create "Local tenant"
	$(CARGO_TARGET_DIR)/debug/stratagem serve

test: setup web browser test-python test-rust test-openapi

test-python:
	$(VENV)/bin/python -m pytest -q guest-sdk-python/tests

# API and storage tests create one PostgreSQL database each; drop the ones
# earlier runs left behind. Their fake providers and LLMs listen on
# 127.0.0.1, which integrations may only reach when private endpoints are
# allowed: the API and runtime suites say so in their set-up, the CLI's
# suites start `stratagem` with this (host/outbound/src/egress.rs and the
# runtime's http tests have the guard's own tests).
test-rust: export STRATAGEM_ALLOW_PRIVATE_ENDPOINTS = 1
test-rust:
	-psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'stratagem_test_%'" 2>/dev/null \
		| xargs -r -n1 dropdb -h 127.0.0.1 -U postgres
	cargo test --workspace

# schemathesis against the running service, from the OpenAPI document it
# serves: every operation, every check, a fixed seed (see
# host/api/tests/schemathesis/).
test-openapi: setup
	cargo build --workspace --bins
	host/api/tests/schemathesis/run.sh $(CARGO_TARGET_DIR)/debug/stratagem $(VENV)/bin/schemathesis

# The binary an operator ships, with the UI built in: copy it anywhere
# (docs/BENCHMARKS.md has its size).
release: web
	cargo build --release --bin stratagem
	@ls -l $(CARGO_TARGET_DIR)/release/stratagem | awk '{printf "%s: %.1f MiB\n", $$9, $$5 / 1048576}'

bench: setup
	cargo run --release -p stratagem-bench --bin runtime-bench

# Installs what the UI build needs when it is missing: the wasm32 target
# and wasm-bindgen-cli (--locked first; its lock file can name a crate
# version the registry no longer serves, then the newest compatible ones).
wasm-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@if [ "$$($(WASM_BINDGEN) --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --locked --root $(TOOLS) \
		|| cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --root $(TOOLS); \
	fi

web: wasm-tools
	cd web && cargo build --release --target wasm32-unknown-unknown
	rm -rf $(WEB_DIST) && mkdir -p $(WEB_DIST)
	$(WASM_BINDGEN) --target web --no-typescript --out-name stratagem_web --out-dir $(WEB_DIST) \
		$(CARGO_TARGET_DIR)/wasm32-unknown-unknown/release/stratagem-web.wasm
	cp web/static/index.html web/static/boot.js web/static/style.css $(WEB_DIST)/

# Headless Chromium and its WebDriver for the UI's end-to-end test.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
