/*
 * test_conn.c - the connection state machine, one named test per rule of
 * RFC 6455 5.4, 5.5, 7 and 8.1: each checks the events delivered, the close
 * code SENT to the peer and the final state. Every input goes through
 * feed_every_way(): whole, one byte at a time and split in two at every
 * position, and all runs must agree (split-invariance).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- the recorder: callbacks write an event log ------------------------ */

struct rec {
    struct bytes log;        /* events, in order */
    struct bytes out;        /* bytes the connection sent */
    size_t accept;           /* bytes the sink takes per call (0: all) */
    int block;               /* 1: the sink takes nothing */
    int use_quota;           /* 1: take at most quota bytes in all */
    size_t quota;
    int fail_send;           /* 1: the sink reports failure */
    int cb_error;            /* return this from on_message_data etc. */
    int pause;               /* return WS_PAUSED from data events */
    int closes;              /* on_close calls */
    int after_close;         /* callbacks seen after on_close */
    unsigned close_code;
    int feed_in_cb;          /* status of ws_conn_feed called from a cb */
    int iov_zero_copy;       /* a payload iov pointed at caller memory */
    const uint8_t *watch;    /* ... this memory */
};

static int note_event(struct rec *r)
{
    if (r->closes)
        r->after_close++;
    return r->cb_error ? r->cb_error : r->pause ? WS_PAUSED : 0;
}

static int rec_send(struct ws_conn *c, const struct ws_iov *iov, size_t cnt,
                    size_t *written, void *user)
{
    struct rec *r = user;
    size_t i, budget = r->accept ? r->accept : SIZE_MAX, w = 0;

    (void)c;
    if (r->fail_send)
        return -1;
    if (r->block) {
        *written = 0;
        return 0;
    }
    if (r->use_quota && r->quota < budget)
        budget = r->quota;
    for (i = 0; i < cnt && budget > 0; i++) {
        size_t k = iov[i].len < budget ? iov[i].len : budget;
        if (r->watch && iov[i].base == r->watch)
            r->iov_zero_copy = 1;
        bytes_add(&r->out, iov[i].base, k);
        w += k;
        budget -= k;
    }
    *written = w;
    if (r->use_quota)
        r->quota -= w;
    return 0;
}

static int rec_open(struct ws_conn *c, void *user)
{
    (void)c;
    bytes_byte(&((struct rec *)user)->log, 'o');
    return 0;
}

static int rec_begin(struct ws_conn *c, unsigned opcode, void *user)
{
    struct rec *r = user;
    (void)c;
    bytes_byte(&r->log, 'B');
    bytes_byte(&r->log, opcode);
    return note_event(r);
}

/* Data pieces differ by split, so the log gets the bytes alone (they
 * concatenate to the same string however the input was cut). */
static int rec_data(struct ws_conn *c, const uint8_t *p, size_t n, void *user)
{
    struct rec *r = user;
    uint8_t dummy = 0;
    size_t used;

    r->feed_in_cb = ws_conn_feed(c, &dummy, 1, &used);
    bytes_add(&r->log, p, n);
    return note_event(r);
}

static int rec_end(struct ws_conn *c, void *user)
{
    struct rec *r = user;
    (void)c;
    bytes_byte(&r->log, 'E');
    return note_event(r);
}

static int rec_message(struct ws_conn *c, unsigned opcode, const uint8_t *p,
                       size_t n, void *user)
{
    struct rec *r = user;
    char len[32];
    (void)c;
    bytes_byte(&r->log, 'M');
    bytes_byte(&r->log, opcode);
    snprintf(len, sizeof len, "%zu:", n);
    bytes_add(&r->log, len, strlen(len));
    bytes_add(&r->log, p, n);
    return note_event(r);
}

static int rec_ping(struct ws_conn *c, const uint8_t *p, size_t n, void *user)
{
    struct rec *r = user;
    (void)c;
    bytes_byte(&r->log, 'I');
    bytes_add(&r->log, p, n);
    bytes_byte(&r->log, '|');
    return note_event(r);
}

static int rec_pong(struct ws_conn *c, const uint8_t *p, size_t n, void *user)
{
    struct rec *r = user;
    (void)c;
    bytes_byte(&r->log, 'O');
    bytes_add(&r->log, p, n);
    bytes_byte(&r->log, '|');
    return note_event(r);
}

static int rec_close(struct ws_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    struct rec *r = user;
    char buf[32];
    (void)c;
    if (r->closes)
        r->after_close++;
    r->closes++;
    r->close_code = code;
    snprintf(buf, sizeof buf, "C%u:", code);
    bytes_add(&r->log, buf, strlen(buf));
    bytes_add(&r->log, reason, n);
    return 0;
}

static const struct ws_callbacks streaming_cb = {
    .send = rec_send,
    .on_open = rec_open,
    .on_message_begin = rec_begin,
    .on_message_data = rec_data,
    .on_message_end = rec_end,
    .on_ping = rec_ping,
    .on_pong = rec_pong,
    .on_close = rec_close,
};

static const struct ws_callbacks whole_cb = {
    .send = rec_send,
    .on_open = rec_open,
    .on_message = rec_message,
    .on_ping = rec_ping,
    .on_pong = rec_pong,
    .on_close = rec_close,
};

/* ---- decoding what the connection sent --------------------------------- */

/* Turn output frames into "opcode payload|" text (unmasked), so client
 * output (random masking keys) compares equal across runs. Returns the
 * number of frames; *last_close is the code of the last close frame sent
 * (1005 if it had none, 0 if none was sent). */
static int decode_output(const struct bytes *out, int want_masked,
                         struct bytes *canon, unsigned *last_close,
                         int *close_frames)
{
    size_t off = 0;
    int frames = 0;

    *last_close = 0;
    *close_frames = 0;
    if (out->n >= 5 && memcmp(out->p, "HTTP/", 5) == 0) {
        /* A server's handshake answer: keep its status line, then the
         * frames that follow the blank line. */
        size_t eol = 0, end = 0;
        while (eol < out->n && out->p[eol] != '\r')
            eol++;
        while (end + 3 < out->n && memcmp(out->p + end, "\r\n\r\n", 4))
            end++;
        if (canon) {
            bytes_add(canon, out->p, eol);
            bytes_byte(canon, '|');
        }
        off = end + 4 <= out->n ? end + 4 : out->n;
        if (out->n - off > 0 && memcmp(out->p + 9, "101", 3) != 0)
            off = out->n;       /* an error answer's body is text */
    }
    while (off < out->n) {
        struct ws_frame f;
        size_t used;
        uint8_t *payload;

        if (ws_frame_decode_header(&f, out->p + off, out->n - off, &used,
                                   NULL) != WS_OK ||
            f.length > out->n - off - used) {
            test_fail(__FILE__, __LINE__, "output", "is not a frame stream");
            return frames;
        }
        EXPECT_EQ(f.masked, want_masked);
        payload = malloc((size_t)f.length + 1);
        ws_mask(payload, out->p + off + used, (size_t)f.length, f.mask, 0);
        if (canon) {
            bytes_byte(canon, f.opcode | (f.fin ? 0x80u : 0));
            bytes_add(canon, payload, (size_t)f.length);
            bytes_byte(canon, '|');
        }
        if (f.opcode == WS_OPCODE_CLOSE) {
            (*close_frames)++;
            *last_close = f.length >= 2
                              ? (unsigned)payload[0] << 8 | payload[1]
                              : WS_CLOSE_NO_STATUS;
        }
        free(payload);
        off += used + (size_t)f.length;
        frames++;
    }
    return frames;
}

/* ---- feed_every_way ------------------------------------------------------ */

struct outcome {
    int status;              /* last status from ws_conn_feed */
    int error;               /* ws_conn_get_error */
    int state;
    unsigned close_sent;     /* code of the close frame we sent, or 0 */
    int close_frames;        /* how many close frames we sent */
    int closes;              /* on_close calls */
    int after_close;
    unsigned peer_code;      /* ws_conn_get_close_code */
    struct bytes log;
    struct bytes canon;
};

static void outcome_free(struct outcome *o)
{
    bytes_free(&o->log);
    bytes_free(&o->canon);
}

struct setup {
    unsigned role;
    const struct ws_callbacks *cb;
    uint64_t max_message, max_frame;
    uint32_t max_fragments;
    size_t message_buf_len;  /* 0: 1 MiB */
    int handshake;           /* 1: start CONNECTING (no START_OPEN) */
};

/* Before each piece of input, a sharing run moves the connection to a
 * buffer shared with "other connections" (then scribbled over, as they
 * would) whenever ws_conn_buffer_busy() allows it, and otherwise to one of
 * two buffers of its own (of different sizes), so every move copies. */
