#include "ws_internal.h"

/*
 * ws_handshake.c - the opening handshake (RFC 6455 4): parse and verify a
 * client's HTTP/1.1 Upgrade request and a server's 101 answer, and write
 * the request, the 101 answer and HTTP error answers.
 *
 * Parsing is zero-copy and stateless. Every call looks at data[0..len)
 * from the start, so a caller that receives the head in pieces calls
 * again, from the same start, with more bytes. A call works in three steps:
 *
 *   1. scan_head()         finds the CRLF CRLF that ends the head. It
 *                          enforces max_bytes and max_headers as it goes,
 *                          so a peer that never ends its head is stopped
 *                          at the limit (431) and nothing past len or past
 *                          the head is ever read: bytes after the head are
 *                          the peer's first frames.
 *   2. parse_*_line(),     check the start line and every header line
 *      check_field_line()  against the RFC 9112 grammar.
 *   3. check_request(),    apply RFC 6455 4.2.1 (server side) or 4.1
 *      check_response()    (client side) to the headers.
 *
 * Line endings are CRLF only. RFC 9112 2.2 lets a recipient accept a bare
 * LF; we deliberately do not. Every WebSocket client and server sends
 * CRLF, one rule keeps the end of the head (where frames begin) beyond
 * doubt, and two parsers that disagree about line ends are how request
 * smuggling starts. A bare LF or bare CR fails as soon as it is seen.
 *
 * The writers build their output in the caller's buffer and never write
 * past cap; they check every string they copy, so no caller-supplied
 * field can inject a header line.
 */

#define KEY_MAX 64          /* longest key ws_accept_key() hashes */
#define KEY_RAW_LEN 16      /* RFC 6455 4.1: a 16-byte nonce */
#define GUID_LEN (sizeof WS_GUID - 1)

/* ------------------------------------------------------------------------ */
/* ASCII character classes (no <ctype.h>: it depends on the locale)         */
/* ------------------------------------------------------------------------ */

/* RFC 9110 5.6.2: tchar, the characters of a token. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 9110 5.6.3: OWS is spaces and horizontal tabs. */
static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 5234 B.1: VCHAR, a visible ASCII character. */
static int is_vchar(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* RFC 9110 5.5: a field value holds VCHAR, obs-text, SP and HTAB; never
 * another control character or DEL. */
static int is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* 1 if p[0..n) equals the NUL-terminated lit, ignoring ASCII case. */
static int match_nocase(const char *p, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' ||
            ws__lower((unsigned char)p[i]) != ws__lower((unsigned char)lit[i]))
            return 0;
    }
    return lit[n] == '\0';
}

/* 1 if p[0..n) is a token: one or more tchar. */
static int is_token(const char *p, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return 0;
    return 1;
}

/* 1 if s is a non-empty string of VCHAR (no space, no control). */
static int is_visible_string(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if (!is_vchar((unsigned char)s[i]))
            return 0;
    return i > 0;
}

static struct ws_slice make_slice(const char *p, size_t n)
{
    struct ws_slice s;

    s.p = p;
    s.n = n;
    return s;
}

/* p[0..n) without leading and trailing spaces and tabs. */
static struct ws_slice trim_ows(const char *p, size_t n)
{
    while (n > 0 && is_ows((unsigned char)p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_ows((unsigned char)p[n - 1]))
        n--;
    return make_slice(p, n);
}

/* ------------------------------------------------------------------------ */
/* Walking header lines and comma lists                                     */
/* ------------------------------------------------------------------------ */

/*
 * Take the line at *pos in s: up to the next LF, without the LF and a CR
 * before it; the last line may lack its LF. Moves *pos past the line.
 * Returns 0 at the end of s. Tolerant on purpose: ws_header_find() accepts
 * any slice, not only one our parser produced.
 */
static int take_line(struct ws_slice s, size_t *pos, struct ws_slice *line)
{
    const char *lf;
    size_t start = *pos, n;

    if (start >= s.n) {
        *line = make_slice(NULL, 0);
        return 0;
    }
    lf = memchr(s.p + start, '\n', s.n - start);
    n = lf != NULL ? (size_t)(lf - (s.p + start)) : s.n - start;
    *pos = lf != NULL ? start + n + 1 : s.n;
    if (n > 0 && s.p[start + n - 1] == '\r')
        n--;
    *line = make_slice(s.p + start, n);
    return 1;
}

/* Split a line at its first colon; the value is trimmed. 0 if no colon. */
static int split_field(struct ws_slice line, struct ws_slice *name,
                       struct ws_slice *value)
{
    const char *colon;

    if (line.n == 0)
        return 0;
    colon = memchr(line.p, ':', line.n);
    if (colon == NULL)
        return 0;
    *name = make_slice(line.p, (size_t)(colon - line.p));
    *value = trim_ows(colon + 1, line.n - name->n - 1);
    return 1;
}

/* see ws.h */
int ws_header_find(struct ws_slice headers, const char *name, size_t *pos,
                   struct ws_slice *value)
{
    struct ws_slice line, n, v;

