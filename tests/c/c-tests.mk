# The C test suite of libtwofa (tests/c/*.c), as a make fragment.
#
#   make c-tests            build and run against the release libtwofa.so
#   make c-tests-valgrind   run under valgrind: no errors, no definite/indirect leaks
#   make c-tests-asan       build with AddressSanitizer + UBSan and run (LeakSanitizer on)
#   make c-tests-tsan       build libtwofa and the suite with ThreadSanitizer and run (any report fails)
#
# Include it from the top Makefile (paths are relative to the repository root), or use it
# standalone from the root: `make -f tests/c/c-tests.mk c-tests`. It assumes that
# `cargo build --release -p twofa-ffi` already ran; LIBTWOFA_DIR names its output directory.
# Needs a C11 compiler, oathtool (the tests compute TOTP codes with it) and, for
# c-tests-valgrind, valgrind. Build outputs go to target/c-tests/. Pass test-name substrings in
# C_TESTS_ARGS to run a subset. c-tests-tsan builds its own libtwofa (see below) and needs the
# rust-src component. The fault harness's C adapter (tests/faults/adapters/c_adapter.mk) builds
# with this fragment's compiler, flags and library too; it may be included twice, and defines
# everything once.

ifndef C_TESTS_MK
C_TESTS_MK := 1

