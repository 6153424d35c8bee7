/*
 * io_test.c - tests of the I/O layer (ws_io.h) over real sockets.
 *
 * Our client against our server on one loop in this process, raw sockets
 * as slow or bad peers, and examples/echo_server as a child process for
 * the signal test. Only 127.0.0.1 (and ::1 when the host has it).
 *
 *   build/io_test [--echo-server PATH] [--gen-cert PATH] [--list] [NAME...]
 *
 * Prints TAP and a final "N passed, N failed" line; exits 1 on failure.
 * Every test runs in-process, so one test runs alone under gdb:
 *   gdb --args build/io_test backpressure_api     (then: break test_fail)
 * Each test waits at most TEST_DEADLINE_MS for anything; a watchdog alarm
 * ends the run ("Bail out!") if a test is stuck anyway.
 *
 * IO_TEST_SCALE (default 1.0) scales connection and message counts, e.g.
 * IO_TEST_SCALE=0.1 under valgrind.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "ws_io.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_DEADLINE_MS 20000u     /* any one test waits at most this */
#define WATCHDOG_S 40u              /* then the whole run is stopped */
#define MIB (1024u * 1024u)

/* ------------------------------------------------------------------------ */
/* Checks and TAP                                                           */
/* ------------------------------------------------------------------------ */

static unsigned g_failed_checks;    /* in the current test */
static const char *g_skip;          /* set by a test that cannot run here */
static uint64_t g_deadline;         /* the current test's deadline */
static double g_scale = 1.0;
static const char *g_echo_server = "build/examples/echo_server";
static const char *g_gen_cert = "tests/io/gen_cert.sh";
static char g_test_name[64];
static int g_slow;                  /* valgrind or a sanitizer: no RSS check */

/* Every failed check ends here: `break test_fail` in gdb. */
void test_fail(void);
void test_fail(void)
{
    g_failed_checks++;
}

static int check(int ok, const char *expr, const char *file, int line)
{
    if (!ok) {
        printf("#   FAILED: %s  (%s:%d)\n", expr, file, line);
        fflush(stdout);
        test_fail();
    }
    return ok;
}

static int check_eq(long long a, long long b, const char *ea, const char *eb,
                    const char *file, int line)
{
    if (a != b) {
        printf("#   FAILED: %s == %s: %lld != %lld  (%s:%d)\n", ea, eb, a, b,
               file, line);
        fflush(stdout);
        test_fail();
    }
    return a == b;
}

