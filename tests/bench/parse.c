/*
 * tests/bench/parse.c - receive-path throughput, in process, no sockets
 * (issue #6, parse part; tests/bench/README.md has the results).
 *
 * For each case (payload 16 B, 125 B, 4 KiB, 1 MiB; binary, ASCII text,
 * text with ~12 % multi-byte characters) a 16 MiB stream of masked client
 * frames (one frame per message, a random key per frame) is built once.
 * Each implementation then receives it the way a server would after
 * recv(): in 64 KiB pieces, each copied into a receive buffer first.
 *
 *   memcpy        only the copy into the receive buffer: the limit
 *   libws msg     ws_conn (server, WS_CONFIG_START_OPEN) with on_message
 *                 and a message buffer: unmask in place, validate text,
 *                 deliver whole messages (zero-copy when a message lies
 *                 inside one piece, else reassembled in the buffer)
 *   libws stream  the same with on_message_begin/data/end only
 *   wslay msg     wslay_event_recv(); its recv callback copies the piece
 *                 into wslay's buffer (the same one copy as recv());
 *                 on_msg_recv gets whole messages (wslay allocates one per
 *                 message)
 *   wslay stream  wslay with no_buffering and on_frame_recv_chunk
 *   ws_mask       ws_mask alone over the same bytes, 64 KiB pieces, from
 *                 the stream into the receive buffer (a masking copy)
 *   utf8          ws_utf8_check alone, once per message, on the unmasked
 *                 payloads (text cases)
 *
 * Rates count stream bytes (headers included) per second, except utf8
 * (payload bytes). Each figure is the median of several repetitions, each
 * repeating whole passes for at least a minimum time. The ratio to memcpy
 * is the median of per-repetition ratios, memcpy being timed right before
 * the implementation in each repetition (the machine may be shared). Before timing, one
 * pass of each implementation hashes what it delivers (FNV-1a over the
 * payload bytes, message count, byte count); all must equal what the
 * generator wrote, or the bench exits 1.
 *
 * Usage: parse [--quick] [--json FILE] [--case SUBSTRING]
 * Built with -DHAVE_WSLAY=1 -lwslay when libwslay-dev is installed;
 * otherwise the wslay rows are skipped.
 */
#include <ws.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef HAVE_WSLAY
#define HAVE_WSLAY 0
#endif
#if HAVE_WSLAY
#include <sys/types.h>
#include <wslay/wslay.h>
#endif

#define STREAM_BYTES (16u * 1024u * 1024u)
#define PIECE (64u * 1024u)
#define MSG_BUF_LEN (1u * 1024u * 1024u + 64u)

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */
/* ------------------------------------------------------------------------ */

enum kind { K_BINARY, K_ASCII, K_MIXED };
static const char *const kind_name[] = {"binary", "ascii", "utf8mix"};

