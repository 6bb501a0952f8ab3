# The cross-surface export test (tests/export/cross_surface.py) as a make fragment: the Makefile
# includes it (it uses the Makefile's PY and COMPONENT and the targets of tests/faults/faults.mk).
#
#   make export-tests   export on each of C, the WASI component, Python and Node; import on each

.PHONY: export-tests

export-tests: fault-tests-env node-setup component
	cargo build --quiet --release -p twofa-ffi
	$(MAKE) --no-print-directory -f tests/faults/adapters/c_adapter.mk c-fault-adapter-asan
	cargo build --quiet -p twofa-wasmtime-host --bin fault-adapter
	$(PY) tests/export/cross_surface.py \
		--surface c=target/faults/c_adapter_asan \
		--surface "python=$(PY) tests/faults/adapters/python_adapter.py" \
		--surface "node=node tests/faults/adapters/node_adapter.mjs" \
		--surface "component=target/debug/fault-adapter $(COMPONENT)"
