#!/usr/bin/env bash
# Echo benchmark: libws against wslay, libwebsockets, Node ws and Python
# websockets, same workloads, interleaved. See tests/bench/ECHO.md.
#
#   tests/bench/run_echo.sh [--full] [--rounds N] [--markdown]
#                           [--servers "libws wslay lws node python"]
#                           [--json FILE]
#
# Quick (default): 3 rounds of 1 s per run, idle test once per server
# (about 100 s). --full: 5 rounds of 3 s, idle test every round.
# Every round runs each workload against each server in a rotated order
# (A B C D E, then B C D E A, ...), the server pinned to core 0
# (taskset -c 0) and echo_load to core 1. The busy workloads share one
# long-running process per server; the idle test starts a fresh one each
# time so that earlier traffic does not shape its heap. Prints medians and
# ratios against libws (>1 means libws is better); --markdown prints the
# table as Markdown for ECHO.md. A server that cannot be built or started
# is skipped with a note. B=build-dir as for make.
set -u

B=${B:-build}
ROUNDS=3
SECONDS_PER_RUN=1
WARMUP=0.2
IDLE_EVERY_ROUND=0
MARKDOWN=0
JSON_OUT=
SERVERS="libws wslay lws node python"
WORKLOADS="latency pipelined binary64k text1m"
CC=${CC:-cc}
SRV_CPU=${SRV_CPU:-0}
CLI_CPU=${CLI_CPU:-1}

while [ $# -gt 0 ]; do
    case $1 in
    --full) ROUNDS=5; SECONDS_PER_RUN=3; WARMUP=0.5; IDLE_EVERY_ROUND=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --markdown) MARKDOWN=1 ;;
    --servers) SERVERS=$2; shift ;;
    --workloads) WORKLOADS=$2; shift ;;
    --json) JSON_OUT=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_echo.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$0")/../.." || exit 2
BB=$B/bench
mkdir -p "$BB"
LOG=$BB/echo-logs
rm -rf "$LOG"
mkdir -p "$LOG"
RESULTS=$BB/echo-results.jsonl
: > "$RESULTS"
note() { echo "# $*" >&2; }

# ---- build ------------------------------------------------------------------
make -s "$B/libws.a" "$B/examples/echo_server" >&2 || exit 1
IO_LIBS="-lssl -lcrypto -lpthread"
if ! echo 'int main(void){return 0;}' | $CC -x c - -o /dev/null -lssl -lcrypto 2>/dev/null; then
    IO_LIBS="-lpthread"
fi
CFL="-std=c99 -O2 -g -Wall -Wextra -Iinclude"
if [ ! -x "$BB/echo_load" ] || [ tests/bench/echo_load.c -nt "$BB/echo_load" ] ||
   [ "$B/libws.a" -nt "$BB/echo_load" ]; then
    $CC $CFL tests/bench/echo_load.c "$B/libws.a" $IO_LIBS -o "$BB/echo_load" || exit 1
fi
build_c() {   # name src libs...
    local out=$BB/$1 src=$2; shift 2
    [ -x "$out" ] && [ "$out" -nt "$src" ] && return 0
    $CC -O2 -g -Wall -Wextra "$src" "$@" -o "$out" 2>"$LOG/build-$(basename "$out").txt"
}

PY=
for p in python3 /usr/bin/python3; do
    if $p -c 'import websockets' 2>/dev/null; then PY=$p; break; fi
done

AVAIL=
for s in $SERVERS; do
    case $s in
    libws) AVAIL="$AVAIL libws" ;;
    wslay)
        if build_c wslay_echo tests/bench/servers/wslay_echo.c -lwslay -lcrypto; then
            AVAIL="$AVAIL wslay"
        else note "SKIP wslay: cannot build (apt-get install libwslay-dev)"; fi ;;
    lws)
        if build_c lws_echo tests/bench/servers/lws_echo.c \
                $(pkg-config --cflags --libs libwebsockets 2>/dev/null || echo -lwebsockets); then
            AVAIL="$AVAIL lws"
        else note "SKIP lws: cannot build (apt-get install libwebsockets-dev)"; fi ;;
    node)
        if command -v node >/dev/null && [ -d tests/interop/node/node_modules/ws ]; then
            AVAIL="$AVAIL node"
        else note "SKIP node: node or tests/interop/node/node_modules/ws missing (npm ci --prefix tests/interop/node)"; fi ;;
    python)
        if [ -n "$PY" ]; then AVAIL="$AVAIL python"
        else note "SKIP python: no python3 with websockets (apt-get install python3-websockets)"; fi ;;
    *) note "SKIP $s: unknown server" ;;
    esac
