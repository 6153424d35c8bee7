#!/usr/bin/env bash
# Scale: N (default 100,000) concurrent idle WebSocket connections held by
# one examples/echo_server process, each still answering at the end.
# A documented, bounded run on loopback, not part of CI. See
# tests/bench/ECHO.md, "Scale: 100,000 idle connections".
#
#   tests/bench/scale.sh [N]          B=build-dir as for make
#
# 1. Limits: each process needs N + 16 open files (one per connection, a
#    few of its own). Raises the open-files hard limit to
#    /proc/sys/fs/nr_open if it is lower (needs CAP_SYS_RESOURCE, which
#    root in some containers lacks: then it stops and prints the largest N
#    the limit allows), the soft limit to the hard one, and checks
#    fs.file-max against 2N + 1,000 (both ends of every connection are on
#    this machine). Changes no sysctl: the
#    client spreads its connections over the source addresses
#    127.0.0.2, 127.0.0.3, ... (one per 10,000 connections), so no source
#    address needs more ephemeral ports than net.ipv4.ip_local_port_range
#    has.
# 2. Starts build/examples/echo_server --quiet --port 0 (it raises its own
#    soft limit to the hard limit it inherits).
# 3. tests/bench/scale_client.py (Python standard library, one epoll):
#    opens N connections (at most 256 handshakes in flight), checks every
#    101 and Sec-WebSocket-Accept, records the server's VmRSS and fd count
#    before and 1 s after, then sends one masked text frame on every
#    connection and checks every echo, then sends SIGTERM to the server
#    and answers its close frames (1001).
# 4. The server must exit 0 (it closes what is left after 2 s).
#
# Bounded: open 120 s, echo 60 s, close 30 s, the client as a whole 270 s,
# the server's exit 20 s after the client; the server is killed (by its
# PID) on any failure or interrupt. Exit status 0 only if all N opened,
# all N answered and the server exited 0. Raw output: build/bench/scale.log.
set -u

N=${1:-100000}
case $N in ''|*[!0-9]*) echo "usage: scale.sh [N]" >&2; exit 2 ;; esac
[ "$N" -gt 0 ] || { echo "usage: scale.sh [N]" >&2; exit 2; }

cd "$(dirname "$0")/../.." || exit 2
B=${B:-build}
PY=${PYTHON:-python3}
mkdir -p "$B/bench"
LOG=$B/bench/scale.log
SRV_OUT=$B/bench/scale-server.out
SRV_ERR=$B/bench/scale-server.err
CLI_OUT=$B/bench/scale-client.out
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }

# ---- limits -----------------------------------------------------------------
NEED=$((N + 16))
NR_OPEN=$(cat /proc/sys/fs/nr_open)
FILE_MAX=$(cat /proc/sys/fs/file-max)
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$NEED" ]; then
    if [ "$NR_OPEN" -lt "$NEED" ]; then
        echo "scale.sh: fs.nr_open is $NR_OPEN, N=$N needs $NEED" >&2
        exit 2
    fi
    ulimit -Hn "$NR_OPEN" 2>/dev/null || {
        echo "scale.sh: cannot raise the open-files hard limit ($HARD) to" \
             "$NR_OPEN: needs CAP_SYS_RESOURCE (not in this process's" \
             "capability bounding set?); N=$N needs $NEED; the largest N" \
             "under this limit is $((HARD - 16))" >&2
        exit 2
    }
fi
ulimit -n "$(ulimit -Hn)" || exit 2
if [ "$FILE_MAX" -lt $((2 * N + 1000)) ]; then
    echo "scale.sh: fs.file-max is $FILE_MAX, N=$N needs $((2 * N + 1000))" >&2
    exit 2
fi
read -r PLO PHI < /proc/sys/net/ipv4/ip_local_port_range
PORTS=$((PHI - PLO + 1))
if [ "$PORTS" -le 11000 ]; then
    echo "scale.sh: ip_local_port_range $PLO-$PHI is too small for 10,000" \
         "connections per source address" >&2
    exit 2
fi
SRC_COUNT=$(( (N + 9999) / 10000 ))
if [ "$SRC_COUNT" -gt 250 ]; then
    echo "scale.sh: N=$N needs more than 127.0.0.2-127.0.0.251" >&2
    exit 2
fi

# ---- build ------------------------------------------------------------------
make -s "$B/examples/echo_server" >&2 || exit 1
$PY -c 'import select; select.epoll' 2>/dev/null || {
    echo "scale.sh: needs python3 with select.epoll (Linux)" >&2; exit 1; }

