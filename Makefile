# libws - one GNU Makefile. Out-of-tree builds in $(B) (default build/).
#   make                 libws.a, libws.so, libws.pc
#   make test            every test (SKIP for a missing peer)
#   make WS_OPENSSL=0    built-in SHA-1/Base64/random, no libcrypto
#   make asan | debug | valgrind | check-nomalloc | install PREFIX=...
# V=1 shows commands; WERROR=1 adds -Werror (CI does; a user build never).

B ?= build
CC ?= cc
AR ?= ar
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CFLAGS ?= -O2 -g
PYTHON ?= python3

ifeq ($(V),1)
Q :=
else
Q := @
endif

VERSION_MAJOR := $(shell sed -n 's/^\#define WS_VERSION_MAJOR \([0-9]*\)/\1/p' include/ws.h)
VERSION_MINOR := $(shell sed -n 's/^\#define WS_VERSION_MINOR \([0-9]*\)/\1/p' include/ws.h)
VERSION_PATCH := $(shell sed -n 's/^\#define WS_VERSION_PATCH \([0-9]*\)/\1/p' include/ws.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME := libws.so.$(VERSION_MAJOR).$(VERSION_MINOR)

# OpenSSL: detected unless WS_OPENSSL is given.
ifndef WS_OPENSSL
WS_OPENSSL := $(shell echo 'int main(void){return 0;}' | $(CC) -x c - \
    -include openssl/ssl.h -o /dev/null -lssl -lcrypto >/dev/null 2>&1 \
    && echo 1 || echo 0)
endif
ifeq ($(WS_OPENSSL),1)
CRYPTO_LIBS := -lcrypto
IO_LIBS := -lssl -lcrypto -lpthread
PC_REQUIRES := Requires.private: libssl libcrypto
else
CRYPTO_LIBS :=
IO_LIBS := -lpthread
PC_REQUIRES :=
endif

WARN := -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wconversion \
        -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN += -Werror
endif
ALL_CPPFLAGS := -Iinclude -Isrc -DWS_OPENSSL=$(WS_OPENSSL) -D_POSIX_C_SOURCE=200809L $(CPPFLAGS)
# Release hardening, on by default; `make HARDEN_CFLAGS=` turns it off
# (e.g. for a bare-metal lib-core).
HARDEN_CFLAGS ?= -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong
ALL_CFLAGS := $(WARN) -fPIC $(HARDEN_CFLAGS) $(CFLAGS)
TEST_CFLAGS := -std=c99 -Wall -Wextra -Wpedantic -Wshadow \
        $(if $(filter 1,$(WERROR)),-Werror) $(HARDEN_CFLAGS) $(CFLAGS)

# Objects depend on a stamp named after the configuration, so switching
# WS_OPENSSL or the compiler in the same build directory rebuilds them.
CONFIG_STAMP := $(B)/.config-openssl$(WS_OPENSSL)-$(notdir $(firstword $(CC)))

CORE_SRC := src/ws_err.c src/ws_frame.c src/ws_utf8.c src/ws_sha1.c \
            src/ws_crypto_openssl.c src/ws_handshake.c src/ws_conn.c
CORE_OBJ := $(CORE_SRC:src/%.c=$(B)/obj/%.o)
IO_SRC := src/io/ws_io.c src/io/io_tls.c
IO_OBJ := $(IO_SRC:src/%.c=$(B)/obj/%.o)
LIB_OBJ := $(CORE_OBJ) $(IO_OBJ)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_OBJ := $(TEST_SRC:tests/%.c=$(B)/tests/%.o)

.PHONY: demo all lib-core tests gdb test check test-unit test-nossl test-interop test-tls test-node test-tools test-io valgrind-io test-conformance conformance test-m32 cppcheck soak soak-quick test-demo bench bench-echo bench-parse asan \
        debug valgrind check-nomalloc install uninstall clean examples

EXAMPLES := $(B)/examples/core_echo $(B)/examples/poll_echo \
            $(B)/examples/echo_server $(B)/examples/polling_vs_ws \
            $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/wscat.c examples/wsdump.c))

all: $(B)/libws.a $(B)/$(SONAME) $(B)/libws.so $(B)/libws.pc examples

examples: $(EXAMPLES)

$(B)/examples/%: examples/%.c $(B)/libws.a include/ws.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -Iinclude $(ALL_CPPFLAGS) $(TEST_CFLAGS) $(LDFLAGS) $< $(B)/libws.a $(IO_LIBS) -o $@

# The core alone (no sockets, no OpenSSL needed with WS_OPENSSL=0), e.g.
# make lib-core CC=arm-none-eabi-gcc WS_OPENSSL=0
lib-core: $(B)/libws-core.a

