/*
 * test_handshake.c - the opening handshake (RFC 6455 4): request and
 * response parsing, verification, and the writers.
 *
 * Every parser input is copied into an exactly-sized heap buffer first, so
 * ASan (or valgrind) reports any read past len. Parser tests feed every
 * prefix of the input to prove the stateless re-parse contract: WS_INCOMPLETE
 * until the final CRLF CRLF, then the same result as a one-shot parse.
 */
#include "test.h"
#include "ws_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Request pieces, for building requests that break one rule each. */
#define REQ_LINE "GET /chat HTTP/1.1\r\n"
#define H_HOST "Host: server.example.com\r\n"
#define H_UPGRADE "Upgrade: websocket\r\n"
#define H_CONN "Connection: Upgrade\r\n"
#define H_KEY "Sec-WebSocket-Key: " RFC_KEY "\r\n"
#define H_VER "Sec-WebSocket-Version: 13\r\n"
#define GOOD_HEADERS H_HOST H_UPGRADE H_CONN H_KEY H_VER

/* Response pieces (the answer to RFC_KEY). */
#define RESP_101 "HTTP/1.1 101 Switching Protocols\r\n"
#define R_UPGRADE "Upgrade: websocket\r\n"
#define R_CONN "Connection: Upgrade\r\n"
#define R_ACCEPT "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
#define GOOD_RESPONSE RESP_101 R_UPGRADE R_CONN R_ACCEPT "\r\n"

/* RFC 6455 1.2: the example client handshake. */
static const char rfc_request[] =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

#define EXPECT_SLICE(s, lit) EXPECT_MEM((s).p, (s).n, (lit), strlen(lit))

/* An exactly-sized heap copy (at least 1 byte, so that a NULL always means
 * failure; calloc, so that byte is initialised). */
static uint8_t *copy_exact(const void *p, size_t n)
{
    uint8_t *b = calloc(n ? n : 1, 1);

    if (b == NULL)
        abort();
    if (n)
        memcpy(b, p, n);
    return b;
}

/* Parse text as a request from an exact heap copy; only the status, error
 * and consumed survive (the slices would dangle). */
static int parse_request_text(const char *text, size_t max_bytes,
                              size_t max_headers, const char **error,
                              size_t *consumed)
{
    size_t n = strlen(text), used = 0;
    uint8_t *buf = copy_exact(text, n);
    struct ws_request req;
    int rv;

    rv = ws_handshake_parse_request(&req, buf, n, max_bytes, max_headers,
                                    &used);
    free(buf);
    if (error)
        *error = req.error;
    if (consumed)
        *consumed = used;
    return rv;
}

/* A request that breaks one rule: check the status and that req->error
 * says something. */
static void expect_bad_request(const char *text, int want)
{
    const char *error = NULL;
    int rv = parse_request_text(text, 0, 0, &error, NULL);

    EXPECT_EQ(rv, want);
    EXPECT_TRUE(error != NULL && error[0] != '\0');
    if (rv != want)
        test_note("request was: %s", text);
}

static int parse_response_text(const char *text, const char *key,
                               const char *protocols, struct ws_response *out,
                               size_t *consumed)
{
    size_t n = strlen(text), used = 0;
    uint8_t *buf = copy_exact(text, n);
    struct ws_response resp;
    int rv;

    rv = ws_handshake_parse_response(&resp, buf, n, key, protocols, 0, &used);
    free(buf);
    /* Do not hand out slices into the freed buffer. */
    resp.reason.p = resp.accept.p = resp.protocol.p = NULL;
    resp.extensions.p = resp.headers.p = NULL;
    if (out)
        *out = resp;
    if (consumed)
        *consumed = used;
    return rv;
}

static void expect_bad_response(const char *text, const char *protocols,
                                int want)
{
    struct ws_response resp;
    int rv = parse_response_text(text, RFC_KEY, protocols, &resp, NULL);

    EXPECT_EQ(rv, want);
    EXPECT_TRUE(resp.error != NULL && resp.error[0] != '\0');
    if (rv != want)
        test_note("response was: %s", text);
}

/* ------------------------------------------------------------------------ */
/* Sec-WebSocket-Accept                                                     */
/* ------------------------------------------------------------------------ */

/* RFC 6455 1.3 and 4.2.2: the worked example. */
void test_handshake_accept_key_rfc_example(void)
{
    char out[WS_ACCEPT_LEN + 1];

    memset(out, 'x', sizeof out);
    EXPECT_EQ(ws_accept_key(RFC_KEY, strlen(RFC_KEY), out), WS_OK);
    EXPECT_EQ(out[WS_ACCEPT_LEN], '\0');
    EXPECT_STR(out, RFC_ACCEPT);
}

void test_handshake_accept_key_rejects_bad_args(void)
{
    char out[WS_ACCEPT_LEN + 1];
    char key[66];

    memset(key, 'A', sizeof key);
    EXPECT_EQ(ws_accept_key(NULL, 24, out), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_accept_key(RFC_KEY, 24, NULL), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_accept_key(RFC_KEY, 0, out), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_accept_key(key, 64, out), WS_OK);
    EXPECT_EQ(strlen(out), WS_ACCEPT_LEN);
    EXPECT_EQ(ws_accept_key(key, 65, out), WS_ERR_INVALID_ARG);
}

/* ------------------------------------------------------------------------ */
/* Request parsing: valid requests                                          */
/* ------------------------------------------------------------------------ */

/* RFC 6455 1.2: the example request, every field. */
void test_handshake_parses_rfc_example_request(void)
{
    size_t n = strlen(rfc_request), used = 99, pos = 0;
    uint8_t *buf = copy_exact(rfc_request, n);
    const char *base = (const char *)buf;
    struct ws_request req;
    struct ws_slice v;

    EXPECT_EQ(ws_handshake_parse_request(&req, buf, n, 0, 0, &used), WS_OK);
    EXPECT_EQ(used, n);
    EXPECT_TRUE(req.error == NULL);
    EXPECT_SLICE(req.method, "GET");
    EXPECT_SLICE(req.target, "/chat");
    EXPECT_SLICE(req.path, "/chat");
    EXPECT_EQ(req.query.n, 0);
    EXPECT_EQ(req.http_major, 1);
    EXPECT_EQ(req.http_minor, 1);
    EXPECT_SLICE(req.host, "server.example.com");
    EXPECT_SLICE(req.origin, "http://example.com");
    EXPECT_SLICE(req.key, RFC_KEY);
    EXPECT_SLICE(req.version, "13");
    EXPECT_SLICE(req.protocols, "chat, superchat");
    EXPECT_EQ(req.extensions.n, 0);
    EXPECT_EQ(req.header_count, 7);
    /* headers: from the first header line up to the blank line */
    EXPECT_TRUE(req.headers.p == base + strlen("GET /chat HTTP/1.1\r\n"));
    EXPECT_EQ(req.headers.n, n - strlen("GET /chat HTTP/1.1\r\n") - 2);
    EXPECT_EQ(ws_header_find(req.headers, "origin", &pos, &v), WS_OK);
    EXPECT_SLICE(v, "http://example.com");
    EXPECT_EQ(ws_header_find(req.headers, "origin", &pos, &v), WS_INCOMPLETE);
    /* slices point into the caller's buffer, not copies */
    EXPECT_TRUE(req.key.p >= base && req.key.p + req.key.n <= base + n);
    EXPECT_TRUE(ws_request_has_protocol(&req, "chat"));
    EXPECT_TRUE(ws_request_has_protocol(&req, "superchat"));
    EXPECT_TRUE(!ws_request_has_protocol(&req, "Chat"));
    free(buf);
}

/* Feed every prefix; all but the whole give WS_INCOMPLETE and consume
 * nothing; the whole gives the one-shot result. */
static void feed_request_every_way(const char *text, struct ws_request *last)
{
    size_t n = strlen(text), k, used;
    struct ws_request req;
    int rv;

    for (k = 0; k < n; k++) {
        uint8_t *buf = copy_exact(text, k);

        used = 77;
        rv = ws_handshake_parse_request(&req, buf, k, 0, 0, &used);
        EXPECT_EQ(rv, WS_INCOMPLETE);
        EXPECT_EQ(used, 0);
        if (rv != WS_INCOMPLETE)
            test_note("prefix of %zu bytes", k);
        free(buf);
    }
    {
        uint8_t *buf = copy_exact(text, n);

        EXPECT_EQ(ws_handshake_parse_request(last, buf, n, 0, 0, &used),
                  WS_OK);
        EXPECT_EQ(used, n);
        free(buf);
    }
}