# ---- machine facts ----------------------------------------------------------
{
    echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), libws $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src include 2>/dev/null || echo ' (+ local changes)')"
    echo "# kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(awk '/MemAvailable/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) available"
    echo "# open files: soft $(ulimit -n), hard $(ulimit -Hn); fs.nr_open $NR_OPEN; fs.file-max $FILE_MAX; fs.file-nr $(tr '\t' ' ' < /proc/sys/fs/file-nr)"
    echo "# ip_local_port_range $PLO-$PHI; somaxconn $(cat /proc/sys/net/core/somaxconn); tcp_mem $(tr '\t' ' ' < /proc/sys/net/ipv4/tcp_mem) pages; $($PY --version 2>&1)"
    echo "# N=$N from 127.0.0.2-127.0.0.$((1 + SRC_COUNT)) ($SRC_COUNT source addresses) to 127.0.0.1"
} | tee -a "$LOG"

# ---- server -----------------------------------------------------------------
SPID=
CPID=
alive() {                           # our server, not yet exited
    ST=$(awk '{print $3}' "/proc/$SPID/stat" 2>/dev/null)
    [ -n "$ST" ] && [ "$ST" != Z ]
}
cleanup() {
    if [ -n "$CPID" ]; then
        kill -TERM "$CPID" 2>/dev/null     # timeout passes it on
        wait "$CPID" 2>/dev/null
        cat "$CLI_OUT" >&2
    fi
    if [ -n "$SPID" ] && alive; then
        kill -TERM "$SPID" 2>/dev/null
        for _ in $(seq 50); do alive || break; sleep 0.1; done
        alive && kill -KILL "$SPID"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

: > "$SRV_OUT"                       # before the fork: no stale port
"$B/examples/echo_server" --quiet --port 0 > "$SRV_OUT" 2> "$SRV_ERR" &
SPID=$!
PORT=
for _ in $(seq 50); do
    PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$SRV_OUT")
    [ -n "$PORT" ] && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    echo "scale.sh: echo_server did not start:" >&2
    cat "$SRV_ERR" >&2
    exit 1
fi
say "# echo_server pid $SPID on 127.0.0.1:$PORT," \
    "open files limit $(awk '/Max open files/ {print $4 "/" $5}' /proc/$SPID/limits)"

# ---- client -----------------------------------------------------------------
# In the background, so that an interrupt is not deferred until it ends.
T0=$(date +%s.%N)
timeout -k 5 270 $PY tests/bench/scale_client.py --port "$PORT" --pid "$SPID" \
    -n "$N" --src-count "$SRC_COUNT" --sigterm > "$CLI_OUT" 2>&1 &
CPID=$!
wait "$CPID"
CRC=$?
CPID=
tee -a "$LOG" < "$CLI_OUT"

# ---- the server's exit ------------------------------------------------------
# The client sent SIGTERM; the server closes what is left after 2 s. Our
# child stays a zombie until bash reaps it: either way it has exited.
for _ in $(seq 200); do alive || break; sleep 0.1; done      # 20 s
if alive; then
    say "# server still running 20 s after the client: SIGTERM"
    kill -TERM "$SPID"
    for _ in $(seq 50); do alive || break; sleep 0.1; done
    alive && { say "# server ignored SIGTERM: killed"; kill -KILL "$SPID"; }
fi
wait "$SPID"
SRC=$?
SPID=
T1=$(date +%s.%N)
say "server_exit=$SRC"
say "client_exit=$CRC"
say "total_seconds=$(awk "BEGIN {printf \"%.1f\", $T1 - $T0}")"
if [ -s "$SRV_ERR" ]; then
    say "# server stderr:"
    head -20 "$SRV_ERR" | tee -a "$LOG"
fi

get() { sed -n "s/^$1=//p" "$LOG" | tail -1; }
OPENED=$(get opened)
ANSWERED=$(get answered)
echo
echo "N=$N opened=${OPENED:-?} answered=${ANSWERED:-?}" \
     "open=$(get open_seconds)s" \
     "server_rss=$(get server_rss_before_kib)->$(get server_rss_open_kib) KiB" \
     "($(get server_rss_per_conn_kib) KiB/conn)" \
     "server_fds=$(get server_fds_open) server_exit=$SRC"
if [ "$CRC" = 0 ] && [ "$SRC" = 0 ] && [ "$OPENED" = "$N" ] &&
   [ "$ANSWERED" = "$N" ]; then
    echo "scale.sh: PASS"
    exit 0
fi
echo "scale.sh: FAIL (see $LOG)"
exit 1