struct stream {
    uint8_t *wire;          /* masked frames */
    size_t len;
    uint8_t *plain;         /* unmasked payloads, back to back */
    size_t plain_len;
    size_t *msg_off;        /* payload i = plain[msg_off[i]..msg_off[i+1]) */
    size_t frames;
    uint64_t hash;          /* FNV-1a of all payload bytes, in order */
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    /* xorshift64*: fast and good enough for test data. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Encode code point cp as UTF-8 into out; returns its length. */
static size_t put_utf8(uint8_t *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* One character of "mixed" text: 88 % printable ASCII, 12 % multi-byte
 * (half 2-byte, 40 % 3-byte outside the surrogates, 10 % 4-byte). */
static uint32_t mixed_char(void)
{
    uint64_t r = rng();
    unsigned pct = (unsigned)(r % 100);
    unsigned sel = (unsigned)((r >> 8) % 10);
    uint32_t v = (uint32_t)(r >> 32);

    if (pct < 88)
        return 0x20 + v % 95;
    if (sel < 5)
        return 0x80 + v % (0x800 - 0x80);
    if (sel < 9) {
        uint32_t cp = 0x800 + v % (0x10000 - 0x800 - 0x800);
        return cp >= 0xD800 ? cp + 0x800 : cp;     /* skip D800-DFFF */
    }
    return 0x10000 + v % (0x110000 - 0x10000);
}

static void fill_payload(uint8_t *p, size_t n, enum kind k)
{
    size_t i = 0;

    if (k == K_BINARY) {
        for (; i + 8 <= n; i += 8) {
            uint64_t r = rng();
            memcpy(p + i, &r, 8);
        }
        for (; i < n; i++)
            p[i] = (uint8_t)rng();
        return;
    }
    if (k == K_ASCII) {
        for (; i < n; i++)
            p[i] = (uint8_t)(0x20 + rng() % 95);
        return;
    }
    while (i < n) {
        uint8_t tmp[4];
        size_t m = put_utf8(tmp, mixed_char());

        if (m > n - i)          /* no character split across messages */
            m = put_utf8(tmp, 'a');
        memcpy(p + i, tmp, m);
        i += m;
    }
}

static void build_stream(struct stream *s, size_t payload, enum kind k)
{
    size_t hl = 2 + 4 + (payload < 126 ? 0 : payload <= 0xFFFF ? 2 : 8);
    size_t frames = STREAM_BYTES / (hl + payload), i, j;
    uint8_t *w, *pl;

    if (frames == 0)
        frames = 1;
    s->frames = frames;
    s->len = frames * (hl + payload);
    s->plain_len = frames * payload;
    s->wire = malloc(s->len);
    s->plain = malloc(s->plain_len + 1);
    s->msg_off = malloc((frames + 1) * sizeof *s->msg_off);
    if (!s->wire || !s->plain || !s->msg_off) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    s->hash = FNV_INIT;
    w = s->wire;
    pl = s->plain;
    for (i = 0; i < frames; i++) {
        uint8_t key[4];
        uint64_t r = rng();

        memcpy(key, &r, 4);
        *w++ = (uint8_t)(0x80 | (k == K_BINARY ? 0x2 : 0x1));
        if (payload < 126) {
            *w++ = (uint8_t)(0x80 | payload);
        } else if (payload <= 0xFFFF) {
            *w++ = 0x80 | 126;
            *w++ = (uint8_t)(payload >> 8);
            *w++ = (uint8_t)payload;
        } else {
            *w++ = 0x80 | 127;
            for (j = 0; j < 8; j++)
                *w++ = (uint8_t)((uint64_t)payload >> (56 - 8 * j));
        }
        memcpy(w, key, 4);
        w += 4;
        s->msg_off[i] = (size_t)(pl - s->plain);
        fill_payload(pl, payload, k);
        s->hash = fnv(s->hash, pl, payload);
        /* Masked byte by byte, independently of ws_mask (RFC 6455 5.3). */
        for (j = 0; j < payload; j++)
            w[j] = pl[j] ^ key[j & 3];
        w += payload;
        pl += payload;
    }
    s->msg_off[frames] = s->plain_len;
}

static void free_stream(struct stream *s)
{
    free(s->wire);
    free(s->plain);
    free(s->msg_off);
}

/* ------------------------------------------------------------------------ */
/* Runners: one pass over the stream each                                   */
/* ------------------------------------------------------------------------ */

struct run {
    const struct stream *s;
    uint8_t *rbuf;          /* the receive buffer (PIECE bytes) */
    int verify;             /* hash delivered bytes (verification pass) */
    uint64_t hash, msgs, bytes;
    size_t pos, piece_end;  /* wslay: where its recv callback reads */
};

/* An opaque call the compiler cannot see through, so copies into the
 * receive buffer are never optimised away. */
static void touch(const uint8_t *p)
{
    (void)p;
}
static void (*volatile sink)(const uint8_t *) = touch;

static void pass_memcpy(struct run *r)
{
    const struct stream *s = r->s;
    size_t off, n;

    for (off = 0; off < s->len; off += n) {
        n = s->len - off < PIECE ? s->len - off : PIECE;
        memcpy(r->rbuf, s->wire + off, n);
        sink(r->rbuf);
    }
}

static void pass_mask(struct run *r)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    const struct stream *s = r->s;
    size_t off, n;

    for (off = 0; off < s->len; off += n) {
        n = s->len - off < PIECE ? s->len - off : PIECE;
        ws_mask(r->rbuf, s->wire + off, n, key, off);
        sink(r->rbuf);
    }
}

static void pass_utf8(struct run *r)
{
    const struct stream *s = r->s;
    size_t i;

    for (i = 0; i < s->frames; i++) {
        size_t a = s->msg_off[i], b = s->msg_off[i + 1];
        if (ws_utf8_check(s->plain + a, b - a) != WS_OK) {
            fprintf(stderr, "utf8: message %zu rejected\n", i);
            exit(1);
        }
    }
    r->msgs += s->frames;
}

/* libws */

static int lw_send(struct ws_conn *c, const struct ws_iov *iov, size_t cnt,
                   size_t *written, void *user)
{
    size_t i, n = 0;

    (void)c;
    (void)user;
    for (i = 0; i < cnt; i++)
        n += iov[i].len;
    *written = n;
    return 0;
}

static int lw_message(struct ws_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user)
{
    struct run *r = user;

    (void)c;
    (void)opcode;
    r->msgs++;
    r->bytes += n;
    if (r->verify)
        r->hash = fnv(r->hash, p, n);
    return 0;
}

static int lw_data(struct ws_conn *c, const uint8_t *p, size_t n, void *user)
{
    struct run *r = user;

    (void)c;
    r->bytes += n;
    if (r->verify)
        r->hash = fnv(r->hash, p, n);
    return 0;
}

static int lw_end(struct ws_conn *c, void *user)
{
    struct run *r = user;

    (void)c;
    r->msgs++;
    return 0;
}

static const struct ws_callbacks lw_msg_cb = {
    .send = lw_send,
    .on_message = lw_message,
};
static const struct ws_callbacks lw_stream_cb = {
    .send = lw_send,
    .on_message_data = lw_data,
    .on_message_end = lw_end,
};

static uint8_t lw_conn_buf[4096];
static uint8_t *lw_msg_buf;

static void lw_pass(struct run *r, const struct ws_callbacks *cb)
{
    const struct stream *s = r->s;
    struct ws_config cfg;
    struct ws_conn c;
    size_t off, n, used;
    int rv;

    /* A fresh connection per pass costs one memset: nothing next to a
     * 16 MiB pass. */
    memset(&cfg, 0, sizeof cfg);
    cfg.role = WS_ROLE_SERVER;
    cfg.flags = WS_CONFIG_START_OPEN;
    cfg.message_buf = lw_msg_buf;
    cfg.message_buf_len = MSG_BUF_LEN;
    if (ws_conn_init(&c, &cfg, cb, r, lw_conn_buf, sizeof lw_conn_buf) !=
        WS_OK) {
        fprintf(stderr, "ws_conn_init failed\n");
        exit(1);
    }
    for (off = 0; off < s->len; off += n) {
        n = s->len - off < PIECE ? s->len - off : PIECE;
        memcpy(r->rbuf, s->wire + off, n);          /* what recv() does */
        rv = ws_conn_feed(&c, r->rbuf, n, &used);
        if (rv != WS_OK || used != n) {
            fprintf(stderr, "ws_conn_feed: %s (%s)\n", ws_strerror(rv),
                    ws_conn_get_reason(&c));
            exit(1);
        }
    }
}

static void pass_libws_msg(struct run *r)
{
    lw_pass(r, &lw_msg_cb);
}

static void pass_libws_stream(struct run *r)
{
    lw_pass(r, &lw_stream_cb);
}

/* wslay */

#if HAVE_WSLAY
static ssize_t wl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user)
{
    struct run *r = user;
    size_t n = r->piece_end - r->pos;

    (void)flags;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n > len)
        n = len;
    memcpy(buf, r->s->wire + r->pos, n);            /* what recv() does */
    r->pos += n;
    return (ssize_t)n;
}

