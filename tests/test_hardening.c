/*
 * test_hardening.c - every limit in struct ws_config at its exact boundary
 * (the limit is accepted, one more is refused with the documented code),
 * and 64-bit frame lengths on 32-bit builds (make test-m32): a length of
 * 2^32 or more is never truncated to size_t; where it cannot be held it
 * fails with 1009 at the header.
 *
 *   limit           accepted      limit + 1
 *   max_frame       N bytes       1009 (WS_ERR_TOO_BIG)
 *   max_message     N bytes       1009, over one frame or several
 *   message_buf_len N bytes       1009 (whole-message receive)
 *   max_fragments   N frames      1009
 *   max_handshake   N bytes       431  (server), WS_ERR_HEADER_TOO_BIG (client)
 *   max_headers     N lines       431
 * Each is checked with an explicit value and with its default (0).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- the peer: counts events, keeps what the connection sent ----------- */

struct peer {
    struct bytes out;
    int opens, begins, ends, messages, closes;
    uint64_t data_bytes;     /* streamed payload bytes */
    size_t last_len;         /* length of the last whole message */
    unsigned close_code;     /* code given to on_close */
    size_t alloc_peak;       /* largest buffer asked of the allocator */
    size_t alloc_live;       /* bytes the allocator holds now */
};

static int p_send(struct ws_conn *c, const struct ws_iov *iov, size_t cnt,
                  size_t *written, void *user)
{
    struct peer *p = user;
    size_t i, w = 0;

    (void)c;
    for (i = 0; i < cnt; i++) {
        bytes_add(&p->out, iov[i].base, iov[i].len);
        w += iov[i].len;
    }
    *written = w;
    return 0;
}

static int p_open(struct ws_conn *c, void *user)
{
    (void)c;
    ((struct peer *)user)->opens++;
    return 0;
}

static int p_begin(struct ws_conn *c, unsigned opcode, void *user)
{
    (void)c;
    (void)opcode;
    ((struct peer *)user)->begins++;
    return 0;
}

static int p_data(struct ws_conn *c, const uint8_t *d, size_t n, void *user)
{
    (void)c;
    (void)d;
    ((struct peer *)user)->data_bytes += n;
    return 0;
}

static int p_end(struct ws_conn *c, void *user)
{
    (void)c;
    ((struct peer *)user)->ends++;
    return 0;
}

static int p_message(struct ws_conn *c, unsigned opcode, const uint8_t *d,
                     size_t n, void *user)
{
    struct peer *p = user;

    (void)c;
    (void)opcode;
    (void)d;
    p->messages++;
    p->last_len = n;
    return 0;
}

static int p_close(struct ws_conn *c, unsigned code, const char *reason,
                   size_t n, void *user)
{
    struct peer *p = user;

    (void)c;
    (void)reason;
    (void)n;
    p->closes++;
    p->close_code = code;
    return 0;
}

static const struct ws_callbacks streaming = {
    .send = p_send,
    .on_open = p_open,
    .on_message_begin = p_begin,
    .on_message_data = p_data,
    .on_message_end = p_end,
    .on_close = p_close,
};

static const struct ws_callbacks whole = {
    .send = p_send,
    .on_open = p_open,
    .on_message = p_message,
    .on_close = p_close,
};

/* An allocator over libc that remembers the largest size asked for. */
static void *p_realloc(void *ctx, void *old, size_t old_size, size_t size)
{
    struct peer *p = ctx;

    void *q;

    if (size == 0) {
        p->alloc_live -= old ? old_size : 0;
        free(old);
        return NULL;
    }
    if (size > p->alloc_peak)
        p->alloc_peak = size;
    q = realloc(old, size);
    if (q != NULL)
        p->alloc_live = p->alloc_live - (old ? old_size : 0) + size;
    return q;
}

/* ---- frames -------------------------------------------------------------- */

/* Append a frame header with any 64-bit length; masked (client to server)
 * with the fixed key add_frame() masks payloads with, or unmasked. */
static void add_header(struct bytes *b, unsigned fin, unsigned opcode,
                       uint64_t len, int masked)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    struct ws_frame f;
    size_t hl;

    memset(&f, 0, sizeof f);
    f.fin = fin;
    f.opcode = opcode;
    f.length = len;
    f.masked = masked ? 1u : 0u;
    memcpy(f.mask, key, 4);
    EXPECT_EQ(ws_frame_encode_header(hdr, sizeof hdr, &f, &hl), WS_OK);
    bytes_add(b, hdr, hl);
}