/* The split-invariance property, for the RFC request split at every byte. */
void test_handshake_parse_split_at_every_byte(void)
{
    size_t n = strlen(rfc_request), k, used, one_used;
    uint8_t *whole = copy_exact(rfc_request, n);
    struct ws_request one, req, last;

    EXPECT_EQ(ws_handshake_parse_request(&one, whole, n, 0, 0, &one_used),
              WS_OK);
    feed_request_every_way(rfc_request, &last);
    /* Same results, at the same offsets, when the buffer grows in place. */
    for (k = 1; k <= n; k++) {
        int rv = ws_handshake_parse_request(&req, whole, k, 0, 0, &used);

        EXPECT_EQ(rv, k < n ? WS_INCOMPLETE : WS_OK);
    }
    EXPECT_EQ(used, one_used);
    EXPECT_TRUE(memcmp(&req, &one, sizeof req) == 0);
    EXPECT_EQ(last.header_count, one.header_count);
    free(whole);
}

/* *consumed ends at the CRLF CRLF; the frame bytes after it are neither
 * consumed nor changed. */
void test_handshake_parse_preserves_trailing_frames(void)
{
    static const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    size_t hn = strlen(rfc_request), n = hn + sizeof frame, used = 0;
    uint8_t *buf = malloc(n);
    struct ws_request req;

    if (buf == NULL)
        abort();
    memcpy(buf, rfc_request, hn);
    memcpy(buf + hn, frame, sizeof frame);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, n, 0, 0, &used), WS_OK);
    EXPECT_EQ(used, hn);
    EXPECT_MEM(buf + used, n - used, frame, sizeof frame);
    /* Even a "\r\n\r\n" inside the frame bytes does not move the end. */
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, hn + 3, 0, 0, &used),
              WS_OK);
    EXPECT_EQ(used, hn);
    free(buf);
}

void test_handshake_accepts_connection_keep_alive_upgrade(void)
{
    const char *error = "unset";

    EXPECT_EQ(parse_request_text(REQ_LINE H_HOST H_UPGRADE
                                 "Connection: keep-alive, Upgrade\r\n"
                                 H_KEY H_VER "\r\n", 0, 0, &error, NULL),
              WS_OK);
    EXPECT_TRUE(error == NULL);
    /* Firefox's form, and the tokens spread over two lines. */
    EXPECT_EQ(parse_request_text(REQ_LINE H_HOST H_UPGRADE
                                 "Connection: keep-alive\r\n"
                                 "Connection: upgrade\r\n"
                                 H_KEY H_VER "\r\n", 0, 0, NULL, NULL),
              WS_OK);
}

void test_handshake_accepts_mixed_case_upgrade_tokens(void)
{
    EXPECT_EQ(parse_request_text(REQ_LINE "host: server.example.com\r\n"
                                 "upgrade: WebSocket\r\n"
                                 "CONNECTION: UPGRADE\r\n"
                                 "sec-websocket-key: " RFC_KEY "\r\n"
                                 "SEC-WEBSOCKET-VERSION: 13\r\n\r\n",
                                 0, 0, NULL, NULL),
              WS_OK);
    EXPECT_EQ(parse_request_text(REQ_LINE H_HOST
                                 "Upgrade: h2c, WEBSOCKET\r\n"
                                 H_CONN H_KEY H_VER "\r\n", 0, 0, NULL, NULL),
              WS_OK);
}

void test_handshake_accepts_later_http_version(void)
{
    EXPECT_EQ(parse_request_text("GET / HTTP/1.2\r\n" GOOD_HEADERS "\r\n", 0,
                                 0, NULL, NULL),
              WS_OK);
    EXPECT_EQ(parse_request_text("GET / HTTP/2.0\r\n" GOOD_HEADERS "\r\n", 0,
                                 0, NULL, NULL),
              WS_OK);
}

void test_handshake_splits_path_and_query(void)
{
    static const char text[] =
        "GET /a/b?room=1&x=?y HTTP/1.1\r\n" GOOD_HEADERS "\r\n";
    static const char text2[] = "GET /a? HTTP/1.1\r\n" GOOD_HEADERS "\r\n";
    uint8_t *buf = copy_exact(text, strlen(text));
    uint8_t *buf2 = copy_exact(text2, strlen(text2));
    struct ws_request req;
    size_t used;

    EXPECT_EQ(ws_handshake_parse_request(&req, buf, strlen(text), 0, 0, &used),
              WS_OK);
    EXPECT_SLICE(req.target, "/a/b?room=1&x=?y");
    EXPECT_SLICE(req.path, "/a/b");
    EXPECT_SLICE(req.query, "room=1&x=?y");
    EXPECT_EQ(ws_handshake_parse_request(&req, buf2, strlen(text2), 0, 0,
                                         &used),
              WS_OK);
    EXPECT_SLICE(req.path, "/a");
    EXPECT_EQ(req.query.n, 0);
    free(buf);
    free(buf2);
}

