/*
 * ws_conn.c - the connection state machine (RFC 6455 4, 5.4, 5.5, 7).
 *
 *   CONNECTING --handshake ok--> OPEN --we send close--> CLOSING
 *        |                        |                        |
 *        | bad handshake          | peer's close (we reply)| peer's close
 *        v                        v                        v
 *      CLOSED <------------- CLOSED (also: any failure) -- CLOSED
 *
 * Input: ws_conn_feed() takes whatever bytes arrived. In CONNECTING they are
 * gathered in the caller's buffer until the HTTP header block is complete
 * (ws_handshake.c parses it). Then frames are parsed by a small receive
 * machine whose states are named below; every state can stop at any byte
 * and resume on the next call, which is what makes the parser
 * split-invariant. Before a callback runs, the state already says what
 * comes next, so a callback that returns WS_PAUSED loses nothing. A
 * small, final data frame that is whole in the input (the common case)
 * takes a shortcut through these states, whole_frame(), with the same
 * events and the same state before each callback.
 *
 * Output: every frame is offered to the send callback as header + payload
 * (two iovecs, no copy) for a server; a client's frame must be masked
 * (RFC 6455 5.3), so it is masked into the caller's buffer, in chunks if it
 * is large. Whatever the transport does not take stays in the buffer, or,
 * if it does not fit, stays in the caller's payload ("pinned") until
 * ws_conn_flush() has written it. Control frames the core sends by itself
 * (pong, close) wait in a one-frame slot when output is blocked.
 *
 * Memory: once open, the last WS_CONN_BUF_RESERVE bytes of the caller's
 * buffer hold the payload of a control frame that arrives in pieces and
 * the waiting slot; a client also keeps the subprotocol name just below
 * them. Output uses the rest. A control frame that arrives whole is
 * handled straight from the input, so a server whose connections are
 * idle or well-behaved never has bytes in its buffer between calls and
 * can share one buffer among many connections (ws_conn_buffer_busy()).
 *
 * Failing the connection (RFC 6455 7.1.7) always sends one close frame with
 * the status's code before the state becomes CLOSED; nothing is delivered
 * after that, and on_close is the last callback.
 */
#include "ws_internal.h"

/* Receive states. */
enum rx_state {
    RX_HEADER = 0,    /* gathering a frame header */
    RX_PAYLOAD,       /* reading payload; frame done when frame_left == 0 */
    RX_MSG_END,       /* message complete: on_message_end is next */
    RX_MSG_DELIVER,   /* then on_message */
    RX_IGNORE         /* close received or connection failed: drop input */
};

static int fail(struct ws_conn *c, int status, const char *why);

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Buffer offsets are kept in 32 bits (struct ws_conn). */
static int over_32_bits(size_t n)
{
#if SIZE_MAX > UINT32_MAX
    return n > UINT32_MAX;
#else
    (void)n;
    return 0;
#endif
}

static int is_client(const struct ws_conn *c)
{
    return c->role == WS_ROLE_CLIENT;
}

/* The end of buf (see the top of this file). */
#define PROTO_MAX 64u   /* a client's subprotocol name, with its NUL */

static size_t reserve_size(const struct ws_conn *c)
{
    return WS_CONN_BUF_RESERVE + (is_client(c) ? PROTO_MAX : 0u);
}

static uint8_t *ctrl_area(const struct ws_conn *c)
{
    return c->buf + c->buflen - WS_CONN_BUF_RESERVE;
}

static uint8_t *slot_area(const struct ws_conn *c)
{
    return c->buf + c->buflen - WS_CONTROL_PAYLOAD_MAX;
}

static char *proto_area(const struct ws_conn *c)
{
    return (char *)c->buf + c->buflen - reserve_size(c);
}

/* Room for output: all of buf during the handshake, then what the
 * reserve leaves. */
static size_t out_cap(const struct ws_conn *c)
{
    return c->state == WS_STATE_CONNECTING ? c->buflen
                                           : c->buflen - reserve_size(c);
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */
/* ------------------------------------------------------------------------ */

/* What a user callback's return value means for the caller (STYLE 4). */
static int after_callback(struct ws_conn *c, int rv)
{
    c->in_callback = 0;
    if (c->error != 0)
        return c->error;    /* e.g. the transport failed inside the callback */
    if (rv == 0)
        return WS_OK;
    if (rv == WS_PAUSED)
        return WS_PAUSED;
    return fail(c, WS_ERR_CALLBACK, "a callback returned an error");
}

/* on_close runs at most once, only for a connection that was opened, and
 * is the last callback. Its return value cannot change anything. */
static void notify_close(struct ws_conn *c, unsigned code, const char *reason,
                         size_t n)
{
    if (!c->opened || c->close_notified)
        return;
    c->close_notified = 1;
    if (c->cb->on_close) {
        uint8_t saved = c->in_callback;
        c->in_callback = 1;
        (void)c->cb->on_close(c, code, reason, n, c->user);
        c->in_callback = saved;
    }
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static size_t out_pending(const struct ws_conn *c)
{
    return c->out_tail - c->out_head;
}

/* Move pending output to the start of the buffer. */
static void out_compact(struct ws_conn *c)
{
    size_t n = out_pending(c);

    if (c->out_head == 0)
        return;
    if (n > 0)
        memmove(c->buf, c->buf + c->out_head, n);
    c->out_head = 0;
    c->out_tail = (uint32_t)n;
}

static void drop_output(struct ws_conn *c)
{
    c->out_head = c->out_tail = 0;
    c->pin = NULL;
    c->pin_len = 0;
    c->slot_opcode = 0;
}

/* Hand iov[] to the transport. */
static int call_send(struct ws_conn *c, const struct ws_iov *iov, size_t cnt,
                     size_t *written)
{
    size_t total = 0, i;
    uint8_t saved = c->in_callback;
    int rv;

    for (i = 0; i < cnt; i++)
        total += iov[i].len;
    *written = 0;
    c->in_callback = 1;
    c->in_send = 1;
    rv = c->cb->send(c, iov, cnt, written, c->user);
    c->in_send = 0;
    c->in_callback = saved;
    if (rv < 0 || *written > total) {
        *written = 0;
        c->transport_failed = 1;
        drop_output(c);
        if (c->error == 0) {
            c->error = WS_ERR_TRANSPORT;
            c->reason = "the send callback failed";
        }
        c->state = WS_STATE_CLOSED;
        c->rx_state = RX_IGNORE;
        return WS_ERR_TRANSPORT;
    }
    return WS_OK;
}

/* Account for w bytes taken by the transport: buffered bytes first, then
 * the pinned payload (server frames only; client pins are staged). */
static void consume_output(struct ws_conn *c, size_t w)
{
    size_t from_buf = min_size(w, out_pending(c));

    c->out_head += (uint32_t)from_buf;
    w -= from_buf;
    if (c->out_head == c->out_tail)
        c->out_head = c->out_tail = 0;
    if (w > 0 && c->pin) {
        c->pin += w;
        c->pin_len -= w;
        if (c->pin_len == 0)
            c->pin = NULL;
    }
}

/* Write a frame header for this connection's role into hdr. A client
 * header gets a fresh masking key (RFC 6455 5.3), returned in key. */
static int build_header(struct ws_conn *c, unsigned fin, unsigned opcode,
                        size_t n, uint8_t *hdr, size_t *hl, uint8_t key[4])
{
    struct ws_frame f;

    memset(&f, 0, sizeof f);
    f.fin = fin ? 1u : 0u;
    f.opcode = opcode;
    f.length = n;
    if (is_client(c)) {
        if (ws__random(key, 4) != WS_OK)
            return WS_ERR_CRYPTO;
        f.masked = 1;
        memcpy(f.mask, key, 4);
    }
    return ws_frame_encode_header(hdr, WS_FRAME_HEADER_MAX, &f, hl);
}

/* Append a whole frame to the buffer (masking the payload for a client). */
static void append_frame(struct ws_conn *c, const uint8_t *hdr, size_t hl,
                         const uint8_t *p, size_t n, const uint8_t key[4])
{
    memcpy(c->buf + c->out_tail, hdr, hl);
    if (n > 0) {
        if (is_client(c))
            ws_mask(c->buf + c->out_tail + hl, p, n, key, 0);
        else
            memcpy(c->buf + c->out_tail + hl, p, n);
    }
    c->out_tail += (uint32_t)(hl + n);
}

/* Client: mask the next chunk of the pinned payload into the empty
 * buffer. Once all of it is staged the payload is no longer needed. */
static void stage_pin(struct ws_conn *c)
{
    size_t n = min_size(c->pin_len, out_cap(c));

    ws_mask(c->buf, c->pin, n, c->pin_key, c->pin_off);
    c->out_head = 0;
    c->out_tail = (uint32_t)n;
    c->pin += n;
    c->pin_len -= n;
    c->pin_off = (uint8_t)((c->pin_off + n) & 3u);
    if (c->pin_len == 0)
        c->pin = NULL;
}

/* Put the waiting control frame into the empty buffer. */
static int stage_slot(struct ws_conn *c)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX], key[4];
    size_t hl;
    int rv = build_header(c, 1, c->slot_opcode, c->slot_len, hdr, &hl, key);

    if (rv != WS_OK)
        return rv;
    c->out_head = c->out_tail = 0;
    append_frame(c, hdr, hl, slot_area(c), c->slot_len, key);
    c->slot_opcode = 0;
    return WS_OK;
}

