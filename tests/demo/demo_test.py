#!/usr/bin/env python3
"""Black-box tests of the polling_vs_ws demo (server + --bench).

Usage: demo_test.py path/to/polling_vs_ws

  a. --bench --seconds 5 --rate 20 --clients 3 --json: every transport gets
     updates; long polling, SSE and WebSocket without loss, duplicates or
     reordering; the WebSocket's median latency below short polling's and
     its bytes per update downstream the lowest (see check_bytes).
  b. --bench --reconnect --seconds 6 --json: every client drops its
     connection once or twice; long polling, SSE and the WebSocket (with
     its /poll re-sync) still lose nothing.
  c. The server (--port 0 --rate 50 --quiet) answers malformed requests on
     raw sockets with 400 (431 for a head over 8 KB) and then serves
     GET /poll on a new connection.
  d. 1,000 idle SSE and 1,000 idle long-poll clients (raw sockets that send
     their request and never read) do not stall a raw-socket WebSocket
     client and a short-polling client: both get every update, median
     latency < 200 ms. When the idle clients go, /stats shows the SSE and
     long-poll client counts back near 0 within a few seconds. Skipped if
     RLIMIT_NOFILE cannot reach ~4200.
  e. SIGTERM: the server exits 0 within 3 s.

Python 3 standard library only; 127.0.0.1 only; about 30 s in all.
Output: TAP, then "N passed, N failed"; exit 1 on a failure.
"""
import base64
import hashlib
import json
import os
import re
import resource
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

EXE = None
HOST = "127.0.0.1"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455 1.3
results = []
T0 = time.monotonic()


def check(name, cond, detail=""):
    results.append(bool(cond))
    n = len(results)
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, name))
    if detail and (not cond or os.environ.get("VERBOSE")):
        diag(detail)
    sys.stdout.flush()
    return bool(cond)


def skip(name, why):
    results.append(True)
    print("ok %d - %s # SKIP %s" % (len(results), name, why))
    sys.stdout.flush()


def diag(msg):
    print("#   " + str(msg).replace("\n", "\n#   "))
    sys.stdout.flush()


def now_ms():
    return time.time() * 1000.0


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------

def run_bench(args, timeout):
    """Runs polling_vs_ws --bench ARGS --json; returns (rc, dict or None,
    stderr)."""
    cmd = [EXE, "--bench"] + args + ["--json"]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, "timed out after %s s" % timeout
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    try:
        data = json.loads(out)
    except ValueError:
        data = None
        err += "\nstdout: " + out[:2000]
    return p.returncode, data, err


def summary(data):
    lines = []
    for t, r in data["transports"].items():
        lines.append("%-8s recv %5d missed %d dup %d ooo %d median %s p95 %s "
                     "req %d B/upd down %s up %s reconnects %d resynced %d"
                     % (t, r["received"], r["missed"], r["duplicated"],
                        r["out_of_order"], r["latency_median_ms"],
                        r["latency_p95_ms"], r["requests"],
                        r["bytes_per_update_down"], r["bytes_per_update_up"],
                        r["reconnects"], r["resynced"]))
    return "\n".join(lines)


def check_exact(data, label):
    """Long polling, SSE and WebSocket: nothing lost, repeated or out of
    order."""
    for t in ("longpoll", "sse", "ws"):
        r = data["transports"][t]
        check("%s: %s without loss, duplicates or reordering" % (label, t),
              r["received"] > 0 and r["missed"] == 0 and
              r["duplicated"] == 0 and r["out_of_order"] == 0,
              "received %d missed %d duplicated %d out_of_order %d"
              % (r["received"], r["missed"], r["duplicated"],
                 r["out_of_order"]))


def check_bytes(data, label):
    """Bytes per update, from the server's counters.

    pvw.h sends a WebSocket update as the bare update object, so a frame
    costs the JSON + 2 bytes; an SSE event ("id: N\\ndata: ...\\n\\n")
    the JSON + 13 + digits(N); a long poll a request and a response each;
    short polling every 1000 ms at 20/s ~20 updates per answer, i.e. the
    JSON + a comma + its headers / 20 (~10 bytes).
    """
    tr = data["transports"]
    down = {t: tr[t]["bytes_per_update_down"] for t in tr}
    numbers = all(isinstance(tr[t]["bytes_per_update_down"], (int, float))
                  and isinstance(tr[t]["bytes_per_update_up"], (int, float))
                  for t in tr)
    both = {t: (tr[t]["bytes_per_update_down"] or 0) +
            (tr[t]["bytes_per_update_up"] or 0) for t in tr}
    detail = ", ".join("%s %s" % (t, down[t]) for t in down)
    check("%s: ws bytes/update down is the lowest" % label,
          numbers and all(down["ws"] < down[t] for t in down if t != "ws"),
          detail)
    check("%s: ws bytes/update down+up below short and long polling" % label,
          numbers and both["ws"] < both["poll"] and
          both["ws"] < both["longpoll"],
          ", ".join("%s %.1f" % (t, both[t]) for t in both))


