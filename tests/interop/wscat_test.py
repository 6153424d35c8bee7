#!/usr/bin/env python3
"""Black-box tests of examples/wscat, the command-line client.

Usage: wscat_test.py WSCAT ECHO_SERVER

Part 1 runs wscat against ECHO_SERVER (libws) over a free port: stdin lines
echo back in order (multi-byte UTF-8, a 200 KB line, an empty line, a last
line without a newline), --binary/--raw, --send/--count/--no-stdin,
--subprotocol (echo_server selects none), --close CODE REASON and the exit
status mapping, invalid UTF-8 on stdin, and wss:// when the build has TLS.
Part 2 uses fake servers written here with the standard library only, so
every byte is independent of libws: a 101 answer computed with
hashlib/base64 (checks --header, --origin, --subprotocol on the wire, the
client's masking, server-initiated close codes, --ping), a 403 answer, a
bad Sec-WebSocket-Accept, a TCP close without a close frame, a closed port,
bad URLs and usage errors.
Part 3 uses the Python `websockets` package as a real peer (client-role
interop of --echo with 20 messages up to 1 MiB, and subprotocol
negotiation); if it is missing it prints SKIP (a failure when
WS_REQUIRE_PEERS=1).

WSCAT_PREFIX (e.g. "valgrind -q --error-exitcode=99") runs wscat under a
wrapper; timeouts are then multiplied by 10.
Output: TAP, then "N passed, N failed"; exit 1 on any failure.
"""
import asyncio
import base64
import hashlib
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PREFIX = shlex.split(os.environ.get("WSCAT_PREFIX", ""))
SCALE = 10 if PREFIX else 1
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    n = len(results)
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, name))
    if not cond and detail:
        print("#   " + str(detail).replace("\n", "\n#   ")[:2000])
    sys.stdout.flush()


def skip(name, why):
    results.append(True)
    print("ok %d - %s # SKIP %s" % (len(results), name, why))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Run:
    """One finished wscat run."""

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "rc=%r\nstdout=%r\nstderr=%r" % (self.rc, self.out[:300],
                                                  self.err[:600])


def wscat(args, stdin=b"", timeout=10):
    """Run wscat with args; stdin bytes (None: /dev/null). Never hangs."""
    cmd = PREFIX + [WSCAT] + args
    try:
        p = subprocess.run(cmd, input=stdin if stdin is not None else None,
                           stdin=subprocess.DEVNULL if stdin is None else None,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout * SCALE)
    except subprocess.TimeoutExpired as e:
        return Run("timeout", e.stdout or b"", e.stderr or b"")
    return Run(p.returncode, p.stdout, p.stderr)


def start_echo_server(extra=()):
    """Start echo_server on a free port; returns (process, port)."""
    for _ in range(5):
        port = free_port()
        p = subprocess.Popen([ECHO, "--port", str(port), "--quiet"] +
                             list(extra), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        line = read_line_with_timeout(p.stdout, 5)
        if line.startswith(b"listening"):
            return p, port
        stop_process(p)
    return None, None


def read_line_with_timeout(f, timeout):
    box = []
    t = threading.Thread(target=lambda: box.append(f.readline()),
                         daemon=True)
    t.start()
    t.join(timeout)
    return box[0] if box else b""


def stop_process(p):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)


# ---------------------------------------------------------------------------
# A fake server: raw RFC 6455 bytes with the standard library only.
# ---------------------------------------------------------------------------

