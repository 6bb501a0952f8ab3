# twofa: the developer commands. CI runs `make test` through .ci/run.
#
#   make test     every check and test suite; installs what is missing first
#   make demo     the Security-tab web demo on http://localhost:8080 (examples/web-demo)
#   make quickstart     the Rust walk-through (core/examples/quickstart.rs)
#   make fmt      format all Rust code
#   make clippy   lint all Rust code, warnings as errors
#   make header   regenerate include/twofa.h (the C header) from ffi/src
#   make c-host-check   build and run the C example (examples/c-host) and check its output
#   make install  install libtwofa, twofa.h and twofa.pc under PREFIX (default /usr/local)
#   make python-tests   install the Python package in target/python-venv and run its tests
#   make node-tests     install the Node package's and the Node host's dependencies and run their tests
#   make e2e      the web demo end to end in headless Chromium
#   make fault-tests   every fault at every call of the shared scenario, on all four surfaces
#   make export-tests   a user exported on each surface and imported on each (TOTP and WebAuthn keep working)
#   make pg-tests   the PostgreSQL stores of the example hosts and the 4-process race test (tests/race) on a throwaway local server
#   make scaling    sign-ins per second with 1, 2 and 4 processes on PostgreSQL and SQLite into docs/scaling.md
#   make fuzz     every fuzz target (fuzz/) for FUZZ_SECONDS each (default 60)
#   make bench    benchmarks against each language's usual libraries into docs/benchmarks.md (BENCH_ARGS=--quick)
#   make screenshots    run e2e and refresh docs/screenshots/
#
# Needs rustup/cargo and a C compiler (ring and the bundled SQLite compile C).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.PHONY: help test demo quickstart fmt clippy toolchain header component python-tests node-setup node-tests node-bundle e2e screenshots bench fuzz fuzz-smoke fuzz-tool

# $(call suite,NAME,COMMAND) runs COMMAND and prints "== NAME: N s" (or "FAILED after N s" and
# stops make: every suite is one recipe line, so the first failure ends the run).
suite = start=$$SECONDS; \
	if $(2); then echo "== $(1): $$((SECONDS - start)) s"; \
	else status=$$?; echo "== $(1): FAILED after $$((SECONDS - start)) s"; exit $$status; fi

help:
	@sed -n 's/^#   make/make/p' $(firstword $(MAKEFILE_LIST))

test: toolchain
	@$(call suite,fmt,cargo fmt --all -- --check && cargo fmt --manifest-path wasm-component/Cargo.toml -- --check)
	@$(call suite,component,$(MAKE) --no-print-directory component)
	@$(call suite,clippy,cargo clippy --workspace --all-targets -- -D warnings)
	@$(call suite,test,cargo test --workspace)
	@$(call suite,core-without-sqlite,cargo build -p twofa-core --no-default-features)
	@$(call suite,libtwofa-release,cargo build --release -p twofa-ffi && ln -sf libtwofa.so target/release/libtwofa.so.0)
	@$(call suite,panic-guard,cargo test --release -p twofa-ffi --test panic_guard -- --ignored)
	@$(call suite,c-tests,$(MAKE) --no-print-directory c-tests)
	@$(call suite,c-tests-valgrind,$(MAKE) --no-print-directory c-tests-valgrind)
	@$(call suite,c-tests-asan,$(MAKE) --no-print-directory c-tests-asan)
	@$(call suite,c-tests-tsan,$(MAKE) --no-print-directory c-tests-tsan)
	@$(call suite,c-host,$(MAKE) --no-print-directory c-host-check)
	@$(call suite,c-host-valgrind,$(MAKE) --no-print-directory c-host-valgrind)
	@$(call suite,install,$(MAKE) --no-print-directory install-check)
	@$(call suite,fuzz-smoke,$(MAKE) --no-print-directory fuzz-smoke)
	@$(call suite,python,$(MAKE) --no-print-directory python-tests)
	@$(call suite,node,$(MAKE) --no-print-directory node-tests)
	@$(call suite,faults,$(MAKE) --no-print-directory fault-tests)
	@$(call suite,export,$(MAKE) --no-print-directory export-tests)
	@$(call suite,postgres,$(MAKE) --no-print-directory pg-tests)
	@$(call suite,e2e,$(MAKE) --no-print-directory e2e)

