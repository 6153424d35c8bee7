#!/usr/bin/env python3
"""Scale client for tests/bench/scale.sh: hold N idle WebSocket connections
to one server, then check that every one of them still answers.

  scale_client.py --port PORT --pid SERVER_PID [-n 100000]
                  [--src-base 127.0.0.2] [--src-count K] [--window 256]
                  [--sigterm] [--open-timeout 120] [--echo-timeout 60]
                  [--close-timeout 30]

Python standard library only: raw non-blocking sockets, one epoll.

1. Open: N TCP connections to 127.0.0.1:PORT, from source addresses
   SRC_BASE, SRC_BASE+1, ... (K of them, round robin, so that no source
   address needs more than N/K ephemeral ports), at most WINDOW connects
   and handshakes in flight (the server's listen backlog is 511). Each sends
   an Upgrade request with its own random Sec-WebSocket-Key and checks the
   101 answer and its Sec-WebSocket-Accept (RFC 6455 4.2.2). Then it stays
   silent. Anything the server sends to an idle connection is an error.
2. Measure: 1 s later, the server's VmRSS (/proc/PID/status), its open
   fds (/proc/PID/fd), its CPU time, the kernel's TCP memory
   (/proc/net/sockstat) and MemAvailable.
3. Echo: every connection sends one masked text frame carrying its own
   number ("scale 0000042"); the echo must come back on that connection,
   unmasked, as exactly that frame (FIN, text, same length, same bytes) and
   nothing else. Counted as "answered".
4. Close (--sigterm): SIGTERM to the server, which closes every connection
   with 1001; each close frame is checked and answered with a masked close
   frame, then the server's TCP close is awaited. Whatever is left at the
   end is reset (SO_LINGER 0), which leaves no TIME_WAIT here.

Only loopback: the destination is 127.0.0.1, the sources are in 127/8.
Prints "key=value" lines (one per result) and exits 0 only if all N opened
and all N answered.
"""
import argparse
import base64
import errno
import hashlib
import ipaddress
import os
import resource
import select
import signal
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
LINGER0 = struct.pack("ii", 1, 0)