LIBTWOFA_DIR ?= target/release
C_TESTS_CC ?= $(if $(filter default,$(origin CC)),cc,$(CC))
C_TESTS_SRC_DIR := tests/c
C_TESTS_OUT := target/c-tests
C_TESTS_LIB := $(C_TESTS_OUT)/lib
C_TESTS_SOURCES := $(wildcard $(C_TESTS_SRC_DIR)/*.c)
# The JSON reader is the C host example's (examples/c-host/json.h).
C_TESTS_HEADERS := $(wildcard $(C_TESTS_SRC_DIR)/*.h) include/twofa.h examples/c-host/json.h
C_TESTS_CFLAGS := -std=c11 -Wall -Wextra -Werror -pthread -g -O1 -I include -I examples/c-host
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

.PHONY: c-tests c-tests-valgrind c-tests-asan c-tests-lib c-tests-tools c-tests-valgrind-tool \
	c-tests-tsan c-tests-tsan-lib c-tests-tsan-tools

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

# ---- ThreadSanitizer ---------------------------------------------------------------------------
# TSan needs every memory access and every synchronisation of the process instrumented, so
# libtwofa gets its own build in target/tsan:
# - RUSTFLAGS=-Zsanitizer=thread, a nightly flag the stable rustc accepts under
#   RUSTC_BOOTSTRAP=1 (as fuzz/run.sh does); --target keeps it off build scripts and proc macros.
# - -Zbuild-std (needs `rustup component add rust-src`): std is rebuilt instrumented. With the
#   prebuilt, uninstrumented std, TSan does not see std's futex Mutex or channel handoffs, nor
#   Arc's drop (std's Arc only uses a TSan-visible acquire when std itself is built with TSan),
#   and reported ~200 false races per run, all on data guarded by std::sync::Mutex
#   (rusqlite's Connection in core/src/store/sqlite.rs) or owned by Arc/mpmc. With build-std:
#   none, so there is no suppression file.
# - The runtime is rustc's own (librustc-*_rt.tsan.a in the sysroot), linked into the test
#   executable: rustc's LLVM instruments memcpy/memset/memmove as __tsan_memcpy/..., which the
#   runtimes of gcc 12 (libtsan.so.2) and clang 14 do not have. So the C files are compiled with
#   -fsanitize=thread (gcc or clang instrumentation; the newer runtime serves both) and linked
#   without it, the runtime added explicitly and exported (-rdynamic) to libtwofa.so.
# - The C code the cc crate compiles for the target (bundled SQLite, ring's C) gets
#   -fsanitize=thread through CFLAGS_<target>, so SQLite's shared state is checked too (the
#   two-engines-one-file test). ring's assembly cannot be instrumented.
# It runs the whole suite (the race tests, check_store's and the conformance session's threads;
# about 1.5 s). Clean build about 3 min on 2 cores (std and every dependency, 1.3 GB in
# target/tsan); when nothing changed, cargo takes well under a second.
C_TESTS_TSAN_TARGET = $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
C_TESTS_TSAN_SYSROOT = $(shell rustc --print sysroot 2>/dev/null)
C_TESTS_TSAN_RT = $(firstword $(wildcard $(C_TESTS_TSAN_SYSROOT)/lib/rustlib/$(C_TESTS_TSAN_TARGET)/lib/librustc-*_rt.tsan.a))
C_TESTS_TSAN_CARGO_DIR := target/tsan
C_TESTS_TSAN_OUT := $(C_TESTS_OUT)/tsan
C_TESTS_TSAN_LIB := $(C_TESTS_TSAN_OUT)/lib
C_TESTS_TSAN_OBJS := $(patsubst $(C_TESTS_SRC_DIR)/%.c,$(C_TESTS_TSAN_OUT)/%.o,$(C_TESTS_SOURCES))
C_TESTS_TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
C_TESTS_TSAN_LDFLAGS = -pthread -Wl,--whole-archive $(C_TESTS_TSAN_RT) -Wl,--no-whole-archive -rdynamic \
	-ldl -lm -lrt -L $(C_TESTS_TSAN_LIB) -ltwofa -Wl,-rpath,$(abspath $(C_TESTS_TSAN_LIB))
# Any report fails the run (exit code 66) at the first one.
C_TESTS_TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1

c-tests-tsan: c-tests-tools c-tests-tsan-lib $(C_TESTS_OUT)/test_twofa_tsan
	$(C_TESTS_TSAN_ENV) $(C_TESTS_OUT)/test_twofa_tsan $(C_TESTS_ARGS)

c-tests-tsan-tools:
	@command -v rustc >/dev/null || { echo "c-tests-tsan: rustc not found"; exit 1; }
	@test -d "$(C_TESTS_TSAN_SYSROOT)/lib/rustlib/src/rust/library/std" || { \
		echo "c-tests-tsan: the rust-src component is missing (-Zbuild-std needs it): rustup component add rust-src"; \
		exit 1; }
	@test -n "$(C_TESTS_TSAN_RT)" || { \
		echo "c-tests-tsan: no ThreadSanitizer runtime (librustc-*_rt.tsan.a) for $(C_TESTS_TSAN_TARGET) in $(C_TESTS_TSAN_SYSROOT)"; \
		exit 1; }

c-tests-tsan-lib: c-tests-tsan-tools
	RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Zsanitizer=thread CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
		CFLAGS_$(subst -,_,$(C_TESTS_TSAN_TARGET))=-fsanitize=thread \
		cargo build --quiet --release -p twofa-ffi -Zbuild-std --target $(C_TESTS_TSAN_TARGET) \
		--target-dir $(C_TESTS_TSAN_CARGO_DIR)
	@mkdir -p $(C_TESTS_TSAN_LIB)
	@ln -sfn $(abspath $(C_TESTS_TSAN_CARGO_DIR)/$(C_TESTS_TSAN_TARGET)/release)/libtwofa.so $(C_TESTS_TSAN_LIB)/libtwofa.so.0
	@ln -sfn libtwofa.so.0 $(C_TESTS_TSAN_LIB)/libtwofa.so

$(C_TESTS_TSAN_OUT)/%.o: $(C_TESTS_SRC_DIR)/%.c $(C_TESTS_HEADERS)
	@mkdir -p $(C_TESTS_TSAN_OUT)
	$(C_TESTS_CC) $(C_TESTS_CFLAGS) $(C_TESTS_TSAN_FLAGS) -c -o $@ $<

$(C_TESTS_OUT)/test_twofa_tsan: $(C_TESTS_TSAN_OBJS) | c-tests-tsan-lib
	$(C_TESTS_CC) -o $@ $(C_TESTS_TSAN_OBJS) $(C_TESTS_TSAN_LDFLAGS)

endif