/* Append a whole masked frame whose payload is n bytes of 'x'. */
static void add_frame(struct bytes *b, unsigned fin, unsigned opcode,
                      size_t n)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t at;

    add_header(b, fin, opcode, n, 1);
    at = b->n;
    if (n > 0) {
        uint8_t *tmp = malloc(n);
        if (tmp == NULL)
            abort();
        memset(tmp, 'x', n);
        bytes_add(b, tmp, n);
        free(tmp);
        ws_mask(b->p + at, b->p + at, n, key, 0);
    }
}

/* ---- driving a connection ------------------------------------------------ */

struct hconn {
    struct ws_conn c;
    struct ws_config cfg;
    struct peer peer;
    uint8_t *buf;
};

static uint8_t msg_buf[1 << 16];

/* A server (START_OPEN unless handshake) or client; cfg limits set by the
 * caller after hc_setup and before hc_init. */
static void hc_setup(struct hconn *h, unsigned role, int handshake)
{
    memset(h, 0, sizeof *h);
    h->cfg.role = role;
    h->cfg.flags = handshake ? 0u : WS_CONFIG_START_OPEN;
    h->cfg.request.host = "example.com";
}

static int hc_init(struct hconn *h, const struct ws_callbacks *cb,
                   size_t buflen)
{
    h->buf = malloc(buflen);
    if (h->buf == NULL)
        abort();
    return ws_conn_init(&h->c, &h->cfg, cb, &h->peer, h->buf, buflen);
}

static void hc_free(struct hconn *h)
{
    ws_conn_reset(&h->c);
    bytes_free(&h->peer.out);
    free(h->buf);
    h->buf = NULL;
}

/* Feed in (a copy: the core unmasks in place), in chunks of step bytes
 * (0: whole). Returns the first status other than WS_OK, else WS_OK. */
static int hc_feed(struct hconn *h, const uint8_t *in, size_t n, size_t step)
{
    uint8_t *copy = malloc(n ? n : 1);
    size_t off = 0;
    int rv = WS_OK;

    if (copy == NULL)
        abort();
    if (n)
        memcpy(copy, in, n);
    while (off < n) {
        size_t k = step && n - off > step ? step : n - off, used = 0;
        rv = ws_conn_feed(&h->c, copy + off, k, &used);
        off += used;
        if (rv != WS_OK)
            break;
        EXPECT_EQ(used, k);
    }
    free(copy);
    return rv;
}

/* The close code of the last close frame in what the connection sent
 * (after an HTTP head, if any): 1005 for an empty one, 0 if none. */
static unsigned sent_close_code(const struct bytes *out)
{
    size_t off = 0;
    unsigned code = 0;

    if (out->n >= 5 && memcmp(out->p, "HTTP/", 5) == 0) {
        while (off + 3 < out->n && memcmp(out->p + off, "\r\n\r\n", 4))
            off++;
        off += 4;
    }
    while (off < out->n) {
        struct ws_frame f;
        size_t used;
        uint8_t pl[2];

        if (ws_frame_decode_header(&f, out->p + off, out->n - off, &used,
                                   NULL) != WS_OK ||
            f.length > out->n - off - used)
            return 0;
        if (f.opcode == WS_OPCODE_CLOSE) {
            code = WS_CLOSE_NO_STATUS;
            if (f.length >= 2) {
                ws_mask(pl, out->p + off + used, 2, f.mask, 0);
                code = (unsigned)pl[0] << 8 | pl[1];
            }
        }
        off += used + (size_t)f.length;
    }
    return code;
}

/* The connection failed with status and sent close code (once). */
static void expect_failed(struct hconn *h, int rv, int status, unsigned code)
{
    EXPECT_EQ(rv, status);
    EXPECT_EQ(ws_conn_get_error(&h->c), status);
    EXPECT_EQ(ws_conn_get_state(&h->c), WS_STATE_CLOSED);
    EXPECT_EQ(sent_close_code(&h->peer.out), code);
    EXPECT_EQ(h->peer.closes, 1);
    EXPECT_EQ(h->peer.close_code, code);
}

/* ---- 64-bit lengths on 32-bit builds --------------------------------------- */