static ssize_t wl_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user)
{
    (void)ctx;
    (void)data;
    (void)flags;
    (void)user;
    return (ssize_t)len;
}

static void wl_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    struct run *r = user;

    (void)ctx;
    if (arg->opcode >= 8)
        return;
    r->msgs++;
    r->bytes += arg->msg_length;
    if (r->verify)
        r->hash = fnv(r->hash, arg->msg, arg->msg_length);
}

static void wl_chunk(wslay_event_context_ptr ctx,
                     const struct wslay_event_on_frame_recv_chunk_arg *arg,
                     void *user)
{
    struct run *r = user;

    (void)ctx;
    r->bytes += arg->data_length;
    if (r->verify)
        r->hash = fnv(r->hash, arg->data, arg->data_length);
}

static void wl_frame_end(wslay_event_context_ptr ctx, void *user)
{
    struct run *r = user;

    (void)ctx;
    r->msgs++;
}

static void wl_pass(struct run *r, int streaming)
{
    struct wslay_event_callbacks cb;
    wslay_event_context_ptr ctx;
    const struct stream *s = r->s;

    memset(&cb, 0, sizeof cb);
    cb.recv_callback = wl_recv;
    cb.send_callback = wl_send;
    if (streaming) {
        cb.on_frame_recv_chunk_callback = wl_chunk;
        cb.on_frame_recv_end_callback = wl_frame_end;
    } else {
        cb.on_msg_recv_callback = wl_msg;
    }
    if (wslay_event_context_server_init(&ctx, &cb, r) != 0) {
        fprintf(stderr, "wslay_event_context_server_init failed\n");
        exit(1);
    }
    wslay_event_config_set_no_buffering(ctx, streaming);
    r->pos = 0;
    while (r->pos < s->len) {
        r->piece_end = s->len - r->pos < PIECE ? s->len : r->pos + PIECE;
        if (wslay_event_recv(ctx) != 0 || !wslay_event_want_read(ctx)) {
            fprintf(stderr, "wslay_event_recv failed\n");
            exit(1);
        }
    }
    wslay_event_context_free(ctx);
}