def test_bench():
    rc, data, err = run_bench(["--seconds", "5", "--rate", "20",
                               "--clients", "3"], timeout=25)
    if not check("a: --bench --seconds 5 --rate 20 --clients 3 --json "
                 "exits 0 with JSON", rc == 0 and data is not None,
                 "rc %s\n%s" % (rc, err)):
        if data is None:
            return
    diag(summary(data))
    tr = data["transports"]
    check("a: JSON has params and the four transports",
          data["params"]["clients"] == 3 and data["params"]["rate"] == 20 and
          sorted(tr) == ["longpoll", "poll", "sse", "ws"], data["params"])
    for t in ("poll", "longpoll", "sse", "ws"):
        check("a: %s received updates" % t, tr[t]["received"] > 0,
              tr[t]["received"])
    check_exact(data, "a")
    wm, pm = tr["ws"]["latency_median_ms"], tr["poll"]["latency_median_ms"]
    check("a: ws median latency < short polling median",
          wm is not None and pm is not None and wm < pm,
          "ws %s ms, poll %s ms" % (wm, pm))
    check_bytes(data, "a")

    # Short polling as fresh as it can be (every 50 ms at 20/s): now it
    # pays a request and response headers for about every update.
    rc, data, err = run_bench(["--seconds", "3", "--rate", "20",
                               "--clients", "3", "--interval", "50"],
                              timeout=20)
    if check("a2: --bench --interval 50 exits 0 with JSON",
             rc == 0 and data is not None, "rc %s\n%s" % (rc, err)):
        diag(summary(data))
        tr = data["transports"]
        check("a2: ws bytes/update down below short polling every 50 ms",
              tr["ws"]["bytes_per_update_down"] <
              tr["poll"]["bytes_per_update_down"],
              "ws %s, poll %s" % (tr["ws"]["bytes_per_update_down"],
                                  tr["poll"]["bytes_per_update_down"]))


def test_reconnect():
    rc, data, err = run_bench(["--reconnect", "--seconds", "6"], timeout=30)
    if not check("b: --bench --reconnect --seconds 6 --json exits 0",
                 rc == 0 and data is not None, "rc %s\n%s" % (rc, err)):
        if data is None:
            return
    diag(summary(data))
    tr = data["transports"]
    check("b: params say reconnect", data["params"]["reconnect"] is True)
    for t in ("poll", "longpoll", "sse", "ws"):
        check("b: every %s client dropped its connection" % t,
              tr[t]["reconnects"] >= tr[t]["clients"],
              "reconnects %d, clients %d" % (tr[t]["reconnects"],
                                             tr[t]["clients"]))
    check_exact(data, "b")
    check("b: short polling lost nothing either", tr["poll"]["missed"] == 0,
          tr["poll"])


# ---------------------------------------------------------------------------
# A server of our own, and raw-socket clients
# ---------------------------------------------------------------------------

class Server:
    def __init__(self, *args):
        self.p = subprocess.Popen([EXE] + list(args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.port = None
        line = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.p.stdout], [], [], 0.2)
            if r:
                b = os.read(self.p.stdout.fileno(), 1)
                if not b:
                    break
                line += b
        m = re.match(rb"polling_vs_ws: open http://127\.0\.0\.1:(\d+)/",
                     line)
        if m:
            self.port = int(m.group(1))
        self.line = line.decode("utf-8", "replace").strip()

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def http_get(port, path, timeout=5):
    """GET with Connection: close; returns (status, body bytes)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close"
                   "\r\n\r\n" % (path, HOST, port)).encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    return (int(m.group(1)) if m else None), body


def stats(port):
    status, body = http_get(port, "/stats")
    return json.loads(body) if status == 200 else None


def raw_request(port, data, timeout=3):
    """Sends data on a new connection; returns (status or None, whether the
    server then closed the connection)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass            # it may answer and close before reading it all
    got = b""
    closed = False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            got += d
    except OSError:
        closed = True   # reset: it closed with our bytes unread
    s.close()
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
    return (int(m.group(1)) if m else None), closed


