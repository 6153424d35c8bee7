/*
 * fuzz_handshake_response.c - ws_handshake_parse_response (RFC 6455 4.1)
 * on the input (an exactly-sized copy), for the key of RFC 6455 1.3 and
 * the offer "chat, superchat".
 *
 * Invariants:
 *   - *consumed <= len; an error sets resp.error; WS_INCOMPLETE consumes 0;
 *   - WS_REJECTED: a complete head whose status (100-599) is not 101;
 *   - WS_OK: status 101; Sec-WebSocket-Accept is exactly
 *     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; the protocol is empty, "chat" or
 *     "superchat"; no extensions; every slice lies inside the buffer; the
 *     head ends with CRLF CRLF at *consumed, parsing data[0..consumed)
 *     gives the same, one byte less gives WS_INCOMPLETE;
 *   - ws_header_find over resp.headers terminates, moves forward and
 *     stays inside, and finds the accept value.
 */
#include "fuzz_check.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define OFFER "chat, superchat"
#define SLICE_IN(s, base, len) FZ_INSIDE((s).p, (s).n, base, len)
#define SLICE_IS(s, lit) \
    ((s).n == sizeof(lit) - 1 && memcmp((s).p, lit, sizeof(lit) - 1) == 0)

static int same_slice(struct ws_slice a, struct ws_slice b)
{
    return a.n == b.n && (a.n == 0 || a.p == b.p);
}

static void check_ok(const struct ws_response *resp, const uint8_t *buf,
                     size_t used)
{
    struct ws_response again;
    struct ws_slice v;
    size_t pos = 0, prev, found = 0, used2 = 0;
    int accept_seen = 0;

    FZ_CHECK(resp->error == NULL && resp->status == 101);
    FZ_CHECK(SLICE_IS(resp->accept, ACCEPT));
    FZ_CHECK(resp->protocol.n == 0 || SLICE_IS(resp->protocol, "chat") ||
             SLICE_IS(resp->protocol, "superchat"));
    FZ_CHECK(resp->extensions.n == 0);
    FZ_CHECK(SLICE_IN(resp->reason, buf, used));
    FZ_CHECK(SLICE_IN(resp->accept, buf, used));
    FZ_CHECK(SLICE_IN(resp->protocol, buf, used));
    FZ_CHECK(SLICE_IN(resp->headers, buf, used));
    FZ_CHECK(used >= 4 && memcmp(buf + used - 4, "\r\n\r\n", 4) == 0);

    FZ_CHECK(ws_handshake_parse_response(&again, buf, used, KEY, OFFER, 0,
                                         &used2) == WS_OK);
    FZ_CHECK(used2 == used && again.status == 101);
    FZ_CHECK(same_slice(again.accept, resp->accept) &&
             same_slice(again.protocol, resp->protocol) &&
             same_slice(again.headers, resp->headers) &&
             same_slice(again.reason, resp->reason) &&
             again.header_count == resp->header_count);
    FZ_CHECK(ws_handshake_parse_response(&again, buf, used - 1, KEY, OFFER,
                                         0, &used2) == WS_INCOMPLETE);
    FZ_CHECK(used2 == 0 && again.error != NULL);

    for (;;) {
        prev = pos;
        if (ws_header_find(resp->headers, "sec-websocket-accept", &pos, &v) !=
            WS_OK)
            break;
        FZ_CHECK(pos > prev && pos <= resp->headers.n);
        FZ_CHECK(SLICE_IN(v, resp->headers.p, resp->headers.n));
        FZ_CHECK(++found <= resp->header_count);
        accept_seen |= SLICE_IS(v, ACCEPT);
    }
    FZ_CHECK(found == 1 && accept_seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size > 0 ? size : 1);
    struct ws_response resp;
    size_t used = size + 1;
    int rv;

    FZ_CHECK(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    rv = ws_handshake_parse_response(&resp, buf, size, KEY, OFFER, 0, &used);
    FZ_CHECK(used <= size);
    if (rv == WS_OK) {
        check_ok(&resp, buf, used);
    } else {
        FZ_CHECK(rv == WS_INCOMPLETE || rv == WS_ERR_REJECTED ||
                 rv == WS_ERR_BAD_RESPONSE || rv == WS_ERR_HEADER_TOO_BIG);
        FZ_CHECK(resp.error != NULL);
        FZ_CHECK(rv != WS_INCOMPLETE || used == 0);
        if (rv == WS_ERR_REJECTED)
            FZ_CHECK(resp.status >= 100 && resp.status <= 599 &&
                     resp.status != 101 && used > 0);
    }
    free(buf);
    return 0;
}