/* RFC 9110 5.5: OWS around a field value is not part of it. */
void test_handshake_trims_header_values(void)
{
    static const char text[] = REQ_LINE
        "Host:server.example.com\r\n"
        "Upgrade: \t websocket \t\r\n"
        "Connection:\tUpgrade\r\n"
        "Sec-WebSocket-Key:   " RFC_KEY "  \r\n"
        "Sec-WebSocket-Version: 13 \r\n"
        "Origin:\r\n"
        "\r\n";
    size_t n = strlen(text), used;
    uint8_t *buf = copy_exact(text, n);
    struct ws_request req;

    EXPECT_EQ(ws_handshake_parse_request(&req, buf, n, 0, 0, &used), WS_OK);
    EXPECT_SLICE(req.host, "server.example.com");
    EXPECT_SLICE(req.key, RFC_KEY);
    EXPECT_SLICE(req.version, "13");
    EXPECT_EQ(req.origin.n, 0);
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* Request parsing: one test per rule                                       */
/* ------------------------------------------------------------------------ */

/* RFC 6455 4.1 client requirement 2, 4.2.1 item 1: the method is GET. */
void test_handshake_rejects_non_get_method(void)
{
    expect_bad_request("POST /chat HTTP/1.1\r\n" GOOD_HEADERS "\r\n",
                       WS_ERR_HANDSHAKE);
    /* RFC 9110 9.1: methods are case-sensitive. */
    expect_bad_request("get /chat HTTP/1.1\r\n" GOOD_HEADERS "\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request("GETS /chat HTTP/1.1\r\n" GOOD_HEADERS "\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 6455 4.2.1 item 1: HTTP/1.1 or higher; HTTP/1.0 gets 400. */
void test_handshake_rejects_http_1_0(void)
{
    expect_bad_request("GET /chat HTTP/1.0\r\n" GOOD_HEADERS "\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request("GET /chat HTTP/0.9\r\n" GOOD_HEADERS "\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 9112 3: request-line = method SP request-target SP HTTP-version. */
void test_handshake_rejects_malformed_request_line(void)
{
    static const char *const lines[] = {
        "GET  /chat HTTP/1.1\r\n",   /* two spaces */
        "GET /chat  HTTP/1.1\r\n",
        "GET /chat\r\n",             /* HTTP/0.9 style */
        "GET /chat HTTP/1.1 \r\n",
        "GET /chat HTTP/11\r\n",
        "GET /chat HTTP/1.10\r\n",
        "GET /chat http/1.1\r\n",    /* RFC 9112 2.3: case-sensitive */
        "GET /chat HTTP/a.1\r\n",
        "GET\t/chat HTTP/1.1\r\n",
        " GET /chat HTTP/1.1\r\n",
        "GET /ch\x01t HTTP/1.1\r\n", /* control char in the target */
        "GET /ch\x80t HTTP/1.1\r\n", /* non-ASCII in the target */
        "GET chat HTTP/1.1\r\n",     /* RFC 9112 3.2.1: origin-form */
        "GET http://h/chat HTTP/1.1\r\n",
        "GET /chat#frag HTTP/1.1\r\n", /* RFC 6455 3: no fragment */
        "GET / HTTP/1.1\x00\r\n",
    };
    char text[256];
    size_t i;

    for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        snprintf(text, sizeof text, "%s%s\r\n", lines[i], GOOD_HEADERS);
        expect_bad_request(text, WS_ERR_HANDSHAKE);
    }
    /* A NUL inside the request line (snprintf would stop at it). */
    {
        static const char nul_req[] = "GET /a\0b HTTP/1.1\r\n" GOOD_HEADERS
                                      "\r\n";
        uint8_t *buf = copy_exact(nul_req, sizeof nul_req - 1);
        struct ws_request req;
        size_t used;

        EXPECT_EQ(ws_handshake_parse_request(&req, buf, sizeof nul_req - 1,
                                             0, 0, &used),
                  WS_ERR_HANDSHAKE);
        EXPECT_TRUE(req.error != NULL);
        free(buf);
    }
}

/* RFC 6455 4.2.1 item 2, RFC 9112 3.2: a Host header is required. */
void test_handshake_rejects_missing_host(void)
{
    expect_bad_request(REQ_LINE H_UPGRADE H_CONN H_KEY H_VER "\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE "Host:\r\n" H_UPGRADE H_CONN H_KEY H_VER
                       "\r\n", WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE "Host: a b\r\n" H_UPGRADE H_CONN H_KEY H_VER
                       "\r\n", WS_ERR_HANDSHAKE);
}

/* RFC 9112 3.2: more than one Host line is a 400. */
void test_handshake_rejects_duplicate_host(void)
{
    expect_bad_request(REQ_LINE H_HOST "host: other.example.com\r\n"
                       H_UPGRADE H_CONN H_KEY H_VER "\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE "Host: a.example, b.example\r\n"
                       H_UPGRADE H_CONN H_KEY H_VER "\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 6455 4.2.1 item 3: Upgrade must list websocket. */
void test_handshake_rejects_missing_upgrade(void)
{
    expect_bad_request(REQ_LINE H_HOST H_CONN H_KEY H_VER "\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 6455 4.2.1 item 3: the token itself, not a prefix or a lookalike. */
void test_handshake_rejects_upgrade_without_websocket_token(void)
{
    expect_bad_request(REQ_LINE H_HOST "Upgrade: h2c\r\n" H_CONN H_KEY H_VER
                       "\r\n", WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE H_HOST "Upgrade: websockets\r\n" H_CONN H_KEY
                       H_VER "\r\n", WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE H_HOST "Upgrade:\r\n" H_CONN H_KEY H_VER
                       "\r\n", WS_ERR_HANDSHAKE);
}

/* RFC 6455 4.2.1 item 4: Connection must list Upgrade. */
void test_handshake_rejects_connection_without_upgrade(void)
{
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE H_KEY H_VER "\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE "Connection: keep-alive\r\n"
                       H_KEY H_VER "\r\n", WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE "Connection: Upgrades\r\n"
                       H_KEY H_VER "\r\n", WS_ERR_HANDSHAKE);
}

/* RFC 6455 4.2.1 item 5: a key is required. */
void test_handshake_rejects_missing_key(void)
{
    const char *error = NULL;

    EXPECT_EQ(parse_request_text(REQ_LINE H_HOST H_UPGRADE H_CONN H_VER
                                 "\r\n", 0, 0, &error, NULL),
              WS_ERR_HANDSHAKE);
    EXPECT_TRUE(error != NULL && strstr(error, "Sec-WebSocket-Key") != NULL);
}

/* RFC 6455 4.2.1 item 5: the key is base64 of exactly 16 bytes. */
void test_handshake_rejects_key_not_16_bytes(void)
{
    static const char *const keys[] = {
        "dGhlIHNhbXBsZSBub25j",         /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZQ=",      /* bad padding */
        "dGhlIHNhbXBsZSBub25jZQ==A",    /* 25 chars */
        "dGhlIHNhbXBsZSBub25jZQAA",     /* 18 bytes, no padding */
        "dGhlIHNhbXBsZSBub25jZR==",     /* non-canonical trailing bits */
        "dGhlIHNhbXBsZSBub25j*Q==",     /* not base64 */
        "dGhlIHNhbXBs ZSBub25jZQ=",     /* space inside */
        "",
    };
    char text[256];
    size_t i;

    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(text, sizeof text,
                 REQ_LINE H_HOST H_UPGRADE H_CONN
                 "Sec-WebSocket-Key: %s\r\n" H_VER "\r\n", keys[i]);
        expect_bad_request(text, WS_ERR_HANDSHAKE);
    }
}

/* RFC 6455 11.3.1: Sec-WebSocket-Key must not appear more than once. */
void test_handshake_rejects_duplicate_key(void)
{
    expect_bad_request(REQ_LINE GOOD_HEADERS H_KEY "\r\n", WS_ERR_HANDSHAKE);
}

/* RFC 6455 4.2.1 item 6: no version at all is a plain bad request (400). */
void test_handshake_rejects_missing_version_with_400(void)
{
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY "\r\n",
                       WS_ERR_HANDSHAKE);
    EXPECT_EQ(ws_err_http_status(WS_ERR_HANDSHAKE), 400);
}

/* RFC 6455 4.2.2 / 4.4: a version other than 13 gets 426. */
void test_handshake_rejects_version_12_with_426(void)
{
    const char *error = NULL;

    EXPECT_EQ(parse_request_text(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                                 "Sec-WebSocket-Version: 12\r\n\r\n", 0, 0,
                                 &error, NULL),
              WS_ERR_VERSION);
    EXPECT_TRUE(error != NULL);
    EXPECT_EQ(ws_err_http_status(WS_ERR_VERSION), 426);
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                       "Sec-WebSocket-Version: 8\r\n\r\n", WS_ERR_VERSION);
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                       "Sec-WebSocket-Version: 013\r\n\r\n", WS_ERR_VERSION);
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                       "Sec-WebSocket-Version: 13, 8\r\n\r\n", WS_ERR_VERSION);
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE H_CONN H_KEY
                       "Sec-WebSocket-Version:\r\n\r\n", WS_ERR_VERSION);
}

/* RFC 6455 11.3.5: Sec-WebSocket-Version must not repeat in a request. */
void test_handshake_rejects_duplicate_version(void)
{
    expect_bad_request(REQ_LINE GOOD_HEADERS H_VER "\r\n", WS_ERR_HANDSHAKE);
}

/* RFC 9112 5: a field line is name ":" value. */
void test_handshake_rejects_header_without_colon(void)
{
    expect_bad_request(REQ_LINE GOOD_HEADERS "X-Broken\r\n\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 9110 5.1: the field name is a token, so not empty. */
void test_handshake_rejects_empty_header_name(void)
{
    expect_bad_request(REQ_LINE GOOD_HEADERS ": value\r\n\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE GOOD_HEADERS "X(y): value\r\n\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 9112 5.1: no whitespace between the field name and the colon. */
void test_handshake_rejects_space_before_colon(void)
{
    const char *error = NULL;

    EXPECT_EQ(parse_request_text(REQ_LINE "Host : server.example.com\r\n"
                                 H_UPGRADE H_CONN H_KEY H_VER "\r\n", 0, 0,
                                 &error, NULL),
              WS_ERR_HANDSHAKE);
    EXPECT_TRUE(error != NULL && strstr(error, "5.1") != NULL);
    expect_bad_request(REQ_LINE GOOD_HEADERS "X-A\t: b\r\n\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 9110 5.5: no control characters (but HTAB) in a field value. */
void test_handshake_rejects_control_char_in_header(void)
{
    static const char nul_req[] = REQ_LINE GOOD_HEADERS "X-A: b\0c\r\n\r\n";
    static const char nul_name[] = REQ_LINE GOOD_HEADERS "X\0A: b\r\n\r\n";
    uint8_t *buf = copy_exact(nul_req, sizeof nul_req - 1);
    struct ws_request req;
    size_t used;

    expect_bad_request(REQ_LINE GOOD_HEADERS "X-A: b\x01" "c\r\n\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE GOOD_HEADERS "X-A: b\x7f\r\n\r\n",
                       WS_ERR_HANDSHAKE);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, sizeof nul_req - 1, 0, 0,
                                         &used),
              WS_ERR_HANDSHAKE);
    EXPECT_TRUE(req.error != NULL);
    free(buf);
    buf = copy_exact(nul_name, sizeof nul_name - 1);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, sizeof nul_name - 1, 0, 0,
                                         &used),
              WS_ERR_HANDSHAKE);
    free(buf);
    /* obs-text (RFC 9110 5.5) and HTAB are allowed. */
    EXPECT_EQ(parse_request_text(REQ_LINE GOOD_HEADERS
                                 "X-A: caf\xc3\xa9\tok\r\n\r\n", 0, 0, NULL,
                                 NULL),
              WS_OK);
}

/* RFC 9112 5.2: obs-fold continuation lines are rejected with 400. */
void test_handshake_rejects_obs_fold(void)
{
    const char *error = NULL;

    EXPECT_EQ(parse_request_text(REQ_LINE GOOD_HEADERS "X-A: b\r\n c\r\n\r\n",
                                 0, 0, &error, NULL),
              WS_ERR_HANDSHAKE);
    EXPECT_TRUE(error != NULL && strstr(error, "folding") != NULL);
    expect_bad_request(REQ_LINE H_HOST H_UPGRADE "Connection: keep-alive,\r\n"
                       " Upgrade\r\n" H_KEY H_VER "\r\n", WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE GOOD_HEADERS "\tfolded\r\n\r\n",
                       WS_ERR_HANDSHAKE);
}

/* RFC 9112 2.2 allows a bare LF; we require CRLF (see ws_handshake.c),
 * and fail as soon as the bare LF is seen rather than wait for more. */
void test_handshake_rejects_bare_lf(void)
{
    static const char lf_only[] =
        "GET /chat HTTP/1.1\nHost: server.example.com\n";
    const char *error = NULL;

    expect_bad_request("GET /chat HTTP/1.1\n" GOOD_HEADERS "\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE GOOD_HEADERS "\n", WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE H_HOST "X-A: b\n" H_UPGRADE H_CONN H_KEY
                       H_VER "\r\n", WS_ERR_HANDSHAKE);
    /* early: no terminator yet */
    EXPECT_EQ(parse_request_text(lf_only, 0, 0, &error, NULL),
              WS_ERR_HANDSHAKE);
    EXPECT_TRUE(error != NULL && strstr(error, "LF") != NULL);
}

/* RFC 9112 2.2: a bare CR is invalid. */
void test_handshake_rejects_bare_cr(void)
{
    expect_bad_request(REQ_LINE GOOD_HEADERS "X-A: b\rc\r\n\r\n",
                       WS_ERR_HANDSHAKE);
    expect_bad_request(REQ_LINE GOOD_HEADERS "\r\r\n\r\n", WS_ERR_HANDSHAKE);
    /* Early: no terminator yet, but the bare CR is already known. */
    EXPECT_EQ(parse_request_text(REQ_LINE "Host: a\rb", 0, 0, NULL, NULL),
              WS_ERR_HANDSHAKE);
    /* A CR at the very end may still be followed by LF: wait. */
    EXPECT_EQ(parse_request_text(REQ_LINE "Host: a\r", 0, 0, NULL, NULL),
              WS_INCOMPLETE);
}

/* A request must start with its request line, not an empty line. */
void test_handshake_rejects_leading_empty_line(void)
{
    expect_bad_request("\r\n" REQ_LINE GOOD_HEADERS "\r\n", WS_ERR_HANDSHAKE);
}

/* Limits: more header lines than max_headers is 431 (RFC 6585 5). */
void test_handshake_rejects_too_many_headers_431(void)
{
    static const char text[] = REQ_LINE GOOD_HEADERS "X-A: 1\r\n\r\n";
    char big[4096];
    size_t i, len;
    const char *error = NULL;

    /* 6 header lines: a limit of 6 passes, 5 fails. */
    EXPECT_EQ(parse_request_text(text, 0, 6, NULL, NULL), WS_OK);
    EXPECT_EQ(parse_request_text(text, 0, 5, &error, NULL),
              WS_ERR_HEADER_TOO_BIG);
    EXPECT_TRUE(error != NULL);
    /* The default is 64 header lines. */
    len = (size_t)snprintf(big, sizeof big, "%s", REQ_LINE GOOD_HEADERS);
    for (i = 5; i < 64; i++)
        len += (size_t)snprintf(big + len, sizeof big - len, "X-A: %zu\r\n",
                                i);
    snprintf(big + len, sizeof big - len, "\r\n");
    EXPECT_EQ(parse_request_text(big, 0, 0, NULL, NULL), WS_OK);
    snprintf(big + len, sizeof big - len, "X-B: 1\r\n\r\n");
    EXPECT_EQ(parse_request_text(big, 0, 0, NULL, NULL),
              WS_ERR_HEADER_TOO_BIG);
    /* Too many lines is known before the terminator arrives. */
    big[len + 8] = '\0';
    EXPECT_EQ(parse_request_text(big, 0, 0, NULL, NULL),
              WS_ERR_HEADER_TOO_BIG);
}

/* Limits: a request of exactly max_bytes passes, one byte more is 431. */
void test_handshake_rejects_oversized_request_431(void)
{
    size_t n = strlen(rfc_request);
    const char *error = NULL;
    char big[9000];

    EXPECT_EQ(parse_request_text(rfc_request, n, 0, NULL, NULL), WS_OK);
    EXPECT_EQ(parse_request_text(rfc_request, n - 1, 0, &error, NULL),
              WS_ERR_HEADER_TOO_BIG);
    EXPECT_TRUE(error != NULL);
    /* Default 8192: one long header pushes it over. */
    memcpy(big, REQ_LINE GOOD_HEADERS "X-Big: ", strlen(REQ_LINE GOOD_HEADERS
                                                         "X-Big: "));
    {
        size_t at = strlen(REQ_LINE GOOD_HEADERS "X-Big: ");

        memset(big + at, 'a', 8192 - at - 4);
        memcpy(big + 8192 - 4, "\r\n\r\n", 5);
        EXPECT_EQ(strlen(big), 8192);
        EXPECT_EQ(parse_request_text(big, 0, 0, NULL, NULL), WS_OK);
        memset(big + at, 'a', 8192 - at - 3);
        memcpy(big + 8192 - 3, "\r\n\r\n", 5);
        EXPECT_EQ(parse_request_text(big, 0, 0, NULL, NULL),
                  WS_ERR_HEADER_TOO_BIG);
    }
}

/* A peer that never ends its head: WS_INCOMPLETE while under the limit,
 * WS_ERR_HEADER_TOO_BIG as soon as the limit is reached, and a call with a
 * huge buffer returns at once without reading it all (ASan would see an
 * over-read; the exact-size buffer has no terminator). */
void test_handshake_rejects_unterminated_stream_431(void)
{
    size_t total = 1u << 20, k, used;
    uint8_t *buf = malloc(total);
    struct ws_request req;
    int rv;

    if (buf == NULL)
        abort();
    memcpy(buf, REQ_LINE "X-A: ", strlen(REQ_LINE "X-A: "));
    memset(buf + strlen(REQ_LINE "X-A: "), 'a',
           total - strlen(REQ_LINE "X-A: "));
    for (k = 1000; k < 8192; k += 1000) {
        rv = ws_handshake_parse_request(&req, buf, k, 0, 0, &used);
        EXPECT_EQ(rv, WS_INCOMPLETE);
    }
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, 8191, 0, 0, &used),
              WS_INCOMPLETE);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, 8192, 0, 0, &used),
              WS_ERR_HEADER_TOO_BIG);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, total, 0, 0, &used),
              WS_ERR_HEADER_TOO_BIG);
    EXPECT_EQ(used, 0);
    EXPECT_TRUE(req.error != NULL);
    /* Same with many short lines, under a big byte limit: the line count
     * stops it. */
    for (k = strlen(REQ_LINE); k + 5 <= total; k += 5)
        memcpy(buf + k, "A:b\r\n", 5);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, total, total, 0, &used),
              WS_ERR_HEADER_TOO_BIG);
    free(buf);
}