#define EXPECT(e) check((e) != 0, #e, __FILE__, __LINE__)
#define EXPECT_EQ(a, b) \
    check_eq((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)

static void note(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* n scaled by IO_TEST_SCALE, at least min. */
static unsigned scaled(unsigned n, unsigned min)
{
    double v = (double)n * g_scale;

    return v < (double)min ? min : (unsigned)v;
}

/* xorshift32: deterministic, so a payload can be regenerated to compare. */
static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Message content from (seed, opcode): random bytes for binary; for text,
 * letters with some two-byte characters (U+00E9), so that random
 * fragmentation splits characters across frames. */
static void fill(uint8_t *p, size_t n, uint32_t seed, unsigned opcode)
{
    uint32_t x = seed * 2654435761u + 0x9e3779b9u;
    size_t i = 0;

    if (x == 0)
        x = 1;
    while (i < n) {
        uint32_t r = rnd(&x);
        if (opcode == WS_OPCODE_BINARY) {
            p[i++] = (uint8_t)r;
        } else if ((r & 15u) == 0 && n - i >= 2) {
            p[i++] = 0xC3;
            p[i++] = 0xA9;
        } else {
            p[i++] = (uint8_t)('a' + (r >> 8) % 26u);
        }
    }
}

/* Resident set size of process pid (0: this one), in bytes. */
static size_t rss_of(pid_t pid)
{
    char path[64];
    unsigned long size = 0, res = 0;
    FILE *f;

    if (pid)
        snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
    else
        snprintf(path, sizeof path, "/proc/self/statm");
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Open descriptors of this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static rlim_t fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    return rl.rlim_cur;
}

/* ------------------------------------------------------------------------ */
/* Running the loop                                                         */
/* ------------------------------------------------------------------------ */

/* Run the loop until done(arg) or ms elapsed (never past the test's
 * deadline). done() may also do work, such as feeding a raw peer.
 * Returns 1 if done. */
static int run_until(struct ws_loop *loop, int (*done)(void *), void *arg,
                     uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    if (end > g_deadline)
        end = g_deadline;
    for (;;) {
        if (done(arg))
            return 1;
        if (now_ms() >= end)
            return 0;
        ws_loop_run_once(loop, 5);
    }
}

static int never(void *arg)
{
    (void)arg;
    return 0;
}

static void run_for(struct ws_loop *loop, uint64_t ms)
{
    (void)run_until(loop, never, NULL, ms);
}

static int loop_empty(void *arg)
{
    return ws_loop_count(arg) == 0;
}

/* ------------------------------------------------------------------------ */
/* A test server on the loop                                                */
/* ------------------------------------------------------------------------ */

enum srv_mode {
    SRV_ECHO,       /* echo every message */
    SRV_BIG,        /* "big:N" -> send N bytes (ignoring backpressure) */
    SRV_SEQ,        /* count "<n>" messages, check they come in order */
    SRV_QUIET       /* count messages, send nothing */
};

struct srv {
    struct ws_loop *loop;
    struct ws_server *s;
    struct ws_io_options opts;
    unsigned port;
    int mode;
    unsigned opened, closed, clean, msgs, pongs, drains;
    struct ws_io_conn *last;         /* the last connection opened */
    unsigned last_code;
    int last_err;
    uint64_t last_close_at;
    unsigned codes_1001;
    size_t max_queued, drain_buffered;
    unsigned big_served, big_refused;
    unsigned next_seq, seq_bad;
    char peer[80], path[80];
    const char *peer_ptr;            /* ws_io_get_peer(last) in on_open */
    unsigned peer_kept;              /* ... and the same string on_close */
    struct ws_io_conn **conns;       /* open connections (broadcast) */
    size_t nconns, conns_cap;
};

static uint8_t *g_big;              /* 1 MiB of answers for SRV_BIG */

static const uint8_t *big_payload(void)
{
    if (g_big == NULL) {
        g_big = malloc(MIB);
        if (g_big == NULL)
            abort();
        fill(g_big, MIB, 7, WS_OPCODE_BINARY);
    }
    return g_big;
}

static int srv_open(struct ws_io_conn *c, void *user)
{
    struct srv *sv = user;

    sv->opened++;
    sv->last = c;
    sv->peer_ptr = ws_io_get_peer(c);
    snprintf(sv->peer, sizeof sv->peer, "%s", sv->peer_ptr);
    snprintf(sv->path, sizeof sv->path, "%s", ws_io_get_path(c));
    if (sv->conns && sv->nconns < sv->conns_cap)
        sv->conns[sv->nconns++] = c;
    return 0;
}

static int srv_message(struct ws_io_conn *c, unsigned opcode,
                       const uint8_t *p, size_t n, void *user)
{
    struct srv *sv = user;
    size_t q;
    int rv;

    sv->msgs++;
    switch (sv->mode) {
    case SRV_ECHO:
        if (opcode == WS_OPCODE_TEXT)
            (void)ws_io_send_text(c, (const char *)p, n);
        else
            (void)ws_io_send_binary(c, p, n);
        break;
    case SRV_BIG:
        if (n > 4 && memcmp(p, "big:", 4) == 0) {
            size_t want = (size_t)strtoul((const char *)p + 4, NULL, 10);
            if (want > MIB)
                want = MIB;
            /* A careless application: ignores WS_HIGH_WATER. */
            rv = ws_io_send_binary(c, big_payload(), want);
            if (rv == WS_OK || rv == WS_HIGH_WATER)
                sv->big_served++;
            else
                sv->big_refused++;
            q = ws_io_get_buffered(c);
            if (q > sv->max_queued)
                sv->max_queued = q;
        } else if (opcode == WS_OPCODE_TEXT) {
            (void)ws_io_send_text(c, (const char *)p, n);
        } else {
            (void)ws_io_send_binary(c, p, n);
        }
        break;
    case SRV_SEQ: {
        char num[16];
        if (n == 0 || n >= sizeof num) {
            sv->seq_bad++;
            break;
        }
        memcpy(num, p, n);
        num[n] = '\0';
        if (strtoul(num, NULL, 10) != sv->next_seq)
            sv->seq_bad++;
        sv->next_seq++;
        break;
    }
    default:
        break;
    }
    return 0;
}

static int srv_pong(struct ws_io_conn *c, const uint8_t *p, size_t n,
                    void *user)
{
    struct srv *sv = user;

    (void)c;
    (void)p;
    (void)n;
    sv->pongs++;
    return 0;
}

static void srv_drain(struct ws_io_conn *c, void *user)
{
    struct srv *sv = user;

    sv->drains++;
    sv->drain_buffered = ws_io_get_buffered(c);
}

static void srv_close(struct ws_io_conn *c, unsigned code, const char *reason,
                      size_t n, void *user)
{
    struct srv *sv = user;
    size_t i;

    (void)reason;
    (void)n;
    sv->closed++;
    sv->last_code = code;
    sv->last_err = ws_io_get_error(c);
    sv->last_close_at = now_ms();
    if (code == WS_CLOSE_NORMAL && ws_io_get_error(c) == 0)
        sv->clean++;
    if (code == WS_CLOSE_GOING_AWAY)
        sv->codes_1001++;
    if (sv->last == c) {
        /* ws_io.h: the peer text stays valid until c is freed. */
        if (ws_io_get_peer(c) == sv->peer_ptr &&
            strcmp(sv->peer_ptr, sv->peer) == 0)
            sv->peer_kept++;
        sv->last = NULL;
    }
    for (i = 0; i < sv->nconns; i++) {
        if (sv->conns[i] == c) {
            sv->conns[i] = sv->conns[--sv->nconns];
            break;
        }
    }
}

static const struct ws_io_handlers srv_handlers = {
    .on_open = srv_open,
    .on_message = srv_message,
    .on_pong = srv_pong,
    .on_drain = srv_drain,
    .on_close = srv_close,
};

/* Set up sv with default options; the caller may change sv->opts before
 * srv_listen(). */
static void srv_init(struct srv *sv, struct ws_loop *loop, int mode)
{
    memset(sv, 0, sizeof *sv);
    sv->loop = loop;
    sv->mode = mode;
    sv->opts.handlers = &srv_handlers;
    sv->opts.user = sv;
    sv->opts.backlog = 4096;
}

static int srv_listen(struct srv *sv, const char *host)
{
    int rv = ws_server_listen(sv->loop, host, "0", &sv->opts, &sv->s);

    if (rv == WS_OK)
        sv->port = ws_server_port(sv->s);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* A simple client: counts, optionally keeps an echo ping-pong going        */
/* ------------------------------------------------------------------------ */

struct cli {
    struct ws_io_conn *c;
    int opened, closed, pingpong;
    unsigned code;
    int err;
    uint64_t opened_at, closed_at;
    unsigned msgs, pings, pongs, seq, bad;
};

static void cli_send_next(struct cli *k)
{
    char m[32];
    int n = snprintf(m, sizeof m, "m%u", k->seq);

    (void)ws_io_send_text(k->c, m, (size_t)n);
}

static int cli_open(struct ws_io_conn *c, void *user)
{
    struct cli *k = user;

    (void)c;
    k->opened = 1;
    k->opened_at = now_ms();
    if (k->pingpong)
        cli_send_next(k);
    return 0;
}

static int cli_message(struct ws_io_conn *c, unsigned opcode,
                       const uint8_t *p, size_t n, void *user)
{
    struct cli *k = user;

    (void)c;
    (void)opcode;
    k->msgs++;
    if (k->pingpong) {
        char m[32];
        int len = snprintf(m, sizeof m, "m%u", k->seq);
        if ((size_t)len != n || memcmp(m, p, n) != 0)
            k->bad++;
        k->seq++;
        cli_send_next(k);
    }
    return 0;
}

static int cli_ping(struct ws_io_conn *c, const uint8_t *p, size_t n,
                    void *user)
{
    struct cli *k = user;

    (void)c;
    (void)p;
    (void)n;
    k->pings++;
    return 0;
}

static int cli_pong(struct ws_io_conn *c, const uint8_t *p, size_t n,
                    void *user)
{
    struct cli *k = user;

    (void)c;
    (void)p;
    (void)n;
    k->pongs++;
    return 0;
}

static void cli_close(struct ws_io_conn *c, unsigned code, const char *reason,
                      size_t n, void *user)
{
    struct cli *k = user;

    (void)reason;
    (void)n;
    k->closed = 1;
    k->code = code;
    k->err = ws_io_get_error(c);
    k->closed_at = now_ms();
    k->c = NULL;
}

static const struct ws_io_handlers cli_handlers = {
    .on_open = cli_open,
    .on_message = cli_message,
    .on_ping = cli_ping,
    .on_pong = cli_pong,
    .on_close = cli_close,
};

/* Connect k to url with opts (NULL: defaults). */
static int cli_connect(struct ws_loop *loop, struct cli *k, const char *url,
                       const struct ws_io_options *opts)
{
    struct ws_io_options o;

    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    o.handlers = &cli_handlers;
    o.user = k;
    return ws_client_connect(loop, url, &o, &k->c);
}

static int cli_is_open(void *arg)
{
    struct cli *k = arg;

    return k->opened || k->closed;
}

static int srv_closed_one(void *arg)
{
    return ((struct srv *)arg)->closed >= 1;
}

static int cli_is_closed(void *arg)
{
    return ((struct cli *)arg)->closed;
}

/* ------------------------------------------------------------------------ */
/* Raw peers: plain sockets that misbehave                                  */
/* ------------------------------------------------------------------------ */

#define RAW_BUF 4096

/* A streaming parser for what a server sends (unmasked frames, RFC 6455
 * 5.2), for peers that read in bulk: counts frames, keeps the close code,
 * and notices a corrupt stream. */
struct fparse {
    uint8_t hdr[14];
    size_t have, need;          /* header bytes held / needed */
    uint64_t left;              /* payload bytes still to come */
    unsigned op;
    unsigned frames, data_frames, closes, bad;
    unsigned close_code;
    uint8_t ctl[2];
    size_t ctl_have;
};

static void fparse_header_done(struct fparse *f)
{
    unsigned len7 = f->hdr[1] & 0x7fu;
    size_t i;

    f->op = f->hdr[0] & 0x0fu;
    if ((f->hdr[0] & 0x70u) || (f->hdr[1] & 0x80u) ||
        (f->op > 2 && f->op < 8) || f->op > 10 ||
        (f->op >= 8 && (len7 > 125 || !(f->hdr[0] & 0x80u)))) {
        f->bad++;
        return;
    }
    if (len7 < 126) {
        f->left = len7;
    } else {
        f->left = 0;
        for (i = 2; i < f->need; i++)
            f->left = f->left << 8 | f->hdr[i];
    }
    f->ctl_have = 0;
}

static void fparse_frame_done(struct fparse *f)
{
    f->frames++;
    if (f->op == WS_OPCODE_BINARY || f->op == WS_OPCODE_TEXT ||
        f->op == WS_OPCODE_CONTINUATION)
        f->data_frames++;
    if (f->op == WS_OPCODE_CLOSE) {
        f->closes++;
        f->close_code = f->ctl_have >= 2 ? (unsigned)f->ctl[0] << 8 | f->ctl[1]
                                         : WS_CLOSE_NO_STATUS;
    }
    f->have = 0;
}

static void fparse_feed(struct fparse *f, const uint8_t *p, size_t n)
{
    while (n > 0 && f->bad == 0) {
        if (f->have < 2 || f->have < f->need) {
            f->hdr[f->have++] = *p++;
            n--;
            if (f->have == 2) {
                unsigned len7 = f->hdr[1] & 0x7fu;
                f->need = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
            }
            if (f->have >= 2 && f->have == f->need) {
                fparse_header_done(f);
                if (f->bad == 0 && f->left == 0)
                    fparse_frame_done(f);
            }
        } else {
            size_t k = n < f->left ? n : (size_t)f->left;
            size_t i;
            for (i = 0; i < k && f->ctl_have < 2; i++)
                f->ctl[f->ctl_have++] = p[i];
            p += k;
            n -= k;
            f->left -= k;
            if (f->left == 0)
                fparse_frame_done(f);
        }
    }
}

struct raw {
    int fd;
    int eof;             /* 1: the server closed (FIN), 2: reset/error */
    int discard;         /* count and drop what arrives */
    struct fparse *fp;   /* when discarding: parse it on the way */
    uint64_t eof_at;
    uint64_t rx;         /* bytes received after the handshake */
    size_t len;          /* bytes held in buf */
    uint8_t buf[RAW_BUF];
};

static const char raw_request[] =
    "GET /raw HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

static int raw_open(struct raw *r, unsigned port, int rcvbuf)
{
    struct sockaddr_in a;

    memset(r, 0, sizeof *r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->fd < 0)
        return -1;
    if (rcvbuf > 0)
        (void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
                         sizeof rcvbuf);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Blocking connect: on loopback the kernel completes it at once. */
    if (connect(r->fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        fcntl(r->fd, F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(r->fd, F_SETFD, FD_CLOEXEC) < 0) {
        close(r->fd);
        r->fd = -1;
        return -1;
    }
    return 0;
}

static void raw_close(struct raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/* Close with a TCP reset (SO_LINGER 0). */
static void raw_reset(struct raw *r)
{
    struct linger l;

    l.l_onoff = 1;
    l.l_linger = 0;
    (void)setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    raw_close(r);
}

/* Read what is there without blocking. */
static void raw_read(struct raw *r)
{
    static uint8_t sink[65536];

    while (r->fd >= 0 && !r->eof) {
        ssize_t n;
        if (r->discard)
            n = recv(r->fd, sink, sizeof sink, 0);
        else if (r->len < sizeof r->buf)
            n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        else
            return;
        if (n > 0) {
            if (!r->discard)
                r->len += (size_t)n;
            else if (r->fp)
                fparse_feed(r->fp, sink, (size_t)n);
            r->rx += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        r->eof = n == 0 ? 1 : 2;
        r->eof_at = now_ms();
    }
}

static int raw_eof(void *arg)
{
    struct raw *r = arg;

    raw_read(r);
    return r->eof != 0;
}

/* Send all of p, running the loop while the socket is full. */
static int raw_send(struct ws_loop *loop, struct raw *r, const void *p,
                    size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = send(r->fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (now_ms() >= g_deadline)
                return -1;
            ws_loop_run_once(loop, 1);
        } else {
            return -1;
        }
    }
    return 0;
}

static int raw_has_headers(void *arg)
{
    struct raw *r = arg;
    size_t i;

    raw_read(r);
    for (i = 3; i < r->len; i++)
        if (memcmp(r->buf + i - 3, "\r\n\r\n", 4) == 0)
            return 1;
    return r->eof != 0;
}

/* The opening handshake; returns 0 once the 101 has been read. */
static int raw_handshake(struct ws_loop *loop, struct raw *r)
{
    size_t i;

    if (raw_send(loop, r, raw_request, sizeof raw_request - 1) < 0 ||
        !run_until(loop, raw_has_headers, r, 5000) || r->eof)
        return -1;
    if (r->len < 12 || memcmp(r->buf, "HTTP/1.1 101", 12) != 0)
        return -1;
    for (i = 3; i < r->len; i++) {
        if (memcmp(r->buf + i - 3, "\r\n\r\n", 4) == 0) {
            memmove(r->buf, r->buf + i + 1, r->len - i - 1);
            r->len -= i + 1;
            r->rx = r->len;
            return 0;
        }
    }
    return -1;
}

/* A masked client frame (RFC 6455 5.2) into out; returns its size. */
static size_t raw_frame(uint8_t *out, unsigned opcode, int fin,
                        const void *payload, size_t n)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    const uint8_t *p = payload;
    size_t h = 0, i;

    out[h++] = (uint8_t)((fin ? 0x80u : 0u) | opcode);
    if (n < 126) {
        out[h++] = (uint8_t)(0x80u | n);
    } else if (n < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(out + h, key, 4);
    h += 4;
    for (i = 0; i < n; i++)
        out[h + i] = p[i] ^ key[i & 3];
    return h + n;
}

static int raw_send_frame(struct ws_loop *loop, struct raw *r,
                          unsigned opcode, const void *p, size_t n)
{
    uint8_t *f = malloc(n + 14);
    int rv;

    if (f == NULL)
        return -1;
    rv = raw_send(loop, r, f, raw_frame(f, opcode, 1, p, n));
    free(f);
    return rv;
}

/* The header and payload sizes of the server frame at the start of buf
 * (7- or 16-bit length); 0 until they are known. */
static int raw_frame_size(const struct raw *r, size_t *h, size_t *len)
{
    *h = 2;
    if (r->len < 2)
        return 0;
    *len = r->buf[1] & 0x7f;
    if (*len == 126) {
        if (r->len < 4)
            return 0;
        *len = (size_t)r->buf[2] << 8 | r->buf[3];
        *h = 4;
    } else if (*len == 127) {
        return 0;                   /* not expected here */
    }
    return 1;
}

/* Take one whole server frame (unmasked, payload < RAW_BUF) from buf. */
static int raw_take_frame(struct raw *r, unsigned *opcode, uint8_t *payload,
                          size_t *n)
{
    size_t h, len;

    if (!raw_frame_size(r, &h, &len) || r->len < h + len)
        return 0;
    *opcode = r->buf[0] & 0x0f;
    memcpy(payload, r->buf + h, len);
    *n = len;
    memmove(r->buf, r->buf + h + len, r->len - h - len);
    r->len -= h + len;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Echo traffic: many clients, planned messages, byte-exact checks          */
/* ------------------------------------------------------------------------ */

#define MAX_MSGS 6

struct plan {
    uint32_t len, seed;
    unsigned opcode;
};

struct echo_test;

struct eclient {
    struct echo_test *t;
    struct ws_io_conn *c;
    unsigned id;
    uint32_t rng;
    struct plan plan[MAX_MSGS];   /* what it sends = the expected echoes */
    unsigned nmsg, sent, recvd;
    unsigned pings, pongs;
    int opened, closed, waiting_drain;
    unsigned code;
    int err;
};

struct echo_test {
    struct eclient *cl;
    unsigned n, opened, closed, bad, go;
    uint8_t *out, *expect;        /* scratch buffers of 1 MiB */
    uint64_t bytes;               /* payload bytes sent */
};

static void eclient_send(struct eclient *k);

static int ec_open(struct ws_io_conn *c, void *user)
{
    struct eclient *k = user;

    (void)c;
    k->opened = 1;
    k->t->opened++;
    if (k->t->go)
        eclient_send(k);
    return 0;
}

static int ec_message(struct ws_io_conn *c, unsigned opcode,
                      const uint8_t *p, size_t n, void *user)
{
    struct eclient *k = user;
    const struct plan *pl;

    if (k->recvd >= k->nmsg) {
        k->t->bad++;
        return 0;
    }
    pl = &k->plan[k->recvd++];
    if (opcode != pl->opcode || n != pl->len) {
        note("client %u message %u: opcode %u len %zu, expected %u %u",
             k->id, k->recvd - 1, opcode, n, pl->opcode, pl->len);
        k->t->bad++;
    } else {
        fill(k->t->expect, n, pl->seed, pl->opcode);
        if (n && memcmp(k->t->expect, p, n) != 0) {
            note("client %u message %u: payload differs", k->id,
                 k->recvd - 1);
            k->t->bad++;
        }
    }
    if (k->recvd == k->nmsg)
        (void)ws_io_close(c, WS_CLOSE_NORMAL, "done", 4);
    return 0;
}

static int ec_pong(struct ws_io_conn *c, const uint8_t *p, size_t n,
                   void *user)
{
    struct eclient *k = user;

    (void)c;
    if (n != 4 || memcmp(p, &k->id, 4) != 0)
        k->t->bad++;
    k->pongs++;
    return 0;
}

static void ec_drain(struct ws_io_conn *c, void *user)
{
    struct eclient *k = user;

    (void)c;
    if (k->waiting_drain) {
        k->waiting_drain = 0;
        eclient_send(k);
    }
}

static void ec_close(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    struct eclient *k = user;

    k->closed = 1;
    k->code = code;
    k->err = ws_io_get_error(c);
    k->c = NULL;
    k->t->closed++;
    /* Every ping was answered: the server sent each pong before its
     * close frame. */
    if (k->pongs != k->pings) {
        note("client %u: %u pings, %u pongs", k->id, k->pings, k->pongs);
        k->t->bad++;
    }
    if (code != WS_CLOSE_NORMAL || k->err != 0)
        note("client %u closed: %u %.*s (error %s)", k->id, code, (int)n,
             reason, ws_err_name(k->err));
}

static const struct ws_io_handlers ec_handlers = {
    .on_open = ec_open,
    .on_message = ec_message,
    .on_pong = ec_pong,
    .on_drain = ec_drain,
    .on_close = ec_close,
};

/* Plan k's messages: mostly small; a few clients send large ones
 * (big_every = 1: every message is 4 to 8 MiB). */
static void eclient_plan(struct eclient *k, unsigned big_every)
{
    static const uint32_t big[] = {MIB, 65536, 65535, 126, 300000, 125,
                                   700001};
    unsigned i;

    k->rng = k->id * 2246822519u + 3266489917u;
    k->nmsg = big_every == 1 ? 3 : 2 + rnd(&k->rng) % (MAX_MSGS - 1);
    for (i = 0; i < k->nmsg; i++) {
        struct plan *p = &k->plan[i];
        p->seed = k->id * 131u + i;
        p->opcode = rnd(&k->rng) & 1 ? WS_OPCODE_BINARY : WS_OPCODE_TEXT;
        p->len = rnd(&k->rng) % 2048;
        if (rnd(&k->rng) % 8 == 0)
            p->len = 0;
    }
    if (big_every == 1) {
        for (i = 0; i < k->nmsg; i++)
            k->plan[i].len = 4 * MIB + rnd(&k->rng) % (4 * MIB + 1);
    } else if (big_every && k->id % big_every == 0) {
        unsigned j = (k->id / big_every) % (sizeof big / sizeof big[0]);
        k->plan[0].len = big[j];
    }
}

/* Send the next planned messages, each in random fragments with pings
 * between them, until the plan is done or the queue is above high water
 * (then on_drain resumes). */
static void eclient_send(struct eclient *k)
{
    while (k->c && k->sent < k->nmsg && !k->waiting_drain) {
        const struct plan *pl = &k->plan[k->sent];
        unsigned nfrag = 1 + rnd(&k->rng) % 4, f;
        size_t off = 0;
        int high = 0;

        fill(k->t->out, pl->len, pl->seed, pl->opcode);
        if (pl->len < nfrag)
            nfrag = 1;
        for (f = 0; f < nfrag; f++) {
            size_t left = pl->len - off, piece;
            int rv;
            if (f == nfrag - 1)
                piece = left;
            else
                piece = rnd(&k->rng) % (left / (nfrag - f) * 2 + 1);
            if (piece > left)
                piece = left;
            rv = ws_io_send_frame(k->c, f == 0 ? pl->opcode
                                               : WS_OPCODE_CONTINUATION,
                                  f == nfrag - 1, k->t->out + off, piece);
            off += piece;
            if (rv == WS_HIGH_WATER)
                high = 1;
            else if (rv != WS_OK) {
                note("client %u: message %u fragment %u: %s", k->id, k->sent,
                     f, ws_err_name(rv));
                k->t->bad++;
                return;
            }
            if (rnd(&k->rng) % 3 == 0) {
                rv = ws_io_send_ping(k->c, &k->id, 4);
                if (rv == WS_HIGH_WATER)
                    high = 1;
                else if (rv != WS_OK)
                    k->t->bad++;
                k->pings++;
            }
        }
        k->t->bytes += pl->len;
        k->sent++;
        if (high)
            k->waiting_drain = 1;
    }
}

static int echo_all_open(void *arg)
{
    struct echo_test *t = arg;

    return t->opened + t->closed >= t->n;
}

struct echo_done_arg {
    struct echo_test *t;
    struct ws_loop *loop;
    uint64_t progress, progress_at;
    int stalled;
};

/* Done when every client has closed and the loop is empty; gives up
 * early when nothing moves for 3 s (a deadlock fails fast). */
static int echo_all_done(void *arg)
{
    struct echo_done_arg *a = arg;
    uint64_t p = a->t->closed, now = now_ms();
    unsigned i;

    if (a->t->closed == a->t->n && ws_loop_count(a->loop) == 0)
        return 1;
    for (i = 0; i < a->t->n; i++)
        p += a->t->cl[i].recvd + a->t->cl[i].sent;
    if (p != a->progress || a->progress_at == 0) {
        a->progress = p;
        a->progress_at = now;
    } else if (now - a->progress_at > 3000) {
        a->stalled = 1;
        return 1;
    }
    return 0;
}

static int srv_opened_at_least(void *arg)
{
    struct srv *sv = arg;

    return sv->opened >= sv->next_seq;     /* next_seq: the target here */
}

/*
 * n clients against our echo server on one loop: connect all, wait until
 * all n are open at once, then every client sends its planned messages
 * and checks each echo byte for byte, then closes with 1000.
 */
static void echo_run(unsigned loop_flags, unsigned n, unsigned big_every,
                     const char *tls_cert, const char *tls_key,
                     const char *tls_ca)
{
    struct ws_loop *loop = NULL;
    struct echo_test t;
    struct echo_done_arg da;
    struct srv sv;
    struct ws_io_options co;
    char url[64];
    unsigned i, clean = 0, pings = 0;
    uint64_t t0 = now_ms();

    memset(&t, 0, sizeof t);
    t.n = n;
    t.cl = calloc(n, sizeof *t.cl);
    t.out = malloc(big_every == 1 ? 8 * MIB : MIB);
    t.expect = malloc(big_every == 1 ? 8 * MIB : MIB);
    if (!EXPECT(t.cl && t.out && t.expect) ||
        !EXPECT_EQ(ws_loop_new(&loop, loop_flags), WS_OK))
        goto out;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.tls_cert = tls_cert;
    sv.opts.tls_key = tls_key;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    snprintf(url, sizeof url, "%s://127.0.0.1:%u/echo",
             tls_cert ? "wss" : "ws", sv.port);
    memset(&co, 0, sizeof co);
    co.handlers = &ec_handlers;
    co.tls_ca_file = tls_ca;
    for (i = 0; i < n; i++) {
        struct eclient *k = &t.cl[i];
        k->t = &t;
        k->id = i;
        eclient_plan(k, big_every);
        co.user = k;
        if (!EXPECT_EQ(ws_client_connect(loop, url, &co, &k->c), WS_OK))
            goto out;
        /* Connect in batches so the accept queue never overflows (a
         * dropped SYN costs a 1 s retransmit). */
        if ((i + 1) % 100 == 0 || i + 1 == n) {
            sv.next_seq = i + 1;
            (void)run_until(loop, srv_opened_at_least, &sv, 10000);
        }
    }
    /* All n connections open at the same time. */
    EXPECT(run_until(loop, echo_all_open, &t, 10000));
    EXPECT_EQ(t.opened, n);
    EXPECT_EQ(ws_loop_count(loop), 2 * n);
    note("%u connections open after %llu ms", t.opened,
         (unsigned long long)(now_ms() - t0));
    t.go = 1;
    for (i = 0; i < n; i++)
        eclient_send(&t.cl[i]);
    memset(&da, 0, sizeof da);
    da.t = &t;
    da.loop = loop;
    EXPECT(run_until(loop, echo_all_done, &da, TEST_DEADLINE_MS));
    if (!EXPECT(!da.stalled))
        note("no progress for 3 s: stalled");
    for (i = 0; i < n; i++) {
        struct eclient *k = &t.cl[i];
        if (k->closed && k->code == WS_CLOSE_NORMAL && k->err == 0)
            clean++;
        else if (!k->closed)
            note("client %u: not closed (sent %u/%u, got %u, waiting for "
                 "on_drain %d, %zu bytes queued)", i, k->sent, k->nmsg,
                 k->recvd, k->waiting_drain,
                 k->c ? ws_io_get_buffered(k->c) : 0);
        if (k->recvd != k->nmsg && t.bad < 20)
            note("client %u: got %u of %u echoes", i, k->recvd, k->nmsg);
        pings += k->pings;
    }
    EXPECT_EQ(t.bad, 0);
    EXPECT_EQ(clean, n);
    EXPECT_EQ(sv.clean, n);             /* server side: 1000, no error */
    EXPECT_EQ(ws_loop_count(loop), 0);
    note("%u connections, %llu payload bytes each way, %u pings, %llu ms",
         n, (unsigned long long)t.bytes, pings,
         (unsigned long long)(now_ms() - t0));
out:
    if (loop)
        ws_loop_free(loop);
    free(t.cl);
    free(t.out);
    free(t.expect);
}

/* ------------------------------------------------------------------------ */
/* 1. Our client against our server: 1,000 connections                      */
/* ------------------------------------------------------------------------ */

static void test_echo_1000(void)
{
    unsigned n = scaled(1000, 20);
    rlim_t need = (rlim_t)(2 * n + 100);

    if (fd_limit() < need) {
        static char why[96];
        snprintf(why, sizeof why, "open-files limit %lu < %lu",
                 (unsigned long)fd_limit(), (unsigned long)need);
        g_skip = why;
        return;
    }
    echo_run(0, n, 40, NULL, NULL, NULL);
}

/* Messages larger than the kernel's socket buffers, both ways at once:
 * the client goes above high water right after an on_drain while the
 * server's output to it is still above high water. If both ends paused
 * reading, each would wait for the other: no deadlock allowed. */
static void test_echo_big_pipelined(void)
{
    echo_run(0, scaled(4, 2), 1, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------ */
/* 2. TLS                                                                   */
/* ------------------------------------------------------------------------ */

static char g_cert_dir[64];         /* the test CA and server certificate */
static char g_cert_dir2[64];        /* another CA (for "wrong CA") */
static int g_certs_ok = -1;         /* -1: not tried yet */
static int g_other_ok;              /* other.pem: valid chain, wrong name */

static void cert_path(char *out, size_t cap, const char *dir, const char *f)
{
    snprintf(out, cap, "%s/%s", dir, f);
}

static int run_cmd(const char *cmd)
{
    int st = system(cmd);

    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Make a CA and a server certificate in dir: with gen_cert.sh if present,
 * else with the openssl command line directly. */
static int make_certs(const char *dir)
{
    char cmd[2048];
    struct stat st;

    if (stat(g_gen_cert, &st) == 0) {
        snprintf(cmd, sizeof cmd, "sh '%s' '%s'", g_gen_cert, dir);
        if (run_cmd(cmd) == 0)
            return 0;
        note("%s failed; making certificates with openssl", g_gen_cert);
    }
    snprintf(cmd, sizeof cmd,
             "cd '%s' && "
             "printf 'basicConstraints=critical,CA:TRUE\\n"
             "keyUsage=critical,keyCertSign,cRLSign\\n' > ca.ext && "
             "printf 'basicConstraints=critical,CA:FALSE\\n"
             "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\\n' > s.ext && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out ca.key && "
             "openssl req -new -key ca.key -subj '/CN=io_test CA' -out ca.csr"
             " && openssl x509 -req -in ca.csr -signkey ca.key -days 2 "
             "-extfile ca.ext -out ca.pem && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out server.key && "
             "openssl req -new -key server.key -subj '/CN=localhost' "
             "-out s.csr && "
             "openssl x509 -req -in s.csr -CA ca.pem -CAkey ca.key "
             "-set_serial 2 -days 2 -extfile s.ext -out server.pem",
             dir);
    return run_cmd(cmd);
}

/* A certificate from the same CA for another name (other.invalid only):
 * the chain verifies, the name does not. */
static int make_other_cert(const char *dir)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd,
             "cd '%s' && "
             "printf 'basicConstraints=critical,CA:FALSE\\n"
             "subjectAltName=DNS:other.invalid\\n' > o.ext && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out other.key 2>/dev/null && "
             "openssl req -new -key other.key -subj '/CN=other.invalid' "
             "-out o.csr 2>/dev/null && "
             "openssl x509 -req -in o.csr -CA ca.pem -CAkey ca.key "
             "-set_serial 3 -days 2 -extfile o.ext -out other.pem "
             "2>/dev/null",
             dir);
    return run_cmd(cmd);
}

static void remove_certs(void)
{
    char cmd[256];

    if (g_cert_dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_cert_dir);
        (void)run_cmd(cmd);
    }
    if (g_cert_dir2[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_cert_dir2);
        (void)run_cmd(cmd);
    }
}

static int certs_ready(void)
{
    if (g_certs_ok >= 0)
        return g_certs_ok;
    g_certs_ok = 0;
#if defined(WS_OPENSSL) && WS_OPENSSL == 0
    return 0;                   /* built without TLS */
#endif
    snprintf(g_cert_dir, sizeof g_cert_dir, "/tmp/io_test_certs.XXXXXX");
    snprintf(g_cert_dir2, sizeof g_cert_dir2, "/tmp/io_test_certs.XXXXXX");
    if (mkdtemp(g_cert_dir) == NULL || mkdtemp(g_cert_dir2) == NULL) {
        g_cert_dir[0] = g_cert_dir2[0] = '\0';
        return 0;
    }
    atexit(remove_certs);
    if (make_certs(g_cert_dir) != 0 || make_certs(g_cert_dir2) != 0)
        return 0;
    g_other_ok = make_other_cert(g_cert_dir) == 0;
    g_certs_ok = 1;
    return 1;
}

static void test_tls_echo(void)
{
    char cert[96], key[96], ca[96];

    if (!certs_ready()) {
        g_skip = "no TLS (WS_OPENSSL=0) or no openssl command";
        return;
    }
    cert_path(cert, sizeof cert, g_cert_dir, "server.pem");
    cert_path(key, sizeof key, g_cert_dir, "server.key");
    cert_path(ca, sizeof ca, g_cert_dir, "ca.pem");
    echo_run(0, scaled(50, 10), 10, cert, key, ca);
}

/* One client that must fail verification: on_close with an error, never
 * open, and the server side ends too. */
static void expect_tls_failure(struct ws_loop *loop, struct srv *sv,
                               const char *what, const char *ca, int insecure)
{
    struct ws_io_options o;
    struct cli k;
    char url[64];

    memset(&k, 0, sizeof k);
    memset(&o, 0, sizeof o);
    o.tls_ca_file = ca;
    o.tls_insecure = insecure;
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/", sv->port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, &o), WS_OK))
        return;
    EXPECT(run_until(loop, cli_is_closed, &k, 5000));
    note("%s: on_close %u, error %s", what, k.code, ws_err_name(k.err));
    EXPECT(!k.opened);
    EXPECT(k.closed);
    EXPECT(k.err != 0);
    EXPECT_EQ(k.code, WS_CLOSE_ABNORMAL);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
}

static void test_tls_verify_fails(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv, sv2;
    char cert[96], key[96], ca[96], ca2[96], ocert[96], okey[96], url[64];
    struct ws_io_options o;
    struct cli k;

    if (!certs_ready()) {
        g_skip = "no TLS (WS_OPENSSL=0) or no openssl command";
        return;
    }
    cert_path(cert, sizeof cert, g_cert_dir, "server.pem");
    cert_path(key, sizeof key, g_cert_dir, "server.key");
    cert_path(ca, sizeof ca, g_cert_dir, "ca.pem");
    cert_path(ca2, sizeof ca2, g_cert_dir2, "ca.pem");
    cert_path(ocert, sizeof ocert, g_cert_dir, "other.pem");
    cert_path(okey, sizeof okey, g_cert_dir, "other.key");
    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.tls_cert = cert;
    sv.opts.tls_key = key;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    /* The system CAs do not know the test CA. */
    expect_tls_failure(loop, &sv, "system CAs", NULL, 0);
    /* Another CA. */
    expect_tls_failure(loop, &sv, "wrong CA", ca2, 0);
    /* The right CA, but the certificate is for another name. */
    if (g_other_ok) {
        srv_init(&sv2, loop, SRV_ECHO);
        sv2.opts.tls_cert = ocert;
        sv2.opts.tls_key = okey;
        if (EXPECT_EQ(srv_listen(&sv2, "127.0.0.1"), WS_OK))
            expect_tls_failure(loop, &sv2, "name mismatch", ca, 0);
    } else {
        note("no other.pem: name-mismatch case not run");
    }
    EXPECT(sv.opened == 0);
    /* Control: the same server with verification off, then with the
     * right CA, opens. */
    memset(&o, 0, sizeof o);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/", sv.port);
    for (o.tls_insecure = 1; o.tls_insecure >= 0; o.tls_insecure--) {
        memset(&k, 0, sizeof k);
        o.tls_ca_file = o.tls_insecure ? NULL : ca;
        if (!EXPECT_EQ(cli_connect(loop, &k, url, &o), WS_OK))
            break;
        EXPECT(run_until(loop, cli_is_open, &k, 5000));
        EXPECT(k.opened);
        if (k.c)
            (void)ws_io_close(k.c, WS_CLOSE_NORMAL, NULL, 0);
        EXPECT(run_until(loop, cli_is_closed, &k, 5000));
        EXPECT_EQ(k.code, WS_CLOSE_NORMAL);
        EXPECT_EQ(k.err, 0);
    }
out:
    ws_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* 3. Slow and bad peers                                                    */
/* ------------------------------------------------------------------------ */

struct trickle {
    struct raw *r;
    struct srv *sv;
    size_t sent;
    uint64_t next;
};

/* Send one more byte of the request every 200 ms until the server drops
 * the connection. */
static int trickle_step(void *arg)
{
    struct trickle *tr = arg;
    uint64_t now = now_ms();

    raw_read(tr->r);
    if (tr->r->eof)
        return 1;
    if (now >= tr->next && tr->sent < sizeof raw_request - 1) {
        if (send(tr->r->fd, raw_request + tr->sent, 1, MSG_NOSIGNAL) == 1)
            tr->sent++;
        else if (errno != EAGAIN) {
            tr->r->eof = 2;
            tr->r->eof_at = now;
            return 1;
        }
        tr->next = now + 200;
    }
    return 0;
}

static void test_slow_handshake(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw r;
    struct cli k;
    struct trickle tr;
    char url[64];
    uint64_t t0, took;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.handshake_timeout_ms = 1000;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK) ||
        !EXPECT_EQ(raw_open(&r, sv.port, 0), 0))
        goto out;
    t0 = now_ms();
    memset(&tr, 0, sizeof tr);
    tr.r = &r;
    tr.sv = &sv;
    /* A normal client at the same time is served at once. */
    memset(&k, 0, sizeof k);
    k.pingpong = 1;
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", sv.port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, NULL), WS_OK))
        goto out;
    EXPECT(run_until(loop, trickle_step, &tr, 5000));
    took = r.eof_at - t0;
    note("trickling client dropped after %llu ms (%zu bytes sent); normal "
         "client: %u echoes meanwhile", (unsigned long long)took, tr.sent,
         k.msgs);
    EXPECT(r.eof != 0);
    EXPECT(took >= 900 && took <= 2500);
    EXPECT(tr.sent < sizeof raw_request - 1);
    EXPECT(k.opened && !k.closed);
    EXPECT(k.opened_at - t0 < 500);
    EXPECT(k.msgs > 10);
    EXPECT_EQ(k.bad, 0);
    EXPECT_EQ(sv.closed, 1);
    EXPECT_EQ(sv.last_code, WS_CLOSE_ABNORMAL);
    EXPECT_EQ(sv.last_err, WS_ERR_HANDSHAKE);
    raw_close(&r);
    if (k.c)
        ws_io_close(k.c, WS_CLOSE_NORMAL, NULL, 0);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    EXPECT_EQ(k.code, WS_CLOSE_NORMAL);
out:
    ws_loop_free(loop);
}

struct bad_reader {
    struct srv *sv;
    struct raw *r;
    size_t rss_max;
    uint64_t next_sample;
};

static void sample_rss(struct bad_reader *b)
{
    uint64_t now = now_ms();

    if (now >= b->next_sample) {
        size_t rss = rss_of(0);
        if (rss > b->rss_max)
            b->rss_max = rss;
        b->next_sample = now + 20;
    }
}

static int bad_reader_cut(void *arg)
{
    struct bad_reader *b = arg;

    sample_rss(b);
    return b->sv->big_refused > 0;
}

static int bad_reader_sampling(void *arg)
{
    sample_rss(arg);
    return 0;
}

static int raw_got_close(void *arg)
{
    struct raw *r = arg;

    raw_read(r);
    return r->eof || (r->fp && (r->fp->closes > 0 || r->fp->bad));
}

/*
 * A peer that asks for big answers and never reads: the server's queue
 * reaches max_buffered and the connection is failed with 1008, memory
 * stays bounded, and a normal client is served all along. When the peer
 * finally reads, it gets whole frames and then the close frame.
 */
static void test_never_reads(void)
{
    enum { REQUESTS = 64 };
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw r;
    struct cli k;
    struct bad_reader b;
    struct fparse fp;
    char url[64];
    uint8_t *burst = NULL;
    size_t blen = 0, rss0;
    unsigned i, echoes0, echoes1;
    uint64_t t0;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    (void)big_payload();                /* allocated before measuring */
    srv_init(&sv, loop, SRV_BIG);
    sv.opts.high_water = 1 * MIB;
    sv.opts.low_water = 256 * 1024;
    sv.opts.max_buffered = 4 * MIB;
    sv.opts.close_timeout_ms = 5000;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    memset(&k, 0, sizeof k);
    k.pingpong = 1;
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", sv.port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, NULL), WS_OK) ||
        !EXPECT(run_until(loop, cli_is_open, &k, 5000)))
        goto out;
    if (!EXPECT_EQ(raw_open(&r, sv.port, 0), 0))
        goto out;
    if (!EXPECT_EQ(raw_handshake(loop, &r), 0))
        goto close_raw;
    /* 64 requests for 1 MiB each, in one write: 64 MiB if unbounded. */
    burst = malloc(REQUESTS * 32);
    if (!EXPECT(burst != NULL))
        goto close_raw;
    for (i = 0; i < REQUESTS; i++)
        blen += raw_frame(burst + blen, WS_OPCODE_TEXT, 1, "big:1048576", 11);
    run_for(loop, 50);
    rss0 = rss_of(0);
    memset(&b, 0, sizeof b);
    b.sv = &sv;
    b.r = &r;
    b.rss_max = rss0;
    echoes0 = k.msgs;
    t0 = now_ms();
    EXPECT_EQ(raw_send(loop, &r, burst, blen), 0);
    EXPECT(run_until(loop, bad_reader_cut, &b, 5000));
    /* The peer is stuck; everyone else goes on. */
    echoes1 = k.msgs;
    run_until(loop, bad_reader_sampling, &b, 300);
    note("bad peer: %u answers queued, %u refused, max queue %zu KiB, cut "
         "off after %llu ms; RSS %zu -> max %zu KiB; normal client: %u "
         "echoes meanwhile, %u after the cut", sv.big_served,
         sv.big_refused, sv.max_queued / 1024,
         (unsigned long long)(now_ms() - t0), rss0 / 1024, b.rss_max / 1024,
         k.msgs - echoes0, k.msgs - echoes1);
    EXPECT(sv.big_refused > 0);                 /* it was cut off ... */
    EXPECT(sv.big_served < REQUESTS);
    EXPECT(sv.max_queued <= 4 * MIB + MIB + 64); /* ... at the cap */
    if (!g_slow)
        EXPECT(b.rss_max - rss0 < 24 * MIB);
    EXPECT(k.msgs - echoes1 > 20);               /* served meanwhile */
    EXPECT_EQ(sv.closed, 0);
    /* Now the peer reads: whole answers, then close 1008. */
    memset(&fp, 0, sizeof fp);
    r.discard = 1;
    r.fp = &fp;
    EXPECT(run_until(loop, raw_got_close, &r, 5000));
    note("peer read %llu bytes: %u frames (%u data), close %u, %s",
         (unsigned long long)r.rx, fp.frames, fp.data_frames,
         fp.close_code, fp.bad ? "CORRUPT stream" : "stream intact");
    EXPECT_EQ(fp.bad, 0);
    EXPECT_EQ(fp.closes, 1);
    EXPECT_EQ(fp.close_code, WS_CLOSE_POLICY_VIOLATION);
    /* The answer whose send crossed the cap (it returned an error) may
     * still go out whole, before the close frame. */
    EXPECT(fp.data_frames == sv.big_served ||
           fp.data_frames == sv.big_served + 1);
    EXPECT_EQ(raw_send_frame(loop, &r, WS_OPCODE_CLOSE, "\x03\xf0", 2), 0);
    EXPECT(run_until(loop, raw_eof, &r, 5000));
    /* The server half-closed first and drains until our FIN (RFC 6455
     * 7.1.1; no reset can destroy its close frame). */
    (void)shutdown(r.fd, SHUT_WR);
    EXPECT(run_until(loop, srv_closed_one, &sv, 5000));
    EXPECT_EQ(sv.closed, 1);
    EXPECT_EQ(sv.last_code, WS_CLOSE_POLICY_VIOLATION);
    EXPECT(sv.last_err != 0);
    EXPECT(k.opened && !k.closed);
    EXPECT_EQ(k.bad, 0);
close_raw:
    raw_close(&r);
    if (k.c)
        ws_io_close(k.c, WS_CLOSE_NORMAL, NULL, 0);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
out:
    free(burst);
    ws_loop_free(loop);
}

struct accepted_arg {
    struct ws_loop *loop;
    size_t n;
};

static int loop_has(void *arg)
{
    struct accepted_arg *a = arg;

    return ws_loop_count(a->loop) >= a->n;
}

/*
 * Resets mid-handshake and mid-frame (SO_LINGER 0 + close) leak no
 * descriptor: /proc/self/fd counts the same before and after.
 */
static void test_resets_leak_nothing(void)
{
    enum { N = 50 };
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw *r = NULL;
    struct accepted_arg aa;
    uint8_t frame[64];
    size_t flen;
    int fds0, fds1, i, ok = 0;

    r = calloc(N, sizeof *r);
    if (!EXPECT(r != NULL) || !EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        goto out;
    srv_init(&sv, loop, SRV_ECHO);
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    run_for(loop, 10);
    fds0 = count_fds();
    /* Mid-handshake: half a request, then a reset. */
    for (i = 0; i < N; i++) {
        if (!EXPECT_EQ(raw_open(&r[i], sv.port, 0), 0))
            goto out;
        EXPECT_EQ(raw_send(loop, &r[i], raw_request, 40), 0);
    }
    aa.loop = loop;
    aa.n = N;
    EXPECT(run_until(loop, loop_has, &aa, 5000));
    run_for(loop, 20);
    for (i = 0; i < N; i++)
        raw_reset(&r[i]);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    /* Mid-frame: after the handshake, a frame header promising 1000
     * bytes and 10 of them, then a reset. */
    flen = raw_frame(frame, WS_OPCODE_BINARY, 1, "0123456789", 10);
    frame[1] = 0x80 | 126;              /* claim 1000 bytes instead */
    memmove(frame + 4, frame + 2, flen - 2);
    frame[2] = 1000 >> 8;
    frame[3] = 1000 & 0xff;
    flen += 2;
    for (i = 0; i < N; i++) {
        if (!EXPECT_EQ(raw_open(&r[i], sv.port, 0), 0))
            goto out;
        if (EXPECT_EQ(raw_handshake(loop, &r[i]), 0) &&
            EXPECT_EQ(raw_send(loop, &r[i], frame, flen), 0))
            ok++;
    }
    run_for(loop, 30);
    for (i = 0; i < N; i++)
        raw_reset(&r[i]);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    run_for(loop, 20);
    fds1 = count_fds();
    note("fds before %d, after %d; server saw %u closes", fds0, fds1,
         sv.closed);
    EXPECT_EQ(ok, N);
    EXPECT_EQ(fds1, fds0);
    EXPECT_EQ(sv.closed, 2 * N);
    EXPECT_EQ(sv.clean, 0);
out:
    if (loop)
        ws_loop_free(loop);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* 4. Backpressure API                                                      */
/* ------------------------------------------------------------------------ */

struct read_until {
    struct raw *r;
    struct srv *sv;
    uint64_t want_rx;
    unsigned want_drains;
};

static int read_until_drained(void *arg)
{
    struct read_until *u = arg;

    raw_read(u->r);
    return u->sv->drains >= u->want_drains || u->r->eof;
}

static int read_until_all(void *arg)
{
    struct read_until *u = arg;

    raw_read(u->r);
    return u->r->rx >= u->want_rx || u->r->eof;
}

static int srv_has_conn(void *arg)
{
    return ((struct srv *)arg)->last != NULL;
}

static int srv_got_msg(void *arg)
{
    return ((struct srv *)arg)->msgs > 0;
}

static void backpressure(unsigned loop_flags)
{
    enum { MSG = 60000, WIRE = MSG + 4 };   /* 16-bit length: 4-byte head */
    const size_t high = 512 * 1024, low = 128 * 1024;
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw r;
    struct read_until u;
    struct ws_io_conn *c;
    uint8_t *msg = NULL;
    uint64_t wire = 0;
    unsigned episode, i;
    int rv = WS_OK;

    msg = malloc(MSG);
    if (!EXPECT(msg != NULL) ||
        !EXPECT_EQ(ws_loop_new(&loop, loop_flags), WS_OK))
        goto out;
    fill(msg, MSG, 99, WS_OPCODE_BINARY);
    srv_init(&sv, loop, SRV_QUIET);
    sv.opts.high_water = high;
    sv.opts.low_water = low;
    sv.opts.max_buffered = 64 * MIB;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK) ||
        !EXPECT_EQ(raw_open(&r, sv.port, 64 * 1024), 0))
        goto out;
    if (!EXPECT_EQ(raw_handshake(loop, &r), 0) ||
        !EXPECT(run_until(loop, srv_has_conn, &sv, 5000)))
        goto close_raw;
    c = sv.last;
    EXPECT_EQ(ws_io_get_buffered(c), 0);
    for (episode = 1; episode <= 2; episode++) {
        size_t before = 0, after;
        unsigned sends = 0;
        /* The peer does not read: send until WS_HIGH_WATER. */
        for (i = 0; i < 5000; i++) {
            before = ws_io_get_buffered(c);
            rv = ws_io_send_binary(c, msg, MSG);
            after = ws_io_get_buffered(c);
            wire += WIRE;
            sends++;
            if (rv != WS_OK)
                break;
            /* Once output waits, every frame is queued whole. */
            if (before > 0 && !EXPECT_EQ(after, before + WIRE))
                break;
            EXPECT(after <= high);
        }
        note("episode %u: WS_HIGH_WATER after %u sends, %zu bytes queued",
             episode, sends, ws_io_get_buffered(c));
        EXPECT_EQ(rv, WS_HIGH_WATER);
        EXPECT(before <= high);
        EXPECT(ws_io_get_buffered(c) > high);
        EXPECT(ws_io_get_buffered(c) <= wire - r.rx);
        /* Above high water, more sends are still queued (and say so). */
        for (i = 0; i < 3; i++) {
            before = ws_io_get_buffered(c);
            EXPECT_EQ(ws_io_send_binary(c, msg, MSG), WS_HIGH_WATER);
            EXPECT_EQ(ws_io_get_buffered(c), before + WIRE);
            wire += WIRE;
        }
        /* Reading from this peer is paused meanwhile. */
        EXPECT_EQ(raw_send_frame(loop, &r, WS_OPCODE_TEXT, "hello", 5), 0);
        run_for(loop, 100);
        EXPECT_EQ(sv.msgs, episode - 1);
        EXPECT_EQ(sv.drains, episode - 1);
        /* The peer reads: on_drain once, below low water. */
        r.discard = 1;
        memset(&u, 0, sizeof u);
        u.r = &r;
        u.sv = &sv;
        u.want_drains = episode;
        EXPECT(run_until(loop, read_until_drained, &u, 10000));
        EXPECT_EQ(sv.drains, episode);
        EXPECT(sv.drain_buffered <= low);
        /* ... and every byte sent arrives, with no second on_drain. */
        u.want_rx = wire;
        EXPECT(run_until(loop, read_until_all, &u, 10000));
        EXPECT_EQ(r.rx, wire);
        EXPECT_EQ(ws_io_get_buffered(c), 0);
        EXPECT(run_until(loop, srv_got_msg, &sv, 2000));
        run_for(loop, 50);
        EXPECT_EQ(sv.drains, episode);
        EXPECT_EQ(sv.msgs, episode);        /* reading resumed */
        EXPECT_EQ(r.eof, 0);
        r.discard = 0;
    }
    EXPECT_EQ(ws_io_send_binary(c, msg, 10), WS_OK);
    /* Close from the peer; the server answers and half-closes first
     * (RFC 6455 7.1.1); the peer then closes its side, as clients do. */
    EXPECT_EQ(raw_send_frame(loop, &r, WS_OPCODE_CLOSE, "\x03\xe8", 2), 0);
    r.discard = 1;
    EXPECT(run_until(loop, raw_eof, &r, 5000));
    (void)shutdown(r.fd, SHUT_WR);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    EXPECT_EQ(sv.clean, 1);
close_raw:
    raw_close(&r);
out:
    if (loop)
        ws_loop_free(loop);
    free(msg);
}

static void test_backpressure_api(void)
{
    backpressure(0);
}

/* ------------------------------------------------------------------------ */
/* 5. Timers                                                                */
/* ------------------------------------------------------------------------ */

/* Both sides ping every 100 ms of silence; both answer: nothing closes. */
static void test_ping_answered(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct cli k;
    struct ws_io_options o;
    char url[64];

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.ping_interval_ms = 100;
    sv.opts.pong_timeout_ms = 300;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    memset(&k, 0, sizeof k);
    memset(&o, 0, sizeof o);
    o.ping_interval_ms = 150;
    o.pong_timeout_ms = 300;
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", sv.port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, &o), WS_OK) ||
        !EXPECT(run_until(loop, cli_is_open, &k, 5000)))
        goto out;
    run_for(loop, 1000);
    note("server got %u pongs, client got %u pings and %u pongs", sv.pongs,
         k.pings, k.pongs);
    EXPECT(sv.pongs >= 3);
    EXPECT(k.pings >= 3);
    EXPECT(k.opened && !k.closed);
    EXPECT_EQ(sv.closed, 0);
    if (k.c)
        ws_io_close(k.c, WS_CLOSE_NORMAL, NULL, 0);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    EXPECT_EQ(k.code, WS_CLOSE_NORMAL);
    EXPECT_EQ(k.err, 0);
out:
    ws_loop_free(loop);
}

/* Whether a whole server frame is in r->buf (or the peer is gone). */
static int raw_has_frame(void *arg)
{
    struct raw *r = arg;
    size_t h, len;

    raw_read(r);
    return r->eof != 0 ||
           (raw_frame_size(r, &h, &len) && r->len >= h + len);
}

/*
 * Server connections share one core buffer, and the core keeps a control
 * frame that arrives in pieces at its end: such a connection must get a
 * buffer of its own until the frame is complete (ws_conn_buffer_busy).
 * Here a ping arrives in two pieces, and between them another client's
 * 4,000-byte Upgrade request fills the shared buffer: the pong must still
 * carry the ping's payload, byte for byte.
 */
static void test_ping_split_while_buffer_shared(void)
{
    static const char head[] =
        "GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nX-Filler: ";
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw a, b;
    uint8_t ping[120], frame[140], payload[RAW_BUF];
    char req[4000];
    unsigned op = 0;
    size_t i, fl, n = 0, at;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK) ||
        !EXPECT_EQ(raw_open(&a, sv.port, 0), 0))
        goto out;
    if (!EXPECT_EQ(raw_open(&b, sv.port, 0), 0))
        goto close_a;
    if (!EXPECT_EQ(raw_handshake(loop, &a), 0))
        goto close_b;
    for (i = 0; i < sizeof ping; i++)
        ping[i] = (uint8_t)(i * 7 + 1);
    fl = raw_frame(frame, WS_OPCODE_PING, 1, ping, sizeof ping);
    /* The header and 40 of the 120 payload bytes, then the server reads. */
    EXPECT_EQ(raw_send(loop, &a, frame, 46), 0);
    run_for(loop, 50);
    /* A request that fills all but the last bytes of a 4 KiB buffer. */
    memcpy(req, head, sizeof head - 1);
    at = sizeof head - 1;
    memset(req + at, 'f', sizeof req - at - 4);
    memcpy(req + sizeof req - 4, "\r\n\r\n", 4);
    EXPECT_EQ(raw_send(loop, &b, req, sizeof req), 0);
    EXPECT(run_until(loop, raw_has_headers, &b, 5000));
    EXPECT(b.len >= 12 && memcmp(b.buf, "HTTP/1.1 101", 12) == 0);
    /* The rest of the ping. */
    EXPECT_EQ(raw_send(loop, &a, frame + 46, fl - 46), 0);
    EXPECT(run_until(loop, raw_has_frame, &a, 5000));
    EXPECT(raw_take_frame(&a, &op, payload, &n));
    EXPECT_EQ(op, WS_OPCODE_PONG);
    EXPECT_EQ(n, sizeof ping);
    EXPECT(n == sizeof ping && memcmp(payload, ping, n) == 0);
    EXPECT_EQ(sv.closed, 0);
close_b:
    raw_close(&b);
close_a:
    raw_close(&a);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
out:
    ws_loop_free(loop);
}

/* A raw peer that never answers pings: closed after ping + pong timeout. */
static void test_pong_timeout(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw r;
    uint8_t payload[RAW_BUF];
    unsigned op = 0, pings = 0;
    size_t n;
    uint64_t t0, took;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.ping_interval_ms = 200;
    sv.opts.pong_timeout_ms = 300;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK) ||
        !EXPECT_EQ(raw_open(&r, sv.port, 0), 0))
        goto out;
    if (!EXPECT_EQ(raw_handshake(loop, &r), 0))
        goto close_raw;
    t0 = now_ms();
    EXPECT(run_until(loop, raw_eof, &r, 5000));
    took = r.eof_at - t0;
    while (raw_take_frame(&r, &op, payload, &n))
        if (op == WS_OPCODE_PING)
            pings++;
    note("silent peer: %u ping(s), disconnected after %llu ms; server "
         "on_close %u, error %s", pings, (unsigned long long)took,
         sv.last_code, ws_err_name(sv.last_err));
    EXPECT_EQ(pings, 1);
    EXPECT(took >= 450 && took <= 1500);
    EXPECT_EQ(sv.closed, 1);
    EXPECT_EQ(sv.last_code, WS_CLOSE_ABNORMAL);
    EXPECT(sv.last_err != 0);
close_raw:
    raw_close(&r);
out:
    ws_loop_free(loop);
}

