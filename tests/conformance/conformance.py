#!/usr/bin/env python3
"""RFC 6455 conformance runner: the Autobahn|Testsuite case groups and more.

Python 3 standard library only: every frame on the wire is built here, by
hand, independently of libws.

  conformance.py server (--url ws://HOST:PORT/ | --cmd "CMD ... {port}")
  conformance.py client --cmd "CMD ... {url}"
  conformance.py list [server|client] [--full]
  common options: [--full] [--cases 1.*,6.4.*] [--json report.json]
                  [--allow-nonstrict] [--failfast-wait S] [--timeout S]
                  [--label NAME] [--tap]

Server role: every case opens its own TCP connection to the server, checks
the 101, sends masked hand-built frames (whole, split into TCP chunks, with
delays) and checks what comes back. With --cmd the runner starts the server
itself on a free port ({port}) and waits for its "listening on" line.

Client role: the runner is a fuzzing server on 127.0.0.1. For each case it
starts CMD once ({url} becomes ws://127.0.0.1:PORT/CASE), validates the
client's opening handshake, answers 101 and sends unmasked frames. The
client (e.g. wscat --echo) must send every message back masked with a
fresh key, fail the connection with the right close code on a violation,
and exit once the server has closed TCP.

Verdicts (the Autobahn semantics):
  OK          exactly the expected behaviour: a byte-exact echo (any
              fragmentation), or on a violation a close frame with the
              expected code, after which the server closes TCP; a UTF-8
              error is caught as soon as the invalid byte arrives.
  NON-STRICT  acceptable but not ideal: TCP closed without a close frame,
              an invalid UTF-8 byte caught only at the end of the message,
              a server that does not close TCP after the close handshake.
  FAILED      anything else (wrong close code, wrong echo, hang, ...).

Output: one line per case "ID  VERDICT  description  (why, timing)", a
summary line "conformance ROLE: N OK, N NON-STRICT, N FAILED", then
"N passed, N failed". NON-STRICT counts as failed unless --allow-nonstrict.
Exit status: 0 if nothing failed, 1 otherwise, 2 on usage errors.

Case ids follow the Autobahn|Testsuite groups (1 framing, 2 ping/pong,
3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 limits
and performance, 10 auto-fragmentation), reconstructed from its published
case descriptions (no Autobahn code). Ids with a "+" suffix are variants
added here (+frag: one-byte fragments, +chop: one-byte TCP chunks,
+failfast: the close must come before the rest of the message, +split:
two fragments split at every byte, +reason: with a close reason). H.*
(opening handshake), X.* (masking, lengths, floods, limits) and some
numbers past Autobahn's are ours: see tests/conformance/README.md.
"""
import argparse
import base64
import fnmatch
import hashlib
import json
import os
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OK, NONSTRICT, FAILED = "OK", "NON-STRICT", "FAILED"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
OPNAME = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping",
          10: "pong"}
KIB, MIB = 1024, 1024 * 1024
BG_SEND = 256 * KIB          # larger sends run in a thread (no deadlock)
MAX_IN_FRAME = 64 * MIB      # the runner's own limit on what it reads

# Set from the command line.
OPTS = None


class Failed(Exception):
    pass


class SetupError(Exception):
    pass


# ---------------------------------------------------------------------------
# Frames (RFC 6455 5.2), written out by hand
# ---------------------------------------------------------------------------

def mask_bytes(data, key):
    """XOR data with the 4-byte key (RFC 6455 5.3), fast for megabytes."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^
            int.from_bytes(k, "little")).to_bytes(n, "little")


def build_frame(op, payload=b"", fin=True, rsv=0, mask=True, key=None,
                length=None):
    """One frame. length overrides the encoded payload length (lies)."""
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (op & 0x0F)
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        hdr = bytes((b0, m | n))
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return hdr + payload
    key = key if key is not None else os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def header_len(frame_bytes):
    n = frame_bytes[1] & 0x7F
    h = 2 + (2 if n == 126 else 8 if n == 127 else 0)
    return h + (4 if frame_bytes[1] & 0x80 else 0)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason


# ---------------------------------------------------------------------------
# UTF-8 (RFC 3629, Unicode table 3-7): where a validator must fail
# ---------------------------------------------------------------------------

def utf8_fail_pos(b):
    """None if b is valid UTF-8; len(b) if b is a valid but truncated
    prefix (an error only at the end of the message); else the index of
    the first byte that no continuation can make valid (fail-fast)."""
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif c == 0xE0:
            need, lo, hi = 2, 0xA0, 0xBF
        elif 0xE1 <= c <= 0xEC or c in (0xEE, 0xEF):
            need, lo, hi = 2, 0x80, 0xBF
        elif c == 0xED:
            need, lo, hi = 2, 0x80, 0x9F
        elif c == 0xF0:
            need, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            need, lo, hi = 3, 0x80, 0xBF
        elif c == 0xF4:
            need, lo, hi = 3, 0x80, 0x8F
        else:
            return i
        for k in range(need):
            j = i + 1 + k
            if j >= n:
                return n
            if not ((lo <= b[j] <= hi) if k == 0 else (0x80 <= b[j] <= 0xBF)):
                return j
        i += need + 1
    return None


# ---------------------------------------------------------------------------
# Events read from the peer
# ---------------------------------------------------------------------------

class Ev:
    def __init__(self, kind, op=None, data=b"", code=None, reason=b"",
                 frames=0, why=""):
        self.kind, self.op, self.data = kind, op, data
        self.code, self.reason, self.frames, self.why = code, reason, frames, why

    def __repr__(self):
        return describe(self)


def short(b, n=24):
    s = repr(bytes(b[:n]))
    return s + ("...(%d bytes)" % len(b) if len(b) > n else "")


def describe(ev):
    k = ev.kind
    if k == "msg":
        return "%s message (%d bytes%s)" % (
            OPNAME[ev.op], len(ev.data),
            ", %d frames" % ev.frames if ev.frames > 1 else "")
    if k in ("ping", "pong"):
        return "%s %s" % (k, short(ev.data))
    if k == "close":
        if ev.code is None:
            return "close (no code)"
        return "close %d%s" % (ev.code, (" %s" % short(ev.reason, 40))
                               if ev.reason else "")
    if k == "eof":
        return "TCP closed (%s)" % ev.why
    if k == "timeout":
        return "nothing within %.1f s" % ev.why
    return "%s %s" % (k, ev.why)


class Wire:
    """One WebSocket connection seen from the runner. peer_role is the role
    of the endpoint under test: "server" (runner masks its frames, peer
    must not) or "client" (the reverse)."""

    def __init__(self, sock, peer_role, leftover=b"", proc=None):
        self.sock = sock
        self.peer_role = peer_role
        self.mask_out = peer_role == "server"
        self.buf = bytearray(leftover)
        self.eof = None
        self.partial = None
        self.keys = []
        self.nframes = 0
        self.bg = None
        self.send_err = None
        self.close_sent = False
        self.close_received = False
        self.proc = proc
        self.tcp_closed_by_us = False

    # -- sending --
    def frame(self, op, payload=b"", fin=True, rsv=0, mask=None, key=None,
              length=None):
        return build_frame(op, payload, fin, rsv,
                           self.mask_out if mask is None else mask, key,
                           length)

    def _send(self, data, chop, delay):
        try:
            if not chop:
                self.sock.sendall(data)
                return
            mv = memoryview(data)
            for i in range(0, len(data), chop):
                self.sock.sendall(mv[i:i + chop])
                if delay:
                    time.sleep(delay)
        except OSError as e:
            self.send_err = e

    def send(self, data, chop=None, delay=0.0):
        self.join()
        if self.send_err is not None or self.tcp_closed_by_us:
            return
        if len(data) > BG_SEND:
            self.bg = threading.Thread(target=self._send,
                                       args=(data, chop, delay), daemon=True)
            self.bg.start()
        else:
            self._send(data, chop, delay)

    def join(self, timeout=None):
        if self.bg is not None:
            self.bg.join(timeout)
            if self.bg.is_alive():
                raise Failed("the peer stopped reading: a send of %s did "
                             "not finish" % "data")
            self.bg = None

    # -- receiving --
    def _fill(self, deadline):
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError()
        try:
            r, _, _ = select.select([self.sock], [], [], remaining)
        except (OSError, ValueError) as e:
            self.eof = "socket error %s" % e
            return False
        if not r:
            raise TimeoutError()
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.eof = "reset"
            return False
        except OSError as e:
            self.eof = "error: %s" % e
            return False
        if not data:
            self.eof = "FIN"
            return False
        self.buf += data
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                return False
        return True

    def read_frame(self, deadline):
        """(fin, rsv, op, payload, masked) or None at EOF, or a str (a
        header the runner refuses). TimeoutError past the deadline."""
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n, hl = b1 & 0x7F, 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n, hl = struct.unpack_from("!H", self.buf, 2)[0], 4
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n, hl = struct.unpack_from("!Q", self.buf, 2)[0], 10
            if n >> 63:
                return "frame length with the top bit set (RFC 6455 5.2)"
        masked = bool(b1 & 0x80)
        if masked:
            hl += 4
        if n > MAX_IN_FRAME:
            return "frame of %d bytes (the runner reads at most %d)" % (
                n, MAX_IN_FRAME)
        if not self._need(hl + n, deadline):
            return None
        payload = bytes(self.buf[hl:hl + n])
        if masked:
            key = bytes(self.buf[hl - 4:hl])
            self.keys.append(key)
            payload = mask_bytes(payload, key)
        del self.buf[:hl + n]
        self.nframes += 1
        return (bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload, masked)

    def next_event(self, timeout):
        """The next message, control frame, TCP close or timeout; a frame
        that breaks RFC 6455 gives Ev("bad")."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.read_frame(deadline)
            except TimeoutError:
                return Ev("timeout", why=timeout)
            if f is None:
                why = self.eof
                if self.partial:
                    why += ", in the middle of a fragmented message"
                if self.buf:
                    why += ", after %d bytes of an incomplete frame" % len(
                        self.buf)
                return Ev("eof", why=why)
            if isinstance(f, str):
                return Ev("bad", why=f)
            fin, rsv, op, payload, masked = f
            name = OPNAME.get(op, "opcode %d" % op)
            if self.peer_role == "server" and masked:
                return Ev("bad", why="server sent a masked %s frame "
                          "(RFC 6455 5.1)" % name)
            if self.peer_role == "client" and not masked:
                return Ev("bad", why="client sent an unmasked %s frame "
                          "(RFC 6455 5.1)" % name)
            if rsv:
                return Ev("bad", why="peer set RSV bits %d on a %s frame"
                          % (rsv, name))
            if op not in OPNAME:
                return Ev("bad", why="peer sent reserved opcode %d" % op)
            if op >= 8:
                if not fin or len(payload) > 125:
                    return Ev("bad", why="peer sent a %s control frame "
                              "(%d bytes, FIN=%d)" % (name, len(payload),
                                                      fin))
                if op == PING:
                    return Ev("ping", data=payload)
                if op == PONG:
                    return Ev("pong", data=payload)
                if len(payload) == 1:
                    return Ev("bad", why="peer sent a 1-byte close payload")
                code = struct.unpack("!H", payload[:2])[0] if payload else None
                return Ev("close", code=code, reason=payload[2:],
                          data=payload)
            if op == CONT:
                if self.partial is None:
                    return Ev("bad", why="peer sent a continuation frame "
                              "with no message open")
                self.partial[1].append(payload)
                self.partial[2] += 1
                if fin:
                    op0, parts, nf = self.partial
                    self.partial = None
                    return Ev("msg", op=op0, data=b"".join(parts), frames=nf)
                continue
            if self.partial is not None:
                return Ev("bad", why="peer started a new %s message inside "
                          "a fragmented one" % name)
            if fin:
                return Ev("msg", op=op, data=payload, frames=1)
            self.partial = [op, [payload], 1]

    def close_tcp(self):
        if self.tcp_closed_by_us:
            return
        self.tcp_closed_by_us = True
        try:
            self.join(5)
        except Failed:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------------------
