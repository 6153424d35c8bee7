/*
 * tls_selftest.c - standalone test of the TLS transport (src/io/io_tls.c).
 *
 *   tests/io/gen_cert.sh build/tlscerts
 *   build/tls_selftest build/tlscerts
 *
 * A client and a server session run in this one thread over a loopback
 * TCP connection, both non-blocking, driven by poll(): whichever side
 * OpenSSL says must wait is polled for what it waits for. Every loop is
 * bounded by a deadline (DEADLINE_S seconds), so a bug shows up as a
 * failed check, never as a hang.
 *
 * Output is TAP ("ok 3 - ..."), then "N passed, M failed"; the exit
 * status is 1 if anything failed. To debug one failure:
 *   gdb --args build/tls_selftest build/tlscerts   (break test_fail)
 *
 * SIGPIPE is left at its default action (killing the process) on
 * purpose: the transport must never raise it, even when writing to a
 * peer that has gone away.
 */
#include "io/io_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef WS_OPENSSL
#define WS_OPENSSL 0
#endif

#if WS_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

/* ------------------------------------------------------------------------ */
/* TAP checks                                                               */
/* ------------------------------------------------------------------------ */

static int n_passed;
static int n_failed;

/* Every failed check calls this: "break test_fail" in gdb. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void test_fail(void)
{
    fflush(stdout);
}

static int check(int ok, const char *what, const char *detail, int line)
{
    int n = n_passed + n_failed + 1;

    if (ok) {
        n_passed++;
        printf("ok %d - %s\n", n, what);
    } else {
        n_failed++;
        printf("not ok %d - %s\n", n, what);
        printf("#   at line %d%s%s\n", line, detail != NULL ? ": " : "",
               detail != NULL ? detail : "");
        test_fail();
    }
    return ok;
}

#define CHECK(cond, what, detail)                                             \
    check((cond) != 0, (what), (detail), __LINE__)

static int contains(const char *s, const char *needle)
{
    return s != NULL && strstr(s, needle) != NULL;
}

static int finish(void)
{
    printf("1..%d\n", n_passed + n_failed);
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}

#if WS_OPENSSL

#define DEADLINE_S 5.0
#define TRANSFER_SIZE (1u << 20) /* 1 MiB each way */
#define MAX_CHUNK 65536u
#define SOCK_BUF 16384 /* small kernel buffers: partial writes, WANT_* */

static const char *cert_dir;
static struct io_tls_ctx *server_ctx;
static struct io_tls_ctx *verify_ctx; /* client: ca.pem only */

static const char *cert_path(const char *name)
{
    /* Four slots: a call site can hold a few paths at once. */
    static char paths[4][1024];
    static unsigned next;
    char *p = paths[next++ % 4];

    snprintf(p, sizeof paths[0], "%s/%s", cert_dir, name);
    return p;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------ */
/* A loopback connection with a TLS session at each end                     */
/* ------------------------------------------------------------------------ */

struct pair {
    int cfd, sfd;
    struct io_tls *c, *s;
    int crc, src; /* handshake results */
};

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void set_small_buffers(int fd)
{
    int n = SOCK_BUF;

    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
}

/* Listen on 127.0.0.1:0, connect without blocking, accept. */
static int make_sockets(int *cfd, int *sfd)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int lfd, c = -1, s = -1;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        return -1;
    set_small_buffers(lfd); /* inherited by the accepted socket */
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        goto fail;
    c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0)
        goto fail;
    set_small_buffers(c);
    if (set_nonblocking(c) != 0)
        goto fail;
    if (connect(c, (struct sockaddr *)&a, sizeof a) != 0 &&
        errno != EINPROGRESS)
        goto fail;
    s = accept(lfd, NULL, NULL); /* loopback: the kernel completed it */
    if (s < 0 || set_nonblocking(s) != 0)
        goto fail;
    close(lfd);
    *cfd = c;
    *sfd = s;
    return 0;