#define TWO_32 ((uint64_t)1 << 32)

/* Lengths of 2^32 and more would be 0, 1, ... if truncated to a 32-bit
 * size_t: all must be refused at the header, with 1009, under the default
 * limits, in both receive styles and both roles. */
void test_hardening_len_2p32_default_limits_1009(void)
{
    static const uint64_t lens[] = {TWO_32, TWO_32 + 1, TWO_32 + 125,
                                    TWO_32 + 0x10000, (uint64_t)1 << 40,
                                    ((uint64_t)1 << 63) - 1};
    size_t i, k, r;

    for (r = 0; r < 2; r++) {
        for (k = 0; k < 2; k++) {
            for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
                struct hconn h;
                struct bytes in = {0};
                int rv;

                hc_setup(&h, r ? WS_ROLE_CLIENT : WS_ROLE_SERVER, 0);
                if (k) {
                    h.cfg.message_buf = msg_buf;
                    h.cfg.message_buf_len = sizeof msg_buf;
                }
                EXPECT_EQ(hc_init(&h, k ? &whole : &streaming, 4096), WS_OK);
                add_header(&in, 1, WS_OPCODE_BINARY, lens[i], !r);
                bytes_str(&in, "abc");
                rv = hc_feed(&h, in.p, in.n, 0);
                expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
                EXPECT_EQ(h.peer.begins, 0);
                EXPECT_EQ(h.peer.data_bytes, 0);
                bytes_free(&in);
                hc_free(&h);
            }
        }
    }
}

/* Whole-message receive through an allocator with max_message above 4 GiB:
 * a 2^32 + 1 byte message cannot be handed over as one size_t-long buffer
 * on a 32-bit build, so it fails with 1009 at the header (never a
 * truncated length, never gigabytes of allocation first). On 64-bit
 * builds the header is accepted and the message starts. */
void test_hardening_len_2p32_whole_message_alloc(void)
{
    static const struct ws_allocator alloc_tmpl = {p_realloc, NULL};
    struct ws_allocator alloc = alloc_tmpl;
    struct hconn h;
    struct bytes in = {0};
    uint64_t len = TWO_32 + 1;
    int rv;

    hc_setup(&h, WS_ROLE_SERVER, 0);
    alloc.ctx = &h.peer;
    h.cfg.alloc = &alloc;
    h.cfg.max_message = (uint64_t)1 << 33;
    EXPECT_EQ(hc_init(&h, &whole, 4096), WS_OK);
    add_header(&in, 1, WS_OPCODE_BINARY, len, 1);
    bytes_str(&in, "abcd");
    rv = hc_feed(&h, in.p, in.n, 0);
    if ((uint64_t)SIZE_MAX < len) {
        test_note("32-bit size_t: 2^32 + 1 refused at the header");
        expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
        EXPECT_EQ(h.peer.alloc_peak, 0);
    } else {
        EXPECT_EQ(rv, WS_OK);
        EXPECT_EQ(ws_conn_get_state(&h.c), WS_STATE_OPEN);
        EXPECT_EQ(h.peer.messages, 0);
        EXPECT_TRUE(h.peer.alloc_peak >= 4);
    }
    bytes_free(&in);
    hc_free(&h);

    /* Exactly SIZE_MAX is the largest whole message: a 32-bit build takes
     * the header of one (it then needs the memory), not one byte more. */
    if ((uint64_t)SIZE_MAX < TWO_32) {
        hc_setup(&h, WS_ROLE_SERVER, 0);
        alloc.ctx = &h.peer;
        h.cfg.alloc = &alloc;
        h.cfg.max_message = (uint64_t)1 << 33;
        EXPECT_EQ(hc_init(&h, &whole, 4096), WS_OK);
        add_header(&in, 1, WS_OPCODE_BINARY, (uint64_t)SIZE_MAX, 1);
        EXPECT_EQ(hc_feed(&h, in.p, in.n, 0), WS_OK);
        EXPECT_EQ(ws_conn_get_state(&h.c), WS_STATE_OPEN);
        bytes_free(&in);
        hc_free(&h);
    }
}

/* Streaming receive has no such bound: a 2^32 + 3 byte frame streams on,
 * byte-exact, on every build. A truncated length (3) would end the message
 * after 3 bytes and read the next payload bytes as a frame header. */