    if (name == NULL || pos == NULL || value == NULL ||
        (headers.p == NULL && headers.n > 0))
        return WS_ERR_INVALID_ARG;
    while (take_line(headers, pos, &line)) {
        if (split_field(line, &n, &v) && match_nocase(n.p, n.n, name)) {
            *value = v;
            return WS_OK;
        }
    }
    *value = make_slice(NULL, 0);
    return WS_INCOMPLETE;
}

/* see ws.h */
int ws_token_next(struct ws_slice list, size_t *pos, struct ws_slice *token)
{
    size_t i, start, end;
    int quoted = 0;

    if (pos == NULL || token == NULL || (list.p == NULL && list.n > 0))
        return WS_ERR_INVALID_ARG;
    i = *pos;
    /* RFC 9110 5.6.1: empty list elements are ignored. */
    while (i < list.n && (is_ows((unsigned char)list.p[i]) || list.p[i] == ','))
        i++;
    if (i >= list.n) {
        if (*pos < list.n)
            *pos = list.n;
        *token = make_slice(NULL, 0);
        return WS_INCOMPLETE;
    }
    start = i;
    /* A comma inside a quoted-string (an extension parameter, RFC 9110
     * 5.6.4) does not end the element. */
    while (i < list.n && (quoted || list.p[i] != ',')) {
        if (quoted && list.p[i] == '\\' && i + 1 < list.n)
            i++;
        else if (list.p[i] == '"')
            quoted = !quoted;
        i++;
    }
    end = i;
    while (end > start && is_ows((unsigned char)list.p[end - 1]))
        end--;
    *token = make_slice(list.p + start, end - start);
    *pos = i < list.n ? i + 1 : list.n;
    return WS_OK;
}

/* Over every header called name: *total tokens, *hits of them equal to
 * token ignoring case. */
static void count_tokens(struct ws_slice headers, const char *name,
                         const char *token, size_t *total, size_t *hits)
{
    size_t pos = 0, tpos;
    struct ws_slice value, t;

    *total = 0;
    *hits = 0;
    while (ws_header_find(headers, name, &pos, &value) == WS_OK) {
        tpos = 0;
        while (ws_token_next(value, &tpos, &t) == WS_OK) {
            (*total)++;
            if (match_nocase(t.p, t.n, token))
                (*hits)++;
        }
    }
}

/* 1 if the comma list holds protocol[0..n) exactly (case-sensitive). */
static int contains_token(struct ws_slice list, const char *protocol,
                          size_t n)
{
    size_t pos = 0;
    struct ws_slice t;

    while (ws_token_next(list, &pos, &t) == WS_OK)
        if (t.n == n && memcmp(t.p, protocol, n) == 0)
            return 1;
    return 0;
}

/* see ws.h */
int ws_request_has_protocol(const struct ws_request *req, const char *protocol)
{
    size_t pos = 0, n;
    struct ws_slice value;

    if (req == NULL || protocol == NULL || protocol[0] == '\0')
        return 0;
    n = strlen(protocol);
    /* RFC 6455 4.1: the header may repeat; every line counts. A request
     * filled in by hand, without headers, still has req->protocols. */
    if (req->headers.n == 0)
        return contains_token(req->protocols, protocol, n);
    while (ws_header_find(req->headers, "Sec-WebSocket-Protocol", &pos,
                          &value) == WS_OK)
        if (contains_token(value, protocol, n))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Sec-WebSocket-Accept                                                     */
/* ------------------------------------------------------------------------ */

/* see ws.h */
int ws_accept_key(const char *key, size_t key_len, char *out)
{
    char buf[KEY_MAX + GUID_LEN];
    uint8_t digest[WS_SHA1_LEN];

    if (key == NULL || out == NULL || key_len == 0 || key_len > KEY_MAX)
        return WS_ERR_INVALID_ARG;
    /* RFC 6455 4.2.2 step 5.4 (and 1.3): SHA-1 of the key as sent, with
     * the GUID appended, then base64. */
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, GUID_LEN);
    if (ws__sha1((const uint8_t *)buf, key_len + GUID_LEN, digest) != WS_OK)
        return WS_ERR_CRYPTO;
    if (ws__base64_encode(digest, WS_SHA1_LEN, out) != WS_ACCEPT_LEN)
        return WS_ERR_CRYPTO;
    out[WS_ACCEPT_LEN] = '\0';
    return WS_OK;
}

/* ------------------------------------------------------------------------ */
/* Parsing: the head, the start lines, header lines                         */
/* ------------------------------------------------------------------------ */

/*
 * Find the end of the head in data[0..len): the offset just past the CRLF
 * CRLF, in *end. Looks at no more than max_bytes bytes, and fails as soon
 * as the head is known to be bad or too big, so prefixes of a bad head
 * fail early instead of waiting for more. Returns WS_OK, WS_INCOMPLETE,
 * WS_ERR_HEADER_TOO_BIG, or bad (the caller's "malformed" status).
 */
static int scan_head(const uint8_t *data, size_t len, size_t max_bytes,
                     size_t max_headers, int bad, size_t *end,
                     const char **why)
{
    size_t limit = len < max_bytes ? len : max_bytes;
    size_t i, line_start = 0, lines = 0;

    for (i = 0; i < limit; i++) {
        if (data[i] == '\r') {
            /* RFC 9112 2.2: a bare CR is invalid. */
            if (i + 1 < limit && data[i + 1] != '\n') {
                *why = "bare CR in the head (RFC 9112 2.2)";
                return bad;
            }
            continue;
        }
        if (data[i] != '\n')
            continue;
        /* RFC 9112 2.2 allows accepting a bare LF; we require CRLF (see
         * the top of this file). */
        if (i == 0 || data[i - 1] != '\r') {
            *why = "bare LF line ending; CRLF required (RFC 9112 2.2)";
            return bad;
        }
        if (i - 1 == line_start) {
            if (lines == 0) {
                *why = "empty line instead of a start line (RFC 9112 2.2)";
                return bad;
            }
            *end = i + 1;
            return WS_OK;
        }
        lines++;
        if (lines - 1 > max_headers) {
            *why = "too many header lines";
            return WS_ERR_HEADER_TOO_BIG;
        }
        line_start = i + 1;
    }
    if (len >= max_bytes) {
        *why = "head is larger than the limit";
        return WS_ERR_HEADER_TOO_BIG;
    }
    *why = "incomplete: need more bytes";
    return WS_INCOMPLETE;
}

/* 1 if p[0..n) is exactly HTTP-version (RFC 9112 2.3): "HTTP/" DIGIT "."
 * DIGIT. The name is case-sensitive. */
static int parse_http_version(const char *p, size_t n, unsigned *major,
                              unsigned *minor)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 ||
        !is_digit((unsigned char)p[5]) || p[6] != '.' ||
        !is_digit((unsigned char)p[7]))
        return 0;
    *major = (unsigned)(p[5] - '0');
    *minor = (unsigned)(p[7] - '0');
    return 1;
}