/* No traffic for idle_timeout_ms: the server closes with 1001. */
static void test_idle_timeout(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct cli k;
    char url[64];
    uint64_t took;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.idle_timeout_ms = 300;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    memset(&k, 0, sizeof k);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", sv.port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, NULL), WS_OK) ||
        !EXPECT(run_until(loop, cli_is_open, &k, 5000)))
        goto out;
    EXPECT(run_until(loop, cli_is_closed, &k, 5000));
    took = k.closed_at - k.opened_at;
    note("idle client closed after %llu ms with %u",
         (unsigned long long)took, k.code);
    EXPECT_EQ(k.code, WS_CLOSE_GOING_AWAY);
    EXPECT_EQ(k.err, 0);
    EXPECT(took >= 250 && took <= 1500);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    EXPECT_EQ(sv.codes_1001, 1);
out:
    ws_loop_free(loop);
}

/* The peer gets our close frame and never answers: disconnected after
 * close_timeout_ms. */
static void test_close_timeout(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw r;
    uint8_t payload[RAW_BUF];
    unsigned op = 0;
    size_t n = 0;
    uint64_t t0, took;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.close_timeout_ms = 400;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK) ||
        !EXPECT_EQ(raw_open(&r, sv.port, 0), 0))
        goto out;
    if (!EXPECT_EQ(raw_handshake(loop, &r), 0) ||
        !EXPECT(run_until(loop, srv_has_conn, &sv, 5000)))
        goto close_raw;
    t0 = now_ms();
    EXPECT_EQ(ws_io_close(sv.last, WS_CLOSE_NORMAL, "bye", 3), WS_OK);
    EXPECT(run_until(loop, raw_eof, &r, 5000));
    took = r.eof_at - t0;
    EXPECT(raw_take_frame(&r, &op, payload, &n));
    EXPECT_EQ(op, WS_OPCODE_CLOSE);
    EXPECT(n == 5 && payload[0] == 0x03 && payload[1] == 0xe8 &&
           memcmp(payload + 2, "bye", 3) == 0);
    note("peer silent after our close: disconnected after %llu ms; server "
         "on_close %u, error %s", (unsigned long long)took, sv.last_code,
         ws_err_name(sv.last_err));
    EXPECT(took >= 350 && took <= 1500);
    EXPECT_EQ(sv.closed, 1);
    EXPECT_EQ(sv.last_code, WS_CLOSE_ABNORMAL);
    EXPECT(sv.last_err != 0);           /* the handshake did not finish */