$(B)/libws-core.a: $(CORE_OBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(CONFIG_STAMP):
	@mkdir -p $(dir $@)
	@rm -f $(B)/.config-*
	@touch $@

$(B)/obj/%.o: src/%.c include/ws.h include/ws_io.h src/ws_internal.h src/io/io_tls.h $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(B)/libws.a: $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(B)/$(SONAME): $(LIB_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $^ $(IO_LIBS)

$(B)/libws.so: $(B)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(B)/libws.pc: libws.pc.in include/ws.h
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@REQUIRES@|$(PC_REQUIRES)|' libws.pc.in > $@

# ---- fuzzing: make fuzz [FUZZ_SECONDS=N]; the corpus is replayed by test --
include fuzz/fuzz.mk

# ---- tests ----------------------------------------------------------------
$(B)/tests/%.o: tests/%.c tests/test.h tests/test_list.h $(wildcard tests/list_*.h) include/ws.h src/ws_internal.h $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests $(TEST_CFLAGS) -c $< -o $@

$(B)/tests/ws_tests: $(TEST_OBJ) $(B)/libws.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJ) $(B)/libws.a $(IO_LIBS)

test-unit: $(B)/tests/ws_tests
	$(Q)$(B)/tests/ws_tests

# The same unit tests against the built-in SHA-1/Base64/random.
test-nossl:
	$(Q)$(MAKE) --no-print-directory B=$(B)-nossl WS_OPENSSL=0 test-unit

# ---- the polling-vs-WebSocket demo (server + page + --bench) --------------
PVW_SRC := examples/polling_vs_ws/main.c examples/polling_vs_ws/server.c \
           examples/polling_vs_ws/bench.c

$(B)/examples/polling_vs_ws: $(PVW_SRC) examples/polling_vs_ws/pvw.h $(B)/libws.a include/ws.h include/ws_io.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -Iinclude -Iexamples/polling_vs_ws $(ALL_CPPFLAGS) $(TEST_CFLAGS) \
	    -DPVW_WWW_DIR='"$(abspath examples/polling_vs_ws/www)"' $(LDFLAGS) \
	    $(PVW_SRC) $(B)/libws.a $(IO_LIBS) -o $@

demo: $(B)/examples/polling_vs_ws
	@echo "polling_vs_ws demo: open http://127.0.0.1:8080/ (Ctrl-C stops it)"
	$(Q)$(B)/examples/polling_vs_ws --host 127.0.0.1 --port 8080 \
	    --www examples/polling_vs_ws/www

# Bench (in-process and --reconnect), malformed requests, 2,000 idle
# clients, SIGTERM (about 20 s); then the page in headless Chromium, with
# a screenshot in $(B)/demo.png.
test-demo: $(B)/examples/polling_vs_ws
	$(Q)$(PYTHON) tests/demo/demo_test.py $(B)/examples/polling_vs_ws
	$(Q)if command -v node >/dev/null; then node tests/demo/browser_demo.mjs $(B); \
	elif [ "$(WS_REQUIRE_PEERS)" = 1 ]; then echo "FAIL: node missing"; exit 1; \
	else echo "# SKIP node not installed: browser demo test skipped"; fi

# Black-box tests over a real socket: raw RFC bytes, then Python
# `websockets` as a peer (SKIP if missing; WS_REQUIRE_PEERS=1 fails).
PEER_PY = $$(for p in $(PYTHON) /usr/bin/python3; do \
	    if $$p -c 'import websockets' 2>/dev/null; then echo $$p; exit; fi; \
	done; echo $(PYTHON))

test-interop: $(B)/examples/core_echo $(B)/examples/poll_echo $(B)/examples/echo_server $(B)/examples/wscat
	$(Q)$(PEER_PY) tests/interop/core_echo_test.py $(B)/examples/core_echo
	$(Q)$(PEER_PY) tests/interop/core_echo_test.py $(B)/examples/poll_echo
	$(Q)$(PEER_PY) tests/interop/core_echo_test.py $(B)/examples/echo_server \
	    --port {port} --quiet
	$(Q)$(PEER_PY) tests/interop/wscat_test.py $(B)/examples/wscat \
	    $(B)/examples/echo_server

# The TLS transport against itself: certificates made at run time.
$(B)/tests/tls_selftest: tests/io/tls_selftest.c src/io/io_tls.c src/io/io_tls.h $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(TEST_CFLAGS) $(LDFLAGS) tests/io/tls_selftest.c \
	    src/io/io_tls.c $(IO_LIBS) -o $@

test-tls: $(B)/tests/tls_selftest
	$(Q)bash tests/io/gen_cert.sh $(B)/tlscerts
	$(Q)$(B)/tests/tls_selftest $(B)/tlscerts

# Node `ws` as client of echo_server and server for wscat, then headless
# Chromium (SKIP if node, tests/interop/node/node_modules or
# /usr/bin/chromium is missing; WS_REQUIRE_PEERS=1 fails).
# Needs: npm ci --prefix tests/interop/node
test-node: $(B)/examples/echo_server $(if $(wildcard examples/wscat.c),$(B)/examples/wscat)
	$(Q)sh tests/interop/run_node_tests.sh $(B)

# ---- I/O layer tests: real sockets on 127.0.0.1 (about 10 s) --------------
$(B)/io_test: tests/io/io_test.c $(B)/libws.a include/ws.h include/ws_io.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(TEST_CFLAGS) $(LDFLAGS) $< $(B)/libws.a $(IO_LIBS) -o $@

test-io: $(B)/io_test $(B)/examples/echo_server
	$(Q)$(B)/io_test --echo-server $(B)/examples/echo_server \
	    --gen-cert tests/io/gen_cert.sh

# Reduced counts under memcheck (about 25 s). Only real leaks fail: the two
# "still reachable" blocks are io_tls.c's once-per-process BIO_METHOD.
valgrind-io: $(B)/io_test $(B)/examples/echo_server
	$(Q)IO_TEST_SCALE=0.1 valgrind --quiet --error-exitcode=99 \
	    --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
	    $(B)/io_test --echo-server $(B)/examples/echo_server \
	    --gen-cert tests/io/gen_cert.sh

# ---- benchmarks (tests/bench/): make bench ---------------------------------
HAVE_WSLAY := $(shell echo 'int main(void){return 0;}' | $(CC) -x c - -o /dev/null -lwslay -lcrypto 2>/dev/null && echo 1)
HAVE_LWS := $(shell pkg-config --exists libwebsockets 2>/dev/null && echo 1)
BENCH_ECHO_SERVERS := $(if $(HAVE_WSLAY),$(B)/bench/wslay_echo) $(if $(HAVE_LWS),$(B)/bench/lws_echo)

$(B)/bench/echo_load: tests/bench/echo_load.c $(B)/libws.a include/ws.h include/ws_io.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(TEST_CFLAGS) $(LDFLAGS) $< $(B)/libws.a $(IO_LIBS) -o $@

$(B)/bench/wslay_echo: tests/bench/servers/wslay_echo.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) $(LDFLAGS) $< -lwslay -lcrypto -o $@

