/*
 * fuzz_conn.h - the harness shared by the connection targets
 * (fuzz_conn_server.c, fuzz_conn_client.c, fuzz_conn_handshake.c,
 * fuzz_close.c). Not a target itself.
 *
 *   fz_new()     a connection configured from one input byte
 *   fz_feed()    feed bytes in chunks; checks the ws_conn_feed() contract
 *   fz_finish()  check everything the connection wrote and how it ended
 *   fz_free()
 *
 * All state lives in one malloc'd struct fz_conn (so ASan sees overruns),
 * reached through the user pointer: nothing is global and nothing mutable
 * is static. The callback tables are static const.
 *
 * The configuration byte (the first input byte of the conn targets):
 *   bits 0-4  chunk size - 1: each ws_conn_feed() gets 1..32 bytes
 *   bits 5-6  receive mode: 0 streaming, 1 whole message (message_buf),
 *             2 both, 3 whole message
 *   bit 7     small limits: max_message 4096, max_fragments 16,
 *             max_handshake 512, max_headers 8
 *
 * The callbacks act deterministically on what they receive, so the fuzzer
 * reaches the interesting paths through the input alone:
 *   on_message (whole mode)   echoes the message back
 *   on_message_end (streaming only) starts the close handshake (1000)
 *                             after the 2nd message
 *   on_message_begin          returns WS_PAUSED for a binary message
 *   on_ping                   returns WS_PAUSED
 *   on_pong                   fails (-> WS_ERR_CALLBACK, 1011) if the
 *                             payload starts with '!'
 *   on_request                rejects path "/reject" with 403, otherwise
 *                             selects "chat" when the client offers it
 *
 * Invariants (each FZ_CHECK names its own):
 *   - *consumed <= chunk length; WS_OK consumes the whole chunk;
 *   - a failed connection stays failed: every later feed returns the same
 *     status, consumes nothing and runs no callback (send included);
 *   - on_close runs at most once, only after the connection opened, and
 *     nothing runs after it; a CLOSED connection runs no callback again;
 *   - callback data lies inside the chunk being fed, the message buffer,
 *     or (control payloads) the struct ws_conn itself;
 *   - messages stay within the limits; text is valid UTF-8; whole and
 *     streamed deliveries of a message agree; ws_conn_can_send agrees
 *     with the state;
 *   - the output is a valid frame stream for the role (server unmasked,
 *     client masked), with at most one close frame, and it is the last;
 *     a failure with a close code ends the output with that code;
 *   - server handshake: OPEN output starts with a 101 that our own client
 *     parser accepts; a failed handshake is answered 400/426/431/403.
 */
#ifndef FUZZ_CONN_H
#define FUZZ_CONN_H

#include "fuzz_check.h"

#define FZ_BUF 4096u     /* connection working memory */
#define FZ_MSG 4096u     /* whole-message buffer (cfg.message_buf) */
#define FZ_ACC 65536u    /* streamed message kept for checks */

enum { FZ_STREAM = 1, FZ_WHOLE = 2 };

struct fz_conn {
    struct ws_conn c;
    uint8_t buf[FZ_BUF];
    uint8_t msg[FZ_MSG];
    unsigned role, mode, flags;
    uint64_t max_message;       /* the effective message limit */

    const uint8_t *in;          /* chunk being fed (NULL between feeds) */
    size_t in_len;
    uint8_t *out;               /* everything the send callback took */
    size_t out_len, out_cap;

    int opened;                 /* START_OPEN, or on_open ran */
    int closed;                 /* on_close ran */
    int sealed;                 /* CLOSED after a feed: no more callbacks */
    int we_closed;              /* we called ws_conn_close() */
    unsigned close_code;        /* on_close's code */
    size_t reason_len;          /* and reason */
    uint8_t reason[WS_CLOSE_REASON_MAX];
    size_t pings, echoes;

    /* the message being streamed */
    unsigned msg_opcode;        /* 0: none */
    unsigned last_opcode;       /* of the last message ended */
    int ended;                  /* on_message_end ran, on_message not yet */
    size_t messages;
    uint64_t msg_len;
    struct ws_utf8 utf8;
    int acc_full;               /* message larger than acc[] */
    size_t acc_len;
    uint8_t acc[FZ_ACC];

    /* output, as fz_finish() found it */
    int out_closes;
    unsigned out_close_code;    /* 0: the close frame had no code */
    size_t out_close_len;