/* 1 for HTTP/1.1 or any later version. */
static int is_http_1_1_or_later(unsigned major, unsigned minor)
{
    return major > 1 || (major == 1 && minor >= 1);
}

/*
 * Check one header line (without CRLF) against RFC 9112 5 / RFC 9110 5:
 * field-name ":" OWS field-value OWS. Returns NULL and sets name/value,
 * or returns why the line is bad.
 */
static const char *check_field_line(struct ws_slice line,
                                    struct ws_slice *name,
                                    struct ws_slice *value)
{
    size_t i = 0, j;

    if (line.n == 0)
        return "empty header line";
    /* RFC 9112 5.2: obs-fold must be rejected (or replaced) by a server. */
    if (is_ows((unsigned char)line.p[0]))
        return "obsolete line folding (RFC 9112 5.2)";
    while (i < line.n && is_tchar((unsigned char)line.p[i]))
        i++;
    if (i == line.n)
        return "header line without a colon";
    if (line.p[i] != ':') {
        j = i;
        while (j < line.n && is_ows((unsigned char)line.p[j]))
            j++;
        /* RFC 9112 5.1: no whitespace between field name and colon. */
        if (j > i && j < line.n && line.p[j] == ':')
            return "whitespace before the colon in a header (RFC 9112 5.1)";
        return "invalid character in a header name";
    }
    if (i == 0)
        return "empty header name";
    for (j = i + 1; j < line.n; j++)
        if (!is_field_char((unsigned char)line.p[j]))
            return "control character in a header value (RFC 9110 5.5)";
    *name = make_slice(line.p, i);
    *value = trim_ows(line.p + i + 1, line.n - i - 1);
    return NULL;
}

/*
 * Split a head of end bytes (start line, header lines, CRLF) into the
 * start line and the header lines; each header line keeps its CRLF, so
 * ws_header_find() can walk them.
 */
static void split_head(const uint8_t *data, size_t end, struct ws_slice *start,
                       struct ws_slice *headers)
{
    struct ws_slice head = make_slice((const char *)data, end - 2);
    size_t pos = 0;

    take_line(head, &pos, start);
    *headers = make_slice(head.p + pos, head.n - pos);
}

/* A header we look at: its first value and how often it appeared. */
struct seen {
    struct ws_slice value;
    size_t count;
};

static void note_header(struct seen *s, struct ws_slice value)
{
    if (s->count++ == 0)
        s->value = value;
}

/* ------------------------------------------------------------------------ */
/* Server side: the client's request (RFC 6455 4.2.1)                       */
/* ------------------------------------------------------------------------ */

/* The headers the server checks. */
struct request_headers {
    struct seen host, origin, key, version, protocol, extensions;
};

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3). */
/* request-line = method SP request-target SP HTTP-version (RFC 9112 3),
 * syntax only: any method, any HTTP/x.y. */
static int parse_request_syntax(struct ws_request *req, struct ws_slice line)
{
    const char *p = line.p;
    size_t n = line.n, i = 0, t0;

    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ') {
        req->error = "malformed request line";
        return WS_ERR_HANDSHAKE;
    }
    req->method = make_slice(p, i);
    t0 = ++i;
    while (i < n && p[i] != ' ') {
        if (!is_vchar((unsigned char)p[i])) {
            req->error = "invalid character in the request-target";
            return WS_ERR_HANDSHAKE;
        }
        i++;
    }
    if (i == t0 || i >= n) {
        req->error = "malformed request line";
        return WS_ERR_HANDSHAKE;
    }
    req->target = make_slice(p + t0, i - t0);
    i++;
    if (!parse_http_version(p + i, n - i, &req->http_major,
                            &req->http_minor)) {
        req->error = "malformed HTTP version in the request line";
        return WS_ERR_HANDSHAKE;
    }
    /* RFC 9112 3.2.1: origin-form, "/path?query". We do not take the
     * absolute-form: browsers and WebSocket clients never send it to an
     * origin server. */
    if (req->target.p[0] != '/') {
        req->error = "request-target must start with '/'";
        return WS_ERR_HANDSHAKE;
    }
    return WS_OK;
}

