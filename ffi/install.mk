# Installing libtwofa: the shared and static libraries, the header and a pkg-config file.
#
#   make -f ffi/install.mk install PREFIX=/opt/twofa   (default PREFIX=/usr/local; DESTDIR too)
#   make -f ffi/install.mk install-check               install into a temporary PREFIX, then
#                                                      build and run the C host example against
#                                                      that copy with pkg-config
#
# A fragment: the top Makefile includes it; it also works on its own as above. `install` builds
# the release library first when cargo is on PATH (otherwise it installs what target/release
# holds, e.g. under sudo). It installs:
#
#   $(PREFIX)/lib/libtwofa.so.$(TWOFA_VERSION)   the shared library (soname libtwofa.so.0)
#   $(PREFIX)/lib/libtwofa.so.0 -> libtwofa.so.$(TWOFA_VERSION)
#   $(PREFIX)/lib/libtwofa.so   -> libtwofa.so.0
#   $(PREFIX)/lib/libtwofa.a
#   $(PREFIX)/lib/pkgconfig/twofa.pc            from ffi/twofa.pc.in
#   $(PREFIX)/include/twofa.h

TWOFA_FFI_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TWOFA_ROOT := $(abspath $(TWOFA_FFI_DIR)/..)
TWOFA_BUILT := $(TWOFA_ROOT)/target/release
# twofa-ffi's own version, else the workspace's (ffi/Cargo.toml says version.workspace = true).
TWOFA_VERSION := $(firstword $(shell sed -n 's/^version *= *"\([^"]*\)".*/\1/p' \
	$(TWOFA_FFI_DIR)/Cargo.toml $(TWOFA_ROOT)/Cargo.toml))

PREFIX ?= /usr/local
DESTDIR ?=
INSTALL ?= install

.PHONY: install install-check

install:
	@test -n "$(TWOFA_VERSION)" || { echo "install: no version found in ffi/Cargo.toml or Cargo.toml" >&2; exit 1; }
	@if command -v cargo >/dev/null; then \
		echo "cd $(TWOFA_ROOT) && cargo build --release -p twofa-ffi"; \
		cd $(TWOFA_ROOT) && cargo build --release -p twofa-ffi; \
	elif [ ! -f $(TWOFA_BUILT)/libtwofa.so ] || [ ! -f $(TWOFA_BUILT)/libtwofa.a ]; then \
		echo "install: cargo is not on PATH and target/release has no libtwofa: build it first (cargo build --release -p twofa-ffi)" >&2; \
		exit 1; \
	fi
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	$(INSTALL) -m 755 $(TWOFA_BUILT)/libtwofa.so $(DESTDIR)$(PREFIX)/lib/libtwofa.so.$(TWOFA_VERSION)
	ln -sfn libtwofa.so.$(TWOFA_VERSION) $(DESTDIR)$(PREFIX)/lib/libtwofa.so.0
	ln -sfn libtwofa.so.0 $(DESTDIR)$(PREFIX)/lib/libtwofa.so
	$(INSTALL) -m 644 $(TWOFA_BUILT)/libtwofa.a $(DESTDIR)$(PREFIX)/lib/libtwofa.a
	$(INSTALL) -m 644 $(TWOFA_ROOT)/include/twofa.h $(DESTDIR)$(PREFIX)/include/twofa.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(TWOFA_VERSION)|g' $(TWOFA_FFI_DIR)/twofa.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/twofa.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/twofa.pc

# Installs into a temporary PREFIX, then compiles examples/c-host/main.c twice, with only what
# pkg-config says: linked to the installed libtwofa.so (which it must load at run time), and
# statically to the installed libtwofa.a (Libs.private); both must pass examples/c-host/check.sh.
install-check:
	@command -v pkg-config >/dev/null || { echo "install-check: pkg-config not found: install it (Debian: apt-get install pkg-config)" >&2; exit 1; }
	@command -v oathtool >/dev/null || { echo "install-check: oathtool not found (the C host example needs it): install it (Debian: apt-get install oathtool)" >&2; exit 1; }
	@set -eu; \
	tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/twofa-install-check.XXXXXX"); \
	prefix=$$tmp/prefix; \
	fail() { echo "install-check: FAILED: $$* (left in $$tmp)" >&2; exit 1; }; \
	echo "== make install PREFIX=$$prefix"; \
	$(MAKE) --no-print-directory -f $(TWOFA_FFI_DIR)/install.mk install PREFIX=$$prefix DESTDIR=; \
	for f in lib/libtwofa.so.$(TWOFA_VERSION) lib/libtwofa.so.0 lib/libtwofa.so lib/libtwofa.a \
		lib/pkgconfig/twofa.pc include/twofa.h; do \
		[ -e "$$prefix/$$f" ] || fail "$$f was not installed"; \
	done; \
	[ "$$(readlink $$prefix/lib/libtwofa.so.0)" = libtwofa.so.$(TWOFA_VERSION) ] || fail "libtwofa.so.0 is not a link to libtwofa.so.$(TWOFA_VERSION)"; \
	[ "$$(readlink $$prefix/lib/libtwofa.so)" = libtwofa.so.0 ] || fail "libtwofa.so is not a link to libtwofa.so.0"; \
	export PKG_CONFIG_PATH=$$prefix/lib/pkgconfig; \
	[ "$$(pkg-config --modversion twofa)" = $(TWOFA_VERSION) ] || fail "pkg-config --modversion twofa is not $(TWOFA_VERSION)"; \
	echo "pkg-config --cflags --libs twofa: $$(pkg-config --cflags --libs twofa)"; \
	echo "pkg-config --static --libs twofa: $$(pkg-config --static --libs twofa)"; \
	echo "== the C host example, linked to the installed libtwofa.so"; \
	$(CC) -std=c11 -Wall -Wextra -Werror -pthread -o $$tmp/c-host $(TWOFA_ROOT)/examples/c-host/main.c \
		$$(pkg-config --cflags --libs twofa) -Wl,-rpath,$$(pkg-config --variable=libdir twofa); \
	ldd $$tmp/c-host | grep "libtwofa.so.0 => $$prefix/lib/libtwofa.so.0 " >/dev/null || fail "c-host does not load $$prefix/lib/libtwofa.so.0"; \
	$(TWOFA_ROOT)/examples/c-host/check.sh $$tmp/c-host; \
	$$tmp/c-host > $$tmp/c-host.out; \
	grep -qx "twofa C host example (libtwofa $(TWOFA_VERSION))" $$tmp/c-host.out || fail "the library does not report version $(TWOFA_VERSION)"; \
	echo "== the C host example, linked statically to the installed libtwofa.a"; \
	$(CC) -std=c11 -Wall -Wextra -Werror -pthread -o $$tmp/c-host-static $(TWOFA_ROOT)/examples/c-host/main.c \
		$$(pkg-config --cflags twofa) \
		$$(pkg-config --static --libs twofa | sed 's/-ltwofa/-Wl,-Bstatic -ltwofa -Wl,-Bdynamic/'); \
	! readelf -d $$tmp/c-host-static | grep libtwofa >/dev/null || fail "c-host-static still needs libtwofa.so"; \
	$(TWOFA_ROOT)/examples/c-host/check.sh $$tmp/c-host-static; \
	rm -rf "$$tmp"; \
	echo "install-check: OK (version $(TWOFA_VERSION); shared and static builds against the installed copy)"