    /* server handshake */
    char key[WS_KEY_LEN + 1];
    int chat, rejected;
};

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */
/* ------------------------------------------------------------------------ */

/* Checks common to every callback. */
static struct fz_conn *fz_enter(struct ws_conn *c, void *user)
{
    struct fz_conn *h = user;
    size_t used = 1;

    FZ_CHECK(h != NULL && c == &h->c);
    FZ_CHECK(!h->closed);       /* on_close is the last callback */
    FZ_CHECK(!h->sealed);       /* a CLOSED connection stays quiet */
    /* ws_conn_feed is not reentrant (ws.h). */
    FZ_CHECK(ws_conn_feed(c, h->buf, 0, &used) == WS_ERR_BAD_STATE);
    FZ_CHECK(used == 0);
    return h;
}

static int fz_send(struct ws_conn *c, const struct ws_iov *iov, size_t cnt,
                   size_t *written, void *user)
{
    struct fz_conn *h = fz_enter(c, user);
    size_t i, total = 0;

    FZ_CHECK(cnt > 0 && iov != NULL && written != NULL);
    for (i = 0; i < cnt; i++) {
        FZ_CHECK(iov[i].base != NULL || iov[i].len == 0);
        total += iov[i].len;
    }
    FZ_CHECK(total > 0);
    if (h->out_len + total > h->out_cap) {
        size_t cap = h->out_cap ? h->out_cap : 256;
        uint8_t *p;
        while (cap < h->out_len + total)
            cap *= 2;
        p = realloc(h->out, cap);
        FZ_CHECK(p != NULL);
        h->out = p;
        h->out_cap = cap;
    }
    for (i = 0; i < cnt; i++) {
        if (iov[i].len > 0)
            memcpy(h->out + h->out_len, iov[i].base, iov[i].len);
        h->out_len += iov[i].len;
    }
    *written = total;           /* the transport takes everything */
    return 0;
}

static int fz_on_request(struct ws_conn *c, const struct ws_request *req,
                         void *user)
{
    struct fz_conn *h = fz_enter(c, user);
    const struct ws_slice *s[12];
    size_t i, n = 0;
    int has;

    FZ_CHECK(!h->opened && ws_conn_get_state(c) == WS_STATE_CONNECTING);
    /* The request was gathered in the connection's buffer. */
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
        FZ_CHECK(FZ_INSIDE(s[i]->p, s[i]->n, h->buf, FZ_BUF));
    FZ_CHECK(req->key.n == WS_KEY_LEN && req->error == NULL);
    memcpy(h->key, req->key.p, WS_KEY_LEN);
    h->key[WS_KEY_LEN] = '\0';
    FZ_CHECK(ws_conn_send_text(c, "x", 1) == WS_ERR_BAD_STATE);

    if (req->path.n == 7 && memcmp(req->path.p, "/reject", 7) == 0) {
        FZ_CHECK(ws_conn_reject(c, 403, "go away") == WS_OK);
        h->rejected = 1;
        return 0;
    }
    has = ws_request_has_protocol(req, "chat");
    FZ_CHECK((ws_conn_select_protocol(c, "chat") == WS_OK) == (has != 0));
    h->chat = has != 0;
    return 0;
}

static int fz_on_open(struct ws_conn *c, void *user)
{
    struct fz_conn *h = fz_enter(c, user);

    FZ_CHECK(!h->opened && !h->rejected);
    FZ_CHECK(ws_conn_get_state(c) == WS_STATE_OPEN);
    FZ_CHECK(h->out_len >= 13 && memcmp(h->out, "HTTP/1.1 101 ", 13) == 0);
    FZ_CHECK(strcmp(ws_conn_get_protocol(c), h->chat ? "chat" : "") == 0);
    h->opened = 1;
    return 0;
}

static int fz_on_message_begin(struct ws_conn *c, unsigned opcode, void *user)
{
    struct fz_conn *h = fz_enter(c, user);

    FZ_CHECK(h->opened && h->msg_opcode == 0);
    FZ_CHECK(opcode == WS_OPCODE_TEXT || opcode == WS_OPCODE_BINARY);
    h->msg_opcode = opcode;
    h->ended = 0;
    h->msg_len = 0;
    h->acc_len = 0;
    h->acc_full = 0;
    ws_utf8_reset(&h->utf8);
    return opcode == WS_OPCODE_BINARY ? WS_PAUSED : 0;
}