class RawWebSocket:
    """A WebSocket client written out here (RFC 6455 4.1, 5.2), so that the
    test does not depend on libws to check libws."""

    def __init__(self, port):
        self.s = socket.create_connection((HOST, port), timeout=5)
        key = base64.b64encode(os.urandom(16))
        self.s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: %s\r\n"
                       b"Sec-WebSocket-Version: 13\r\n\r\n" % (port, key))
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise OSError("closed during the handshake")
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if not head.startswith(b"HTTP/1.1 101") or \
                (b"sec-websocket-accept: " + accept.lower()) not in \
                head.lower():
            raise OSError("bad handshake answer: %r" % head[:200])

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        if b1 & 0x80:
            raise OSError("the server masked a frame (RFC 6455 5.1)")
        return b0 & 0x0F, self._need(n)

    def send_frame(self, opcode, payload):
        key = os.urandom(4)
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        else:
            hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        self.s.sendall(hdr + key +
                       bytes(b ^ key[i % 4] for i, b in enumerate(payload)))


class Receiver:
    """Ids and latencies one client saw."""

    def __init__(self):
        self.ids = []
        self.lat = []
        self.error = None

    def add(self, update, t_recv):
        self.ids.append(update["id"])
        self.lat.append(t_recv - update["t"])

    def gapless(self):
        ids = self.ids
        return len(ids) > 0 and ids == list(range(ids[0], ids[0] + len(ids)))

    def describe(self):
        if not self.ids:
            return "no updates (%s)" % self.error
        return ("%d updates %d..%d, median %.1f ms, error %s"
                % (len(self.ids), self.ids[0], self.ids[-1],
                   statistics.median(self.lat), self.error))


def ws_reader(ws, rec, stop):
    """Reads updates until the server closes; answers close and ping."""
    try:
        while True:
            op, payload = ws.read_frame()
            if op == 1:
                # pvw.h: an update is the bare update object; other
                # messages have a "type".
                msg = json.loads(payload)
                if "type" not in msg and not stop.is_set():
                    rec.add(msg, now_ms())
            elif op == 8:
                # RFC 6455 5.5.1 and 7.1.1: answer the close, let the
                # server close TCP first, then close our end.
                ws.send_frame(8, payload[:2])
                while ws.s.recv(65536):
                    pass
                ws.s.close()
                return
            elif op == 9:
                ws.send_frame(10, payload)
    except (OSError, EOFError, ValueError) as e:
        if not stop.is_set():
            rec.error = repr(e)


def poller(port, since, rec, stop, interval=0.1):
    """Short polling on one keep-alive connection."""
    try:
        s = socket.create_connection((HOST, port), timeout=5)
        buf = b""
        while not stop.is_set():
            s.sendall(b"GET /poll?since=%d HTTP/1.1\r\nHost: x\r\n\r\n"
                      % since)
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    raise EOFError
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(buf) < n:
                d = s.recv(65536)
                if not d:
                    raise EOFError
                buf += d
            body, buf = buf[:n], buf[n:]
            t = now_ms()
            for u in json.loads(body)["updates"]:
                rec.add(u, t)
                since = u["id"]
            stop.wait(interval)
        s.close()
    except (OSError, EOFError, ValueError, AttributeError) as e:
        rec.error = repr(e)


# ---------------------------------------------------------------------------
# c, d, e: against a running server
# ---------------------------------------------------------------------------

MALFORMED = [
    ("a garbage request line", b"garbage\r\n\r\n", (400,)),
    ("a bad HTTP version", b"GET /poll HTTP/1.x\r\nHost: a\r\n\r\n", (400,)),
    ("a header line without a colon",
     b"GET /poll HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", (400,)),
    ("a head over 8 KB",
     b"GET /poll HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 9000 +
     b"\r\n\r\n", (400, 431)),
    ("binary junk", bytes(range(256)) * 4, (400,)),
]


def test_malformed(srv):
    for name, data, want in MALFORMED:
        status, closed = raw_request(srv.port, data)
        check("c: %s gets %s" % (name, " or ".join(map(str, want))),
              status in want, "got %s" % status)
        try:
            ok, body = http_get(srv.port, "/poll?since=0")
            good = ok == 200 and "updates" in json.loads(body)
        except (OSError, ValueError) as e:
            good, ok = False, repr(e)
        check("c: then GET /poll on a new connection works", good, ok)


