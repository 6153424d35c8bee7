#!/usr/bin/env python3
"""Black-box tests of examples/wsdump (the frame dissector).

Usage: wsdump_test.py path/to/wsdump
Every input is written out here, independently of libws: the RFC 6455 5.7
examples, one input per protocol rule (each must name the rule's RFC
section and make wsdump exit 1), a captured handshake, the input forms
(file, stdin, --hex, --hex-input), truncation, usage errors, --json, and a
20 MB stream that must finish quickly in bounded memory.
WSDUMP_VALGRIND=1 runs every small case under valgrind (errors and leaks
fail the case). Output: TAP, then "N passed, N failed"; exit 1 on failure.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"\x37\xfa\x21\x3d"            # RFC 6455 5.7's masking key
results = []
EXE = None
WRAP = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    n = len(results)
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, name))
    if not cond and detail:
        print("#   " + str(detail).replace("\n", "\n#   "))


def run(args, data=b"", wrap=True, timeout=60):
    """Runs wsdump; returns (exit status, stdout text, stderr text)."""
    cmd = (WRAP if wrap else []) + [EXE] + args
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def frame(opcode, payload, fin=True, key=None, rsv=0, length=None):
    """RFC 6455 5.2, written out by hand. length overrides the real one."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    m = 0x80 if key else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not key:
        return hdr + payload
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close(code, reason=b""):
    return frame(8, struct.pack("!H", code) + reason)


def frame_lines(out):
    return [l for l in out.splitlines() if l.startswith("#")]


def expect(name, data, rc, patterns, args=()):
    """Runs on data; checks the exit status and that each regex matches."""
    code, out, err = run(list(args), data)
    missing = [p for p in patterns if not re.search(p, out, re.M)]
    check(name, code == rc and not missing,
          "exit %d (want %d), missing %r\n%s%s" % (code, rc, missing, out,
                                                    err))
    return out


def rfc_examples():
    out = expect("5.7 unmasked Hello", bytes.fromhex("810548656c6c6f"), 0, [
        r'^#1 @0  FIN=1 RSV=000 op=0x1 text  MASK=none  len=5  "Hello"  '
        r'utf8=ok$', r"^summary: 7 bytes, 1 frames, 1 messages, 0 errors$"])
    expect("5.7 masked Hello",
           bytes.fromhex("818537fa213d7f9f4d5158"), 0, [
               r'^#1 @0  FIN=1 RSV=000 op=0x1 text  MASK=37fa213d  len=5  '
               r'"Hello"  utf8=ok$'])
    expect("5.7 fragmented Hel + lo",
           bytes.fromhex("010348656c8002 6c6f".replace(" ", "")), 0, [
               r'^#1 @0  FIN=0 RSV=000 op=0x1 text  MASK=none  len=3  "Hel"'
               r'  utf8=ok$',
               r'^#2 @5  FIN=1 RSV=000 op=0x0 continuation  MASK=none  '
               r'len=2  "lo"  utf8=ok$',
               r"note: message #1 complete: text, 2 fragments"])
    expect("5.7 ping and masked pong",
           bytes.fromhex("890548656c6c6f8a8537fa213d7f9f4d5158"), 0, [
               r'^#1 @0  FIN=1 RSV=000 op=0x9 ping  MASK=none  len=5  '
               r'"Hello"$',
               r'^#2 @7  FIN=1 RSV=000 op=0xA pong  MASK=37fa213d  len=5  '
               r'"Hello"$'])
    blob = bytes(i % 256 for i in range(256))
    data = bytes.fromhex("827e0100") + blob
    expect("5.7 256-byte binary (16-bit length)", data, 0, [
        r"^#1 @0  FIN=1 RSV=000 op=0x2 binary  MASK=none  len=256  "
        r"00 01 02 03 .* 3e 3f \.\.\. \(192 more bytes\)$"])
    code, out, _ = run(["--full"], data)
    shown = re.search(r"len=256  ((?:[0-9a-f]{2} ?)+)$", out, re.M)
    check("--full shows all 256 bytes",
          code == 0 and shown and len(shown.group(1).split()) == 256, out)
    big = bytes(i % 251 for i in range(65536))
    expect("5.7 64 KiB binary (64-bit length)",
           bytes.fromhex("827f0000000000010000") + big, 0, [
               r"^#1 @0  FIN=1 RSV=000 op=0x2 binary  MASK=none  len=65536"
               r"  00 01 .* \.\.\. \(65472 more bytes\)$"])
    expect("--max-payload 2", frame(1, b"Hello") + frame(2, b"\x01\x02\x03"),
           0, [r'len=5  "He" \.\.\. \(3 more bytes\)  utf8=ok$',
               r"len=3  01 02 \.\.\. \(1 more bytes\)$"],
           ["--max-payload", "2"])
    expect("close 1000 with a reason", close(1000, b"bye"), 0,
           [r'op=0x8 close  MASK=none  len=5  code=1000 \(normal closure\)'
            r'  reason="bye"  utf8=ok$'])
    expect("multi-byte UTF-8 split across fragments is fine",
           frame(1, "h\u00e9".encode()[:2], fin=False) +
           frame(0, "h\u00e9".encode()[2:]), 0,
           [r"utf8=partial$", r'continuation .* utf8=ok$'])
    expect("ping between fragments", frame(1, b"Hel", fin=False) +
           frame(9, b"p") + frame(0, b"lo"), 0,
           [r"op=0x9 ping", r"message #1 complete: text, 2 fragments"])
    expect("control bytes are escaped", frame(1, b'a"\\\n\x01'), 0,
           [r'len=5  "a\\"\\\\\\n\\x01"  utf8=ok$'])
    return out