close_raw:
    raw_close(&r);
out:
    ws_loop_free(loop);
}

static uint64_t cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000u;
}

/* ping_interval_ms with pong_timeout_ms off and a peer that never answers:
 * one ping, the connection stays, and the loop sleeps (no busy timer). */
static void test_ping_without_pong_timeout(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw r;
    uint8_t payload[RAW_BUF];
    unsigned op = 0, pings = 0;
    size_t n;
    uint64_t cpu0, cpu;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.ping_interval_ms = 100;
    sv.opts.pong_timeout_ms = WS_IO_TIMEOUT_OFF;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK) ||
        !EXPECT_EQ(raw_open(&r, sv.port, 0), 0))
        goto out;
    if (!EXPECT_EQ(raw_handshake(loop, &r), 0))
        goto close_raw;
    cpu0 = cpu_ms();
    run_for(loop, 600);
    cpu = cpu_ms() - cpu0;
    raw_read(&r);
    while (raw_take_frame(&r, &op, payload, &n))
        if (op == WS_OPCODE_PING)
            pings++;
    note("%u ping(s); %llu ms of CPU in 600 ms", pings,
         (unsigned long long)cpu);
    EXPECT_EQ(pings, 1);
    EXPECT(cpu < 200);
    EXPECT_EQ(sv.closed, 0);
    EXPECT_EQ(r.eof, 0);
