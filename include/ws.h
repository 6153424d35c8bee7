/*
 * ws.h - libws core API: a sans-I/O WebSocket (RFC 6455) implementation.
 *
 * This header is the whole core API and its reference manual. The core never
 * reads or writes a socket, never looks at a clock and never allocates
 * memory unless the caller installs an allocator (struct ws_allocator).
 * Bytes from the peer go in through ws_conn_feed(); events come out through
 * the callbacks in struct ws_callbacks; bytes for the peer go out through
 * the send callback.
 *
 * Layers, bottom to top (each usable on its own):
 *   frame codec   ws_frame_*, ws_mask       RFC 6455 5.2, 5.3
 *   UTF-8         ws_utf8_*                 RFC 3629, RFC 6455 8.1
 *   handshake     ws_handshake_*, ws_accept_key      RFC 6455 4
 *   connection    ws_conn_*                 RFC 6455 5.4, 5.5, 7
 *
 * Every function returns WS_OK (0) or a negative status from
 * WS_STATUS_TABLE; ws_strerror() names it. Version 0.x: the layout of the
 * structs below may change between minor versions (the SONAME changes too).
 */
#ifndef WS_H
#define WS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WS_VERSION_MAJOR 0
#define WS_VERSION_MINOR 1
#define WS_VERSION_PATCH 0
#define WS_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Statuses                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * One table generates the enum and every lookup function, so they cannot
 * drift apart. Ranges:
 *   -1xx  flow, not errors
 *   -2xx  caller mistakes: the call did nothing and no callback ran
 *   -3xx  the peer broke the protocol (close code queued, or HTTP status
 *         for a failed handshake)
 *   -4xx  local fatal errors
 * Columns: name, value, close code sent to the peer, HTTP status a server
 * answers a failed handshake with, message.
 */
#define WS_STATUS_TABLE(X)                                                     \
    X(WS_OK,                   0,    0,   0, "success")                        \
    X(WS_PAUSED,            -100,    0,   0, "a callback asked to pause")      \
    X(WS_AGAIN,             -101,    0,   0,                                   \
      "output blocked; call ws_conn_flush() when writable, then retry")        \
    X(WS_INCOMPLETE,        -102,    0,   0, "need more input")                \
    X(WS_PENDING,           -103,    0,   0,                                   \
      "frame accepted; keep its payload unchanged until ws_conn_flush() "      \
      "returns WS_OK")                                                         \
    X(WS_HIGH_WATER,        -104,    0,   0,                                   \
      "queued; output is above the high-water mark: wait for on_drain")        \
    X(WS_ERR_INVALID_ARG,   -200,    0,   0, "invalid argument")               \
    X(WS_ERR_BAD_STATE,     -201,    0,   0, "call not allowed in this state") \
    X(WS_ERR_NO_SPACE,      -202,    0,   0, "buffer too small")               \
    X(WS_ERR_CLOSED,        -203,    0,   0, "connection is closing or closed")\
    X(WS_ERR_PROTOCOL,      -300, 1002,   0, "peer violated RFC 6455")         \
    X(WS_ERR_BAD_UTF8,      -301, 1007,   0,                                   \
      "invalid UTF-8 in a text message or close reason")                       \
    X(WS_ERR_TOO_BIG,       -302, 1009,   0,                                   \
      "message exceeds the configured limit")                                  \
    X(WS_ERR_HANDSHAKE,     -310,    0, 400, "invalid opening handshake")      \
    X(WS_ERR_VERSION,       -311,    0, 426,                                   \
      "unsupported Sec-WebSocket-Version (only 13)")                           \
    X(WS_ERR_HEADER_TOO_BIG, -312,   0, 431,                                   \
      "handshake headers exceed the configured limit")                         \
    X(WS_ERR_BAD_RESPONSE,  -313,    0,   0,                                   \
      "server's handshake response is invalid")                                \
    X(WS_ERR_REJECTED,      -314,    0,   0,                                   \
      "handshake rejected (by the application or the server)")                 \
    X(WS_ERR_CALLBACK,      -400, 1011,   0, "a callback failed")              \
    X(WS_ERR_TRANSPORT,     -401,    0,   0, "the send callback failed")       \
    X(WS_ERR_NO_MEMORY,     -402, 1011,   0, "out of memory")                  \
    X(WS_ERR_CRYPTO,        -403,    0,   0,                                   \
      "random number or SHA-1 provider failed")

enum ws_status {
#define WS_X_ENUM(name, value, close, http, msg) name = (value),
    WS_STATUS_TABLE(WS_X_ENUM)
#undef WS_X_ENUM
};

/* Human-readable message for a status ("unknown status" if not one). */
const char *ws_strerror(int status);
/* The status's name, e.g. "WS_ERR_PROTOCOL" ("WS_UNKNOWN" if not one). */
const char *ws_err_name(int status);
/* The close code a connection sends when failing with status, or 0. */
unsigned ws_err_close_code(int status);
/* The HTTP status a server answers a failed handshake with, or 0. */
unsigned ws_err_http_status(int status);
/* 1 for -3xx and -4xx statuses (they make a connection fail), else 0. */
int ws_err_is_fatal(int status);

/* ------------------------------------------------------------------------ */
/* Protocol constants                                                       */
/* ------------------------------------------------------------------------ */