# HTTP helpers
# ---------------------------------------------------------------------------

def read_http_head(sock, deadline, buf=b""):
    """Read until CRLF CRLF. Returns (head, rest, eof)."""
    while b"\r\n\r\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError()
        r, _, _ = select.select([sock], [], [], remaining)
        if not r:
            raise TimeoutError()
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            return buf, b"", True
        buf += chunk
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:], False


def parse_head(head):
    """(start line, [(lowercase name, value)])."""
    lines = head.decode("latin-1").split("\r\n")
    hdrs = []
    for ln in lines[1:]:
        if not ln:
            continue
        name, _, value = ln.partition(":")
        hdrs.append((name.strip().lower(), value.strip()))
    return lines[0], hdrs


def hget(hdrs, name):
    vals = [v for n, v in hdrs if n == name]
    return ", ".join(vals) if vals else None


def tokens(value):
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def check_101(status_line, hdrs, key, protocols=(), extensions=()):
    """Why a server's 101 answer is wrong, or None. protocols and
    extensions: what the request offered (the server may pick one)."""
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1" or parts[1] != "101":
        return "expected HTTP/1.1 101, got %r" % status_line
    if "websocket" not in tokens(hget(hdrs, "upgrade")):
        return "101 without Upgrade: websocket"
    if "upgrade" not in tokens(hget(hdrs, "connection")):
        return "101 without Connection: Upgrade"
    acc = hget(hdrs, "sec-websocket-accept")
    if acc != accept_for(key):
        return "Sec-WebSocket-Accept %r, expected %r" % (acc, accept_for(key))
    ext = hget(hdrs, "sec-websocket-extensions")
    if ext and ext.split(";")[0].strip() not in extensions:
        return "101 selects an extension never offered: %r" % ext
    proto = hget(hdrs, "sec-websocket-protocol")
    if proto and proto not in protocols:
        return "101 selects a subprotocol never offered: %r" % proto
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def nodelay(sock):
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


# ---------------------------------------------------------------------------
# Targets: the peer under test
# ---------------------------------------------------------------------------

class ServerTarget:
    """The runner is the client; the endpoint under test is a server."""
    role = "server"

    def __init__(self, url=None, cmd=None):
        self.cmd, self.proc, self.crashes = cmd, None, []
        if url:
            m = re.match(r"ws://([^/:]+|\[[^\]]+\])(?::(\d+))?(/.*)?$", url)
            if not m:
                raise SetupError("bad --url %r (ws://HOST:PORT/PATH)" % url)
            self.host = m.group(1).strip("[]")
            self.port = int(m.group(2) or 80)
            self.path = m.group(3) or "/"
        else:
            self.host, self.path = "127.0.0.1", "/"
            self.start()

    def start(self):
        port = free_port()
        argv = [a.replace("{port}", str(port)) for a in shlex.split(self.cmd)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        box = []

        def reader():
            for line in self.proc.stdout:
                if not box:
                    box.append(line)
            # keep draining so the server never blocks on stdout

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + 15
        while not box and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        line = box[0].decode("utf-8", "replace") if box else ""
        if "listening on" not in line:
            self.stop()
            raise SetupError("server command %r did not print 'listening on' "
                             "(got %r, rc %r)" % (self.cmd, line,
                                                  self.proc.poll()))
        m = re.search(r":(\d+)", line[line.index("listening on"):])
        self.port = int(m.group(1)) if m and "{port}" not in self.cmd \
            else port

    def alive_check(self):
        """Restart a crashed server; returns why it died, or None."""
        if self.proc is None or self.proc.poll() is None:
            return None
        why = "server process exited with status %s" % self.proc.returncode
        self.crashes.append(why)
        self.start()
        return why

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return "killed"

    def connect(self):
        deadline = time.monotonic() + 5
        while True:
            try:
                s = socket.create_connection((self.host, self.port), timeout=5)
                s.settimeout(None)
                nodelay(s)
                return s
            except OSError as e:
                if time.monotonic() > deadline:
                    raise Failed("cannot connect to %s:%d: %s" % (
                        self.host, self.port, e))
                time.sleep(0.05)

    def request(self, key, path=None):
        return ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n" % (
                    path or self.path, self.host, self.port,
                    key.decode())).encode()

    def open(self, t, chop=None):
        s = self.connect()
        key = base64.b64encode(os.urandom(16))
        data = self.request(key)
        try:
            if chop:
                for i in range(0, len(data), chop):
                    s.sendall(data[i:i + chop])
            else:
                s.sendall(data)
            head, rest, eof = read_http_head(s, time.monotonic() +
                                             OPTS.timeout)
        except TimeoutError:
            s.close()
            raise Failed("handshake: no answer within %.0f s" % OPTS.timeout)
        except OSError as e:
            s.close()
            raise Failed("handshake: %s" % e)
        if eof and b"\r\n\r\n" not in head:
            s.close()
            raise Failed("handshake: TCP closed after %r" % head[:200])
        status, hdrs = parse_head(head)
        why = check_101(status, hdrs, key)
        if why:
            s.close()
            raise Failed("handshake: " + why)
        return Wire(s, "server", rest)

    def end_of_case(self, t):
        pass


class ClientTarget:
    """The runner is a (fuzzing) server; the endpoint under test is a
    client command started once per case."""
    role = "client"

    def __init__(self, cmd):
        self.cmd = cmd
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.hs_keys = []
        self.crashes = []

    def alive_check(self):
        return None

    def stop(self):
        self.lsock.close()
        return None

    def spawn(self, t):
        url = "ws://127.0.0.1:%d/%s" % (self.port, t.case.id)
        argv = [a.replace("{url}", url) for a in shlex.split(self.cmd)]
        err = tempfile.TemporaryFile()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        proc.errfile = err
        t.procs.append(proc)
        deadline = time.monotonic() + 10
        self.lsock.settimeout(0.1)
        while True:
            try:
                s, _ = self.lsock.accept()
                break
            except socket.timeout:
                if proc.poll() is not None:
                    raise Failed("client exited (status %s) without "
                                 "connecting%s" % (proc.returncode,
                                                   stderr_tail(proc)))
                if time.monotonic() > deadline:
                    raise Failed("client did not connect within 10 s")
        s.settimeout(None)
        nodelay(s)
        try:
            head, rest, eof = read_http_head(s, time.monotonic() +
                                             OPTS.timeout)
        except TimeoutError:
            s.close()
            raise Failed("client sent no complete request within %.0f s"
                         % OPTS.timeout)
        return s, proc, head, rest, eof

    def validate_request(self, head, path):
        """Why the client's opening handshake is wrong (RFC 6455 4.1), or
        None; also returns the key."""
        line, hdrs = parse_head(head)
        parts = line.split(" ")
        key = hget(hdrs, "sec-websocket-key")
        if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
            return "request line %r is not GET ... HTTP/1.1" % line, key
        if parts[1] != path:
            return "request path %r, expected %r" % (parts[1], path), key
        host = hget(hdrs, "host")
        if host not in ("127.0.0.1:%d" % self.port,):
            return "Host %r, expected 127.0.0.1:%d" % (host, self.port), key
        if "websocket" not in tokens(hget(hdrs, "upgrade")):
            return "no Upgrade: websocket", key
        if "upgrade" not in tokens(hget(hdrs, "connection")):
            return "no Connection: Upgrade", key
        if len([1 for n, _ in hdrs if n == "sec-websocket-key"]) != 1:
            return "not exactly one Sec-WebSocket-Key", key
        try:
            raw = base64.b64decode(key, validate=True)
        except (ValueError, TypeError):
            raw = b""
        if len(raw) != 16:
            return "Sec-WebSocket-Key %r is not 16 bytes in base64" % key, key
        if hget(hdrs, "sec-websocket-version") != "13":
            return "Sec-WebSocket-Version %r, expected 13" % hget(
                hdrs, "sec-websocket-version"), key
        return None, key

    def open(self, t, respond=True, chop=None):
        s, proc, head, rest, eof = self.spawn(t)
        why, key = self.validate_request(head, "/" + t.case.id)
        if why:
            s.close()
            raise Failed("client handshake: " + why)
        self.hs_keys.append(key)
        w = Wire(s, "client", rest, proc)
        w.key = key
        if respond:
            resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                    % accept_for(key.encode())).encode()
            w.send(resp, chop=chop)
        return w


def stderr_tail(proc):
    try:
        proc.errfile.seek(0)
        data = proc.errfile.read()[-300:].decode("utf-8", "replace").strip()
    except (OSError, AttributeError):
        data = ""
    return (": " + data.replace("\n", " | ")) if data else ""


# ---------------------------------------------------------------------------
# One case run: the API the case functions use
# ---------------------------------------------------------------------------

class Fails:
    """Every expected failure: did the right close frame come before the
    TCP close? (the X.9.1 aggregate)."""

    def __init__(self):
        self.items = []