static int fz_on_message_data(struct ws_conn *c, const uint8_t *p, size_t n,
                              void *user)
{
    struct fz_conn *h = fz_enter(c, user);

    FZ_CHECK(h->msg_opcode != 0 && n > 0);
    FZ_CHECK(FZ_INSIDE(p, n, h->in, h->in_len));
    h->msg_len += n;
    FZ_CHECK(h->msg_len <= h->max_message);
    /* Text is validated before delivery: every piece continues a valid
     * prefix. */
    if (h->msg_opcode == WS_OPCODE_TEXT)
        FZ_CHECK(ws_utf8_feed(&h->utf8, p, n, NULL) == WS_OK);
    if (!h->acc_full && n <= FZ_ACC - h->acc_len) {
        memcpy(h->acc + h->acc_len, p, n);
        h->acc_len += n;
    } else {
        h->acc_full = 1;
    }
    return 0;
}

static int fz_on_message_end(struct ws_conn *c, void *user)
{
    struct fz_conn *h = fz_enter(c, user);

    FZ_CHECK(h->msg_opcode != 0);
    if (h->msg_opcode == WS_OPCODE_TEXT) {
        FZ_CHECK(ws_utf8_finish(&h->utf8) == WS_OK);
        if (!h->acc_full)
            FZ_CHECK(ws_utf8_check(h->acc, h->acc_len) == WS_OK);
    }
    h->last_opcode = h->msg_opcode;
    h->msg_opcode = 0;
    h->ended = 1;
    h->messages++;
    if (h->mode == FZ_STREAM && h->messages == 2) {
        FZ_CHECK(ws_conn_close(c, 1000, "bye", 3) == WS_OK);
        FZ_CHECK(ws_conn_get_state(c) == WS_STATE_CLOSING);
        FZ_CHECK(ws_conn_close(c, 1000, NULL, 0) == WS_ERR_CLOSED);
        h->we_closed = 1;
    }
    return 0;
}

static int fz_on_message(struct ws_conn *c, unsigned opcode, const uint8_t *p,
                         size_t n, void *user)
{
    struct fz_conn *h = fz_enter(c, user);
    int in_input = n > 0 && FZ_INSIDE(p, n, h->in, h->in_len);
    int rv;

    FZ_CHECK(h->opened && h->msg_opcode == 0);
    FZ_CHECK(opcode == WS_OPCODE_TEXT || opcode == WS_OPCODE_BINARY);
    FZ_CHECK(p != NULL && n <= h->max_message);
    FZ_CHECK(in_input || FZ_INSIDE(p, n, h->msg, FZ_MSG));
    /* Zero-copy delivery only when no streaming callback wants the data. */
    FZ_CHECK(!in_input || !(h->mode & FZ_STREAM));
    if (opcode == WS_OPCODE_TEXT)
        FZ_CHECK(ws_utf8_check(p, n) == WS_OK);
    if (h->mode & FZ_STREAM) {
        /* The same message was just streamed. */
        FZ_CHECK(h->ended && h->last_opcode == opcode && h->msg_len == n);
        FZ_CHECK(h->acc_full || (n == h->acc_len &&
                                 (n == 0 || memcmp(h->acc, p, n) == 0)));
        h->ended = 0;
    } else {
        h->messages++;
    }
    /* Echo. The transport takes everything, so the send completes. */
    FZ_CHECK(ws_conn_can_send(c) == (h->we_closed ? WS_ERR_CLOSED : WS_OK));
    if (opcode == WS_OPCODE_TEXT)
        rv = ws_conn_send_text(c, (const char *)p, n);
    else
        rv = ws_conn_send_binary(c, p, n);
    FZ_CHECK(rv == (h->we_closed ? WS_ERR_CLOSED : WS_OK));
    if (rv == WS_OK)
        h->echoes++;
    return 0;
}

/* A control payload is delivered from the input when it arrived whole,
 * else from where it was gathered: the end of the connection's buffer. */
static void fz_check_control(struct fz_conn *h, const uint8_t *p, size_t n)
{
    FZ_CHECK(h->opened && n <= WS_CONTROL_PAYLOAD_MAX);
    FZ_CHECK(n == 0 || p != NULL);
    FZ_CHECK(FZ_INSIDE(p, n, h->buf + FZ_BUF - WS_CONN_BUF_RESERVE,
                       WS_CONTROL_PAYLOAD_MAX) ||
             FZ_INSIDE(p, n, h->in, h->in_len));
}