void test_handshake_parse_request_bad_args(void)
{
    uint8_t *buf = copy_exact(rfc_request, strlen(rfc_request));
    size_t n = strlen(rfc_request), used = 5;
    struct ws_request req;

    EXPECT_EQ(ws_handshake_parse_request(NULL, buf, n, 0, 0, &used),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(used, 0);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, n, 0, 0, NULL),
              WS_ERR_INVALID_ARG);
    EXPECT_TRUE(req.error != NULL);
    EXPECT_EQ(ws_handshake_parse_request(&req, NULL, 5, 0, 0, &used),
              WS_ERR_INVALID_ARG);
    EXPECT_TRUE(req.error != NULL);
    /* Empty input is just incomplete. */
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, 0, 0, 0, &used),
              WS_INCOMPLETE);
    EXPECT_EQ(ws_handshake_parse_request(&req, NULL, 0, 0, 0, &used),
              WS_INCOMPLETE);
    EXPECT_EQ(used, 0);
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* Header and token walkers                                                 */
/* ------------------------------------------------------------------------ */

void test_handshake_header_find_visits_every_occurrence(void)
{
    static const char lines[] = "A: 1\r\nb: two \r\nNoColon\r\na:3\r\nAB: 4";
    struct ws_slice h, v;
    size_t pos = 0;

    h.p = lines;
    h.n = strlen(lines);
    EXPECT_EQ(ws_header_find(h, "a", &pos, &v), WS_OK);
    EXPECT_SLICE(v, "1");
    EXPECT_EQ(ws_header_find(h, "a", &pos, &v), WS_OK);
    EXPECT_SLICE(v, "3");
    EXPECT_EQ(ws_header_find(h, "a", &pos, &v), WS_INCOMPLETE);
    EXPECT_EQ(ws_header_find(h, "a", &pos, &v), WS_INCOMPLETE);
    pos = 0;
    EXPECT_EQ(ws_header_find(h, "B", &pos, &v), WS_OK);
    EXPECT_SLICE(v, "two");
    pos = 0;
    EXPECT_EQ(ws_header_find(h, "ab", &pos, &v), WS_OK); /* no final CRLF */
    EXPECT_SLICE(v, "4");
    pos = 0;
    EXPECT_EQ(ws_header_find(h, "NoColon", &pos, &v), WS_INCOMPLETE);
    h.n = 0;
    pos = 0;
    EXPECT_EQ(ws_header_find(h, "a", &pos, &v), WS_INCOMPLETE);
    EXPECT_EQ(ws_header_find(h, NULL, &pos, &v), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_header_find(h, "a", NULL, &v), WS_ERR_INVALID_ARG);
}

