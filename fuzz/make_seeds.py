#!/usr/bin/env python3
"""make_seeds.py - write the seed corpora in fuzz/corpus/<target>/.

Each seed is a file named by the SHA-256 of its content (as sha256sum
prints it), so running this again rewrites the same files and adds none.
Seeds found by the fuzzer can live next to them. Standard library only.

    python3 fuzz/make_seeds.py            # from the repository root
    python3 fuzz/make_seeds.py --clean    # first delete every corpus file

The conn targets take one configuration byte first (see fuzz/fuzz_conn.h):
bits 0-4 chunk size - 1, bits 5-6 receive mode (0 streaming, 1 whole,
2 both), bit 7 small limits.
"""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

KEY = b"\x37\xfa\x21\x3d"          # the masking key of RFC 6455 5.7

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0

# Configuration bytes: chunk size / mode / limits.
STREAM_1 = 0x00                    # 1 byte at a time, streaming
STREAM_7 = 0x06                    # 7 bytes, streaming
WHOLE_32 = 0x3F                    # 32 bytes, whole message
BOTH_5 = 0x44                      # 5 bytes, streaming + whole
SMALL_32 = 0x9F                    # 32 bytes, streaming, small limits
CONFIGS = (STREAM_1, STREAM_7, WHOLE_32, BOTH_5, SMALL_32)


def mask(payload, key, offset=0):
    return bytes(b ^ key[(offset + i) % 4] for i, b in enumerate(payload))


def frame(opcode, payload=b"", fin=True, rsv=0, key=None, length=None,
          form=None):
    """One frame. length overrides the length field (payload unchanged);
    form forces the 7/16/64-bit length encoding."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if key is not None else 0
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    if form == 7:
        head = bytes([b0, m | n])
    elif form == 16:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if key is not None:
        return head + key + mask(payload, key)
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def frame_seeds(key):
    """Frame sequences a peer may send; key is None for the server's
    (unmasked) frames, KEY for a client's."""
    def f(*a, **k):
        return frame(*a, key=key, **k)

    hello = f(TEXT, b"Hello")
    bye = f(CLOSE, close_payload(1000, b"bye"))
    seeds = {
        # RFC 6455 5.7
        "single_text": hello,
        "fragmented_text": f(TEXT, b"Hel", fin=False) + f(CONT, b"lo"),
        "ping_pong": f(PING, b"Hello") + f(PONG, b"Hello"),
        "binary_256": f(BINARY, bytes(range(256))),
        "binary_64k_head": f(BINARY, b"\x00" * 64, length=65536),
        # valid traffic
        "messages_then_close": hello + f(BINARY, b"\x00\x01\x02") + hello
        + f(TEXT, "κόσμε".encode()) + bye,
        "fragments_ping_between": f(TEXT, b"frag", fin=False)
        + f(PING, b"p1") + f(CONT, "€".encode()[:1], fin=False)
        + f(PONG, b"") + f(CONT, "€".encode()[1:], fin=False)
        + f(PING, b"") + f(CONT, b"end") + bye,
        "empty_messages": f(TEXT, b"") + f(BINARY, b"")
        + f(TEXT, b"", fin=False) + f(CONT, b"") + f(CLOSE),
        "long_16bit": f(TEXT, b"a" * 300),
        "non_minimal_lengths": f(TEXT, b"hi", form=16)
        + f(BINARY, b"xy", form=64),
        "close_no_code": f(CLOSE),
        "close_then_junk": bye + hello + b"\xff\xff\xff",
        "pong_fails_callback": f(PONG, b"!boom") + hello,
        "ping_125": f(PING, b"p" * 125) + f(TEXT, b"after"),
        "utf8_4byte_split": f(TEXT, b"\xf0\x9f", fin=False)
        + f(CONT, b"\x98\x80"),
        "three_messages": hello + hello + hello + f(PING, b"x") + bye,
        "closing_then_error": hello + hello + f(3, b"x"),
        # invalid: each should fail the connection with its close code
        "rsv1": f(TEXT, b"Hello", rsv=4),
        "rsv3": f(BINARY, b"x", rsv=1),
        "opcode_3": f(3, b"x"),
        "opcode_b": f(0xB, b""),
        "ping_126": f(PING, b"p" * 126),
        "ping_not_fin": f(PING, b"x", fin=False),
        "length_top_bit": frame(BINARY, b"", key=key, length=1 << 63,
                                form=64),
        "bad_utf8_overlong": f(TEXT, b"\xc0\xaf"),
        "bad_utf8_surrogate": f(TEXT, b"ok\xed\xa0\x80"),
        "bad_utf8_above_max": f(TEXT, b"\xf4\x90\x80\x80"),
        "bad_utf8_truncated": f(TEXT, b"abc\xe2\x82"),
        "bad_utf8_across_fragments": f(TEXT, b"\xce", fin=False)
        + f(CONT, b"\x41"),
        "close_1_byte": f(CLOSE, b"\x03"),
        "close_1005": f(CLOSE, close_payload(1005)),
        "close_999": f(CLOSE, close_payload(999)),
        "close_5000": f(CLOSE, close_payload(5000)),
        "close_bad_reason": f(CLOSE, close_payload(1000, b"\xff")),
        "continuation_first": f(CONT, b"x"),
        "text_inside_fragmented": f(TEXT, b"a", fin=False) + f(TEXT, b"b"),
        "seventeen_fragments": f(BINARY, b"0", fin=False)
        + b"".join(f(CONT, b"%d" % (i % 10), fin=False) for i in range(15))
        + f(CONT, b"z"),
        "too_big_5000": f(BINARY, b"\x00" * 16, length=5000),
    }
    # The wrong masking for the role.
    wrong = KEY if key is None else None
    seeds["wrong_masking"] = frame(TEXT, b"Hello", key=wrong)
    return seeds


