# The C adapter of the fault-injection harness (tests/faults/adapters/c_adapter.c), as a make
# fragment (tests/faults/faults.mk includes it; paths are relative to the repository root).
#
#   make c-fault-adapter        build target/faults/c_adapter
#   make c-fault-adapter-asan   build target/faults/c_adapter_asan (AddressSanitizer + UBSan)
#
# Standalone: `make -f Makefile -f tests/faults/adapters/c_adapter.mk c-fault-adapter`. It builds
# like the C tests, with tests/c/c-tests.mk's compiler, flags and library: that fragment assumes
# that `cargo build --release -p twofa-ffi` already ran (LIBTWOFA_DIR names its output directory)
# and links against target/c-tests/lib, where libtwofa.so.0 (the soname, which cargo does not
# create) points to the cargo output; the adapter finds it there through its rpath, so it runs
# without LD_LIBRARY_PATH. Including it twice (the Makefile includes it through
# tests/faults/faults.mk, and `-f` may name it again) defines everything once.

ifndef C_FAULT_ADAPTER_MK
C_FAULT_ADAPTER_MK := 1

C_FAULT_SRC := tests/faults/adapters/c_adapter.c
C_FAULT_OUT := target/faults

.PHONY: c-fault-adapter c-fault-adapter-asan

c-fault-adapter: $(C_FAULT_OUT)/c_adapter

c-fault-adapter-asan: $(C_FAULT_OUT)/c_adapter_asan

include tests/c/c-tests.mk

# C_TESTS_HEADERS includes examples/c-host/json.h, the JSON reader the adapter shares.
$(C_FAULT_OUT)/c_adapter: $(C_FAULT_SRC) $(C_TESTS_HEADERS) | c-tests-lib
	@mkdir -p $(C_FAULT_OUT)
	$(C_TESTS_CC) $(C_TESTS_CFLAGS) -o $@ $(C_FAULT_SRC) $(C_TESTS_LDFLAGS)

$(C_FAULT_OUT)/c_adapter_asan: $(C_FAULT_SRC) $(C_TESTS_HEADERS) | c-tests-lib
	@mkdir -p $(C_FAULT_OUT)
	$(C_TESTS_CC) $(C_TESTS_CFLAGS) $(C_TESTS_ASAN_FLAGS) -o $@ $(C_FAULT_SRC) $(C_TESTS_LDFLAGS)

endif