void test_hardening_len_2p32_streams_untruncated(void)
{
    struct hconn h;
    struct bytes in = {0};
    uint8_t *chunk;
    size_t n = 1 << 16, i;

    hc_setup(&h, WS_ROLE_SERVER, 0);
    h.cfg.max_message = UINT64_MAX;
    EXPECT_EQ(hc_init(&h, &streaming, 4096), WS_OK);
    add_header(&in, 1, WS_OPCODE_BINARY, TWO_32 + 3, 1);
    EXPECT_EQ(hc_feed(&h, in.p, in.n, 0), WS_OK);
    EXPECT_EQ(h.peer.begins, 1);
    /* Payload bytes that look like frame headers (0x88: close). */
    chunk = malloc(n);
    if (chunk == NULL)
        abort();
    memset(chunk, 0x88, n);
    for (i = 0; i < 8; i++)
        EXPECT_EQ(hc_feed(&h, chunk, i == 0 ? 3 : n, 0), WS_OK);
    EXPECT_EQ(h.peer.data_bytes, 3 + 7 * (uint64_t)n);
    EXPECT_EQ(h.peer.ends, 0);
    EXPECT_EQ(h.peer.closes, 0);
    EXPECT_EQ(ws_conn_get_state(&h.c), WS_STATE_OPEN);
    free(chunk);
    bytes_free(&in);
    hc_free(&h);
}

/* The frame codec keeps all 64 bits, and refuses to encode 2^63. */
void test_hardening_len_codec_64bit(void)
{
    static const uint64_t lens[] = {0xFFFF, 0x10000, 0xFFFFFFFFu, TWO_32,
                                    TWO_32 + 1, ((uint64_t)1 << 63) - 1};
    size_t i;

    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct bytes b = {0};
        struct ws_frame f;
        size_t used;

        add_header(&b, 1, WS_OPCODE_BINARY, lens[i], 0);
        EXPECT_EQ(ws_frame_decode_header(&f, b.p, b.n, &used, NULL), WS_OK);
        EXPECT_EQ(used, b.n);
        EXPECT_TRUE(f.length == lens[i]);
        bytes_free(&b);
    }
    {
        uint8_t hdr[WS_FRAME_HEADER_MAX];
        struct ws_frame f;
        size_t hl;

        memset(&f, 0, sizeof f);
        f.fin = 1;
        f.opcode = WS_OPCODE_BINARY;
        f.length = (uint64_t)1 << 63;
        EXPECT_EQ(ws_frame_encode_header(hdr, sizeof hdr, &f, &hl),
                  WS_ERR_INVALID_ARG);
    }
}

/* ---- max_frame ----------------------------------------------------------- */

/* A frame of max_frame bytes passes, max_frame + 1 is 1009; around the
 * 7-bit, 16-bit and 64-bit length encodings. */
void test_hardening_max_frame_boundary(void)
{
    static const uint64_t limits[] = {1, 125, 126, 65535, 65536, 100000};
    size_t i, over;

    for (i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        for (over = 0; over < 2; over++) {
            struct hconn h;
            struct bytes in = {0};
            size_t n = (size_t)limits[i] + over;
            int rv;

            hc_setup(&h, WS_ROLE_SERVER, 0);
            h.cfg.max_frame = limits[i];
            h.cfg.max_message = 1 << 20;
            EXPECT_EQ(hc_init(&h, &streaming, 4096), WS_OK);
            /* Two frames of one message, each at the limit (or over). */
            add_frame(&in, 0, WS_OPCODE_BINARY, (size_t)limits[i]);
            add_frame(&in, 1, WS_OPCODE_CONTINUATION, n);
            rv = hc_feed(&h, in.p, in.n, 0);
            if (over) {
                expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
                EXPECT_EQ(h.peer.data_bytes, limits[i]);
            } else {
                EXPECT_EQ(rv, WS_OK);
                EXPECT_EQ(h.peer.ends, 1);
                EXPECT_EQ(h.peer.data_bytes, 2 * limits[i]);
            }
            bytes_free(&in);
            hc_free(&h);
        }
    }
}