/* RFC 6455 5.2 / 11.8: opcodes. 3-7 and 11-15 are reserved. */
enum ws_opcode {
    WS_OPCODE_CONTINUATION = 0x0,
    WS_OPCODE_TEXT = 0x1,
    WS_OPCODE_BINARY = 0x2,
    WS_OPCODE_CLOSE = 0x8,
    WS_OPCODE_PING = 0x9,
    WS_OPCODE_PONG = 0xA
};

/* RFC 6455 7.4.1 and the IANA registry: close status codes. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED_DATA = 1003,
    WS_CLOSE_NO_STATUS = 1005,        /* never sent: "no code in the frame" */
    WS_CLOSE_ABNORMAL = 1006,         /* never sent: "closed without a frame" */
    WS_CLOSE_INVALID_PAYLOAD = 1007,
    WS_CLOSE_POLICY_VIOLATION = 1008,
    WS_CLOSE_MESSAGE_TOO_BIG = 1009,
    WS_CLOSE_MANDATORY_EXTENSION = 1010,
    WS_CLOSE_INTERNAL_ERROR = 1011,
    WS_CLOSE_SERVICE_RESTART = 1012,
    WS_CLOSE_TRY_AGAIN_LATER = 1013,
    WS_CLOSE_BAD_GATEWAY = 1014,
    WS_CLOSE_TLS_HANDSHAKE = 1015     /* never sent */
};

/* Short name of a close code ("normal closure", "protocol error", ...).
 * Codes 3000-3999 give "registered (IANA)", 4000-4999 "private use",
 * anything else not assigned gives "reserved" or "invalid". Never NULL. */
const char *ws_close_code_str(unsigned code);

/* 1 if code may appear in a received close frame (RFC 6455 7.4): 1000-1003,
 * 1007-1014 and 3000-4999. 0 otherwise. */
int ws_close_code_is_valid(unsigned code);

enum ws_role { WS_ROLE_SERVER = 0, WS_ROLE_CLIENT = 1 };

/* ------------------------------------------------------------------------ */
/* Frame codec (RFC 6455 5.2)                                               */
/* ------------------------------------------------------------------------ */

#define WS_FRAME_HEADER_MAX 14    /* 2 + 8 (64-bit length) + 4 (mask key) */
#define WS_CONTROL_PAYLOAD_MAX 125
#define WS_CLOSE_REASON_MAX 123   /* 125 minus the 2-byte code */

#define WS_RSV1 0x4u
#define WS_RSV2 0x2u
#define WS_RSV3 0x1u

/* A decoded frame header. */
struct ws_frame {
    unsigned fin;      /* 1: final fragment of a message */
    unsigned rsv;      /* RSV1..RSV3 as WS_RSV1 | WS_RSV2 | WS_RSV3 */
    unsigned opcode;   /* enum ws_opcode (or a reserved value) */
    unsigned masked;   /* 1: mask[] holds the masking key */
    uint8_t mask[4];
    uint64_t length;   /* payload length */
};

/*
 * ws_frame_header_size - how long the header starting at data is.
 *
 * Needs the first 2 bytes. Sets *size to 2..14.
 * Returns WS_OK, WS_INCOMPLETE (len < 2), WS_ERR_INVALID_ARG.
 */
int ws_frame_header_size(const uint8_t *data, size_t len, size_t *size);

/*
 * ws_frame_decode_header - parse one frame header.
 *
 * Reads at most WS_FRAME_HEADER_MAX bytes of data, never past len. On
 * WS_OK, *f is filled and *consumed is the header size. Checks the rules
 * that hold for every frame whatever the role (RFC 6455 5.2, 5.5):
 * 64-bit length with the top bit set, reserved opcodes 3-7 and 11-15,
 * control frames longer than 125 bytes or without FIN. Role rules (masking)
 * and RSV bits depend on the connection and are checked by ws_conn.
 * A length encoded in more bytes than needed is accepted (RFC 6455 5.2
 * puts "minimal" on the sender; rejecting it gains nothing).
 *
 * Returns WS_OK, WS_INCOMPLETE (need more bytes; nothing consumed),
 *   WS_ERR_PROTOCOL (*why, if not NULL, says which rule; *f and
 *                   *consumed are still filled in, for dissectors),
 *   WS_ERR_INVALID_ARG.
 */
int ws_frame_decode_header(struct ws_frame *f, const uint8_t *data,
                           size_t len, size_t *consumed, const char **why);

/*
 * ws_frame_encode_header - write a header in the minimal length form.
 *
 * out must have room for WS_FRAME_HEADER_MAX bytes (cap). If f->masked,
 * f->mask is written as the key; the payload is not touched (ws_mask()).
 * Returns WS_OK, WS_ERR_NO_SPACE, WS_ERR_INVALID_ARG (opcode > 15,
 * rsv > 7, length >= 2^63, or a control frame that breaks 5.5).
 */
int ws_frame_encode_header(uint8_t *out, size_t cap, const struct ws_frame *f,
                           size_t *written);