class T:
    def __init__(self, target, case, fails):
        self.target, self.case, self.fails = target, case, fails
        self.role = target.role
        self.w = None
        self.wires, self.procs = [], []
        self.notes, self.soft = [], []
        self.timeout = OPTS.timeout * case.tscale

    # -- connections --
    def open(self, **kw):
        if self.w is not None:
            self.w.close_tcp()
        self.w = self.target.open(self, **kw)
        self.wires.append(self.w)
        return self.w

    def note(self, s):
        self.notes.append(s)

    def nonstrict(self, s):
        self.soft.append(s)

    # -- sending --
    def frame(self, op, payload=b"", fin=True, rsv=0, **kw):
        return self.w.frame(op, payload, fin, rsv, **kw)

    def send(self, op, payload=b"", fin=True, rsv=0, chop=None, delay=0.0,
             **kw):
        self.w.send(self.frame(op, payload, fin, rsv, **kw), chop, delay)

    def send_frames(self, frames, chop=None, delay=0.0):
        """frames: (op, payload[, fin[, rsv]]) tuples. chop: None (one
        write), "frame" (a write per frame, delay between), or N bytes."""
        data = [self.frame(*f) for f in frames]
        if chop == "frame":
            for d in data:
                self.w.send(d)
                time.sleep(delay or 0.005)
        else:
            self.w.send(b"".join(data), chop, delay)

    def raw(self, data, chop=None, delay=0.0):
        self.w.send(data, chop, delay)

    # -- receiving --
    def next(self, timeout=None):
        ev = self.w.next_event(self.timeout if timeout is None else timeout)
        if ev.kind == "bad":
            raise Failed(ev.why)
        if ev.kind == "ping":
            raise Failed("the peer sent an unexpected ping %s" % short(ev.data))
        return ev

    def expect_msg(self, op, payload, timeout=None):
        ev = self.next(timeout)
        if ev.kind != "msg":
            raise Failed("expected the echo of a %s message (%d bytes), got "
                         "%s" % (OPNAME[op], len(payload), describe(ev)))
        self._check_msg(ev, op, payload)
        return ev

    def _check_msg(self, ev, op, payload):
        if ev.op != op:
            raise Failed("echo has opcode %s, expected %s" % (
                OPNAME[ev.op], OPNAME[op]))
        if ev.data != payload:
            i = next((i for i, (a, b) in enumerate(zip(ev.data, payload))
                      if a != b), min(len(ev.data), len(payload)))
            raise Failed("echo differs: %d bytes, expected %d; first "
                         "difference at byte %d" % (len(ev.data),
                                                    len(payload), i))

    def expect_msg_or_close(self, op, payload, what="the violation"):
        """The echo of a valid message sent just before a violation or a
        close frame. A peer that reads ahead and closes before its
        application answered drops the echo: NON-STRICT, as in Autobahn.
        Returns the close event if it came instead, else None."""
        ev = self.next()
        if ev.kind == "close":
            self.nonstrict("no echo of the message sent before %s: the "
                           "peer closed first" % what)
            return ev
        if ev.kind != "msg":
            raise Failed("expected the echo of a %s message (%d bytes), got "
                         "%s" % (OPNAME[op], len(payload), describe(ev)))
        self._check_msg(ev, op, payload)
        return None

    def expect_pong(self, payload, timeout=None):
        ev = self.next(timeout)
        if ev.kind != "pong" or ev.data != payload:
            raise Failed("expected pong %s, got %s" % (short(payload),
                                                       describe(ev)))

    def expect_echo_any_frag(self, op, payload):
        ev = self.expect_msg(op, payload)
        self.note("echo in %d frame%s" % (ev.frames, "s" * (ev.frames != 1)))

    # -- the end of a connection --
    def _peer_closed_tcp(self, grace):
        """After the peer's close frame: server role waits for the server
        to close TCP; client role closes TCP and waits for the client to
        exit."""
        w = self.w
        if self.role == "server":
            ev = w.next_event(grace)
            if ev.kind == "eof":
                return
            if ev.kind == "timeout":
                self.nonstrict("the server did not close TCP within %.0f s "
                               "of the close handshake" % grace)
                return
            raise Failed("%s after the close frame" % describe(ev))
        w.close_tcp()
        self.wait_exit(w.proc)

    def wait_exit(self, proc, limit=5.0):
        if proc is None:
            return None
        try:
            rc = proc.wait(limit * self.case.tscale)
        except subprocess.TimeoutExpired:
            raise Failed("the client did not exit within %.0f s of the TCP "
                         "close" % limit)
        if rc != 0:
            self.note("client exit status %d" % rc)
        return rc

    def reply_close(self, ev):
        """RFC 6455 5.5.1: answer a close frame (echo its code)."""
        if not self.w.close_sent:
            self.w.close_sent = True
            self.raw(self.frame(CLOSE, close_payload(ev.code)))

    def close_handshake(self, code=1000, reason=b"", accept=(1000, None),
                        sent=False, ev=None):
        """The runner starts the closing handshake; the peer must answer
        with a close frame (code in accept), then (server role) close TCP."""
        if not sent:
            self.send(CLOSE, close_payload(code, reason))
        self.w.close_sent = True
        ev = ev or self.next()
        if ev.kind != "close":
            raise Failed("expected the close handshake to end with a close "
                         "frame, got %s" % describe(ev))
        if ev.code not in accept:
            raise Failed("close answered with %s, expected %s" % (
                ev.code, " or ".join(str(a or "no code") for a in accept)))
        if ev.code != code and code is not None:
            self.note("answered close %s" % ev.code)
        self._peer_closed_tcp(2.0)

    def expect_fail(self, codes, ev=None, timeout=None, lenient=()):
        """The peer must fail the connection: a close frame with one of
        codes, then the TCP close. A code in lenient is NON-STRICT."""
        codes = (codes,) if isinstance(codes, int) else tuple(codes)
        want = " or ".join(map(str, codes)) or "a close frame"
        if ev is None:
            ev = self.next(timeout)
        rec = [self.case.id, want, None]
        self.fails.items.append(rec)
        if ev.kind == "close":
            if ev.code in lenient:
                rec[2] = "close %s (non-strict)" % ev.code
                self.nonstrict("close %s, expected %s" % (ev.code, want))
            elif ev.code not in codes:
                rec[2] = "close %s" % ev.code
                raise Failed("close %s %s, expected %s" % (
                    ev.code, short(ev.reason, 60), want))
            if rec[2] is None:
                rec[2] = "ok"
            if ev.reason:
                self.note("reason %s" % short(ev.reason, 50))
            self.reply_close(ev)
            self._peer_closed_tcp(2.0)
        elif ev.kind == "eof":
            rec[2] = "TCP closed without a close frame"
            self.nonstrict("TCP closed without a close frame (expected "
                           "close %s)" % want)
            if self.role == "client":
                self.w.close_tcp()
                self.wait_exit(self.w.proc)
        elif ev.kind == "timeout":
            rec[2] = "no close"
            raise Failed("expected close %s, got nothing within %.1f s "
                         "(connection still open)" % (want, ev.why))
        else:
            rec[2] = describe(ev)
            raise Failed("expected close %s, got %s" % (want, describe(ev)))

    def failfast(self, first, bad, rest, codes, wait=None, lenient=()):
        """Send first, then the byte(s) bad that make the stream invalid,
        wait for the close; only then send rest. A close that comes only
        after rest is NON-STRICT."""
        wait = OPTS.failfast_wait if wait is None else wait
        self.raw(first)
        self.raw(bad)
        ev = self.next(wait)
        if ev.kind == "timeout":
            self.raw(rest)
            ev = self.next()
            if ev.kind == "close":
                self.nonstrict("close %s only after the rest of the message "
                               "(not fail-fast)" % ev.code)
        self.expect_fail(codes, ev, lenient=lenient)


class Case:
    def __init__(self, cid, desc, fn, roles, tscale, origin):
        self.id, self.desc, self.fn = cid, desc, fn
        self.roles, self.tscale, self.origin = roles, tscale, origin


def run_case(target, case, fails):
    t = T(target, case, fails)
    t0 = time.monotonic()
    status, why = OK, ""
    try:
        died = target.alive_check()
        if died:
            t.note("restarted: " + died)
        if getattr(case.fn, "no_open", False):
            case.fn(t)
        else:
            t.open()
            case.fn(t)
        for w in t.wires:
            w.join(t.timeout)
    except Failed as e:
        status, why = FAILED, str(e)
    except Exception as e:  # noqa: BLE001 - a runner bug is a FAILED case
        status, why = FAILED, "runner: %s: %s" % (type(e).__name__, e)
    finally:
        for w in t.wires:
            w.close_tcp()
            if w.peer_role == "client":
                MASK_KEYS.extend(w.keys)
        for p in t.procs:
            if p.poll() is None:
                try:
                    p.wait(0.5 if status != OK else 3)
                except subprocess.TimeoutExpired:
                    if status == OK:
                        status, why = FAILED, ("the client did not exit "
                                               "after the TCP close")
                    p.kill()
                    p.wait()
            if status != OK and p.returncode not in (None, 0):
                why += "; client exit status %s%s" % (p.returncode,
                                                       stderr_tail(p))
            p.errfile.close()
    if getattr(target, "proc", None) is not None and \
            target.proc.poll() is not None:
        status = FAILED
        why = ("%s; " % why if why else "") + \
            "server process exited with status %s" % target.proc.returncode
    ms = (time.monotonic() - t0) * 1000
    if status == OK and t.soft:
        status, why = NONSTRICT, "; ".join(t.soft)
    details = [why] if why else []
    details += t.notes
    return status, "; ".join(details), ms


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

BOTH = ("server", "client")