/* Default max_frame = max_message = 16 MiB: checked at the header. */
void test_hardening_max_frame_default(void)
{
    size_t over;

    for (over = 0; over < 2; over++) {
        struct hconn h;
        struct bytes in = {0};
        int rv;

        hc_setup(&h, WS_ROLE_SERVER, 0);
        EXPECT_EQ(hc_init(&h, &streaming, 4096), WS_OK);
        add_header(&in, 1, WS_OPCODE_BINARY, WS_DEFAULT_MAX_MESSAGE + over,
                   1);
        rv = hc_feed(&h, in.p, in.n, 0);
        if (over) {
            expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
        } else {
            EXPECT_EQ(rv, WS_OK);
            EXPECT_EQ(h.peer.begins, 1);
            EXPECT_EQ(ws_conn_get_state(&h.c), WS_STATE_OPEN);
        }
        bytes_free(&in);
        hc_free(&h);
    }
}

/* ---- max_message ---------------------------------------------------------- */

/* max_message counts the whole message: exactly N passes in one frame and
 * over three; N + 1 is 1009 in either shape, in both receive styles. */
void test_hardening_max_message_boundary(void)
{
    const size_t limit = 1000;
    size_t over, shape, style;

    for (style = 0; style < 2; style++) {
        for (shape = 0; shape < 2; shape++) {
            for (over = 0; over < 2; over++) {
                struct hconn h;
                struct bytes in = {0};
                size_t n = limit + over;
                int rv;

                hc_setup(&h, WS_ROLE_SERVER, 0);
                h.cfg.max_message = limit;
                if (style) {
                    h.cfg.message_buf = msg_buf;
                    h.cfg.message_buf_len = sizeof msg_buf;
                }
                EXPECT_EQ(hc_init(&h, style ? &whole : &streaming, 4096),
                          WS_OK);
                if (shape == 0) {
                    add_frame(&in, 1, WS_OPCODE_TEXT, n);
                } else {
                    add_frame(&in, 0, WS_OPCODE_TEXT, 400);
                    add_frame(&in, 0, WS_OPCODE_CONTINUATION, 0);
                    add_frame(&in, 1, WS_OPCODE_CONTINUATION, n - 400);
                }
                rv = hc_feed(&h, in.p, in.n, 7);
                if (over) {
                    expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
                    EXPECT_EQ(h.peer.messages + h.peer.ends, 0);
                } else {
                    EXPECT_EQ(rv, WS_OK);
                    EXPECT_EQ(h.peer.messages + h.peer.ends, 1);
                    if (style)
                        EXPECT_EQ(h.peer.last_len, limit);
                    else
                        EXPECT_EQ(h.peer.data_bytes, limit);
                }
                bytes_free(&in);
                hc_free(&h);
            }
        }
    }
}

/* Default 16 MiB over two frames: the second frame's header is judged
 * against what the first one already brought. */
void test_hardening_max_message_default(void)
{
    size_t over;

    for (over = 0; over < 2; over++) {
        struct hconn h;
        struct bytes in = {0};
        int rv;

        hc_setup(&h, WS_ROLE_SERVER, 0);
        EXPECT_EQ(hc_init(&h, &streaming, 4096), WS_OK);
        add_frame(&in, 0, WS_OPCODE_BINARY, WS_DEFAULT_MAX_MESSAGE - 10);
        add_header(&in, 1, WS_OPCODE_CONTINUATION, 10 + over, 1);
        rv = hc_feed(&h, in.p, in.n, 0);
        if (over) {
            expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
        } else {
            EXPECT_EQ(rv, WS_OK);
            EXPECT_EQ(ws_conn_get_state(&h.c), WS_STATE_OPEN);
        }
        EXPECT_EQ(h.peer.data_bytes, WS_DEFAULT_MAX_MESSAGE - 10);
        bytes_free(&in);
        hc_free(&h);
    }
}

/* Whole-message receive: message_buf_len is the limit (max_message is
 * lowered to it); an allocator never gets asked for more than max_message. */