static void pass_wslay_msg(struct run *r)
{
    wl_pass(r, 0);
}

static void pass_wslay_stream(struct run *r)
{
    wl_pass(r, 1);
}

/* Does wslay reject invalid UTF-8 in a text message? (It is not in its
 * documentation; ask it.) 1 = yes, 0 = no. */
static int wslay_checks_utf8(void)
{
    static const uint8_t bad[] = {0x81, 0x82, 0, 0, 0, 0, 0xC0, 0x80};
    struct run r;
    struct stream s;

    memset(&r, 0, sizeof r);
    memset(&s, 0, sizeof s);
    s.wire = (uint8_t *)bad;
    s.len = sizeof bad;
    r.s = &s;
    {
        struct wslay_event_callbacks cb;
        wslay_event_context_ptr ctx;
        int ok;

        memset(&cb, 0, sizeof cb);
        cb.recv_callback = wl_recv;
        cb.send_callback = wl_send;
        cb.on_msg_recv_callback = wl_msg;
        if (wslay_event_context_server_init(&ctx, &cb, &r) != 0)
            return -1;
        r.piece_end = s.len;
        (void)wslay_event_recv(ctx);
        ok = r.msgs == 0;
        wslay_event_context_free(ctx);
        return ok;
    }
}
#endif

