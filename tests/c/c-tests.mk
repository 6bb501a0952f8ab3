# The C test suite of libtwofa (tests/c/*.c), as a make fragment.
#
#   make c-tests            build and run against the release libtwofa.so
#   make c-tests-valgrind   run under valgrind: no errors, no definite/indirect leaks
#   make c-tests-asan       build with AddressSanitizer + UBSan and run (LeakSanitizer on)
#
# Include it from the top Makefile (paths are relative to the repository root), or use it
# standalone from the root: `make -f tests/c/c-tests.mk c-tests`. It assumes that
# `cargo build --release -p twofa-ffi` already ran; LIBTWOFA_DIR names its output directory.
# Needs a C11 compiler, oathtool (the tests compute TOTP codes with it) and, for
# c-tests-valgrind, valgrind. Build outputs go to target/c-tests/. Pass test-name substrings in
# C_TESTS_ARGS to run a subset.

LIBTWOFA_DIR ?= target/release
C_TESTS_CC ?= $(if $(filter default,$(origin CC)),cc,$(CC))
C_TESTS_SRC_DIR := tests/c
C_TESTS_OUT := target/c-tests
C_TESTS_LIB := $(C_TESTS_OUT)/lib
C_TESTS_SOURCES := $(wildcard $(C_TESTS_SRC_DIR)/*.c)
C_TESTS_HEADERS := $(wildcard $(C_TESTS_SRC_DIR)/*.h) include/twofa.h
C_TESTS_CFLAGS := -std=c11 -Wall -Wextra -Werror -pthread -g -O1 -I include
C_TESTS_LDFLAGS := -pthread -L $(C_TESTS_LIB) -ltwofa -Wl,-rpath,$(abspath $(C_TESTS_LIB))
C_TESTS_ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
C_TESTS_ARGS ?=
# valgrind.supp: a memcheck false positive in ring's AES-GCM assembly (explained in the file).
C_TESTS_VALGRIND := valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect --error-exitcode=9 --quiet \
	--suppressions=$(C_TESTS_SRC_DIR)/valgrind.supp
C_TESTS_ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(abspath $(C_TESTS_SRC_DIR)/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: c-tests c-tests-valgrind c-tests-asan c-tests-lib c-tests-tools c-tests-valgrind-tool

c-tests: c-tests-tools c-tests-lib $(C_TESTS_OUT)/test_twofa
	$(C_TESTS_OUT)/test_twofa $(C_TESTS_ARGS)

c-tests-valgrind: c-tests-valgrind-tool c-tests-tools c-tests-lib $(C_TESTS_OUT)/test_twofa
	$(C_TESTS_VALGRIND) $(C_TESTS_OUT)/test_twofa $(C_TESTS_ARGS)

c-tests-asan: c-tests-tools c-tests-lib $(C_TESTS_OUT)/test_twofa_asan
	$(C_TESTS_ASAN_ENV) $(C_TESTS_OUT)/test_twofa_asan $(C_TESTS_ARGS)

# libtwofa.so carries the soname libtwofa.so.0 and cargo writes no such file: link against
# target/c-tests/lib, where libtwofa.so.0 (and libtwofa.so) point to the cargo output.
c-tests-lib:
	@test -f $(LIBTWOFA_DIR)/libtwofa.so || { \
		echo "c-tests: $(LIBTWOFA_DIR)/libtwofa.so not found: run 'cargo build --release -p twofa-ffi' first"; \
		exit 1; }
	@mkdir -p $(C_TESTS_LIB)
	@ln -sfn $(abspath $(LIBTWOFA_DIR))/libtwofa.so $(C_TESTS_LIB)/libtwofa.so.0
	@ln -sfn libtwofa.so.0 $(C_TESTS_LIB)/libtwofa.so

c-tests-valgrind-tool:
	@command -v valgrind >/dev/null || { \
		echo "c-tests-valgrind: valgrind not found: install it (Debian/Ubuntu: apt-get install valgrind)"; exit 1; }

c-tests-tools:
	@command -v oathtool >/dev/null || { \
		echo "c-tests: oathtool not found: install it (Debian/Ubuntu: apt-get install oathtool)"; exit 1; }
	@command -v $(C_TESTS_CC) >/dev/null || { echo "c-tests: no C compiler ($(C_TESTS_CC))"; exit 1; }

$(C_TESTS_OUT)/test_twofa: $(C_TESTS_SOURCES) $(C_TESTS_HEADERS) | c-tests-lib
	$(C_TESTS_CC) $(C_TESTS_CFLAGS) -o $@ $(C_TESTS_SOURCES) $(C_TESTS_LDFLAGS)

$(C_TESTS_OUT)/test_twofa_asan: $(C_TESTS_SOURCES) $(C_TESTS_HEADERS) | c-tests-lib
	$(C_TESTS_CC) $(C_TESTS_CFLAGS) $(C_TESTS_ASAN_FLAGS) -o $@ $(C_TESTS_SOURCES) $(C_TESTS_LDFLAGS)