static void share_buffer(struct ws_conn *c, unsigned turn)
{
    static uint8_t shared[8192], own_a[8192], own_b[6000];

    if (!ws_conn_buffer_busy(c)) {
        EXPECT_EQ(ws_conn_set_buffer(c, shared, sizeof shared), WS_OK);
        memset(shared, 0xA5, sizeof shared);
    } else if (turn & 1) {
        EXPECT_EQ(ws_conn_set_buffer(c, own_a, sizeof own_a), WS_OK);
    } else {
        EXPECT_EQ(ws_conn_set_buffer(c, own_b, sizeof own_b), WS_OK);
    }
}

static void run_once(const struct setup *s, const uint8_t *in, size_t n,
                     const size_t *cuts, size_t ncuts, int share,
                     struct outcome *o)
{
    static uint8_t buf[8192];
    static uint8_t msgbuf[1 << 20];
    struct ws_config cfg;
    struct ws_conn c;
    struct rec r;
    uint8_t *copy = malloc(n ? n : 1);
    size_t i, start = 0;

    memset(&cfg, 0, sizeof cfg);
    memset(&r, 0, sizeof r);
    memset(o, 0, sizeof *o);
    cfg.role = s->role;
    cfg.flags = s->handshake ? 0 : WS_CONFIG_START_OPEN;
    cfg.max_message = s->max_message;
    cfg.max_frame = s->max_frame;
    cfg.max_fragments = s->max_fragments;
    cfg.message_buf = msgbuf;
    cfg.message_buf_len = s->message_buf_len ? s->message_buf_len
                                             : sizeof msgbuf;
    memcpy(copy, in, n);
    EXPECT_EQ(ws_conn_init(&c, &cfg, s->cb, &r, buf, sizeof buf), WS_OK);
    o->status = WS_OK;
    for (i = 0; i <= ncuts && o->status == WS_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : n, used = 0;
        if (share)
            share_buffer(&c, (unsigned)i);
        o->status = ws_conn_feed(&c, copy + start, end - start, &used);
        EXPECT_TRUE(used <= end - start);
        if (o->status == WS_OK)
            EXPECT_EQ(used, end - start);
        start = end;
    }
    o->error = ws_conn_get_error(&c);
    o->state = (int)ws_conn_get_state(&c);
    o->peer_code = ws_conn_get_close_code(&c);
    o->closes = r.closes;
    o->after_close = r.after_close;
    o->log = r.log;
    decode_output(&r.out, s->role == WS_ROLE_CLIENT, &o->canon,
                  &o->close_sent, &o->close_frames);
    bytes_free(&r.out);
    ws_conn_reset(&c);
    free(copy);
}

static int outcome_same(const struct outcome *a, const struct outcome *b)
{
    return a->status == b->status && a->error == b->error &&
           a->state == b->state && a->close_sent == b->close_sent &&
           a->close_frames == b->close_frames && a->closes == b->closes &&
           a->peer_code == b->peer_code && a->log.n == b->log.n &&
           (a->log.n == 0 || memcmp(a->log.p, b->log.p, a->log.n) == 0) &&
           a->canon.n == b->canon.n &&
           (a->canon.n == 0 || memcmp(a->canon.p, b->canon.p, a->canon.n) == 0);
}

/* Feed in whole, byte by byte (also with the buffer shared between
 * pieces), and (for inputs up to 300 bytes) split in two at every
 * position; all must agree. Returns the whole-input outcome. */
static void feed_every_way(const struct setup *s, const uint8_t *in, size_t n,
                           struct outcome *whole)
{
    struct outcome o;
    size_t *cuts = calloc(n ? n : 1, sizeof *cuts), k;

    run_once(s, in, n, NULL, 0, 0, whole);
    for (k = 0; k + 1 < n; k++)
        cuts[k] = k + 1;
    run_once(s, in, n, cuts, n ? n - 1 : 0, 0, &o);
    EXPECT_TRUE(outcome_same(whole, &o));
    outcome_free(&o);
    run_once(s, in, n, cuts, n ? n - 1 : 0, 1, &o);
    EXPECT_TRUE(outcome_same(whole, &o));
    outcome_free(&o);
    for (k = 1; n <= 300 && k < n; k++) {
        run_once(s, in, n, &k, 1, 0, &o);
        if (!outcome_same(whole, &o)) {
            test_note("split at %zu differs: status %d/%d state %d/%d "
                      "close %u/%u log %zu/%zu canon %zu/%zu", k,
                      whole->status, o.status, whole->state, o.state,
                      whole->close_sent, o.close_sent, whole->log.n, o.log.n,
                      whole->canon.n, o.canon.n);
            EXPECT_TRUE(outcome_same(whole, &o));
        }
        outcome_free(&o);
    }
    free(cuts);
    EXPECT_EQ(whole->after_close, 0);   /* on_close is the last callback */
    EXPECT_TRUE(whole->closes <= 1);
}

static const struct setup server_streaming = {.role = WS_ROLE_SERVER,
                                              .cb = &streaming_cb};
static const struct setup client_streaming = {.role = WS_ROLE_CLIENT,
                                              .cb = &streaming_cb};
static const struct setup server_whole = {.role = WS_ROLE_SERVER,
                                          .cb = &whole_cb};

/* Expect the connection to have failed with status, sending close code. */
static void expect_failure(const struct setup *s, const uint8_t *in, size_t n,
                           int status, unsigned code)
{
    struct outcome o;

    feed_every_way(s, in, n, &o);
    EXPECT_EQ(o.status, status);
    EXPECT_EQ(o.error, status);
    EXPECT_EQ(o.state, WS_STATE_CLOSED);
    EXPECT_EQ(o.close_sent, code);
    EXPECT_EQ(o.close_frames, 1);       /* exactly one close frame */
    EXPECT_EQ(o.closes, 1);             /* on_close ran once */
    outcome_free(&o);
}

/* Build a frame into b (masked with a fixed key if mask). */
static void frame(struct bytes *b, unsigned first_byte, int mask,
                  const void *payload, size_t n)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    struct ws_frame f;
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hl, at;

    memset(&f, 0, sizeof f);
    f.fin = first_byte >> 7;
    f.rsv = (first_byte >> 4) & 7;
    f.opcode = first_byte & 0xF;
    f.masked = (unsigned)mask;
    memcpy(f.mask, key, 4);
    f.length = n;
    if (ws_frame_encode_header(hdr, sizeof hdr, &f, &hl) != WS_OK) {
        /* for deliberately bad control frames: encode by hand */
        hdr[0] = (uint8_t)first_byte;
        hdr[1] = (uint8_t)((mask ? 0x80 : 0) | (n < 126 ? n : 126));
        hl = 2;
        if (n >= 126) {
            hdr[2] = (uint8_t)(n >> 8);
            hdr[3] = (uint8_t)n;
            hl = 4;
        }
        if (mask) {
            memcpy(hdr + hl, key, 4);
            hl += 4;
        }
    }
    bytes_add(b, hdr, hl);
    at = b->n;
    bytes_add(b, payload, n);
    if (mask)
        ws_mask(b->p + at, b->p + at, n, key, 0);
}

/* A close frame payload: code + reason. */
static void close_frame(struct bytes *b, int mask, unsigned code,
                        const char *reason, size_t rn)
{
    uint8_t p[WS_CONTROL_PAYLOAD_MAX + 2];

    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, rn);
    frame(b, 0x88, mask, p, 2 + rn);
}

/* ---- RFC 6455 5.7 examples ---------------------------------------------- */