/* ------------------------------------------------------------------------ */
/* Timing                                                                   */
/* ------------------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int reps = 7;
static double min_time = 0.2;

/* Passes per second of fn, over at least min_time. */
static double rate_of(void (*fn)(struct run *), struct run *r)
{
    double t0 = now(), t;
    unsigned passes = 0;

    do {
        fn(r);
        passes++;
        t = now() - t0;
    } while (t < min_time && passes < 100000);
    return passes / t;
}

/*
 * Median rate of fn over reps repetitions, and the median of its ratio to
 * memcpy of the same stream, timed right before it in each repetition.
 * On a shared machine the speed changes from one second to the next;
 * pairing makes each ratio compare two runs under the same conditions.
 */
static double measure(void (*fn)(struct run *), struct run *r, double *ratio)
{
    double rate[16], rel[16];
    int i;

    fn(r);                      /* warm-up */
    for (i = 0; i < reps; i++) {
        double m = fn == pass_memcpy ? 0 : rate_of(pass_memcpy, r);
        rate[i] = rate_of(fn, r);
        rel[i] = fn == pass_memcpy ? 1.0 : rate[i] / m;
    }
    qsort(rate, (size_t)reps, sizeof rate[0], cmp_double);
    qsort(rel, (size_t)reps, sizeof rel[0], cmp_double);
    *ratio = rel[reps / 2];
    return rate[reps / 2];
}

/* ------------------------------------------------------------------------ */
/* Main                                                                     */
/* ------------------------------------------------------------------------ */

struct impl {
    const char *name;
    void (*pass)(struct run *);
    int text_only;
};

static const struct impl impls[] = {
    {"memcpy", pass_memcpy, 0},
    {"libws msg", pass_libws_msg, 0},
    {"libws stream", pass_libws_stream, 0},
#if HAVE_WSLAY
    {"wslay msg", pass_wslay_msg, 0},
    {"wslay stream", pass_wslay_stream, 0},
#endif
    {"ws_mask", pass_mask, 0},
    {"ws_utf8", pass_utf8, 1},
};
#define NIMPL (sizeof impls / sizeof impls[0])

static int verify(const struct impl *im, struct run *r)
{
    const struct stream *s = r->s;

    if (im->pass == pass_memcpy || im->pass == pass_mask ||
        im->pass == pass_utf8)
        return 1;
    r->verify = 1;
    r->hash = FNV_INIT;
    r->msgs = r->bytes = 0;
    im->pass(r);
    r->verify = 0;
    if (r->hash != s->hash || r->msgs != s->frames ||
        r->bytes != s->plain_len) {
        fprintf(stderr,
                "%s: delivered %llu messages, %llu bytes, hash %016llx; "
                "expected %llu, %llu, %016llx\n",
                im->name, (unsigned long long)r->msgs,
                (unsigned long long)r->bytes, (unsigned long long)r->hash,
                (unsigned long long)s->frames,
                (unsigned long long)s->plain_len,
                (unsigned long long)s->hash);
        return 0;
    }
    return 1;
}

static const char *size_name(size_t n)
{
    static char buf[32];

    if (n >= 1024 * 1024)
        snprintf(buf, sizeof buf, "%zuMiB", n >> 20);
    else if (n >= 1024)
        snprintf(buf, sizeof buf, "%zuKiB", n >> 10);
    else
        snprintf(buf, sizeof buf, "%zuB", n);
    return buf;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {16, 125, 4096, 1024 * 1024};
    const char *json_path = NULL, *only = NULL;
    FILE *json = NULL;
    struct run r;
    int i, failed = 0, first_json = 1;
    size_t si;
    unsigned k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            reps = 3;
            min_time = 0.05;
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json_path = argv[++i];
        } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--json FILE] "
                            "[--case SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    if (json_path) {
        json = fopen(json_path, "w");
        if (json == NULL) {
            perror(json_path);
            return 2;
        }
        fprintf(json, "[\n");
    }

    memset(&r, 0, sizeof r);
    r.rbuf = malloc(PIECE);
    lw_msg_buf = malloc(MSG_BUF_LEN);
    if (r.rbuf == NULL || lw_msg_buf == NULL)
        return 1;

    printf("libws %s parse bench: 16 MiB of masked client frames, 64 KiB "
           "pieces copied into a receive buffer; median of %d x >= %.2f s\n",
           WS_VERSION_STRING, reps, min_time);