static int fz_on_ping(struct ws_conn *c, const uint8_t *p, size_t n,
                      void *user)
{
    struct fz_conn *h = fz_enter(c, user);

    fz_check_control(h, p, n);
    h->pings++;
    return WS_PAUSED;
}

static int fz_on_pong(struct ws_conn *c, const uint8_t *p, size_t n,
                      void *user)
{
    struct fz_conn *h = fz_enter(c, user);

    fz_check_control(h, p, n);
    return n > 0 && p[0] == '!' ? 1 : 0;
}

static int fz_on_close(struct ws_conn *c, unsigned code, const char *reason,
                       size_t n, void *user)
{
    struct fz_conn *h = fz_enter(c, user);
    int err = ws_conn_get_error(c);

    FZ_CHECK(h->opened);
    FZ_CHECK(ws_conn_get_state(c) == WS_STATE_CLOSED);
    FZ_CHECK(n <= WS_CLOSE_REASON_MAX && (n == 0 || reason != NULL));
    if (err != 0) {
        /* We failed the connection: the code we sent. */
        FZ_CHECK(ws_err_is_fatal(err));
        FZ_CHECK(code == ws_err_close_code(err));
    } else {
        /* The peer's close frame: 1005 (no code) or a valid code, and a
         * valid UTF-8 reason. */
        FZ_CHECK(code == ws_conn_get_close_code(c));
        FZ_CHECK(code == WS_CLOSE_NO_STATUS || ws_close_code_is_valid(code));
        FZ_CHECK(code != WS_CLOSE_NO_STATUS || n == 0);
        FZ_CHECK(ws_utf8_check((const uint8_t *)reason, n) == WS_OK);
    }
    h->closed = 1;
    h->close_code = code;
    h->reason_len = n;
    if (n > 0)
        memcpy(h->reason, reason, n);
    return 0;
}

static const struct ws_callbacks fz_cb_stream = {
    fz_send, fz_on_request, NULL, fz_on_open,
    fz_on_message_begin, fz_on_message_data, fz_on_message_end, NULL,
    fz_on_ping, fz_on_pong, fz_on_close
};

static const struct ws_callbacks fz_cb_whole = {
    fz_send, fz_on_request, NULL, fz_on_open,
    NULL, NULL, NULL, fz_on_message,
    fz_on_ping, fz_on_pong, fz_on_close
};

static const struct ws_callbacks fz_cb_both = {
    fz_send, fz_on_request, NULL, fz_on_open,
    fz_on_message_begin, fz_on_message_data, fz_on_message_end,
    fz_on_message,
    fz_on_ping, fz_on_pong, fz_on_close
};

/* ------------------------------------------------------------------------ */
/* Driver                                                                   */
/* ------------------------------------------------------------------------ */

/* A connection in role with cfg.flags = flags, configured by variant (the
 * configuration byte described at the top). */
static struct fz_conn *fz_new(unsigned role, uint8_t variant, unsigned flags)
{
    static const unsigned modes[4] = {
        FZ_STREAM, FZ_WHOLE, FZ_STREAM | FZ_WHOLE, FZ_WHOLE
    };
    struct fz_conn *h = calloc(1, sizeof *h);
    struct ws_config cfg;
    const struct ws_callbacks *cb;

    FZ_CHECK(h != NULL);
    h->role = role;
    h->flags = flags;
    h->mode = modes[(variant >> 5) & 3u];
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.flags = flags;
    h->max_message = WS_DEFAULT_MAX_MESSAGE;
    if (variant & 0x80u) {
        cfg.max_message = 4096;
        cfg.max_fragments = 16;
        cfg.max_handshake = 512;
        cfg.max_headers = 8;
        h->max_message = 4096;
    }
    if (h->mode & FZ_WHOLE) {
        cfg.message_buf = h->msg;
        cfg.message_buf_len = FZ_MSG;
        if (h->max_message > FZ_MSG)
            h->max_message = FZ_MSG;
    }
    cb = h->mode == FZ_STREAM ? &fz_cb_stream
         : h->mode == FZ_WHOLE ? &fz_cb_whole : &fz_cb_both;
    FZ_CHECK(ws_conn_init(&h->c, &cfg, cb, h, h->buf, FZ_BUF) == WS_OK);
    FZ_CHECK(ws_conn_get_state(&h->c) ==
             ((flags & WS_CONFIG_START_OPEN) ? WS_STATE_OPEN
                                             : WS_STATE_CONNECTING));
    FZ_CHECK(ws_conn_get_role(&h->c) == role && h->out_len == 0);
    h->opened = (flags & WS_CONFIG_START_OPEN) != 0;
    return h;
}