void test_conn_rfc_masked_hello_to_server(void)
{
    static const uint8_t masked_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct outcome o;

    feed_every_way(&server_streaming, masked_hello, sizeof masked_hello, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_EQ(o.state, WS_STATE_OPEN);
    EXPECT_MEM(o.log.p, o.log.n, "B\x01HelloE", 8);
    EXPECT_EQ(o.canon.n, 0);
    outcome_free(&o);
    feed_every_way(&server_whole, masked_hello, sizeof masked_hello, &o);
    EXPECT_MEM(o.log.p, o.log.n, "M\x01" "5:Hello", 9);
    outcome_free(&o);
}

void test_conn_rfc_unmasked_hello_to_client(void)
{
    static const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct outcome o;

    feed_every_way(&client_streaming, hello, sizeof hello, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_MEM(o.log.p, o.log.n, "B\x01HelloE", 8);
    outcome_free(&o);
}

void test_conn_rfc_fragmented_hello(void)
{
    static const uint8_t frags[] = {0x01, 0x03, 0x48, 0x65, 0x6c,
                                    0x80, 0x02, 0x6c, 0x6f};
    struct setup whole_client = server_whole;
    struct outcome o;

    feed_every_way(&client_streaming, frags, sizeof frags, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_MEM(o.log.p, o.log.n, "B\x01HelloE", 8);
    outcome_free(&o);
    whole_client.role = WS_ROLE_CLIENT;
    feed_every_way(&whole_client, frags, sizeof frags, &o);
    EXPECT_MEM(o.log.p, o.log.n, "M\x01" "5:Hello", 9);
    outcome_free(&o);
}

/* RFC 6455 5.5.2/5.7: a ping "Hello" is answered by a pong "Hello". A
 * server's pong is the RFC's unmasked bytes exactly. */
void test_conn_ping_gets_pong_with_same_payload(void)
{
    static const uint8_t masked_ping[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct outcome o;

    feed_every_way(&server_streaming, masked_ping, sizeof masked_ping, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_MEM(o.log.p, o.log.n, "IHello|", 7);
    EXPECT_MEM(o.canon.p, o.canon.n, "\x8AHello|", 7);
    outcome_free(&o);
    /* A client's pong is masked (RFC 6455 5.3); decode_output checks. */
    feed_every_way(&client_streaming, ping, sizeof ping, &o);
    EXPECT_MEM(o.canon.p, o.canon.n, "\x8AHello|", 7);
    outcome_free(&o);
}

/* ws_conn_buffer_busy / ws_conn_set_buffer: what a connection keeps in
 * its buffer between calls (a ping read in pieces, output the sink did not
 * take) moves with it, and a buffer that cannot hold it is refused. */
void test_conn_set_buffer_moves_what_it_holds(void)
{
    static const uint8_t masked_ping[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static uint8_t a[4096], b[WS_CONN_BUF_MIN], d[2048], big[1000];
    struct ws_config cfg;
    struct ws_conn c;
    struct rec r;
    struct bytes canon = {0};
    uint8_t in[sizeof masked_ping];
    unsigned last_close;
    int closes;
    size_t used;

    memset(&cfg, 0, sizeof cfg);
    memset(&r, 0, sizeof r);
    memset(big, 'x', sizeof big);
    memcpy(in, masked_ping, sizeof in);
    cfg.flags = WS_CONFIG_START_OPEN;
    EXPECT_EQ(ws_conn_init(&c, &cfg, &streaming_cb, &r, a, sizeof a), WS_OK);
    EXPECT_EQ(ws_conn_buffer_busy(&c), 0);
    EXPECT_EQ(ws_conn_set_buffer(&c, b, WS_CONN_BUF_MIN - 1),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_set_buffer(&c, NULL, sizeof b), WS_ERR_INVALID_ARG);

    /* Header and 2 of the 5 payload bytes: the 2 are kept in the buffer. */
    EXPECT_EQ(ws_conn_feed(&c, in, 8, &used), WS_OK);
    EXPECT_EQ(used, 8);
    EXPECT_EQ(ws_conn_buffer_busy(&c), 1);
    EXPECT_EQ(ws_conn_set_buffer(&c, b, sizeof b), WS_OK);
    memset(a, 0xEE, sizeof a);
    /* The rest, with the sink blocked: the pong waits in the buffer. */
    r.block = 1;
    EXPECT_EQ(ws_conn_feed(&c, in + 8, sizeof in - 8, &used), WS_OK);
    EXPECT_MEM(r.log.p, r.log.n, "IHello|", 7);
    EXPECT_EQ(ws_conn_buffer_busy(&c), 1);
    /* 1000 bytes of output queue behind it (they fit in 2 KiB, not in
     * what the reserve leaves of 512 B). */
    EXPECT_EQ(ws_conn_set_buffer(&c, d, sizeof d), WS_OK);
    memset(b, 0xEE, sizeof b);
    EXPECT_EQ(ws_conn_send_binary(&c, big, sizeof big), WS_OK);
    EXPECT_EQ(ws_conn_set_buffer(&c, b, sizeof b), WS_ERR_NO_SPACE);
    EXPECT_EQ(ws_conn_set_buffer(&c, a, sizeof a), WS_OK);
    memset(d, 0xEE, sizeof d);
    r.block = 0;
    EXPECT_EQ(ws_conn_flush(&c), WS_OK);
    EXPECT_EQ(ws_conn_buffer_busy(&c), 0);
    EXPECT_EQ(decode_output(&r.out, 0, &canon, &last_close, &closes), 2);
    EXPECT_EQ(canon.n, 7 + 1002);
    EXPECT_MEM(canon.p, 7, "\x8AHello|", 7);
    EXPECT_EQ(canon.p[7], 0x82);
    EXPECT_TRUE(canon.n == 1009 && memcmp(canon.p + 8, big, 1000) == 0);
    bytes_free(&canon);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

/* Every ping gets its own pong (Autobahn 2.10). */
void test_conn_every_ping_answered(void)
{
    struct bytes in = {0};
    struct outcome o;
    int i;

    for (i = 0; i < 10; i++) {
        char p[3] = {'p', (char)('0' + i), 0};
        frame(&in, 0x89, 1, p, strlen(p));
    }
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_MEM(o.canon.p, o.canon.n,
               "\x8Ap0|\x8Ap1|\x8Ap2|\x8Ap3|\x8Ap4|\x8Ap5|\x8Ap6|\x8Ap7|"
               "\x8Ap8|\x8Ap9|", 40);
    outcome_free(&o);
    bytes_free(&in);
}

void test_conn_receives_rfc_256_and_64k_binary(void)
{
    static const uint8_t h256[] = {0x82, 0x7E, 0x01, 0x00};
    static const uint8_t h64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0};
    struct bytes in = {0};
    struct outcome o;
    uint8_t *data = malloc(65536);
    size_t i;

    for (i = 0; i < 65536; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    bytes_add(&in, h256, sizeof h256);
    bytes_add(&in, data, 256);
    bytes_add(&in, h64k, sizeof h64k);
    bytes_add(&in, data, 65536);
    {
        struct setup s = server_whole;
        s.role = WS_ROLE_CLIENT;
        run_once(&s, in.p, in.n, NULL, 0, 0, &o);
    }
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_EQ(o.log.n, 2 + 4 + 256 + 2 + 6 + 65536);
    EXPECT_MEM(o.log.p + 6, 256, data, 256);
    EXPECT_MEM(o.log.p + 6 + 256 + 8, 65536, data, 65536);
    outcome_free(&o);
    bytes_free(&in);
    free(data);
}

/* ---- frame rules: each fails with 1002 ----------------------------------- */

/* RFC 6455 5.1: "a server MUST close the connection upon receiving a frame
 * that is not masked" */
void test_conn_fails_unmasked_client_frame_1002(void)
{
    struct bytes in = {0};
    frame(&in, 0x81, 0, "Hello", 5);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
    bytes_free(&in);
}

/* RFC 6455 5.1: "a client MUST close a connection if it detects a masked
 * frame" */
void test_conn_fails_masked_server_frame_1002(void)
{
    struct bytes in = {0};
    frame(&in, 0x81, 1, "Hello", 5);
    expect_failure(&client_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
    bytes_free(&in);
}

/* RFC 6455 5.2: RSV1-3 MUST be 0 unless an extension was negotiated. */
void test_conn_fails_rsv_bits_1002(void)
{
    unsigned rsv;

    for (rsv = 1; rsv < 8; rsv++) {
        struct bytes in = {0};
        frame(&in, 0x81 | rsv << 4, 1, "Hello", 5);
        expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
        bytes_free(&in);
    }
}

/* RFC 6455 5.2: reserved opcodes 3-7, 11-15 -> fail. */
void test_conn_fails_reserved_opcodes_1002(void)
{
    unsigned op;

    for (op = 3; op < 16; op++) {
        struct bytes in = {0};
        if (op >= 8 && op <= 10)
            continue;
        frame(&in, 0x80 | op, 1, "", 0);
        expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
        bytes_free(&in);
    }
}

/* RFC 6455 5.5: control frames have payloads of at most 125 bytes. */
void test_conn_fails_long_ping_1002(void)
{
    uint8_t payload[126] = {0};
    struct bytes in = {0};

    frame(&in, 0x89, 1, payload, sizeof payload);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
    bytes_free(&in);
}

/* RFC 6455 5.5: control frames MUST NOT be fragmented. */
void test_conn_fails_fragmented_ping_1002(void)
{
    struct bytes in = {0};
    frame(&in, 0x09, 1, "x", 1);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
    bytes_free(&in);
}

/* RFC 6455 5.2: a 64-bit length with the most significant bit set. */
void test_conn_fails_64bit_length_top_bit_1002(void)
{
    static const uint8_t in[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1,
                                 1,    2,    3,    4};
    expect_failure(&server_streaming, in, sizeof in, WS_ERR_PROTOCOL, 1002);
}

/* RFC 6455 5.4: a continuation frame with nothing to continue. */
void test_conn_fails_orphan_continuation_1002(void)
{
    struct bytes in = {0};
    frame(&in, 0x80, 1, "lo", 2);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
    bytes_free(&in);
}

/* RFC 6455 5.4: a new data message inside a fragmented one. */
void test_conn_fails_data_inside_fragmented_message_1002(void)
{
    struct bytes in = {0};
    frame(&in, 0x01, 1, "Hel", 3);
    frame(&in, 0x81, 1, "new", 3);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
    bytes_free(&in);
}

/* RFC 6455 5.4: control frames MAY be injected between fragments. */
void test_conn_control_between_fragments(void)
{
    struct bytes in = {0};
    struct outcome o;

    frame(&in, 0x01, 1, "Hel", 3);
    frame(&in, 0x89, 1, "p", 1);
    frame(&in, 0x8A, 1, "q", 1);
    frame(&in, 0x00, 1, "", 0);
    frame(&in, 0x80, 1, "lo", 2);
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_MEM(o.log.p, o.log.n, "B\x01HelIp|Oq|loE", 14);
    EXPECT_MEM(o.canon.p, o.canon.n, "\x8Ap|", 3);
    outcome_free(&o);
    feed_every_way(&server_whole, in.p, in.n, &o);
    EXPECT_MEM(o.log.p, o.log.n, "Ip|Oq|M\x01" "5:Hello", 15);
    outcome_free(&o);
    bytes_free(&in);
}

/* ---- UTF-8: 1007, fail fast --------------------------------------------- */

/* RFC 6455 8.1: invalid UTF-8 in a text message -> 1007. */
void test_conn_fails_bad_utf8_1007(void)
{
    struct bytes in = {0};
    frame(&in, 0x81, 1, "ab\xC0\xAF", 4);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_BAD_UTF8, 1007);
    expect_failure(&server_whole, in.p, in.n, WS_ERR_BAD_UTF8, 1007);
    bytes_free(&in);
}

/* Fail fast: the connection fails at the first bad fragment, before the
 * message is complete (Autobahn 6.4.x). */
void test_conn_fails_bad_utf8_fast_across_fragments_1007(void)
{
    struct bytes in = {0};
    struct outcome o;

    /* "kosme" ED | A0 80 "edited": the bad byte opens fragment 2, and the
     * final fragment never arrives. */
    frame(&in, 0x01, 1, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED",
          12);
    frame(&in, 0x00, 1, "\xA0\x80" "edited", 8);
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_ERR_BAD_UTF8);
    EXPECT_EQ(o.close_sent, 1007);
    outcome_free(&o);
    bytes_free(&in);
}

/* RFC 6455 8.1: a text message ending inside a character -> 1007. */
void test_conn_fails_truncated_utf8_at_end_1007(void)
{
    struct bytes in = {0};
    frame(&in, 0x01, 1, "ab\xE2\x82", 4);
    frame(&in, 0x80, 1, "", 0);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_BAD_UTF8, 1007);
    bytes_free(&in);
}

/* A character split across fragments is fine. */
void test_conn_utf8_split_across_fragments_ok(void)
{
    struct bytes in = {0};
    struct outcome o;

    frame(&in, 0x01, 1, "\xE2", 1);
    frame(&in, 0x00, 1, "\x82", 1);
    frame(&in, 0x80, 1, "\xAC", 1);
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_MEM(o.log.p, o.log.n, "B\x01\xE2\x82\xAC" "E", 6);
    outcome_free(&o);
    bytes_free(&in);
}

/* Binary payloads are never UTF-8 checked. */
void test_conn_binary_not_utf8_checked(void)
{
    struct bytes in = {0};
    struct outcome o;

    frame(&in, 0x82, 1, "\xFF\xFE", 2);
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    outcome_free(&o);
    bytes_free(&in);
}

/* ---- limits: 1009 -------------------------------------------------------- */

void test_conn_fails_message_too_big_1009(void)
{
    struct setup s = server_streaming;
    uint8_t payload[101] = {0};
    struct bytes in = {0};

    s.max_message = 100;
    frame(&in, 0x82, 1, payload, 101);
    expect_failure(&s, in.p, in.n, WS_ERR_TOO_BIG, 1009);
    bytes_free(&in);

    /* The limit counts the whole message, over its fragments. */
    frame(&in, 0x02, 1, payload, 60);
    frame(&in, 0x80, 1, payload, 41);
    expect_failure(&s, in.p, in.n, WS_ERR_TOO_BIG, 1009);
    bytes_free(&in);
}

void test_conn_fails_frame_too_big_1009(void)
{
    struct setup s = server_streaming;
    uint8_t payload[50] = {0};
    struct bytes in = {0};
    struct outcome o;

    s.max_frame = 40;
    frame(&in, 0x02, 1, payload, 40);       /* 40 + 40: frames ok */
    frame(&in, 0x80, 1, payload, 40);
    feed_every_way(&s, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    outcome_free(&o);
    bytes_free(&in);
    frame(&in, 0x82, 1, payload, 41);
    expect_failure(&s, in.p, in.n, WS_ERR_TOO_BIG, 1009);
    bytes_free(&in);
}

/* A flood of empty fragments is bounded by max_fragments. */
void test_conn_fails_fragment_flood_1009(void)
{
    struct setup s = server_streaming;
    struct bytes in = {0};
    int i;

    s.max_fragments = 100;
    frame(&in, 0x02, 1, "", 0);
    for (i = 0; i < 200; i++)
        frame(&in, 0x00, 1, "", 0);
    expect_failure(&s, in.p, in.n, WS_ERR_TOO_BIG, 1009);
    bytes_free(&in);
}

/* The huge length is refused when the header arrives, not after. */
void test_conn_fails_huge_length_at_header_1009(void)
{
    static const uint8_t in[] = {0x82, 0xFF, 0x00, 0x00, 0x00, 0x10, 0, 0,
                                 0,    0,    1,    2,    3,    4};
    expect_failure(&server_streaming, in, sizeof in, WS_ERR_TOO_BIG, 1009);
}

/* Whole-message mode: a message larger than message_buf -> 1009. */
void test_conn_fails_message_over_buffer_1009(void)
{
    struct setup s = server_whole;
    uint8_t payload[200] = {0};
    struct bytes in = {0};

    s.message_buf_len = 128;
    frame(&in, 0x82, 1, payload, 129);
    expect_failure(&s, in.p, in.n, WS_ERR_TOO_BIG, 1009);
    bytes_free(&in);
}

/* ---- close handshake ------------------------------------------------------ */

/* RFC 6455 7.4: these codes are accepted; the reply echoes the code. */
void test_conn_close_valid_codes_echoed(void)
{
    static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                     1009, 1010, 1011, 1012, 1013, 1014,
                                     3000, 3999, 4000, 4999};
    size_t i;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct bytes in = {0};
        struct outcome o;
        char want[32];

        close_frame(&in, 1, codes[i], "bye", 3);
        feed_every_way(&server_streaming, in.p, in.n, &o);
        EXPECT_EQ(o.status, WS_OK);
        EXPECT_EQ(o.error, 0);
        EXPECT_EQ(o.state, WS_STATE_CLOSED);
        EXPECT_EQ(o.close_sent, codes[i]);
        EXPECT_EQ(o.peer_code, codes[i]);
        EXPECT_EQ(o.closes, 1);
        snprintf(want, sizeof want, "C%u:bye", codes[i]);
        EXPECT_MEM(o.log.p, o.log.n, want, strlen(want));
        outcome_free(&o);
        bytes_free(&in);
    }
}

/* RFC 6455 7.4.1/7.4.2: codes never valid on the wire -> 1002, with or
 * without a reason. */
void test_conn_close_invalid_codes_1002(void)
{
    static const unsigned codes[] = {0,    1,    999,  1004, 1005, 1006,
                                     1015, 1016, 1100, 2000, 2999, 5000,
                                     65535};
    size_t i;
    int with_reason;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        for (with_reason = 0; with_reason < 2; with_reason++) {
            struct bytes in = {0};
            close_frame(&in, 1, codes[i], "why", with_reason ? 3 : 0);
            expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL,
                           1002);
            bytes_free(&in);
        }
    }
}

/* RFC 6455 5.5.1: a close body is empty or starts with a 2-byte code. */
void test_conn_close_one_byte_payload_1002(void)
{
    struct bytes in = {0};
    frame(&in, 0x88, 1, "\x03", 1);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_PROTOCOL, 1002);
    bytes_free(&in);
}

/* RFC 6455 5.5.1: the reason is UTF-8 -> 1007 if not. */
void test_conn_close_reason_bad_utf8_1007(void)
{
    struct bytes in = {0};
    close_frame(&in, 1, 1000, "\xCE\xBA\xED\xA0\x80", 5);
    expect_failure(&server_streaming, in.p, in.n, WS_ERR_BAD_UTF8, 1007);
    bytes_free(&in);
}

/* An empty close: the peer's code is 1005; the reply carries no code. */
void test_conn_close_empty_payload(void)
{
    struct bytes in = {0};
    struct outcome o;

    frame(&in, 0x88, 1, "", 0);
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_EQ(o.state, WS_STATE_CLOSED);
    EXPECT_EQ(o.peer_code, 1005);
    EXPECT_EQ(o.close_sent, 1005);      /* i.e. no code in our frame */
    EXPECT_MEM(o.canon.p, o.canon.n, "\x88|", 2);
    outcome_free(&o);
    bytes_free(&in);
}

/* RFC 6455 5.5.1: nothing after a close frame is processed. */
void test_conn_ignores_data_after_close(void)
{
    struct bytes in = {0};
    struct outcome o;

    close_frame(&in, 1, 1000, "", 0);
    frame(&in, 0x81, 1, "late", 4);
    frame(&in, 0x89, 1, "p", 1);
    bytes_add(&in, "\xFF\xFF\xFF", 3);  /* even garbage */
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_MEM(o.log.p, o.log.n, "C1000:", 6);
    EXPECT_EQ(o.close_frames, 1);
    EXPECT_MEM(o.canon.p, o.canon.n, "\x88\x03\xE8|", 4);
    outcome_free(&o);
    bytes_free(&in);
}

/* A close arriving mid-message ends it; no message event follows. */
void test_conn_close_inside_fragmented_message(void)
{
    struct bytes in = {0};
    struct outcome o;

    frame(&in, 0x01, 1, "Hel", 3);
    close_frame(&in, 1, 1001, "", 0);
    feed_every_way(&server_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_MEM(o.log.p, o.log.n, "B\x01HelC1001:", 11);
    outcome_free(&o);
    bytes_free(&in);
}

static void open_conn(struct ws_conn *c, struct rec *r, unsigned role,
                      uint8_t *buf, size_t buflen)
{
    struct ws_config cfg;

    memset(r, 0, sizeof *r);
    memset(&cfg, 0, sizeof cfg);
    cfg.role = role;
    cfg.flags = WS_CONFIG_START_OPEN;
    EXPECT_EQ(ws_conn_init(c, &cfg, &streaming_cb, r, buf, buflen), WS_OK);
}

/* After a failure: the same status forever, no more output or events. */
void test_conn_failure_is_sticky(void)
{
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    size_t used, out_before;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    frame(&in, 0x81, 0, "x", 1);            /* unmasked: 1002 */
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_ERR_PROTOCOL);
    out_before = r.out.n;
    bytes_free(&in);
    frame(&in, 0x81, 1, "x", 1);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_ERR_PROTOCOL);
    EXPECT_EQ(used, 0);
    EXPECT_EQ(ws_conn_send_text(&c, "hi", 2), WS_ERR_PROTOCOL);
    EXPECT_EQ(ws_conn_close(&c, 1000, NULL, 0), WS_ERR_PROTOCOL);
    EXPECT_EQ(r.out.n, out_before);
    EXPECT_EQ(r.closes, 1);
    EXPECT_EQ(ws_conn_get_close_code(&c), 1006);
    EXPECT_TRUE(strlen(ws_conn_get_reason(&c)) > 0);
    bytes_free(&in);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

/* A callback that fails makes the connection fail with 1011. */
void test_conn_callback_error_1011(void)
{
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    unsigned code;
    int frames;
    size_t used;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    r.cb_error = -1;
    frame(&in, 0x81, 1, "x", 1);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_ERR_CALLBACK);
    decode_output(&r.out, 0, NULL, &code, &frames);
    EXPECT_EQ(code, 1011);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CLOSED);
    bytes_free(&in);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