/* Write as much pending output as the transport takes. */
static int flush_output(struct ws_conn *c)
{
    for (;;) {
        struct ws_iov iov[2];
        size_t cnt = 0, w;
        int rv;

        if (c->transport_failed)
            return WS_ERR_TRANSPORT;
        if (out_pending(c) == 0 && c->pin && is_client(c))
            stage_pin(c);
        if (out_pending(c) == 0 && c->pin == NULL && c->slot_opcode) {
            rv = stage_slot(c);
            if (rv != WS_OK)
                return rv;
        }
        if (out_pending(c) > 0) {
            iov[cnt].base = c->buf + c->out_head;
            iov[cnt++].len = out_pending(c);
        }
        if (c->pin && !is_client(c)) {
            iov[cnt].base = c->pin;
            iov[cnt++].len = c->pin_len;
        }
        if (cnt == 0)
            return WS_OK;
        rv = call_send(c, iov, cnt, &w);
        if (rv != WS_OK)
            return rv;
        if (w == 0)
            return WS_AGAIN;
        consume_output(c, w);
    }
}

/*
 * Send one frame. The first attempt always accepts the frame: what the
 * transport does not take is copied into the buffer, or, if it does not
 * fit and allow_pin is set, left in the caller's payload (WS_PENDING).
 * When earlier output is still blocked the frame is appended to the buffer
 * if it fits, else WS_AGAIN (nothing done).
 */
static int queue_frame(struct ws_conn *c, unsigned fin, unsigned opcode,
                       const uint8_t *p, size_t n, int allow_pin)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX], key[4];
    size_t hl, w, total, sent_payload, rest;
    struct ws_iov iov[2];
    int rv;

    rv = flush_output(c);
    if (rv != WS_OK && rv != WS_AGAIN)
        return rv;
    if (c->pin || c->slot_opcode)
        return WS_AGAIN;
    rv = build_header(c, fin, opcode, n, hdr, &hl, key);
    if (rv != WS_OK)
        return rv;
    total = hl + n;

    if (out_pending(c) > 0) {
        out_compact(c);
        if (total > out_cap(c) - c->out_tail)
            return WS_AGAIN;
        append_frame(c, hdr, hl, p, n, key);
        return WS_OK;
    }
    c->out_head = c->out_tail = 0;

    if (is_client(c)) {
        /* Mask what fits; pin the rest, to be masked as it drains. */
        size_t m = min_size(n, out_cap(c) - hl);
        append_frame(c, hdr, hl, p, m, key);
        if (m < n) {
            c->pin = p + m;
            c->pin_len = n - m;
            c->pin_off = (uint8_t)(m & 3u);
            memcpy(c->pin_key, key, 4);
        }
        rv = flush_output(c);
        if (rv != WS_OK && rv != WS_AGAIN)
            return rv;
        return (c->pin && allow_pin) ? WS_PENDING : WS_OK;
    }

    /* Server: header + payload straight from the caller's memory. */
    iov[0].base = hdr;
    iov[0].len = hl;
    iov[1].base = p;
    iov[1].len = n;
    rv = call_send(c, iov, n > 0 ? 2 : 1, &w);
    if (rv != WS_OK)
        return rv;
    if (w == total)
        return WS_OK;
    if (w < hl) {
        memcpy(c->buf, hdr + w, hl - w);
        c->out_tail = (uint32_t)(hl - w);
        sent_payload = 0;
    } else {
        sent_payload = w - hl;
    }
    rest = n - sent_payload;
    if (rest <= out_cap(c) - c->out_tail || !allow_pin) {
        /* Control frames (n <= 125) always fit: out_cap >= 198. */
        if (rest > 0)
            memcpy(c->buf + c->out_tail, p + sent_payload, rest);
        c->out_tail += (uint32_t)rest;
        return WS_OK;
    }
    c->pin = p + sent_payload;
    c->pin_len = rest;
    return WS_PENDING;
}

/* A control frame the core sends by itself (pong, close). When output is
 * blocked it waits in the slot; a close replaces a waiting pong (RFC 6455
 * 5.5.3 allows answering only the latest ping), never the reverse. */
static int queue_control(struct ws_conn *c, unsigned opcode, const uint8_t *p,
                         size_t n)
{
    int rv = queue_frame(c, 1, opcode, p, n, 0);

    if (rv != WS_AGAIN)
        return rv;
    if (c->slot_opcode == WS_OPCODE_CLOSE)
        return WS_OK;
    c->slot_opcode = (uint8_t)opcode;
    c->slot_len = (uint8_t)n;
    if (n > 0)
        memcpy(slot_area(c), p, n);
    return WS_OK;
}

/* Queue our close frame: 2-byte code (RFC 6455 5.5.1) + reason. */
static int send_close(struct ws_conn *c, unsigned code, const char *reason,
                      size_t n)
{
    uint8_t payload[WS_CONTROL_PAYLOAD_MAX];
    size_t len = 0;

    if (code != 0) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        n = min_size(n, WS_CLOSE_REASON_MAX);
        if (n > 0)
            memcpy(payload + 2, reason, n);
        len = 2 + n;
    }
    c->close_sent = 1;
    return queue_control(c, WS_OPCODE_CLOSE, payload, len);
}

/* RFC 6455 7.1.7: _Fail the WebSocket Connection_. Sends the close frame
 * with the status's code (once), then the connection is CLOSED. */