close_raw:
    raw_close(&r);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
out:
    ws_loop_free(loop);
}

/* Output is traffic too: a client that only receives broadcasts is not
 * idle; once they stop, idle_timeout_ms closes it with 1001. */
static void test_idle_counts_broadcast(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct cli k;
    char url[64];
    uint64_t end, stopped;
    unsigned sends = 0;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.idle_timeout_ms = 300;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    memset(&k, 0, sizeof k);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", sv.port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, NULL), WS_OK) ||
        !EXPECT(run_until(loop, cli_is_open, &k, 5000)) ||
        !EXPECT(run_until(loop, srv_has_conn, &sv, 5000)))
        goto out;
    end = now_ms() + 900;
    while (now_ms() < end && sv.last) {
        size_t sent = 0;
        EXPECT_EQ(ws_io_broadcast(&sv.last, 1, WS_OPCODE_TEXT, "tick", 4,
                                  &sent), WS_OK);
        sends++;
        run_for(loop, 50);
    }
    note("%u broadcasts over 900 ms; client %s", sends,
         k.closed ? "closed" : "still open");
    EXPECT_EQ(k.closed, 0);
    EXPECT(k.msgs >= sends - 1);
    stopped = now_ms();
    EXPECT(run_until(loop, cli_is_closed, &k, 5000));
    EXPECT_EQ(k.code, WS_CLOSE_GOING_AWAY);
    EXPECT(k.closed_at - stopped >= 200);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