void test_hardening_message_buf_and_alloc_boundary(void)
{
    static const struct ws_allocator alloc_tmpl = {p_realloc, NULL};
    size_t over, use_alloc;

    for (use_alloc = 0; use_alloc < 2; use_alloc++) {
        for (over = 0; over < 2; over++) {
            struct ws_allocator alloc = alloc_tmpl;
            struct hconn h;
            struct bytes in = {0};
            const size_t limit = use_alloc ? 5000 : 128;
            int rv;

            hc_setup(&h, WS_ROLE_SERVER, 0);
            alloc.ctx = &h.peer;
            if (use_alloc) {
                h.cfg.alloc = &alloc;
                h.cfg.max_message = limit;
            } else {
                h.cfg.message_buf = msg_buf;
                h.cfg.message_buf_len = limit;
                h.cfg.max_message = 1 << 20;     /* lowered to 128 */
            }
            EXPECT_EQ(hc_init(&h, &whole, 4096), WS_OK);
            add_frame(&in, 0, WS_OPCODE_BINARY, 100);
            add_frame(&in, 1, WS_OPCODE_CONTINUATION, limit - 100 + over);
            rv = hc_feed(&h, in.p, in.n, 33);
            if (over) {
                expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
                EXPECT_EQ(h.peer.messages, 0);
            } else {
                EXPECT_EQ(rv, WS_OK);
                EXPECT_EQ(h.peer.messages, 1);
                EXPECT_EQ(h.peer.last_len, limit);
            }
            if (use_alloc)
                EXPECT_TRUE(h.peer.alloc_peak <= limit);
            bytes_free(&in);
            hc_free(&h);
        }
    }
}

/* An allocated reassembly buffer larger than 64 KiB is given back once its
 * message is delivered: an idle connection does not keep the largest
 * message it ever got (a server's memory would creep towards connections
 * times max_message). Smaller buffers are kept for the next message. */
void test_hardening_alloc_buffer_released_after_big_message(void)
{
    static const struct ws_allocator alloc_tmpl = {p_realloc, NULL};
    static const size_t sizes[] = {200000, 10000, 65536, 65537, 300, 1 << 20};
    struct ws_allocator alloc = alloc_tmpl;
    struct hconn h;
    size_t i, kept = 0;

    hc_setup(&h, WS_ROLE_SERVER, 0);
    alloc.ctx = &h.peer;
    h.cfg.alloc = &alloc;
    h.cfg.max_message = 1 << 20;
    EXPECT_EQ(hc_init(&h, &whole, 4096), WS_OK);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct bytes in = {0};
        size_t n = sizes[i];

        /* Fragmented, so it goes through the reassembly buffer. */
        add_frame(&in, 0, WS_OPCODE_BINARY, n / 3);
        add_frame(&in, 1, WS_OPCODE_CONTINUATION, n - n / 3);
        EXPECT_EQ(hc_feed(&h, in.p, in.n, 4000), WS_OK);
        EXPECT_EQ(h.peer.messages, i + 1);
        EXPECT_EQ(h.peer.last_len, n);
        if (n > 65536) {
            EXPECT_EQ(h.peer.alloc_live, 0);
            kept = 0;
        } else {
            EXPECT_TRUE(h.peer.alloc_live >= n && h.peer.alloc_live >= kept);
            EXPECT_TRUE(h.peer.alloc_live <= 65536);
            kept = h.peer.alloc_live;
        }
        bytes_free(&in);
    }
    EXPECT_TRUE(h.peer.alloc_peak == 1 << 20);
    hc_free(&h);
    EXPECT_EQ(h.peer.alloc_live, 0);
}

/* ---- max_fragments ------------------------------------------------------- */

static void fragments_case(uint32_t limit, uint32_t frames, int want_ok)
{
    struct hconn h;
    struct bytes in = {0};
    uint32_t i;
    int rv;

    hc_setup(&h, WS_ROLE_SERVER, 0);
    h.cfg.max_fragments = limit;
    EXPECT_EQ(hc_init(&h, &streaming, 4096), WS_OK);
    for (i = 0; i < frames; i++)
        add_frame(&in, i + 1 == frames, i ? WS_OPCODE_CONTINUATION
                                          : WS_OPCODE_BINARY,
                  i % 3 == 0 ? 1u : 0u);
    rv = hc_feed(&h, in.p, in.n, 0);
    if (want_ok) {
        EXPECT_EQ(rv, WS_OK);
        EXPECT_EQ(h.peer.ends, 1);
    } else {
        expect_failed(&h, rv, WS_ERR_TOO_BIG, 1009);
        EXPECT_EQ(h.peer.ends, 0);
    }
    bytes_free(&in);
    hc_free(&h);
}

/* A message of exactly max_fragments frames passes; one more frame is
 * 1009. Also for the default (131072), and the count restarts with each
 * message. */