/* WS_PAUSED stops ws_conn_feed right after the event; re-offering the rest
 * continues exactly where it stopped. */
void test_conn_pause_and_resume(void)
{
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    size_t off = 0, used;
    int rv, rounds = 0;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    r.pause = 1;
    frame(&in, 0x01, 1, "Hel", 3);
    frame(&in, 0x89, 1, "p", 1);
    frame(&in, 0x80, 1, "lo", 2);
    frame(&in, 0x82, 1, "", 0);
    do {
        rv = ws_conn_feed(&c, in.p + off, in.n - off, &used);
        off += used;
        rounds++;
    } while (rv == WS_PAUSED && rounds < 100);
    EXPECT_EQ(rv, WS_OK);
    EXPECT_EQ(off, in.n);
    /* begin, data, ping, data, end, begin(bin), end: one pause each */
    EXPECT_EQ(rounds, 8);
    EXPECT_MEM(r.log.p, r.log.n, "B\x01HelIp|loEB\x02" "E", 14);
    bytes_free(&in);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

/* Reentrancy: ws_conn_feed from a callback is refused (STYLE 4). */
void test_conn_feed_from_callback_refused(void)
{
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    size_t used;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    frame(&in, 0x81, 1, "x", 1);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_OK);
    EXPECT_EQ(r.feed_in_cb, WS_ERR_BAD_STATE);
    bytes_free(&in);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

/* ---- sending -------------------------------------------------------------- */


/* A server frame goes to the transport as header + the caller's payload:
 * the payload iov points at the caller's memory (zero copy). */
void test_conn_send_server_zero_copy(void)
{
    static uint8_t buf[1024];
    static uint8_t payload[4000];
    struct ws_conn c;
    struct rec r;
    struct bytes want = {0};

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    memset(payload, 'z', sizeof payload);
    r.watch = payload;
    EXPECT_EQ(ws_conn_send_binary(&c, payload, sizeof payload), WS_OK);
    EXPECT_EQ(r.iov_zero_copy, 1);
    frame(&want, 0x82, 0, payload, sizeof payload);
    EXPECT_MEM(r.out.p, r.out.n, want.p, want.n);
    bytes_free(&want);
    bytes_free(&r.out);
}

/* A client frame is masked with a fresh key; large ones in chunks. */
void test_conn_send_client_masked(void)
{
    static uint8_t buf[1024];
    static uint8_t payload[5000];
    struct ws_conn c;
    struct rec r;
    struct bytes canon = {0};
    unsigned code;
    int frames;
    size_t i;

    open_conn(&c, &r, WS_ROLE_CLIENT, buf, sizeof buf);
    for (i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    EXPECT_EQ(ws_conn_send_text(&c, "Hello", 5), WS_OK);
    EXPECT_EQ(ws_conn_send_binary(&c, payload, sizeof payload), WS_OK);
    EXPECT_EQ(decode_output(&r.out, 1, &canon, &code, &frames), 2);
    EXPECT_MEM(canon.p, 7, "\x81Hello|", 7);
    EXPECT_MEM(canon.p + 8, sizeof payload, payload, sizeof payload);
    /* the two frames have different keys (random, RFC 6455 5.3) */
    EXPECT_TRUE(memcmp(r.out.p + 2, r.out.p + 11 + 4, 4) != 0 ||
                memcmp(r.out.p + 2, r.out.p + 11 + 5, 4) != 0);
    bytes_free(&canon);
    bytes_free(&r.out);
}

/* Backpressure, server: a sink that takes 10 bytes then blocks. The rest
 * of a small frame is buffered (WS_OK); a large one pins the payload
 * (WS_PENDING); further sends get WS_AGAIN until flushed. */
void test_conn_send_backpressure_server(void)
{
    static uint8_t buf[1024];
    static uint8_t big[3000];
    struct ws_conn c;
    struct rec r;
    struct bytes want = {0};
    int rounds = 0, rv;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    memset(big, 'b', sizeof big);
    r.accept = 10;
    EXPECT_EQ(ws_conn_send_text(&c, "0123456789abcdef", 16), WS_OK);
    EXPECT_EQ(ws_conn_wants_flush(&c), 1);
    r.block = 1;
    EXPECT_EQ(ws_conn_send_text(&c, "small", 5), WS_OK);   /* fits in buf */
    EXPECT_EQ(ws_conn_send_binary(&c, big, sizeof big), WS_AGAIN);
    EXPECT_EQ(ws_conn_flush(&c), WS_AGAIN);
    r.block = 0;
    r.accept = 0;
    EXPECT_EQ(ws_conn_flush(&c), WS_OK);
    EXPECT_EQ(ws_conn_wants_flush(&c), 0);
    r.accept = 100;
    /* 100 taken, 2904 left > 1024-byte buffer: pinned */
    EXPECT_EQ(ws_conn_send_binary(&c, big, sizeof big), WS_PENDING);
    r.block = 1;
    EXPECT_EQ(ws_conn_send_binary(&c, big, sizeof big), WS_AGAIN);
    r.block = 0;
    do {
        rv = ws_conn_flush(&c);
    } while (rv == WS_AGAIN && ++rounds < 1000);
    EXPECT_EQ(rv, WS_OK);
    r.block = 1;
    EXPECT_EQ(ws_conn_send_binary(&c, big, sizeof big), WS_PENDING);
    EXPECT_EQ(ws_conn_get_buffered(&c), 4 + sizeof big);
    /* nothing may overtake a pinned frame */
    EXPECT_EQ(ws_conn_send_ping(&c, "p", 1), WS_AGAIN);
    r.block = 0;
    r.accept = 0;
    EXPECT_EQ(ws_conn_flush(&c), WS_OK);
    frame(&want, 0x81, 0, "0123456789abcdef", 16);
    frame(&want, 0x81, 0, "small", 5);
    frame(&want, 0x82, 0, big, sizeof big);
    frame(&want, 0x82, 0, big, sizeof big);
    EXPECT_MEM(r.out.p, r.out.n, want.p, want.n);
    bytes_free(&want);
    bytes_free(&r.out);
}

/* Backpressure, client: masked in chunks through a sink taking 7 bytes a
 * call; the output decodes to the original messages. */
void test_conn_send_backpressure_client(void)
{
    static uint8_t buf[600];
    static uint8_t big[5000];
    struct ws_conn c;
    struct rec r;
    struct bytes canon = {0};
    unsigned code;
    int frames, rv, rounds = 0;
    size_t i;

    open_conn(&c, &r, WS_ROLE_CLIENT, buf, sizeof buf);
    for (i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 13);
    /* The sink takes 7 bytes per "writable" event, then blocks. */
    r.accept = 7;
    r.use_quota = 1;
    r.quota = 7;
    EXPECT_EQ(ws_conn_send_binary(&c, big, sizeof big), WS_PENDING);
    do {
        rv = ws_conn_send_text(&c, "x", 1);
        EXPECT_TRUE(rv == WS_AGAIN || rv == WS_OK);
        r.quota = 7;
        EXPECT_TRUE(ws_conn_flush(&c) <= WS_OK);
    } while (rv == WS_AGAIN && rounds++ < 100000);
    EXPECT_TRUE(rounds > 500);      /* it really went 7 bytes at a time */
    r.use_quota = 0;
    r.accept = 0;
    EXPECT_EQ(ws_conn_flush(&c), WS_OK);
    EXPECT_EQ(decode_output(&r.out, 1, &canon, &code, &frames), 2);
    EXPECT_MEM(canon.p + 1, sizeof big, big, sizeof big);
    EXPECT_MEM(canon.p + sizeof big + 2, 3, "\x81x|", 3);
    bytes_free(&canon);
    bytes_free(&r.out);
}

/* A transport failure is reported and sticky. */
void test_conn_send_transport_failure(void)
{
    static uint8_t buf[1024];
    struct ws_conn c;
    struct rec r;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    r.fail_send = 1;
    EXPECT_EQ(ws_conn_send_text(&c, "x", 1), WS_ERR_TRANSPORT);
    EXPECT_EQ(ws_conn_get_error(&c), WS_ERR_TRANSPORT);
    EXPECT_EQ(ws_conn_flush(&c), WS_ERR_TRANSPORT);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CLOSED);
}

/* RFC 6455 5.4 on the sending side: TEXT/BINARY, then CONTINUATION. */
void test_conn_send_fragment_rules(void)
{
    static uint8_t buf[1024];
    struct ws_conn c;
    struct rec r;
    struct bytes want = {0};

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    EXPECT_EQ(ws_conn_send_frame(&c, WS_OPCODE_CONTINUATION, 1, "x", 1),
              WS_ERR_BAD_STATE);
    EXPECT_EQ(ws_conn_send_frame(&c, WS_OPCODE_PING, 1, "x", 1),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_send_frame(&c, WS_OPCODE_TEXT, 0, "Hel", 3), WS_OK);
    EXPECT_EQ(ws_conn_send_text(&c, "no", 2), WS_ERR_BAD_STATE);
    EXPECT_EQ(ws_conn_send_frame(&c, WS_OPCODE_BINARY, 1, "x", 1),
              WS_ERR_BAD_STATE);
    EXPECT_EQ(ws_conn_send_ping(&c, "p", 1), WS_OK);   /* between fragments */
    EXPECT_EQ(ws_conn_send_frame(&c, WS_OPCODE_CONTINUATION, 1, "lo", 2),
              WS_OK);
    EXPECT_EQ(ws_conn_send_text(&c, "yes", 3), WS_OK);
    frame(&want, 0x01, 0, "Hel", 3);
    frame(&want, 0x89, 0, "p", 1);
    frame(&want, 0x80, 0, "lo", 2);
    frame(&want, 0x81, 0, "yes", 3);
    EXPECT_MEM(r.out.p, r.out.n, want.p, want.n);
    bytes_free(&want);
    bytes_free(&r.out);
}

void test_conn_send_argument_checks(void)
{
    static uint8_t buf[1024];
    uint8_t big[126] = {0};
    struct ws_conn c;
    struct rec r;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    EXPECT_EQ(ws_conn_send_text(&c, "\xC0\xAF", 2), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_send_ping(&c, big, 126), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_send_ping(&c, big, 125), WS_OK);
    EXPECT_EQ(ws_conn_close(&c, 1005, NULL, 0), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_close(&c, 1006, NULL, 0), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_close(&c, 999, NULL, 0), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_close(&c, 1000, (const char *)big, 124),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_close(&c, 1000, "\xFF", 1), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_close(&c, 0, "x", 1), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_OPEN);
    bytes_free(&r.out);
}

/* RFC 6455 7.1.2: we close first; CLOSING until the peer's close. */
void test_conn_local_close_handshake(void)
{
    static uint8_t buf[1024];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0}, want = {0};
    size_t used;

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    EXPECT_EQ(ws_conn_close(&c, 4000, "done", 4), WS_OK);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CLOSING);
    EXPECT_EQ(ws_conn_send_text(&c, "late", 4), WS_ERR_CLOSED);
    EXPECT_EQ(ws_conn_close(&c, 1000, NULL, 0), WS_ERR_CLOSED);
    /* Data still arrives while closing; then the peer's close. */
    frame(&in, 0x81, 1, "in", 2);
    close_frame(&in, 1, 4000, "", 0);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_OK);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CLOSED);
    EXPECT_EQ(ws_conn_get_close_code(&c), 4000);
    EXPECT_EQ(r.closes, 1);
    EXPECT_MEM(r.log.p, r.log.n, "B\x01inEC4000:", 11);
    close_frame(&want, 0, 4000, "done", 4);     /* and no second close */
    EXPECT_MEM(r.out.p, r.out.n, want.p, want.n);
    bytes_free(&in);
    bytes_free(&want);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