static int fail(struct ws_conn *c, int status, const char *why)
{
    unsigned code = ws_err_close_code(status);
    size_t why_len = why ? strlen(why) : 0;

    if (c->error != 0)
        return c->error;
    c->error = status;
    c->reason = why;
    c->rx_state = RX_IGNORE;
    if ((c->state == WS_STATE_OPEN || c->state == WS_STATE_CLOSING) &&
        !c->close_sent && code != 0)
        (void)send_close(c, code, why, why_len);
    c->state = WS_STATE_CLOSED;
    notify_close(c, code, why, min_size(why_len, WS_CLOSE_REASON_MAX));
    return status;
}

/* ------------------------------------------------------------------------ */
/* Opening handshake (RFC 6455 4)                                           */
/* ------------------------------------------------------------------------ */

/* A handshake that cannot go on: the server answers with an HTTP error;
 * either side ends up CLOSED with a sticky status. */
static int handshake_fail(struct ws_conn *c, int status, unsigned http_status,
                          const char *why)
{
    size_t w;

    c->error = status;
    c->reason = why;
    c->state = WS_STATE_CLOSED;
    c->rx_state = RX_IGNORE;
    if (!is_client(c) && http_status != 0 && !c->transport_failed) {
        c->out_head = c->out_tail = 0;
        if (ws_handshake_write_error((char *)c->buf, c->buflen, http_status,
                                     why, &w) == WS_OK) {
            c->out_tail = (uint32_t)w;
            (void)flush_output(c);
        }
    }
    return status;
}

static int finish_open(struct ws_conn *c)
{
    int rv;

    c->state = WS_STATE_OPEN;
    c->opened = 1;
    memset(&c->u.rx, 0, sizeof c->u.rx);   /* the handshake state is gone */
    if (c->cb->on_open == NULL)
        return WS_OK;
    c->in_callback = 1;
    rv = c->cb->on_open(c, c->user);
    return after_callback(c, rv);
}

static int server_handshake(struct ws_conn *c, const uint8_t *req_bytes,
                            size_t len, size_t cap, size_t *req_size)
{
    struct ws_request req;
    char key[WS_KEY_LEN + 1];
    size_t w;
    int rv;

    rv = ws_handshake_parse_request(&req, req_bytes, len, cap,
                                    c->u.hs.max_headers, req_size);
    if (rv == WS_INCOMPLETE)
        return rv;
    if (rv != WS_OK)
        return handshake_fail(c, rv, ws_err_http_status(rv), req.error);

    if (c->cb->on_request) {
        c->u.hs.req = &req;
        c->in_callback = 1;
        rv = c->cb->on_request(c, &req, c->user);
        c->in_callback = 0;
        c->u.hs.req = NULL;
        if (c->error != 0)
            return c->error;
        if (rv != 0 && rv != WS_PAUSED)
            return handshake_fail(c, WS_ERR_CALLBACK, 500,
                                  "on_request failed");
    }
    if (c->u.hs.reject_status != 0)
        return handshake_fail(c, WS_ERR_REJECTED, c->u.hs.reject_status,
                              c->u.hs.reject_reason ? c->u.hs.reject_reason
                                                    : "rejected by the "
                                                      "server");

    /* The request bytes are overwritten by the answer: keep the key. The
     * answer stays out of the reserve, which is in use once open. */
    memcpy(key, req.key.p, WS_KEY_LEN);
    key[WS_KEY_LEN] = '\0';
    rv = ws_handshake_write_accept((char *)c->buf,
                                   c->buflen - WS_CONN_BUF_RESERVE, key,
                                   WS_KEY_LEN, c->protocol, c->u.hs.text,
                                   &w);
    if (rv != WS_OK)
        return handshake_fail(c, rv == WS_ERR_NO_SPACE ? WS_ERR_HEADER_TOO_BIG
                                                       : rv,
                              500, "cannot write the handshake answer");
    c->out_head = 0;
    c->out_tail = (uint32_t)w;
    rv = flush_output(c);
    if (rv != WS_OK && rv != WS_AGAIN)
        return rv;
    return finish_open(c);
}

static int client_handshake(struct ws_conn *c, const uint8_t *resp_bytes,
                            size_t len, size_t cap, size_t *resp_size)
{
    struct ws_response resp;
    int rv;

    rv = ws_handshake_parse_response(&resp, resp_bytes, len, c->u.hs.key,
                                     c->u.hs.text, cap, resp_size);
    if (rv == WS_INCOMPLETE)
        return rv;
    if (rv != WS_OK)
        return handshake_fail(c, rv, 0, resp.error);
    if (resp.protocol.n >= PROTO_MAX)
        return handshake_fail(c, WS_ERR_BAD_RESPONSE, 0,
                              "subprotocol name longer than 63 bytes");
    /* A server answers a whole request (RFC 6455 4.2.2): any of ours still
     * unsent would sit where the reserve goes. */
    if (out_pending(c) > 0)
        return handshake_fail(c, WS_ERR_BAD_RESPONSE, 0,
                              "the server answered before the request was "
                              "sent");

    if (c->cb->on_response) {
        c->in_callback = 1;
        rv = c->cb->on_response(c, &resp, c->user);
        c->in_callback = 0;
        if (c->error != 0)
            return c->error;
        if (rv != 0 && rv != WS_PAUSED)
            return handshake_fail(c, WS_ERR_CALLBACK, 0,
                                  "on_response failed");
    }
    /* Keep the name at the end of buf (the response there is done with;
     * the copy may overlap it). */
    c->out_head = c->out_tail = 0;
    if (resp.protocol.n > 0) {
        char *name = proto_area(c);
        memmove(name, resp.protocol.p, resp.protocol.n);
        name[resp.protocol.n] = '\0';
        c->protocol = name;
    }
    return finish_open(c);
}