def error_classes():
    cases = [
        ("continuation with nothing to continue", frame(0, b"x"),
         r"continuation frame but no fragmented message .*\(RFC 6455 5\.4\)",
         ()),
        ("new data frame inside a fragmented message",
         frame(1, b"a", fin=False) + frame(2, b"b"),
         r"new binary frame while message #1 is unfinished.*"
         r"\(RFC 6455 5\.4\)", ()),
        ("invalid UTF-8 in one frame, with its offset",
         frame(1, b"ab\xffcd"),
         r"invalid UTF-8 at payload byte 2 \(RFC 6455 8\.1\)", ()),
        ("invalid UTF-8 in a later fragment: message and frame offsets",
         frame(1, b"Hel", fin=False) + frame(0, b"l\xc0\xafo"),
         r"invalid UTF-8 at message byte 4 \(byte 1 of this fragment\) "
         r"\(RFC 6455 8\.1\)", ()),
        ("surrogate split across fragments",
         frame(1, b"a\xed", fin=False) + frame(0, b"\xa0\x80"),
         r"invalid UTF-8 at message byte 2 \(byte 0 of this fragment\)", ()),
        ("text message ends inside a character",
         frame(1, b"ok\xe2\x82", fin=False) + frame(0, b""),
         r"text message ends inside a UTF-8 character \(RFC 6455 8\.1\)",
         ()),
        ("reserved data opcode 0x3", frame(3, b""),
         r"reserved opcode \(RFC 6455 5\.2\)", ()),
        ("reserved control opcode 0xB", frame(0xB, b""),
         r"reserved opcode \(RFC 6455 5\.2\)", ()),
        ("RSV1 without an extension", frame(1, b"x", rsv=4),
         r"RSV bits 100 set but no extension .*\(RFC 6455 5\.2\)", ()),
        ("RSV3 without an extension", frame(2, b"x", rsv=1),
         r"RSV bits 001 .*\(RFC 6455 5\.2\)", ()),
        ("ping of 126 bytes", frame(9, bytes(126)),
         r"control frame payload longer than 125 bytes \(RFC 6455 5\.5\)",
         ()),
        ("fragmented ping", frame(9, b"p", fin=False),
         r"fragmented control frame \(RFC 6455 5\.5\)", ()),
        ("64-bit length with the top bit set",
         bytes.fromhex("827f8000000000000001") + b"x",
         r"64-bit payload length with the most significant bit set "
         r"\(RFC 6455 5\.2\)", ()),
        ("1-byte close payload", frame(8, b"\x03"),
         r"close payload of 1 byte.*\(RFC 6455 5\.5\.1\)", ()),
        ("close code 1005 on the wire", close(1005),
         r"close code 1005 \(no status received\) must not be sent.*"
         r"\(RFC 6455 7\.4\)", ()),
        ("close code 999", close(999),
         r"close code 999 .*\(RFC 6455 7\.4\)", ()),
        ("close reason not UTF-8", close(1000, b"\xff\xfe"),
         r"close reason is not valid UTF-8 \(RFC 6455 5\.5\.1, 8\.1\)", ()),
        ("data frame after close", close(1000) + frame(1, b"x"),
         r"data frame after the close frame #1 \(RFC 6455 5\.5\.1\)", ()),
        ("--role client: unmasked frame", frame(1, b"x"),
         r"a client must mask every frame it sends \(RFC 6455 5\.1\)",
         ("--role", "client")),
        ("--role server: masked frame", frame(1, b"x", key=KEY),
         r"a server must not mask the frames it sends \(RFC 6455 5\.1\)",
         ("--role", "server")),
    ]
    for name, data, pattern, args in cases:
        expect(name, data, 1, [r"^    error: " + pattern], args)

    for args, data in ((["--role", "client"], frame(1, b"x", key=KEY)),
                       (["--role", "server"], frame(1, b"x")),
                       ([], frame(1, b"x") + frame(1, b"y", key=KEY)),
                       (["--allow-rsv", "4"], frame(1, b"x", rsv=4))):
        code, out, _ = run(args, data)
        check("no complaint: %s" % (" ".join(args) or "role inferred"),
              code == 0 and "error:" not in out, out)

    # A dissector shows everything: it goes on after an error.
    code, out, _ = run([], frame(3, b"zz") + frame(0, b"q") +
                       frame(1, b"Hello"))
    lines = frame_lines(out)
    check("decoding continues after errors, exit 1 at the end",
          code == 1 and len(lines) == 3 and '"Hello"' in lines[2] and
          "2 errors" in out, out)
    # The top-bit length leaves nothing to continue with.
    code, out, _ = run([], bytes.fromhex("827f8000000000000001") +
                       frame(1, b"after"))
    check("an unusable length stops decoding",
          code == 1 and len(frame_lines(out)) == 1 and
          "decoding stops here" in out, out)