fail:
    perror("make_sockets");
    if (s >= 0)
        close(s);
    if (c >= 0)
        close(c);
    close(lfd);
    return -1;
}

static short events_for(int rc)
{
    if (rc == IO_TLS_WANT_READ)
        return POLLIN;
    if (rc == IO_TLS_WANT_WRITE)
        return POLLOUT;
    return 0;
}

static int is_want(int rc)
{
    return rc == IO_TLS_WANT_READ || rc == IO_TLS_WANT_WRITE;
}

/*
 * Run both handshakes to their end: success (0) or IO_TLS_ERROR on each
 * side. When one side has failed and the other has nothing left to wait
 * for (poll times out), the other keeps its last WANT_* result.
 */
static void drive_handshake(struct pair *p)
{
    double end = now_s() + DEADLINE_S;

    p->crc = IO_TLS_WANT_WRITE;
    p->src = IO_TLS_WANT_READ;
    for (;;) {
        struct pollfd pfd[2];
        nfds_t n = 0;

        if (is_want(p->crc))
            p->crc = io_tls_handshake(p->c);
        if (is_want(p->src))
            p->src = io_tls_handshake(p->s);
        if (!is_want(p->crc) && !is_want(p->src))
            return;
        if (now_s() > end)
            return;
        if (is_want(p->crc)) {
            pfd[n].fd = p->cfd;
            pfd[n++].events = events_for(p->crc);
        }
        if (is_want(p->src)) {
            pfd[n].fd = p->sfd;
            pfd[n++].events = events_for(p->src);
        }
        if (poll(pfd, n, 100) == 0 &&
            (p->crc == IO_TLS_ERROR || p->src == IO_TLS_ERROR))
            return; /* one failed, the other waits in vain */
    }
}

/* Sockets and sessions; then the handshake (returns 0 if it ran). */
static int open_pair(struct pair *p, struct io_tls_ctx *cctx,
                     struct io_tls_ctx *sctx, const char *host)
{
    memset(p, 0, sizeof *p);
    p->cfd = p->sfd = -1;
    if (make_sockets(&p->cfd, &p->sfd) != 0)
        return -1;
    p->c = io_tls_new(cctx, p->cfd, 0, host);
    p->s = io_tls_new(sctx, p->sfd, 1, NULL);
    if (p->c == NULL || p->s == NULL)
        return -1;
    drive_handshake(p);
    return 0;
}

static void close_pair(struct pair *p)
{
    io_tls_free(p->c);
    io_tls_free(p->s);
    if (p->cfd >= 0)
        close(p->cfd);
    if (p->sfd >= 0)
        close(p->sfd);
    memset(p, 0, sizeof *p);
    p->cfd = p->sfd = -1;
}

/* open_pair() with the CA-verifying client for "localhost", both
 * handshakes expected to succeed; one check named what. */
static int open_verified_pair(struct pair *p, const char *what)
{
    int ok = open_pair(p, verify_ctx, server_ctx, "localhost") == 0 &&
             p->crc == 0 && p->src == 0;

    return CHECK(ok, what, p->c != NULL ? io_tls_error(p->c) : "no session");
}

/* Wait until fd is readable (or the timeout passes). */
static void wait_readable(int fd, int ms)
{
    struct pollfd pfd;

    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    (void)poll(&pfd, 1, ms);
}

/* Read until something other than WANT_READ (data, EOF, error). */
static long read_until_not_want(struct io_tls *t, int fd, void *buf,
                                size_t n)
{
    double end = now_s() + DEADLINE_S;
    long r;

    for (;;) {
        r = io_tls_read(t, buf, n);
        if (!is_want((int)r) || now_s() > end)
            return r;
        wait_readable(fd, 100);
    }
}

/* Read what is already there, without waiting (TLS 1.3 session tickets:
 * a socket closed with unread data would send RST instead of FIN). */