def open_idle(port, request, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection((HOST, port), timeout=10)
        s.sendall(request)
        socks.append(s)
    return socks


def test_idle_clients(srv):
    want = 4200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(max(want, soft), hard), hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        skip("d: 1,000 idle SSE + 1,000 idle long-poll clients",
             "RLIMIT_NOFILE is %d (hard %d), need ~%d" % (soft, hard, want))
        return

    st = stats(srv.port)
    base = st["last"]
    idle = []
    t_open = time.monotonic()
    try:
        idle += open_idle(srv.port, b"GET /events HTTP/1.1\r\nHost: x\r\n"
                          b"Accept: text/event-stream\r\n\r\n", 1000)
        # A since far ahead: each long poll is held for its whole timeout.
        idle += open_idle(srv.port, b"GET /longpoll?since=999999999999"
                          b"&timeout=60000 HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
    except OSError as e:
        check("d: 2,000 idle clients connect", False, repr(e))
        for s in idle:
            s.close()
        return
    diag("2,000 idle clients connected in %.2f s"
         % (time.monotonic() - t_open))

    stop = threading.Event()
    ws_rec, poll_rec = Receiver(), Receiver()
    try:
        ws = RawWebSocket(srv.port)
    except OSError as e:
        check("d: a WebSocket connects next to 2,000 idle clients", False,
              repr(e))
        for s in idle:
            s.close()
        return
    threads = [threading.Thread(target=ws_reader, args=(ws, ws_rec, stop)),
               threading.Thread(target=poller,
                                args=(srv.port, base, poll_rec, stop))]
    for th in threads:
        th.daemon = True
        th.start()
    time.sleep(1.0)
    st = stats(srv.port)
    tr = st["transports"]
    check("d: /stats counts the idle clients (sse, longpoll >= 1000)",
          tr["sse"]["clients"] >= 1000 and tr["longpoll"]["clients"] >= 1000,
          "sse %d, longpoll %d" % (tr["sse"]["clients"],
                                   tr["longpoll"]["clients"]))
    time.sleep(3.0)
    stop.set()
    time.sleep(0.2)
    made = stats(srv.port)["last"] - base
    diag("ws: %s" % ws_rec.describe())
    diag("poll: %s" % poll_rec.describe())
    diag("%d updates made meanwhile" % made)
    check("d: the WebSocket got every update, in order",
          ws_rec.gapless() and len(ws_rec.ids) >= 0.8 * made,
          ws_rec.describe())
    check("d: short polling got every update, in order",
          poll_rec.gapless() and poll_rec.ids[0] == base + 1 and
          len(poll_rec.ids) >= 0.8 * made, poll_rec.describe())
    check("d: WebSocket median latency < 200 ms",
          ws_rec.lat and statistics.median(ws_rec.lat) < 200,
          ws_rec.describe())
    check("d: short polling median latency < 200 ms",
          poll_rec.lat and statistics.median(poll_rec.lat) < 200,
          poll_rec.describe())

    for s in idle:
        s.close()
    t_close = time.monotonic()
    tr = None
    while time.monotonic() - t_close < 5:
        tr = stats(srv.port)["transports"]
        if tr["sse"]["clients"] <= 5 and tr["longpoll"]["clients"] <= 5:
            break
        time.sleep(0.2)
    check("d: after the idle clients leave, /stats shows sse/longpoll "
          "clients near 0 within 5 s",
          tr is not None and tr["sse"]["clients"] <= 5 and
          tr["longpoll"]["clients"] <= 5,
          "after %.1f s: sse %s, longpoll %s"
          % (time.monotonic() - t_close, tr and tr["sse"]["clients"],
             tr and tr["longpoll"]["clients"]))
    diag("counts back after %.1f s" % (time.monotonic() - t_close))
    return ws, threads


def test_sigterm(srv, ws_and_threads):
    # An SSE stream and (from d) a WebSocket are still open: the server
    # must close them and exit, not wait for them.
    sse = socket.create_connection((HOST, srv.port), timeout=5)
    sse.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    t = time.monotonic()
    srv.p.send_signal(signal.SIGTERM)
    try:
        rc = srv.p.wait(timeout=3)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t
    check("e: SIGTERM: exit 0 within 3 s", rc == 0,
          "rc %s after %.2f s" % (rc, took))
    diag("stopped in %.2f s" % took)
    sse.close()
    if ws_and_threads:
        for th in ws_and_threads[1]:
            th.join(timeout=2)


def main():
    global EXE
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    EXE = os.path.abspath(sys.argv[1])
    if not os.access(EXE, os.X_OK):
        print("not ok 1 - %s is not an executable" % EXE)
        print("0 passed, 1 failed")
        return 1
    # The idle-client test needs the fds first: raise before any thread.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass

    test_bench()
    test_reconnect()

    srv = Server("--port", "0", "--rate", "50", "--quiet")
    try:
        if not check("c: the server prints its ready line",
                     srv.port is not None, srv.line):
            return finish()
        test_malformed(srv)
        ws_and_threads = test_idle_clients(srv)
        test_sigterm(srv, ws_and_threads)
    finally:
        srv.stop()
    return finish()


def finish():
    passed = sum(results)
    failed = len(results) - passed
    diag("took %.1f s" % (time.monotonic() - T0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