# The WASI component (wasm32-wasip2, release, size-tuned); its size is printed.
COMPONENT := wasm-component/target/wasm32-wasip2/release/twofa_component.wasm
component:
	cargo build --quiet --release --target wasm32-wasip2 --manifest-path wasm-component/Cargo.toml
	cargo clippy --quiet --release --target wasm32-wasip2 --manifest-path wasm-component/Cargo.toml -- -D warnings
	@echo "component: $(COMPONENT), $$(stat -c %s $(COMPONENT)) bytes"
	@test $$(stat -c %s $(COMPONENT)) -lt 2097152 || { echo "component is over 2 MiB"; exit 1; }

header:
	TWOFA_UPDATE_HEADER=1 cargo test -p twofa-ffi --test header

# The Security-tab web demo (examples/web-demo) on the embedded SQLite store, mail to a local
# SMTP server shown at /mail: http://localhost:8080 (PORT=... to change).
demo: node-setup
	cd examples/web-demo && $(NPM_CI) && node server.mjs

# The Rust walk-through (core/examples/quickstart.rs), mail printed to the terminal.
quickstart:
	cargo run --example quickstart -p twofa-core

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# Debian packages the suites need: oathtool (an independent TOTP), valgrind, pkg-config, clang
# (ring's C code for wasm32-wasip2) and chromium (the end-to-end tests of the web demo).
APT_PACKAGES := oathtool valgrind pkg-config clang chromium