static void drain(struct io_tls *t)
{
    char buf[4096];

    while (io_tls_read(t, buf, sizeof buf) > 0)
        continue;
}

/* ------------------------------------------------------------------------ */
/* Handshakes and verification                                              */
/* ------------------------------------------------------------------------ */

static void expect_handshake_ok(struct io_tls_ctx *cctx, const char *host,
                                const char *what)
{
    struct pair p;
    char msg[600];

    if (open_pair(&p, cctx, server_ctx, host) != 0) {
        CHECK(0, what, "cannot set up the connection");
        close_pair(&p);
        return;
    }
    snprintf(msg, sizeof msg, "client %d (%s), server %d (%s)", p.crc,
             io_tls_error(p.c), p.src, io_tls_error(p.s));
    CHECK(p.crc == 0 && p.src == 0, what, msg);
    close_pair(&p);
}

static void expect_handshake_fails(struct io_tls_ctx *cctx, const char *host,
                                   const char *needle, const char *what)
{
    struct pair p;
    char msg[600];

    if (open_pair(&p, cctx, server_ctx, host) != 0) {
        CHECK(0, what, "cannot set up the connection");
        close_pair(&p);
        return;
    }
    snprintf(msg, sizeof msg, "client %d (%s), server %d (%s)", p.crc,
             io_tls_error(p.c), p.src, io_tls_error(p.s));
    CHECK(p.crc == IO_TLS_ERROR && contains(io_tls_error(p.c), needle), what,
          msg);
    printf("#   client: %s\n", io_tls_error(p.c));
    /* The client sends an alert: the server must fail too, with text. */
    CHECK(p.src == IO_TLS_ERROR && io_tls_error(p.s)[0] != '\0',
          "  ... and the server fails with a message", msg);
    printf("#   server: %s\n", io_tls_error(p.s));
    close_pair(&p);
}

static void test_verification(void)
{
    struct io_tls_ctx *system_ctx, *insecure_ctx;
    char err[256];

    expect_handshake_ok(verify_ctx, "localhost",
                        "handshake, CA file, hostname localhost");
    expect_handshake_ok(verify_ctx, "127.0.0.1",
                        "handshake, CA file, 127.0.0.1 via IP SAN");
    expect_handshake_ok(verify_ctx, "::1",
                        "handshake, CA file, ::1 via IP SAN");
    expect_handshake_ok(verify_ctx, "[::1]",
                        "handshake, CA file, [::1] (URL brackets)");
    expect_handshake_fails(verify_ctx, "wrong.example", "hostname mismatch",
                           "hostname wrong.example fails: hostname mismatch");
    expect_handshake_fails(verify_ctx, "127.0.0.2", "IP address mismatch",
                           "IP 127.0.0.2 fails: IP address mismatch");

    system_ctx = io_tls_client_ctx(NULL, 0, err, sizeof err);
    if (CHECK(system_ctx != NULL, "client ctx with the system CAs", err))
        expect_handshake_fails(system_ctx, "localhost",
                               "certificate verify failed",
                               "system CAs only: the test CA is refused");
    io_tls_ctx_free(system_ctx);

    insecure_ctx = io_tls_client_ctx(NULL, 1, err, sizeof err);
    if (CHECK(insecure_ctx != NULL, "insecure client ctx", err)) {
        expect_handshake_ok(insecure_ctx, "localhost",
                            "insecure: handshake without verification");
        expect_handshake_ok(insecure_ctx, "wrong.example",
                            "insecure: even with the wrong name");
    }
    io_tls_ctx_free(insecure_ctx);
}

/* ------------------------------------------------------------------------ */
/* 1 MiB each way, with partial writes and retries from moved buffers       */
/* ------------------------------------------------------------------------ */