/*
 * ws_mask - XOR n bytes with the masking key (RFC 6455 5.3).
 *
 * Byte i of src is XORed with key[(offset + i) % 4] and stored in dst;
 * dst may equal src (in place), otherwise they must not overlap.
 * Works 16 bytes per step with SSE2 (x86), else 8, alignment-safe.
 * Masking and unmasking are the same operation. Resume a payload split
 * across calls by passing the number of payload bytes already processed
 * as offset.
 */
void ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
             uint64_t offset);

/* ------------------------------------------------------------------------ */
/* UTF-8 (RFC 3629): incremental, fail-fast validator                       */
/* ------------------------------------------------------------------------ */

struct ws_utf8 {
    /* private: use the functions */
    uint32_t state;
};

/* Start a new validation (a new text message). */
void ws_utf8_reset(struct ws_utf8 *u);

/*
 * ws_utf8_feed - validate the next n bytes of a text.
 *
 * Resumes where the last call stopped, even inside a multi-byte character.
 * Fails at the first byte that cannot be part of valid UTF-8 (overlong
 * forms, surrogates, code points above U+10FFFF). *valid (if not NULL) is
 * the number of bytes before the failing byte (n on success).
 * Returns WS_OK or WS_ERR_BAD_UTF8 (sticky until ws_utf8_reset()).
 */
int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n, size_t *valid);

/* WS_OK if the text fed so far ends on a character boundary, else
 * WS_ERR_BAD_UTF8 (a truncated character, or an earlier failure). */
int ws_utf8_finish(const struct ws_utf8 *u);

/* One-shot: WS_OK if p[0..n) is complete, valid UTF-8, else WS_ERR_BAD_UTF8. */
int ws_utf8_check(const uint8_t *p, size_t n);

/* ------------------------------------------------------------------------ */
/* Opening handshake (RFC 6455 4)                                           */
/* ------------------------------------------------------------------------ */

#define WS_KEY_LEN 24         /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28      /* base64 of a 20-byte SHA-1 */

/* A pointer/length pair into a caller's buffer (not NUL-terminated). */
struct ws_slice {
    const char *p;
    size_t n;
};

/*
 * A parsed HTTP Upgrade request. Every slice points into the buffer given
 * to ws_handshake_parse_request(): valid while that buffer is.
 * Header values have surrounding spaces and tabs removed. When a header
 * appears more than once, the slice holds the first occurrence; use
 * ws_header_find() to visit all of them (Sec-WebSocket-Protocol and
 * Sec-WebSocket-Extensions may legally repeat, RFC 6455 4.1).
 */
struct ws_request {
    struct ws_slice method;     /* "GET" */
    struct ws_slice target;     /* request-target, e.g. "/chat?room=1" */
    struct ws_slice path;       /* target up to '?' */
    struct ws_slice query;      /* after '?', without it (n = 0 if none) */
    unsigned http_major, http_minor;
    struct ws_slice host;
    struct ws_slice origin;     /* n = 0 if absent */
    struct ws_slice key;        /* Sec-WebSocket-Key */
    struct ws_slice version;    /* Sec-WebSocket-Version */
    struct ws_slice protocols;  /* Sec-WebSocket-Protocol (first), or n = 0 */
    struct ws_slice extensions; /* Sec-WebSocket-Extensions (first), or n = 0 */
    struct ws_slice headers;    /* all header lines, for ws_header_find() */
    size_t header_count;
    const char *error;          /* why parsing failed (static string) */
};

/* A parsed 101 (or other) response to our Upgrade request. */
struct ws_response {
    unsigned status;            /* e.g. 101; also set when rejected */
    struct ws_slice reason;     /* reason phrase */
    struct ws_slice accept;     /* Sec-WebSocket-Accept */
    struct ws_slice protocol;   /* Sec-WebSocket-Protocol, or n = 0 */
    struct ws_slice extensions; /* Sec-WebSocket-Extensions, or n = 0 */
    struct ws_slice headers;    /* all header lines, for ws_header_find() */
    size_t header_count;
    const char *error;          /* why verification failed (static string) */
};

/*
 * ws_accept_key - compute Sec-WebSocket-Accept (RFC 6455 4.2.2 step 5.4).
 *
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), written to
 * out as 28 characters plus a NUL (out must hold WS_ACCEPT_LEN + 1).
 * Returns WS_OK, WS_ERR_INVALID_ARG, WS_ERR_CRYPTO.
 */
int ws_accept_key(const char *key, size_t key_len, char *out);

/*
 * ws_handshake_parse_request - parse and validate a client's Upgrade request
 * (RFC 6455 4.2.1).
 *
 * data[0..len) is everything received so far; call again with more bytes
 * (from the same start) after WS_INCOMPLETE. On WS_OK, *consumed is the
 * size of the request including the final CRLF CRLF: any bytes after it
 * are the client's first frames. Requires GET, HTTP/1.1 or later, Host,
 * Upgrade containing the token "websocket", Connection containing the token
 * "Upgrade" (case-insensitive, comma lists), a Sec-WebSocket-Key that is
 * base64 of exactly 16 bytes, and Sec-WebSocket-Version: 13. max_bytes and
 * max_headers bound the request (0 = defaults 8192 and 64). Lines must end
 * in CRLF (a bare LF or CR is a 400: lenient line endings are how request
 * smuggling starts). A bad request line is reported as soon as that line
 * is complete, without waiting for the rest of the headers. Once the
 * header block is complete, *consumed is its size even on error.
 *
 * Returns WS_OK, WS_INCOMPLETE,
 *   WS_ERR_HANDSHAKE       malformed or missing header (answer 400)
 *   WS_ERR_VERSION         version other than 13 (answer 426)
 *   WS_ERR_HEADER_TOO_BIG  past max_bytes or max_headers (answer 431)
 *   WS_ERR_INVALID_ARG
 * req->error says why, for every error.
 */
