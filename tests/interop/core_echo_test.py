#!/usr/bin/env python3
"""Black-box tests of an echo server (examples/core_echo, echo_server).

Usage: core_echo_test.py EXE [ARGS...]   ("{port}" in ARGS becomes the
port; with no ARGS the port is the only argument).

Part 1 talks raw RFC 6455 bytes with the standard library only, so every
frame on the wire is written out here, independently of libws.
Part 2 uses the Python `websockets` package as a real peer; if it is not
installed the part prints SKIP (a failure when WS_REQUIRE_PEERS=1).
Output: TAP, then "N passed, N failed".
"""
import asyncio
import base64
import hashlib
import os
import socket
import struct
import subprocess
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    n = len(results)
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, name))
    if not cond and detail:
        print("#   " + str(detail).replace("\n", "\n#   "))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port):
    deadline = time.time() + 5
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.settimeout(5)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def recv_until(s, marker):
    data = b""
    while marker not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    """RFC 6455 5.2, written out by hand."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return hdr + key + body


def read_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    if b1 & 0x80:
        raise AssertionError("server frame is masked (RFC 6455 5.1)")
    return b0 & 0x80, b0 & 0x0F, recv_exact(s, n)


def handshake(s, key=None, extra=b""):
    key = key or base64.b64encode(os.urandom(16))
    s.sendall(b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n")
    resp = recv_until(s, b"\r\n\r\n")
    return key, resp


def raw_tests(port):
    s = connect(port)
    key, resp = handshake(s)
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    check("101 with the right Sec-WebSocket-Accept",
          resp.startswith(b"HTTP/1.1 101") and b"Sec-WebSocket-Accept: " +
          accept in resp, resp)

    s.sendall(frame(1, "héllo wörld €𝄞".encode()))
    check("text echo (multi-byte UTF-8)",
          read_frame(s) == (0x80, 1, "héllo wörld €𝄞".encode()))
    big = os.urandom(70000)
    s.sendall(frame(2, big))
    check("binary echo, 64-bit length", read_frame(s) == (0x80, 2, big))
    s.sendall(frame(9, b"ping!"))
    check("ping answered by pong with the same payload",
          read_frame(s) == (0x80, 10, b"ping!"))
    # Fragmented, with a ping between fragments, sent one byte at a time.
    data = frame(1, b"Hel", fin=False) + frame(9, b"p") + frame(0, b"lo")
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
    f1, f2 = read_frame(s), read_frame(s)
    check("fragments + ping, byte at a time",
          (f1, f2) == ((0x80, 10, b"p"), (0x80, 1, b"Hello")), (f1, f2))
    s.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
    check("close 1000 echoed", read_frame(s) == (0x80, 8, struct.pack("!H", 1000)))
    check("server closes TCP after the close handshake", s.recv(1) == b"")
    s.close()

    cases = [
        ("unmasked frame -> 1002", frame(1, b"x", mask=False), 1002),
        ("RSV1 without extension -> 1002", frame(1, b"x", rsv=4), 1002),
        ("reserved opcode 3 -> 1002", frame(3, b""), 1002),
        ("invalid UTF-8 -> 1007", frame(1, b"\xce\xba\xed\xa0\x80"), 1007),
        ("close code 1005 -> 1002", frame(8, struct.pack("!H", 1005)), 1002),
        ("1-byte close -> 1002", frame(8, b"\x03"), 1002),
        ("ping of 126 bytes -> 1002",
         bytes([0x89, 0xFE, 0, 126, 1, 2, 3, 4]) + bytes(126), 1002),
    ]
    for name, data, code in cases:
        s = connect(port)
        handshake(s)
        s.sendall(data)
        try:
            fin, op, payload = read_frame(s)
            got = struct.unpack("!H", payload[:2])[0] if op == 8 else None
        except Exception as e:  # noqa: BLE001 - report any failure
            got = e
        check(name, got == code, "got %r" % (got,))
        s.close()

    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: "
              b"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
    resp = recv_until(s, b"\r\n\r\n")
    check("version 8 -> 426 with Sec-WebSocket-Version: 13",
          resp.startswith(b"HTTP/1.1 426") and
          b"Sec-WebSocket-Version: 13" in resp, resp)
    s.close()
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check("plain GET -> 400", recv_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 400"))
    s.close()


def peer_tests(port):
    try:
        import websockets
    except ImportError:
        if os.environ.get("WS_REQUIRE_PEERS") == "1":
            check("python websockets installed (WS_REQUIRE_PEERS=1)", False)
        else:
            print("# SKIP python websockets not installed: peer tests skipped")
        return

    async def run():
        uri = "ws://127.0.0.1:%d/" % port
        async with websockets.connect(uri, max_size=2**21) as ws:
            await ws.send("héllo")
            check("websockets %s: text echo" % websockets.__version__,
                  await ws.recv() == "héllo")
            blob = os.urandom(1 << 20)
            await ws.send(blob)
            check("websockets: 1 MiB binary echo", await ws.recv() == blob)
            pong = await ws.ping(b"abc")
            await asyncio.wait_for(pong, 5)
            check("websockets: ping/pong", True)
            await ws.close(code=4000, reason="done")
            check("websockets: close handshake, code echoed",
                  ws.close_code == 4000, ws.close_code)

    asyncio.run(asyncio.wait_for(run(), 30))


def main():
    exe = sys.argv[1]
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in sys.argv[2:]]
    proc = subprocess.Popen([exe] + (args or [str(port)]),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        raw_tests(port)
        peer_tests(port)
    finally:
        proc.kill()
        proc.wait()
    print("1..%d" % len(results))
    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
