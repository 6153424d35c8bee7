/*
 * fuzz_handshake_request.c - ws_handshake_parse_request (RFC 6455 4.2.1)
 * on the input, copied to an exactly-sized buffer.
 *
 * Invariants:
 *   - *consumed <= len; an error sets req.error; WS_INCOMPLETE consumes 0;
 *   - WS_OK: every slice lies inside the buffer, the fields hold what
 *     4.2.1 requires (GET, HTTP/1.1+, 24-char key, version 13), the head
 *     ends with CRLF CRLF at *consumed, and parsing just data[0..consumed)
 *     gives the same result, while one byte less gives WS_INCOMPLETE;
 *     max_bytes = *consumed is enough;
 *   - ws_header_find and ws_token_next terminate, move forward and stay
 *     inside the header block; ws_request_has_protocol agrees with them;
 *   - our 101 answer to the request (ws_handshake_write_response) is
 *     accepted by our own client-side parser.
 */
#include "fuzz_check.h"

#define SLICE_IN(s, base, len) FZ_INSIDE((s).p, (s).n, base, len)

static int same_slice(struct ws_slice a, struct ws_slice b)
{
    return a.n == b.n && (a.n == 0 || a.p == b.p);
}

static int same_request(const struct ws_request *a, const struct ws_request *b)
{
    return same_slice(a->method, b->method) &&
           same_slice(a->target, b->target) && same_slice(a->path, b->path) &&
           same_slice(a->query, b->query) && same_slice(a->host, b->host) &&
           same_slice(a->origin, b->origin) && same_slice(a->key, b->key) &&
           same_slice(a->version, b->version) &&
           same_slice(a->protocols, b->protocols) &&
           same_slice(a->extensions, b->extensions) &&
           same_slice(a->headers, b->headers) &&
           a->http_major == b->http_major && a->http_minor == b->http_minor &&
           a->header_count == b->header_count;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Walk the values of header name and their tokens; 1 if a token equals
 * want exactly. */
static int walk_header(const struct ws_request *req, const char *name,
                       const char *want)
{
    struct ws_slice v, t;
    size_t pos = 0, prev, found = 0, tpos, tprev;
    size_t wlen = strlen(want);
    int hit = 0;

    for (;;) {
        prev = pos;
        if (ws_header_find(req->headers, name, &pos, &v) != WS_OK)
            break;
        FZ_CHECK(pos > prev && pos <= req->headers.n);
        FZ_CHECK(SLICE_IN(v, req->headers.p, req->headers.n));
        FZ_CHECK(++found <= req->header_count);
        tpos = 0;
        for (;;) {
            tprev = tpos;
            if (ws_token_next(v, &tpos, &t) != WS_OK)
                break;
            FZ_CHECK(tpos > tprev && tpos <= v.n);
            FZ_CHECK(t.n > 0 && SLICE_IN(t, v.p, v.n));
            FZ_CHECK(!is_ows(t.p[0]) && !is_ows(t.p[t.n - 1]));
            if (t.n == wlen && memcmp(t.p, want, wlen) == 0)
                hit = 1;
        }
        FZ_CHECK(tpos <= v.n);
    }
    FZ_CHECK(pos <= req->headers.n);
    return hit;
}

static void check_ok(const struct ws_request *req, const uint8_t *buf,
                     size_t used)
{
    const struct ws_slice *s[11];
    struct ws_request again;
    struct ws_response resp;
    char out[1024], key[WS_KEY_LEN + 1];
    size_t i, n = 0, used2 = 0, w = 0;
    int chat;

    s[n++] = &req->method;
    s[n++] = &req->target;
    s[n++] = &req->path;
    s[n++] = &req->query;
    s[n++] = &req->host;
    s[n++] = &req->origin;
    s[n++] = &req->key;
    s[n++] = &req->version;
    s[n++] = &req->protocols;
    s[n++] = &req->extensions;
    s[n++] = &req->headers;
    for (i = 0; i < n; i++)
        FZ_CHECK(SLICE_IN(*s[i], buf, used));
    FZ_CHECK(req->error == NULL);
    FZ_CHECK(used >= 4 && memcmp(buf + used - 4, "\r\n\r\n", 4) == 0);
    FZ_CHECK(req->method.n == 3 && memcmp(req->method.p, "GET", 3) == 0);
    FZ_CHECK(req->http_major > 1 ||
             (req->http_major == 1 && req->http_minor >= 1));
    FZ_CHECK(req->key.n == WS_KEY_LEN && req->host.n > 0);
    FZ_CHECK(req->version.n == 2 && memcmp(req->version.p, "13", 2) == 0);
    FZ_CHECK(SLICE_IN(req->path, req->target.p, req->target.n));
    FZ_CHECK(SLICE_IN(req->query, req->target.p, req->target.n));
    FZ_CHECK(req->header_count > 0);

    /* The prefix up to *consumed is the whole request. */
    FZ_CHECK(ws_handshake_parse_request(&again, buf, used, 0, 0, &used2) ==
             WS_OK);
    FZ_CHECK(used2 == used && same_request(req, &again));
    FZ_CHECK(ws_handshake_parse_request(&again, buf, used, used, 0, &used2) ==
             WS_OK);
    FZ_CHECK(ws_handshake_parse_request(&again, buf, used - 1, 0, 0,
                                        &used2) == WS_INCOMPLETE);
    FZ_CHECK(used2 == 0 && again.error != NULL);

    /* Header walks. */
    chat = walk_header(req, "Sec-WebSocket-Protocol", "chat");
    FZ_CHECK(chat == ws_request_has_protocol(req, "chat"));
    (void)walk_header(req, "connection", "Upgrade");
    (void)walk_header(req, "UPGRADE", "websocket");
    (void)walk_header(req, "Sec-WebSocket-Extensions", "x");
    (void)walk_header(req, "X", "x");

    /* Our answer satisfies our client. */
    FZ_CHECK(ws_handshake_write_response(out, sizeof out, req,
                                         chat ? "chat" : NULL, NULL,
                                         &w) == WS_OK);
    FZ_CHECK(w > 0 && w <= sizeof out);
    memcpy(key, req->key.p, WS_KEY_LEN);
    key[WS_KEY_LEN] = '\0';
    FZ_CHECK(ws_handshake_parse_response(&resp, (const uint8_t *)out, w, key,
                                         chat ? "chat" : NULL, 0,
                                         &used2) == WS_OK);
    FZ_CHECK(used2 == w && resp.status == 101);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size > 0 ? size : 1);
    struct ws_request req;
    size_t used = size + 1;
    int rv;

    FZ_CHECK(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    rv = ws_handshake_parse_request(&req, buf, size, 0, 0, &used);
    FZ_CHECK(used <= size);
    if (rv == WS_OK) {
        check_ok(&req, buf, used);
    } else {
        FZ_CHECK(rv == WS_INCOMPLETE || rv == WS_ERR_HANDSHAKE ||
                 rv == WS_ERR_VERSION || rv == WS_ERR_HEADER_TOO_BIG);
        FZ_CHECK(req.error != NULL);
        FZ_CHECK(rv != WS_INCOMPLETE || used == 0);
        /* Each error says why; INCOMPLETE is never past the limit. */
        FZ_CHECK(rv != WS_INCOMPLETE || size < WS_DEFAULT_MAX_HANDSHAKE);
    }
    free(buf);
    return 0;
}