/* A close while output is blocked waits in the slot and goes out at the
 * next flush, after what was already queued. */
void test_conn_close_queued_while_blocked(void)
{
    static uint8_t buf[512];
    static uint8_t big[2000];
    struct ws_conn c;
    struct rec r;
    struct bytes want = {0};

    open_conn(&c, &r, WS_ROLE_SERVER, buf, sizeof buf);
    r.block = 1;
    EXPECT_EQ(ws_conn_send_binary(&c, big, sizeof big), WS_PENDING);
    EXPECT_EQ(ws_conn_close(&c, 1001, "bye", 3), WS_OK);
    r.block = 0;
    EXPECT_EQ(ws_conn_flush(&c), WS_OK);
    frame(&want, 0x82, 0, big, sizeof big);
    close_frame(&want, 0, 1001, "bye", 3);
    EXPECT_MEM(r.out.p, r.out.n, want.p, want.n);
    bytes_free(&want);
    bytes_free(&r.out);
}

/* Allocator hooks: reassembly grows through them and is released. */
static size_t live_bytes;
static void *test_realloc(void *ctx, void *p, size_t old, size_t n)
{
    (void)ctx;
    live_bytes = live_bytes - old + n;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

void test_conn_reassembly_with_allocator(void)
{
    static const struct ws_allocator alloc = {test_realloc, NULL};
    static uint8_t buf[1024];
    struct ws_config cfg;
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    uint8_t *chunk = malloc(10000);
    size_t used, i;

    memset(&cfg, 0, sizeof cfg);
    memset(&r, 0, sizeof r);
    cfg.flags = WS_CONFIG_START_OPEN;
    cfg.alloc = &alloc;
    for (i = 0; i < 10000; i++)
        chunk[i] = (uint8_t)i;
    frame(&in, 0x02, 1, chunk, 10000);
    frame(&in, 0x00, 1, chunk, 10000);
    frame(&in, 0x80, 1, chunk, 10000);
    EXPECT_EQ(ws_conn_init(&c, &cfg, &whole_cb, &r, buf, sizeof buf), WS_OK);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_OK);
    EXPECT_EQ(r.log.n, 2 + 6 + 30000);
    EXPECT_MEM(r.log.p + 8 + 20000, 10000, chunk, 10000);
    EXPECT_TRUE(live_bytes >= 30000);
    ws_conn_reset(&c);
    EXPECT_EQ(live_bytes, 0);
    /* on_message without a buffer or an allocator is refused */
    cfg.alloc = NULL;
    EXPECT_EQ(ws_conn_init(&c, &cfg, &whole_cb, &r, buf, sizeof buf),
              WS_ERR_INVALID_ARG);
    free(chunk);
    bytes_free(&in);
    bytes_free(&r.log);
}