struct flow {
    struct io_tls *t;
    int fd;
    uint8_t *out;      /* what this side sends */
    uint8_t *in;       /* what it receives */
    uint8_t *moved;    /* retries are offered from here */
    size_t sent, got;
    size_t retry_len;  /* > 0: the last write said WANT_*, offer again */
    int retry_want;    /* which WANT_* */
    int reading;       /* reading starts after the first WANT_* */
    unsigned chunk_seq;
    /* What happened, for the checks. */
    unsigned partial, wants, moved_retries, longer_retries;
    int failed;
};

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    uint32_t x = seed;
    size_t i;

    for (i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

/* Chunk sizes from 1 byte to MAX_CHUNK, irregular. */
static size_t next_chunk(struct flow *f)
{
    static const size_t sizes[] = {1,     100,   1000,  16383, 16384, 16385,
                                   40000, 65536, 7,     33000, 5000,  65535};

    return sizes[f->chunk_seq++ % (sizeof sizes / sizeof sizes[0])];
}

/* One write attempt; returns 1 if it made progress. */
static int flow_write(struct flow *f)
{
    size_t left = TRANSFER_SIZE - f->sent, len;
    const uint8_t *from;
    long r;

    if (left == 0 || f->failed)
        return 0;
    if (f->retry_len > 0) {
        /* The same bytes again, from a different address; every other
         * time a little more than before (io_tls.h: "at least as
         * many"). */
        len = f->retry_len;
        if ((f->moved_retries & 1u) && len + 1000 <= left &&
            len + 1000 <= MAX_CHUNK + 1000) {
            len += 1000;
            f->longer_retries++;
        }
        memcpy(f->moved, f->out + f->sent, len);
        from = f->moved;
        f->moved_retries++;
    } else {
        len = next_chunk(f);
        if (len > left)
            len = left;
        from = f->out + f->sent;
    }
    r = io_tls_write(f->t, from, len);
    if (r > 0) {
        if ((size_t)r < len)
            f->partial++;
        if ((size_t)r > len)
            f->failed = 1;
        f->sent += (size_t)r;
        f->retry_len = 0;
        return 1;
    }
    if (is_want((int)r)) {
        f->retry_len = len;
        f->retry_want = (int)r;
        f->wants++;
        f->reading = 1;
        return 0;
    }
    printf("#   write failed: %ld %s\n", r, io_tls_error(f->t));
    f->failed = 1;
    return 0;
}

/* Read what is there; returns 1 if it made progress. */
static int flow_read(struct flow *f)
{
    int progress = 0;

    if (f->failed || (!f->reading && f->sent < TRANSFER_SIZE))
        return 0;
    while (f->got < TRANSFER_SIZE) {
        size_t room = TRANSFER_SIZE - f->got;
        long r = io_tls_read(f->t, f->in + f->got,
                             room < 10000 ? room : 10000);

        if (r > 0) {
            f->got += (size_t)r;
            progress = 1;
            continue;
        }
        if (is_want((int)r))
            break;
        printf("#   read failed: %ld %s\n", r, io_tls_error(f->t));
        f->failed = 1;
        break;
    }
    return progress;
}

static short flow_events(const struct flow *f)
{
    short ev = 0;

    if (f->retry_len > 0)
        ev |= events_for(f->retry_want);
    if ((f->reading || f->sent == TRANSFER_SIZE) && f->got < TRANSFER_SIZE)
        ev |= POLLIN;
    return ev;
}

static int flow_done(const struct flow *f)
{
    return f->sent == TRANSFER_SIZE && f->got == TRANSFER_SIZE;
}

static void init_flow(struct flow *f, struct io_tls *t, int fd,
                      uint8_t *out, uint8_t *in, uint8_t *moved)
{
    memset(f, 0, sizeof *f);
    f->t = t;
    f->fd = fd;
    f->out = out;
    f->in = in;
    f->moved = moved;
}

/* Both directions at once, until done, failed or out of time. */
static void run_flows(struct flow *a, struct flow *b)
{
    double end = now_s() + DEADLINE_S;

    while (!(flow_done(a) && flow_done(b)) && !a->failed && !b->failed &&
           now_s() < end) {
        int progress = 0;
        struct pollfd pfd[2];

        /* Each side writes until blocked, then (from then on) reads. */
        while (flow_write(a))
            progress = 1;
        progress |= flow_read(a);
        while (flow_write(b))
            progress = 1;
        progress |= flow_read(b);
        if (progress)
            continue;
        pfd[0].fd = a->fd;
        pfd[0].events = flow_events(a);
        pfd[1].fd = b->fd;
        pfd[1].events = flow_events(b);
        (void)poll(pfd, 2, 100);
    }
}

static void test_transfer_and_eof(void)
{
    uint8_t *cout = malloc(TRANSFER_SIZE), *sout = malloc(TRANSFER_SIZE);
    uint8_t *cin = malloc(TRANSFER_SIZE), *sin = malloc(TRANSFER_SIZE);
    uint8_t *cmoved = malloc(MAX_CHUNK + 1000);
    uint8_t *smoved = malloc(MAX_CHUNK + 1000);
    struct flow cf, sf;
    struct pair p;
    char msg[300], buf[64];
    long r;

    if (!CHECK(cout && sout && cin && sin && cmoved && smoved,
               "transfer: buffers", "out of memory"))
        goto out;
    fill_pattern(cout, TRANSFER_SIZE, 1);
    fill_pattern(sout, TRANSFER_SIZE, 2);

    if (!open_verified_pair(&p, "transfer: handshake"))
        goto out_pair;

    init_flow(&cf, p.c, p.cfd, cout, cin, cmoved);
    init_flow(&sf, p.s, p.sfd, sout, sin, smoved);
    run_flows(&cf, &sf);
    snprintf(msg, sizeof msg,
             "client sent %zu got %zu, server sent %zu got %zu",
             cf.sent, cf.got, sf.sent, sf.got);
    CHECK(flow_done(&cf) && flow_done(&sf) && !cf.failed && !sf.failed,
          "transfer: 1 MiB each way", msg);
    CHECK(memcmp(cin, sout, TRANSFER_SIZE) == 0,
          "transfer: the client got the server's bytes intact", NULL);
    CHECK(memcmp(sin, cout, TRANSFER_SIZE) == 0,
          "transfer: the server got the client's bytes intact", NULL);
    snprintf(msg, sizeof msg,
             "partial %u/%u, WANT_* %u/%u, moved retries %u/%u, longer %u/%u",
             cf.partial, sf.partial, cf.wants, sf.wants, cf.moved_retries,
             sf.moved_retries, cf.longer_retries, sf.longer_retries);
    printf("#   %s\n", msg);
    CHECK(cf.partial + sf.partial > 0, "transfer: partial writes happened",
          msg);
    CHECK(cf.wants > 0 && sf.wants > 0,
          "transfer: both sides saw WANT_* on write", msg);
    CHECK(cf.moved_retries > 0 && sf.moved_retries > 0 &&
              cf.longer_retries + sf.longer_retries > 0,
          "transfer: retries from a moved buffer (and a longer one) work",
          msg);

    /* Pending: 100 bytes in one record, read 10, 90 are pending. */
    r = io_tls_write(p.c, cout, 100);
    CHECK(r == 100, "pending: client writes 100 bytes", io_tls_error(p.c));
    r = read_until_not_want(p.s, p.sfd, buf, 10);
    CHECK(r == 10, "pending: server reads 10", io_tls_error(p.s));
    CHECK(io_tls_pending(p.s) == 90, "pending: 90 bytes are pending", NULL);
    r = io_tls_read(p.s, buf, sizeof buf);
    CHECK(r == 64 && io_tls_pending(p.s) == 26 &&
              memcmp(buf, cout + 10, 64) == 0,
          "pending: read without waiting for the socket", NULL);
    r = io_tls_read(p.s, buf, sizeof buf);
    CHECK(r == 26 && io_tls_pending(p.s) == 0, "pending: the rest", NULL);

    CHECK(io_tls_write(p.c, cout, 0) == 0, "write of 0 bytes returns 0",
          NULL);
    CHECK(io_tls_read(p.c, buf, 0) == 0, "read of 0 bytes returns 0", NULL);

    /* Clean close: close_notify, then the TCP close. */
    io_tls_shutdown(p.c);
    io_tls_free(p.c);
    p.c = NULL;
    close(p.cfd);
    p.cfd = -1;
    r = read_until_not_want(p.s, p.sfd, buf, sizeof buf);
    CHECK(r == IO_TLS_EOF, "read after the peer's shutdown + close: EOF",
          io_tls_error(p.s));
    CHECK(io_tls_error(p.s)[0] == '\0', "  ... with no error text",
          io_tls_error(p.s));
    CHECK(io_tls_read(p.s, buf, sizeof buf) == IO_TLS_EOF,
          "  ... and EOF again", NULL);

out_pair:
    close_pair(&p);
out:
    free(cout);
    free(sout);
    free(cin);
    free(sin);
    free(cmoved);
    free(smoved);
}

/* ------------------------------------------------------------------------ */
/* Abrupt closes, SIGPIPE                                                   */
/* ------------------------------------------------------------------------ */

static void test_abrupt_close(void)
{
    struct pair p;
    struct linger lg;
    char buf[16384];
    long r = 0;
    int i;

    /* TCP FIN without close_notify. */
    if (open_verified_pair(&p, "abrupt: handshake")) {
        drain(p.c);
        io_tls_free(p.c);
        p.c = NULL;
        close(p.cfd);
        p.cfd = -1;
        r = read_until_not_want(p.s, p.sfd, buf, sizeof buf);
        CHECK(r == IO_TLS_EOF, "TCP close without close_notify: EOF",
              io_tls_error(p.s));
        printf("#   server: %s\n", io_tls_error(p.s));
        CHECK(io_tls_read(p.s, buf, sizeof buf) == IO_TLS_EOF,
              "  ... and EOF again", NULL);
        /* The failure is sticky: a write now fails at once. */
        CHECK(io_tls_write(p.s, buf, 10) == IO_TLS_ERROR,
              "  ... and a write after it fails", NULL);
        io_tls_shutdown(p.s); /* must be a no-op after a fatal error */
    }
    close_pair(&p);

    /* Writing to a peer that has closed: EPIPE, not SIGPIPE. */
    if (open_verified_pair(&p, "closed peer: handshake")) {
        drain(p.c);
        io_tls_free(p.c);
        p.c = NULL;
        close(p.cfd);
        p.cfd = -1;
        memset(buf, 'x', sizeof buf);
        for (i = 0; i < 200; i++) {
            r = io_tls_write(p.s, buf, sizeof buf);
            if (r == IO_TLS_ERROR)
                break;
            wait_readable(p.sfd, 10); /* let the RST arrive */
        }
        CHECK(r == IO_TLS_ERROR,
              "write to a closed peer fails (and SIGPIPE did not kill us)",
              io_tls_error(p.s));
        printf("#   server: %s\n", io_tls_error(p.s));
    }
    close_pair(&p);

    /* TCP reset (SO_LINGER 0) in the middle of a session. */
    if (open_verified_pair(&p, "reset: handshake")) {
        r = io_tls_write(p.c, "partial", 7);
        lg.l_onoff = 1;
        lg.l_linger = 0;
        (void)setsockopt(p.cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        io_tls_free(p.c);
        p.c = NULL;
        close(p.cfd);
        p.cfd = -1;
        for (i = 0; i < 3; i++) {
            r = read_until_not_want(p.s, p.sfd, buf, sizeof buf);
            if (r < 0)
                break;
        }
        CHECK(r == IO_TLS_EOF || r == IO_TLS_ERROR,
              "TCP reset: EOF or ERROR", io_tls_error(p.s));
        printf("#   server: %ld %s\n", r, io_tls_error(p.s));
    }
    close_pair(&p);

    /* The peer goes away during the handshake. */
    {
        int cfd, sfd;
        struct io_tls *s;

        if (CHECK(make_sockets(&cfd, &sfd) == 0, "early close: sockets",
                  NULL)) {
            s = io_tls_new(server_ctx, sfd, 1, NULL);
            close(cfd);
            r = io_tls_handshake(s);
            for (i = 0; i < 50 && is_want((int)r); i++) {
                wait_readable(sfd, 100);
                r = io_tls_handshake(s);
            }
            CHECK(r == IO_TLS_ERROR && io_tls_error(s)[0] != '\0',
                  "TCP close during the handshake: ERROR with a message",
                  io_tls_error(s));
            printf("#   server: %s\n", io_tls_error(s));
            io_tls_free(s);
            close(sfd);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Contexts: bad files, bad arguments                                       */
/* ------------------------------------------------------------------------ */

static void expect_ctx_fails(struct io_tls_ctx *ctx, const char *err,
                             const char *needle, const char *what)
{
    CHECK(ctx == NULL && contains(err, needle), what, err);
    printf("#   %s\n", err);
    io_tls_ctx_free(ctx);
}

static void test_contexts(void)
{
    char err[256];
    struct io_tls_ctx *ctx;
    int fds[2];

    strcpy(err, "");
    ctx = io_tls_server_ctx(cert_path("server.pem"), cert_path("ca.key"), err,
                            sizeof err);
    expect_ctx_fails(ctx, err, "mismatch",
                     "server ctx with a key of another certificate fails");

    strcpy(err, "");
    ctx = io_tls_server_ctx(cert_path("missing.pem"), cert_path("server.key"),
                            err, sizeof err);
    expect_ctx_fails(ctx, err, "missing.pem",
                     "server ctx with a missing certificate file fails");
    CHECK(contains(err, "No such file"), "  ... and says why", err);

    strcpy(err, "");
    ctx = io_tls_server_ctx(cert_path("server.pem"), cert_path("missing.key"),
                            err, sizeof err);
    expect_ctx_fails(ctx, err, "missing.key",
                     "server ctx with a missing key file fails");

    strcpy(err, "");
    ctx = io_tls_server_ctx(cert_path("server.key"), cert_path("server.key"),
                            err, sizeof err);
    expect_ctx_fails(ctx, err, "server.key",
                     "server ctx with a key as certificate fails");

    strcpy(err, "");
    ctx = io_tls_server_ctx(NULL, NULL, err, sizeof err);
    expect_ctx_fails(ctx, err, "certificate",
                     "server ctx without files fails");

    strcpy(err, "");
    ctx = io_tls_client_ctx(cert_path("missing-ca.pem"), 0, err, sizeof err);
    expect_ctx_fails(ctx, err, "missing-ca.pem",
                     "client ctx with a missing CA file fails");

    /* NULL err is allowed. */
    ctx = io_tls_client_ctx(cert_path("missing-ca.pem"), 0, NULL, 0);
    CHECK(ctx == NULL, "client ctx failure without an err buffer", NULL);

    /* A session must match its context's role. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0) {
        struct io_tls *t = io_tls_new(verify_ctx, fds[0], 1, NULL);

        CHECK(t == NULL, "io_tls_new: server session on a client ctx", NULL);
        io_tls_free(t);
        t = io_tls_new(server_ctx, fds[0], 0, "localhost");
        CHECK(t == NULL, "io_tls_new: client session on a server ctx", NULL);
        io_tls_free(t);
        close(fds[0]);
        close(fds[1]);
    }

    CHECK(strcmp(io_tls_error(NULL), "") == 0, "io_tls_error(NULL) is \"\"",
          NULL);
    io_tls_free(NULL);
    io_tls_ctx_free(NULL);
    io_tls_shutdown(NULL);
    CHECK(io_tls_handshake(NULL) == IO_TLS_ERROR &&
              io_tls_read(NULL, err, 1) == IO_TLS_ERROR &&
              io_tls_write(NULL, err, 1) == IO_TLS_ERROR &&
              io_tls_pending(NULL) == 0,
          "NULL sessions are refused", NULL);
}

/* A stale error on this thread's OpenSSL queue must not fail (or show up
 * in) a healthy session. */
static void test_stale_errors(void)
{
    struct pair p;
    char buf[16];
    long r;

    if (!open_verified_pair(&p, "stale errors: handshake")) {
        close_pair(&p);
        return;
    }
    ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
    r = io_tls_write(p.c, "hello", 5);
    ERR_raise(ERR_LIB_SSL, SSL_R_UNEXPECTED_EOF_WHILE_READING);
    if (r == 5)
        r = read_until_not_want(p.s, p.sfd, buf, sizeof buf);
    CHECK(r == 5 && memcmp(buf, "hello", 5) == 0 &&
              io_tls_error(p.s)[0] == '\0' && io_tls_error(p.c)[0] == '\0',
          "stale errors in the OpenSSL queue are ignored", io_tls_error(p.s));
    ERR_clear_error();
    close_pair(&p);
}

int main(int argc, char **argv)
{
    char err[256];
    sigset_t set;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CERT_DIR (see tests/io/gen_cert.sh)\n",
                argv[0]);
        return 2;
    }
    cert_dir = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* SIGPIPE at its default action, unblocked: if the transport ever
     * raised it, the process would die here. */
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    strcpy(err, "");
    server_ctx = io_tls_server_ctx(cert_path("server.pem"),
                                   cert_path("server.key"), err, sizeof err);
    CHECK(server_ctx != NULL, "server ctx from server.pem/server.key", err);
    verify_ctx = io_tls_client_ctx(cert_path("ca.pem"), 0, err, sizeof err);
    CHECK(verify_ctx != NULL, "client ctx verifying against ca.pem", err);
    if (server_ctx != NULL && verify_ctx != NULL) {
        test_verification();
        test_transfer_and_eof();
        test_abrupt_close();
        test_stale_errors();
    }
    test_contexts();
    io_tls_ctx_free(server_ctx);
    io_tls_ctx_free(verify_ctx);
    return finish();
}

#else /* !WS_OPENSSL: the stubs must fail politely */

int main(int argc, char **argv)
{
    char err[256] = "";
    struct io_tls_ctx *ctx;

    (void)argc;
    (void)argv;
    ctx = io_tls_server_ctx("a.pem", "a.key", err, sizeof err);
    CHECK(ctx == NULL && contains(err, "without OpenSSL"),
          "stub: server ctx fails", err);
    strcpy(err, "");
    ctx = io_tls_client_ctx(NULL, 0, err, sizeof err);
    CHECK(ctx == NULL && contains(err, "without OpenSSL"),
          "stub: client ctx fails", err);
    CHECK(io_tls_new(NULL, 0, 0, "localhost") == NULL, "stub: no session",
          NULL);
    CHECK(io_tls_handshake(NULL) == IO_TLS_ERROR &&
              io_tls_read(NULL, err, 1) == IO_TLS_ERROR &&
              io_tls_write(NULL, err, 1) == IO_TLS_ERROR &&
              io_tls_pending(NULL) == 0,
          "stub: every call fails", NULL);
    CHECK(contains(io_tls_error(NULL), "without OpenSSL"),
          "stub: io_tls_error says why", NULL);
    io_tls_shutdown(NULL);
    io_tls_free(NULL);
    io_tls_ctx_free(NULL);
    return finish();
}

#endif /* WS_OPENSSL */