def build_cases(role, full):
    cases = []

    def add(cid, desc, fn, roles=BOTH, tscale=1.0, origin="autobahn",
            quick=True):
        if role in roles and (full or quick):
            cases.append(Case(cid, desc, fn, roles, tscale, origin))

    def echo_case(op, payload, chop=None, delay=0.0):
        def fn(t):
            t.send(op, payload, chop=chop, delay=delay)
            t.expect_msg(op, payload)
            t.close_handshake()
        return fn

    # ---- 1 framing -------------------------------------------------------
    for g, op in ((1, TEXT), (2, BINARY)):
        fill = b"*" if op == TEXT else b"\xfe"
        for i, n in enumerate((0, 125, 126, 127, 128, 65535, 65536), 1):
            add("1.%d.%d" % (g, i), "%s message, %d bytes" % (OPNAME[op], n),
                echo_case(op, fill * n))
        add("1.%d.8" % g, "%s message, 65536 bytes, in 997-byte TCP chunks"
            % OPNAME[op], echo_case(op, fill * 65536, chop=997))

    # ---- 2 ping/pong -----------------------------------------------------
    def ping_case(payload, chop=None):
        def fn(t):
            t.send(PING, payload, chop=chop)
            t.expect_pong(payload)
            t.close_handshake()
        return fn

    add("2.1", "ping, no payload", ping_case(b""))
    add("2.2", "ping, small text payload", ping_case(b"Hello, world!"))
    add("2.3", "ping, small binary payload",
        ping_case(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"))
    add("2.4", "ping, 125-byte binary payload", ping_case(b"\xfe" * 125))

    def c2_5(t):
        t.send(PING, b"\xfe" * 126)
        t.expect_fail(1002)
    add("2.5", "ping, 126-byte payload (too long) -> 1002", c2_5)
    add("2.6", "ping, 125-byte payload, in 1-byte TCP chunks",
        ping_case(b"\xfe" * 125, chop=1))

    def unsolicited(payload, then_ping=None):
        def fn(t):
            t.send(PONG, payload)
            if then_ping is not None:
                t.send(PING, then_ping)
                t.expect_pong(then_ping)
            t.close_handshake()
        return fn
    add("2.7", "unsolicited pong, no payload: ignored", unsolicited(b""))
    add("2.8", "unsolicited pong with payload: ignored",
        unsolicited(b"unsolicited pong payload"))
    add("2.9", "unsolicited pong, then ping: only the ping answered",
        unsolicited(b"unsolicited pong payload", b"ping payload"))

    def ten_pings(chop):
        def fn(t):
            payloads = [("payload-%d" % i).encode() for i in range(10)]
            for p in payloads:
                t.send(PING, p, chop=chop)
            got = []
            t.send(CLOSE, close_payload(1000))
            t.w.close_sent = True
            while True:
                ev = t.next()
                if ev.kind != "pong":
                    break
                got.append(ev.data)
            if got != payloads:
                if got and got[-1] == payloads[-1] and \
                        all(g in payloads for g in got):
                    t.nonstrict("pongs only for %d of the 10 pings "
                                "(allowed, RFC 6455 5.5.3)" % len(got))
                else:
                    raise Failed("pongs %r, expected %r" % (got, payloads))
            if ev.kind != "close" or ev.code not in (1000, None):
                raise Failed("expected close 1000, got %s" % describe(ev))
            t._peer_closed_tcp(2.0)
        return fn
    add("2.10", "10 pings: 10 pongs, in order", ten_pings(None))
    add("2.11", "10 pings, in 1-byte TCP chunks: 10 pongs", ten_pings(1))

    # ---- 3 reserved bits -------------------------------------------------
    def rsv_case(rsv, op, payload, before=True, chop=None):
        def fn(t):
            frames = []
            if before:
                frames.append((TEXT, b"Hello, world!"))
            frames.append((op, payload, True, rsv))
            if before:
                frames.append((PING, b""))
            t.send_frames(frames, chop=chop)
            ev = None
            if before:
                ev = t.expect_msg_or_close(TEXT, b"Hello, world!")
            t.expect_fail(1002, ev)
        return fn
    add("3.1", "text with RSV=1 -> 1002", rsv_case(1, TEXT, b"Hello, world!",
                                                   before=False))
    add("3.2", "text, text with RSV=2, ping: echo, then 1002",
        rsv_case(2, TEXT, b"Hello, world!"))
    add("3.3", "same with RSV=3, a write per frame",
        rsv_case(3, TEXT, b"Hello, world!", chop="frame"))
    add("3.4", "same with RSV=4, in 1-byte TCP chunks",
        rsv_case(4, TEXT, b"Hello, world!", chop=1))
    add("3.5", "binary with RSV=5 -> 1002",
        rsv_case(5, BINARY, b"\x00\xff\xfe\xfd", before=False))
    add("3.6", "ping with RSV=6 -> 1002",
        rsv_case(6, PING, b"Hello, world!", before=False))
    add("3.7", "close with RSV=7 -> 1002",
        rsv_case(7, CLOSE, close_payload(1000), before=False))

    # ---- 4 opcodes -------------------------------------------------------
    for g, ops in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        for i, op in enumerate(ops, 1):
            payload = b"" if i == 1 else b"reserved opcode payload"
            before = i >= 3

            def fn(t, op=op, payload=payload, before=before):
                frames = [(TEXT, b"Hello, world!")] if before else []
                frames.append((op, payload))
                if before:
                    frames.append((PING, b""))
                t.send_frames(frames)
                ev = None
                if before:
                    ev = t.expect_msg_or_close(TEXT, b"Hello, world!")
                t.expect_fail(1002, ev)
            add("4.%d.%d" % (g, i), "reserved %s opcode %d%s -> 1002" % (
                "data" if g == 1 else "control", op,
                ", with payload" if payload else "") +
                (" (after a text, before a ping: echo first)"
                 if before else ""), fn)

    # ---- 5 fragmentation -------------------------------------------------
    def frag_ctrl(op):
        def fn(t):
            t.send_frames([(op, b"fragment1", False), (CONT, b"fragment2")])
            t.expect_fail(1002)
        return fn
    add("5.1", "ping in 2 fragments -> 1002", frag_ctrl(PING))
    add("5.2", "pong in 2 fragments -> 1002", frag_ctrl(PONG))

    def text2(chop=None, ping=False):
        def fn(t):
            frames = [(TEXT, b"fragment1", False)]
            if ping:
                frames.append((PING, b"ping payload"))
            frames.append((CONT, b"fragment2"))
            t.send_frames(frames, chop=chop)
            if ping:
                t.expect_pong(b"ping payload")
            t.expect_msg(TEXT, b"fragment1fragment2")
            t.close_handshake()
        return fn
    add("5.3", "text in 2 fragments", text2())
    add("5.4", "text in 2 fragments, in 1-byte TCP chunks", text2(1))
    add("5.5", "text in 2 fragments, a write per frame", text2("frame"))
    add("5.6", "text in 2 fragments with a ping between", text2(None, True))
    add("5.7", "same, in 1-byte TCP chunks", text2(1, True))
    add("5.8", "same, a write per frame", text2("frame", True))

    def orphan(fin, chop):
        def fn(t):
            t.send_frames([(CONT, b"non-continuation payload", fin),
                           (TEXT, b"Hello, world!")], chop=chop)
            t.expect_fail(1002)
        return fn
    for i, (fin, chop) in enumerate(((True, None), (True, "frame"),
                                     (True, 1), (False, None),
                                     (False, "frame"), (False, 1)), 9):
        add("5.%d" % i, "continuation (FIN=%d) with nothing to continue, "
            "then text%s -> 1002" % (fin, {None: "", "frame": ", a write "
                                           "per frame", 1: ", in 1-byte TCP "
                                           "chunks"}[chop]), orphan(fin, chop))

    def c5_15(t):
        t.send_frames([(TEXT, b"fragment1", False), (CONT, b"fragment2"),
                       (CONT, b"fragment3", False), (TEXT, b"fragment4")])
        ev = t.expect_msg_or_close(TEXT, b"fragment1fragment2")
        t.expect_fail(1002, ev)
    add("5.15", "text in 2 fragments, then an orphan continuation: echo, "
        "then 1002", c5_15)

    def repeated(fin1):
        def fn(t):
            t.send_frames([(CONT, b"fragment1", fin1),
                           (TEXT, b"fragment2", False),
                           (CONT, b"fragment3")] * 2)
            t.expect_fail(1002)
        return fn
    add("5.16", "2x (continuation FIN=0, text fragment, continuation) "
        "-> 1002", repeated(False))
    add("5.17", "2x (continuation FIN=1, text fragment, continuation) "
        "-> 1002", repeated(True))

    def c5_18(t):
        t.send_frames([(TEXT, b"fragment1", False), (TEXT, b"fragment2")])
        t.expect_fail(1002)
    add("5.18", "text in 2 fragments, both with opcode text -> 1002", c5_18)

    def c5_19(sync):
        def fn(t):
            ch = "frame" if sync else None
            t.send_frames([(TEXT, b"fragment1", False),
                           (CONT, b"fragment2", False),
                           (PING, b"pongme 1!")], chop=ch)
            time.sleep(1)
            t.send_frames([(CONT, b"fragment3", False),
                           (CONT, b"fragment4", False),
                           (PING, b"pongme 2!")], chop=ch)
            time.sleep(1)
            t.send_frames([(CONT, b"fragment5")], chop=ch)
            t.expect_pong(b"pongme 1!")
            t.expect_pong(b"pongme 2!")
            t.expect_msg(TEXT, b"fragment1fragment2fragment3fragment4"
                               b"fragment5")
            t.close_handshake()
        return fn
    add("5.19", "text in 5 fragments over 2 s, 2 pings between", c5_19(False),
        tscale=2)
    add("5.20", "same, a write per frame", c5_19(True), tscale=2)

    # X.4: more fragmentation rules (ours)
    def frag_close(t):
        t.send_frames([(CLOSE, close_payload(1000), False),
                       (CONT, b"xx")])
        t.expect_fail(1002)
    add("X.4.1", "close in 2 fragments -> 1002", frag_close, origin="ext")

    def long_pong(t):
        t.send(PONG, b"\xfe" * 126)
        t.expect_fail(1002)
    add("X.4.2", "pong of 126 bytes -> 1002", long_pong, origin="ext")

    def binary_in_text(t):
        t.send_frames([(TEXT, b"fragment1", False), (BINARY, b"fragment2")])
        t.expect_fail(1002)
    add("X.4.3", "text fragment, then a binary frame -> 1002",
        binary_in_text, origin="ext")

    def ctrl_between_many(t):
        frames = [(TEXT, b"a", False)]
        for i in range(50):
            frames += [(PING, b"%d" % i), (PONG, b"x"), (CONT, b"b", False)]
        frames.append((CONT, b"c"))
        t.send_frames(frames, chop=7)
        for i in range(50):
            t.expect_pong(b"%d" % i)
        t.expect_msg(TEXT, b"a" + b"b" * 50 + b"c")
        t.close_handshake()
    add("X.4.4", "50 pings and pongs between 52 fragments, in 7-byte TCP "
        "chunks", ctrl_between_many, origin="ext")

    def empty_fragments(t):
        t.send_frames([(BINARY, b"", False), (CONT, b"", False), (CONT, b"")])
        t.expect_msg(BINARY, b"")
        t.close_handshake()
    add("X.4.5", "binary message of 3 empty fragments", empty_fragments,
        origin="ext")

    # ---- 6 UTF-8 ---------------------------------------------------------
    add_utf8_cases(add, full)

    # ---- 7 close ---------------------------------------------------------
    def c7_1_1(t):
        t.send(TEXT, b"Hello World!")
        t.send(CLOSE, close_payload(1000))
        ev = t.expect_msg_or_close(TEXT, b"Hello World!", "the close")
        t.close_handshake(sent=True, ev=ev)
    add("7.1.1", "text, then close: echo, then close 1000", c7_1_1)

    def after_close(frames, desc):
        def fn(t):
            t.send_frames([(CLOSE, close_payload(1000))] + frames)
            t.close_handshake(sent=True)
        return fn
    add("7.1.2", "two close frames: one close answered",
        after_close([(CLOSE, close_payload(1000))], ""))
    add("7.1.3", "ping after close: ignored",
        after_close([(PING, b"Hello World!")], ""))
    add("7.1.4", "text after close: ignored",
        after_close([(TEXT, b"Hello World!")], ""))

    def c7_1_5(t):
        t.send_frames([(TEXT, b"fragment1", False), (CLOSE, close_payload(1000)),
                       (CONT, b"fragment2")])
        t.close_handshake(sent=True)
    add("7.1.5", "text fragment, close, last fragment: only the close "
        "answered", c7_1_5)

    def c7_1_6(t):
        big = b"BAsd7&jh23" * 26214 + b"Bjgu"
        t.send_frames([(TEXT, big), (CLOSE, close_payload(1000)),
                       (PING, b"Hello World!")])
        ev = t.next()
        if ev.kind == "msg":
            if ev.op != TEXT or ev.data != big:
                raise Failed("echo differs from the 256 KiB message")
            t.note("echo received before the close")
            ev = t.next()
        else:
            t.note("no echo (allowed: closed first)")
        if ev.kind != "close" or ev.code not in (1000, None):
            raise Failed("expected close 1000, got %s" % describe(ev))
        t.w.close_sent = True
        t._peer_closed_tcp(2.0)
    add("7.1.6", "256 KiB text, close, ping: (echo), close, no pong",
        c7_1_6)

    def close_ok(payload, accept):
        def fn(t):
            code = struct.unpack("!H", payload[:2])[0] if payload else None
            t.send(CLOSE, payload)
            t.close_handshake(code=code, sent=True, accept=accept)
        return fn
    add("7.3.1", "close with no payload: answered", close_ok(b"",
                                                              (None, 1000)))

    def c7_3_2(t):
        t.send(CLOSE, b"\x03")
        t.expect_fail(1002)
    add("7.3.2", "close with a 1-byte payload -> 1002", c7_3_2)
    add("7.3.3", "close 1000, no reason", close_ok(close_payload(1000),
                                                   (1000,)))
    add("7.3.4", "close 1000 with a reason", close_ok(
        close_payload(1000, b"Hello World!"), (1000,)))
    add("7.3.5", "close 1000 with a 123-byte reason", close_ok(
        close_payload(1000, b"*" * 123), (1000,)))

    def c7_3_6(t):
        t.send(CLOSE, close_payload(1000, b"*" * 124))
        t.expect_fail(1002)
    add("7.3.6", "close with a 124-byte reason (payload 126) -> 1002", c7_3_6)

    def c7_5_1(t):
        t.send(CLOSE, close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce"
                                          b"\xbc\xce\xb5\xed\xa0\x80\x65\x64"
                                          b"\x69\x74\x65\x64"))
        t.expect_fail(1007)
    add("7.5.1", "close reason with invalid UTF-8 -> 1007", c7_5_1)

    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000,
             3999, 4000, 4999]
    for i, code in enumerate(valid, 1):
        add("7.7.%d" % i, "close %d (valid): answered" % code,
            close_ok(close_payload(code), (code, 1000)))
    for i, code in enumerate((1012, 1013, 1014), 14):
        add("7.7.%d" % i, "close %d (registered, valid): answered" % code,
            close_ok(close_payload(code), (code, 1000)), origin="ext")

    def close_bad(code, reason):
        def fn(t):
            t.send(CLOSE, close_payload(code, reason))
            t.expect_fail(1002)
        return fn
    invalid = [(1, 0), (2, 999), (3, 1004), (4, 1005), (5, 1006), (6, 1016),
               (7, 1100), (8, 2000), (9, 2999), (10, 1015)]
    for i, code in invalid:
        cid = "7.9.%d" % i
        add(cid, "close %d (invalid) -> 1002" % code, close_bad(code, b""),
            origin="autobahn" if i < 10 else "ext")
        add(cid + "+reason", "close %d (invalid) with a reason -> 1002"
            % code, close_bad(code, b"with a reason"), origin="ext")
    for i, code in ((1, 5000), (2, 65535)):
        cid = "7.13.%d" % i
        add(cid, "close %d (out of range) -> 1002" % code,
            close_bad(code, b""))
        add(cid + "+reason", "close %d (out of range) with a reason -> 1002"
            % code, close_bad(code, b"with a reason"), origin="ext")

    # ---- 9 limits and performance ----------------------------------------
    add_limit_cases(add, full)

    # ---- 10 auto-fragmentation -------------------------------------------
    def c10_1_1(t):
        payload = b"*" * 65536
        frames = [(TEXT if i == 0 else CONT, payload[i:i + 1300],
                   i + 1300 >= len(payload))
                  for i in range(0, len(payload), 1300)]
        t.send_frames(frames)
        t.expect_echo_any_frag(TEXT, payload)
        t.close_handshake()
    add("10.1.1", "65536-byte text in 1300-byte frames: exact echo, any "
        "fragmentation", c10_1_1)

    # ---- extras ----------------------------------------------------------
    add_extra_cases(add, role, full)
    return cases