def conn_seeds(key):
    out = []
    for i, (name, data) in enumerate(sorted(frame_seeds(key).items())):
        cfg = CONFIGS[i % len(CONFIGS)]
        if name in ("seventeen_fragments", "too_big_5000"):
            cfg = SMALL_32
        if name in ("three_messages", "closing_then_error"):
            cfg = STREAM_7          # we close after the 2nd message
        out.append(bytes([cfg]) + data)
    # The RFC examples under every configuration.
    for cfg in CONFIGS:
        out.append(bytes([cfg]) + frame(TEXT, b"Hel", fin=False, key=key)
                   + frame(PING, b"Hello", key=key)
                   + frame(CONT, b"lo", key=key)
                   + frame(BINARY, b"\x01\x02", key=key)
                   + frame(CLOSE, close_payload(1001), key=key))
    return out


RFC_REQUEST = (b"GET /chat HTTP/1.1\r\n"
               b"Host: server.example.com\r\n"
               b"Upgrade: websocket\r\n"
               b"Connection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Origin: http://example.com\r\n"
               b"Sec-WebSocket-Protocol: chat, superchat\r\n"
               b"Sec-WebSocket-Version: 13\r\n"
               b"\r\n")


def requests():
    r = RFC_REQUEST
    return [
        r,
        r.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
        r.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
        r.replace(b"Host: server.example.com\r\n", b""),
        r.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"),
        r.lower().replace(b"get /chat http/1.1", b"GET /chat HTTP/1.1")
        .replace(b"dghlihnhbxbszsbub25jzq==", b"dGhlIHNhbXBsZSBub25jZQ=="),
        r.replace(b"Sec-WebSocket-Protocol: chat, superchat\r\n", b""),
        r.replace(b"Sec-WebSocket-Protocol: chat, superchat\r\n",
                  b"Sec-WebSocket-Protocol: superchat\r\n"
                  b"Sec-WebSocket-Protocol:  chat \r\n"),
        r.replace(b"GET /chat", b"GET /reject"),
        r.replace(b"GET /chat", b"GET /chat?room=1&x=%20"),
        r.replace(b"GET", b"POST"),
        r.replace(b"HTTP/1.1", b"HTTP/1.0"),
        r.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"),
        r.replace(b"Upgrade: websocket", b"Upgrade: WebSocket"),
        r.replace(b"\r\n", b"\n"),
        r.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: "
                  b"permessage-deflate; client_max_window_bits, x=\"a,b\""
                  b"\r\n\r\n"),
        r.replace(b"\r\n\r\n", b"\r\n" + b"".join(
            b"X-Filler-%d: %s\r\n" % (i, b"v" * 40) for i in range(20))
            + b"\r\n"),
        r[:60],
    ]