#if HAVE_WSLAY
    printf("wslay (wslayver.h: %s): checks UTF-8 of text messages: %s\n", WSLAY_VERSION,
           wslay_checks_utf8() == 1 ? "yes" : "NO (libws does)");
#else
    printf("wslay: not built in (install libwslay-dev); its rows are "
           "skipped\n");
#endif
    printf("GB/s = stream bytes (headers included) per second; ws_utf8: "
           "payload bytes. xmemcpy: median of paired ratios\n\n");
    printf("%-14s %-12s %9s %12s %9s\n", "case", "impl", "GB/s",
           "frames/s", "xmemcpy");

    for (si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (k = K_BINARY; k <= K_MIXED; k++) {
            struct stream s;
            char name[64];
            double rate[NIMPL], wl_msg = 0, wl_stream = 0;
            size_t ii;

            snprintf(name, sizeof name, "%s %s", size_name(sizes[si]),
                     kind_name[k]);
            if (only && strstr(name, only) == NULL)
                continue;
            build_stream(&s, sizes[si], (enum kind)k);
            r.s = &s;
            for (ii = 0; ii < NIMPL; ii++)
                if (!(impls[ii].text_only && k == K_BINARY) &&
                    !verify(&impls[ii], &r))
                    failed = 1;
            for (ii = 0; ii < NIMPL; ii++) {
                const struct impl *im = &impls[ii];
                double bytes = im->pass == pass_utf8 ? (double)s.plain_len
                                                     : (double)s.len;
                double gbs, fps, ratio;

                if (im->text_only && k == K_BINARY)
                    continue;
                rate[ii] = measure(im->pass, &r, &ratio);
                gbs = rate[ii] * bytes / 1e9;
                fps = rate[ii] * (double)s.frames;
                if (im->pass == pass_utf8)  /* payload bytes, not stream */
                    ratio *= (double)s.plain_len / (double)s.len;
                if (strcmp(im->name, "wslay msg") == 0)
                    wl_msg = rate[ii];
                if (strcmp(im->name, "wslay stream") == 0)
                    wl_stream = rate[ii];
                printf("%-14s %-12s %9.3f %12.0f %9.3f", ii == 0 ? name : "",
                       im->name, gbs, fps, ratio);
                if (json) {
                    fprintf(json,
                            "%s  {\"case\": \"%s\", \"impl\": \"%s\", "
                            "\"gbs\": %.4f, \"frames_per_s\": %.0f, "
                            "\"ratio_memcpy\": %.4f}",
                            first_json ? "" : ",\n", name, im->name, gbs, fps,
                            ratio);
                    first_json = 0;
                }
                printf("\n");
            }
            /* libws vs wslay, same mode. */
            if (wl_msg > 0 && wl_stream > 0)
                printf("%-14s %-12s msg %.2fx, stream %.2fx\n", "",
                       "libws/wslay", rate[1] / wl_msg, rate[2] / wl_stream);
            free_stream(&s);
        }
    }
    if (json) {
        fprintf(json, "\n]\n");
        fclose(json);
    }
    free(r.rbuf);
    free(lw_msg_buf);
    if (failed) {
        printf("\nFAIL: an implementation delivered different bytes\n");
        return 1;
    }
    printf("\nverified: every implementation delivered the generator's "
           "messages (count, bytes, FNV-1a)\n");
    return 0;
}