def add_utf8_cases(add, full):
    kosme = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
    hello = "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode()

    def echo_frames(frames, payload, chop=None):
        def fn(t):
            t.send_frames(frames, chop=chop)
            t.expect_msg(TEXT, payload)
            t.close_handshake()
        return fn

    def one_byte_frames(p):
        if not p:
            return [(TEXT, b"")]
        return [(TEXT if i == 0 else CONT, p[i:i + 1], i == len(p) - 1)
                for i in range(len(p))]

    add("6.1.1", "empty text message", echo_frames([(TEXT, b"")], b""))
    add("6.1.2", "text of 3 empty fragments", echo_frames(
        [(TEXT, b"", False), (CONT, b"", False), (CONT, b"")], b""))
    add("6.1.3", "text of 3 fragments, the first and last empty",
        echo_frames([(TEXT, b"", False), (CONT, b"middle frame payload",
                                          False), (CONT, b"")],
                    b"middle frame payload"))
    add("6.2.1", "valid UTF-8 text, one frame", echo_frames(
        [(TEXT, hello)], hello))
    cut = hello.index(b"\xc3")
    add("6.2.2", "valid UTF-8 text, 2 fragments at a code point boundary",
        echo_frames([(TEXT, hello[:cut], False), (CONT, hello[cut:])], hello))
    add("6.2.3", "valid UTF-8 text, 1-byte fragments",
        echo_frames(one_byte_frames(hello), hello))
    add("6.2.4", "valid UTF-8 (kosme), 1-byte fragments: splits inside "
        "code points", echo_frames(one_byte_frames(kosme), kosme))
    bad = kosme + b"\xed\xa0\x80edited"

    def fail_frames(frames, code=1007, chop=None):
        def fn(t):
            t.send_frames(frames, chop=chop)
            t.expect_fail(code)
        return fn
    add("6.3.1", "invalid UTF-8 (a surrogate), one frame -> 1007",
        fail_frames([(TEXT, bad)]))
    add("6.3.2", "invalid UTF-8 (a surrogate), 1-byte fragments -> 1007",
        fail_frames(one_byte_frames(bad)))

    # 6.4: fail-fast, U+110000 in the middle
    p1, p2, p3 = kosme, b"\xf4\x90\x80\x80", b"edited"

    def ff_fragments(a, b, c):
        def fn(t):
            t.failfast(t.frame(TEXT, a, False), t.frame(CONT, b, False),
                       t.frame(CONT, c), 1007)
        return fn

    def ff_chops(a, b, c):
        def fn(t):
            f = t.frame(TEXT, a + b + c)
            h = header_len(f)
            t.failfast(f[:h + len(a)], f[h + len(a):h + len(a) + len(b)],
                       f[h + len(a) + len(b):], 1007)
        return fn
    add("6.4.1", "fail-fast: 3 fragments, the 2nd holds U+110000: close "
        "before the 3rd", ff_fragments(p1, p2, p3))
    add("6.4.2", "fail-fast: 3 fragments, the 2nd is the one invalid byte",
        ff_fragments(p1 + b"\xf4", b"\x90", b"\x80\x80" + p3))
    add("6.4.3", "fail-fast: one frame in 3 TCP chunks, the 2nd holds "
        "U+110000", ff_chops(p1, p2, p3))
    add("6.4.4", "fail-fast: one frame in 3 TCP chunks, the 2nd is the "
        "invalid byte", ff_chops(p1 + b"\xf4", b"\x90", b"\x80\x80" + p3))

    # 6.5 - 6.23: the Markus Kuhn style vectors, each one message
    vec = []

    def group(g, desc, items, start=1):
        for i, b in enumerate(items, start):
            vec.append(("6.%d.%d" % (g, i), desc, b))
    group(5, "valid UTF-8", [kosme, b"\xf0\x90\x80\x80",
                             b"\x24\xc2\xa2\xe2\x82\xac\xf0\x90\x8d\x88",
                             b"\xe2\x82\xac", b"\xf0\x9d\x84\x9e"])
    group(6, "prefix of kosme", [kosme[:i] for i in range(1, 12)])
    group(7, "first sequence of its length", [
        b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"])
    group(8, "first 5/6-byte sequence", [b"\xf8\x88\x80\x80\x80",
                                         b"\xfc\x84\x80\x80\x80\x80"])
    group(9, "last sequence of its length", [
        b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"])
    group(10, "last 4/5/6-byte pattern", [
        b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf\xbf"])
    group(11, "boundary", [b"\xed\x9f\xbf", b"\xee\x80\x80",
                           b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf",
                           b"\xf4\x90\x80\x80"])
    group(12, "unexpected continuation bytes", [
        b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
        b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf",
        bytes(range(0x80, 0xC0))])
    group(13, "lonely start bytes, each followed by a space", [
        b"".join(bytes((c, 0x20)) for c in range(a, z))
        for a, z in ((0xC0, 0xE0), (0xE0, 0xF0), (0xF0, 0xF8), (0xF8, 0xFC),
                     (0xFC, 0xFE))])
    trunc = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
             b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
             b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    group(14, "sequence with its last byte missing", trunc)
    group(15, "incomplete sequences concatenated", [b"".join(trunc)])
    group(16, "impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"])
    group(17, "overlong '/'", [b"\xc0\xaf", b"\xe0\x80\xaf",
                               b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",
                               b"\xfc\x80\x80\x80\x80\xaf"])
    group(18, "maximum overlong", [b"\xc1\xbf", b"\xe0\x9f\xbf",
                                   b"\xf0\x8f\xbf\xbf",
                                   b"\xf8\x87\xbf\xbf\xbf",
                                   b"\xfc\x83\xbf\xbf\xbf\xbf"])
    group(19, "overlong NUL", [b"\xc0\x80", b"\xe0\x80\x80",
                               b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80",
                               b"\xfc\x80\x80\x80\x80\x80"])
    sur = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
           b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]
    group(20, "single UTF-16 surrogate", sur)
    group(21, "paired UTF-16 surrogates", [
        a + b for a in sur[:4] for b in (sur[4], sur[6])])
    nonchar = [0xFFFE, 0xFFFF] + [p * 0x10000 + x for p in range(1, 17)
                                  for x in (0xFFFE, 0xFFFF)]
    group(22, "noncharacter (valid)", [chr(c).encode() for c in nonchar])
    group(23, "specials (valid)", [chr(c).encode()
                                   for c in range(0xFFF9, 0x10000)])
    # ours: every boundary code point together, U+FDD0..U+FDEF, and
    # sequences that go wrong on their 2nd byte
    group(24, "boundary code points together (valid)", [
        "".join(map(chr, (0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000,
                          0xFFFD, 0xFFFF, 0x10000, 0x10FFFF))).encode(),
        "".join(map(chr, range(0xFDD0, 0xFDF0))).encode()])
    group(25, "invalid at the 2nd byte", [
        b"\xc2\x41", b"\xe1\x80\x41", b"\xf1\x80\x80\x41", b"\xed\xa0",
        b"\xf4\x90", b"\xe0\x9f", b"\xf0\x8f", b"\xf5\x80\x80\x80"])

    for cid, desc, b in vec:
        g = int(cid.split(".")[1])
        origin = "ext" if g >= 24 else "autobahn"
        pos = utf8_fail_pos(b)
        ok = pos is None
        assert ok == _py_valid(b), cid
        what = "%s %s" % (desc, short(b, 12))
        if ok:
            add(cid, what + ": echo", echo_frames([(TEXT, b)], b),
                origin=origin)
            add(cid + "+frag", what + ", 1-byte fragments: echo",
                echo_frames(one_byte_frames(b), b), origin="ext")
            add(cid + "+chop", what + ", 1-byte TCP chunks: echo",
                echo_frames([(TEXT, b)], b, chop=1), origin="ext")
            add(cid + "+split", what + ", 2 fragments split at every byte: "
                "echo", split_valid(b), origin="ext", quick=False)
            continue
        where = ("at the end" if pos == len(b) else "at byte %d" % pos)
        add(cid, what + " (invalid %s) -> 1007" % where,
            fail_frames([(TEXT, b)]), origin=origin)
        add(cid + "+frag", what + ", 1-byte fragments -> 1007",
            fail_frames(one_byte_frames(b)), origin="ext")
        add(cid + "+chop", what + ", 1-byte TCP chunks -> 1007",
            fail_frames([(TEXT, b)], chop=1), origin="ext")
        data = b + b"-tail"
        fp = utf8_fail_pos(data)

        def ff(t, data=data, fp=fp):
            f = t.frame(TEXT, data)
            h = header_len(f)
            t.failfast(f[:h + fp], f[h + fp:h + fp + 1], f[h + fp + 1:], 1007)
        add(cid + "+failfast", what + " + '-tail', one frame: close 1007 "
            "after byte %d, before the rest" % fp, ff, origin="ext")
        add(cid + "+split", what + ", 2 fragments split at every byte "
            "-> 1007", split_invalid(b), origin="ext", quick=False)


def _py_valid(b):
    try:
        b.decode("utf-8", "strict")
        return True
    except UnicodeDecodeError:
        return False


def split_valid(b):
    def fn(t):
        for k in range(0, len(b) + 1):
            t.send_frames([(TEXT, b[:k], False), (CONT, b[k:])])
            t.expect_msg(TEXT, b)
        t.close_handshake()
    return fn


def split_invalid(b):
    def fn(t):
        for k in range(0, len(b) + 1):
            if k:
                t.open()
            t.send_frames([(TEXT, b[:k], False), (CONT, b[k:])])
            t.expect_fail(1007)
    return fn


def add_limit_cases(add, full):
    def timed_echo(op, n, frame_size=None, chop=None):
        def fn(t):
            payload = (b"*" if op == TEXT else b"\xfe") * n
            t0 = time.monotonic()
            if frame_size:
                frames = [(op if i == 0 else CONT, payload[i:i + frame_size],
                           i + frame_size >= n)
                          for i in range(0, n, frame_size)]
                t.send_frames(frames)
            else:
                t.send(op, payload, chop=chop)
            t.expect_msg(op, payload)
            dt = time.monotonic() - t0
            t.note("echo in %.1f ms, %.1f MiB/s" % (
                dt * 1000, n / MIB / max(dt, 1e-9)))
            t.close_handshake()
        return fn

    sizes = [64 * KIB, 256 * KIB, MIB, 4 * MIB, 8 * MIB, 16 * MIB]
    for g, op in ((1, TEXT), (2, BINARY)):
        for i, n in enumerate(sizes, 1):
            add("9.%d.%d" % (g, i), "%s message of %s" % (OPNAME[op],
                                                          human(n)),
                timed_echo(op, n), tscale=4, quick=n <= MIB)
    fsizes = [64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB,
              4 * MIB]
    total = 4 * MIB if full else MIB
    for g, op in ((3, TEXT), (4, BINARY)):
        for i, fs in enumerate(fsizes, 1):
            if fs > total:
                continue
            add("9.%d.%d" % (g, i), "%s message of %s in %s frames" % (
                OPNAME[op], human(total), human(fs)),
                timed_echo(op, total, frame_size=fs), tscale=4)
    for g, op in ((5, TEXT), (6, BINARY)):
        for i, ch in enumerate((64, 128, 256, 512, 1024, 2048), 1):
            add("9.%d.%d" % (g, i), "%s message of 1 MiB in %d-byte TCP "
                "chunks" % (OPNAME[op], ch), timed_echo(op, MIB, chop=ch),
                tscale=4)

    def rtt(op, n, count=1000):
        def fn(t):
            payload = (b"*" if op == TEXT else b"\xfe") * n
            t0 = time.monotonic()
            for _ in range(count):
                t.send(op, payload)
                t.expect_msg(op, payload)
            dt = time.monotonic() - t0
            t.note("%d round trips, %.1f us each" % (count,
                                                      dt / count * 1e6))
            t.close_handshake()
        return fn
    for g, op in ((7, TEXT), (8, BINARY)):
        for i, n in enumerate((0, 16, 64, 256, 1024, 4096), 1):
            add("9.%d.%d" % (g, i), "1000 %s messages of %d bytes, one at "
                "a time (round trip)" % (OPNAME[op], n), rtt(op, n), tscale=4)

    def pipelined(op, n, count):
        def fn(t):
            payloads = [os.urandom(n) if op == BINARY else
                        (b"%08d" % i * (n // 8 + 1))[:n] for i in range(count)]
            t0 = time.monotonic()
            t.send_frames([(op, p) for p in payloads])
            for p in payloads:
                t.expect_msg(op, p)
            dt = time.monotonic() - t0
            t.note("%d messages in %.1f ms" % (count, dt * 1000))
            t.close_handshake()
        return fn
    add("9.9.1", "1000 text messages of 64 bytes, pipelined, in order",
        pipelined(TEXT, 64, 1000), tscale=4, origin="ext")
    add("9.9.2", "1000 binary messages of 64 bytes, pipelined, in order",
        pipelined(BINARY, 64, 1000), tscale=4, origin="ext")
    add("9.9.3", "10000 binary messages of 16 bytes, pipelined",
        pipelined(BINARY, 16, 10000), tscale=4, origin="ext")
    add("9.9.4", "100 binary messages of 64 KiB, pipelined",
        pipelined(BINARY, 64 * KIB, 100), tscale=4, origin="ext",
        quick=False)


def human(n):
    if n >= MIB:
        return "%d MiB" % (n // MIB)
    if n >= KIB:
        return "%d KiB" % (n // KIB)
    return "%d bytes" % n


def add_extra_cases(add, role, full):
    peer = "server" if role == "server" else "client"
    wrong = "unmasked" if role == "server" else "masked"

    def mask_rule(op, payload):
        def fn(t):
            t.raw(t.frame(op, payload, mask=(role != "server")))
            t.expect_fail(1002)
        return fn
    add("X.1.1", "%s text frame to a %s -> 1002" % (wrong, peer),
        mask_rule(TEXT, b"Hello, world!"), origin="ext")
    add("X.1.2", "%s ping to a %s -> 1002" % (wrong, peer),
        mask_rule(PING, b"ping"), origin="ext")
    add("X.1.3", "%s close to a %s -> 1002" % (wrong, peer),
        mask_rule(CLOSE, close_payload(1000)), origin="ext")

    def mask_after_ok(t):
        t.send(TEXT, b"fine")
        t.expect_msg(TEXT, b"fine")
        t.raw(t.frame(BINARY, b"\x01\x02", mask=(role != "server")))
        t.expect_fail(1002)
    add("X.1.4", "a good message, then a %s one: echo, then 1002" % wrong,
        mask_after_ok, origin="ext")

    def topbit(t):
        f = t.frame(BINARY, b"", length=0)
        hdr = bytes((0x82, f[1] | 127)) + struct.pack("!Q", (1 << 63) | 5)
        key = f[2:6] if role == "server" else b""
        t.failfast(hdr[:2], hdr[2:] + key, b"hello", 1002, lenient=(1009,))
    add("X.2.1", "64-bit length with the top bit set -> 1002 (before any "
        "payload; 1009 is NON-STRICT)", topbit, origin="ext")

    def huge(n, code):
        def fn(t):
            f = t.frame(BINARY, b"", length=0)
            hdr = bytes((0x82, f[1] | 127)) + struct.pack("!Q", n)
            key = f[2:6] if role == "server" else b""
            t.failfast(hdr[:2], hdr[2:] + key, b"\xfe" * 1024, code)
        return fn
    add("X.2.2", "frame of 2^40 bytes announced -> 1009 at the header",
        huge(1 << 40, 1009), origin="ext")
    add("X.2.3", "frame of 16 MiB + 1 announced -> 1009 at the header",
        huge(16 * MIB + 1, 1009), origin="ext")

    def cumulative(t):
        part = b"\xfe" * (9 * MIB)
        t.send(BINARY, part, fin=False)
        f = t.frame(CONT, b"", length=0)
        hdr = bytes((0x80, f[1] | 127)) + struct.pack("!Q", 9 * MIB)
        key = f[2:6] if role == "server" else b""
        t.failfast(hdr[:2], hdr[2:] + key, b"\xfe" * 4096, 1009)
    add("X.2.4", "9 MiB fragment, then a 9 MiB one announced (message over "
        "16 MiB) -> 1009 at its header", cumulative, tscale=2, origin="ext")

    def non_minimal(t):
        # 16-bit and 64-bit length forms for small payloads (RFC 6455 5.2
        # says minimal; Autobahn does not test it): echo or 1002, reported
        p = b"Hello"
        f = t.frame(TEXT, p)
        key = f[2:6] if role == "server" else b""
        m = 0x80 if role == "server" else 0
        body = mask_bytes(p, key) if key else p
        t.raw(bytes((0x81, m | 126)) + struct.pack("!H", 5) + key + body)
        ev = t.next()
        if ev.kind == "msg" and ev.data == p:
            t.note("accepted (16-bit length form)")
            t.close_handshake()
        else:
            t.expect_fail(1002, ev)
            t.note("rejected")
    add("X.2.5", "5-byte text with a 16-bit length: echo or 1002 (either "
        "accepted)", non_minimal, origin="ext")

    def flood(n, codes_ok):
        def fn(t):
            t0 = time.monotonic()
            if role == "server":
                keys = os.urandom(4 * n)
                body = b"".join(b"\x00\x80" + keys[4 * i:4 * i + 4]
                                for i in range(n))
            else:
                body = b"\x00\x00" * n
            t.raw(t.frame(TEXT, b"a", False) + body + t.frame(CONT, b"b"))
            ev = t.next()
            dt = time.monotonic() - t0
            if ev.kind == "msg":
                if ev.op != TEXT or ev.data != b"ab":
                    raise Failed("echo %r, expected 'ab'" % short(ev.data))
                t.note("echoed after %.0f ms" % (dt * 1000))
                t.close_handshake()
            else:
                t.expect_fail(codes_ok, ev, lenient=(1008,))
                t.note("refused after %.0f ms" % (dt * 1000))
        return fn
    add("X.3.1", "flood: text 'a' + 100000 empty continuations + 'b': echo "
        "or 1009 (1008 NON-STRICT), in bounded time", flood(100000, (1009,)), origin="ext")
    add("X.3.2", "flood: 200000 empty continuations: echo or 1009, in "
        "bounded time", flood(200000, (1009,)), origin="ext", tscale=2)

    def empty_pings(t):
        n = 10000
        t.send_frames([(PING, b"")] * n)
        for i in range(n):
            ev = t.next()
            if ev.kind in ("eof", "close"):
                t.note("%d pongs, then %s" % (i, describe(ev)))
                t.expect_fail((), ev, lenient=(1008,))
                return
            if ev.kind != "pong" or ev.data != b"":
                raise Failed("pong %d of %d: got %s" % (i + 1, n,
                                                         describe(ev)))
        t.close_handshake()
    add("X.3.3", "10000 empty pings, pipelined: 10000 pongs (a limit: "
        "NON-STRICT)", empty_pings,
        origin="ext", tscale=2)

    if role == "server":
        add_server_handshake_cases(add)
    else:
        add_client_handshake_cases(add)


# ---- H: the server's opening handshake (RFC 6455 4.2) ---------------------

def add_server_handshake_cases(add):
    def request(t, method="GET", path=None, version="HTTP/1.1", drop=(),
                replace=None, extra=(), key=None):
        tg = t.target
        key = key or base64.b64encode(os.urandom(16)).decode()
        hdrs = [("Host", "%s:%d" % (tg.host, tg.port)),
                ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
        replace = replace or {}
        out = []
        for n, v in hdrs:
            if n in drop:
                continue
            out.append((n, replace.get(n, v)))
        out += list(extra)
        text = "%s %s %s\r\n" % (method, path or tg.path, version)
        text += "".join("%s: %s\r\n" % hv for hv in out) + "\r\n"
        return text.encode("latin-1"), key

    def exchange(t, data, chop=None, delay=0.0):
        s = t.target.connect()
        t.sock = s
        try:
            if chop:
                for i in range(0, len(data), chop):
                    s.sendall(data[i:i + chop])
                    if delay:
                        time.sleep(delay)
            else:
                s.sendall(data)
        except OSError as e:
            t.note("send: %s" % e)
        try:
            head, rest, eof = read_http_head(s, time.monotonic() +
                                             OPTS.timeout)
        except TimeoutError:
            s.close()
            raise Failed("no HTTP answer within %.0f s" % OPTS.timeout)
        if b"\r\n\r\n" not in head:
            s.close()
            raise Failed("TCP closed without an HTTP answer (%r)" % head[:80])
        line, hdrs = parse_head(head)
        parts = line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return s, status, hdrs, rest, line

    def expect_status(ok, nonstrict=(), check=None, **kw):
        def fn(t):
            data, _ = request(t, **kw)
            s, status, hdrs, rest, line = exchange(t, data)
            try:
                if status in ok:
                    if check:
                        check(t, hdrs)
                elif status in nonstrict:
                    t.nonstrict("answered %r, expected %s" % (
                        line, " or ".join(map(str, ok))))
                else:
                    raise Failed("answered %r, expected %s" % (
                        line, " or ".join(map(str, ok))))
                t.note(line)
                wait_tcp_close(t, s, rest)
            finally:
                s.close()
        fn.no_open = True
        return fn

    def wait_tcp_close(t, s, rest):
        w = Wire(s, "server", b"")
        deadline = time.monotonic() + 2
        try:
            while w._fill(deadline):
                pass
        except TimeoutError:
            t.nonstrict("the server kept TCP open 2 s after its HTTP error")

    def upgrade_ok(key_fn=None, chop=None, delay=0.0, after=None, **kw):
        def fn(t):
            data, key = request(t, **kw)
            if after:
                data += after(t)
            s, status, hdrs, rest, line = exchange(t, data, chop, delay)
            offered = dict(kw.get("extra", ()))
            why = check_101(line, hdrs, key.encode(), tokens(
                offered.get("Sec-WebSocket-Protocol")), ["permessage-deflate"]
                if "Sec-WebSocket-Extensions" in offered else [])
            if why:
                s.close()
                raise Failed(why)
            t.w = Wire(s, "server", rest)
            t.wires.append(t.w)
            for h in ("sec-websocket-protocol", "sec-websocket-extensions"):
                if hget(hdrs, h):
                    t.note("selected %s: %s (allowed: it was offered)" % (
                        h[14:], hget(hdrs, h)))
            if hget(hdrs, "sec-websocket-extensions"):
                t.close_handshake()     # frames may now be compressed
                return
            if after:
                t.expect_msg(TEXT, b"right after the request")
            t.send(TEXT, b"after the handshake")
            t.expect_msg(TEXT, b"after the handshake")
            t.close_handshake()
        fn.no_open = True
        return fn

    add("H.1", "valid request -> 101 with the right Sec-WebSocket-Accept, "
        "then echo", upgrade_ok(), origin="ext")
    add("H.2", "POST -> 400", expect_status((400,), (405,), method="POST"),
        origin="ext")
    add("H.3", "HTTP/1.0 -> 400", expect_status((400,), (505,),
                                                version="HTTP/1.0"),
        origin="ext")

    def has_version(t, hdrs):
        if "13" not in tokens(hget(hdrs, "sec-websocket-version")):
            raise Failed("426 without Sec-WebSocket-Version: 13 (RFC 6455 "
                         "4.4)")
    add("H.4", "Sec-WebSocket-Version: 12 -> 426 with Sec-WebSocket-Version:"
        " 13", expect_status((426,), (400,), check=has_version,
                             replace={"Sec-WebSocket-Version": "12"}),
        origin="ext")
    add("H.5", "no Sec-WebSocket-Version -> 400 or 426",
        expect_status((400, 426), drop=("Sec-WebSocket-Version",)),
        origin="ext")
    add("H.6", "no Upgrade header -> 400", expect_status(
        (400,), (426,), drop=("Upgrade",)), origin="ext")
    add("H.7", "Upgrade: h2c -> 400", expect_status(
        (400,), (426,), replace={"Upgrade": "h2c"}), origin="ext")
    add("H.8", "no Connection header -> 400", expect_status(
        (400,), (426,), drop=("Connection",)), origin="ext")
    add("H.9", "Connection: keep-alive (no Upgrade token) -> 400",
        expect_status((400,), (426,), replace={"Connection": "keep-alive"}),
        origin="ext")
    add("H.10", "Connection: keep-alive, Upgrade -> 101",
        upgrade_ok(replace={"Connection": "keep-alive, Upgrade"}),
        origin="ext")
    add("H.11", "Upgrade: WebSocket, Connection: UPGRADE (any case) -> 101",
        upgrade_ok(replace={"Upgrade": "WebSocket", "Connection": "UPGRADE"}),
        origin="ext")
    add("H.12", "no Sec-WebSocket-Key -> 400", expect_status(
        (400,), drop=("Sec-WebSocket-Key",)), origin="ext")
    add("H.13", "Sec-WebSocket-Key of 15 bytes -> 400", expect_status(
        (400,), key=base64.b64encode(b"x" * 15).decode()), origin="ext")
    add("H.14", "Sec-WebSocket-Key of 17 bytes -> 400", expect_status(
        (400,), key=base64.b64encode(b"x" * 17).decode()), origin="ext")
    add("H.15", "Sec-WebSocket-Key not base64 (24 chars) -> 400",
        expect_status((400,), key="!!!!not*base64*at*all!!!"), origin="ext")
    add("H.16", "two Sec-WebSocket-Key headers -> 400", expect_status(
        (400,), extra=[("Sec-WebSocket-Key",
                        base64.b64encode(os.urandom(16)).decode())]),
        origin="ext")
    add("H.17", "no Host header -> 400", expect_status(
        (400,), drop=("Host",)), origin="ext")
    add("H.18", "a 32 KiB header -> 431 or 400", expect_status(
        (431, 400), extra=[("X-Big", "x" * (32 * KIB))]), origin="ext")
    add("H.19", "1000 header lines (18 KB) -> 431 or 400 (a limit, not an "
        "RFC rule: 101 is NON-STRICT)", expect_status(
        (431, 400), (101,), extra=[("X-Filler-%04d" % i, "y") for i in range(1000)]),
        origin="ext")
    add("H.20", "request in 1-byte TCP chunks -> 101", upgrade_ok(chop=1),
        origin="ext")
    add("H.21", "request in 16-byte chunks 20 ms apart -> 101",
        upgrade_ok(chop=16, delay=0.02), tscale=2, origin="ext")
    add("H.22", "request and a first frame in one TCP write -> 101 and "
        "echo", upgrade_ok(after=lambda t: build_frame(
            TEXT, b"right after the request")), origin="ext")
    add("H.23", "extension offered (permessage-deflate): 101, selecting "
        "none (or the one offered)", upgrade_ok(extra=[(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits")]), origin="ext")
    add("H.24", "subprotocols offered: 101, selecting none (or one "
        "offered)", upgrade_ok(extra=[(
            "Sec-WebSocket-Protocol", "chat, superchat")]), origin="ext")
    add("H.25", "path with a query string -> 101",
        upgrade_ok(path="/some/path?x=1&y=%20"), origin="ext")
    add("H.26", "lowercase method 'get' -> 400", expect_status(
        (400,), (405, 501), method="get"), origin="ext")

    def garbage(t):
        s, status, hdrs, rest, line = exchange(t, b"HELLO THERE\r\n\r\n")
        try:
            if status != 400:
                raise Failed("answered %r, expected 400" % line)
            wait_tcp_close(t, s, rest)
        finally:
            s.close()
    garbage.no_open = True
    add("H.27", "not HTTP at all -> 400", garbage, origin="ext")


# ---- H.c: the client's opening handshake (RFC 6455 4.1) -------------------

def add_client_handshake_cases(add):
    def good(chop=None, extra="", then_frame=False, upgrade="websocket",
             connection="Upgrade"):
        def fn(t):
            w = t.open(respond=False)
            resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\n"
                    "Connection: %s\r\nSec-WebSocket-Accept: %s\r\n%s\r\n" % (
                        upgrade, connection, accept_for(w.key.encode()),
                        extra)).encode()
            if then_frame:
                resp += build_frame(TEXT, b"with the 101", mask=False)
            w.send(resp, chop=chop)
            if then_frame:
                t.expect_msg(TEXT, b"with the 101")
            t.send(TEXT, b"after the 101")
            t.expect_msg(TEXT, b"after the 101")
            t.close_handshake()
        fn.no_open = True
        return fn

    def must_refuse(make):
        def fn(t):
            w = t.open(respond=False)
            resp = make(w.key).encode()
            w.send(resp + build_frame(TEXT, b"must not be echoed", mask=False))
            deadline = time.monotonic() + 5 * t.case.tscale
            try:
                while w._fill(deadline):
                    pass
            except TimeoutError:
                if w.buf:
                    raise Failed("the client accepted the invalid answer: it "
                                 "sent %s and kept the connection open" %
                                 short(bytes(w.buf)))
                raise Failed("the client kept the connection open 5 s after "
                             "an invalid answer")
            if w.buf:
                f = Wire(None, "client", bytes(w.buf))
                f.eof = "end of the captured bytes"
                try:
                    fr = f.read_frame(time.monotonic())
                except TimeoutError:
                    fr = None
                if isinstance(fr, tuple) and fr[2] == CLOSE:
                    t.nonstrict("the client sent a close frame on a "
                                "connection that never opened")
                else:
                    raise Failed("the client sent %s after an invalid answer"
                                 % short(bytes(w.buf)))
            w.close_tcp()
            rc = t.wait_exit(w.proc)
            if rc == 0:
                t.nonstrict("the client exited with status 0 after a failed "
                            "handshake")
        fn.no_open = True
        return fn

    def resp(status="101 Switching Protocols", upgrade="websocket",
             connection="Upgrade", accept=None, extra=""):
        def make(key):
            lines = ["HTTP/1.1 " + status]
            if upgrade:
                lines.append("Upgrade: " + upgrade)
            if connection:
                lines.append("Connection: " + connection)
            lines.append("Sec-WebSocket-Accept: " + (
                accept if accept else accept_for(key.encode())))
            return "\r\n".join(lines) + "\r\n" + extra + "\r\n"
        return make

    add("H.c.1", "client request valid (GET, Host, Upgrade, Connection, "
        "16-byte key, version 13); echo works", good(), origin="ext")
    add("H.c.2", "101 in 1-byte TCP chunks: the client opens", good(chop=1),
        origin="ext")
    add("H.c.3", "101 and a first frame in one TCP write", good(
        then_frame=True), origin="ext")
    add("H.c.4", "101 with Upgrade: WebSocket, Connection: keep-alive, "
        "upgrade and an extra header", good(
            extra="X-Extra: yes\r\n", upgrade="WebSocket",
            connection="keep-alive, upgrade"), origin="ext")
    add("H.c.5", "wrong Sec-WebSocket-Accept: the client must not open",
        must_refuse(resp(accept=base64.b64encode(b"x" * 20).decode())),
        origin="ext")
    add("H.c.6", "200 OK instead of 101: the client must not open",
        must_refuse(resp(status="200 OK")), origin="ext")
    add("H.c.7", "101 without Upgrade: the client must not open",
        must_refuse(resp(upgrade=None)), origin="ext")
    add("H.c.8", "101 without Connection: Upgrade: the client must not open",
        must_refuse(resp(connection="keep-alive")), origin="ext")
    add("H.c.9", "101 selecting an extension never offered: the client "
        "must not open", must_refuse(resp(
            extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")),
        origin="ext")
    add("H.c.10", "101 selecting a subprotocol never offered: the client "
        "must not open", must_refuse(resp(
            extra="Sec-WebSocket-Protocol: chat\r\n")), origin="ext")
    add("H.c.11", "HTTP/1.0 101: the client must not open",
        must_refuse(lambda key: resp()(key).replace("HTTP/1.1", "HTTP/1.0",
                                                    1)), origin="ext")


# ---------------------------------------------------------------------------
# Aggregates computed from the cases that ran
# ---------------------------------------------------------------------------

def aggregates(target, fails, results):
    out = []
    if fails.items:
        bad = [(cid, want, got) for cid, want, got in fails.items
               if got != "ok"]
        n = len(fails.items)
        if not bad:
            out.append(("X.9.1", OK, "every failure: the right close code "
                        "before the TCP close", "%d expected failures in %d "
                        "cases, all sent their close code first" % (
                            n, len({c for c, _, _ in fails.items}))))
        else:
            status = FAILED if any(not (g.startswith("TCP closed") or
                                        g.endswith("(non-strict)"))
                                   for _, _, g in bad) else NONSTRICT
            out.append(("X.9.1", status, "every failure: the right close code "
                        "before the TCP close", "%d of %d did not: %s" % (
                            len(bad), n, ", ".join(
                                "%s (want %s, got %s)" % b
                                for b in bad[:12])) +
                        (" ..." if len(bad) > 12 else "")))
    if target.role == "client" and results:
        keys = target.hs_keys
        ok = len(set(keys)) == len(keys)
        out.append(("X.9.2", OK if ok else FAILED, "client: a fresh "
                    "Sec-WebSocket-Key for each connection", "%d connections,"
                    " %d distinct keys" % (len(keys), len(set(keys)))))
        allk = MASK_KEYS
        ok = len(allk) < 2 or len(set(allk)) >= max(2, 0.9 * len(allk))
        out.append(("X.9.3", OK if ok else FAILED, "client: a fresh masking "
                    "key for each frame", "%d masked frames, %d distinct keys"
                    % (len(allk), len(set(allk)))))
    return out


MASK_KEYS = []


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="conformance.py",
        description="RFC 6455 conformance runner (Autobahn case groups and "
                    "more), standard library only.")
    sub = ap.add_subparsers(dest="mode", required=True)

    def common(p):
        p.add_argument("--full", action="store_true",
                       help="the full set (9.x at full size, +split cases)")
        p.add_argument("--cases", default="*",
                       help="comma-separated id patterns, e.g. '1.*,6.4.*'")
        p.add_argument("--skip", default="",
                       help="comma-separated id patterns to leave out")
        p.add_argument("--json", metavar="FILE", help="write a JSON report")
        p.add_argument("--allow-nonstrict", action="store_true",
                       help="NON-STRICT counts as passed")
        p.add_argument("--failfast-wait", type=float, default=1.0,
                       metavar="S", help="how long to wait for a fail-fast "
                       "close before sending the rest (default 1)")
        p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                       help="wait for each expected event (default 5)")
        p.add_argument("--label", default="",
                       help="a name for the target in the summary line")
        p.add_argument("--expect", metavar="FILE",
                       help="expected verdicts (lines 'PATTERN VERDICT "
                       "# why'; default OK): a case passes when its verdict "
                       "is the expected one (for checking the runner against "
                       "other implementations)")
        p.add_argument("--tap", action="store_true",
                       help="prefix each case line with ok/not ok N -")
        p.add_argument("-q", "--quiet", action="store_true",
                       help="print only FAILED/NON-STRICT lines and the "
                       "summary")

    ps = sub.add_parser("server", help="test a server (the runner is the "
                        "client)")
    g = ps.add_mutually_exclusive_group(required=True)
    g.add_argument("--url", help="ws://HOST:PORT/PATH of a running server")
    g.add_argument("--cmd", help="start this server command; {port} is "
                   "replaced by a free port; it must print 'listening on'")
    common(ps)
    pc = sub.add_parser("client", help="test a client (the runner is a "
                        "fuzzing server)")
    pc.add_argument("--cmd", required=True,
                    help="client command, started once per case; {url} is "
                    "replaced by the URL to connect to")
    common(pc)
    pl = sub.add_parser("list", help="list the cases")
    pl.add_argument("role", nargs="?", default="server",
                    choices=("server", "client"))
    pl.add_argument("--full", action="store_true")
    pl.add_argument("--cases", default="*")
    return ap.parse_args(argv)


def load_expect(path):
    """[(pattern, verdict)] from lines 'PATTERN VERDICT  # comment'."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            verdicts = parts[1].split("|") if len(parts) == 2 else []
            if not verdicts or any(v not in (OK, NONSTRICT, FAILED)
                                   for v in verdicts):
                raise SetupError("%s:%d: expected 'PATTERN VERDICT[|VERDICT]'"
                                 " (OK, NON-STRICT, FAILED)" % (path, n))
            out.append((parts[0], tuple(verdicts)))
    return out


def expected_verdict(expect, cid):
    for pat, verdict in expect:
        if fnmatch.fnmatchcase(cid, pat):
            return verdict
    return (OK,)


def select_cases(cases, patterns):
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    return [c for c in cases if any(fnmatch.fnmatchcase(c.id, p) or
                                    fnmatch.fnmatchcase(c.id + ".x", p)
                                    for p in pats)]


def main(argv=None):
    global OPTS
    args = parse_args(argv if argv is not None else sys.argv[1:])
    OPTS = args
    if args.mode == "list":
        cases = select_cases(build_cases(args.role, args.full), args.cases)
        for c in cases:
            print("%-16s %-8s %s" % (c.id, c.origin, c.desc))
        print("%d cases" % len(cases))
        return 0
    cases = select_cases(build_cases(args.mode, args.full), args.cases)
    if args.skip:
        drop = {c.id for c in select_cases(cases, args.skip)}
        cases = [c for c in cases if c.id not in drop]
    if not cases:
        print("conformance: no case matches %r" % args.cases)
        return 2
    try:
        target = ServerTarget(args.url, args.cmd) if args.mode == "server" \
            else ClientTarget(args.cmd)
    except SetupError as e:
        print("conformance: %s" % e)
        print("0 passed, 1 failed")
        return 1
    try:
        expect = load_expect(args.expect) if args.expect else None
    except (OSError, SetupError) as e:
        print("conformance: %s" % e)
        return 2
    fails = Fails()
    results = []
    counts = {OK: 0, NONSTRICT: 0, FAILED: 0}
    surprises = []
    t_start = time.monotonic()
    label = args.label or (args.cmd or args.url)
    print("# conformance %s: %s (%s set, %d cases)" % (
        args.mode, label, "full" if args.full else "quick", len(cases)))
    sys.stdout.flush()

    def report(cid, status, desc, why, ms=None):
        counts[status] += 1
        passed = status == OK or (status == NONSTRICT and
                                  args.allow_nonstrict)
        tag = ""
        if expect is not None:
            want = expected_verdict(expect, cid)
            passed = status in want
            if not passed:
                tag = "  [UNEXPECTED: the expect file says %s]" % "|".join(
                    want)
                surprises.append("%s %s (expected %s)" % (cid, status,
                                                          "|".join(want)))
            elif status != OK:
                tag = "  [expected]"
        results.append({"id": cid, "status": status, "desc": desc,
                        "why": why, "ms": round(ms, 2) if ms else None,
                        "passed": passed})
        if args.quiet and passed and (status == OK or expect is None):
            return
        detail = ", ".join(x for x in (why, "%.1f ms" % ms if ms is not None
                                       else "") if x)
        line = "%-16s %-10s %s%s%s" % (cid, status, desc,
                                       "  (%s)" % detail if detail else "",
                                       tag)
        if args.tap:
            line = "%s %d - %s" % ("ok" if passed else "not ok",
                                   len(results), line)
        print(line)
        sys.stdout.flush()

    try:
        for c in cases:
            status, why, ms = run_case(target, c, fails)
            report(c.id, status, c.desc, why, ms)
        for cid, status, desc, why in aggregates(target, fails, results):
            report(cid, status, desc, why)
    except KeyboardInterrupt:
        print("# interrupted")
    finally:
        rc_stop = target.stop()
    if args.mode == "server" and args.cmd and target.crashes:
        report("X.9.4", FAILED, "the server never crashed",
               "; ".join(target.crashes))
    total_s = time.monotonic() - t_start
    print("conformance %s: %d OK, %d NON-STRICT, %d FAILED (%s, %.1f s)" % (
        args.mode, counts[OK], counts[NONSTRICT], counts[FAILED], label,
        total_s))
    npass = sum(1 for r in results if r["passed"])
    nfail = len(results) - npass
    if expect is not None:
        print("# against %s: %d cases as expected, %d not%s" % (
            args.expect, npass, nfail, (": " + ", ".join(surprises[:20]))
            if surprises else ""))
    print("%d passed, %d failed" % (npass, nfail))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"role": args.mode, "target": label,
                       "set": "full" if args.full else "quick",
                       "seconds": round(total_s, 2),
                       "summary": {"OK": counts[OK],
                                   "NON-STRICT": counts[NONSTRICT],
                                   "FAILED": counts[FAILED]},
                       "server_exit": rc_stop,
                       "cases": results}, f, indent=1)
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