RFC_REQUEST = (b"GET /chat HTTP/1.1\r\n"
               b"Host: server.example.com\r\n"
               b"Upgrade: websocket\r\n"
               b"Connection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Origin: http://example.com\r\n"
               b"Sec-WebSocket-Protocol: chat, superchat\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
RFC_RESPONSE = (b"HTTP/1.1 101 Switching Protocols\r\n"
                b"Upgrade: websocket\r\n"
                b"Connection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                b"Sec-WebSocket-Protocol: chat\r\n\r\n")


def handshakes():
    n = len(RFC_REQUEST)
    out = expect("RFC 1.2 request + a masked frame",
                 RFC_REQUEST + frame(1, b"Hello", key=KEY), 0, [
                     r"^handshake @0: HTTP request, %d bytes$" % n,
                     r"^  method: GET  path: /chat  HTTP/1\.1$",
                     r"^  host: server\.example\.com$",
                     r"^  key: dGhlIHNhbXBsZSBub25jZQ==$",
                     r"^  version: 13$",
                     r"^  protocols: chat, superchat$",
                     r"^  accept \(computed, RFC 6455 4\.2\.2\): "
                     r"s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=$",
                     r"^  valid request",
                     r'^#1 @%d  FIN=1 RSV=000 op=0x1 text  MASK=37fa213d  '
                     r'len=5  "Hello"  utf8=ok$' % n])
    check("request decoded before the frame",
          out.find("accept (computed") < out.find("#1 @"), out)
    expect("frames after a request are client frames (masking checked)",
           RFC_REQUEST + frame(1, b"Hello"), 1,
           [r"a client must mask every frame it sends \(RFC 6455 5\.1\)"])
    expect("--handshake given explicitly", RFC_REQUEST, 0,
           [r"valid request"], ["--handshake"])
    expect("--no-handshake decodes GET as frame bytes", RFC_REQUEST, 1,
           [r"^#1 @0  FIN=0 RSV=100 op=0x7"], ["--no-handshake"])
    bad = RFC_REQUEST.replace(b"Version: 13", b"Version: 8")
    expect("invalid request: the parser's reason", bad, 1, [
        r"^    error: handshake: Sec-WebSocket-Version must be 13 "
        r"\(RFC 6455 4\.4\); a server answers HTTP 426"])
    nokey = re.sub(rb"Sec-WebSocket-Key: .*?\r\n", b"", RFC_REQUEST)
    expect("request without a key", nokey, 1,
           [r"error: handshake: missing Sec-WebSocket-Key"])
    expect("response: status and headers, accept not verified",
           RFC_RESPONSE + frame(1, b"Hello"), 0, [
               r"^handshake @0: HTTP response",
               r"^  status: 101 Switching Protocols$",
               r"^  accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=$",
               r"^  protocol: chat$", r"accept not verified",
               r'^#1 @%d .*"Hello"' % len(RFC_RESPONSE)])
    expect("response verified with --key", RFC_RESPONSE, 0,
           [r"accept matches key"], ["--key", "dGhlIHNhbXBsZSBub25jZQ=="])
    expect("response with a wrong accept for --key", RFC_RESPONSE, 1,
           [r"error: handshake: Sec-WebSocket-Accept should be"],
           ["--key", "AAAAAAAAAAAAAAAAAAAAAA=="])
    expect("frames after a response are server frames",
           RFC_RESPONSE + frame(1, b"x", key=KEY), 1,
           [r"a server must not mask"])
    expect("request then response: accept checked with the request's key",
           RFC_REQUEST + RFC_RESPONSE + frame(1, b"x"), 0,
           [r"accept matches key dGhlIHNhbXBsZSBub25jZQ==", r'"x"'])
    expect("rejected response: the body is not frames",
           b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope", 0,
           [r"status: 403 Forbidden", r"rejected", r"4 bytes of HTTP body"])
    code, out, _ = run([], RFC_REQUEST[:40])
    check("truncated HTTP head", code == 1 and "truncated" in out and
          not frame_lines(out), out)


def inputs(tmp):
    hello = bytes.fromhex("810548656c6c6f")
    want = r'^#1 @0  FIN=1 .* "Hello"  utf8=ok$'
    expect("--hex with spaces", b"", 0, [want],
           ["--hex", "81 05 48 65 6c 6c 6f"])
    expect("--hex with colons and 0x", b"", 0, [want],
           ["--hex=0x81:0x05:48:65:6c:6c:6f"])
    expect("--hex without separators", b"", 0, [want],
           ["--hex", "810548656C6C6F"])
    expect("--hex-input from stdin, comments and newlines",
           b"# hello\n81 05\n48656c\n6c 6f # end\n", 0, [want],
           ["--hex-input"])
    sample = os.path.join(HERE, "data", "rfc6455_5.7.hex")
    code, out, _ = run(["--hex-input", sample])
    check("--hex-input FILE (data/rfc6455_5.7.hex)",
          code == 0 and len(frame_lines(out)) == 7 and
          "code=1000 (normal closure)" in out, out)
    code, out, err = run(["--hex", "81 0"])
    check("odd hex digit count exits 2", code == 2 and "hex" in err, err)
    code, out, err = run(["--hex", "81 zz"])
    check("bad hex character exits 2", code == 2 and "'z'" in err, err)
    path = os.path.join(tmp, "hello.bin")
    with open(path, "wb") as f:
        f.write(hello)
    expect("file argument", b"", 0, [want], [path])
    expect("stdin without an argument", hello, 0, [want])
    expect("stdin as -", hello, 0, [want], ["-"])
    expect("empty input is clean", b"", 0,
           [r"^summary: 0 bytes, 0 frames"])


def truncation():
    expect("payload cut short", bytes.fromhex("81054865"), 1, [
        r'len=5  "He" \.\.\. \(stream ends; 3 bytes missing\)',
        r"^    error: truncated: need 3 more bytes$"])
    expect("header cut short (1 byte)", b"\x81", 1,
           [r"^    error: truncated: need 1 more bytes$"])
    expect("extended length cut short", bytes.fromhex("827e01"), 1,
           [r"^    error: truncated: need 1 more bytes$"])
    expect("mask key cut short", bytes.fromhex("8185 37fa".replace(" ", "")),
           1, [r"^    error: truncated: need 2 more bytes$"])
    expect("good frames, then a cut one", frame(1, b"ok") +
           frame(2, b"12345")[:4], 1, [r'"ok"  utf8=ok',
                                       r"truncated: need 3 more bytes"])


def usage():
    code, out, _ = run(["--help"])
    check("--help exits 0 and prints usage",
          code == 0 and out.startswith("usage: wsdump"), out)
    code, out, _ = run(["-h"])
    check("-h exits 0", code == 0 and "--max-payload" in out)
    for name, args in (("unknown option", ["--bogus"]),
                       ("bad --role", ["--role", "peer"]),
                       ("missing value", ["--max-payload"]),
                       ("bad number", ["--max-payload", "x"]),
                       ("--allow-rsv out of range", ["--allow-rsv", "8"]),
                       ("two inputs", ["a", "b"]),
                       ("--hex with a file", ["--hex", "00", "f"]),
                       ("missing file", ["/nonexistent/wsdump-input"])):
        code, out, err = run(args)
        check("usage error exits 2: " + name, code == 2 and err, err)


def json_output():
    data = RFC_REQUEST + frame(1, b"Hel", fin=False, key=KEY) + \
        frame(0, b"l\xffo", key=KEY) + close(1000, b"bye")
    code, out, _ = run(["--json"], data)
    try:
        objs = [json.loads(l) for l in out.splitlines()]
    except ValueError as e:
        check("--json: every line is JSON", False, "%s\n%s" % (e, out))
        return
    check("--json: every line is JSON", True)
    kinds = [o["type"] for o in objs]
    f1, f2, f3 = objs[1:4]
    check("--json: handshake, frames, summary",
          code == 1 and kinds == ["handshake", "frame", "frame", "frame",
                                  "summary"] and
          objs[0]["accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", out)
    check("--json: frame fields",
          f1["mask"] == "37fa213d" and f1["payload"] == "Hel" and
          f1["fin"] == 0 and f1["utf8"] == "ok" and
          f2["utf8"] == "invalid" and "8.1" in f2["errors"][0] and
          f3["close_code"] == 1000 and f3["reason"] == "bye", out)
    code, out, _ = run(["--json"], frame(2, b"\x00\x01", key=KEY))
    check("--json: binary as payload_hex",
          code == 0 and json.loads(out.splitlines()[0])["payload_hex"] ==
          "0001", out)


def big_stream():
    """20 MB piped in: quick, bounded memory (RSS via /usr/bin/time)."""
    payload = bytes(range(256)) * 4096                  # 1 MiB
    big = frame(2, payload, key=b"\x01\x02\x03\x04")
    small = frame(1, b"x" * 1000)
    data = big * 10 + small * 10000 + big * 9
    timer = "/usr/bin/time"
    use_time = os.access(timer, os.X_OK)
    cmd = ([timer, "-f", "%M"] if use_time else []) + [EXE]
    start = time.time()
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    elapsed = time.time() - start
    out = p.stdout.decode()
    check("20 MB stream: all frames, exit 0 (%.2f s)" % elapsed,
          p.returncode == 0 and
          ("summary: %d bytes, 10019 frames, 10019 messages, 0 errors"
           % len(data)) in out, out[-300:])
    check("20 MB stream: a few seconds", elapsed < 10, elapsed)
    if not use_time:
        print("# SKIP /usr/bin/time not available: RSS not checked")
        return
    try:
        rss_kb = int(p.stderr.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        print("# SKIP /usr/bin/time gave no RSS: %r" % p.stderr)
        return
    check("20 MB stream: bounded RSS (%d KiB < 16 MiB)" % rss_kb,
          rss_kb < 16 * 1024, rss_kb)


def main():
    global EXE, WRAP
    if len(sys.argv) != 2:
        print("usage: wsdump_test.py path/to/wsdump", file=sys.stderr)
        return 2
    EXE = os.path.abspath(sys.argv[1])
    if os.environ.get("WSDUMP_VALGRIND") == "1":
        if shutil.which("valgrind") is None:
            print("# SKIP valgrind not installed: running without it")
        else:
            WRAP = ["valgrind", "--quiet", "--error-exitcode=99",
                    "--leak-check=full", "--errors-for-leak-kinds=all"]
    tmp = tempfile.mkdtemp(prefix="wsdump_test.")
    try:
        rfc_examples()
        error_classes()
        handshakes()
        inputs(tmp)
        truncation()
        usage()
        json_output()
        big_stream()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % len(results))
    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