# Installs what the suites need when it is missing: rustfmt, clippy, the wasm32-wasip2 target,
# rust-src (the ThreadSanitizer build of libtwofa rebuilds std) and the Debian packages.
toolchain:
	@missing=""; for p in $(APT_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing >/dev/null; fi; \
	fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
	@command -v "$${CC:-cc}" >/dev/null || { echo "no C compiler ($${CC:-cc}): install one (e.g. build-essential)"; exit 1; }
	@if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then \
		rustup component add rustfmt clippy; \
	fi
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src

# The Python package (bindings/python) in a virtual environment under target/: installed with
# pip exactly as the README says (it builds libtwofa with cargo and bundles it), type-checked
# with ruff (format and lint) and mypy --strict, tested with pytest together with
# examples/python-host.
PY_VENV := target/python-venv
PY := $(PY_VENV)/bin/python
$(PY_VENV)/ready: bindings/python/requirements-dev.txt
	python3 -m venv $(PY_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

PY_SOURCES := bindings/python/src bindings/python/tests examples/python-host bench/*.py bench/python tests/faults tests/export tests/race bench/scaling
python-tests: $(PY_VENV)/ready
	$(PY) -m pip install --quiet --disable-pip-version-check ./bindings/python
	$(PY_VENV)/bin/ruff format --check --quiet --config bindings/python/pyproject.toml $(PY_SOURCES)
	$(PY_VENV)/bin/ruff check --quiet --no-cache --config bindings/python/pyproject.toml $(PY_SOURCES)
	cd bindings/python && MYPYPATH=tests ../../$(PY) -m mypy --strict --cache-dir=/dev/null src/twofa tests ../../examples/python-host ../../tests/faults
	$(PY) -m mypy --strict --cache-dir=/dev/null bench/run.py bench/test_run.py
	MYPYPATH=bindings/python/tests:tests/faults $(PY) -m mypy --strict --cache-dir=/dev/null tests/export/cross_surface.py
	MYPYPATH=examples/python-host:tests/race $(PY) -m mypy --strict --cache-dir=/dev/null tests/race/race.py tests/race/worker.py tests/race/counting_store.py bench/scaling/scaling.py bench/scaling/scaling_worker.py
	$(PY) -m pytest -q -p no:cacheprovider bindings/python/tests examples/python-host
	$(PY) -m pytest -q -p no:cacheprovider -W error bench/test_run.py

# The Node package (bindings/node) and the Node host example (examples/node-host): npm ci (koffi
# brings its prebuilt binary from the registry; no install script runs), node --test, and tsc
# over the TypeScript declarations. They load target/release/libtwofa.so and, for the jco path,
# the component.
NPM_CI := npm ci --no-audit --no-fund --loglevel=error
node-setup:
	@command -v node >/dev/null || { echo "node not found: install Node.js 20 or later with npm"; exit 1; }
	cargo build --quiet --release -p twofa-ffi
	cd bindings/node && $(NPM_CI)

node-tests: node-setup
	cd bindings/node && node --test --test-reporter=dot test/ && npx tsc --noEmit -p .
	cd examples/node-host && $(NPM_CI) && node --test --test-reporter=dot test/
	cd examples/web-demo && $(NPM_CI) && node --test --test-reporter=dot test/

# The web demo end to end in Debian's Chromium (tests/e2e, playwright-core, WebAuthn through
# the virtual authenticator); screenshots go to target/e2e-screenshots/. `make screenshots`
# copies them into docs/screenshots/ (committed, shown by the README).
e2e: node-setup
	cd examples/web-demo && $(NPM_CI)
	cd tests/e2e && $(NPM_CI) && node --test --test-concurrency=1 --test-reporter=dot .

screenshots: e2e
	cd tests/e2e && node screenshots.mjs

# The benchmarks (bench/README.md), set up from scratch like `make test`: the release libtwofa
# and component, the Python suite's virtual environment (target/bench-venv: twofa and its peers),
# the Node suite's packages, the jco build of the component (examples/node-host/component) and
# the Rust suite; then bench/run.py measures in rounds and writes docs/benchmarks.md and
# docs/benchmarks.svg. BENCH_ARGS passes options: --quick, --rounds N, --only rust,python,node.
BENCH_VENV := target/bench-venv
BENCH_ARGS ?=
bench: toolchain component node-setup
	cargo build --quiet --release -p twofa-ffi && ln -sf libtwofa.so target/release/libtwofa.so.0
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check ./bindings/python -r bench/python/requirements.txt
	cd bench/node && $(NPM_CI)
	cd examples/node-host && $(NPM_CI) && node component/build.mjs
	cargo build --quiet --release -p twofa-bench
	$(BENCH_VENV)/bin/python bench/run.py $(BENCH_ARGS)

# Fuzzing (fuzz/, cargo-fuzz and libFuzzer with AddressSanitizer, on the stable toolchain through
# RUSTC_BOOTSTRAP=1; see fuzz/run.sh). `make fuzz` runs each target FUZZ_SECONDS (default 60);
# `make test` lints the targets and runs each for 10 s.
FUZZ_SECONDS ?= 60
fuzz-tool:
	@command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz --version 0.13.1

fuzz: fuzz-tool
	fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke: fuzz-tool
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check
	cd fuzz && cargo clippy --quiet --all-targets -- -D warnings
	fuzz/run.sh 10

# Copies libtwofa.so and twofa.h into bindings/node/native/, so that the package works when
# installed as a copy (npm pack, npm install --install-links) rather than linked to this checkout.
node-bundle:
	mkdir -p bindings/node/native
	cp target/release/libtwofa.so include/twofa.h bindings/node/native/

# The C suites: libtwofa's own tests (tests/c).
include tests/c/c-tests.mk

# The C host example (examples/c-host) and `make install PREFIX=...` (ffi/install.mk).
include examples/c-host/c-host.mk
include ffi/install.mk

# The fault-injection harness on the C, WASI component, Python and Node surfaces (tests/faults).
include tests/faults/faults.mk

# A user exported on one surface and imported on another (tests/export).
include tests/export/export.mk

# PostgreSQL: a throwaway server for the tests and the PostgreSQL stores of the example hosts.
include tests/pg/pg.mk
include tests/race/race.mk
include bench/scaling/scaling.mk