void test_handshake_token_next_walks_list(void)
{
    static const char text[] =
        " ,a , b\t,,\t c d ,x; q=\"1,2\", \"e\\\"\" ,";
    struct ws_slice list, t;
    size_t pos = 0;

    list.p = text;
    list.n = strlen(text);
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_OK);
    EXPECT_SLICE(t, "a");
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_OK);
    EXPECT_SLICE(t, "b");
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_OK);
    EXPECT_SLICE(t, "c d");
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_OK);
    EXPECT_SLICE(t, "x; q=\"1,2\"");
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_OK);
    EXPECT_SLICE(t, "\"e\\\"\"");
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_INCOMPLETE);
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_INCOMPLETE);
    list.n = 0;
    pos = 0;
    EXPECT_EQ(ws_token_next(list, &pos, &t), WS_INCOMPLETE);
    EXPECT_EQ(ws_token_next(list, NULL, &t), WS_ERR_INVALID_ARG);
}

/* RFC 6455 4.1: Sec-WebSocket-Protocol may repeat; every line counts. */
void test_handshake_multiple_protocol_lines(void)
{
    static const char text[] = REQ_LINE GOOD_HEADERS
        "Sec-WebSocket-Protocol: chat, superchat\r\n"
        "X-Other: v2.bookings\r\n"
        "sec-websocket-protocol: v1.bookings,\r\n"
        "Sec-WebSocket-Protocol:  , mqtt\r\n\r\n";
    size_t n = strlen(text), used;
    uint8_t *buf = copy_exact(text, n);
    struct ws_request req;

    EXPECT_EQ(ws_handshake_parse_request(&req, buf, n, 0, 0, &used), WS_OK);
    EXPECT_SLICE(req.protocols, "chat, superchat");
    EXPECT_TRUE(ws_request_has_protocol(&req, "chat"));
    EXPECT_TRUE(ws_request_has_protocol(&req, "superchat"));
    EXPECT_TRUE(ws_request_has_protocol(&req, "v1.bookings"));
    EXPECT_TRUE(ws_request_has_protocol(&req, "mqtt"));
    EXPECT_TRUE(!ws_request_has_protocol(&req, "v2.bookings"));
    EXPECT_TRUE(!ws_request_has_protocol(&req, "CHAT"));
    EXPECT_TRUE(!ws_request_has_protocol(&req, "cha"));
    EXPECT_TRUE(!ws_request_has_protocol(&req, ""));
    EXPECT_TRUE(!ws_request_has_protocol(&req, NULL));
    EXPECT_TRUE(!ws_request_has_protocol(NULL, "chat"));
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* write_response / write_error                                             */
/* ------------------------------------------------------------------------ */

/* Parse the RFC request into req; the caller frees *buf. */
static void parse_rfc_request(struct ws_request *req, uint8_t **buf)
{
    size_t n = strlen(rfc_request), used;

    *buf = copy_exact(rfc_request, n);
    EXPECT_EQ(ws_handshake_parse_request(req, *buf, n, 0, 0, &used), WS_OK);
}

/* RFC 6455 1.3 / 4.2.2: the answer to the example request. */
void test_handshake_write_response_known_bytes(void)
{
    static const char want[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n";
    struct ws_request req;
    uint8_t *buf;
    char out[256];
    size_t written = 0;

    parse_rfc_request(&req, &buf);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, NULL, NULL,
                                          &written),
              WS_OK);
    EXPECT_MEM(out, written, want, strlen(want));
    /* "" means no protocol too */
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, "", NULL,
                                          &written),
              WS_OK);
    EXPECT_MEM(out, written, want, strlen(want));
    free(buf);
}

/* RFC 6455 1.3: with the subprotocol selected, and extra headers. */
void test_handshake_write_response_with_protocol(void)
{
    static const char want[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Protocol: chat\r\n"
        "Server: libws\r\nX-A: b\r\n"
        "\r\n";
    struct ws_request req;
    uint8_t *buf;
    char out[256];
    size_t written = 0;

    parse_rfc_request(&req, &buf);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, "chat",
                                          "Server: libws\r\nX-A: b\r\n",
                                          &written),
              WS_OK);
    EXPECT_MEM(out, written, want, strlen(want));
    free(buf);
}

/* RFC 6455 4.2.2 step 5.5: the protocol must be one the client offered. */
void test_handshake_write_response_rejects_unoffered_protocol(void)
{
    struct ws_request req;
    uint8_t *buf;
    char out[256];
    size_t written = 9;

    parse_rfc_request(&req, &buf);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, "mqtt",
                                          NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(written, 0);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, "Chat",
                                          NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req,
                                          "chat, superchat", NULL, &written),
              WS_ERR_INVALID_ARG);
    free(buf);
}

/* Header injection: CR/LF in the protocol or broken extra lines. */
void test_handshake_write_response_rejects_crlf_injection(void)
{
    struct ws_request req;
    uint8_t *buf;
    char out[256];
    size_t written;

    parse_rfc_request(&req, &buf);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req,
                                          "chat\r\nX-Evil: 1", NULL,
                                          &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, "chat\n",
                                          NULL, &written),
              WS_ERR_INVALID_ARG);
    /* extra headers: missing final CRLF, bare LF, empty line (which would
     * end the head early), obs-fold, no colon */
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, NULL,
                                          "X-A: b", &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, NULL,
                                          "X-A: b\nX-B: c\r\n", &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, NULL,
                                          "X-A: b\r\n\r\nbody", &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, NULL,
                                          "X-A: b\r\n c\r\n", &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, NULL,
                                          "junk\r\n", &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, NULL, NULL, NULL,
                                          &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, NULL, "",
                                          &written),
              WS_OK);
    free(buf);
}

/* Every cap below the needed size gives WS_ERR_NO_SPACE and writes nothing
 * past cap. */
void test_handshake_write_response_no_space(void)
{
    struct ws_request req;
    uint8_t *buf;
    char out[256];
    size_t need, cap, written;

    parse_rfc_request(&req, &buf);
    EXPECT_EQ(ws_handshake_write_response(out, sizeof out, &req, "chat",
                                          NULL, &need),
              WS_OK);
    for (cap = 0; cap < need; cap++) {
        memset(out, '#', sizeof out);
        written = 7;
        EXPECT_EQ(ws_handshake_write_response(out, cap, &req, "chat", NULL,
                                              &written),
                  WS_ERR_NO_SPACE);
        EXPECT_EQ(written, 0);
        EXPECT_EQ(out[cap], '#');
    }
    EXPECT_EQ(ws_handshake_write_response(out, need, &req, "chat", NULL,
                                          &written),
              WS_OK);
    EXPECT_EQ(written, need);
    free(buf);
}

/* RFC 6455 1.3: the answer from the key alone (no parsed request). */
void test_handshake_write_accept_known_bytes(void)
{
    static const char want[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Protocol: anything\r\n"
        "X-A: b\r\n"
        "\r\n";
    char out[256];
    size_t need = 0, cap, written = 5;

    EXPECT_EQ(ws_handshake_write_accept(out, sizeof out, RFC_KEY,
                                        strlen(RFC_KEY), "anything",
                                        "X-A: b\r\n", &need),
              WS_OK);
    EXPECT_MEM(out, need, want, strlen(want));
    for (cap = 0; cap < need; cap++) {
        memset(out, '#', sizeof out);
        EXPECT_EQ(ws_handshake_write_accept(out, cap, RFC_KEY,
                                            strlen(RFC_KEY), "anything",
                                            "X-A: b\r\n", &written),
                  WS_ERR_NO_SPACE);
        EXPECT_EQ(written, 0);
        EXPECT_EQ(out[cap], '#');
    }
}

/* No offer to check against, but still no header injection. */
void test_handshake_write_accept_rejects_bad_args(void)
{
    char out[256];
    size_t written;

    EXPECT_EQ(ws_handshake_write_accept(out, sizeof out, RFC_KEY, 24,
                                        "chat\r\nX-Evil: 1", NULL,
                                        &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_accept(out, sizeof out, RFC_KEY, 24, NULL,
                                        "X-A: b", &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_accept(out, sizeof out, NULL, 24, NULL,
                                        NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_accept(out, sizeof out, RFC_KEY, 0, NULL,
                                        NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_accept(NULL, sizeof out, RFC_KEY, 24, NULL,
                                        NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_accept(out, sizeof out, RFC_KEY, 24, NULL,
                                        NULL, NULL),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_accept(out, sizeof out, RFC_KEY, 24, "",
                                        NULL, &written),
              WS_OK);
}

void test_handshake_write_error_400_known_bytes(void)
{
    static const char want[] =
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 26\r\n"
        "Connection: close\r\n"
        "\r\n"
        "missing Sec-WebSocket-Key\n";
    char out[512];
    size_t written = 0;

    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 400,
                                       "missing Sec-WebSocket-Key", &written),
              WS_OK);
    EXPECT_MEM(out, written, want, strlen(want));
}

/* RFC 6455 4.4: a 426 says which version the server speaks. */
void test_handshake_write_error_426_has_version_header(void)
{
    static const char want[] =
        "HTTP/1.1 426 Upgrade Required\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 17\r\n"
        "Connection: close\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
        "Upgrade Required\n";
    char out[512];
    size_t written = 0;

    EXPECT_EQ(ws_handshake_write_error(out, sizeof out,
                                       ws_err_http_status(WS_ERR_VERSION),
                                       NULL, &written),
              WS_OK);
    EXPECT_MEM(out, written, want, strlen(want));
    /* Only 426 carries it. */
    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 400, NULL, &written),
              WS_OK);
    out[written] = '\0';
    EXPECT_TRUE(strstr(out, "Sec-WebSocket-Version") == NULL);
}

void test_handshake_write_error_reason_phrases(void)
{
    static const struct {
        unsigned status;
        const char *line;
    } cases[] = {
        {400, "HTTP/1.1 400 Bad Request\r\n"},
        {403, "HTTP/1.1 403 Forbidden\r\n"},
        {404, "HTTP/1.1 404 Not Found\r\n"},
        {426, "HTTP/1.1 426 Upgrade Required\r\n"},
        {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
        {500, "HTTP/1.1 500 Internal Server Error\r\n"},
        {503, "HTTP/1.1 503 Service Unavailable\r\n"},
        {499, "HTTP/1.1 499 Error\r\n"},
        {599, "HTTP/1.1 599 Error\r\n"},
    };
    char out[512];
    size_t i, written;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EXPECT_EQ(ws_handshake_write_error(out, sizeof out, cases[i].status,
                                           NULL, &written),
                  WS_OK);
        EXPECT_TRUE(written >= strlen(cases[i].line));
        EXPECT_MEM(out, strlen(cases[i].line), cases[i].line,
                   strlen(cases[i].line));
    }
    /* An empty reason gives a one-byte body. */
    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 403, "", &written),
              WS_OK);
    out[written] = '\0';
    EXPECT_TRUE(strstr(out, "Content-Length: 1\r\n") != NULL);
    EXPECT_EQ(out[written - 1], '\n');
    EXPECT_EQ(out[written - 2], '\n');
}

