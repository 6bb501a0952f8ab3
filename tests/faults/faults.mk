# The fault-injection harness (tests/faults/README.md) on every surface, as a make fragment: the
# Makefile includes it (it uses the Makefile's PY_VENV, PY, COMPONENT and its node-setup and
# component targets; paths are relative to the repository root).
#
#   make fault-tests          all four surfaces
#   make fault-tests-python   twofa.Engine of the Python package (tests/faults/adapters/python_adapter.py)
#   make fault-tests-c        the C ABI (tests/faults/adapters/c_adapter.c, target/faults/c_adapter_asan)
#   make fault-tests-node     Engine of the Node package (tests/faults/adapters/node_adapter.mjs)
#   make fault-tests-wasm     the WASI component in wasmtime (examples/wasmtime-host, fault-adapter)
#
# FAULT_ARGS passes options to the harness (e.g. FAULT_ARGS="--kinds stale -v").
# Standalone: `make -f Makefile -f tests/faults/faults.mk fault-tests-python`.

include tests/faults/adapters/c_adapter.mk

.PHONY: fault-tests fault-tests-python fault-tests-c fault-tests-node fault-tests-wasm fault-tests-env

FAULT_ARGS ?=
FAULT_HARNESS = $(PY) tests/faults/harness.py $(FAULT_ARGS)

fault-tests: fault-tests-python fault-tests-c fault-tests-node fault-tests-wasm

# The harness's Python: the virtual environment of python-tests with the twofa package installed
# from the working tree (the scenario runner the harness reuses imports it; so does the adapter).
fault-tests-env: $(PY_VENV)/ready
	$(PY) -m pip install --quiet --disable-pip-version-check ./bindings/python

fault-tests-python: fault-tests-env
	$(FAULT_HARNESS) -- $(PY) tests/faults/adapters/python_adapter.py

# The C adapter runs built with AddressSanitizer and UBSan, so a memory error on either side of
# the callbacks fails the run too.
fault-tests-c: fault-tests-env
	cargo build --quiet --release -p twofa-ffi
	$(MAKE) --no-print-directory -f tests/faults/adapters/c_adapter.mk c-fault-adapter-asan
	$(FAULT_HARNESS) -- target/faults/c_adapter_asan

fault-tests-node: fault-tests-env node-setup
	$(FAULT_HARNESS) -- node tests/faults/adapters/node_adapter.mjs

# The host is built in the dev profile, whose wasmtime `cargo test --workspace` already compiled
# (dependencies at opt-level 2); a release wasmtime would add minutes to a cold make test.
fault-tests-wasm: fault-tests-env component
	cargo build --quiet -p twofa-wasmtime-host --bin fault-adapter
	$(FAULT_HARNESS) -- target/debug/fault-adapter $(COMPONENT)
