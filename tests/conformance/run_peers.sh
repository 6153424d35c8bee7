#!/bin/sh
# The conformance runner against other implementations, as a check on the
# runner itself: Python websockets and Node ws, as servers (full or quick
# set) and as clients (the quick set without the 6.x +frag/+chop/+split
# variants: a client process starts per case). Each run passes when every
# case gets the verdict that peers/websockets.expect or peers/ws.expect
# lists (OK when not listed); PEERS.md explains every line. The four runs
# go in parallel.
#
#   tests/conformance/run_peers.sh [--full]
#
# A missing peer prints "# SKIP ..." and passes, unless WS_REQUIRE_PEERS=1,
# when it fails. Output: each run's report, then "N passed, N failed" (one
# per run). Exit status: 1 if any run failed.
set -u
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
here=$(cd "$here" && pwd)
full=
[ "${1:-}" = --full ] && full=--full
runner="${PYTHON:-python3} $here/conformance.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

skip() {
    if [ "${WS_REQUIRE_PEERS:-0}" = 1 ]; then
        echo "not ok - $1 (WS_REQUIRE_PEERS=1)"
        status=1
    else
        echo "# SKIP $1"
    fi
}

# Python websockets: the first interpreter that has it.
py=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if "$p" -c 'import websockets' 2>/dev/null; then py=$p; break; fi
done
node_ok=0
if command -v node >/dev/null 2>&1 &&
   [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ] &&
   [ -d "$here/../interop/node/node_modules/ws" ]; then
    node_ok=1
fi

client_skip='6.*+frag,6.*+chop,6.*+split'
jobs=
if [ -n "$py" ]; then
    $runner server $full --label websockets --failfast-wait 0.5 -q \
        --cmd "$py $here/peers/py_echo.py --port {port}" \
        --expect "$here/peers/websockets.expect" > "$tmp/1" 2>&1 &
    jobs="$jobs $!:1"
    $runner client --label websockets-client --failfast-wait 0.5 -q \
        --skip "$client_skip" \
        --cmd "$py $here/peers/py_client_echo.py {url}" \
        --expect "$here/peers/websockets.expect" > "$tmp/2" 2>&1 &
    jobs="$jobs $!:2"
else
    skip "python websockets not installed: conformance peers websockets skipped"
fi
if [ $node_ok = 1 ]; then
    $runner server $full --label ws --failfast-wait 0.5 -q \
        --cmd "node $here/peers/node_echo.mjs --port {port}" \
        --expect "$here/peers/ws.expect" > "$tmp/3" 2>&1 &
    jobs="$jobs $!:3"
    $runner client --label ws-client --failfast-wait 0.5 -q \
        --skip "$client_skip" \
        --cmd "node $here/peers/node_client_echo.mjs {url}" \
        --expect "$here/peers/ws.expect" > "$tmp/4" 2>&1 &
    jobs="$jobs $!:4"
else
    skip "node >= 20 or tests/interop/node/node_modules/ws missing (npm ci --prefix tests/interop/node): conformance peers ws skipped"
fi
for j in $jobs; do
    pid=${j%:*}
    wait "$pid" || status=1
    cat "$tmp/${j#*:}"
done
if [ $status -eq 0 ]; then
    echo "# conformance peers: every verdict as expected"
else
    echo "# conformance peers: FAILED"
fi
exit $status