/*
 * Feed data[0..size) in chunks of at most chunk bytes, from a malloc'd
 * copy (ws_conn_feed unmasks in place). After WS_PAUSED the unconsumed
 * bytes are offered again; after a failure the rest is still fed, to
 * check that the failure is sticky.
 */
static void fz_feed(struct fz_conn *h, const uint8_t *data, size_t size,
                    size_t chunk)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    size_t off = 0, steps = 0;
    int failed = 0;

    FZ_CHECK(copy != NULL && chunk > 0);
    if (size > 0)
        memcpy(copy, data, size);
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk, used = n + 1;
        size_t out_before = h->out_len;
        int rv;

        FZ_CHECK(++steps <= 2 * size + 16);    /* progress */
        h->in = copy + off;
        h->in_len = n;
        rv = ws_conn_feed(&h->c, copy + off, n, &used);
        h->in = NULL;
        h->in_len = 0;
        FZ_CHECK(used <= n);
        if (failed) {
            /* Sticky: same status, nothing consumed, nothing sent. */
            FZ_CHECK(rv == failed && used == 0 && h->out_len == out_before);
            off += n;
            continue;
        }
        if (rv != WS_OK && rv != WS_PAUSED) {
            FZ_CHECK(ws_err_is_fatal(rv));
            FZ_CHECK(ws_conn_get_error(&h->c) == rv);
            FZ_CHECK(ws_conn_get_state(&h->c) == WS_STATE_CLOSED);
            failed = rv;
            h->sealed = 1;
            off += n;
            continue;
        }
        FZ_CHECK(ws_conn_get_error(&h->c) == 0);
        if (rv == WS_OK)
            FZ_CHECK(used == n);
        if (ws_conn_get_state(&h->c) == WS_STATE_CLOSED)
            h->sealed = 1;
        off += used;
    }
    free(copy);
}

/* Server handshake that succeeded: the output starts with a 101 our own
 * client parser accepts for the key the client sent. Returns its size. */
static size_t fz_check_101(struct fz_conn *h)
{
    struct ws_response resp;
    size_t used = 0;

    FZ_CHECK(h->out_len >= 13 && memcmp(h->out, "HTTP/1.1 101 ", 13) == 0);
    FZ_CHECK(ws_handshake_parse_response(&resp, h->out, h->out_len, h->key,
                                         h->chat ? "chat" : NULL, 0,
                                         &used) == WS_OK);
    FZ_CHECK(resp.status == 101 && used > 0 && used <= h->out_len);
    FZ_CHECK(resp.protocol.n == (h->chat ? 4u : 0u));
    return used;
}

/* Server handshake that failed: one HTTP error answer, by status. */
static void fz_check_http_error(const struct fz_conn *h, int err)
{
    const char *want;

    switch (err) {
    case WS_ERR_HANDSHAKE:      want = "HTTP/1.1 400 "; break;
    case WS_ERR_VERSION:        want = "HTTP/1.1 426 "; break;
    case WS_ERR_HEADER_TOO_BIG: want = "HTTP/1.1 431 "; break;
    case WS_ERR_REJECTED:       want = "HTTP/1.1 403 "; break;
    default:                    want = NULL; break;
    }
    FZ_CHECK(want != NULL);
    FZ_CHECK(err != WS_ERR_REJECTED || h->rejected);
    FZ_CHECK(h->out_len >= 13 && memcmp(h->out, want, 13) == 0);
}