int ws_handshake_parse_request(struct ws_request *req, const uint8_t *data,
                               size_t len, size_t max_bytes,
                               size_t max_headers, size_t *consumed);

/*
 * ws_http_parse_request - parse any HTTP/1.x request head, without the
 * WebSocket rules: for servers that answer plain HTTP requests on the same
 * port (ws_request_is_upgrade() tells them apart). Checks the request
 * line's syntax (origin-form target), CRLF line endings, header syntax and
 * the limits; fills method, target, path, query, version, host, origin and
 * headers (the Sec-WebSocket-* fields too, when present). Same incremental
 * contract as ws_handshake_parse_request(); a request body, if any, starts
 * at *consumed.
 * Returns WS_OK, WS_INCOMPLETE, WS_ERR_HANDSHAKE (malformed: answer 400),
 *   WS_ERR_HEADER_TOO_BIG (431), WS_ERR_INVALID_ARG.
 */
int ws_http_parse_request(struct ws_request *req, const uint8_t *data,
                          size_t len, size_t max_bytes, size_t max_headers,
                          size_t *consumed);

/* 1 if req asks to upgrade to WebSocket (an Upgrade header listing the
 * token "websocket", any case), else 0. */
int ws_request_is_upgrade(const struct ws_request *req);

/*
 * ws_header_find - visit the values of every header called name.
 *
 * headers is req->headers or resp->headers. *pos starts at 0 and is
 * advanced past each match. Names compare case-insensitively.
 * Returns WS_OK with *value set, or WS_INCOMPLETE when there are no more.
 */
int ws_header_find(struct ws_slice headers, const char *name, size_t *pos,
                   struct ws_slice *value);

/*
 * ws_token_next - walk a comma-separated header value ("a, b,c").
 *
 * *pos starts at 0. Empty elements are skipped; spaces and tabs around
 * each token are removed. Returns WS_OK with *token set, or WS_INCOMPLETE
 * at the end.
 */
int ws_token_next(struct ws_slice list, size_t *pos, struct ws_slice *token);

/* 1 if some Sec-WebSocket-Protocol header of req lists protocol (exact,
 * case-sensitive match, RFC 6455 4.1), else 0. */
int ws_request_has_protocol(const struct ws_request *req, const char *protocol);

/*
 * ws_handshake_write_response - write the server's 101 answer to req.
 *
 * protocol: the one selected subprotocol (must be one req offered) or NULL.
 * extra_headers: NULL, or complete header lines each ending in "\r\n".
 * Writes at most cap bytes to out; *written is the length.
 * Returns WS_OK, WS_ERR_NO_SPACE, WS_ERR_INVALID_ARG, WS_ERR_CRYPTO.
 */
int ws_handshake_write_response(char *out, size_t cap,
                                const struct ws_request *req,
                                const char *protocol,
                                const char *extra_headers, size_t *written);

/*
 * ws_handshake_write_accept - write a 101 answer from the client's key
 * alone, for servers that parse the HTTP request themselves.
 *
 * key[0..key_len) is the client's Sec-WebSocket-Key; protocol (NULL: none)
 * is written as Sec-WebSocket-Protocol without checking it was offered.
 * Otherwise as ws_handshake_write_response().
 */
int ws_handshake_write_accept(char *out, size_t cap, const char *key,
                              size_t key_len, const char *protocol,
                              const char *extra_headers, size_t *written);

/*
 * ws_handshake_write_error - write an HTTP error answer for a failed
 * handshake: status is ws_err_http_status(err) (400, 426, 431) or any
 * 4xx/5xx given directly. A 426 carries "Sec-WebSocket-Version: 13"
 * (RFC 6455 4.4). reason (may be NULL) becomes the text/plain body.
 * Returns WS_OK, WS_ERR_NO_SPACE, WS_ERR_INVALID_ARG.
 */
int ws_handshake_write_error(char *out, size_t cap, unsigned status,
                             const char *reason, size_t *written);

/* What a client puts in its Upgrade request. Strings are NUL-terminated. */
struct ws_client_request {
    const char *host;          /* required, e.g. "example.com:8080" */
    const char *path;          /* request-target; NULL means "/" */
    const char *origin;        /* NULL: no Origin header */
    const char *protocols;     /* NULL, or "chat, superchat" */
    const char *extra_headers; /* NULL, or lines each ending in "\r\n" */
};

/*
 * ws_handshake_write_request - write a client's Upgrade request with a fresh
 * random Sec-WebSocket-Key (RFC 6455 4.1).
 *
 * key_out receives the key (WS_KEY_LEN chars + NUL); keep it for
 * ws_handshake_parse_response(). Returns WS_OK, WS_ERR_NO_SPACE,
 * WS_ERR_INVALID_ARG (no host, CR/LF in a field), WS_ERR_CRYPTO.
 */