/* Gather handshake bytes in buf until the header block is complete. */
static int feed_handshake(struct ws_conn *c, const uint8_t *data, size_t len,
                          size_t *used)
{
    uint8_t *area = c->buf + c->u.hs.base;
    size_t cap = min_size(c->buflen - c->u.hs.base, c->u.hs.max_size);
    size_t take = min_size(len, cap - c->u.hs.len);
    size_t before = c->u.hs.len, total = before + take, size = 0;
    int rv = WS_INCOMPLETE;

    *used = 0;
    memcpy(area + before, data, take);
    /* Parse again whenever a line was completed: the parser keeps no
     * state, and a bad request line is answered without waiting for the
     * whole header block. */
    if (take > 0 && memchr(data, '\n', take) != NULL) {
        if (is_client(c))
            rv = client_handshake(c, area, total, cap, &size);
        else
            rv = server_handshake(c, area, total, cap, &size);
    }
    if (rv == WS_INCOMPLETE) {
        c->u.hs.len = (uint32_t)total;
        *used = take;
        if (total < cap)
            return WS_INCOMPLETE;
        return handshake_fail(c, WS_ERR_HEADER_TOO_BIG, 431,
                              "handshake larger than the configured limit");
    }
    if (rv != WS_OK)
        *used = take;               /* failed: what we read was looked at */
    else if (size > before)
        *used = size - before;      /* the rest of the input is frames */
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Input: frames and messages                                               */
/* ------------------------------------------------------------------------ */

static void reset_message(struct ws_conn *c)
{
    c->msg_opcode = 0;
    c->u.rx.msg_frames = 0;
    c->u.rx.msg_len = 0;
}

static int whole_messages(const struct ws_conn *c)
{
    return c->cb->on_message != NULL;
}

/* Reassembly buffers from cfg.alloc above this size are given back after
 * each message, so what an idle connection holds does not depend on the
 * largest message it ever received (one max_message-sized message on each
 * of many connections would otherwise stay allocated for their lifetime,
 * and a long-running server's memory would creep up towards
 * connections * max_message). Smaller buffers are kept for reuse. */
#ifndef WS_MSG_BUF_KEEP
#define WS_MSG_BUF_KEEP (64u * 1024u)
#endif

static void release_message_buffer(struct ws_conn *c)
{
    const struct ws_allocator *a = c->alloc;

    if (a == NULL || c->fixed_msg_buf || c->msg_buf == NULL ||
        c->msg_cap <= WS_MSG_BUF_KEEP)
        return;
    (void)a->realloc(a->ctx, c->msg_buf, c->msg_cap, 0);
    c->msg_buf = NULL;
    c->msg_cap = 0;
}

/* Make room for need bytes of reassembled message. need <= max_message
 * <= SIZE_MAX for whole messages (ws_conn_init), so the casts are exact. */
static int reserve_message(struct ws_conn *c, uint64_t need)
{
    const struct ws_allocator *a = c->alloc;
    size_t cap;
    void *p;

    if (need <= c->msg_cap)
        return WS_OK;
    if (c->fixed_msg_buf || a == NULL)
        return fail(c, WS_ERR_TOO_BIG, "message larger than the buffer");
    cap = c->msg_cap < 1024 ? 1024 : c->msg_cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? (size_t)need : cap * 2;
    if (cap > c->max_message)
        cap = (size_t)c->max_message;
    p = a->realloc(a->ctx, c->msg_buf, c->msg_cap, cap);
    if (p == NULL)
        return fail(c, WS_ERR_NO_MEMORY, "cannot allocate the message buffer");
    c->msg_buf = p;
    c->msg_cap = cap;
    return WS_OK;
}

/* A frame's header is accepted: its payload comes next. */
static void enter_payload(struct ws_conn *c, unsigned fin, unsigned opcode,
                          unsigned masked, const uint8_t mask[4],
                          uint64_t length)
{
    c->u.rx.fin = (uint8_t)fin;
    c->u.rx.opcode = (uint8_t)opcode;
    c->u.rx.masked = (uint8_t)masked;
    memcpy(c->u.rx.mask, mask, 4);
    c->u.rx.frame_left = length;
    c->u.rx.frame_off = 0;
    c->rx_state = RX_PAYLOAD;
}

/* The first frame of a text or binary message: on_message_begin. */
static int begin_message(struct ws_conn *c, unsigned opcode)
{
    int rv;

    c->msg_opcode = (uint8_t)opcode;
    ws_utf8_reset(&c->u.rx.utf8);
    if (c->cb->on_message_begin == NULL)
        return WS_OK;
    c->in_callback = 1;
    rv = c->cb->on_message_begin(c, opcode, c->user);
    return after_callback(c, rv);
}

/* A complete header was decoded into f: apply the connection's rules. */
static int start_frame(struct ws_conn *c, const struct ws_frame *f)
{
    /* RFC 6455 5.1: clients mask every frame, servers never do. */
    if (!is_client(c) && !f->masked)
        return fail(c, WS_ERR_PROTOCOL, "client frame is not masked "
                                        "(RFC 6455 5.1)");
    if (is_client(c) && f->masked)
        return fail(c, WS_ERR_PROTOCOL, "server frame is masked "
                                        "(RFC 6455 5.1)");
    /* RFC 6455 5.2: RSV bits are 0 unless an extension defines them. */
    if (f->rsv & ~(unsigned)c->allowed_rsv)
        return fail(c, WS_ERR_PROTOCOL, "reserved bits set without an "
                                        "extension (RFC 6455 5.2)");
    enter_payload(c, f->fin, f->opcode, f->masked, f->mask, f->length);
    if (f->opcode & 0x8u)
        return WS_OK;           /* control: see read_control() */

    /* RFC 6455 5.4: fragments continue the open message, in order. */
    if (f->opcode == WS_OPCODE_CONTINUATION && c->msg_opcode == 0)
        return fail(c, WS_ERR_PROTOCOL, "continuation frame with no message "
                                        "to continue (RFC 6455 5.4)");
    if (f->opcode != WS_OPCODE_CONTINUATION && c->msg_opcode != 0)
        return fail(c, WS_ERR_PROTOCOL, "new data frame inside a fragmented "
                                        "message (RFC 6455 5.4)");
    if (f->length > c->max_frame)
        return fail(c, WS_ERR_TOO_BIG, "frame larger than the limit");
    if (f->length > c->max_message - c->u.rx.msg_len)
        return fail(c, WS_ERR_TOO_BIG, "message larger than the limit");
    if (c->u.rx.msg_frames >= c->max_fragments)
        return fail(c, WS_ERR_TOO_BIG, "too many fragments in one message");
    c->u.rx.msg_frames++;
    if (f->opcode == WS_OPCODE_CONTINUATION)
        return WS_OK;
    return begin_message(c, f->opcode);
}

/* Gather header bytes; decode once all are there. */
static int read_header(struct ws_conn *c, const uint8_t *p, size_t n,
                       size_t *used)
{
    struct ws_frame f;
    const char *why = NULL;
    size_t size, got = 0;
    uint8_t *hdr = c->u.rx.hdr;
    int rv;

    *used = 0;
    rv = WS_INCOMPLETE;
    if (c->u.rx.hdr_have == 0) {
        /* Fast path: the whole header is in this input (the decoder says
         * WS_INCOMPLETE, having consumed nothing, if it is not). */
        rv = ws_frame_decode_header(&f, p, n, &got, &why);
        *used = got;
    }
    if (rv == WS_INCOMPLETE) {
        for (;;) {
            if (ws_frame_header_size(hdr, c->u.rx.hdr_have, &size) != WS_OK)
                size = 2;
            if (c->u.rx.hdr_have >= size)
                break;
            if (*used == n)
                return WS_OK;   /* need more input */
            got = min_size(size - c->u.rx.hdr_have, n - *used);
            memcpy(hdr + c->u.rx.hdr_have, p + *used, got);
            c->u.rx.hdr_have = (uint8_t)(c->u.rx.hdr_have + got);
            *used += got;
        }
        rv = ws_frame_decode_header(&f, hdr, c->u.rx.hdr_have, &got, &why);
        c->u.rx.hdr_have = 0;
    }
    if (rv != WS_OK)
        return fail(c, rv, why);
    return start_frame(c, &f);
}

static int deliver_data(struct ws_conn *c, const uint8_t *p, size_t n)
{
    int rv;

    if (whole_messages(c)) {
        rv = reserve_message(c, c->u.rx.msg_len + n);
        if (rv != WS_OK)
            return rv;
        memcpy(c->msg_buf + c->u.rx.msg_len, p, n);
    }
    c->u.rx.msg_len += n;
    if (c->cb->on_message_data == NULL || n == 0)
        return WS_OK;
    c->in_callback = 1;
    rv = c->cb->on_message_data(c, p, n, c->user);
    return after_callback(c, rv);
}

/* A whole message that lies in the input goes to on_message from there,
 * without a copy; the receive state is already ready for the next frame. */
static int deliver_direct(struct ws_conn *c, unsigned opcode,
                          const uint8_t *p, size_t n)
{
    int rv;

    c->rx_state = RX_HEADER;
    reset_message(c);
    c->in_callback = 1;
    rv = c->cb->on_message(c, opcode, p, n, c->user);
    return after_callback(c, rv);
}

static int handle_control(struct ws_conn *c, const uint8_t *p, size_t n);

/* Control payloads (<= 125 bytes) are handled whole: straight from the
 * input when all of it is there, else gathered in the reserve of buf. */
static int read_control(struct ws_conn *c, uint8_t *p, size_t m)
{
    uint64_t off = c->u.rx.frame_off;

    if (off == 0 && m == c->u.rx.frame_left) {
        if (c->u.rx.masked)
            ws_mask(p, p, m, c->u.rx.mask, 0);  /* in place */
    } else {
        if (c->u.rx.masked)
            ws_mask(ctrl_area(c) + off, p, m, c->u.rx.mask, off);
        else
            memcpy(ctrl_area(c) + off, p, m);
        p = ctrl_area(c);
    }
    c->u.rx.frame_off += m;
    c->u.rx.frame_left -= m;
    if (c->u.rx.frame_left > 0)
        return WS_OK;
    c->rx_state = RX_HEADER;
    return handle_control(c, p, (size_t)c->u.rx.frame_off);
}

static int read_payload(struct ws_conn *c, uint8_t *p, size_t n, size_t *used)
{
    uint64_t left = c->u.rx.frame_left;
    size_t m = (size_t)(left < n ? left : n), valid = 0;
    int direct;

    *used = m;
    if (c->u.rx.opcode & 0x8u)
        return read_control(c, p, m);

    /* A whole unfragmented message in this input, and only on_message
     * wants it: deliver it from the input itself, without a copy. */
    direct = whole_messages(c) && c->cb->on_message_data == NULL &&
             c->cb->on_message_end == NULL && c->u.rx.fin &&
             c->u.rx.msg_frames == 1 && c->u.rx.frame_off == 0 && m == left;

    if (c->u.rx.masked)
        ws_mask(p, p, m, c->u.rx.mask, c->u.rx.frame_off);  /* in place */
    if (c->msg_opcode == WS_OPCODE_TEXT &&
        ws_utf8_feed(&c->u.rx.utf8, p, m, &valid) != WS_OK) {
        /* Fail fast (RFC 6455 8.1), but first hand a streaming receiver
         * the valid bytes before the bad one, so that what it sees does
         * not depend on how the input was split. */
        int rv = WS_OK;
        if (!direct && valid > 0)
            rv = deliver_data(c, p, valid);
        if (rv != WS_OK && rv != WS_PAUSED)
            return rv;
        return fail(c, WS_ERR_BAD_UTF8, "invalid UTF-8 in a text message "
                                        "(RFC 6455 8.1)");
    }
    c->u.rx.frame_off += m;
    c->u.rx.frame_left -= m;

    if (direct) {
        if (c->msg_opcode == WS_OPCODE_TEXT &&
            ws_utf8_finish(&c->u.rx.utf8) != WS_OK)
            return fail(c, WS_ERR_BAD_UTF8, "text message ends inside a "
                                            "UTF-8 sequence (RFC 6455 8.1)");
        return deliver_direct(c, c->msg_opcode, p, m);
    }
    return deliver_data(c, p, m);
}

/* RFC 6455 5.5.1, 7.1.5, 7.4: a close frame arrived. */
static int handle_close(struct ws_conn *c, const uint8_t *p, size_t n)
{
    unsigned code = WS_CLOSE_NO_STATUS;
    int rv = WS_OK;

    if (n == 1)
        return fail(c, WS_ERR_PROTOCOL, "close frame with a 1-byte payload "
                                        "(RFC 6455 5.5.1)");
    if (n >= 2) {
        code = (unsigned)p[0] << 8 | p[1];
        if (!ws_close_code_is_valid(code))
            return fail(c, WS_ERR_PROTOCOL, "close frame with an invalid "
                                            "status code (RFC 6455 7.4)");
        if (ws_utf8_check(p + 2, n - 2) != WS_OK)
            return fail(c, WS_ERR_BAD_UTF8, "close reason is not valid UTF-8 "
                                            "(RFC 6455 5.5.1)");
    }
    c->close_received = 1;
    c->close_code = (uint16_t)code;
    c->rx_state = RX_IGNORE;    /* nothing after a close is processed */
    reset_message(c);
    if (!c->close_sent) {
        /* Echo the status code (RFC 6455 5.5.1), or send none if none
         * came (1005 is never sent). */
        c->close_sent = 1;
        rv = queue_control(c, WS_OPCODE_CLOSE, p, n >= 2 ? 2 : 0);
    }
    c->state = WS_STATE_CLOSED;
    notify_close(c, code, n >= 2 ? (const char *)p + 2 : "",
                 n >= 2 ? n - 2 : 0);
    return rv == WS_ERR_TRANSPORT ? rv : WS_OK;
}

static int handle_control(struct ws_conn *c, const uint8_t *p, size_t n)
{
    int rv = WS_OK;

    switch (c->u.rx.opcode) {
    case WS_OPCODE_CLOSE:
        return handle_close(c, p, n);
    case WS_OPCODE_PING:
        /* RFC 6455 5.5.2: answer with a pong carrying the same data. */
        if (!(c->flags & WS_CONFIG_NO_AUTO_PONG) && !c->close_sent) {
            rv = queue_control(c, WS_OPCODE_PONG, p, n);
            if (rv != WS_OK)
                return rv;
        }
        if (c->cb->on_ping == NULL)
            return WS_OK;
        c->in_callback = 1;
        rv = c->cb->on_ping(c, p, n, c->user);
        return after_callback(c, rv);
    case WS_OPCODE_PONG:
        /* RFC 6455 5.5.3: an unsolicited pong is fine; no answer. */
        if (c->cb->on_pong == NULL)
            return WS_OK;
        c->in_callback = 1;
        rv = c->cb->on_pong(c, p, n, c->user);
        return after_callback(c, rv);
    default:
        return WS_OK;   /* unreachable: decode rejects reserved opcodes */
    }
}

/* The current frame's payload is complete. */
static int finish_frame(struct ws_conn *c)
{
    c->rx_state = RX_HEADER;
    if (c->u.rx.opcode & 0x8u)      /* only an empty one gets here */
        return handle_control(c, ctrl_area(c), 0);
    if (!c->u.rx.fin)
        return WS_OK;
    if (c->msg_opcode == WS_OPCODE_TEXT &&
        ws_utf8_finish(&c->u.rx.utf8) != WS_OK)
        return fail(c, WS_ERR_BAD_UTF8, "text message ends inside a UTF-8 "
                                        "sequence (RFC 6455 8.1)");
    c->rx_state = RX_MSG_END;
    return WS_OK;
}

static int end_message(struct ws_conn *c)
{
    int rv;

    c->rx_state = RX_MSG_DELIVER;
    if (c->cb->on_message_end == NULL)
        return WS_OK;
    c->in_callback = 1;
    rv = c->cb->on_message_end(c, c->user);
    return after_callback(c, rv);
}

static int deliver_message(struct ws_conn *c)
{
    unsigned opcode = c->msg_opcode;
    size_t n = (size_t)c->u.rx.msg_len;
    int rv;

    c->rx_state = RX_HEADER;
    reset_message(c);
    if (!whole_messages(c))
        return WS_OK;
    c->in_callback = 1;
    rv = c->cb->on_message(c, opcode, n ? c->msg_buf : (const uint8_t *)"",
                           n, c->user);
    release_message_buffer(c);
    return after_callback(c, rv);
}

/* RX_MSG_END: on_message_end, then on_message (each may pause). */
static int complete_message(struct ws_conn *c)
{
    int rv = end_message(c);

    if (rv == WS_OK && c->rx_state == RX_MSG_DELIVER)
        rv = deliver_message(c);
    return rv;
}

/* Unmask p[0..n) in place (RFC 6455 5.3). A short payload is done here,
 * 8 bytes at a time, which costs less than the call to ws_mask(). */
static void unmask(uint8_t *p, size_t n, const uint8_t key[4])
{
    uint32_t k32;
    uint64_t k64, w;
    size_t i = 0;

    if (n > 32) {
        ws_mask(p, p, n, key, 0);
        return;
    }
    memcpy(&k32, key, 4);
    k64 = (uint64_t)k32 << 32 | k32;    /* key, key: either byte order */
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        w ^= k64;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[i & 3];
}

/* Whether p[0..n) is complete, valid UTF-8 (RFC 3629). Short texts are
 * mostly ASCII: that is checked here, 8 bytes at a time; at the first
 * byte >= 0x80 the validator takes over. */
static int is_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    uint64_t w;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080u)
            return ws_utf8_check(p, n) == WS_OK;
    }
    for (; i < n; i++)
        if (p[i] & 0x80u)
            return ws_utf8_check(p, n) == WS_OK;
    return 1;
}