CONNECTING, HANDSHAKE, OPEN, ECHO, ANSWERED, CLOSING, DONE, FAILED = range(8)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def nfds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return -1.0
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tcp_mem_kib():
    """Kernel TCP buffer memory (all sockets), /proc/net/sockstat, KiB."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    w = line.split()
                    return int(w[w.index("mem") + 1]) * os.sysconf(
                        "SC_PAGE_SIZE") // 1024
    except (OSError, ValueError):
        pass
    return -1


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return -1


def mask_frame(opcode, payload):
    """One final client frame (RFC 6455 5.2, 5.3), payload <= 125 bytes."""
    assert len(payload) <= 125
    key = os.urandom(4)
    k = int.from_bytes(key * ((len(payload) + 3) // 4), "big")
    k >>= 8 * (-len(payload) % 4)
    masked = (int.from_bytes(payload, "big") ^ k).to_bytes(len(payload),
                                                           "big")
    return bytes((0x80 | opcode, 0x80 | len(payload))) + key + masked


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--src-base", default="127.0.0.2")
    ap.add_argument("--src-count", type=int, default=0,
                    help="source addresses (default: one per 10,000)")
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--sigterm", action="store_true")
    ap.add_argument("--open-timeout", type=float, default=120)
    ap.add_argument("--echo-timeout", type=float, default=60)
    ap.add_argument("--close-timeout", type=float, default=30)
    a = ap.parse_args()

    n = a.n
    nsrc = a.src_count or max(1, (n + 9999) // 10000)
    src0 = ipaddress.IPv4Address(a.src_base)
    srcs = [str(src0 + k) for k in range(nsrc)]
    loop = ipaddress.ip_network("127.0.0.0/8")
    if not all(ipaddress.IPv4Address(s) in loop for s in srcs):
        sys.exit("scale_client: source addresses must stay in 127.0.0.0/8")
    dst = ("127.0.0.1", a.port)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n + 8:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < n + 8:
        sys.exit(f"scale_client: open-files limit {soft} < {n + 8}")

    def out(k, v):
        print(f"{k}={v}", flush=True)

    socks = [None] * n
    state = [CONNECTING] * n
    bufs = [b""] * n
    accept = [None] * n
    fdmap = {}
    ep = select.epoll()
    errors = {}

    def err(i, what):
        errors[what] = errors.get(what, 0) + 1
        if sum(errors.values()) <= 5:
            print(f"scale_client: conn {i}: {what}", file=sys.stderr,
                  flush=True)

    def drop(i, rst=True):
        s = socks[i]
        if s is None:
            return
        fd = s.fileno()
        try:
            ep.unregister(fd)
        except (OSError, ValueError):
            pass
        fdmap.pop(fd, None)
        if rst:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            except OSError:
                pass
        s.close()
        socks[i] = None

    def fail(i, what):
        err(i, what)
        state[i] = FAILED
        drop(i)

    def start(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks[i] = s
        s.setblocking(False)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass
        try:
            s.bind((srcs[i % nsrc], 0))
            rc = s.connect_ex(dst)
        except OSError as e:
            fail(i, f"connect: {e.strerror}")
            return False
        if rc not in (0, errno.EINPROGRESS):
            fail(i, f"connect: {os.strerror(rc)}")
            return False
        fdmap[s.fileno()] = i
        ep.register(s.fileno(), select.EPOLLOUT)
        return True

    def recv(i):
        """Append what is readable to bufs[i]; False on EOF or error."""
        try:
            d = socks[i].recv(65536)
        except BlockingIOError:
            return True
        except OSError as e:
            err(i, f"recv: {e.strerror}")
            return False
        if not d:
            return False
        bufs[i] += d
        return True

    # ---- 1. open ------------------------------------------------------------
    rss0 = rss_kib(a.pid)
    fds0 = nfds(a.pid)
    tcp0 = tcp_mem_kib()
    avail0 = mem_available_kib()
    cpu0 = cpu_s(a.pid)
    out("server_rss_before_kib", rss0)
    out("server_fds_before", fds0)
    host = f"127.0.0.1:{a.port}"
    t0 = time.monotonic()
    deadline = t0 + a.open_timeout
    started = inflight = opened = 0
    while True:
        while started < n and inflight < a.window:
            if start(started):
                inflight += 1
            started += 1
        if inflight == 0 and started >= n:
            break
        if time.monotonic() > deadline:
            out("open_timed_out", 1)
            break
        for fd, ev in ep.poll(1.0, 1024):
            i = fdmap[fd]
            s = socks[i]
            if state[i] == CONNECTING:
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    fail(i, f"connect: {os.strerror(e)}")
                    inflight -= 1
                    continue
                raw = os.urandom(16)
                key = base64.b64encode(raw)
                accept[i] = base64.b64encode(hashlib.sha1(key + GUID).digest())
                req = (b"GET /scale HTTP/1.1\r\nHost: " + host.encode() +
                       b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: " + key +
                       b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
                try:
                    sent = s.send(req)
                except OSError as ex:
                    sent = -1
                    err(i, f"send: {ex.strerror}")
                if sent != len(req):
                    fail(i, "request not sent whole")
                    inflight -= 1
                    continue
                state[i] = HANDSHAKE
                ep.modify(fd, select.EPOLLIN)
            elif state[i] == HANDSHAKE:
                if not recv(i):
                    fail(i, "closed during the handshake")
                    inflight -= 1
                    continue
                b = bufs[i]
                end = b.find(b"\r\n\r\n")
                if end < 0:
                    if len(b) > 4096:
                        fail(i, "handshake answer too long")
                        inflight -= 1
                    continue
                lines = b[:end].split(b"\r\n")
                hdr = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(b":")
                    hdr[k.strip().lower()] = v.strip()
                inflight -= 1
                if not lines[0].startswith(b"HTTP/1.1 101 "):
                    fail(i, "not 101: " + lines[0][:60].decode("latin-1"))
                elif hdr.get(b"sec-websocket-accept") != accept[i]:
                    fail(i, "wrong Sec-WebSocket-Accept")
                elif len(b) > end + 4:
                    fail(i, "data after the 101")
                else:
                    state[i] = OPEN
                    bufs[i] = b""
                    accept[i] = None
                    opened += 1
            else:                          # OPEN: the server must be silent
                recv(i)
                fail(i, "idle connection got data or was closed")
                opened -= 1
    t_open = time.monotonic() - t0
    cpu_open = cpu_s(a.pid) - cpu0
    out("opened", opened)
    out("open_seconds", f"{t_open:.2f}")
    out("open_per_second", f"{opened / t_open:.0f}" if t_open > 0 else 0)
    out("server_cpu_open_s", f"{cpu_open:.2f}")

    time.sleep(1.0)                        # lazy allocations, stray data
    for fd, ev in ep.poll(0, 4096):
        i = fdmap[fd]
        if state[i] == OPEN:
            recv(i)
            fail(i, "idle connection got data or was closed")
            opened -= 1
    rss1 = rss_kib(a.pid)
    fds1 = nfds(a.pid)
    tcp1 = tcp_mem_kib()
    avail1 = mem_available_kib()
    out("open_after_1s", opened)
    out("server_rss_open_kib", rss1)
    out("server_fds_open", fds1)
    if opened:
        out("server_rss_per_conn_kib", f"{(rss1 - rss0) / opened:.3f}")
    out("kernel_tcp_mem_delta_kib", tcp1 - tcp0)
    out("mem_available_drop_kib", avail0 - avail1)
    if opened:
        out("mem_available_drop_per_conn_kib",
            f"{(avail0 - avail1) / opened:.2f}")

    # ---- 3. echo on every connection ----------------------------------------
    t1 = time.monotonic()
    deadline = t1 + a.echo_timeout
    expect = {}
    answered = 0
    pending = 0

    def on_echo_readable(i):
        nonlocal answered, pending
        ok = recv(i)
        b, want = bufs[i], expect[i]
        if len(b) >= len(want) or not ok:
            pending -= 1
            del expect[i]
            if b == want:
                state[i] = ANSWERED
                bufs[i] = b""
                answered += 1
            elif not ok and want.startswith(b):
                fail(i, "closed before the echo")
            else:
                fail(i, f"wrong echo {b[:24]!r}, expected {want!r}")
        elif not want.startswith(b):
            pending -= 1
            del expect[i]
            fail(i, f"wrong echo {b[:24]!r}, expected {want!r}")

    def poll_echo(timeout):
        for fd, ev in ep.poll(timeout, 4096):
            i = fdmap[fd]
            if state[i] == ECHO:
                on_echo_readable(i)
            else:
                recv(i)
                fail(i, "data or close on a connection not sending")

    for i in range(n):
        if state[i] != OPEN:
            continue
        payload = b"scale %07d" % i
        frame = mask_frame(0x1, payload)
        try:
            sent = socks[i].send(frame)
        except OSError as ex:
            sent = -1
            err(i, f"send: {ex.strerror}")
        if sent != len(frame):
            fail(i, "frame not sent whole")
            continue
        expect[i] = bytes((0x81, len(payload))) + payload
        state[i] = ECHO
        pending += 1
        if i % 1024 == 1023:
            poll_echo(0)
    t_sent = time.monotonic() - t1
    while pending and time.monotonic() < deadline:
        poll_echo(1.0)
    if pending:
        out("echo_timed_out", pending)
        for i in list(expect):
            fail(i, "no echo in time")
    t_echo = time.monotonic() - t1
    out("answered", answered)
    out("echo_send_seconds", f"{t_sent:.2f}")
    out("echo_seconds", f"{t_echo:.2f}")
    rss2 = rss_kib(a.pid)
    out("server_rss_after_echo_kib", rss2)
    out("server_fds_after_echo", nfds(a.pid))

    # ---- 4. close -----------------------------------------------------------
    closes = clean = eof_first = 0
    if a.sigterm:
        t2 = time.monotonic()
        deadline = t2 + a.close_timeout
        os.kill(a.pid, signal.SIGTERM)
        live = sum(1 for i in range(n) if socks[i] is not None)
        while live and time.monotonic() < deadline:
            for fd, ev in ep.poll(1.0, 4096):
                i = fdmap[fd]
                ok = recv(i)
                b = bufs[i]
                if state[i] == ANSWERED and len(b) >= 2:
                    ln = b[1] & 0x7f
                    if b[0] != 0x88 or b[1] & 0x80 or ln > 125 or ln == 1:
                        fail(i, f"not a close frame: {b[:16]!r}")
                        live -= 1
                        continue
                    if len(b) >= 2 + ln:
                        code = struct.unpack("!H", b[2:4])[0] if ln else 1005
                        if code != 1001 or len(b) > 2 + ln:
                            err(i, f"close code {code}, {len(b)} bytes")
                        closes += 1
                        bufs[i] = b""
                        state[i] = CLOSING
                        try:
                            socks[i].send(mask_frame(0x8, b"\x03\xe9"))
                        except OSError:
                            pass
                        b = b""
                if state[i] == CLOSING and b:
                    err(i, f"data after the close frame: {b[:16]!r}")
                    bufs[i] = b = b""
                if not ok:
                    if state[i] == CLOSING:
                        clean += 1
                    elif state[i] == ANSWERED:
                        eof_first += 1
                    state[i] = DONE
                    drop(i, rst=False)
                    live -= 1
        t_close = time.monotonic() - t2
        out("close_frames_1001", closes)
        out("closed_cleanly", clean)
        out("closed_without_close_frame", eof_first)
        out("close_seconds", f"{t_close:.2f}")
    left = 0
    for i in range(n):
        if socks[i] is not None:
            left += 1
            drop(i)
    out("reset_at_end", left)
    ep.close()
    out("client_maxrss_kib",
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    if errors:
        out("errors", ";".join(f"{k}: {v}" for k, v in sorted(errors.items())))
    ok = opened == n and answered == n
    out("result", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