static int parse_request_line(struct ws_request *req, struct ws_slice line)
{
    int rv = parse_request_syntax(req, line);

    if (rv != WS_OK)
        return rv;
    /* RFC 6455 4.1 client requirement 2 / 4.2.1 item 1: a GET... */
    if (req->method.n != 3 || memcmp(req->method.p, "GET", 3) != 0) {
        req->error = "method must be GET (RFC 6455 4.1)";
        return WS_ERR_HANDSHAKE;
    }
    /* ...of HTTP/1.1 or higher. */
    if (!is_http_1_1_or_later(req->http_major, req->http_minor)) {
        req->error = "HTTP/1.1 or later required (RFC 6455 4.1)";
        return WS_ERR_HANDSHAKE;
    }
    /* RFC 6455 3: fragments are never part of a WebSocket URI. */
    if (memchr(req->target.p, '#', req->target.n) != NULL) {
        req->error = "request-target must not contain a fragment";
        return WS_ERR_HANDSHAKE;
    }
    return WS_OK;
}

static void split_target(struct ws_request *req)
{
    const char *q = memchr(req->target.p, '?', req->target.n);
    size_t n;

    if (q == NULL) {
        req->path = req->target;
        req->query = make_slice(req->target.p + req->target.n, 0);
        return;
    }
    n = (size_t)(q - req->target.p);
    req->path = make_slice(req->target.p, n);
    req->query = make_slice(q + 1, req->target.n - n - 1);
}

/* Check every header line, remember the ones the server needs. */
static int collect_request_headers(struct ws_request *req,
                                   struct request_headers *h)
{
    size_t pos = 0;
    struct ws_slice line, name, value;
    const char *why;

    while (take_line(req->headers, &pos, &line)) {
        why = check_field_line(line, &name, &value);
        if (why != NULL) {
            req->error = why;
            return WS_ERR_HANDSHAKE;
        }
        req->header_count++;
        if (match_nocase(name.p, name.n, "Host"))
            note_header(&h->host, value);
        else if (match_nocase(name.p, name.n, "Origin"))
            note_header(&h->origin, value);
        else if (match_nocase(name.p, name.n, "Sec-WebSocket-Key"))
            note_header(&h->key, value);
        else if (match_nocase(name.p, name.n, "Sec-WebSocket-Version"))
            note_header(&h->version, value);
        else if (match_nocase(name.p, name.n, "Sec-WebSocket-Protocol"))
            note_header(&h->protocol, value);
        else if (match_nocase(name.p, name.n, "Sec-WebSocket-Extensions"))
            note_header(&h->extensions, value);
    }
    req->host = h->host.value;
    req->origin = h->origin.value;
    req->key = h->key.value;
    req->version = h->version.value;
    req->protocols = h->protocol.value;
    req->extensions = h->extensions.value;
    return WS_OK;
}

/* 1 if a Host value is a plausible uri-host [":" port]: non-empty, and no
 * space, comma (two hosts folded into one) or control character. */
static int is_valid_host(struct ws_slice host)
{
    size_t i;

    if (host.n == 0)
        return 0;
    for (i = 0; i < host.n; i++)
        if (!is_vchar((unsigned char)host.p[i]) || host.p[i] == ',')
            return 0;
    return 1;
}

/* RFC 6455 4.2.1 items 2-6 (item 1 is the request line). */
static int check_request(struct ws_request *req,
                         const struct request_headers *h)
{
    uint8_t raw[KEY_RAW_LEN];
    size_t total, hits, raw_len = 0;

    /* Item 2, and RFC 9112 3.2: exactly one Host, else 400. */
    if (h->host.count == 0) {
        req->error = "missing Host (RFC 6455 4.2.1)";
        return WS_ERR_HANDSHAKE;
    }
    if (h->host.count > 1) {
        req->error = "more than one Host (RFC 9112 3.2)";
        return WS_ERR_HANDSHAKE;
    }
    if (!is_valid_host(h->host.value)) {
        req->error = "invalid Host value (RFC 9112 3.2)";
        return WS_ERR_HANDSHAKE;
    }
    /* Item 3: Upgrade lists "websocket", ignoring case. */
    count_tokens(req->headers, "Upgrade", "websocket", &total, &hits);
    if (hits == 0) {
        req->error = total == 0 ? "missing Upgrade (RFC 6455 4.2.1)"
                                : "Upgrade does not list websocket "
                                  "(RFC 6455 4.2.1)";
        return WS_ERR_HANDSHAKE;
    }
    /* Item 4: Connection lists "Upgrade", ignoring case. */
    count_tokens(req->headers, "Connection", "Upgrade", &total, &hits);
    if (hits == 0) {
        req->error = total == 0 ? "missing Connection (RFC 6455 4.2.1)"
                                : "Connection does not list Upgrade "
                                  "(RFC 6455 4.2.1)";
        return WS_ERR_HANDSHAKE;
    }
    /* Item 6, checked before the key so that an old client learns which
     * version we speak (4.4): missing is 400, anything but 13 is 426. */
    if (h->version.count == 0) {
        req->error = "missing Sec-WebSocket-Version (RFC 6455 4.2.1)";
        return WS_ERR_HANDSHAKE;
    }
    if (h->version.count > 1) {
        req->error = "more than one Sec-WebSocket-Version (RFC 6455 11.3.5)";
        return WS_ERR_HANDSHAKE;
    }
    if (h->version.value.n != 2 || memcmp(h->version.value.p, "13", 2) != 0) {
        req->error = "Sec-WebSocket-Version must be 13 (RFC 6455 4.4)";
        return WS_ERR_VERSION;
    }
    /* Item 5: one key, base64 (strict) of exactly 16 bytes. */
    if (h->key.count == 0) {
        req->error = "missing Sec-WebSocket-Key (RFC 6455 4.2.1)";
        return WS_ERR_HANDSHAKE;
    }
    if (h->key.count > 1) {
        req->error = "more than one Sec-WebSocket-Key (RFC 6455 11.3.1)";
        return WS_ERR_HANDSHAKE;
    }
    if (h->key.value.n != WS_KEY_LEN ||
        ws__base64_decode(h->key.value.p, h->key.value.n, raw, sizeof raw,
                          &raw_len) != WS_OK ||
        raw_len != KEY_RAW_LEN) {
        req->error = "Sec-WebSocket-Key must be base64 of 16 bytes "
                     "(RFC 6455 4.2.1)";
        return WS_ERR_HANDSHAKE;
    }
    return WS_OK;
}