int ws_handshake_write_request(char *out, size_t cap,
                               const struct ws_client_request *r,
                               char *key_out, size_t *written);

/*
 * ws_handshake_parse_response - parse and verify the server's answer
 * (RFC 6455 4.1, client requirements 1-6).
 *
 * key is the key we sent; protocols is what we offered (NULL if none).
 * Same incremental contract as ws_handshake_parse_request(): on WS_OK,
 * *consumed is the response size, and bytes after it are frames.
 * Returns WS_OK, WS_INCOMPLETE,
 *   WS_ERR_REJECTED       a complete response whose status is not 101
 *                         (resp->status tells which)
 *   WS_ERR_BAD_RESPONSE   malformed, missing/wrong Upgrade, Connection or
 *                         Accept, a subprotocol we did not offer, or an
 *                         extension we did not offer
 *   WS_ERR_HEADER_TOO_BIG past max_bytes (0 = 8192)
 *   WS_ERR_INVALID_ARG
 * resp->error says why for every error.
 */
int ws_handshake_parse_response(struct ws_response *resp, const uint8_t *data,
                                size_t len, const char *key,
                                const char *protocols, size_t max_bytes,
                                size_t *consumed);

/* ------------------------------------------------------------------------ */
/* Connection (RFC 6455 5.4, 5.5, 7): the sans-I/O state machine            */
/* ------------------------------------------------------------------------ */

enum ws_state {
    WS_STATE_CONNECTING = 0,  /* opening handshake in progress */
    WS_STATE_OPEN = 1,
    WS_STATE_CLOSING = 2,     /* we sent a close frame; waiting for the peer's */
    WS_STATE_CLOSED = 3       /* close handshake done, or connection failed */
};

/* Optional allocator for whole-message reassembly (the core never calls
 * malloc itself). realloc(ctx, NULL, 0, n) allocates; realloc(ctx, p, old,
 * 0) frees and returns NULL. A buffer over 64 KiB is freed after its
 * message is delivered; smaller ones are kept until ws_conn_reset(). */
struct ws_allocator {
    void *(*realloc)(void *ctx, void *p, size_t old_size, size_t new_size);
    void *ctx;
};

/* Config flags. */
#define WS_CONFIG_START_OPEN 0x1u   /* handshake already done elsewhere */
#define WS_CONFIG_NO_AUTO_PONG 0x2u /* do not answer pings (on_ping still
                                       runs; send pongs yourself) */

/* Defaults used when a limit is 0. */
#define WS_DEFAULT_MAX_MESSAGE (16u * 1024u * 1024u)
#define WS_DEFAULT_MAX_FRAGMENTS 131072u
#define WS_DEFAULT_MAX_HANDSHAKE 8192u
#define WS_DEFAULT_MAX_HEADERS 64u

/*
 * Per-connection settings. A zeroed struct (or a NULL pointer) gives a
 * server with safe defaults. Strings are borrowed: they must stay valid
 * until the handshake completes (on_open).
 */
struct ws_config {
    unsigned role;             /* enum ws_role */
    unsigned flags;            /* WS_CONFIG_* */
    uint64_t max_frame;        /* largest frame payload (0: = max_message) */
    uint64_t max_message;      /* largest message (0: 16 MiB) -> 1009;
                                  with on_message at most SIZE_MAX */
    uint32_t max_fragments;    /* frames per message (0: 131072) -> 1009 */
    uint32_t max_handshake;    /* request/response bytes (0: 8192) -> 431 */
    uint32_t max_headers;      /* request header lines (0: 64) -> 431 */
    unsigned allowed_rsv;      /* RSV bits an extension negotiated (0) */

    /* Whole-message receive (on_message): reassemble into message_buf
     * (max message = its size), or else through alloc. */
    uint8_t *message_buf;
    size_t message_buf_len;
    const struct ws_allocator *alloc;

    /* Client role: the Upgrade request (see ws_handshake_write_request). */
    struct ws_client_request request;

    /* Server role: extra response header lines, each ending in "\r\n". */
    const char *response_headers;
};

struct ws_conn;

/* An output chunk for the send callback. */
struct ws_iov {
    const uint8_t *base;
    size_t len;
};

/*
 * Callbacks. All are optional except send. Each returns 0 to go on,
 * WS_PAUSED to make ws_conn_feed() return right after this event, or any
 * other value to fail the connection with WS_ERR_CALLBACK (close 1011).
 * Data pointers are valid only during the call. From inside a callback you
 * may call ws_conn_send_*, ws_conn_close, ws_conn_flush and the getters,
 * but not ws_conn_feed or ws_conn_init (WS_ERR_BAD_STATE).
 */
struct ws_callbacks {
    /* Required. Take up to the sum of iov[i].len bytes, in order, and set
     * *written (0 = would block: the core keeps the rest and you call
     * ws_conn_flush() once the transport is writable). Return 0, or a
     * negative value if the transport failed (-> WS_ERR_TRANSPORT). */
    int (*send)(struct ws_conn *c, const struct ws_iov *iov, size_t iovcnt,
                size_t *written, void *user);