$(B)/bench/lws_echo: tests/bench/servers/lws_echo.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TEST_CFLAGS) $(shell pkg-config --cflags libwebsockets 2>/dev/null) $(LDFLAGS) $< $(shell pkg-config --libs libwebsockets 2>/dev/null) -o $@

# Echo servers side by side, interleaved, pinned (about 100 s);
# tests/bench/run_echo.sh --full for 5 rounds of 3 s.
bench-echo: $(B)/bench/echo_load $(B)/examples/echo_server $(BENCH_ECHO_SERVERS)
	$(Q)B=$(B) bash tests/bench/run_echo.sh

# In-process receive path vs memcpy and wslay (tests/bench/README.md);
# BENCH_ARGS=--quick is under 60 s. Without wslay its rows are skipped.
$(B)/bench/parse: tests/bench/parse.c $(B)/libws.a include/ws.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(TEST_CFLAGS) -DHAVE_WSLAY=$(if $(HAVE_WSLAY),1,0) \
	    $(LDFLAGS) $< $(B)/libws.a $(if $(HAVE_WSLAY),-lwslay) $(IO_LIBS) -o $@

bench-parse: $(B)/bench/parse
	$(Q)$(B)/bench/parse $(BENCH_ARGS)

# The quick version of both (a few minutes).
bench: $(B)/bench/parse $(B)/bench/echo_load $(B)/examples/echo_server $(BENCH_ECHO_SERVERS)
	$(Q)$(B)/bench/parse --quick
	$(Q)B=$(B) bash tests/bench/run_echo.sh

# ---- hardening -------------------------------------------------------------
# Unit tests as a 32-bit program (64-bit lengths on a 32-bit size_t).
test-m32:
	$(Q)$(MAKE) --no-print-directory B=$(B)-m32 WS_OPENSSL=0 \
	    CC="$(CC) -m32" test-unit

cppcheck:
	$(Q)sh tests/hardening/cppcheck.sh