void test_conn_init_argument_checks(void)
{
    static uint8_t buf[1024];
    static const struct ws_callbacks nosend = {.on_open = rec_open};
    struct ws_conn c;
    struct ws_config cfg;

    memset(&cfg, 0, sizeof cfg);
    EXPECT_EQ(ws_conn_init(&c, NULL, &streaming_cb, NULL, buf, 100),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_init(&c, NULL, &nosend, NULL, buf, sizeof buf),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws_conn_init(&c, NULL, NULL, NULL, buf, sizeof buf),
              WS_ERR_INVALID_ARG);
    cfg.role = 7;
    EXPECT_EQ(ws_conn_init(&c, &cfg, &streaming_cb, NULL, buf, sizeof buf),
              WS_ERR_INVALID_ARG);
    cfg.role = WS_ROLE_CLIENT;          /* a client needs a host */
    EXPECT_TRUE(ws_conn_init(&c, &cfg, &streaming_cb, NULL, buf, sizeof buf)
                != WS_OK);
    EXPECT_EQ(ws_conn_init(&c, NULL, &streaming_cb, NULL, buf, sizeof buf),
              WS_OK);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CONNECTING);
    EXPECT_EQ(ws_conn_send_text(&c, "x", 1), WS_ERR_BAD_STATE);
    EXPECT_EQ(ws_conn_close(&c, 1000, NULL, 0), WS_ERR_BAD_STATE);
    EXPECT_TRUE(ws_conn_size() == sizeof(struct ws_conn));
    test_note("sizeof(struct ws_conn) = %zu bytes", ws_conn_size());
}