out:
    ws_loop_free(loop);
}

/* A handler that returns WS_PAUSED (the core's pause) must not lose the
 * rest of what was read. */
static int paused_message(struct ws_io_conn *c, unsigned opcode,
                          const uint8_t *p, size_t n, void *user)
{
    (void)srv_message(c, opcode, p, n, user);
    return WS_PAUSED;
}

static const struct ws_io_handlers paused_handlers = {
    .on_open = srv_open,
    .on_message = paused_message,
    .on_close = srv_close,
};

static int srv_msgs_at_least(void *arg)
{
    struct srv *sv = arg;

    return sv->msgs >= sv->next_seq || sv->closed;
}

static void test_handler_returns_paused(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct raw r;
    uint8_t burst[64];
    size_t blen = 0;

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.handlers = &paused_handlers;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK) ||
        !EXPECT_EQ(raw_open(&r, sv.port, 0), 0))
        goto out;
    if (!EXPECT_EQ(raw_handshake(loop, &r), 0))
        goto close_raw;
    /* Three messages in one write: they arrive in one read. */
    blen += raw_frame(burst + blen, WS_OPCODE_TEXT, 1, "one", 3);
    blen += raw_frame(burst + blen, WS_OPCODE_TEXT, 1, "two", 3);
    blen += raw_frame(burst + blen, WS_OPCODE_TEXT, 1, "three", 5);
    EXPECT_EQ(raw_send(loop, &r, burst, blen), 0);
    sv.next_seq = 3;
    EXPECT(run_until(loop, srv_msgs_at_least, &sv, 2000));
    run_for(loop, 50);
    note("server got %u of 3 messages; connection %s", sv.msgs,
         sv.closed ? "closed" : "open");
    EXPECT_EQ(sv.msgs, 3);
    EXPECT_EQ(sv.closed, 0);
close_raw:
    raw_close(&r);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
out:
    ws_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* 6. SIGTERM to examples/echo_server during traffic                        */
/* ------------------------------------------------------------------------ */