    /* Server: a valid Upgrade request arrived. Inspect req (path, Origin,
     * protocols...), and call ws_conn_select_protocol() or ws_conn_reject()
     * before returning. Not called for invalid requests (they get their
     * 400/426/431 answer and WS_ERR_HANDSHAKE etc. from ws_conn_feed).
     * WS_PAUSED has no effect here or in on_response (the handshake
     * completes); pause in on_open instead. */
    int (*on_request)(struct ws_conn *c, const struct ws_request *req,
                      void *user);
    /* Client: the server's 101 was verified, before on_open. */
    int (*on_response)(struct ws_conn *c, const struct ws_response *resp,
                       void *user);
    /* The connection is OPEN (handshake done, in both roles). */
    int (*on_open)(struct ws_conn *c, void *user);

    /* Streaming receive: begin, data pieces as they arrive (unmasked, text
     * already validated), end. Control frames may come in between. */
    int (*on_message_begin)(struct ws_conn *c, unsigned opcode, void *user);
    int (*on_message_data)(struct ws_conn *c, const uint8_t *p, size_t n,
                           void *user);
    int (*on_message_end)(struct ws_conn *c, void *user);

    /* Whole-message receive: one call per message, reassembled (needs
     * cfg.message_buf or cfg.alloc). Can be used with the streaming
     * callbacks; both then run. */
    int (*on_message)(struct ws_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user);

    int (*on_ping)(struct ws_conn *c, const uint8_t *p, size_t n, void *user);
    int (*on_pong)(struct ws_conn *c, const uint8_t *p, size_t n, void *user);

    /* Runs once, when the connection becomes CLOSED, and is the last
     * callback. code/reason: the peer's close frame (1005 if it had no
     * code), or, when this side failed the connection, the failure's code
     * and why (then ws_conn_get_error() is non-zero; the code was sent
     * unless this side had already sent a close frame). */
    int (*on_close)(struct ws_conn *c, unsigned code, const char *reason,
                    size_t n, void *user);
};

/* Smallest buffer ws_conn_init() accepts; 4096 or more is better (it holds
 * the handshake, so it bounds its size, and unsent output). Once the
 * connection is open the core keeps its control-frame state at the end of
 * the buffer (WS_CONN_BUF_RESERVE bytes; a client also keeps the
 * subprotocol name there), so output uses the rest. */
#define WS_CONN_BUF_MIN 512u
#define WS_CONN_BUF_RESERVE 250u    /* a ping being read + a waiting pong */

/*
 * struct ws_conn - one connection, in caller memory (.bss, stack, heap).
 * It holds no pointers into itself, so it may be moved between calls.
 * 216 bytes on x86-64: what an idle connection costs, apart
 * from its buffer (see ws_conn_set_buffer for sharing one between many).
 */
struct ws_conn {
    /* private: use the accessors */
    const struct ws_callbacks *cb;
    void *user;
    uint8_t *buf;              /* caller buffer: handshake, output, control */
    const struct ws_allocator *alloc;
    uint8_t *msg_buf;          /* reassembly buffer (message_buf or alloc) */
    size_t msg_cap;
    const uint8_t *pin;        /* pinned caller payload still to send */
    size_t pin_len;
    const char *protocol;      /* negotiated subprotocol, NULL if none */
    const char *reason;        /* why the connection failed */
    uint64_t max_message;      /* limits from ws_config, defaults applied */
    uint64_t max_frame;
    uint32_t max_fragments;
    uint32_t buflen;
    uint32_t out_head, out_tail; /* pending output: buf[out_head..out_tail) */
    int error;                 /* sticky failure status, 0 if none */
    uint16_t close_code;       /* code received (1006 if none) */
    uint8_t role, flags, allowed_rsv;
    uint8_t fixed_msg_buf;     /* msg_buf is cfg.message_buf */
    uint8_t state;             /* enum ws_state */
    uint8_t rx_state;          /* receive sub-state */
    uint8_t in_callback, in_send, transport_failed;
    uint8_t close_sent, close_received, close_notified, opened;
    uint8_t msg_opcode;        /* 0: no message in progress */
    uint8_t tx_opcode;         /* 0: not inside a fragmented send */
    uint8_t slot_opcode;       /* control frame waiting for output, or 0 */
    uint8_t slot_len;
    uint8_t pin_key[4];        /* client: mask key of the pinned frame */
    uint8_t pin_off;           /* ... and its offset in the key (0-3) */
    union {
        struct {               /* CONNECTING: the opening handshake */
            const struct ws_request *req; /* during on_request only */
            const char *reject_reason;    /* set by ws_conn_reject() */
            const char *text;  /* response_headers / request.protocols */
            uint32_t base;     /* where the handshake bytes start in buf */
            uint32_t len;      /* handshake bytes accumulated in buf */
            uint32_t max_size, max_headers;
            uint16_t reject_status;
            char key[WS_KEY_LEN + 1]; /* client: the key sent */
        } hs;
        struct {               /* OPEN and after: frames and messages */
            uint64_t frame_left; /* payload bytes still to come */
            uint64_t frame_off;  /* payload bytes seen (mask key offset) */
            uint64_t msg_len;
            uint32_t msg_frames;
            struct ws_utf8 utf8;
            uint8_t fin, opcode, masked, mask[4]; /* current frame */
            uint8_t hdr_have;    /* bytes of the frame header in hdr[] */
            uint8_t hdr[WS_FRAME_HEADER_MAX];
        } rx;
    } u;
};