/* ---- the opening handshake through the connection ------------------------ */

/* RFC 6455 1.2's example request (with our Host). */
#define RFC_REQUEST                                                        \
    "GET /chat HTTP/1.1\r\n"                                               \
    "Host: server.example.com\r\n"                                         \
    "Upgrade: websocket\r\n"                                               \
    "Connection: Upgrade\r\n"                                              \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                      \
    "Origin: http://example.com\r\n"                                       \
    "Sec-WebSocket-Protocol: chat, superchat\r\n"                          \
    "Sec-WebSocket-Version: 13\r\n"                                        \
    "\r\n"

static const struct setup server_handshake_streaming = {
    .role = WS_ROLE_SERVER, .cb = &streaming_cb, .handshake = 1};

/* The request and the client's first frame arrive in one read: both are
 * handled, however the bytes are split. */
void test_conn_server_handshake_then_frame(void)
{
    static const uint8_t masked_hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct bytes in = {0};
    struct outcome o;

    bytes_add(&in, RFC_REQUEST, strlen(RFC_REQUEST));
    bytes_add(&in, masked_hello, sizeof masked_hello);
    feed_every_way(&server_handshake_streaming, in.p, in.n, &o);
    EXPECT_EQ(o.status, WS_OK);
    EXPECT_EQ(o.state, WS_STATE_OPEN);
    EXPECT_MEM(o.log.p, o.log.n, "oB\x01HelloE", 9);
    EXPECT_MEM(o.canon.p, o.canon.n, "HTTP/1.1 101 Switching Protocols|",
               33);
    outcome_free(&o);
    bytes_free(&in);
}

/* The 101 carries the RFC's accept value, and no subprotocol unless the
 * application selected one (RFC 6455 4.2.2). */
void test_conn_server_handshake_answer_bytes(void)
{
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    size_t used;

    memset(&r, 0, sizeof r);
    bytes_add(&in, RFC_REQUEST, strlen(RFC_REQUEST));
    EXPECT_EQ(ws_conn_init(&c, NULL, &streaming_cb, &r, buf, sizeof buf),
              WS_OK);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_OK);
    EXPECT_EQ(used, in.n);
    bytes_byte(&r.out, 0);
    EXPECT_TRUE(strstr((char *)r.out.p, "Sec-WebSocket-Accept: "
                       "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    EXPECT_TRUE(strstr((char *)r.out.p, "Sec-WebSocket-Protocol") == NULL);
    EXPECT_STR(ws_conn_get_protocol(&c), "");
    bytes_free(&in);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

static int select_superchat(struct ws_conn *c, const struct ws_request *req,
                            void *user)
{
    (void)user;
    EXPECT_MEM(req->path.p, req->path.n, "/chat", 5);
    EXPECT_MEM(req->origin.p, req->origin.n, "http://example.com", 18);
    EXPECT_EQ(ws_conn_select_protocol(c, "nope"), WS_ERR_INVALID_ARG);
    return ws_conn_select_protocol(c, "superchat");
}

static int reject_origin(struct ws_conn *c, const struct ws_request *req,
                         void *user)
{
    (void)user;
    (void)req;
    return ws_conn_reject(c, 403, "origin not allowed");
}

void test_conn_server_selects_protocol(void)
{
    static const struct ws_callbacks cb = {.send = rec_send,
                                           .on_request = select_superchat,
                                           .on_open = rec_open};
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    size_t used;

    memset(&r, 0, sizeof r);
    bytes_add(&in, RFC_REQUEST, strlen(RFC_REQUEST));
    EXPECT_EQ(ws_conn_init(&c, NULL, &cb, &r, buf, sizeof buf), WS_OK);
    EXPECT_EQ(ws_conn_select_protocol(&c, "chat"), WS_ERR_BAD_STATE);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_OK);
    bytes_byte(&r.out, 0);
    EXPECT_TRUE(strstr((char *)r.out.p,
                       "\r\nSec-WebSocket-Protocol: superchat\r\n") != NULL);
    EXPECT_STR(ws_conn_get_protocol(&c), "superchat");
    EXPECT_EQ(ws_conn_is_open(&c), 1);
    bytes_free(&in);
    bytes_free(&r.out);
    bytes_free(&r.log);
}

/* An application can refuse the upgrade, e.g. by Origin (RFC 6455 4.2.2). */
void test_conn_server_rejects_by_origin_403(void)
{
    static const struct ws_callbacks cb = {.send = rec_send,
                                           .on_request = reject_origin,
                                           .on_open = rec_open,
                                           .on_close = rec_close};
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    size_t used;

    memset(&r, 0, sizeof r);
    bytes_add(&in, RFC_REQUEST, strlen(RFC_REQUEST));
    EXPECT_EQ(ws_conn_init(&c, NULL, &cb, &r, buf, sizeof buf), WS_OK);
    EXPECT_EQ(ws_conn_feed(&c, in.p, in.n, &used), WS_ERR_REJECTED);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CLOSED);
    EXPECT_EQ(r.log.n, 0);              /* no on_open, no on_close */
    bytes_byte(&r.out, 0);
    EXPECT_TRUE(strncmp((char *)r.out.p, "HTTP/1.1 403 ", 13) == 0);
    EXPECT_TRUE(strstr((char *)r.out.p, "origin not allowed") != NULL);
    bytes_free(&in);
    bytes_free(&r.out);
}

/* Bad requests get their HTTP answer, whatever the split. */
static void expect_http_failure(const char *request, int status,
                                const char *status_line)
{
    struct outcome o;

    feed_every_way(&server_handshake_streaming, (const uint8_t *)request,
                   strlen(request), &o);
    EXPECT_EQ(o.status, status);
    EXPECT_EQ(o.error, status);
    EXPECT_EQ(o.state, WS_STATE_CLOSED);
    EXPECT_EQ(o.log.n, 0);
    EXPECT_TRUE(o.canon.n >= strlen(status_line) &&
                memcmp(o.canon.p, status_line, strlen(status_line)) == 0);
    outcome_free(&o);
}

void test_conn_server_bad_request_400(void)
{
    expect_http_failure("GET / HTTP/1.1\r\nHost: x\r\n\r\n", WS_ERR_HANDSHAKE,
                        "HTTP/1.1 400");
    expect_http_failure("POST /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket"
                        "\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                        "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
                        "\r\n\r\n", WS_ERR_HANDSHAKE, "HTTP/1.1 400");
}

