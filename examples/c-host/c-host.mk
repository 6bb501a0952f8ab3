# The C host example (examples/c-host/main.c, which includes json.h), built against include/ and
# target/release.
#
#   make -f examples/c-host/c-host.mk c-host         build target/c-host/c-host
#   make -f examples/c-host/c-host.mk c-host-check   build it, run it, check its output
#   make -f examples/c-host/c-host.mk c-host-valgrind run it under valgrind (memcheck, full leak
#                                                    check; examples/c-host/valgrind.supp)
#
# A fragment: the top Makefile includes it; it also works on its own as above. Needs cargo, a C
# compiler and, to run the example, oathtool (Debian: apt-get install oathtool).

C_HOST_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
C_HOST_ROOT := $(abspath $(C_HOST_DIR)/../..)
C_HOST_LIBDIR := $(C_HOST_ROOT)/target/release
C_HOST_BIN := $(C_HOST_ROOT)/target/c-host/c-host
C_HOST_CFLAGS := -std=c11 -Wall -Wextra -Werror -pthread

.PHONY: c-host c-host-check c-host-valgrind

# libtwofa.so carries the soname libtwofa.so.0, which cargo does not create: the link below
# records libtwofa.so.0, so target/release gets a libtwofa.so.0 -> libtwofa.so symlink for the
# rpath to find.
c-host:
	cd $(C_HOST_ROOT) && cargo build --release -p twofa-ffi
	ln -sfn libtwofa.so $(C_HOST_LIBDIR)/libtwofa.so.0
	mkdir -p $(dir $(C_HOST_BIN))
	$(CC) $(C_HOST_CFLAGS) -I$(C_HOST_ROOT)/include -o $(C_HOST_BIN) $(C_HOST_DIR)/main.c \
		-L$(C_HOST_LIBDIR) -ltwofa -Wl,-rpath,$(C_HOST_LIBDIR)

c-host-check: c-host
	@command -v oathtool >/dev/null || { echo "c-host-check: oathtool not found (it plays the authenticator app): install it, e.g. apt-get install oathtool" >&2; exit 1; }
	$(C_HOST_DIR)/check.sh $(C_HOST_BIN)

c-host-valgrind: c-host
	@command -v valgrind >/dev/null || { echo "c-host-valgrind: valgrind not found: install it, e.g. apt-get install valgrind" >&2; exit 1; }
	@command -v oathtool >/dev/null || { echo "c-host-valgrind: oathtool not found (it plays the authenticator app): install it, e.g. apt-get install oathtool" >&2; exit 1; }
	valgrind --quiet --leak-check=full --error-exitcode=9 --suppressions=$(C_HOST_DIR)/valgrind.supp \
		$(C_HOST_BIN) >/dev/null
	@echo "c-host-valgrind: OK (no memory errors, no leaks)"