void test_hardening_max_fragments_boundary(void)
{
    struct hconn h;
    struct bytes in = {0};
    int m;

    fragments_case(1, 1, 1);
    fragments_case(1, 2, 0);
    fragments_case(100, 100, 1);
    fragments_case(100, 101, 0);
    fragments_case(0, WS_DEFAULT_MAX_FRAGMENTS, 1);
    fragments_case(0, WS_DEFAULT_MAX_FRAGMENTS + 1, 0);

    hc_setup(&h, WS_ROLE_SERVER, 0);
    h.cfg.max_fragments = 3;
    EXPECT_EQ(hc_init(&h, &streaming, 4096), WS_OK);
    for (m = 0; m < 5; m++) {
        add_frame(&in, 0, WS_OPCODE_TEXT, 1);
        add_frame(&in, 0, WS_OPCODE_CONTINUATION, 1);
        add_frame(&in, 1, WS_OPCODE_CONTINUATION, 1);
    }
    EXPECT_EQ(hc_feed(&h, in.p, in.n, 0), WS_OK);
    EXPECT_EQ(h.peer.ends, 5);
    bytes_free(&in);
    hc_free(&h);
}

/* ---- max_handshake and max_headers (server) --------------------------------- */

#define REQ_HEAD                                                               \
    "GET /chat HTTP/1.1\r\n"                                                   \
    "Host: server.example.com\r\n"                                             \
    "Upgrade: websocket\r\n"                                                   \
    "Connection: Upgrade\r\n"                                                  \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                          \
    "Sec-WebSocket-Version: 13\r\n"
#define REQ_HEAD_LINES 5u

/* A request of exactly total bytes: REQ_HEAD, extra "X-N: i" lines, then
 * one X-Pad line sized to fill, then the blank line. */
static void make_request(struct bytes *b, size_t extra_lines, size_t total)
{
    char line[64];
    size_t i, pad;

    bytes_str(b, REQ_HEAD);
    for (i = 0; i < extra_lines; i++) {
        snprintf(line, sizeof line, "X-N: %zu\r\n", i);
        bytes_str(b, line);
    }
    if (total == 0) {
        bytes_str(b, "\r\n");
        return;
    }
    /* "X-Pad: " + pad + "\r\n" + "\r\n" */
    EXPECT_TRUE(total >= b->n + 11);
    pad = total - b->n - 11;
    bytes_str(b, "X-Pad: ");
    for (i = 0; i < pad; i++)
        bytes_str(b, "a");
    bytes_str(b, "\r\n\r\n");
    EXPECT_EQ(b->n, total);
}

/* Feed req to a server (whole, or byte by byte) then a masked text frame
 * in the same input; expect 101 + the message, or a 431 answer. */
static void server_handshake_case(struct hconn *h, const struct bytes *req,
                                  size_t buflen, size_t step, int want_ok)
{
    struct bytes in = {0};
    int rv;

    EXPECT_EQ(hc_init(h, &streaming, buflen), WS_OK);
    bytes_add(&in, req->p, req->n);
    add_frame(&in, 1, WS_OPCODE_TEXT, 5);
    rv = hc_feed(h, in.p, in.n, step);
    if (want_ok) {
        EXPECT_EQ(rv, WS_OK);
        EXPECT_EQ(h->peer.opens, 1);
        EXPECT_EQ(h->peer.ends, 1);
        EXPECT_EQ(h->peer.data_bytes, 5);
        EXPECT_TRUE(h->peer.out.n >= 12 &&
                    memcmp(h->peer.out.p, "HTTP/1.1 101", 12) == 0);
    } else {
        EXPECT_EQ(rv, WS_ERR_HEADER_TOO_BIG);
        EXPECT_EQ(ws_conn_get_error(&h->c), WS_ERR_HEADER_TOO_BIG);
        EXPECT_EQ(ws_conn_get_state(&h->c), WS_STATE_CLOSED);
        EXPECT_EQ(h->peer.opens, 0);
        EXPECT_TRUE(h->peer.out.n >= 12 &&
                    memcmp(h->peer.out.p, "HTTP/1.1 431", 12) == 0);
    }
    bytes_free(&in);
    hc_free(h);
}

/* A request of exactly max_handshake bytes is answered 101; one byte more
 * is 431. With the explicit limit, the default (8192) and the buffer size
 * as the bound; whole and byte by byte. */