void test_handshake_write_error_rejects_status_out_of_range(void)
{
    char out[512];
    size_t written = 3;

    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 399, NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(written, 0);
    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 600, NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 101, NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 0, NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_error(NULL, sizeof out, 400, NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 400, NULL, NULL),
              WS_ERR_INVALID_ARG);
}

void test_handshake_write_error_no_space(void)
{
    char out[512];
    size_t need, cap, written;

    EXPECT_EQ(ws_handshake_write_error(out, sizeof out, 426, "old client",
                                       &need),
              WS_OK);
    for (cap = 0; cap < need; cap++) {
        memset(out, '#', sizeof out);
        EXPECT_EQ(ws_handshake_write_error(out, cap, 426, "old client",
                                           &written),
                  WS_ERR_NO_SPACE);
        EXPECT_EQ(out[cap], '#');
    }
    EXPECT_EQ(ws_handshake_write_error(out, need, 426, "old client",
                                       &written),
              WS_OK);
}

/* ------------------------------------------------------------------------ */
/* write_request                                                            */
/* ------------------------------------------------------------------------ */

/* RFC 6455 4.1: the client's request, byte for byte around the key. */
void test_handshake_write_request_format(void)
{
    static const char head[] =
        "GET /chat?x=1 HTTP/1.1\r\n"
        "Host: server.example.com:8080\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: ";
    static const char tail[] =
        "\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Origin: http://example.com\r\n"
        "Sec-WebSocket-Protocol: chat, superchat\r\n"
        "X-Token: abc\r\n"
        "\r\n";
    struct ws_client_request r;
    char out[512], key[WS_KEY_LEN + 1];
    uint8_t raw[16];
    size_t written = 0, raw_len = 0, hn = strlen(head);

    memset(&r, 0, sizeof r);
    r.host = "server.example.com:8080";
    r.path = "/chat?x=1";
    r.origin = "http://example.com";
    r.protocols = "chat, superchat";
    r.extra_headers = "X-Token: abc\r\n";
    memset(key, '#', sizeof key);
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_OK);
    EXPECT_EQ(written, hn + WS_KEY_LEN + strlen(tail));
    EXPECT_MEM(out, hn, head, hn);
    EXPECT_MEM(out + hn, WS_KEY_LEN, key, WS_KEY_LEN);
    EXPECT_MEM(out + hn + WS_KEY_LEN, written - hn - WS_KEY_LEN, tail,
               strlen(tail));
    EXPECT_EQ(key[WS_KEY_LEN], '\0');
    EXPECT_EQ(strlen(key), WS_KEY_LEN);
    /* RFC 6455 4.1 requirement 7: base64 of 16 bytes. */
    EXPECT_EQ(ws__base64_decode(key, WS_KEY_LEN, raw, sizeof raw, &raw_len),
              WS_OK);
    EXPECT_EQ(raw_len, 16);
}

/* RFC 6455 4.1 requirement 7: a fresh nonce per connection; path NULL
 * means "/", and only Host is required. */
void test_handshake_write_request_fresh_keys(void)
{
    static const char want[] = "GET / HTTP/1.1\r\nHost: h\r\n";
    struct ws_client_request r;
    char out[512], k1[WS_KEY_LEN + 1], k2[WS_KEY_LEN + 1];
    size_t written;

    memset(&r, 0, sizeof r);
    r.host = "h";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, k1, &written),
              WS_OK);
    EXPECT_MEM(out, strlen(want), want, strlen(want));
    out[written] = '\0';
    EXPECT_TRUE(strstr(out, "Origin") == NULL);
    EXPECT_TRUE(strstr(out, "Sec-WebSocket-Protocol") == NULL);
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, k2, &written),
              WS_OK);
    EXPECT_TRUE(memcmp(k1, k2, WS_KEY_LEN) != 0);
}

/* Header injection: no field may carry CR, LF or another control. */
void test_handshake_write_request_rejects_crlf_injection(void)
{
    struct ws_client_request r, bad;
    char out[512], key[WS_KEY_LEN + 1];
    size_t written = 4;

    memset(&r, 0, sizeof r);
    r.host = "h";
    r.path = "/p";
    r.origin = "http://o";
    r.protocols = "chat";
    bad = r;
    bad.host = "h\r\nX-Evil: 1";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(written, 0);
    bad = r;
    bad.path = "/p\r\nX-Evil: 1";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.path = "/p HTTP/1.0\r\n";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.origin = "http://o\nX-Evil: 1";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.protocols = "chat\r\nX-Evil: 1";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.protocols = "chat superchat"; /* not a list of tokens */
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.protocols = " , ";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.extra_headers = "X-A: 1\r\n\r\nGET /evil HTTP/1.1\r\n";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.extra_headers = "X-A: 1";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    bad = r;
    bad.host = "h\tx";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &bad, key, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_OK);
}

/* RFC 6455 4.1: a host is required, the path is "/resource name". */
void test_handshake_write_request_requires_host_and_slash_path(void)
{
    struct ws_client_request r;
    char out[512], key[WS_KEY_LEN + 1];
    size_t written;

    memset(&r, 0, sizeof r);
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_ERR_INVALID_ARG);
    r.host = "";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_ERR_INVALID_ARG);
    r.host = "h";
    r.path = "chat";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_ERR_INVALID_ARG);
    r.path = "";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_ERR_INVALID_ARG);
    r.path = "/chat#frag";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_ERR_INVALID_ARG);
    r.path = "/chat";
    EXPECT_EQ(ws_handshake_write_request(NULL, sizeof out, &r, key, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, NULL, key, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, NULL, &written),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, NULL),
              WS_ERR_INVALID_ARG);
}

void test_handshake_write_request_no_space(void)
{
    struct ws_client_request r;
    char out[512], key[WS_KEY_LEN + 1];
    size_t need, cap, written;

    memset(&r, 0, sizeof r);
    r.host = "server.example.com";
    r.protocols = "chat";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &need),
              WS_OK);
    for (cap = 0; cap < need; cap++) {
        memset(out, '#', sizeof out);
        memset(key, '#', sizeof key);
        written = 1;
        EXPECT_EQ(ws_handshake_write_request(out, cap, &r, key, &written),
                  WS_ERR_NO_SPACE);
        EXPECT_EQ(written, 0);
        EXPECT_EQ(out[cap], '#');
        EXPECT_EQ(key[0], '#'); /* key_out only on success */
    }
}

/* ------------------------------------------------------------------------ */
/* Round trip and response parsing                                          */
/* ------------------------------------------------------------------------ */

/* Our client request passes our server parser, and our server's answer
 * passes our client verifier. */