/* out[pos..) must be whole frames this endpoint may send. */
static void fz_check_frames(struct fz_conn *h, size_t pos)
{
    size_t data_frames = 0, pongs = 0;

    h->out_closes = 0;
    while (pos < h->out_len) {
        struct ws_frame f;
        size_t hl = 0, n;
        uint8_t *p;
        int rv = ws_frame_decode_header(&f, h->out + pos, h->out_len - pos,
                                        &hl, NULL);

        FZ_CHECK(h->out_closes == 0);        /* a close frame is the last */
        FZ_CHECK(rv == WS_OK);
        FZ_CHECK(f.masked == (h->role == WS_ROLE_CLIENT)); /* RFC 6455 5.1 */
        FZ_CHECK(f.fin == 1 && f.rsv == 0);
        FZ_CHECK(f.length <= h->out_len - pos - hl);
        n = (size_t)f.length;
        p = h->out + pos + hl;
        if (f.masked)
            ws_mask(p, p, n, f.mask, 0);
        switch (f.opcode) {
        case WS_OPCODE_TEXT:
            FZ_CHECK(ws_utf8_check(p, n) == WS_OK);
            data_frames++;
            break;
        case WS_OPCODE_BINARY:
            data_frames++;
            break;
        case WS_OPCODE_PONG:
            pongs++;
            break;
        case WS_OPCODE_CLOSE:
            /* RFC 6455 5.5.1: no payload, or a code and a UTF-8 reason. */
            FZ_CHECK(n != 1);
            h->out_closes++;
            h->out_close_len = n;
            h->out_close_code = 0;
            if (n >= 2) {
                h->out_close_code = (unsigned)p[0] << 8 | p[1];
                FZ_CHECK(ws_close_code_is_valid(h->out_close_code));
                FZ_CHECK(ws_utf8_check(p + 2, n - 2) == WS_OK);
            }
            break;
        default:
            fz_fail("unexpected opcode in our output", __FILE__, __LINE__);
            break;
        }
        pos += hl + n;
    }
    FZ_CHECK(data_frames == h->echoes);
    FZ_CHECK(pongs <= h->pings);
}

/* Check how the connection ended and everything it wrote. */
static void fz_finish(struct fz_conn *h)
{
    int err = ws_conn_get_error(&h->c);
    enum ws_state st = ws_conn_get_state(&h->c);
    unsigned code = ws_err_close_code(err);
    size_t out_before, used = 0;
    uint8_t byte = 0x81;
    int rv;

    FZ_CHECK(err == 0 || (ws_err_is_fatal(err) && st == WS_STATE_CLOSED));
    FZ_CHECK(!ws_conn_wants_flush(&h->c) && ws_conn_get_buffered(&h->c) == 0);
    FZ_CHECK(h->closed == (h->opened && st == WS_STATE_CLOSED));
    FZ_CHECK(ws_conn_can_send(&h->c) ==
             (err != 0 ? err
              : st == WS_STATE_CONNECTING ? WS_ERR_BAD_STATE
              : st == WS_STATE_OPEN ? WS_OK : WS_ERR_CLOSED));
    if (!h->opened) {
        FZ_CHECK(st == WS_STATE_CONNECTING || st == WS_STATE_CLOSED);
        if (err == 0)
            FZ_CHECK(st == WS_STATE_CONNECTING && h->out_len == 0);
        else
            fz_check_http_error(h, err);
    } else {
        fz_check_frames(h, (h->flags & WS_CONFIG_START_OPEN) ? 0
                                                             : fz_check_101(h));
        if (st == WS_STATE_OPEN) {
            FZ_CHECK(h->out_closes == 0 && !h->we_closed);
        } else if (st == WS_STATE_CLOSING) {
            FZ_CHECK(h->we_closed && h->out_closes == 1);
        } else if (h->we_closed) {
            FZ_CHECK(h->out_closes == 1 && h->out_close_code == 1000);
        } else if (err != 0) {
            /* RFC 6455 7.1.7: failing sends the status's close code. */
            FZ_CHECK(code != 0 && h->out_closes == 1);
            FZ_CHECK(h->out_close_code == code);
        } else {
            /* The peer closed: we echoed its code (RFC 6455 5.5.1). */
            FZ_CHECK(h->out_closes == 1);
            FZ_CHECK(h->close_code == WS_CLOSE_NO_STATUS
                         ? h->out_close_len == 0
                         : h->out_close_len == 2 &&
                               h->out_close_code == h->close_code);
        }
    }

    /* A CLOSED connection stays as it is: one more byte changes nothing. */
    if (st == WS_STATE_CLOSED) {
        out_before = h->out_len;
        rv = ws_conn_feed(&h->c, &byte, 1, &used);
        FZ_CHECK(rv == err && used == (err != 0 ? 0u : 1u));
        FZ_CHECK(h->out_len == out_before);
        FZ_CHECK(ws_conn_get_state(&h->c) == WS_STATE_CLOSED);
        FZ_CHECK(ws_conn_get_error(&h->c) == err);
    }
}

static void fz_free(struct fz_conn *h)
{
    ws_conn_reset(&h->c);
    free(h->out);
    free(h);
}

#endif /* FUZZ_CONN_H */
