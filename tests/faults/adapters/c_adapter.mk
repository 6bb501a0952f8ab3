# The C adapter of the fault-injection harness (tests/faults/adapters/c_adapter.c), as a make
# fragment (tests/faults/faults.mk includes it; paths are relative to the repository root).
#
#   make c-fault-adapter        build target/faults/c_adapter
#   make c-fault-adapter-asan   build target/faults/c_adapter_asan (AddressSanitizer + UBSan)
#
# Standalone: `make -f Makefile -f tests/faults/adapters/c_adapter.mk c-fault-adapter`. Like
# tests/c/c-tests.mk it assumes that `cargo build --release -p twofa-ffi` already ran
# (LIBTWOFA_DIR names its output directory) and uses the same compiler flags. libtwofa.so carries
# the soname libtwofa.so.0, which cargo does not create: the adapter links against
# target/faults/lib, where libtwofa.so.0 points to the cargo output, and finds it there through
# its rpath, so it runs without LD_LIBRARY_PATH. Including it twice (the Makefile includes it
# through tests/faults/faults.mk, and `-f` may name it again) defines everything once.

ifndef C_FAULT_ADAPTER_MK
C_FAULT_ADAPTER_MK := 1

LIBTWOFA_DIR ?= target/release
C_FAULT_CC ?= $(if $(filter default,$(origin CC)),cc,$(CC))
C_FAULT_SRC := tests/faults/adapters/c_adapter.c
C_FAULT_OUT := target/faults
C_FAULT_LIB := $(C_FAULT_OUT)/lib
C_FAULT_CFLAGS := -std=c11 -Wall -Wextra -Werror -g -O1 -I include
C_FAULT_LDFLAGS := -L $(C_FAULT_LIB) -ltwofa -Wl,-rpath,$(abspath $(C_FAULT_LIB))
C_FAULT_ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: c-fault-adapter c-fault-adapter-asan c-fault-adapter-lib

c-fault-adapter: $(C_FAULT_OUT)/c_adapter

c-fault-adapter-asan: $(C_FAULT_OUT)/c_adapter_asan

c-fault-adapter-lib:
	@test -f $(LIBTWOFA_DIR)/libtwofa.so || { \
		echo "c-fault-adapter: $(LIBTWOFA_DIR)/libtwofa.so not found: run 'cargo build --release -p twofa-ffi' first"; \
		exit 1; }
	@mkdir -p $(C_FAULT_LIB)
	@ln -sfn $(abspath $(LIBTWOFA_DIR))/libtwofa.so $(C_FAULT_LIB)/libtwofa.so.0
	@ln -sfn libtwofa.so.0 $(C_FAULT_LIB)/libtwofa.so

$(C_FAULT_OUT)/c_adapter: $(C_FAULT_SRC) include/twofa.h | c-fault-adapter-lib
	$(C_FAULT_CC) $(C_FAULT_CFLAGS) -o $@ $(C_FAULT_SRC) $(C_FAULT_LDFLAGS)

$(C_FAULT_OUT)/c_adapter_asan: $(C_FAULT_SRC) include/twofa.h | c-fault-adapter-lib
	$(C_FAULT_CC) $(C_FAULT_CFLAGS) $(C_FAULT_ASAN_FLAGS) -o $@ $(C_FAULT_SRC) $(C_FAULT_LDFLAGS)

endif