def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def server_frame(opcode, payload, fin=True):
    """RFC 6455 5.2: a server frame, never masked (5.1)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def read_client_frame(s):
    """Returns (opcode, payload, masked)."""
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    masked = bool(b1 & 0x80)
    key = recv_exact(s, 4) if masked else b"\0\0\0\0"
    data = recv_exact(s, n)
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, payload, masked


def parse_request(raw):
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], headers


class FakeServer:
    """Accepts one connection on a free port and runs scenario(sock, state)
    in a thread after reading the request (state["request"] holds the
    request line and headers)."""

    def __init__(self, scenario):
        self.scenario = scenario
        self.state = {"errors": []}
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.lsock.settimeout(10 * SCALE)
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            s, _ = self.lsock.accept()
        except OSError as e:
            self.state["errors"].append("accept: %s" % e)
            return
        s.settimeout(10 * SCALE)
        try:
            raw = b""
            while b"\r\n\r\n" not in raw:
                chunk = s.recv(4096)
                if not chunk:
                    raise EOFError("no request")
                raw += chunk
            self.state["raw"] = raw
            self.state["request"] = parse_request(raw.split(b"\r\n\r\n")[0])
            self.scenario(s, self.state)
        except Exception as e:  # reported by the test that reads state
            self.state["errors"].append("%s: %s" % (type(e).__name__, e))
        finally:
            s.close()
            self.lsock.close()

    def join(self):
        self.thread.join(10 * SCALE)
        return self.state


def accept_value(state):
    key = state["request"][1].get("sec-websocket-key", [""])[0]
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())


def answer_101(s, state, protocol=None):
    resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
            accept_value(state) + b"\r\n")
    if protocol:
        resp += b"Sec-WebSocket-Protocol: " + protocol.encode() + b"\r\n"
    s.sendall(resp + b"\r\n")


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def finish_close(s, state):
    """Wait for the client's close frame (skipping other frames), then
    close TCP as a server does first (RFC 6455 7.1.1)."""
    while True:
        op, payload, masked = read_client_frame(s)
        state.setdefault("frames", []).append((op, payload, masked))
        if op == 0x8:
            return payload


# ---------------------------------------------------------------------------
# Part 1: against echo_server
# ---------------------------------------------------------------------------

def part1():
    srv, port = start_echo_server()
    if srv is None:
        check("echo_server starts", False)
        return
    url = "ws://127.0.0.1:%d/echo" % port
    try:
        lines = ["hello", "wörld € 😀 ünïcødé", "", "x" * 200000,
                 "tab\there"]
        data = ("\n".join(lines) + "\nlast line, no newline").encode()
        r = wscat([url], data, timeout=20)
        want = ("\n".join(lines) + "\nlast line, no newline\n").encode()
        check("stdin lines echo back in order (UTF-8, 200 KB, empty, "
              "unterminated last line)", r.rc == 0 and r.out == want, r)
        check("status lines: connected and closed: 1000",
              b"connected to " + url.encode() in r.err and
              b"closed: 1000" in r.err, r)

        r = wscat(["-q", url], b"one\ntwo\n")
        check("--quiet: no status lines", r.rc == 0 and r.err == b"" and
              r.out == b"one\ntwo\n", r)

        r = wscat([url], None)
        check("empty stdin: closes 1000 at once, exit 0",
              r.rc == 0 and r.out == b"", r)

        blines = [b"ab", b"\x00\x01\xfe\xff", b"", b"caf\xc3\xa9"]
        r = wscat(["--binary", "-q", url], b"\n".join(blines) + b"\n")
        want = b"".join(x.hex().encode() + b"\n" for x in blines)
        check("--binary round trip, printed as hex", r.rc == 0 and
              r.out == want, r)

        r = wscat(["--binary", "--raw", "-q", url],
                  b"\n".join(blines) + b"\n")
        check("--binary --raw: raw bytes back", r.rc == 0 and
              r.out == b"".join(blines), r)

        r = wscat(["-q", url], b"good1\n\xff\xfebad\ngood2\n")
        check("invalid UTF-8 line: error on stderr, the others still sent",
              r.rc == 0 and r.out == b"good1\ngood2\n" and
              b"not valid UTF-8" in r.err, r)

        r = wscat(["--subprotocol", "chat", "--subprotocol", "superchat",
                   url], b"sub\n")
        check("--subprotocol against a server that selects none: "
              "'protocol: none', still works",
              r.rc == 0 and r.out == b"sub\n" and
              b"protocol: none" in r.err, r)

        r = wscat(["--close", "4000", "bye", url], b"x\n")
        check("--close 4000 bye at EOF -> exit 20, 'closed: 4000'",
              r.rc == 20 and b"closed: 4000" in r.err and r.out == b"x\n", r)
        r = wscat(["--close", "1001", url], b"")
        check("--close 1001 -> exit 4 (code - 997)", r.rc == 4, r)
        r = wscat(["--close", "1011", "-q", url], b"")
        check("--close 1011 -> exit 14", r.rc == 14, r)

        r = wscat(["--send", "a", "--send", "b", "--send", "c", "--count",
                   "2", "--no-stdin", "-q", url], None)
        check("--send x3 --count 2 --no-stdin: prints 2 messages, exit 0",
              r.rc == 0 and r.out == b"a\nb\n", r)

        r = wscat(["--binary", "--send", "\u00e9", "--count", "1",
                   "--no-stdin", "-q", url], None)
        check("--send with --binary sends binary", r.rc == 0 and
              r.out == b"c3a9\n", r)

        r = wscat(["--count", "3", "-q", url],
                  b"".join(b"m%d\n" % i for i in range(10)))
        check("--count 3 with more stdin: exit 0 after 3",
              r.rc == 0 and r.out == b"m0\nm1\nm2\n", r)

        r = wscat(["--ping", "0.1", "-q", url], None)
        check("--ping accepted (echo_server answers pings)", r.rc == 0, r)

        # The connection ends while stdin is still open: the reader thread
        # must not keep the process alive.
        p = subprocess.Popen(PREFIX + [WSCAT, "--count", "1", "-q", url],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdin.write(b"first\n")
        p.stdin.flush()
        try:
            out, err = p.communicate(timeout=5 * SCALE)
            r = Run(p.returncode, out, err)
        except subprocess.TimeoutExpired:
            p.kill()
            r = Run("timeout", b"", p.communicate()[1])
        check("--count 1 with stdin still open: exits at once",
              r.rc == 0 and r.out == b"first\n", r)

        # SIGINT: close 1001 (going away), exit 4.
        p = subprocess.Popen(PREFIX + [WSCAT, url], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(b"before signal\n")
        p.stdin.flush()
        line = read_line_with_timeout(p.stdout, 5 * SCALE)
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=5 * SCALE)
            r = Run(p.returncode, line + out, err)
        except subprocess.TimeoutExpired:
            p.kill()
            r = Run("timeout", line, p.communicate()[1])
        check("SIGINT: closes 1001, exit 4", r.rc == 4 and
              r.out == b"before signal\n" and b"closed: 1001" in r.err, r)

        # 12 MB through echo_server, faster than it can echo: both sides
        # queue up. wscat must keep reading replies while it throttles
        # stdin (pausing reads on high water as well would deadlock).
        bulk = b"".join(b"%07d" % i + b"y" * 992 + b"\n"
                        for i in range(12000))
        r = wscat(["-q", url], bulk, timeout=60)
        check("12 MB of 1 KB lines against an echoing server: no deadlock, "
              "all back in order", r.rc == 0 and r.out == bulk,
              "rc=%r len(out)=%d err=%r" % (r.rc, len(r.out), r.err[:300]))

        # Many lines at once: the reader must not lose or reorder any.
        many = b"".join(b"line %05d\n" % i for i in range(20000))
        r = wscat(["-q", url], many, timeout=30)
        check("20000 lines in order", r.rc == 0 and r.out == many,
              "rc=%r len(out)=%d err=%r" % (r.rc, len(r.out), r.err[:300]))
    finally:
        stop_process(srv)
    tls_tests()


def tls_tests():
    gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "io", "gen_cert.sh")
    if not os.path.exists(gen) or shutil.which("openssl") is None:
        skip("wss://", "no openssl or tests/io/gen_cert.sh")
        return
    d = tempfile.mkdtemp(prefix="wscat_tls_")
    try:
        subprocess.run(["sh", gen, d], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError) as e:
        skip("wss://", "gen_cert.sh failed: %s" % e)
        return
    srv, port = start_echo_server(["--tls", os.path.join(d, "server.pem"),
                                   os.path.join(d, "server.key")])
    if srv is None:
        skip("wss://", "echo_server cannot serve TLS (built without "
             "OpenSSL?)")
        shutil.rmtree(d, ignore_errors=True)
        return
    try:
        url = "wss://localhost:%d/" % port
        ca = os.path.join(d, "ca.pem")
        r = wscat(["--ca", ca, "-q", url], b"secure \xc3\xa9\n")
        if b"without OpenSSL" in r.err:
            skip("wss://", "wscat built without OpenSSL")
            return
        check("wss:// with --ca: round trip", r.rc == 0 and
              r.out == b"secure \xc3\xa9\n", r)
        r = wscat(["-q", url], b"x\n")
        check("wss:// to an unknown CA: exit 1 with a message",
              r.rc == 1 and b"certificate" in r.err, r)
        r = wscat(["--insecure", "-q", "wss://127.0.0.1:%d/" % port],
                  b"y\n")
        check("wss:// --insecure", r.rc == 0 and r.out == b"y\n", r)
    finally:
        stop_process(srv)
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# Part 2: fake servers (standard library only)
# ---------------------------------------------------------------------------

def part2():
    # Headers on the wire, then a text and a binary frame, then close 1000.
    def hello(s, st):
        answer_101(s, st, protocol="b")
        s.sendall(server_frame(0x1, "from-fake é".encode()) +
                  server_frame(0x2, b"\x01\x02") +
                  server_frame(0x8, close_payload(1000, b"done")))
        st["close"] = finish_close(s, st)

    fs = FakeServer(hello)
    r = wscat(["--header", "X-Test: 1", "--header", "X-Other:  two words",
               "--origin", "http://example.test", "--subprotocol", "a",
               "--subprotocol", "b", "--no-stdin",
               "ws://127.0.0.1:%d/path?q=1" % fs.port], None)
    st = fs.join()
    line, hdrs = st.get("request", ("", {}))
    check("fake server: no errors", not st["errors"], st["errors"])
    check("request line carries the path and query",
          line == "GET /path?q=1 HTTP/1.1", line)
    check("--header lines are sent", hdrs.get("x-test") == ["1"] and
          hdrs.get("x-other") == ["two words"], hdrs)
    check("--origin is sent", hdrs.get("origin") == ["http://example.test"],
          hdrs)
    check("--subprotocol a, b offered", hdrs.get("sec-websocket-protocol")
          == ["a, b"], hdrs)
    check("Host header has the port", hdrs.get("host") ==
          ["127.0.0.1:%d" % fs.port], hdrs)
    check("non-libws server: text and binary printed, exit 0",
          r.rc == 0 and r.out == "from-fake é\n0102\n".encode(), r)
    check("negotiated protocol printed", b"protocol: b" in r.err, r)
    check("server-initiated close: 'closed: 1000 done'",
          b"closed: 1000 done" in r.err, r)
    check("the client answers the close with 1000, masked",
          st.get("close", b"")[:2] == b"\x03\xe8" and
          all(f[2] for f in st.get("frames", [])), st.get("frames"))

    # Server-initiated close codes map to exit codes.
    for code, want in ((1001, 4), (1008, 11), (3001, 20), (4999, 20)):
        def closer(s, st, code=code):
            answer_101(s, st)
            s.sendall(server_frame(0x8, close_payload(code, b"why")))
            finish_close(s, st)
        fs = FakeServer(closer)
        r = wscat(["--no-stdin", "ws://127.0.0.1:%d/" % fs.port], None)
        fs.join()
        check("server closes %d -> exit %d" % (code, want),
              r.rc == want and b"closed: %d why" % code in r.err, r)

    # A close frame with no code: 1005, exit 0.
    def nocode(s, st):
        answer_101(s, st)
        s.sendall(server_frame(0x8, b""))
        finish_close(s, st)
    fs = FakeServer(nocode)
    r = wscat(["--no-stdin", "ws://127.0.0.1:%d/" % fs.port], None)
    fs.join()
    check("close frame without a code (1005) -> exit 0",
          r.rc == 0 and b"closed: 1005" in r.err, r)

    # --ping: a ping frame must arrive; answer it, then close.
    def pinger(s, st):
        answer_101(s, st)
        s.settimeout(5 * SCALE)
        op, payload, masked = read_client_frame(s)
        st["ping"] = (op, payload, masked)
        s.sendall(server_frame(0xA, payload) +
                  server_frame(0x8, close_payload(1000)))
        finish_close(s, st)
    fs = FakeServer(pinger)
    t0 = time.time()
    r = wscat(["--ping", "0.3", "--no-stdin", "-q",
               "ws://127.0.0.1:%d/" % fs.port], None)
    st = fs.join()
    check("--ping 0.3 sends a masked ping after ~0.3 s of silence",
          st.get("ping", (0,))[0] == 0x9 and st["ping"][2] and
          r.rc == 0 and time.time() - t0 >= 0.25, (r, st))

    # The connection drops without a close frame: 1006, exit 1.
    def dropper(s, st):
        answer_101(s, st)
        s.sendall(server_frame(0x1, b"bye"))
        time.sleep(0.2)
    fs = FakeServer(dropper)
    r = wscat(["--no-stdin", "ws://127.0.0.1:%d/" % fs.port], None)
    fs.join()
    check("TCP closed without a close frame -> exit 1, 'closed: 1006'",
          r.rc == 1 and r.out == b"bye\n" and b"closed: 1006" in r.err, r)

    # 403: handshake refused.
    def forbid(s, st):
        s.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n"
                  b"Connection: close\r\n\r\nforbidden")
    fs = FakeServer(forbid)
    r = wscat(["ws://127.0.0.1:%d/" % fs.port], b"never\n")
    fs.join()
    check("403 answer -> exit 1 with a message",
          r.rc == 1 and b"cannot connect" in r.err and
          b"101" in r.err and r.out == b"", r)

    # A 101 with a wrong Sec-WebSocket-Accept.
    def badaccept(s, st):
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                  b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        time.sleep(0.5)
    fs = FakeServer(badaccept)
    r = wscat(["ws://127.0.0.1:%d/" % fs.port], b"never\n")
    fs.join()
    check("wrong Sec-WebSocket-Accept -> exit 1 with a message",
          r.rc == 1 and b"cannot connect" in r.err, r)

    # A server that accepts TCP but never answers: --timeout.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    t0 = time.time()
    r = wscat(["--timeout", "0.5", "ws://127.0.0.1:%d/" %
               lsock.getsockname()[1]], b"")
    lsock.close()
    check("--timeout 0.5 against a silent server -> exit 1 in time",
          r.rc == 1 and time.time() - t0 < 5 * SCALE and
          b"timeout" in r.err, r)

    r = wscat(["ws://127.0.0.1:%d/" % free_port()], b"x\n")
    check("closed port -> exit 1 with a message",
          r.rc == 1 and b"cannot connect" in r.err, r)

    for args, name in ((["http://127.0.0.1/"], "http:// URL"),
                       (["ws://"], "ws:// without a host"),
                       (["ws://h:99999999/"], "port too long"),
                       ([], "no URL"),
                       (["--bogus", "ws://h/"], "unknown option"),
                       (["--count"], "--count without a value"),
                       (["--count", "0", "ws://h/"], "--count 0"),
                       (["--close", "1005", "ws://h/"], "--close 1005"),
                       (["--close", "999", "ws://h/"], "--close 999"),
                       (["--header", "NoColon", "ws://h/"], "bad header"),
                       (["--header", "X: a\r\nY: b", "ws://h/"],
                        "header with CR LF"),
                       (["--subprotocol", "a b", "ws://h/"],
                        "subprotocol with a space"),
                       (["--ping", "-1", "ws://h/"], "--ping -1"),
                       (["ws://h/", "ws://g/"], "two URLs")):
        r = wscat(args, None)
        check("usage error: %s -> exit 2" % name, r.rc == 2 and
              r.err != b"", r)

    r = wscat(["--help"], None)
    check("--help exits 0 and prints usage", r.rc == 0 and
          r.out.startswith(b"usage: wscat"), r)


# ---------------------------------------------------------------------------
# Part 3: the Python websockets package as the server
# ---------------------------------------------------------------------------

class WsServer:
    """A websockets server on its own asyncio loop in a thread."""

    def __init__(self, handler, **kw):
        import websockets
        self.port = None
        self.ready = threading.Event()

        async def main():
            self.stop = asyncio.get_running_loop().create_future()
            async with websockets.serve(handler, "127.0.0.1", 0,
                                        max_size=None, **kw) as srv:
                self.port = srv.sockets[0].getsockname()[1]
                self.ready.set()
                await self.stop

        def run():
            self.loop = asyncio.new_event_loop()
            try:
                self.loop.run_until_complete(main())
            finally:
                self.ready.set()
                self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def close(self):
        self.loop.call_soon_threadsafe(
            lambda: self.stop.done() or self.stop.set_result(None))
        self.thread.join(10)


def part3():
    try:
        import websockets  # noqa: F401
    except ImportError:
        if os.environ.get("WS_REQUIRE_PEERS") == "1":
            check("python websockets installed (WS_REQUIRE_PEERS=1)", False)
        else:
            print("# SKIP python websockets not installed")
        return

    msgs = ["plain", "", "wörld € 😀", "line\nbreak", b"", b"\x00\xff" * 3,
            bytes(range(256)), "x" * 70000, b"\xaa" * (1 << 20),
            "ünïcødé " * 1000]
    while len(msgs) < 20:
        i = len(msgs)
        msgs.append("text %d" % i if i % 2 else b"bin %d" % i)
    box = {}

    async def echo_check(ws, path=None):
        try:
            for m in msgs:
                await ws.send(m)
            got = []
            for _ in msgs:
                got.append(await asyncio.wait_for(ws.recv(), 20 * SCALE))
            box["got"] = got
            await ws.close(1000, "done")
        except Exception as e:
            box["error"] = "%s: %s" % (type(e).__name__, e)

    srv = WsServer(echo_check)
    try:
        r = wscat(["--echo", "ws://127.0.0.1:%d/" % srv.port], None,
                  timeout=30)
    finally:
        srv.close()
    got = box.get("got", [])
    same = len(got) == len(msgs) and all(
        type(a) is type(b) and a == b for a, b in zip(got, msgs))
    check("websockets server: 20 messages (text, binary, 1 MiB) come back "
          "identical from wscat --echo", same and "error" not in box,
          (box.get("error"), [type(g).__name__ + str(len(g)) for g in got]))
    check("wscat --echo exits 0 after the server's close 1000",
          r.rc == 0 and b"closed: 1000 done" in r.err and r.out == b"", r)

    async def chat(ws, path=None):
        box["subprotocol"] = ws.subprotocol
        async for m in ws:
            await ws.send(m)

    srv = WsServer(chat, subprotocols=["chat"])
    try:
        # --count, not stdin EOF: a close sent right after the message
        # may reach the server before it echoes (websockets then drops
        # the echo, as RFC 6455 7.1 allows).
        r = wscat(["--subprotocol", "superchat", "--subprotocol", "chat",
                   "--send", "hi chat", "--count", "1", "--no-stdin",
                   "ws://127.0.0.1:%d/" % srv.port], None)
    finally:
        srv.close()
    check("websockets server negotiates 'chat': printed, messages flow",
          r.rc == 0 and b"protocol: chat" in r.err and r.out == b"hi chat\n"
          and box.get("subprotocol") == "chat", r)


def main():
    global WSCAT, ECHO
    if len(sys.argv) != 3:
        print("usage: wscat_test.py WSCAT ECHO_SERVER", file=sys.stderr)
        return 2
    WSCAT, ECHO = sys.argv[1], sys.argv[2]
    for part in (part1, part2, part3):
        try:
            part()
        except Exception as e:  # a crash in the harness is a failure
            check("%s ran to the end" % part.__name__, False,
                  "%s: %s" % (type(e).__name__, e))
    failed = results.count(False)
    print("1..%d" % len(results))
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