/*
 * The fast path. Most frames are small, arrive whole and are messages by
 * themselves. Such a frame at p[0..n), with no partial header before it
 * and no message in progress, is taken here in one go: header decoded
 * inline, payload unmasked and (text) validated at once, callbacks run in
 * the general path's order with the same state before each, so that a
 * pause or an error in any of them leaves things as the general path
 * would. It takes (RFC 6455 5.2):
 *
 *   byte 0   FIN = 1, RSV1-3 = 0, opcode 1 (text) or 2 (binary)
 *   byte 1   MASK = 1 from a client, 0 from a server (5.1), and a 7-bit
 *            length 1..125, or 126 and a 16-bit length in bytes 2-3
 *   then     the 4-byte masking key if MASK (5.3), and the whole payload,
 *            within max_frame (which is <= max_message)
 *
 * Anything else, and text that is not valid UTF-8, is left untouched with
 * *used = 0 for the general path (read_header and on), which then decides
 * everything about it: which error, and where.
 */
static int whole_frame(struct ws_conn *c, uint8_t *p, size_t n, size_t *used)
{
    static const uint8_t no_key[4];
    const struct ws_callbacks *cb = c->cb;
    unsigned opcode = p[0] & 0x0Fu, masked = n > 1 && (p[1] & 0x80u);
    size_t hl = 2, size = n > 1 ? p[1] & 0x7Fu : 0; /* header, payload */
    const uint8_t *key = no_key;
    uint8_t *payload;
    int direct, rv;

    *used = 0;
    if ((p[0] & 0xF0u) != 0x80u || opcode - 1u > 1u || size == 0 ||
        size == 127 || masked == (unsigned)is_client(c) ||
        c->msg_opcode != 0)
        return WS_OK;
    if (size == 126) {
        if (n < 4)
            return WS_OK;
        size = (size_t)p[2] << 8 | p[3];
        hl = 4;
    }
    if (masked) {
        key = p + hl;
        hl += 4;
    }
    if (n < hl || n - hl < size || size > c->max_frame)
        return WS_OK;

    payload = p + hl;
    if (masked)
        unmask(payload, size, key);
    if (opcode == WS_OPCODE_TEXT && !is_utf8(payload, size)) {
        if (masked)     /* masked again: left as it came */
            ws_mask(payload, payload, size, key, 0);
        return WS_OK;
    }

    /* As read_payload(): only on_message wants it, from the input. */
    direct = whole_messages(c) && cb->on_message_data == NULL &&
             cb->on_message_end == NULL;
    if (!direct || cb->on_message_begin != NULL) {
        /* As start_frame(), whose checks this frame passed above. */
        enter_payload(c, 1, opcode, masked, key, size);
        c->u.rx.msg_frames = 1;
        rv = begin_message(c, opcode);
        if (rv != WS_OK) {
            /* Paused or failed before the payload: it stays unread. */
            if (masked)
                ws_mask(payload, payload, size, key, 0);
            *used = hl;
            return rv;
        }
    }
    *used = hl + size;
    if (direct)     /* (the frame fields of u.rx mean nothing in RX_HEADER) */
        return deliver_direct(c, opcode, payload, size);

    /* As read_payload() then finish_frame(): the frame is all read, the
     * message complete (the text was checked whole). */
    c->u.rx.frame_off = size;
    c->u.rx.frame_left = 0;
    rv = deliver_data(c, payload, size);
    if (rv != WS_OK)
        return rv;
    c->rx_state = RX_MSG_END;
    return complete_message(c);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

/* see ws.h */
int ws_conn_init(struct ws_conn *c, const struct ws_config *cfg,
                 const struct ws_callbacks *cb, void *user, uint8_t *buf,
                 size_t buflen)
{
    static const struct ws_config server_defaults; /* role 0: server */
    uint64_t max_message, max_frame;
    size_t w;
    int rv;

    if (c == NULL || cb == NULL || cb->send == NULL || buf == NULL ||
        buflen < WS_CONN_BUF_MIN || over_32_bits(buflen))
        return WS_ERR_INVALID_ARG;
    memset(c, 0, sizeof *c);
    if (cfg == NULL)
        cfg = &server_defaults;
    if (cfg->role != WS_ROLE_SERVER && cfg->role != WS_ROLE_CLIENT)
        return WS_ERR_INVALID_ARG;
    if (cb->on_message && cfg->message_buf == NULL && cfg->alloc == NULL)
        return WS_ERR_INVALID_ARG;
    if (cfg->alloc && cfg->alloc->realloc == NULL)
        return WS_ERR_INVALID_ARG;
    max_message = cfg->max_message ? cfg->max_message
                                   : WS_DEFAULT_MAX_MESSAGE;
    if (cb->on_message && cfg->message_buf &&
        max_message > cfg->message_buf_len)
        max_message = cfg->message_buf_len;
#if SIZE_MAX < UINT64_MAX
    /* A whole message is handed over as one size_t-long buffer: on a
     * 32-bit build a longer one (say max_message = 8 GiB through alloc)
     * could never be delivered, and its length would be truncated. Refuse
     * it at the frame header with 1009 instead. Streaming receive keeps
     * the 64-bit limit: its lengths stay uint64_t end to end. */
    if (cb->on_message && max_message > SIZE_MAX)
        max_message = SIZE_MAX;
#endif
    max_frame = cfg->max_frame;
    if (max_frame == 0 || max_frame > max_message)
        max_frame = max_message;
    c->max_message = max_message;
    c->max_frame = max_frame;
    c->max_fragments = cfg->max_fragments ? cfg->max_fragments
                                          : WS_DEFAULT_MAX_FRAGMENTS;
    c->role = (uint8_t)cfg->role;
    c->flags = (uint8_t)cfg->flags;
    c->allowed_rsv = (uint8_t)(cfg->allowed_rsv & 7u);
    c->alloc = cfg->alloc;
    c->cb = cb;
    c->user = user;
    c->buf = buf;
    c->buflen = (uint32_t)buflen;
    c->close_code = WS_CLOSE_ABNORMAL;
    if (cfg->message_buf) {
        c->msg_buf = cfg->message_buf;
        c->msg_cap = cfg->message_buf_len;
        c->fixed_msg_buf = 1;
    }

    if (cfg->flags & WS_CONFIG_START_OPEN) {
        c->state = WS_STATE_OPEN;
        c->opened = 1;
        return WS_OK;
    }
    c->state = WS_STATE_CONNECTING;
    c->u.hs.max_size = cfg->max_handshake ? cfg->max_handshake
                                          : WS_DEFAULT_MAX_HANDSHAKE;
    c->u.hs.max_headers = cfg->max_headers ? cfg->max_headers
                                           : WS_DEFAULT_MAX_HEADERS;
    if (!is_client(c)) {
        c->u.hs.text = cfg->response_headers;
        return WS_OK;
    }

    /* Client: send the Upgrade request now; the response is gathered
     * after it in buf. */
    c->u.hs.text = cfg->request.protocols;
    rv = ws_handshake_write_request((char *)buf, buflen, &cfg->request,
                                    c->u.hs.key, &w);
    if (rv != WS_OK) {
        c->state = WS_STATE_CLOSED;
        c->error = rv == WS_ERR_NO_SPACE ? WS_ERR_INVALID_ARG : rv;
        return c->error;
    }
    if (buflen - w < 256) {
        c->state = WS_STATE_CLOSED;
        c->error = WS_ERR_INVALID_ARG;
        return c->error;
    }
    c->out_tail = (uint32_t)w;
    c->u.hs.base = (uint32_t)w;
    rv = flush_output(c);
    return rv == WS_AGAIN ? WS_OK : rv;
}

/* see ws.h */
void ws_conn_reset(struct ws_conn *c)
{
    if (c == NULL)
        return;
    if (c->alloc && c->msg_buf && !c->fixed_msg_buf)
        (void)c->alloc->realloc(c->alloc->ctx, c->msg_buf, c->msg_cap, 0);
    c->msg_buf = NULL;
    c->msg_cap = 0;
    c->state = WS_STATE_CLOSED;
    c->rx_state = RX_IGNORE;
    c->close_sent = 1;
    c->close_notified = 1;
    drop_output(c);
}

/* Read payload from data[*off..len); if that completes the frame, finish
 * it now rather than on the next turn of the feed loop (the same steps,
 * fewer dispatches per frame). */
static int payload_step(struct ws_conn *c, uint8_t *data, size_t len,
                        size_t *off)
{
    size_t used;
    int rv = read_payload(c, data + *off, len - *off, &used);

    *off += used;
    if (rv == WS_OK && c->rx_state == RX_PAYLOAD && c->u.rx.frame_left == 0)
        rv = finish_frame(c);
    return rv;
}

/* see ws.h */
int ws_conn_feed(struct ws_conn *c, uint8_t *data, size_t len,
                 size_t *consumed)
{
    size_t off = 0, used;
    int rv = WS_OK;

    if (consumed)
        *consumed = 0;
    if (c == NULL || consumed == NULL || (data == NULL && len > 0))
        return WS_ERR_INVALID_ARG;
    if (c->in_callback)
        return WS_ERR_BAD_STATE;
    if (c->error != 0)
        return c->error;

    if (c->state == WS_STATE_CONNECTING) {
        rv = feed_handshake(c, data, len, &used);
        off = used;
        if (rv == WS_INCOMPLETE)
            rv = WS_OK;
        if (rv != WS_OK || c->state == WS_STATE_CONNECTING) {
            *consumed = off;
            return rv;
        }
    }

    for (;;) {
        switch (c->rx_state) {
        case RX_PAYLOAD:
            if (c->u.rx.frame_left == 0) {
                rv = finish_frame(c);
                break;
            }
            if (off == len)
                break;
            rv = payload_step(c, data, len, &off);
            break;
        case RX_MSG_END:
            rv = complete_message(c);
            break;
        case RX_MSG_DELIVER:
            rv = deliver_message(c);
            break;
        case RX_IGNORE:
            off = len;          /* RFC 6455 5.5.1: nothing after close */
            break;
        default:
            if (off == len)
                break;
            if (c->u.rx.hdr_have == 0) {
                rv = whole_frame(c, data + off, len - off, &used);
                off += used;
                if (used > 0)
                    break;
            }
            rv = read_header(c, data + off, len - off, &used);
            off += used;
            /* The payload usually follows in the same input: go on with
             * it at once (same steps as the next turn of the loop). */
            if (rv == WS_OK && c->rx_state == RX_PAYLOAD &&
                c->u.rx.frame_left > 0 && off < len)
                rv = payload_step(c, data, len, &off);
            break;
        }
        if (rv != WS_OK)
            break;
        if (off == len && (c->rx_state == RX_HEADER ||
                           c->rx_state == RX_IGNORE ||
                           (c->rx_state == RX_PAYLOAD &&
                            c->u.rx.frame_left > 0)))
            break;
    }
    *consumed = off;
    return rv;
}

/* Common checks before sending anything. */
static int check_can_send(const struct ws_conn *c)
{
    if (c == NULL)
        return WS_ERR_INVALID_ARG;
    if (c->in_send)
        return WS_ERR_BAD_STATE;
    if (c->error != 0)
        return c->error;
    if (c->state == WS_STATE_CONNECTING)
        return WS_ERR_BAD_STATE;
    if (c->close_sent || c->state == WS_STATE_CLOSED)
        return WS_ERR_CLOSED;
    return WS_OK;
}

/* see ws.h */
int ws_conn_send_frame(struct ws_conn *c, unsigned opcode, int fin,
                       const void *p, size_t n)
{
    int rv = check_can_send(c);

    if (rv != WS_OK)
        return rv;
    if (p == NULL && n > 0)
        return WS_ERR_INVALID_ARG;
    if (n > 0 && (uint64_t)n >> 63)
        return WS_ERR_INVALID_ARG;
    /* RFC 6455 5.4: TEXT/BINARY opens a message, CONTINUATION goes on. */
    if (c->tx_opcode == 0 && opcode != WS_OPCODE_TEXT &&
        opcode != WS_OPCODE_BINARY)
        return opcode == WS_OPCODE_CONTINUATION ? WS_ERR_BAD_STATE
                                                : WS_ERR_INVALID_ARG;
    if (c->tx_opcode != 0 && opcode != WS_OPCODE_CONTINUATION)
        return WS_ERR_BAD_STATE;
    rv = queue_frame(c, fin ? 1u : 0u, opcode, p, n, 1);
    if (rv == WS_OK || rv == WS_PENDING) {
        if (fin)
            c->tx_opcode = 0;
        else if (c->tx_opcode == 0)
            c->tx_opcode = (uint8_t)opcode;
    }
    return rv;
}

/* One whole message as one frame. */
static int send_message(struct ws_conn *c, unsigned opcode, const void *p,
                        size_t n)
{
    int rv = check_can_send(c);

    if (rv != WS_OK)
        return rv;
    if (p == NULL && n > 0)
        return WS_ERR_INVALID_ARG;
    if (c->tx_opcode != 0)
        return WS_ERR_BAD_STATE;
    /* RFC 6455 5.6: text is UTF-8; never put invalid text on the wire. */
    if (opcode == WS_OPCODE_TEXT && ws_utf8_check(p, n) != WS_OK)
        return WS_ERR_INVALID_ARG;
    return queue_frame(c, 1, opcode, p, n, 1);
}

/* see ws.h */
int ws_conn_send_text(struct ws_conn *c, const char *p, size_t n)
{
    return send_message(c, WS_OPCODE_TEXT, p, n);
}

/* see ws.h */
int ws_conn_send_binary(struct ws_conn *c, const void *p, size_t n)
{
    return send_message(c, WS_OPCODE_BINARY, p, n);
}

static int send_control(struct ws_conn *c, unsigned opcode, const void *p,
                        size_t n)
{
    int rv = check_can_send(c);

    if (rv != WS_OK)
        return rv;
    if ((p == NULL && n > 0) || n > WS_CONTROL_PAYLOAD_MAX)
        return WS_ERR_INVALID_ARG;
    return queue_frame(c, 1, opcode, p, n, 0);
}

/* see ws.h */
int ws_conn_send_ping(struct ws_conn *c, const void *p, size_t n)
{
    return send_control(c, WS_OPCODE_PING, p, n);
}

/* see ws.h */
int ws_conn_send_pong(struct ws_conn *c, const void *p, size_t n)
{
    return send_control(c, WS_OPCODE_PONG, p, n);
}

/* see ws.h */
int ws_conn_close(struct ws_conn *c, unsigned code, const char *reason,
                  size_t n)
{
    int rv = check_can_send(c);

    if (rv != WS_OK)
        return rv;
    if (code == 0 && n > 0)
        return WS_ERR_INVALID_ARG;
    if (code != 0 && !ws_close_code_is_valid(code))
        return WS_ERR_INVALID_ARG;
    if (n > WS_CLOSE_REASON_MAX || (reason == NULL && n > 0) ||
        ws_utf8_check((const uint8_t *)reason, n) != WS_OK)
        return WS_ERR_INVALID_ARG;
    rv = send_close(c, code, reason, n);
    if (rv != WS_OK)
        return rv;
    c->state = WS_STATE_CLOSING;
    return WS_OK;
}

/* see ws.h */
int ws_conn_flush(struct ws_conn *c)
{
    if (c == NULL)
        return WS_ERR_INVALID_ARG;
    if (c->in_send)
        return WS_ERR_BAD_STATE;
    return flush_output(c);
}

/* see ws.h */
int ws_conn_select_protocol(struct ws_conn *c, const char *protocol)
{
    if (c == NULL || protocol == NULL)
        return WS_ERR_INVALID_ARG;
    if (c->state != WS_STATE_CONNECTING || c->u.hs.req == NULL)
        return WS_ERR_BAD_STATE;   /* only from on_request */
    if (protocol[0] == '\0' ||
        !ws_request_has_protocol(c->u.hs.req, protocol))
        return WS_ERR_INVALID_ARG;
    c->protocol = protocol;
    return WS_OK;
}

/* see ws.h */
int ws_conn_reject(struct ws_conn *c, unsigned http_status,
                   const char *reason)
{
    if (c == NULL || http_status < 400 || http_status > 599)
        return WS_ERR_INVALID_ARG;
    if (c->state != WS_STATE_CONNECTING || c->u.hs.req == NULL)
        return WS_ERR_BAD_STATE;
    c->u.hs.reject_status = (uint16_t)http_status;
    c->u.hs.reject_reason = reason;
    return WS_OK;
}

/* see ws.h */
int ws_conn_can_send(const struct ws_conn *c)
{
    int rv = check_can_send(c);

    if (rv != WS_OK)
        return rv;
    if (c->tx_opcode != 0)
        return WS_ERR_BAD_STATE;
    if (ws_conn_wants_flush(c))
        return WS_AGAIN;
    return WS_OK;
}

/* see ws.h */
enum ws_state ws_conn_get_state(const struct ws_conn *c)
{
    return (enum ws_state)c->state;
}

/* see ws.h */
int ws_conn_is_open(const struct ws_conn *c)
{
    return c->state == WS_STATE_OPEN;
}

/* see ws.h */
int ws_conn_is_closed(const struct ws_conn *c)
{
    return c->state == WS_STATE_CLOSED;
}

/* see ws.h */
int ws_conn_wants_flush(const struct ws_conn *c)
{
    return !c->transport_failed &&
           (out_pending(c) > 0 || c->pin != NULL || c->slot_opcode != 0);
}

/* see ws.h */
size_t ws_conn_get_buffered(const struct ws_conn *c)
{
    size_t n = out_pending(c) + c->pin_len;

    if (c->slot_opcode)
        n += c->slot_len + 2u;
    return n;
}

/* see ws.h */
unsigned ws_conn_get_close_code(const struct ws_conn *c)
{
    return c->close_code;
}

/* see ws.h */
int ws_conn_get_error(const struct ws_conn *c)
{
    return c->error;
}

/* see ws.h */
const char *ws_conn_get_reason(const struct ws_conn *c)
{
    return c->reason ? c->reason : "";
}

/* see ws.h */
const char *ws_conn_get_protocol(const struct ws_conn *c)
{
    return c->protocol ? c->protocol : "";
}

/* see ws.h */
void *ws_conn_get_user(const struct ws_conn *c)
{
    return c->user;
}

/* see ws.h */
void ws_conn_set_user(struct ws_conn *c, void *user)
{
    c->user = user;
}

/* see ws.h */
enum ws_role ws_conn_get_role(const struct ws_conn *c)
{
    return (enum ws_role)c->role;
}

/* Bytes of a control frame's payload gathered in the reserve so far. */
static size_t ctrl_gathered(const struct ws_conn *c)
{
    if (c->state == WS_STATE_CONNECTING || c->rx_state != RX_PAYLOAD ||
        !(c->u.rx.opcode & 0x8u))
        return 0;
    return (size_t)c->u.rx.frame_off;
}

/* see ws.h */
int ws_conn_buffer_busy(const struct ws_conn *c)
{
    if (is_client(c) || out_pending(c) > 0 || c->slot_opcode != 0 ||
        ctrl_gathered(c) > 0)
        return 1;
    return c->state == WS_STATE_CONNECTING && c->u.hs.len > 0;
}

/* see ws.h */
int ws_conn_set_buffer(struct ws_conn *c, uint8_t *buf, size_t len)
{
    uint8_t *old = c ? c->buf : NULL;
    size_t n, reserve;

    if (c == NULL || buf == NULL || len < WS_CONN_BUF_MIN ||
        over_32_bits(len))
        return WS_ERR_INVALID_ARG;
    if (c->in_callback)
        return WS_ERR_BAD_STATE;
    if (buf == old && len == c->buflen)
        return WS_OK;
    if (c->state == WS_STATE_CONNECTING) {
        /* The handshake bytes and the output keep their offsets. */
        n = c->u.hs.base + c->u.hs.len;
        if (n < c->out_tail)
            n = c->out_tail;
        if (n > len)
            return WS_ERR_NO_SPACE;
        memcpy(buf, old, n);
        c->buf = buf;
        c->buflen = (uint32_t)len;
        return WS_OK;
    }
    /* Open: pending output to the front, the reserve to the new end. */
    reserve = reserve_size(c);
    n = out_pending(c);
    if (n > len - reserve)
        return WS_ERR_NO_SPACE;
    memcpy(buf, old + c->out_head, n);
    memcpy(buf + len - reserve, old + c->buflen - reserve, reserve);
    c->out_head = 0;
    c->out_tail = (uint32_t)n;
    c->buf = buf;
    c->buflen = (uint32_t)len;
    if (c->protocol && is_client(c))
        c->protocol = proto_area(c);
    return WS_OK;
}

/* see ws.h */
size_t ws_conn_size(void)
{
    return sizeof(struct ws_conn);
}