# 200 connections of random traffic against echo_server; zero lost or
# corrupted messages, server RSS within 5 % (+1 MiB) of its warm value.
SOAK_SECONDS ?= 60
$(B)/tests/soak: tests/soak/soak.c $(B)/libws.a include/ws.h include/ws_io.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(TEST_CFLAGS) $(LDFLAGS) tests/soak/soak.c \
	    $(B)/libws.a $(IO_LIBS) -o $@

soak: $(B)/tests/soak $(B)/examples/echo_server
	$(Q)$(B)/tests/soak $(B)/examples/echo_server --seconds $(SOAK_SECONDS)

soak-quick: $(B)/tests/soak $(B)/examples/echo_server
	$(Q)$(B)/tests/soak $(B)/examples/echo_server --seconds 10 --slack-kib 2048

# ---- conformance (tests/conformance/README.md) ------------------------------
# Quick set: the Autobahn case groups plus handshake, masking, length, flood
# and close-code extras; server role against echo_server, client role
# against wscat. Standard library only; about 20 s.
CONFORMANCE = $(PYTHON) tests/conformance/conformance.py

test-conformance: $(B)/examples/echo_server $(B)/examples/wscat
	$(Q)$(CONFORMANCE) server -q --cmd "$(B)/examples/echo_server --port {port} --quiet"
	$(Q)$(CONFORMANCE) client -q --cmd "$(B)/examples/wscat --echo -q {url}"

# The full set (9.x up to 16 MiB, UTF-8 split at every byte; JSON reports in
# $(B)/), then the runner checked against Python websockets and Node ws
# (tests/conformance/PEERS.md; SKIP if missing, WS_REQUIRE_PEERS=1 fails).
conformance: $(B)/examples/echo_server $(B)/examples/wscat
	$(Q)$(CONFORMANCE) server --full --json $(B)/conformance-server.json \
	    --cmd "$(B)/examples/echo_server --port {port} --quiet"
	$(Q)$(CONFORMANCE) client --full --json $(B)/conformance-client.json \
	    --cmd "$(B)/examples/wscat --echo -q {url}"
	$(Q)PYTHON=$(PYTHON) sh tests/conformance/run_peers.sh --full

# The frame dissector, black-box: RFC 6455 5.7 bytes, one input per rule,
# a handshake capture, a 20 MB stream in bounded memory.
test-tools: $(B)/examples/wsdump
	$(Q)$(PYTHON) tests/tools/wsdump_test.py $(B)/examples/wsdump

test check: test-unit test-nossl check-nomalloc fuzz-replay test-tls test-tools test-io test-conformance soak-quick test-interop test-node test-demo
	@echo "make test: all suites passed"

# The core must never call the allocator itself (STYLE.md 5).
check-nomalloc: $(CORE_OBJ)
	$(Q)if nm -u $(CORE_OBJ) | grep -wE 'malloc|calloc|realloc|free'; then \
	    echo "check-nomalloc: FAIL: the core references the allocator"; exit 1; \
	else echo "check-nomalloc: ok (no malloc/calloc/realloc/free in the core)"; fi

tests: $(B)/tests/ws_tests

debug:
	$(Q)$(MAKE) --no-print-directory B=build-debug \
	    HARDEN_CFLAGS=-fstack-protector-strong \
	    CFLAGS="-O0 -g3 -fno-omit-frame-pointer" all tests

# make gdb T=conn_fails_rsv_bits_1002: one test under gdb, stopping at
# every failed check.
gdb: debug
	gdb -ex 'break test_fail' --args build-debug/tests/ws_tests $(T)

asan:
	$(Q)$(MAKE) --no-print-directory B=build-asan HARDEN_CFLAGS= \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" test-unit test-io

valgrind: $(B)/tests/ws_tests $(B)/examples/wscat $(B)/examples/echo_server
	$(Q)valgrind --quiet --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=all $(B)/tests/ws_tests
	$(Q)WSCAT_PREFIX="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible" \
	    $(PEER_PY) tests/interop/wscat_test.py $(B)/examples/wscat \
	    $(B)/examples/echo_server

install: all
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/ws.h include/ws_io.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(B)/libws.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/$(SONAME) $(DESTDIR)$(LIBDIR)/
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libws.so
	install -m 644 $(B)/libws.pc $(DESTDIR)$(PKGCONFIGDIR)/

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/ws.h $(DESTDIR)$(INCLUDEDIR)/ws_io.h \
	    $(DESTDIR)$(LIBDIR)/libws.a \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libws.so \
	    $(DESTDIR)$(PKGCONFIGDIR)/libws.pc

clean:
	rm -rf build build-* $(B)
