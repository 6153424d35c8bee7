# fuzz/fuzz.mk - fuzz targets (STYLE.md 7); included by the main Makefile.
#
#   make fuzz-replay          build $(B)/fuzz/replay_<t> with $(CC) (no
#                             libFuzzer) and replay fuzz/corpus/<t>/ and
#                             fuzz/regressions/<t>/ (part of `make test`)
#   make fuzz                 build $(B)/fuzz/fuzz_<t> with clang
#                             -fsanitize=fuzzer,address,undefined and run
#                             each for FUZZ_SECONDS (default 10; 0 or empty:
#                             build only)
#   make fuzz FUZZ_SECONDS=300 FUZZ_TARGETS=conn_server
#
# New inputs go to $(B)/fuzz/scratch/<t>/ and crashes to
# $(B)/fuzz/artifacts/<t>-crash-*; copy what is worth keeping into
# fuzz/corpus/<t>/ (named by SHA-256: see fuzz/make_seeds.py) or
# fuzz/regressions/<t>/.
#
# Uses from the main Makefile: B CC ALL_CPPFLAGS CORE_SRC CRYPTO_LIBS Q.
# Include it after they are defined (rule prerequisites expand at once).

FUZZ_TARGETS ?= conn_server conn_client conn_handshake handshake_request \
                handshake_response utf8 frame close
FUZZ_SECONDS ?= 10
FUZZ_CLANG ?= clang
FUZZ_CFLAGS := -std=c99 -O1 -g -Wall -Wextra
FUZZ_SANITIZE := -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=undefined
FUZZ_DEPS := include/ws.h $(wildcard src/*.h) fuzz/fuzz_check.h \
             fuzz/fuzz_conn.h $(CORE_SRC)

.PHONY: fuzz fuzz-replay fuzz-build

$(B)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/standalone.c $(FUZZ_DEPS) $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< fuzz/standalone.c \
	    $(CORE_SRC) $(CRYPTO_LIBS)

$(B)/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CLANG   $@")
	$(Q)$(FUZZ_CLANG) $(ALL_CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_SANITIZE) \
	    -o $@ $< $(CORE_SRC) $(CRYPTO_LIBS)

fuzz-replay: $(FUZZ_TARGETS:%=$(B)/fuzz/replay_%)
	$(Q)for t in $(FUZZ_TARGETS); do \
	    dirs=fuzz/corpus/$$t; \
	    if [ -d fuzz/regressions/$$t ]; then \
	        dirs="$$dirs fuzz/regressions/$$t"; fi; \
	    printf '  FUZZ    %-20s ' "$$t:"; \
	    $(B)/fuzz/replay_$$t $$dirs || exit 1; \
	done

fuzz-build: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)

fuzz: fuzz-build
ifneq ($(filter-out 0,$(FUZZ_SECONDS)),)
	$(Q)for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(B)/fuzz/scratch/$$t $(B)/fuzz/artifacts || exit 1; \
	    echo "  FUZZ    $$t for $(FUZZ_SECONDS)s"; \
	    $(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=$(B)/fuzz/artifacts/$$t- -print_final_stats=1 \
	        $(B)/fuzz/scratch/$$t fuzz/corpus/$$t || exit 1; \
	done
endif