/* RFC 6455 4.4: another version gets 426 + Sec-WebSocket-Version: 13. */
void test_conn_server_version_426(void)
{
    static const char req[] =
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 8\r\n\r\n";
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    uint8_t copy[sizeof req];
    size_t used;

    expect_http_failure(req, WS_ERR_VERSION, "HTTP/1.1 426");
    memset(&r, 0, sizeof r);
    memcpy(copy, req, sizeof req);
    EXPECT_EQ(ws_conn_init(&c, NULL, &streaming_cb, &r, buf, sizeof buf),
              WS_OK);
    EXPECT_EQ(ws_conn_feed(&c, copy, sizeof req - 1, &used), WS_ERR_VERSION);
    bytes_byte(&r.out, 0);
    EXPECT_TRUE(strstr((char *)r.out.p, "\r\nSec-WebSocket-Version: 13\r\n")
                != NULL);
    bytes_free(&r.out);
}

/* A request that never ends is cut off at the limit with 431, whether it
 * arrives at once or trickles in; nothing is read past the buffer. */
void test_conn_server_handshake_too_big_431(void)
{
    static uint8_t buf[1024];
    struct ws_config cfg;
    struct ws_conn c;
    struct rec r;
    uint8_t junk[3000];
    size_t used, off = 0;
    int rv = WS_OK;

    memset(junk, 'a', sizeof junk);
    memcpy(junk, "GET / HTTP/1.1\r\nX: ", 19);
    memset(&cfg, 0, sizeof cfg);
    memset(&r, 0, sizeof r);
    EXPECT_EQ(ws_conn_init(&c, &cfg, &streaming_cb, &r, buf, sizeof buf),
              WS_OK);
    while (off < sizeof junk && rv == WS_OK) {
        rv = ws_conn_feed(&c, junk + off, 1, &used);
        off += used;
    }
    EXPECT_EQ(rv, WS_ERR_HEADER_TOO_BIG);
    EXPECT_TRUE(off <= sizeof buf);
    bytes_byte(&r.out, 0);
    EXPECT_TRUE(strncmp((char *)r.out.p, "HTTP/1.1 431 ", 13) == 0);
    bytes_free(&r.out);
    /* The same with the configured limit below the buffer size. */
    cfg.max_handshake = 100;
    memset(&r, 0, sizeof r);
    EXPECT_EQ(ws_conn_init(&c, &cfg, &streaming_cb, &r, buf, sizeof buf),
              WS_OK);
    EXPECT_EQ(ws_conn_feed(&c, junk, sizeof junk, &used),
              WS_ERR_HEADER_TOO_BIG);
    EXPECT_TRUE(used <= 100);
    bytes_free(&r.out);
}

/* The client role: the request goes out at init; the 101 and the first
 * frames arrive together, in any split. */
void test_conn_client_handshake(void)
{
    static uint8_t buf[4096], other[1000];
    struct ws_config cfg;
    struct ws_request req;
    struct ws_conn c;
    struct rec r;
    struct bytes in = {0};
    char answer[512];
    size_t used, n, k, step, piece;
    int split;

    memset(&cfg, 0, sizeof cfg);
    cfg.role = WS_ROLE_CLIENT;
    cfg.request.host = "127.0.0.1:9001";
    cfg.request.path = "/chat?room=1";
    cfg.request.protocols = "chat, superchat";
    for (split = 0; split < 3; split++) {
        memset(&r, 0, sizeof r);
        EXPECT_EQ(ws_conn_init(&c, &cfg, &streaming_cb, &r, buf, sizeof buf),
                  WS_OK);
        EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CONNECTING);
        /* What the client sent is a valid request (our own parser). */
        EXPECT_EQ(ws_handshake_parse_request(&req, r.out.p, r.out.n, 0, 0,
                                             &used), WS_OK);
        EXPECT_EQ(used, r.out.n);
        EXPECT_MEM(req.target.p, req.target.n, "/chat?room=1", 12);
        EXPECT_EQ(ws_handshake_write_response(answer, sizeof answer, &req,
                                              "chat", NULL, &n), WS_OK);
        bytes_add(&in, answer, n);
        frame(&in, 0x81, 0, "Hello", 5);
        /* whole, byte by byte, 7 bytes at a time */
        step = split == 0 ? in.n : split == 1 ? 1 : 7;
        for (k = 0; k < in.n; k += piece) {
            piece = in.n - k < step ? in.n - k : step;
            EXPECT_EQ(ws_conn_feed(&c, in.p + k, piece, &used), WS_OK);
            EXPECT_EQ(used, piece);
        }
        EXPECT_EQ(ws_conn_is_open(&c), 1);
        EXPECT_STR(ws_conn_get_protocol(&c), "chat");
        EXPECT_MEM(r.log.p, r.log.n, "oB\x01HelloE", 9);
        /* A client is always busy: its subprotocol name lives in buf. */
        EXPECT_EQ(ws_conn_buffer_busy(&c), 1);
        EXPECT_EQ(ws_conn_set_buffer(&c, other, sizeof other), WS_OK);
        memset(buf, 0xEE, sizeof buf);
        EXPECT_STR(ws_conn_get_protocol(&c), "chat");
        EXPECT_EQ(ws_conn_set_buffer(&c, buf, sizeof buf), WS_OK);
        bytes_free(&in);
        bytes_free(&r.out);
        bytes_free(&r.log);
    }
}

/* RFC 6455 4.1: a wrong Sec-WebSocket-Accept fails the connection. */
void test_conn_client_rejects_bad_accept(void)
{
    static const char answer[] =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    static uint8_t buf[4096];
    struct ws_config cfg;
    struct ws_conn c;
    struct rec r;
    uint8_t copy[sizeof answer];
    size_t used;

    memset(&cfg, 0, sizeof cfg);
    memset(&r, 0, sizeof r);
    cfg.role = WS_ROLE_CLIENT;
    cfg.request.host = "localhost";
    memcpy(copy, answer, sizeof answer);
    EXPECT_EQ(ws_conn_init(&c, &cfg, &streaming_cb, &r, buf, sizeof buf),
              WS_OK);
    EXPECT_EQ(ws_conn_feed(&c, copy, sizeof answer - 1, &used),
              WS_ERR_BAD_RESPONSE);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CLOSED);
    EXPECT_TRUE(strlen(ws_conn_get_reason(&c)) > 0);
    EXPECT_EQ(r.log.n, 0);
    bytes_free(&r.out);
}

/* RFC 6455 4.1: a non-101 answer is a rejection, reported as such. */
void test_conn_client_rejected_403(void)
{
    static const char answer[] =
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    static uint8_t buf[4096];
    struct ws_config cfg;
    struct ws_conn c;
    struct rec r;
    uint8_t copy[sizeof answer];
    size_t used;

    memset(&cfg, 0, sizeof cfg);
    memset(&r, 0, sizeof r);
    cfg.role = WS_ROLE_CLIENT;
    cfg.request.host = "localhost";
    memcpy(copy, answer, sizeof answer);
    EXPECT_EQ(ws_conn_init(&c, &cfg, &streaming_cb, &r, buf, sizeof buf),
              WS_OK);
    EXPECT_EQ(ws_conn_feed(&c, copy, sizeof answer - 1, &used),
              WS_ERR_REJECTED);
    EXPECT_EQ(ws_conn_get_state(&c), WS_STATE_CLOSED);
    bytes_free(&r.out);
}

/* A broken request line is answered as soon as the line ends, not when
 * the header block would have ended (a slow client learns at once). */
void test_conn_server_bad_request_line_answered_early(void)
{
    static const char req[] = "BREW /pot HTCPCP/1.0\r\nHost: x\r\n";
    static uint8_t buf[4096];
    struct ws_conn c;
    struct rec r;
    uint8_t copy[sizeof req];
    size_t off = 0, used;
    int rv = WS_OK;

    memset(&r, 0, sizeof r);
    memcpy(copy, req, sizeof req);
    EXPECT_EQ(ws_conn_init(&c, NULL, &streaming_cb, &r, buf, sizeof buf),
              WS_OK);
    while (off < sizeof req - 1 && rv == WS_OK) {
        rv = ws_conn_feed(&c, copy + off, 1, &used);
        off += used;
    }
    EXPECT_EQ(rv, WS_ERR_HANDSHAKE);
    EXPECT_EQ(off, 22);                 /* through the first CRLF */
    bytes_byte(&r.out, 0);
    EXPECT_TRUE(strncmp((char *)r.out.p, "HTTP/1.1 400 ", 13) == 0);
    bytes_free(&r.out);
}