void test_handshake_client_server_round_trip(void)
{
    struct ws_client_request r;
    struct ws_request req;
    struct ws_response resp;
    char out[512], answer[512], key[WS_KEY_LEN + 1];
    size_t written, used, alen;
    uint8_t *buf, *abuf;

    memset(&r, 0, sizeof r);
    r.host = "example.com:9001";
    r.path = "/ws?room=7";
    r.origin = "https://example.com";
    r.protocols = "v2.chat, v1.chat";
    r.extra_headers = "Authorization: Bearer x\r\n";
    EXPECT_EQ(ws_handshake_write_request(out, sizeof out, &r, key, &written),
              WS_OK);
    buf = copy_exact(out, written);
    EXPECT_EQ(ws_handshake_parse_request(&req, buf, written, 0, 0, &used),
              WS_OK);
    EXPECT_EQ(used, written);
    EXPECT_SLICE(req.host, "example.com:9001");
    EXPECT_SLICE(req.path, "/ws");
    EXPECT_SLICE(req.query, "room=7");
    EXPECT_SLICE(req.origin, "https://example.com");
    EXPECT_SLICE(req.key, key);
    EXPECT_TRUE(ws_request_has_protocol(&req, "v1.chat"));

    EXPECT_EQ(ws_handshake_write_response(answer, sizeof answer, &req,
                                          "v1.chat", NULL, &alen),
              WS_OK);
    abuf = copy_exact(answer, alen);
    EXPECT_EQ(ws_handshake_parse_response(&resp, abuf, alen, key, r.protocols,
                                          0, &used),
              WS_OK);
    EXPECT_EQ(used, alen);
    EXPECT_TRUE(resp.error == NULL);
    EXPECT_EQ(resp.status, 101);
    EXPECT_SLICE(resp.reason, "Switching Protocols");
    EXPECT_SLICE(resp.protocol, "v1.chat");
    EXPECT_EQ(resp.header_count, 4);
    /* The same answer does not verify against another key. */
    EXPECT_EQ(ws_handshake_parse_response(&resp, abuf, alen, RFC_KEY,
                                          r.protocols, 0, &used),
              WS_ERR_BAD_RESPONSE);
    free(buf);
    free(abuf);
}

void test_handshake_parses_rfc_example_response(void)
{
    static const char text[] = RESP_101 R_UPGRADE R_CONN R_ACCEPT
        "Sec-WebSocket-Protocol: chat\r\n\r\n";
    size_t n = strlen(text), used = 0, pos = 0;
    uint8_t *buf = copy_exact(text, n);
    struct ws_response resp;
    struct ws_slice v;

    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, RFC_KEY,
                                          "chat, superchat", 0, &used),
              WS_OK);
    EXPECT_EQ(used, n);
    EXPECT_EQ(resp.status, 101);
    EXPECT_SLICE(resp.reason, "Switching Protocols");
    EXPECT_SLICE(resp.accept, RFC_ACCEPT);
    EXPECT_SLICE(resp.protocol, "chat");
    EXPECT_EQ(resp.extensions.n, 0);
    EXPECT_EQ(resp.header_count, 4);
    EXPECT_EQ(ws_header_find(resp.headers, "upgrade", &pos, &v), WS_OK);
    EXPECT_SLICE(v, "websocket");
    free(buf);
}

/* A response split at every byte: WS_INCOMPLETE until complete. */
void test_handshake_response_split_at_every_byte(void)
{
    static const char text[] = GOOD_RESPONSE;
    size_t n = strlen(text), k, used;
    struct ws_response resp;

    for (k = 0; k <= n; k++) {
        uint8_t *buf = copy_exact(text, k);
        int rv = ws_handshake_parse_response(&resp, buf, k, RFC_KEY, NULL, 0,
                                             &used);

        EXPECT_EQ(rv, k < n ? WS_INCOMPLETE : WS_OK);
        EXPECT_EQ(used, k < n ? 0 : n);
        free(buf);
    }
}

/* The server's first frames may arrive with the 101. */
void test_handshake_response_preserves_trailing_frames(void)
{
    static const char text[] = GOOD_RESPONSE "\x81\x05Hello\r\n\r\n";
    size_t n = sizeof text - 1, used = 0;
    uint8_t *buf = copy_exact(text, n);
    struct ws_response resp;

    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, RFC_KEY, NULL, 0,
                                          &used),
              WS_OK);
    EXPECT_EQ(used, strlen(GOOD_RESPONSE));
    EXPECT_MEM(buf + used, n - used, "\x81\x05Hello\r\n\r\n", 11);
    free(buf);
}

/* RFC 6455 4.1 client requirement 4: the accept value must match. */
void test_handshake_response_rejects_wrong_accept(void)
{
    expect_bad_response(RESP_101 R_UPGRADE R_CONN
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n"
                        "\r\n", NULL, WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN
                        "Sec-WebSocket-Accept: S3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "\r\n", NULL, WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN "\r\n", NULL,
                        WS_ERR_BAD_RESPONSE);
}

/* RFC 6455 11.3.3: Sec-WebSocket-Accept must not appear more than once. */
void test_handshake_response_rejects_duplicate_accept(void)
{
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT R_ACCEPT "\r\n",
                        NULL, WS_ERR_BAD_RESPONSE);
}

/* RFC 6455 4.1 client requirement 2: Upgrade must be websocket. */
void test_handshake_response_rejects_missing_upgrade(void)
{
    expect_bad_response(RESP_101 R_CONN R_ACCEPT "\r\n", NULL,
                        WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 "Upgrade: h2c\r\n" R_CONN R_ACCEPT "\r\n",
                        NULL, WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 "Upgrade: websocket, h2c\r\n" R_CONN
                        R_ACCEPT "\r\n", NULL, WS_ERR_BAD_RESPONSE);
    /* case-insensitive */
    EXPECT_EQ(parse_response_text(RESP_101 "upgrade: WebSocket\r\n" R_CONN
                                  R_ACCEPT "\r\n", RFC_KEY, NULL, NULL, NULL),
              WS_OK);
}

/* RFC 6455 4.1 client requirement 3: Connection must list Upgrade. */
void test_handshake_response_rejects_missing_connection_upgrade(void)
{
    expect_bad_response(RESP_101 R_UPGRADE R_ACCEPT "\r\n", NULL,
                        WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE "Connection: close\r\n" R_ACCEPT
                        "\r\n", NULL, WS_ERR_BAD_RESPONSE);
    EXPECT_EQ(parse_response_text(RESP_101 R_UPGRADE
                                  "connection: keep-alive, upgrade\r\n"
                                  R_ACCEPT "\r\n", RFC_KEY, NULL, NULL, NULL),
              WS_OK);
}

/* RFC 6455 4.1 client requirement 1: any status but 101 is a refusal;
 * the head is consumed, the body is left to the caller. */
void test_handshake_response_403_is_rejected(void)
{
    static const char head[] =
        "HTTP/1.1 403 Forbidden\r\n"
        "Content-Length: 4\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    static const char text[] =
        "HTTP/1.1 403 Forbidden\r\n"
        "Content-Length: 4\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\nno!\n";
    size_t n = strlen(text), used = 0, pos = 0;
    uint8_t *buf = copy_exact(text, n);
    struct ws_response resp;
    struct ws_slice v;

    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, RFC_KEY, NULL, 0,
                                          &used),
              WS_ERR_REJECTED);
    EXPECT_EQ(resp.status, 403);
    EXPECT_SLICE(resp.reason, "Forbidden");
    EXPECT_TRUE(resp.error != NULL);
    EXPECT_EQ(used, strlen(head));
    EXPECT_EQ(ws_header_find(resp.headers, "Sec-WebSocket-Version", &pos, &v),
              WS_OK);
    EXPECT_SLICE(v, "13");
    free(buf);
    expect_bad_response("HTTP/1.1 200 OK\r\n\r\n", NULL, WS_ERR_REJECTED);
    expect_bad_response("HTTP/1.0 400 Bad Request\r\n\r\n", NULL,
                        WS_ERR_REJECTED);
}

/* RFC 6455 4.1 client requirement 6: a subprotocol we did not offer. */
void test_handshake_response_rejects_unoffered_protocol(void)
{
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
                        "chat, superchat", WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Protocol: Chat\r\n\r\n",
                        "chat, superchat", WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n",
                        "chat, superchat", WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Protocol: chat\r\n"
                        "Sec-WebSocket-Protocol: chat\r\n\r\n",
                        "chat, superchat", WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Protocol:\r\n\r\n",
                        "chat, superchat", WS_ERR_BAD_RESPONSE);
    EXPECT_EQ(parse_response_text(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                                  "Sec-WebSocket-Protocol: superchat\r\n\r\n",
                                  RFC_KEY, "chat, superchat", NULL, NULL),
              WS_OK);
}

/* RFC 6455 4.1 client requirement 6: we offered none, so none may come. */
void test_handshake_response_rejects_protocol_when_none_offered(void)
{
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Protocol: chat\r\n\r\n", NULL,
                        WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Protocol: chat\r\n\r\n", "",
                        WS_ERR_BAD_RESPONSE);
}

/* RFC 6455 4.1 client requirement 5: we offer no extensions. */
void test_handshake_response_rejects_extensions(void)
{
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT
                        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                        "\r\n", NULL, WS_ERR_BAD_RESPONSE);
}