/* The head is incomplete, but once its first line is there it can be
 * judged: a bad request line is answered at once instead of after the
 * rest of a header block that may never come. */
static int check_early_request_line(struct ws_request *req,
                                    const uint8_t *data, size_t len)
{
    const char *why = req->error;
    size_t i;
    int rv;

    for (i = 0; i + 1 < len; i++) {
        if (data[i] == '\r' && data[i + 1] == '\n')
            break;
    }
    if (i + 1 >= len)
        return WS_INCOMPLETE;
    rv = parse_request_line(req, make_slice((const char *)data, i));
    if (rv != WS_OK)
        return rv;
    memset(req, 0, sizeof *req);
    req->error = why;
    return WS_INCOMPLETE;
}

/* The two request parsers share everything but the request-line rules
 * and the Upgrade checks: upgrade = 1 for an opening handshake (RFC 6455
 * 4.2.1), 0 for any HTTP/1.x request (ws_http_parse_request). */
static int parse_request(struct ws_request *req, const uint8_t *data,
                         size_t len, size_t max_bytes, size_t max_headers,
                         size_t *consumed, int upgrade)
{
    struct request_headers h;
    struct ws_slice start;
    size_t end = 0;
    int rv;

    if (consumed != NULL)
        *consumed = 0;
    if (req == NULL)
        return WS_ERR_INVALID_ARG;
    memset(req, 0, sizeof *req);
    if (consumed == NULL || (data == NULL && len > 0)) {
        req->error = "invalid argument (NULL)";
        return WS_ERR_INVALID_ARG;
    }
    if (max_bytes == 0)
        max_bytes = WS_DEFAULT_MAX_HANDSHAKE;
    if (max_headers == 0)
        max_headers = WS_DEFAULT_MAX_HEADERS;
    rv = scan_head(data, len, max_bytes, max_headers, WS_ERR_HANDSHAKE, &end,
                   &req->error);
    if (rv == WS_INCOMPLETE && upgrade)
        return check_early_request_line(req, data, len);
    if (rv != WS_OK)
        return rv;
    /* From here on the head is complete: report its size even on error,
     * so a caller can tell where it ended. */
    *consumed = end;
    split_head(data, end, &start, &req->headers);
    rv = upgrade ? parse_request_line(req, start)
                 : parse_request_syntax(req, start);
    if (rv != WS_OK)
        return rv;
    split_target(req);
    memset(&h, 0, sizeof h);
    rv = collect_request_headers(req, &h);
    if (rv == WS_OK && upgrade)
        rv = check_request(req, &h);
    if (rv != WS_OK)
        return rv;
    req->error = NULL;
    return WS_OK;
}

/* see ws.h */
int ws_handshake_parse_request(struct ws_request *req, const uint8_t *data,
                               size_t len, size_t max_bytes,
                               size_t max_headers, size_t *consumed)
{
    return parse_request(req, data, len, max_bytes, max_headers, consumed, 1);
}

/* see ws.h */
int ws_http_parse_request(struct ws_request *req, const uint8_t *data,
                          size_t len, size_t max_bytes, size_t max_headers,
                          size_t *consumed)
{
    return parse_request(req, data, len, max_bytes, max_headers, consumed, 0);
}

