#!/bin/sh
# Node interop tests: the `ws` package against echo_server and wscat
# (node/ws_interop.mjs), then headless Chromium against echo_server
# (browser_test.mjs).
#
#   tests/interop/run_node_tests.sh [BUILD_DIR]     (default: build)
#
# Needs node >= 20 and `npm ci --prefix tests/interop/node`; the browser
# part also needs /usr/bin/chromium (Debian package chromium). Whatever is
# missing prints "# SKIP ..." and passes, unless WS_REQUIRE_PEERS=1, when
# it fails. Exit status: 1 if any script failed.
set -u
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
here=$(cd "$here" && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac

status=0
skip() {
    if [ "${WS_REQUIRE_PEERS:-0}" = 1 ]; then
        echo "not ok - $1 (WS_REQUIRE_PEERS=1)"
        status=1
    else
        echo "# SKIP $1"
    fi
}

# Each script bounds itself at 60 s; this is the backstop.
run() {
    echo "# node $*"
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 5 90 node "$@" || status=1
    else
        node "$@" || status=1
    fi
}

if ! command -v node >/dev/null 2>&1; then
    skip "node not installed: Node interop and browser tests skipped"
    exit $status
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
    skip "node $(node --version) is older than 20: Node interop and browser tests skipped"
    exit $status
fi
if [ ! -d "$here/node/node_modules/ws" ] || [ ! -d "$here/node/node_modules/playwright-core" ]; then
    skip "tests/interop/node/node_modules missing (npm ci --prefix tests/interop/node): Node interop and browser tests skipped"
    exit $status
fi

run "$here/node/ws_interop.mjs" "$build"
# browser_test.mjs prints its own SKIP when chromium is missing.
run "$here/browser_test.mjs" "$build"

if [ $status -eq 0 ]; then
    echo "# node interop: all passed"
else
    echo "# node interop: FAILED"
fi
exit $status