done
read -r -a SRV <<< "$AVAIL"
[ ${#SRV[@]} -gt 0 ] || { echo "run_echo.sh: no server to run" >&2; exit 1; }

# ---- servers ------------------------------------------------------------------
free_port() {
    $CC_PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
CC_PY=${PY:-python3}

server_cmd() {   # name port
    case $1 in
    libws) echo "$B/examples/echo_server --port $2 --quiet" ;;
    wslay) echo "$BB/wslay_echo --port $2" ;;
    lws) echo "$BB/lws_echo --port $2" ;;
    node) echo "node tests/conformance/peers/node_echo.mjs --port $2" ;;
    python) echo "$PY -u tests/conformance/peers/py_echo.py --port $2" ;;
    esac
}

declare -A PID PORT
start_server() {   # name -> PID[name], PORT[name]; 1 if it did not start
    local s=$1 port out i
    port=$(free_port)
    out=$LOG/server-$s-$port.txt
    taskset -c "$SRV_CPU" $(server_cmd "$s" "$port") > "$out" 2>&1 &
    PID[$s]=$!
    PORT[$s]=$port
    for i in $(seq 100); do
        grep -q listening "$out" 2>/dev/null && return 0
        kill -0 "${PID[$s]}" 2>/dev/null || break
        sleep 0.1
    done
    note "SKIP $s: did not start ($(head -c 200 "$out"))"
    kill "${PID[$s]}" 2>/dev/null
    return 1
}
stop_server() {
    local s=$1
    [ -n "${PID[$s]:-}" ] || return 0
    kill -TERM "${PID[$s]}" 2>/dev/null
    for i in $(seq 30); do kill -0 "${PID[$s]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PID[$s]}" 2>/dev/null
    wait "${PID[$s]}" 2>/dev/null
    PID[$s]=
}
cleanup() { for s in "${SRV[@]}"; do stop_server "$s"; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# What each server is, for the table.
VERSIONS=$LOG/versions.txt
{
    echo "libws $(sed -n 's/^#define WS_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' include/ws.h | paste -sd.) ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo "wslay $(dpkg-query -W -f='${Version}' libwslay-dev 2>/dev/null || echo '?')"
    echo "lws $(dpkg-query -W -f='${Version}' libwebsockets-dev 2>/dev/null || echo '?')"
    echo "node $(node --version 2>/dev/null || echo '?') ws $(node -p "require('./tests/interop/node/node_modules/ws/package.json').version" 2>/dev/null || echo '?')"
    echo "python $($CC_PY --version 2>&1 | cut -d' ' -f2) websockets $($CC_PY -c 'import websockets; print(websockets.__version__)' 2>/dev/null || echo '?')"
    echo "cpu $(lscpu | sed -n 's/^Model name: *//p') x $(nproc)"
    echo "kernel $(uname -r)"
} > "$VERSIONS"

run_load() {   # server workload round
    local s=$1 w=$2 r=$3 line
    line=$(taskset -c "$CLI_CPU" "$BB/echo_load" --url "ws://127.0.0.1:${PORT[$s]}/" \
        --pid "${PID[$s]}" --label "$s" --workload "$w" --json \
        --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" 2>>"$LOG/load-$s.txt")
    local rc=$?
    if [ -n "$line" ]; then
        echo "${line%\}},\"round\":$r,\"rc\":$rc}" >> "$RESULTS"
    fi
    [ $rc -eq 0 ] || note "$s $w round $r: exit $rc (see $LOG/load-$s.txt)"
    printf '.' >&2
}

START=$(date +%s)
n=${#SRV[@]}
# Busy workloads: one long-lived server process each.
RUNNING=()
for s in "${SRV[@]}"; do start_server "$s" && RUNNING+=("$s"); done
for ((r = 0; r < ROUNDS; r++)); do
    wi=0
    for w in $WORKLOADS; do
        m=${#RUNNING[@]}
        for ((k = 0; k < m; k++)); do
            run_load "${RUNNING[$(( (k + r + wi) % m ))]}" "$w" "$r"
        done
        wi=$((wi + 1))
    done
done
for s in "${RUNNING[@]}"; do stop_server "$s"; done
# Idle connections: a fresh server each time.
IDLE_ROUNDS=1
[ $IDLE_EVERY_ROUND = 1 ] && IDLE_ROUNDS=$ROUNDS
for ((r = 0; r < IDLE_ROUNDS; r++)); do
    for ((k = 0; k < n; k++)); do
        s=${SRV[$(( (k + r) % n ))]}
        if start_server "$s"; then
            sleep 0.3
            run_load "$s" idle "$r"
            stop_server "$s"
        fi
    done
done
echo >&2
note "done in $(( $(date +%s) - START )) s; raw results in $RESULTS"
[ -n "$JSON_OUT" ] && cp "$RESULTS" "$JSON_OUT"

# ---- medians and ratios ---------------------------------------------------------
$CC_PY - "$RESULTS" "$VERSIONS" "$MARKDOWN" "$ROUNDS" "$SECONDS_PER_RUN" "$IDLE_ROUNDS" <<'PYEOF'
import json, statistics, sys
results, versions, markdown, rounds, secs, idle_rounds = sys.argv[1:7]
markdown = markdown == "1"
rows = [json.loads(l) for l in open(results) if l.strip()]
servers = []
for r in rows:
    if r["server"] not in servers:
        servers.append(r["server"])
def med(server, workload, key):
    v = [r[key] for r in rows if r["server"] == server and
         r["workload"] == workload and r.get("rc", 0) == 0 and
         r.get(key, -1) is not None and r.get(key, -1) >= 0]
    return statistics.median(v) if v else None
# (workload, metric, header, format, higher_is_better)
cols = [
    ("latency", "p50_us", "1 conn ping-pong 32 B: p50 us", "%.1f", False),
    ("latency", "p99_us", "p99 us", "%.1f", False),
    ("pipelined", "msgs_per_s", "100 conns x depth 8 x 32 B: msgs/s", "%.0f", True),
    ("pipelined", "srv_cpu_us_per_msg", "server CPU us/msg", "%.2f", False),
    ("binary64k", "mb_per_s", "10 conns x 64 KiB binary: MB/s", "%.0f", True),
    ("binary64k", "srv_cpu_us_per_msg", "server CPU us/msg", "%.0f", False),
    ("text1m", "mb_per_s", "1 conn x 1 MiB text: MB/s", "%.0f", True),
    ("text1m", "srv_cpu_us_per_msg", "server CPU us/msg", "%.0f", False),
    ("idle", "kib_per_conn", "10,000 idle: server KiB/conn", "%.2f", False),
]
base = "libws" if "libws" in servers else servers[0]
def cell(s, c):
    w, k, _, fmt, hib = c
    v = med(s, w, k)
    if v is None:
        return "-"
    out = fmt % v
    b = med(base, w, k)
    if s != base and b and v:
        ratio = (b / v) if hib else (v / b)
        out += " (%.2fx)" % ratio
    return out
errs = sum(1 for r in rows if r.get("rc", 0) != 0 or r.get("errors", 0))
vers = open(versions).read().strip().splitlines()
title = ("Medians of %s rounds (%s s per busy run; idle: %s round(s)). "
         "(Nx): how many times better %s is than that server "
         "(>1: %s better)." % (rounds, secs, idle_rounds, base, base))
if markdown:
    print(title)
    print()
    hdr = ["server"] + [c[2] for c in cols]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for s in servers:
        print("| " + " | ".join([s] + [cell(s, c) for c in cols]) + " |")
    print()
    print("Versions and machine: " + "; ".join(vers) + ".")
    if errs:
        print()
        print("**%d run(s) reported errors** (see the raw results)." % errs)
else:
    print(title)
    for w in ["latency", "pipelined", "binary64k", "text1m", "idle"]:
        cs = [c for c in cols if c[0] == w]
        if not any(med(s, w, cs[0][1]) is not None for s in servers):
            continue
        print()
        print("%-8s" % "server" + "".join("%32s" % c[2][-31:] for c in cs))
        for s in servers:
            print("%-8s" % s + "".join("%32s" % cell(s, c) for c in cs))
    print()
    for v in vers:
        print("  " + v)
    if errs:
        print("\n%d run(s) reported errors: see %s" % (errs, results))
        sys.exit(1)
PYEOF
