#!/bin/sh
# cppcheck.sh - static analysis of the core (must be clean) and, for
# information, of the I/O layer. Run from anywhere: `sh tests/hardening/cppcheck.sh`.
#
# The core (src/ws_*.c) is checked in three configurations: as configured
# by default (the built-in crypto), with OpenSSL (-DWS_OPENSSL=1), and as a
# 32-bit (ILP32) target. Any finding fails. A deliberate pattern gets an
# inline suppression at its line, with a comment saying why:
#     /* cppcheck-suppress knownConditionTrueFalse ; why ... */
# The I/O layer's findings are printed but do not fail the run.
# Prints "N passed, N failed"; exit 1 on failure. No cppcheck: SKIP (exit 0),
# or a failure with WS_REQUIRE_PEERS=1 (as in CI).
set -u
cd "$(dirname "$0")/../.." || exit 2

if ! command -v cppcheck >/dev/null 2>&1; then
    echo "cppcheck: SKIP (cppcheck not installed)"
    [ "${WS_REQUIRE_PEERS:-0}" = 1 ] && exit 1
    exit 0
fi

common="--enable=warning,style,performance,portability --std=c99 \
--inline-suppr --error-exitcode=1 --quiet -Iinclude -Isrc"
passed=0
failed=0
echo "# $(cppcheck --version)"

run() {    # name, extra options...
    name=$1
    shift
    # shellcheck disable=SC2086
    if out=$(cppcheck $common "$@" src/ws_*.c 2>&1); then
        passed=$((passed + 1))
        echo "ok - core: $name"
    else
        failed=$((failed + 1))
        echo "not ok - core: $name"
        printf '%s\n' "$out" | sed 's/^/#   /'
    fi
}

run "default configuration"
run "WS_OPENSSL=1" -DWS_OPENSSL=1
run "32-bit (unix32)" --platform=unix32

# The I/O layer: report only.
# shellcheck disable=SC2086
io=$(cppcheck $common src/io/*.c 2>&1)
if [ -n "$io" ]; then
    echo "# src/io (report only, not counted):"
    printf '%s\n' "$io" | sed 's/^/#   /'
else
    echo "# src/io: no findings"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