/* RFC 9112 4: status-line = HTTP-version SP status-code SP [reason]. */
void test_handshake_response_rejects_malformed_status_line(void)
{
    static const char *const lines[] = {
        "HTTP/1.1 1O1 Switching Protocols\r\n",
        "HTTP/1.1  101 Switching Protocols\r\n",
        "HTTP/1.1 1010 Switching Protocols\r\n",
        "HTTP/1.1 601 Weird\r\n",
        "HTTP/1.1 099 Weird\r\n",
        "HTTP/11 101 Switching Protocols\r\n",
        "HTTP/1.1 101 Switching\x01Protocols\r\n",
        "ICY 101 ok\r\n",
        "HTTP/1.1\r\n",
    };
    char text[256];
    size_t i;

    for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        snprintf(text, sizeof text, "%s%s", lines[i],
                 R_UPGRADE R_CONN R_ACCEPT "\r\n");
        expect_bad_response(text, NULL, WS_ERR_BAD_RESPONSE);
    }
    /* An HTTP/1.0 101 makes no sense. */
    expect_bad_response("HTTP/1.0 101 Switching Protocols\r\n" R_UPGRADE
                        R_CONN R_ACCEPT "\r\n", NULL, WS_ERR_BAD_RESPONSE);
    /* Tolerated: no reason phrase, with or without the SP. */
    EXPECT_EQ(parse_response_text("HTTP/1.1 101\r\n" R_UPGRADE R_CONN
                                  R_ACCEPT "\r\n", RFC_KEY, NULL, NULL, NULL),
              WS_OK);
    EXPECT_EQ(parse_response_text("HTTP/1.1 101 \r\n" R_UPGRADE R_CONN
                                  R_ACCEPT "\r\n", RFC_KEY, NULL, NULL, NULL),
              WS_OK);
    /* Header line rules apply to responses too. */
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT "X : y\r\n\r\n",
                        NULL, WS_ERR_BAD_RESPONSE);
    expect_bad_response(RESP_101 R_UPGRADE R_CONN R_ACCEPT "\n", NULL,
                        WS_ERR_BAD_RESPONSE);
}

void test_handshake_response_too_big(void)
{
    size_t n = strlen(GOOD_RESPONSE), used;
    uint8_t *buf = copy_exact(GOOD_RESPONSE, n);
    struct ws_response resp;

    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, RFC_KEY, NULL, n,
                                          &used),
              WS_OK);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, RFC_KEY, NULL, n - 1,
                                          &used),
              WS_ERR_HEADER_TOO_BIG);
    EXPECT_TRUE(resp.error != NULL);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n - 1, RFC_KEY, NULL,
                                          n - 1, &used),
              WS_ERR_HEADER_TOO_BIG);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n - 2, RFC_KEY, NULL,
                                          n - 1, &used),
              WS_INCOMPLETE);
    free(buf);
}

void test_handshake_parse_response_bad_args(void)
{
    size_t n = strlen(GOOD_RESPONSE), used;
    uint8_t *buf = copy_exact(GOOD_RESPONSE, n);
    struct ws_response resp;
    char long_key[80];

    memset(long_key, 'A', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    EXPECT_EQ(ws_handshake_parse_response(NULL, buf, n, RFC_KEY, NULL, 0,
                                          &used),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, NULL, NULL, 0,
                                          &used),
              WS_ERR_INVALID_ARG);
    EXPECT_TRUE(resp.error != NULL);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, RFC_KEY, NULL, 0,
                                          NULL),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_parse_response(&resp, NULL, n, RFC_KEY, NULL, 0,
                                          &used),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, "", NULL, 0, &used),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, n, long_key, NULL, 0,
                                          &used),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_handshake_parse_response(&resp, buf, 0, RFC_KEY, NULL, 0,
                                          &used),
              WS_INCOMPLETE);
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* Mutation: no crash, invariants hold, whatever the bytes                  */
/* ------------------------------------------------------------------------ */

static const uint8_t interesting[] = {'\r', '\n', ':', ' ', '\t', ',', '?',
                                      '/', '\0', 0x7f, 0x80, 0xff, '"', '='};

/* Flip, delete or insert a few bytes of src into dst (room for n + 8). */
static size_t mutate(uint8_t *dst, const char *src, size_t n, uint64_t *seed)
{
    size_t len = n, k, edits = 1 + test_rand(seed) % 4, at;
    uint8_t b;

    memcpy(dst, src, n);
    for (k = 0; k < edits && len > 0; k++) {
        at = (size_t)(test_rand(seed) % len);
        b = (test_rand(seed) & 1)
                ? interesting[test_rand(seed) % sizeof interesting]
                : (uint8_t)test_rand(seed);
        switch (test_rand(seed) % 3) {
        case 0:
            dst[at] = b;
            break;
        case 1:
            memmove(dst + at, dst + at + 1, len - at - 1);
            len--;
            break;
        default:
            memmove(dst + at + 1, dst + at, len - at);
            dst[at] = b;
            len++;
            break;
        }
    }
    return len;
}

static int slice_inside(struct ws_slice s, const uint8_t *buf, size_t n)
{
    const char *lo = (const char *)buf, *hi = lo + n;

    return s.n == 0 || (s.p >= lo && s.p <= hi && s.n <= (size_t)(hi - s.p));
}

void test_handshake_mutated_requests_never_crash(void)
{
    uint64_t seed = 0x6455;
    size_t n = strlen(rfc_request), i, len, used, limit;
    uint8_t tmp[512];
    int counts[5] = {0, 0, 0, 0, 0};
    struct ws_request req;
    int rv;

    for (i = 0; i < 2000; i++) {
        uint8_t *buf;

        len = mutate(tmp, rfc_request, n, &seed);
        buf = copy_exact(tmp, len);
        limit = (i % 10 == 0) ? (size_t)(test_rand(&seed) % (n + 8)) : 0;
        used = 12345;
        rv = ws_handshake_parse_request(&req, buf, len, limit,
                                        (i % 7 == 0) ? 4 : 0, &used);
        EXPECT_TRUE(used <= len);
        switch (rv) {
        case WS_OK:
            counts[0]++;
            EXPECT_TRUE(req.error == NULL);
            EXPECT_TRUE(used > 0);
            EXPECT_TRUE(slice_inside(req.headers, buf, used));
            EXPECT_TRUE(slice_inside(req.target, buf, used));
            EXPECT_TRUE(slice_inside(req.path, buf, used));
            EXPECT_TRUE(slice_inside(req.query, buf, used));
            EXPECT_TRUE(slice_inside(req.host, buf, used));
            EXPECT_TRUE(slice_inside(req.key, buf, used));
            EXPECT_TRUE(slice_inside(req.protocols, buf, used));
            EXPECT_EQ(req.key.n, WS_KEY_LEN);
            break;
        case WS_INCOMPLETE:
            counts[1]++;
            EXPECT_EQ(used, 0);
            break;
        case WS_ERR_HANDSHAKE:
        case WS_ERR_VERSION:
        case WS_ERR_HEADER_TOO_BIG:
            counts[rv == WS_ERR_HANDSHAKE ? 2 : rv == WS_ERR_VERSION ? 3 : 4]++;
            EXPECT_TRUE(req.error != NULL);
            break;
        default:
            EXPECT_EQ(rv, WS_ERR_HANDSHAKE); /* not a documented status */
            break;
        }
        free(buf);
    }
    test_note("mutated requests: %d ok, %d incomplete, %d 400, %d 426, "
              "%d 431", counts[0], counts[1], counts[2], counts[3],
              counts[4]);
    EXPECT_TRUE(counts[0] > 0 && counts[2] > 0);
}

void test_handshake_mutated_responses_never_crash(void)
{
    static const char text[] = RESP_101 R_UPGRADE R_CONN R_ACCEPT
        "Sec-WebSocket-Protocol: chat\r\n\r\n";
    uint64_t seed = 0x101;
    size_t n = strlen(text), i, len, used;
    uint8_t tmp[512];
    struct ws_response resp;
    int rv;

    for (i = 0; i < 2000; i++) {
        uint8_t *buf;

        len = mutate(tmp, text, n, &seed);
        buf = copy_exact(tmp, len);
        used = 12345;
        rv = ws_handshake_parse_response(&resp, buf, len, RFC_KEY,
                                         "chat, superchat", 0, &used);
        EXPECT_TRUE(used <= len);
        EXPECT_TRUE(rv == WS_OK || rv == WS_INCOMPLETE ||
                    rv == WS_ERR_REJECTED || rv == WS_ERR_BAD_RESPONSE ||
                    rv == WS_ERR_HEADER_TOO_BIG);
        if (rv == WS_OK) {
            EXPECT_TRUE(resp.error == NULL);
            EXPECT_TRUE(slice_inside(resp.headers, buf, used));
            EXPECT_TRUE(slice_inside(resp.protocol, buf, used));
        } else if (rv != WS_INCOMPLETE) {
            EXPECT_TRUE(resp.error != NULL);
        }
        free(buf);
    }
}