def handshake_seeds():
    out = []
    hello = frame(TEXT, b"Hello", key=KEY)
    bye = frame(CLOSE, close_payload(1000), key=KEY)
    for i, req in enumerate(requests()):
        cfg = CONFIGS[i % len(CONFIGS)]
        out.append(bytes([cfg]) + req + hello + bye)
    out.append(bytes([SMALL_32]) + requests()[-2])     # 431: many headers
    out.append(bytes([WHOLE_32]) + RFC_REQUEST + hello + hello)
    return out


RFC_RESPONSE = (b"HTTP/1.1 101 Switching Protocols\r\n"
                b"Upgrade: websocket\r\n"
                b"Connection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                b"Sec-WebSocket-Protocol: chat\r\n"
                b"\r\n")


def response_seeds():
    r = RFC_RESPONSE
    return [
        r,
        r + frame(TEXT, b"Hello"),
        r.replace(b"Sec-WebSocket-Protocol: chat\r\n", b""),
        r.replace(b"chat\r\n", b"superchat\r\n"),
        r.replace(b"chat\r\n", b"other\r\n"),
        r.replace(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                  b"s3pPLMBiTxaQ9kYGzzhZRbK+xOA="),
        r.replace(b"Upgrade: websocket\r\n", b""),
        r.replace(b"Connection: Upgrade", b"Connection: close"),
        r.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: x\r\n\r\n"),
        r.replace(b"HTTP/1.1", b"HTTP/1.0"),
        r.replace(b"101 Switching Protocols", b"101"),
        r.lower().replace(b"http/1.1", b"HTTP/1.1")
        .replace(b"s3pplmbitxaq9kygzzhzrbk+xoo=",
                 b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n",
        r[:50],
        r.replace(b"\r\n", b"\n"),
    ]


def utf8_seeds():
    samples = [
        b"Hello, world",
        "κόσμε".encode(),
        "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff".encode(),
        "日本語テキスト and ascii mixed €".encode(),
        b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xe0\x9f\xbf",
        b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf",
        b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\x9f\xbf",
        b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xfe\xff",
        b"\x80", b"abc\xbf", b"\xe2\x82", b"ok\xf0\x9f\x98",
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        b"a" * 40 + "€".encode() + b"b" * 40,
    ]
    out = []
    for i, s in enumerate(samples):
        out.append(bytes([(i * 7) % 32]) + s)
    return out


def frame_header_seeds():
    return [
        frame(TEXT, b"Hello"),
        frame(TEXT, b"Hello", key=KEY),
        frame(BINARY, bytes(256)),
        frame(BINARY, b"", length=65536),
        frame(BINARY, b"", length=65536, key=KEY),
        frame(TEXT, b"hi", form=16),
        frame(TEXT, b"hi", form=64, key=KEY),
        frame(BINARY, b"", length=1 << 63, form=64),
        frame(3, b""),
        frame(0xF, b""),
        frame(PING, b"", length=126),
        frame(PING, b"x", fin=False),
        frame(CLOSE, close_payload(1000)),
        frame(TEXT, b"x", rsv=7),
        b"\x81",
        b"\x82\xfe\x01",
    ]


def close_seeds():
    return [
        b"",
        b"\x03",
        close_payload(1000),
        close_payload(1000, b"bye"),
        close_payload(1001, "κόσμε".encode()),
        close_payload(1003),
        close_payload(1004),
        close_payload(1005),
        close_payload(1006),
        close_payload(1007),
        close_payload(1014),
        close_payload(1015),
        close_payload(999),
        close_payload(2999),
        close_payload(3000),
        close_payload(4999),
        close_payload(5000),
        close_payload(1000, b"\xff"),
        close_payload(1000, b"ok\xe2\x82"),
        close_payload(1000, b"r" * 123),
    ]


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    names = set()
    for s in seeds:
        name = hashlib.sha256(s).hexdigest()
        names.add(name)
        with open(os.path.join(d, name), "wb") as f:
            f.write(s)
    print("%-20s %3d seeds" % (target, len(names)))


def main():
    if "--clean" in sys.argv[1:] and os.path.isdir(CORPUS):
        for t in os.listdir(CORPUS):
            for name in os.listdir(os.path.join(CORPUS, t)):
                os.remove(os.path.join(CORPUS, t, name))
    write("conn_server", conn_seeds(KEY))
    write("conn_client", conn_seeds(None))
    write("conn_handshake", handshake_seeds())
    write("handshake_request", requests())
    write("handshake_response", response_seeds())
    write("utf8", utf8_seeds())
    write("frame", frame_header_seeds())
    write("close", close_seeds())


if __name__ == "__main__":
    main()