/*
 * ws_conn_init - set up a connection in caller memory.
 *
 * cfg may be NULL (server, defaults). Its values are read here; what it
 * points to is used later: message_buf and alloc for the connection's
 * lifetime, the request and response_headers strings until it is OPEN.
 * cb is kept by pointer
 * and must outlive the connection (declare it static const). buf is the
 * connection's working memory (at least WS_CONN_BUF_MIN bytes): it holds
 * the handshake and then unsent output, and must outlive the connection.
 * A client writes its Upgrade request (through send) right away; a server
 * waits for one in ws_conn_feed(). With WS_CONFIG_START_OPEN the
 * connection starts OPEN and on_open is not called.
 *
 * Returns WS_OK, WS_ERR_INVALID_ARG (NULL c/cb/send, small buf, no host
 * for a client, on_message without message_buf or alloc),
 *   WS_ERR_CRYPTO, WS_ERR_TRANSPORT (client request could not be sent).
 * Callbacks: send. Not callable from inside a callback.
 */
int ws_conn_init(struct ws_conn *c, const struct ws_config *cfg,
                 const struct ws_callbacks *cb, void *user, uint8_t *buf,
                 size_t buflen);

/*
 * ws_conn_reset - release what the connection holds (a reassembly buffer
 * from cfg.alloc) and leave it CLOSED. Safe to call twice. Call it when you
 * are done with a connection that used an allocator.
 */
void ws_conn_reset(struct ws_conn *c);

/*
 * ws_conn_feed - hand the connection bytes received from the peer.
 *
 * Parses data[0..len) and invokes callbacks in wire order. *consumed is
 * set to the bytes used; it is < len only after WS_PAUSED or an error.
 * Unconsumed bytes must be offered again, unchanged, on the next call.
 * Masked payload bytes are unmasked IN PLACE in data[0..*consumed)
 * (server role), which is why data is not const: no copy is needed.
 * Bytes that arrive after the close handshake are consumed and ignored.
 * Every ping is answered with a pong carrying its payload (5.5.2); only
 * while output is blocked behind a pinned frame does a newer ping's pong
 * replace a waiting one (5.5.3 allows answering just the latest).
 * When text turns out to be invalid, a streaming receiver first gets the
 * valid bytes before the bad one, then the connection fails (fail fast,
 * and the same events however the input was split).
 *
 * Returns WS_OK, WS_PAUSED, or:
 *   WS_ERR_BAD_STATE      called from a callback
 *   WS_ERR_PROTOCOL       peer broke RFC 6455; close 1002 sent
 *   WS_ERR_BAD_UTF8       invalid text or close reason; close 1007 sent
 *   WS_ERR_TOO_BIG        frame/message/fragments over a limit; 1009 sent
 *   WS_ERR_HANDSHAKE, WS_ERR_VERSION, WS_ERR_HEADER_TOO_BIG
 *                         server: bad request, answered 400/426/431
 *   WS_ERR_BAD_RESPONSE, WS_ERR_REJECTED   client: handshake failed
 *   WS_ERR_CALLBACK       a callback failed; close 1011 sent
 *   WS_ERR_NO_MEMORY      the allocator failed; close 1011 sent
 *   WS_ERR_TRANSPORT      the send callback failed
 * Errors (-3xx/-4xx) are sticky: later calls return the same status.
 * Callbacks: all. Not callable from inside a callback.
 */
int ws_conn_feed(struct ws_conn *c, uint8_t *data, size_t len,
                 size_t *consumed);

/*
 * ws_conn_send_text, ws_conn_send_binary - send one whole message as one
 * frame. Text must be valid UTF-8 (checked: WS_ERR_INVALID_ARG).
 *
 * Server frames go out as header + payload without copying the payload;
 * client frames are masked into buf (in chunks, if large).
 * Returns WS_OK       sent, or the rest copied into buf: payload reusable
 *   WS_PENDING        the transport blocked and the rest did not fit in
 *                     buf: payload must stay unchanged until
 *                     ws_conn_flush() returns WS_OK
 *   WS_AGAIN          output blocked, nothing sent: flush, then retry
 *   WS_ERR_CLOSED     close already sent or connection closed
 *   WS_ERR_BAD_STATE  not OPEN yet, or inside a fragmented send
 *   WS_ERR_INVALID_ARG, WS_ERR_TRANSPORT, WS_ERR_CRYPTO, or the sticky error
 * Callable from callbacks.
 */
int ws_conn_send_text(struct ws_conn *c, const char *p, size_t n);
int ws_conn_send_binary(struct ws_conn *c, const void *p, size_t n);

/*
 * ws_conn_send_frame - send one frame of a fragmented message (5.4).
 *
 * First frame: opcode WS_OPCODE_TEXT or WS_OPCODE_BINARY; later frames:
 * WS_OPCODE_CONTINUATION; fin = 1 on the last. Control frames may be sent
 * between fragments. A fragmented text message is not UTF-8 checked per
 * frame (a character may straddle frames); that is the caller's duty.
 * Returns as ws_conn_send_binary(), plus WS_ERR_BAD_STATE for a wrong
 * opcode sequence.
 */
int ws_conn_send_frame(struct ws_conn *c, unsigned opcode, int fin,
                       const void *p, size_t n);