void test_hardening_max_handshake_boundary(void)
{
    struct hconn h;
    size_t over, step;

    for (step = 0; step < 2; step++) {
        for (over = 0; over < 2; over++) {
            struct bytes req = {0};

            /* Explicit limit below the buffer. */
            make_request(&req, 0, 300 + over);
            hc_setup(&h, WS_ROLE_SERVER, 1);
            h.cfg.max_handshake = 300;
            server_handshake_case(&h, &req, 4096, step, !over);
            bytes_free(&req);

            /* Default 8192, buffer larger. */
            make_request(&req, 0, WS_DEFAULT_MAX_HANDSHAKE + over);
            hc_setup(&h, WS_ROLE_SERVER, 1);
            server_handshake_case(&h, &req, 16384, step, !over);
            bytes_free(&req);

            /* The buffer bounds it too: buflen 1000, limit 8192. */
            make_request(&req, 0, 1000 + over);
            hc_setup(&h, WS_ROLE_SERVER, 1);
            server_handshake_case(&h, &req, 1000, step, !over);
            bytes_free(&req);
        }
    }
}

/* A request with exactly max_headers header lines is answered 101; one
 * line more is 431. Explicit limit and the default (64). */
void test_hardening_max_headers_boundary(void)
{
    struct hconn h;
    size_t over, step;

    for (step = 0; step < 2; step++) {
        for (over = 0; over < 2; over++) {
            struct bytes req = {0};

            make_request(&req, 10 - REQ_HEAD_LINES + over, 0);
            hc_setup(&h, WS_ROLE_SERVER, 1);
            h.cfg.max_headers = 10;
            server_handshake_case(&h, &req, 4096, step, !over);
            bytes_free(&req);

            make_request(&req, WS_DEFAULT_MAX_HEADERS - REQ_HEAD_LINES + over,
                         0);
            hc_setup(&h, WS_ROLE_SERVER, 1);
            server_handshake_case(&h, &req, 4096, step, !over);
            bytes_free(&req);
        }
    }
}

/* ---- max_handshake (client: the server's response) --------------------------- */

static void client_response_case(uint32_t limit, size_t total, size_t step,
                                 int want_ok)
{
    char accept[WS_ACCEPT_LEN + 1];
    struct hconn h;
    struct bytes resp = {0};
    size_t i, pad;
    int rv;

    hc_setup(&h, WS_ROLE_CLIENT, 1);
    h.cfg.max_handshake = limit;
    EXPECT_EQ(hc_init(&h, &streaming, 16384), WS_OK);
    EXPECT_EQ(ws_accept_key(h.c.u.hs.key, WS_KEY_LEN, accept), WS_OK);
    bytes_str(&resp, "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: ");
    bytes_str(&resp, accept);
    bytes_str(&resp, "\r\n");
    EXPECT_TRUE(total >= resp.n + 11);
    pad = total - resp.n - 11;
    bytes_str(&resp, "X-Pad: ");
    for (i = 0; i < pad; i++)
        bytes_str(&resp, "a");
    bytes_str(&resp, "\r\n\r\n");
    EXPECT_EQ(resp.n, total);
    add_header(&resp, 1, WS_OPCODE_TEXT, 2, 0);     /* server frame */
    bytes_str(&resp, "hi");
    rv = hc_feed(&h, resp.p, resp.n, step);
    if (want_ok) {
        EXPECT_EQ(rv, WS_OK);
        EXPECT_EQ(h.peer.opens, 1);
        EXPECT_EQ(h.peer.data_bytes, 2);
    } else {
        EXPECT_EQ(rv, WS_ERR_HEADER_TOO_BIG);
        EXPECT_EQ(ws_conn_get_state(&h.c), WS_STATE_CLOSED);
        EXPECT_EQ(h.peer.opens, 0);
    }
    bytes_free(&resp);
    hc_free(&h);
}

/* The client: a 101 response of exactly max_handshake bytes is accepted,
 * one byte more is WS_ERR_HEADER_TOO_BIG. */
void test_hardening_client_max_handshake_boundary(void)
{
    size_t step;

    for (step = 0; step < 2; step++) {
        client_response_case(400, 400, step, 1);
        client_response_case(400, 401, step, 0);
        client_response_case(0, WS_DEFAULT_MAX_HANDSHAKE, step, 1);
        client_response_case(0, WS_DEFAULT_MAX_HANDSHAKE + 1, step, 0);
    }
}