static pid_t start_echo_server(unsigned *port)
{
    int p[2];
    pid_t pid;
    char line[128];
    size_t len = 0;
    uint64_t end = now_ms() + 5000;

    if (pipe(p) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(g_echo_server, g_echo_server, "--host", "127.0.0.1", "--port",
              "0", "--quiet", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *port = 0;
    while (len < sizeof line - 1 && now_ms() < end) {
        struct pollfd pf;
        ssize_t n;
        pf.fd = p[0];
        pf.events = POLLIN;
        if (poll(&pf, 1, 100) <= 0)
            continue;
        n = read(p[0], line + len, 1);
        if (n <= 0)
            break;
        if (line[len++] == '\n')
            break;
    }
    line[len] = '\0';
    close(p[0]);
    if (sscanf(line, "listening on 127.0.0.1:%u", port) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

struct clients_arg {
    struct cli *k;
    unsigned n, min_msgs;
};

static int clients_busy(void *arg)
{
    struct clients_arg *a = arg;
    unsigned i;

    for (i = 0; i < a->n; i++)
        if (!a->k[i].closed && a->k[i].msgs < a->min_msgs)
            return 0;
    return 1;
}

static int clients_closed(void *arg)
{
    struct clients_arg *a = arg;
    unsigned i;

    for (i = 0; i < a->n; i++)
        if (!a->k[i].closed)
            return 0;
    return 1;
}

struct child_arg {
    pid_t pid;
    int status;
    int done;
    uint64_t at;
};

static int child_exited(void *arg)
{
    struct child_arg *c = arg;

    if (!c->done && waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
        c->done = 1;
        c->at = now_ms();
    }
    return c->done;
}

static void test_sigterm_echo_server(void)
{
    enum { MAXN = 20 };
    struct ws_loop *loop = NULL;
    struct cli k[MAXN];
    struct clients_arg ca;
    struct child_arg ch;
    unsigned n = scaled(MAXN, 5), i, got1001 = 0, port = 0;
    char url[64];
    uint64_t t0;
    struct stat st;

    if (n > MAXN)
        n = MAXN;
    if (stat(g_echo_server, &st) != 0) {
        g_skip = "no echo_server binary (pass --echo-server PATH)";
        return;
    }
    memset(&ch, 0, sizeof ch);
    ch.pid = start_echo_server(&port);
    if (!EXPECT(ch.pid > 0))
        return;
    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        goto out;
    memset(k, 0, sizeof k);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", port);
    for (i = 0; i < n; i++) {
        k[i].pingpong = 1;
        EXPECT_EQ(cli_connect(loop, &k[i], url, NULL), WS_OK);
    }
    ca.k = k;
    ca.n = n;
    ca.min_msgs = 20;
    EXPECT(run_until(loop, clients_busy, &ca, 5000));
    t0 = now_ms();
    kill(ch.pid, SIGTERM);
    EXPECT(run_until(loop, clients_closed, &ca, 5000));
    EXPECT(run_until(loop, child_exited, &ch, 5000));
    for (i = 0; i < n; i++) {
        if (k[i].closed && k[i].code == WS_CLOSE_GOING_AWAY && k[i].err == 0)
            got1001++;
        else
            note("client %u: closed %d code %u error %s", i, k[i].closed,
                 k[i].code, ws_err_name(k[i].err));
        EXPECT_EQ(k[i].bad, 0);
    }
    EXPECT_EQ(got1001, n);
    if (EXPECT(ch.done)) {
        note("echo_server exited %llu ms after SIGTERM",
             (unsigned long long)(ch.at - t0));
        EXPECT(WIFEXITED(ch.status) && WEXITSTATUS(ch.status) == 0);
        EXPECT(ch.at - t0 <= 3000);
    }
    EXPECT(run_until(loop, loop_empty, loop, 5000));
out:
    if (!ch.done) {
        kill(ch.pid, SIGKILL);
        waitpid(ch.pid, NULL, 0);
    }
    if (loop)
        ws_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* 7. ws_loop_post and ws_loop_stop from another thread                     */
/* ------------------------------------------------------------------------ */

struct poster {
    struct ws_loop *loop;
    struct cli *k;
    struct srv *sv;
    unsigned n, post_errors, send_errors;
    pthread_mutex_t mu;
    int all_arrived;              /* set on the loop thread, under mu */
    uint64_t stop_at;
};

static struct poster *g_poster;   /* for post_job */

static void post_job(struct ws_loop *loop, void *arg)
{
    struct poster *ps = g_poster;
    char m[16];
    int n = snprintf(m, sizeof m, "%lu", (unsigned long)(uintptr_t)arg);
    int rv;

    (void)loop;
    rv = ps->k->c ? ws_io_send_text(ps->k->c, m, (size_t)n) : WS_ERR_CLOSED;
    if (rv != WS_OK && rv != WS_HIGH_WATER)
        ps->send_errors++;
}

static void *poster_main(void *arg)
{
    struct poster *ps = arg;
    unsigned i;
    uint64_t end;
    int arrived = 0;

    for (i = 0; i < ps->n; i++)
        if (ws_loop_post(ps->loop, post_job, (void *)(uintptr_t)i) != WS_OK)
            ps->post_errors++;
    end = now_ms() + 15000;
    while (!arrived && now_ms() < end) {
        sleep_ms(2);
        pthread_mutex_lock(&ps->mu);
        arrived = ps->all_arrived;
        pthread_mutex_unlock(&ps->mu);
    }
    /* Let the loop go idle (blocked waiting), then stop it from here. */
    sleep_ms(100);
    ps->stop_at = now_ms();
    ws_loop_stop(ps->loop);
    return NULL;
}

static int seq_srv_message(struct ws_io_conn *c, unsigned opcode,
                           const uint8_t *p, size_t n, void *user)
{
    struct srv *sv = user;

    (void)srv_message(c, opcode, p, n, user);
    if (sv->next_seq == g_poster->n) {
        pthread_mutex_lock(&g_poster->mu);
        g_poster->all_arrived = 1;
        pthread_mutex_unlock(&g_poster->mu);
    }
    return 0;
}

static const struct ws_io_handlers seq_handlers = {
    .on_open = srv_open,
    .on_message = seq_srv_message,
    .on_close = srv_close,
};

static void test_post_from_thread(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct cli k;
    struct poster ps;
    pthread_t th;
    char url[64];
    uint64_t returned_at;

    memset(&ps, 0, sizeof ps);
    pthread_mutex_init(&ps.mu, NULL);
    g_poster = &ps;
    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        goto out;
    srv_init(&sv, loop, SRV_SEQ);
    sv.opts.handlers = &seq_handlers;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    memset(&k, 0, sizeof k);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", sv.port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, NULL), WS_OK) ||
        !EXPECT(run_until(loop, cli_is_open, &k, 5000)) ||
        !EXPECT(run_until(loop, srv_has_conn, &sv, 5000)))
        goto out;
    ps.loop = loop;
    ps.k = &k;
    ps.sv = &sv;
    ps.n = scaled(10000, 1000);
    if (!EXPECT_EQ(pthread_create(&th, NULL, poster_main, &ps), 0))
        goto out;
    EXPECT_EQ(ws_loop_run(loop), WS_OK);
    returned_at = now_ms();
    pthread_join(th, NULL);
    note("%u posted messages arrived: %u (out of order: %u); ws_loop_run "
         "returned %llu ms after ws_loop_stop", ps.n, sv.next_seq,
         sv.seq_bad, (unsigned long long)(returned_at - ps.stop_at));
    EXPECT(ps.all_arrived);
    EXPECT_EQ(sv.next_seq, ps.n);
    EXPECT_EQ(sv.seq_bad, 0);
    EXPECT_EQ(ps.post_errors, 0);
    EXPECT_EQ(ps.send_errors, 0);
    EXPECT(returned_at - ps.stop_at < 1000);
    if (k.c)
        ws_io_close(k.c, WS_CLOSE_NORMAL, NULL, 0);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    EXPECT_EQ(k.code, WS_CLOSE_NORMAL);
out:
    if (loop)
        ws_loop_free(loop);
    g_poster = NULL;
    pthread_mutex_destroy(&ps.mu);
}

/* ------------------------------------------------------------------------ */
/* 8. Broadcast                                                             */
/* ------------------------------------------------------------------------ */

struct bclient {
    struct ws_io_conn *c;
    unsigned recvd, bad, nmsg;
    int closed;
    unsigned code;
    uint8_t *expect;
};

static unsigned bmsg_len(unsigned j)
{
    return j % 10 == 3 ? 65536u : 100u + j * 37u;
}

static unsigned bmsg_op(unsigned j)
{
    return j & 1 ? WS_OPCODE_BINARY : WS_OPCODE_TEXT;
}

static int bc_message(struct ws_io_conn *c, unsigned opcode,
                      const uint8_t *p, size_t n, void *user)
{
    struct bclient *b = user;
    unsigned j = b->recvd++;

    if (opcode != bmsg_op(j) || n != bmsg_len(j)) {
        b->bad++;
    } else {
        fill(b->expect, n, 1000 + j, opcode);
        if (memcmp(b->expect, p, n) != 0)
            b->bad++;
    }
    if (b->recvd == b->nmsg)
        (void)ws_io_close(c, WS_CLOSE_NORMAL, NULL, 0);
    return 0;
}

static void bc_close(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    struct bclient *b = user;

    (void)c;
    (void)reason;
    (void)n;
    b->closed = 1;
    b->code = code;
    b->c = NULL;
}

static const struct ws_io_handlers bc_handlers = {
    .on_message = bc_message,
    .on_close = bc_close,
};

struct bc_arg {
    struct bclient *b;
    unsigned n;
    struct ws_loop *loop;
};

static int bc_done(void *arg)
{
    struct bc_arg *a = arg;
    unsigned i;

    for (i = 0; i < a->n; i++)
        if (!a->b[i].closed)
            return 0;
    return ws_loop_count(a->loop) == 0;
}

static void test_broadcast(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct bclient *b = NULL;
    struct ws_io_conn **list = NULL;
    struct ws_io_options co;
    struct bc_arg ba;
    uint8_t *expect = NULL, *msg = NULL;
    unsigned n = scaled(200, 10), nmsg = 100, i, j, all = 0;
    size_t sent, bad_counts = 0;
    char url[64];

    memset(&sv, 0, sizeof sv);
    b = calloc(n, sizeof *b);
    list = calloc(n + 2, sizeof *list);
    expect = malloc(65536);
    msg = malloc(65536);
    if (!EXPECT(b && list && expect && msg) ||
        !EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        goto out;
    srv_init(&sv, loop, SRV_QUIET);
    sv.conns = calloc(n, sizeof *sv.conns);
    sv.conns_cap = n;
    if (!EXPECT(sv.conns != NULL) ||
        !EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        goto out;
    memset(&co, 0, sizeof co);
    co.handlers = &bc_handlers;
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", sv.port);
    for (i = 0; i < n; i++) {
        b[i].expect = expect;
        b[i].nmsg = nmsg;
        co.user = &b[i];
        if (!EXPECT_EQ(ws_client_connect(loop, url, &co, &b[i].c), WS_OK))
            goto out;
    }
    sv.next_seq = n;
    EXPECT(run_until(loop, srv_opened_at_least, &sv, 10000));
    if (!EXPECT_EQ(sv.nconns, n))
        goto out;
    /* The list: every server connection, plus a NULL and a client-role
     * connection, which must be skipped. */
    memcpy(list, sv.conns, n * sizeof *list);
    list[n] = NULL;
    list[n + 1] = b[0].c;
    for (j = 0; j < nmsg; j++) {
        fill(msg, bmsg_len(j), 1000 + j, bmsg_op(j));
        EXPECT_EQ(ws_io_broadcast(list, n + 2, bmsg_op(j), msg, bmsg_len(j),
                                  &sent), WS_OK);
        if (sent != n)
            bad_counts++;
        /* The caller's buffer is reusable at once. */
        memset(msg, 0xEE, bmsg_len(j));
    }
    EXPECT_EQ(bad_counts, 0);
    ba.b = b;
    ba.n = n;
    ba.loop = loop;
    EXPECT(run_until(loop, bc_done, &ba, TEST_DEADLINE_MS));
    for (i = 0; i < n; i++) {
        if (b[i].recvd == nmsg && b[i].bad == 0 &&
            b[i].code == WS_CLOSE_NORMAL)
            all++;
        else if (i < 5 || b[i].bad)
            note("client %u: %u/%u messages, %u bad, close %u", i,
                 b[i].recvd, nmsg, b[i].bad, b[i].code);
    }
    EXPECT_EQ(all, n);
    EXPECT_EQ(sv.clean, n);
out:
    if (loop)
        ws_loop_free(loop);
    free(sv.conns);
    free(b);
    free(list);
    free(expect);
    free(msg);
}

/* ------------------------------------------------------------------------ */
/* 9. X-Forwarded-For and IPv6                                              */
/* ------------------------------------------------------------------------ */

/* Connect with extra headers; return the peer address the server saw. */
static void peer_seen(struct ws_loop *loop, int trust_proxy,
                      const char *headers, char *out, size_t cap)
{
    static struct srv sv;   /* static: outlives a connection left behind */
    struct cli k;
    struct ws_io_options o;
    char url[64];

    out[0] = '\0';
    srv_init(&sv, loop, SRV_ECHO);
    sv.opts.trust_proxy = trust_proxy;
    if (!EXPECT_EQ(srv_listen(&sv, "127.0.0.1"), WS_OK))
        return;
    memset(&k, 0, sizeof k);
    memset(&o, 0, sizeof o);
    o.extra_headers = headers;
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/xff", sv.port);
    if (EXPECT_EQ(cli_connect(loop, &k, url, &o), WS_OK) &&
        EXPECT(run_until(loop, srv_has_conn, &sv, 5000)) &&
        EXPECT(run_until(loop, cli_is_open, &k, 5000))) {
        snprintf(out, cap, "%s", sv.peer);
        EXPECT(strcmp(sv.path, "/xff") == 0);
    }
    if (k.c)
        ws_io_close(k.c, WS_CLOSE_NORMAL, NULL, 0);
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    ws_server_close(sv.s);
}

static int is_loopback_peer(const char *p)
{
    char *end;
    unsigned long port;

    if (strncmp(p, "127.0.0.1:", 10) != 0)
        return 0;
    port = strtoul(p + 10, &end, 10);
    return *end == '\0' && port > 0 && port < 65536;
}

static void test_forwarded_for(void)
{
    static const char xff[] = "X-Forwarded-For: 203.0.113.5, 198.51.100.7\r\n";
    static const char xff2[] = "X-Forwarded-For: 203.0.113.5\r\n"
                               "X-Forwarded-For: 2001:db8::1\r\n";
    struct ws_loop *loop = NULL;
    char peer[80];

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    peer_seen(loop, 1, xff, peer, sizeof peer);
    note("trust_proxy, XFF list: %s", peer);
    EXPECT(strcmp(peer, "198.51.100.7") == 0);
    peer_seen(loop, 1, xff2, peer, sizeof peer);
    note("trust_proxy, two XFF lines: %s", peer);
    EXPECT(strcmp(peer, "2001:db8::1") == 0);
    peer_seen(loop, 1, NULL, peer, sizeof peer);
    note("trust_proxy, no XFF: %s", peer);
    EXPECT(is_loopback_peer(peer));
    peer_seen(loop, 0, xff, peer, sizeof peer);
    note("no trust_proxy: %s", peer);
    EXPECT(is_loopback_peer(peer));
    ws_loop_free(loop);
}

static void test_ipv6(void)
{
    struct ws_loop *loop = NULL;
    struct srv sv;
    struct cli k;
    char url[64];

    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    srv_init(&sv, loop, SRV_ECHO);
    if (srv_listen(&sv, "::1") != WS_OK) {
        g_skip = "no IPv6 loopback";
        goto out;
    }
    memset(&k, 0, sizeof k);
    k.pingpong = 1;
    snprintf(url, sizeof url, "ws://[::1]:%u/v6?x=1", sv.port);
    if (!EXPECT_EQ(cli_connect(loop, &k, url, NULL), WS_OK))
        goto out;
    EXPECT(run_until(loop, cli_is_open, &k, 5000));
    run_for(loop, 50);
    note("server saw %s %s; client peer %s", sv.peer, sv.path,
         k.c ? ws_io_get_peer(k.c) : "-");
    EXPECT(k.opened);
    EXPECT(k.msgs > 0);
    EXPECT(strncmp(sv.peer, "[::1]:", 6) == 0);
    EXPECT(strcmp(sv.path, "/v6") == 0);   /* the path, without query */
    if (k.c) {
        char want[32];
        snprintf(want, sizeof want, "[::1]:%u", sv.port);
        EXPECT(strcmp(ws_io_get_peer(k.c), want) == 0);
        ws_io_close(k.c, WS_CLOSE_NORMAL, NULL, 0);
    }
    EXPECT(run_until(loop, loop_empty, loop, 5000));
    EXPECT_EQ(k.code, WS_CLOSE_NORMAL);
    EXPECT_EQ(sv.peer_kept, 1);
out:
    ws_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* 10. The poll() fallback                                                  */
/* ------------------------------------------------------------------------ */

static void test_poll_echo(void)
{
    echo_run(WS_LOOP_USE_POLL, scaled(50, 10), 10, NULL, NULL, NULL);
}

static void test_poll_backpressure(void)
{
    backpressure(WS_LOOP_USE_POLL);
}


/* ------------------------------------------------------------------------ */
/* Plain HTTP on the WebSocket port, and loop timers                        */
/* ------------------------------------------------------------------------ */

struct hsrv {
    struct ws_io_conn *held;         /* a long poll waiting for news */
    struct ws_io_conn *stream;       /* a streamed (SSE) answer */
    unsigned requests, closes, ws_opens;
    uint64_t last_in, last_out;      /* byte counters of the last closed */
};

static int h_http(struct ws_io_conn *c, const struct ws_request *req,
                  void *user)
{
    struct hsrv *h = user;

    h->requests++;
    if (req->path.n == 5 && memcmp(req->path.p, "/hold", 5) == 0) {
        h->held = c;
        return 0;
    }
    if (req->path.n == 7 && memcmp(req->path.p, "/stream", 7) == 0) {
        h->stream = c;
        return ws_io_http_begin(c, 200, "text/event-stream", NULL) < 0;
    }
    return ws_io_http_respond(c, 200, "text/plain", NULL, "hello\n", 6) < 0;
}

static int h_open(struct ws_io_conn *c, void *user)
{
    (void)c;
    ((struct hsrv *)user)->ws_opens++;
    return 0;
}

static void h_close(struct ws_io_conn *c, unsigned code, const char *reason,
                    size_t n, void *user)
{
    struct hsrv *h = user;

    (void)code;
    (void)reason;
    (void)n;
    h->closes++;
    h->last_in = ws_io_get_bytes_in(c);
    h->last_out = ws_io_get_bytes_out(c);
    if (c == h->held)
        h->held = NULL;
    if (c == h->stream)
        h->stream = NULL;
}

static const struct ws_io_handlers h_handlers = {
    .on_http = h_http,
    .on_open = h_open,
    .on_close = h_close,
};

static int h_closed(void *arg)
{
    return ((struct hsrv *)arg)->closes >= 1;
}

static size_t count_str(const struct raw *r, const char *needle)
{
    size_t k = 0, i, n = strlen(needle);

    for (i = 0; i + n <= r->len; i++)
        if (memcmp(r->buf + i, needle, n) == 0)
            k++;
    return k;
}

struct wait_str {
    struct raw *r;
    const char *needle;
    size_t count;
};

static int raw_has(void *arg)
{
    struct wait_str *w = arg;

    raw_read(w->r);
    return count_str(w->r, w->needle) >= w->count;
}

static void test_http_on_ws_port(void)
{
    static const char two[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char closing[] = "GET /c HTTP/1.1\r\nHost: x\r\n"
                                  "Connection: close\r\n\r\n";
    struct ws_loop *loop = NULL;
    struct ws_io_options o;
    struct ws_server *s;
    struct hsrv h;
    struct raw r;
    struct wait_str w;
    unsigned port;

    memset(&h, 0, sizeof h);
    memset(&o, 0, sizeof o);
    o.handlers = &h_handlers;
    o.user = &h;
    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    if (!EXPECT_EQ(ws_server_listen(loop, "127.0.0.1", "0", &o, &s), WS_OK))
        goto out;
    port = ws_server_port(s);

    /* Two pipelined requests on one keep-alive connection: two answers. */
    EXPECT_EQ(raw_open(&r, port, 0), 0);
    EXPECT_EQ(raw_send(loop, &r, two, sizeof two - 1), 0);
    w.r = &r;
    w.needle = "hello\n";
    w.count = 2;
    EXPECT(run_until(loop, raw_has, &w, 3000));
    EXPECT_EQ(count_str(&r, "HTTP/1.1 200 OK\r\n"), 2);
    EXPECT_EQ(count_str(&r, "Content-Length: 6\r\n"), 2);
    EXPECT_EQ(r.eof, 0);                        /* kept alive */
    raw_close(&r);
    EXPECT(run_until(loop, h_closed, &h, 3000));

    /* "Connection: close": answered, then the server closes; the byte
     * counters match what went over the wire. */
    EXPECT_EQ(raw_open(&r, port, 0), 0);
    EXPECT_EQ(raw_send(loop, &r, closing, sizeof closing - 1), 0);
    EXPECT(run_until(loop, raw_eof, &r, 3000));
    EXPECT(count_str(&r, "Connection: close\r\n") == 1);
    raw_close(&r);
    run_for(loop, 50);
    EXPECT_EQ(h.last_in, sizeof closing - 1);
    EXPECT_EQ(h.last_out, r.len);

    /* Long polling: no answer until the application has one. */
    EXPECT_EQ(raw_open(&r, port, 0), 0);
    EXPECT_EQ(raw_send(loop, &r, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", 31),
              0);
    run_for(loop, 200);
    raw_read(&r);
    EXPECT(h.held != NULL);
    EXPECT_EQ(r.len, 0);
    if (h.held)
        EXPECT_EQ(ws_io_http_respond(h.held, 200, "application/json", NULL,
                                     "{}", 2), WS_OK);
    w.needle = "\r\n\r\n{}";
    w.count = 1;
    EXPECT(run_until(loop, raw_has, &w, 3000));
    raw_close(&r);

    /* A streamed answer (SSE): pieces arrive as they are written. */
    EXPECT_EQ(raw_open(&r, port, 0), 0);
    EXPECT_EQ(raw_send(loop, &r, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n",
                       33), 0);
    run_for(loop, 100);
    if (EXPECT(h.stream != NULL)) {
        EXPECT_EQ(ws_io_http_write(h.stream, "data: 1\n\n", 9), WS_OK);
        EXPECT_EQ(ws_io_http_write(h.stream, "data: 2\n\n", 9), WS_OK);
        w.needle = "data: ";
        w.count = 2;
        EXPECT(run_until(loop, raw_has, &w, 3000));
        EXPECT_EQ(count_str(&r, "Content-Length"), 0);
        EXPECT_EQ(ws_io_http_end(h.stream), WS_OK);
        EXPECT(run_until(loop, raw_eof, &r, 3000));
    }
    raw_close(&r);

    /* A malformed request: 400, then the server goes on. */
    EXPECT_EQ(raw_open(&r, port, 0), 0);
    EXPECT_EQ(raw_send(loop, &r, "GET / HTTP/1.1\nHost: x\n\n", 24), 0);
    EXPECT(run_until(loop, raw_eof, &r, 3000));
    EXPECT(count_str(&r, "HTTP/1.1 400 ") == 1);
    raw_close(&r);

    /* A WebSocket upgrade on the same port still works. */
    EXPECT_EQ(raw_open(&r, port, 0), 0);
    EXPECT_EQ(raw_handshake(loop, &r), 0);
    EXPECT_EQ(h.ws_opens, 1);
    raw_close(&r);
    note("%u HTTP requests, %u connections closed", h.requests, h.closes);
out:
    ws_loop_free(loop);
}

struct tcount {
    unsigned fired;
    struct ws_timer *self;
    unsigned stop_after;
};

static void t_tick(struct ws_loop *loop, void *arg)
{
    struct tcount *t = arg;

    (void)loop;
    if (++t->fired == t->stop_after)
        ws_timer_stop(t->self);
}

static int t_done(void *arg)
{
    return ((struct tcount *)arg)->fired >= 1;
}

static void test_loop_timers(void)
{
    struct ws_loop *loop = NULL;
    struct tcount once, rep;
    uint64_t t0;

    memset(&once, 0, sizeof once);
    memset(&rep, 0, sizeof rep);
    if (!EXPECT_EQ(ws_loop_new(&loop, 0), WS_OK))
        return;
    t0 = now_ms();
    EXPECT_EQ(ws_timer_start(loop, 50, 0, t_tick, &once, NULL), WS_OK);
    rep.stop_after = 5;
    EXPECT_EQ(ws_timer_start(loop, 20, 1, t_tick, &rep, &rep.self), WS_OK);
    EXPECT(run_until(loop, t_done, &once, 2000));
    EXPECT(now_ms() - t0 >= 45);
    /* ws_loop_run returns once no timer is left: the repeating one stops
     * itself from its callback after 5 runs. */
    EXPECT_EQ(ws_loop_run(loop), WS_OK);
    EXPECT_EQ(once.fired, 1);
    EXPECT_EQ(rep.fired, 5);
    EXPECT_EQ(ws_timer_start(loop, 0, 1, t_tick, &rep, NULL),
              WS_ERR_INVALID_ARG);
    ws_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* The runner                                                               */
/* ------------------------------------------------------------------------ */

#define IO_TESTS(X)                                                          \
    X(echo_1000)                                                             \
    X(echo_big_pipelined)                                                    \
    X(tls_echo)                                                              \
    X(tls_verify_fails)                                                      \
    X(slow_handshake)                                                        \
    X(never_reads)                                                           \
    X(resets_leak_nothing)                                                   \
    X(backpressure_api)                                                      \
    X(ping_answered)                                                         \
    X(ping_split_while_buffer_shared)                                        \
    X(pong_timeout)                                                          \
    X(idle_timeout)                                                          \
    X(close_timeout)                                                         \
    X(ping_without_pong_timeout)                                             \
    X(idle_counts_broadcast)                                                 \
    X(handler_returns_paused)                                                \
    X(sigterm_echo_server)                                                   \
    X(post_from_thread)                                                      \
    X(broadcast)                                                             \
    X(forwarded_for)                                                         \
    X(ipv6)                                                                  \
    X(poll_echo)                                                             \
    X(poll_backpressure)                                                     \
    X(http_on_ws_port)                                                       \
    X(loop_timers)

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
#define ENTRY(name) {#name, test_##name},
    IO_TESTS(ENTRY)
#undef ENTRY
};

#define NTESTS (sizeof tests / sizeof tests[0])

static void on_alarm(int sig)
{
    static const char a[] = "Bail out! test ", b[] = " exceeded its time "
                                                     "limit\n";
    ssize_t w;

    (void)sig;
    w = write(1, a, sizeof a - 1);
    w = write(1, g_test_name, strlen(g_test_name));
    w = write(1, b, sizeof b - 1);
    (void)w;
    _exit(1);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void detect_slow(void)
{
    const char *pre = getenv("LD_PRELOAD");

#if defined(__SANITIZE_ADDRESS__)
    g_slow = 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    g_slow = 1;
#endif
#endif
    if (pre && strstr(pre, "vgpreload"))
        g_slow = 1;
}

int main(int argc, char **argv)
{
    const char *only[NTESTS + 1];
    size_t nonly = 0, i, j, planned = 0;
    unsigned passed = 0, failed = 0, skipped = 0, num = 0;
    const char *s = getenv("IO_TEST_SCALE");
    struct sigaction sa;
    uint64_t t_start = now_ms();
    int a;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (s && atof(s) > 0)
        g_scale = atof(s);
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--echo-server") == 0 && a + 1 < argc) {
            g_echo_server = argv[++a];
        } else if (strcmp(argv[a], "--gen-cert") == 0 && a + 1 < argc) {
            g_gen_cert = argv[++a];
        } else if (strcmp(argv[a], "--list") == 0) {
            for (i = 0; i < NTESTS; i++)
                printf("%s\n", tests[i].name);
            return 0;
        } else if (argv[a][0] == '-') {
            fprintf(stderr, "usage: %s [--echo-server PATH] [--gen-cert "
                            "PATH] [--list] [TEST...]\n", argv[0]);
            return 2;
        } else {
            for (i = 0; i < NTESTS; i++)
                if (strcmp(argv[a], tests[i].name) == 0)
                    break;
            if (i == NTESTS || nonly == NTESTS) {
                fprintf(stderr, "%s: no test named '%s' (see --list)\n",
                        argv[0], argv[a]);
                return 2;
            }
            only[nonly++] = argv[a];
        }
    }
    detect_slow();
    raise_fd_limit();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);

    for (i = 0; i < NTESTS; i++) {
        int run = nonly == 0;
        for (j = 0; j < nonly; j++)
            run |= strcmp(only[j], tests[i].name) == 0;
        planned += run ? 1u : 0u;
    }
    printf("1..%zu\n", planned);
    note("IO_TEST_SCALE=%g, open-files limit %lu", g_scale,
         (unsigned long)fd_limit());
    for (i = 0; i < NTESTS; i++) {
        int run = nonly == 0;
        uint64_t t0;
        for (j = 0; j < nonly; j++)
            run |= strcmp(only[j], tests[i].name) == 0;
        if (!run)
            continue;
        num++;
        snprintf(g_test_name, sizeof g_test_name, "%s", tests[i].name);
        g_failed_checks = 0;
        g_skip = NULL;
        t0 = now_ms();
        g_deadline = t0 + TEST_DEADLINE_MS;
        alarm(WATCHDOG_S);
        tests[i].fn();
        alarm(0);
        if (g_failed_checks) {
            failed++;
            printf("not ok %u - %s (%llu ms)\n", num, tests[i].name,
                   (unsigned long long)(now_ms() - t0));
        } else if (g_skip) {
            skipped++;
            passed++;
            printf("ok %u - %s # SKIP %s\n", num, tests[i].name, g_skip);
        } else {
            passed++;
            printf("ok %u - %s (%llu ms)\n", num, tests[i].name,
                   (unsigned long long)(now_ms() - t0));
        }
    }
    note("%u skipped; total %llu ms", skipped,
         (unsigned long long)(now_ms() - t_start));
    printf("%u passed, %u failed\n", passed, failed);
    free(g_big);
    return failed ? 1 : 0;
}