/* see ws.h */
int ws_request_is_upgrade(const struct ws_request *req)
{
    struct ws_slice v, tok;
    size_t pos = 0, tpos;

    if (req == NULL)
        return 0;
    while (ws_header_find(req->headers, "Upgrade", &pos, &v) == WS_OK) {
        tpos = 0;
        while (ws_token_next(v, &tpos, &tok) == WS_OK)
            if (match_nocase(tok.p, tok.n, "websocket"))
                return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Client side: the server's response (RFC 6455 4.1)                        */
/* ------------------------------------------------------------------------ */

/* The headers the client checks. */
struct response_headers {
    struct seen accept, protocol, extensions;
};

/* status-line = HTTP-version SP status-code SP [reason-phrase]
 * (RFC 9112 4). A missing SP after the code is tolerated: some servers
 * send "HTTP/1.1 101" and the reason phrase carries no meaning. */
static int parse_status_line(struct ws_response *resp, struct ws_slice line,
                             unsigned *major, unsigned *minor)
{
    const char *p = line.p;
    size_t i;

    if (line.n < 12 || !parse_http_version(p, 8, major, minor) ||
        p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
        !is_digit((unsigned char)p[10]) || !is_digit((unsigned char)p[11]) ||
        (line.n > 12 && p[12] != ' ')) {
        resp->error = "malformed status line";
        return WS_ERR_BAD_RESPONSE;
    }
    resp->status = (unsigned)(p[9] - '0') * 100u +
                   (unsigned)(p[10] - '0') * 10u + (unsigned)(p[11] - '0');
    for (i = 13; i < line.n; i++) {
        if (!is_field_char((unsigned char)p[i])) {
            resp->error = "control character in the reason phrase";
            return WS_ERR_BAD_RESPONSE;
        }
    }
    resp->reason = line.n > 13 ? make_slice(p + 13, line.n - 13)
                               : make_slice(p + line.n, 0);
    return WS_OK;
}

static int collect_response_headers(struct ws_response *resp,
                                    struct response_headers *h)
{
    size_t pos = 0;
    struct ws_slice line, name, value;
    const char *why;

    while (take_line(resp->headers, &pos, &line)) {
        why = check_field_line(line, &name, &value);
        if (why != NULL) {
            resp->error = why;
            return WS_ERR_BAD_RESPONSE;
        }
        resp->header_count++;
        if (match_nocase(name.p, name.n, "Sec-WebSocket-Accept"))
            note_header(&h->accept, value);
        else if (match_nocase(name.p, name.n, "Sec-WebSocket-Protocol"))
            note_header(&h->protocol, value);
        else if (match_nocase(name.p, name.n, "Sec-WebSocket-Extensions"))
            note_header(&h->extensions, value);
    }
    resp->accept = h->accept.value;
    resp->protocol = h->protocol.value;
    resp->extensions = h->extensions.value;
    return WS_OK;
}

/* RFC 6455 4.1, the client's checks 2-6 of a 101 (check 1 is the
 * status, done by the caller). */
static int check_response(struct ws_response *resp,
                          const struct response_headers *h, const char *key,
                          const char *protocols)
{
    char expect[WS_ACCEPT_LEN + 1];
    size_t total, hits;
    int rv;

    /* 2: Upgrade is "websocket", ignoring case. The server has switched
     * to exactly one protocol, so a list with anything else is wrong. */
    count_tokens(resp->headers, "Upgrade", "websocket", &total, &hits);
    if (total != 1 || hits != 1) {
        resp->error = total == 0 ? "missing Upgrade (RFC 6455 4.1)"
                                 : "Upgrade is not websocket (RFC 6455 4.1)";
        return WS_ERR_BAD_RESPONSE;
    }
    /* 3: Connection lists "Upgrade", ignoring case. */
    count_tokens(resp->headers, "Connection", "Upgrade", &total, &hits);
    if (hits == 0) {
        resp->error = total == 0 ? "missing Connection (RFC 6455 4.1)"
                                 : "Connection does not list Upgrade "
                                   "(RFC 6455 4.1)";
        return WS_ERR_BAD_RESPONSE;
    }
    /* 4: exactly one Sec-WebSocket-Accept, equal to what we computed. */
    if (h->accept.count == 0) {
        resp->error = "missing Sec-WebSocket-Accept (RFC 6455 4.1)";
        return WS_ERR_BAD_RESPONSE;
    }
    if (h->accept.count > 1) {
        resp->error = "more than one Sec-WebSocket-Accept (RFC 6455 11.3.3)";
        return WS_ERR_BAD_RESPONSE;
    }
    rv = ws_accept_key(key, strlen(key), expect);
    if (rv != WS_OK) {
        resp->error = "could not compute the expected accept value";
        return rv;
    }
    if (h->accept.value.n != WS_ACCEPT_LEN ||
        memcmp(h->accept.value.p, expect, WS_ACCEPT_LEN) != 0) {
        resp->error = "wrong Sec-WebSocket-Accept (RFC 6455 4.1)";
        return WS_ERR_BAD_RESPONSE;
    }
    /* 5: we offer no extensions, so the server may not use any. */
    if (h->extensions.count > 0) {
        resp->error = "Sec-WebSocket-Extensions we did not offer "
                      "(RFC 6455 4.1)";
        return WS_ERR_BAD_RESPONSE;
    }
    /* 6: at most one subprotocol, and one we offered (exact match). */
    if (h->protocol.count > 1) {
        resp->error = "more than one Sec-WebSocket-Protocol (RFC 6455 4.1)";
        return WS_ERR_BAD_RESPONSE;
    }
    if (h->protocol.count == 1) {
        if (!is_token(h->protocol.value.p, h->protocol.value.n)) {
            resp->error = "Sec-WebSocket-Protocol is not a single token "
                          "(RFC 6455 4.1)";
            return WS_ERR_BAD_RESPONSE;
        }
        if (protocols == NULL ||
            !contains_token(make_slice(protocols, strlen(protocols)),
                            h->protocol.value.p, h->protocol.value.n)) {
            resp->error = "Sec-WebSocket-Protocol we did not offer "
                          "(RFC 6455 4.1)";
            return WS_ERR_BAD_RESPONSE;
        }
    }
    return WS_OK;
}

/* Length of s if it is at most max characters long, else max + 1; reads
 * no more than max + 1 characters. */
static size_t measure_string(const char *s, size_t max)
{
    size_t n = 0;

    while (n <= max && s[n] != '\0')
        n++;
    return n;
}

/* see ws.h */
int ws_handshake_parse_response(struct ws_response *resp, const uint8_t *data,
                                size_t len, const char *key,
                                const char *protocols, size_t max_bytes,
                                size_t *consumed)
{
    struct response_headers h;
    struct ws_slice start;
    unsigned major = 0, minor = 0;
    size_t end = 0, key_len;
    int rv;

    if (consumed != NULL)
        *consumed = 0;
    if (resp == NULL)
        return WS_ERR_INVALID_ARG;
    memset(resp, 0, sizeof *resp);
    if (consumed == NULL || (data == NULL && len > 0) || key == NULL) {
        resp->error = "invalid argument (NULL)";
        return WS_ERR_INVALID_ARG;
    }
    key_len = measure_string(key, KEY_MAX);
    if (key_len == 0 || key_len > KEY_MAX) {
        resp->error = "invalid argument (key length)";
        return WS_ERR_INVALID_ARG;
    }
    if (max_bytes == 0)
        max_bytes = WS_DEFAULT_MAX_HANDSHAKE;
    rv = scan_head(data, len, max_bytes, (size_t)-1, WS_ERR_BAD_RESPONSE,
                   &end, &resp->error);
    if (rv != WS_OK)
        return rv;
    *consumed = end;
    split_head(data, end, &start, &resp->headers);
    rv = parse_status_line(resp, start, &major, &minor);
    if (rv != WS_OK)
        return rv;
    memset(&h, 0, sizeof h);
    rv = collect_response_headers(resp, &h);
    if (rv != WS_OK)
        return rv;
    /* 1: anything but 101 is handled per HTTP; for us, a refusal. The body
     * (if any) is the caller's business: *consumed is the head only. */
    if (resp->status != 101) {
        resp->error = "server did not answer 101 Switching Protocols "
                      "(RFC 6455 4.1)";
        return WS_ERR_REJECTED;
    }
    if (!is_http_1_1_or_later(major, minor)) {
        resp->error = "101 response must be HTTP/1.1 or later";
        return WS_ERR_BAD_RESPONSE;
    }
    rv = check_response(resp, &h, key, protocols);
    if (rv != WS_OK)
        return rv;
    resp->error = NULL;
    return WS_OK;
}

/* ------------------------------------------------------------------------ */
/* Writers                                                                  */
/* ------------------------------------------------------------------------ */

/* Output into a caller buffer: a piece that does not fit is not written,
 * and sets full. */
struct out {
    char *p;
    size_t cap;
    size_t len;
    int full;
};

static void put_bytes(struct out *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s)
{
    put_bytes(o, s, strlen(s));
}

static void put_uint(struct out *o, size_t v)
{
    char buf[24];
    size_t i = sizeof buf;

    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    put_bytes(o, buf + i, sizeof buf - i);
}

static int finish_output(const struct out *o, size_t *written)
{
    if (o->full)
        return WS_ERR_NO_SPACE;
    *written = o->len;
    return WS_OK;
}

/* 1 if s is complete header lines ("Name: value\r\n")*, each valid by
 * RFC 9112 5, so it can neither end the head early nor smuggle a line. */
static int is_valid_header_lines(const char *s)
{
    struct ws_slice name, value;
    const char *cr;

    while (*s != '\0') {
        cr = strchr(s, '\r');
        if (cr == NULL || cr[1] != '\n')
            return 0;
        if (check_field_line(make_slice(s, (size_t)(cr - s)), &name,
                             &value) != NULL)
            return 0;
        s = cr + 2;
    }
    return 1;
}

/* 1 if s is a comma list of one or more tokens (RFC 6455 4.1: the
 * subprotocols a client offers). */
static int is_valid_token_list(const char *s)
{
    struct ws_slice list = make_slice(s, strlen(s)), t;
    size_t i, pos = 0, count = 0;

    for (i = 0; i < list.n; i++)
        if (!is_tchar((unsigned char)s[i]) && !is_ows((unsigned char)s[i]) &&
            s[i] != ',')
            return 0;
    while (ws_token_next(list, &pos, &t) == WS_OK) {
        if (!is_token(t.p, t.n))
            return 0;
        count++;
    }
    return count > 0;
}

/* The 101 answer for key (RFC 6455 4.2.2 step 5); protocol is NULL or a
 * token already checked by the caller. */
static int write_answer(char *out, size_t cap, const char *key,
                        size_t key_len, const char *protocol,
                        const char *extra_headers, size_t *written)
{
    char accept[WS_ACCEPT_LEN + 1];
    struct out o;
    int rv;

    if (extra_headers != NULL && !is_valid_header_lines(extra_headers))
        return WS_ERR_INVALID_ARG;
    rv = ws_accept_key(key, key_len, accept);
    if (rv != WS_OK)
        return rv;
    o.p = out;
    o.cap = cap;
    o.len = 0;
    o.full = 0;
    put_str(&o, "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                "Sec-WebSocket-Accept: ");
    put_bytes(&o, accept, WS_ACCEPT_LEN);
    put_str(&o, "\r\n");
    if (protocol != NULL) {
        put_str(&o, "Sec-WebSocket-Protocol: ");
        put_str(&o, protocol);
        put_str(&o, "\r\n");
    }
    if (extra_headers != NULL)
        put_str(&o, extra_headers);
    put_str(&o, "\r\n");
    return finish_output(&o, written);
}

/* see ws.h */
int ws_handshake_write_response(char *out, size_t cap,
                                const struct ws_request *req,
                                const char *protocol,
                                const char *extra_headers, size_t *written)
{
    if (written != NULL)
        *written = 0;
    if (out == NULL || req == NULL || written == NULL || req->key.p == NULL)
        return WS_ERR_INVALID_ARG;
    if (protocol != NULL && protocol[0] == '\0')
        protocol = NULL; /* "" means none, as ws_conn_get_protocol() says */
    /* RFC 6455 4.2.2 step 5.5 (/subprotocol/): one of the client's values.
     * is_token() also keeps CR and LF out of the header. */
    if (protocol != NULL && (!is_token(protocol, strlen(protocol)) ||
                             !ws_request_has_protocol(req, protocol)))
        return WS_ERR_INVALID_ARG;
    return write_answer(out, cap, req->key.p, req->key.n, protocol,
                        extra_headers, written);
}

/* see ws.h */
int ws_handshake_write_accept(char *out, size_t cap, const char *key,
                              size_t key_len, const char *protocol,
                              const char *extra_headers, size_t *written)
{
    if (written != NULL)
        *written = 0;
    if (out == NULL || key == NULL || written == NULL)
        return WS_ERR_INVALID_ARG;
    if (protocol != NULL && protocol[0] == '\0')
        protocol = NULL;
    /* Not checked against an offer (there is no request), but still one
     * token: no CR or LF can reach the output. */
    if (protocol != NULL && !is_token(protocol, strlen(protocol)))
        return WS_ERR_INVALID_ARG;
    return write_answer(out, cap, key, key_len, protocol, extra_headers,
                        written);
}

/* RFC 9110 15: the reason phrases of the statuses a handshake may use. */
static const char *lookup_phrase(unsigned status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";  /* RFC 6585 5 */
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

/* see ws.h */
int ws_handshake_write_error(char *out, size_t cap, unsigned status,
                             const char *reason, size_t *written)
{
    const char *phrase, *body;
    struct out o;

    if (written != NULL)
        *written = 0;
    if (out == NULL || written == NULL || status < 400 || status > 599)
        return WS_ERR_INVALID_ARG;
    phrase = lookup_phrase(status);
    body = reason != NULL ? reason : phrase;
    o.p = out;
    o.cap = cap;
    o.len = 0;
    o.full = 0;
    put_str(&o, "HTTP/1.1 ");
    put_uint(&o, status);
    put_str(&o, " ");
    put_str(&o, phrase);
    put_str(&o, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    put_uint(&o, strlen(body) + 1);
    put_str(&o, "\r\nConnection: close\r\n");
    /* RFC 6455 4.4: say which version we speak. */
    if (status == 426)
        put_str(&o, "Sec-WebSocket-Version: 13\r\n");
    put_str(&o, "\r\n");
    put_str(&o, body);
    put_str(&o, "\n");
    return finish_output(&o, written);
}

/* see ws.h */
int ws_handshake_write_request(char *out, size_t cap,
                               const struct ws_client_request *r,
                               char *key_out, size_t *written)
{
    uint8_t nonce[KEY_RAW_LEN];
    char key[WS_KEY_LEN + 1];
    const char *path;
    struct out o;
    int rv;

    if (written != NULL)
        *written = 0;
    if (out == NULL || r == NULL || key_out == NULL || written == NULL)
        return WS_ERR_INVALID_ARG;
    path = r->path != NULL ? r->path : "/";
    /* Every field is checked before it is copied: a CR or LF in any of
     * them would let the caller's input add header lines. */
    if (r->host == NULL || !is_visible_string(r->host) ||
        r->host[strcspn(r->host, ",")] != '\0')
        return WS_ERR_INVALID_ARG;
    /* RFC 6455 4.1 client requirement 2: "/resource name". */
    if (path[0] != '/' || !is_visible_string(path) ||
        strchr(path, '#') != NULL)
        return WS_ERR_INVALID_ARG;
    if (r->origin != NULL && !is_visible_string(r->origin))
        return WS_ERR_INVALID_ARG;
    if (r->protocols != NULL && r->protocols[0] != '\0' &&
        !is_valid_token_list(r->protocols))
        return WS_ERR_INVALID_ARG;
    if (r->extra_headers != NULL && !is_valid_header_lines(r->extra_headers))
        return WS_ERR_INVALID_ARG;

    /* RFC 6455 4.1 client requirement 7 and 10.3: a fresh random nonce. */
    if (ws__random(nonce, sizeof nonce) != WS_OK)
        return WS_ERR_CRYPTO;
    if (ws__base64_encode(nonce, sizeof nonce, key) != WS_KEY_LEN)
        return WS_ERR_CRYPTO;
    key[WS_KEY_LEN] = '\0';

    o.p = out;
    o.cap = cap;
    o.len = 0;
    o.full = 0;
    put_str(&o, "GET ");
    put_str(&o, path);
    put_str(&o, " HTTP/1.1\r\nHost: ");
    put_str(&o, r->host);
    put_str(&o, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: ");
    put_bytes(&o, key, WS_KEY_LEN);
    put_str(&o, "\r\nSec-WebSocket-Version: 13\r\n");
    if (r->origin != NULL) {
        put_str(&o, "Origin: ");
        put_str(&o, r->origin);
        put_str(&o, "\r\n");
    }
    if (r->protocols != NULL && r->protocols[0] != '\0') {
        put_str(&o, "Sec-WebSocket-Protocol: ");
        put_str(&o, r->protocols);
        put_str(&o, "\r\n");
    }
    if (r->extra_headers != NULL)
        put_str(&o, r->extra_headers);
    put_str(&o, "\r\n");
    rv = finish_output(&o, written);
    if (rv == WS_OK)
        memcpy(key_out, key, sizeof key);
    return rv;
}