/* Send a ping / an unsolicited pong, n <= 125 (5.5.2, 5.5.3). The payload
 * is always copied (WS_PENDING never happens). Returns WS_OK, WS_AGAIN,
 * WS_ERR_CLOSED, WS_ERR_BAD_STATE, WS_ERR_INVALID_ARG, ... */
int ws_conn_send_ping(struct ws_conn *c, const void *p, size_t n);
int ws_conn_send_pong(struct ws_conn *c, const void *p, size_t n);

/*
 * ws_conn_close - start the close handshake (RFC 6455 7.1.2).
 *
 * code 0 sends a close frame with no payload; otherwise code must be one
 * an endpoint may send (1000-1003, 1007-1014, 3000-4999) and reason (n <=
 * 123 bytes, may be NULL) valid UTF-8. The state becomes CLOSING, then
 * CLOSED when the peer's close frame arrives. If output is blocked the
 * close frame is queued and goes out at the next flush.
 * Returns WS_OK, WS_ERR_INVALID_ARG, WS_ERR_CLOSED (already sent),
 *   WS_ERR_BAD_STATE (still CONNECTING), or the sticky error.
 * Callable from callbacks.
 */
int ws_conn_close(struct ws_conn *c, unsigned code, const char *reason,
                  size_t n);

/*
 * ws_conn_flush - write pending output (call when the transport is
 * writable after WS_AGAIN, WS_PENDING or ws_conn_wants_flush()).
 * Output is drained even after the connection failed, so the close frame
 * (or the HTTP error answer) reaches the peer before you close the socket.
 * Returns WS_OK (nothing left), WS_AGAIN (still blocked),
 *   WS_ERR_TRANSPORT (the send callback failed; sticky).
 */
int ws_conn_flush(struct ws_conn *c);

/* Server: from on_request, choose the subprotocol to answer with (one the
 * client offered). Kept by pointer, not copied: protocol must stay valid
 * as long as the connection (a literal, or a name from your own list). */
int ws_conn_select_protocol(struct ws_conn *c, const char *protocol);
/* Server: from on_request, refuse the upgrade with an HTTP status
 * (400-599; e.g. 403 for a bad Origin). reason is static text for the
 * body. ws_conn_feed() then returns WS_ERR_REJECTED. */
int ws_conn_reject(struct ws_conn *c, unsigned http_status,
                   const char *reason);

/*
 * ws_conn_can_send - whether a new message could be sent now: WS_OK when
 * OPEN, no close was sent, no fragmented send is in progress and no output
 * is waiting; otherwise the status ws_conn_send_binary() would return
 * (WS_AGAIN, WS_ERR_CLOSED, WS_ERR_BAD_STATE, the sticky error). For I/O
 * layers that write pre-encoded frames themselves (broadcast).
 */
int ws_conn_can_send(const struct ws_conn *c);

/* Getters. */
enum ws_state ws_conn_get_state(const struct ws_conn *c);
int ws_conn_is_open(const struct ws_conn *c);        /* 1 if OPEN */
int ws_conn_is_closed(const struct ws_conn *c);      /* 1 if CLOSED */
int ws_conn_wants_flush(const struct ws_conn *c);    /* output pending */
size_t ws_conn_get_buffered(const struct ws_conn *c);/* bytes pending */
/* Close code received from the peer (1005: its frame had no code; 1006:
 * none received yet, or the connection failed without one). */
unsigned ws_conn_get_close_code(const struct ws_conn *c);
int ws_conn_get_error(const struct ws_conn *c);      /* sticky status or 0 */
/* Why the connection failed or the handshake was refused ("" if not). */
const char *ws_conn_get_reason(const struct ws_conn *c);
/* Negotiated subprotocol ("" if none). */
const char *ws_conn_get_protocol(const struct ws_conn *c);
void *ws_conn_get_user(const struct ws_conn *c);
void ws_conn_set_user(struct ws_conn *c, void *user);
enum ws_role ws_conn_get_role(const struct ws_conn *c);

/*
 * Sharing one buffer between many connections (a server's idle memory).
 *
 * ws_conn_buffer_busy - whether the connection keeps bytes in its buffer
 * between calls: a handshake or output still pending, a control frame
 * that arrived in pieces, a control frame waiting to go out; and always
 * for a client (it keeps its subprotocol name there and masks into it).
 * While it returns 0, the buffer may be used by other connections between
 * calls on this one: a server whose send callback takes every byte (it
 * queues what the socket does not) can give all its connections one
 * buffer and move a connection to a buffer of its own only while it is
 * busy.
 *
 * ws_conn_set_buffer - give the connection another buffer (at least
 * WS_CONN_BUF_MIN bytes, not overlapping the old one). Whatever the old
 * one holds is copied over. Returns WS_OK, WS_ERR_INVALID_ARG,
 * WS_ERR_NO_SPACE (what it holds does not fit; nothing changed),
 * WS_ERR_BAD_STATE (inside a callback).
 */
int ws_conn_buffer_busy(const struct ws_conn *c);
int ws_conn_set_buffer(struct ws_conn *c, uint8_t *buf, size_t len);

/* Bytes of struct ws_conn (for allocators in other languages). */
size_t ws_conn_size(void);

#ifdef __cplusplus
}
#endif

#endif /* WS_H */
