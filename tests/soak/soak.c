/*
 * soak.c - a bounded soak test of the I/O layer against examples/echo_server.
 *
 *   soak ECHO_SERVER [--seconds N] [--conns N] [--seed S] [--warmup S]
 *        [--max-growth PCT] [--slack-kib K] [--rss-every S]
 *
 * Starts ECHO_SERVER as a child on a free port (--port 0), opens --conns
 * (200) client connections on one loop, and for --seconds (60) each one
 * sends random messages: binary, or text with 1- to 4-byte UTF-8
 * characters; mostly 0..64 KiB, about 2% up to 1 MiB; split into 1..8
 * fragments at random byte positions (inside characters too, and empty
 * ones) with ws_io_send_frame, or sent whole; pings between messages and
 * between fragments. Every echo is checked byte-exact and in order: a
 * message's bytes are a function of (seed, connection, index), so the
 * expected echo is regenerated rather than stored.
 *
 * Memory: after the warm-up (--warmup, default a sixth of the run, 3 to
 * 10 s) and at the end, traffic stops until every echo is back and
 * the server's RSS (/proc/PID/statm) is sampled, so both samples see the
 * same state: every connection open and idle. The run fails when the end
 * sample exceeds the warm-up one by more than --max-growth percent (5)
 * plus --slack-kib (1024: RSS moves in pages and malloc keeps some).
 * --rss-every S also samples (and prints) it every S seconds, to see a
 * trend in long runs. Then every connection is closed with 1000 and the
 * server gets SIGTERM.
 *
 * Prints TAP, "# " notes with the numbers, and "N passed, N failed";
 * exits 1 on any failure, 2 on a usage error.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "ws_io.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024u
#define MIB (1024u * 1024u)
#define MAX_MSG MIB                 /* largest message */
#define WINDOW_MSGS 3u              /* messages in flight per connection */
#define WINDOW_BYTES (1536u * KIB)  /* bytes in flight per connection */
#define MAX_BIG_IN_FLIGHT 8u        /* messages over 64 KiB, all connections */
#define QUIESCE_MS 30000u           /* waiting for every echo */
#define OPEN_MS 15000u
#define CLOSE_MS 15000u

/* ------------------------------------------------------------------------ */
/* TAP                                                                      */
/* ------------------------------------------------------------------------ */

static int g_passed, g_failed;

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

static int tap(int ok, const char *fmt, ...)
{
    va_list ap;

    if (ok)
        g_passed++;
    else
        g_failed++;
    printf("%s %d - ", ok ? "ok" : "not ok", g_passed + g_failed);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return ok;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------------ */
/* Random messages, regenerated from (seed, connection, index)              */
/* ------------------------------------------------------------------------ */

static uint64_t g_seed;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)     /* 0..n-1 */
{
    return n ? splitmix(s) % n : 0;
}

/* One UTF-8 character of 1..4 bytes (at most room), never a surrogate. */
static size_t put_char(uint8_t *p, size_t room, uint64_t r)
{
    unsigned kind = (unsigned)(r & 3u);
    uint32_t cp;

    r >>= 2;
    if (kind == 3 && room >= 4) {
        cp = 0x10000u + (uint32_t)(r % 0x100000u);
        p[0] = (uint8_t)(0xF0u | cp >> 18);
        p[1] = (uint8_t)(0x80u | ((cp >> 12) & 0x3Fu));
        p[2] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
        p[3] = (uint8_t)(0x80u | (cp & 0x3Fu));
        return 4;
    }
    if (kind == 2 && room >= 3) {
        cp = 0x800u + (uint32_t)(r % (0x10000u - 0x800u - 0x800u));
        if (cp >= 0xD800u)
            cp += 0x800u;               /* skip the surrogates */
        p[0] = (uint8_t)(0xE0u | cp >> 12);
        p[1] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
        p[2] = (uint8_t)(0x80u | (cp & 0x3Fu));
        return 3;
    }
    if (kind == 1 && room >= 2) {
        cp = 0x80u + (uint32_t)(r % (0x800u - 0x80u));
        p[0] = (uint8_t)(0xC0u | cp >> 6);
        p[1] = (uint8_t)(0x80u | (cp & 0x3Fu));
        return 2;
    }
    p[0] = (uint8_t)(0x20u + r % 95u);
    return 1;
}

static uint64_t msg_key(unsigned conn, uint64_t idx)
{
    uint64_t s = g_seed ^ ((uint64_t)conn << 40) ^ (idx * 0x2545f4914f6cdd1dull);

    return splitmix(&s);
}

/* The shape of message idx of conn: opcode and length. */
static void msg_shape(unsigned conn, uint64_t idx, unsigned *opcode,
                      size_t *len)
{
    uint64_t s = msg_key(conn, idx);
    uint64_t r = rnd(&s, 1000);

    *opcode = rnd(&s, 2) ? WS_OPCODE_TEXT : WS_OPCODE_BINARY;
    if (r < 20)                                     /* 2%: 64 KiB .. 1 MiB */
        *len = (size_t)(64u * KIB + rnd(&s, MAX_MSG - 64u * KIB + 1));
    else if (r < 60)                                /* 4%: empty or tiny */
        *len = (size_t)rnd(&s, 4);
    else if (r < 500)                               /* 44%: up to 1 KiB */
        *len = (size_t)rnd(&s, KIB + 1);
    else                                            /* 50%: up to 64 KiB */
        *len = (size_t)rnd(&s, 64u * KIB + 1);
}

/* Write message idx of conn into out (room for MAX_MSG bytes). */
static void msg_make(unsigned conn, uint64_t idx, uint8_t *out,
                     unsigned *opcode, size_t *len)
{
    uint64_t s;
    size_t i = 0;

    msg_shape(conn, idx, opcode, len);
    s = msg_key(conn, idx) ^ 0x5bd1e995u;
    if (*opcode == WS_OPCODE_BINARY) {
        for (; i + 8 <= *len; i += 8) {
            uint64_t v = splitmix(&s);
            memcpy(out + i, &v, 8);
        }
        for (; i < *len; i++)
            out[i] = (uint8_t)splitmix(&s);
        return;
    }
    while (i < *len)
        i += put_char(out + i, *len - i, splitmix(&s));
}

/* ------------------------------------------------------------------------ */
/* Clients                                                                  */
/* ------------------------------------------------------------------------ */

struct cli {
    unsigned id;
    struct ws_io_conn *c;
    struct ws_io_options opts;
    int open, closed, blocked;
    unsigned close_code;
    int close_error;
    uint64_t sent, echoed;          /* messages */
    size_t in_flight;               /* bytes sent, not yet echoed */
    unsigned big_in_flight;
    uint64_t pings, pongs, pong_seq;
    uint64_t rng;                   /* fragmentation, pings */
    uint64_t bad;                   /* corrupted, out of order, send errors */
};

static struct cli *g_cli;
static unsigned g_nconns = 200;
static int g_sending;               /* start new messages? */
static int g_closing;               /* closes from now on are expected */
static unsigned g_big_in_flight;
static uint8_t *g_tx, *g_rx;        /* scratch: MAX_MSG bytes each */
static struct {
    uint64_t msgs, bytes, frames, text, binary, big, pings, pongs, bad;
    uint64_t high_water;
} g_stats;

static void report_bad(struct cli *k, const char *fmt, ...)
{
    va_list ap;

    k->bad++;
    g_stats.bad++;
    if (g_stats.bad > 20)
        return;                 /* enough detail */
    printf("# conn %u: ", k->id);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static int send_status_ok(struct cli *k, int rv, const char *what)
{
    if (rv == WS_OK)
        return 1;
    if (rv == WS_HIGH_WATER) {
        k->blocked = 1;         /* queued; wait for on_drain */
        g_stats.high_water++;
        return 1;
    }
    report_bad(k, "%s failed: %s", what, ws_err_name(rv));
    return 0;
}

static int send_ping(struct cli *k)
{
    uint8_t p[WS_CONTROL_PAYLOAD_MAX];
    uint64_t seq = ++k->pings;
    size_t n = 16 + (size_t)rnd(&k->rng, sizeof p - 16 + 1), i;

    memcpy(p, &seq, 8);
    memcpy(p + 8, &k->id, sizeof k->id);
    memset(p + 8 + sizeof k->id, 0, 8 - sizeof k->id);
    for (i = 16; i < n; i++)
        p[i] = (uint8_t)(seq * 31u + i);
    g_stats.pings++;
    return send_status_ok(k, ws_io_send_ping(k->c, p, n), "ping");
}

/* Send message k->sent: whole, or in 1..8 fragments cut anywhere. */
static int send_next(struct cli *k)
{
    unsigned opcode;
    size_t len, cuts[8], nfrag, i, at = 0;

    msg_make(k->id, k->sent, g_tx, &opcode, &len);
    if (rnd(&k->rng, 4) == 0) {
        nfrag = 0;              /* whole: ws_io_send_text / _binary */
    } else {
        nfrag = 1 + (size_t)rnd(&k->rng, 8);
        for (i = 0; i + 1 < nfrag; i++)
            cuts[i] = (size_t)rnd(&k->rng, len + 1);
        cuts[nfrag - 1] = len;
        /* sort the cuts (tiny insertion sort) */
        for (i = 1; i < nfrag; i++) {
            size_t v = cuts[i], j = i;
            while (j > 0 && cuts[j - 1] > v) {
                cuts[j] = cuts[j - 1];
                j--;
            }
            cuts[j] = v;
        }
    }
    if (rnd(&k->rng, 8) == 0 && !send_ping(k))
        return 0;
    if (nfrag == 0) {
        int rv = opcode == WS_OPCODE_TEXT
                     ? ws_io_send_text(k->c, (const char *)g_tx, len)
                     : ws_io_send_binary(k->c, g_tx, len);
        if (!send_status_ok(k, rv, "send whole"))
            return 0;
        g_stats.frames++;
    } else {
        for (i = 0; i < nfrag; i++) {
            int fin = i + 1 == nfrag;
            int rv = ws_io_send_frame(k->c, i ? WS_OPCODE_CONTINUATION
                                              : opcode,
                                      fin, g_tx + at, cuts[i] - at);
            if (!send_status_ok(k, rv, "send_frame"))
                return 0;
            at = cuts[i];
            g_stats.frames++;
            if (!fin && rnd(&k->rng, 16) == 0 && !send_ping(k))
                return 0;
        }
    }
    k->sent++;
    k->in_flight += len;
    if (len > 64u * KIB) {
        k->big_in_flight++;
        g_big_in_flight++;
    }
    return 1;
}

/* Start messages while the window allows. */
static void pump(struct cli *k)
{
    while (g_sending && k->open && !k->closed && !k->blocked && !k->bad &&
           k->sent - k->echoed < WINDOW_MSGS && k->in_flight < WINDOW_BYTES) {
        unsigned opcode;
        size_t len;

        msg_shape(k->id, k->sent, &opcode, &len);
        if (len > 64u * KIB && g_big_in_flight >= MAX_BIG_IN_FLIGHT)
            return;             /* wait for a big one to come back */
        if (!send_next(k))
            return;
    }
}

static int on_open(struct ws_io_conn *c, void *user)
{
    struct cli *k = user;

    (void)c;
    k->open = 1;
    pump(k);
    return 0;
}

static int on_message(struct ws_io_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user)
{
    struct cli *k = user;
    unsigned want_op;
    size_t want_n, i;

    (void)c;
    if (k->echoed >= k->sent) {
        report_bad(k, "unexpected message %llu (only %llu sent)",
                   (unsigned long long)k->echoed,
                   (unsigned long long)k->sent);
        return 0;
    }
    msg_make(k->id, k->echoed, g_rx, &want_op, &want_n);
    if (opcode != want_op || n != want_n || (n && memcmp(p, g_rx, n) != 0)) {
        for (i = 0; i < n && i < want_n && p[i] == g_rx[i]; i++)
            ;
        report_bad(k, "message %llu corrupted: opcode %u/%u, length %zu/%zu,"
                      " first difference at byte %zu",
                   (unsigned long long)k->echoed, opcode, want_op, n, want_n,
                   i);
    }
    k->echoed++;
    k->in_flight -= want_n;
    if (want_n > 64u * KIB) {
        k->big_in_flight--;
        g_big_in_flight--;
        g_stats.big++;
    }
    g_stats.msgs++;
    g_stats.bytes += n;
    if (opcode == WS_OPCODE_TEXT)
        g_stats.text++;
    else
        g_stats.binary++;
    pump(k);
    return 0;
}

static int on_pong(struct ws_io_conn *c, const uint8_t *p, size_t n,
                   void *user)
{
    struct cli *k = user;
    uint64_t seq;
    unsigned id;
    size_t i;

    (void)c;
    if (n < 16) {
        report_bad(k, "pong of %zu bytes", n);
        return 0;
    }
    memcpy(&seq, p, 8);
    memcpy(&id, p + 8, sizeof id);
    /* Pongs answer our pings in order; a newer one may replace an older
     * one that was waiting (RFC 6455 5.5.3), so seq may skip, never go
     * back. */
    if (id != k->id || seq <= k->pong_seq || seq > k->pings) {
        report_bad(k, "pong for ping %llu of conn %u (last %llu, sent %llu)",
                   (unsigned long long)seq, id,
                   (unsigned long long)k->pong_seq,
                   (unsigned long long)k->pings);
        return 0;
    }
    for (i = 16; i < n; i++)
        if (p[i] != (uint8_t)(seq * 31u + i)) {
            report_bad(k, "pong %llu payload corrupted at byte %zu",
                       (unsigned long long)seq, i);
            break;
        }
    k->pong_seq = seq;
    k->pongs++;
    g_stats.pongs++;
    return 0;
}

static void on_drain(struct ws_io_conn *c, void *user)
{
    struct cli *k = user;

    (void)c;
    k->blocked = 0;
    pump(k);
}

static void on_close(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    struct cli *k = user;

    k->closed = 1;
    k->close_code = code;
    k->close_error = ws_io_get_error(c);
    k->c = NULL;
    if (!g_closing)
        report_bad(k, "closed during traffic: code %u (%.*s) error %s", code,
                   (int)n, reason, ws_err_name(k->close_error));
}

static const struct ws_io_handlers g_handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_pong = on_pong,
    .on_drain = on_drain,
    .on_close = on_close,
};

/* ------------------------------------------------------------------------ */
/* The server child                                                         */
/* ------------------------------------------------------------------------ */

static pid_t g_server = -1;

static void kill_server(void)
{
    if (g_server > 0) {
        kill(g_server, SIGKILL);
        waitpid(g_server, NULL, 0);
        g_server = -1;
    }
}

static void on_alarm(int sig)
{
    static const char msg[] = "Bail out! soak: watchdog expired\n";

    (void)sig;
    if (g_server > 0)
        kill(g_server, SIGKILL);
    (void)!write(1, msg, sizeof msg - 1);
    _exit(1);
}

static pid_t start_server(const char *path, unsigned *port)
{
    int p[2];
    pid_t pid;
    char line[128];
    size_t len = 0;
    uint64_t end = now_ms() + 10000;

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
        execl(path, path, "--host", "127.0.0.1", "--port", "0", "--quiet",
              (char *)NULL);
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

/* Resident set size of pid in bytes (0 if unknown). */
static uint64_t rss_of(pid_t pid)
{
    char path[64];
    unsigned long size = 0, res = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------------------ */
/* Phases                                                                   */
/* ------------------------------------------------------------------------ */

static unsigned count_open(void)
{
    unsigned i, n = 0;

    for (i = 0; i < g_nconns; i++)
        n += g_cli[i].open && !g_cli[i].closed ? 1u : 0u;
    return n;
}

static unsigned count_closed(void)
{
    unsigned i, n = 0;

    for (i = 0; i < g_nconns; i++)
        n += g_cli[i].closed ? 1u : 0u;
    return n;
}

static uint64_t count_in_flight(void)
{
    unsigned i;
    uint64_t n = 0;

    for (i = 0; i < g_nconns; i++)
        if (!g_cli[i].closed)
            n += g_cli[i].sent - g_cli[i].echoed;
    return n;
}

/* Stop starting messages and wait until every echo is back. */
static int quiesce(struct ws_loop *loop)
{
    uint64_t end = now_ms() + QUIESCE_MS;

    g_sending = 0;
    while (count_in_flight() > 0 && now_ms() < end)
        ws_loop_run_once(loop, 50);
    return count_in_flight() == 0;
}

static void resume(void)
{
    unsigned i;

    g_sending = 1;
    for (i = 0; i < g_nconns; i++)
        pump(&g_cli[i]);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: soak ECHO_SERVER [--seconds N] [--conns N] "
               "[--seed S] [--warmup S]\n"
               "            [--max-growth PCT] [--slack-kib K] "
               "[--rss-every S]\n");
}

int main(int argc, char **argv)
{
    const char *server_path = NULL;
    unsigned seconds = 60, warmup = 0, port = 0, rss_every = 0, i;
    double max_growth = 5.0;
    uint64_t slack = 1024u * KIB, rss_warm = 0, rss_end = 0, t0, t_end,
             t_warm, t_next_rss = 0, msgs_warm = 0;
    struct ws_loop *loop = NULL;
    char url[96];
    int ok, status = 0, warm_done = 0, a;

    setvbuf(stdout, NULL, _IOLBF, 0);
    g_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc)
            seconds = (unsigned)strtoul(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--conns") == 0 && a + 1 < argc)
            g_nconns = (unsigned)strtoul(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc)
            g_seed = strtoull(argv[++a], NULL, 0);
        else if (strcmp(argv[a], "--warmup") == 0 && a + 1 < argc)
            warmup = (unsigned)strtoul(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--max-growth") == 0 && a + 1 < argc)
            max_growth = strtod(argv[++a], NULL);
        else if (strcmp(argv[a], "--slack-kib") == 0 && a + 1 < argc)
            slack = strtoull(argv[++a], NULL, 10) * KIB;
        else if (strcmp(argv[a], "--rss-every") == 0 && a + 1 < argc)
            rss_every = (unsigned)strtoul(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[a][0] != '-' && server_path == NULL)
            server_path = argv[a];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (server_path == NULL || seconds == 0 || g_nconns == 0) {
        usage(stderr);
        return 2;
    }
    /* A sixth of the run, 3 to 10 s: the server's heap needs a few
     * seconds of traffic to reach its working size. */
    if (warmup == 0)
        warmup = seconds / 6 < 3 ? 3 : seconds / 6 > 10 ? 10 : seconds / 6;
    if (warmup >= seconds)
        warmup = seconds / 2;

    printf("1..7\n");
    note("seed 0x%llx, %u connections, %u s (warm-up %u s), RSS limit "
         "+%.1f%% + %llu KiB", (unsigned long long)g_seed, g_nconns, seconds,
         warmup, max_growth, (unsigned long long)(slack / KIB));
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(seconds + (QUIESCE_MS * 2 + OPEN_MS + CLOSE_MS) / 1000 + 30);

    g_cli = calloc(g_nconns, sizeof *g_cli);
    g_tx = malloc(MAX_MSG);
    g_rx = malloc(MAX_MSG);
    if (g_cli == NULL || g_tx == NULL || g_rx == NULL) {
        printf("Bail out! out of memory\n");
        return 1;
    }

    /* 1. the server */
    g_server = start_server(server_path, &port);
    if (!tap(g_server > 0, "echo_server started (%s)", server_path)) {
        printf("Bail out! cannot start %s\n", server_path);
        return 1;
    }
    note("echo_server pid %ld on 127.0.0.1:%u, RSS %llu KiB at start",
         (long)g_server, port, (unsigned long long)(rss_of(g_server) / KIB));

    /* 2. connections */
    {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (ws_loop_new(&loop, 0) != WS_OK) {
        printf("Bail out! ws_loop_new failed\n");
        kill_server();
        return 1;
    }
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/soak", port);
    ok = 1;
    for (i = 0; i < g_nconns; i++) {
        struct cli *k = &g_cli[i];
        int rv;

        k->id = i;
        k->rng = g_seed ^ (0xabcdefull * (i + 1));
        k->opts.handlers = &g_handlers;
        k->opts.user = k;
        rv = ws_client_connect(loop, url, &k->opts, &k->c);
        if (rv != WS_OK) {
            note("conn %u: ws_client_connect: %s", i, ws_err_name(rv));
            ok = 0;
            k->closed = 1;
        }
    }
    g_sending = 1;
    t0 = now_ms();
    while (count_open() + count_closed() < g_nconns && now_ms() < t0 + OPEN_MS)
        ws_loop_run_once(loop, 50);
    ok = ok && count_open() == g_nconns;
    tap(ok, "%u of %u connections open in %llu ms", count_open(), g_nconns,
        (unsigned long long)(now_ms() - t0));

    /* 3. traffic */
    t0 = now_ms();
    t_warm = t0 + (uint64_t)warmup * 1000u;
    t_end = t0 + (uint64_t)seconds * 1000u;
    while (now_ms() < t_end && count_closed() == 0) {
        ws_loop_run_once(loop, 50);
        if (!warm_done && now_ms() >= t_warm) {
            warm_done = 1;
            if (!quiesce(loop))
                break;
            rss_warm = rss_of(g_server);
            msgs_warm = g_stats.msgs;
            note("after warm-up (%u s): %llu messages echoed; server RSS "
                 "%llu KiB, client RSS %llu KiB", warmup,
                 (unsigned long long)msgs_warm,
                 (unsigned long long)(rss_warm / KIB),
                 (unsigned long long)(rss_of(getpid()) / KIB));
            resume();
            t_next_rss = rss_every ? now_ms() + rss_every * 1000u : 0;
        }
        if (t_next_rss && now_ms() >= t_next_rss && now_ms() + 1000 < t_end) {
            if (!quiesce(loop))
                break;
            note("at %llu s: %llu messages echoed; server RSS %llu KiB",
                 (unsigned long long)((now_ms() - t0) / 1000),
                 (unsigned long long)g_stats.msgs,
                 (unsigned long long)(rss_of(g_server) / KIB));
            resume();
            t_next_rss = now_ms() + rss_every * 1000u;
        }
    }
    ok = quiesce(loop);
    rss_end = rss_of(g_server);
    {
        double secs = (double)(now_ms() - t0) / 1000.0;
        note("%llu messages (%llu text, %llu binary, %llu over 64 KiB), "
             "%.1f MiB echoed, %llu frames, %llu pings, %llu pongs, "
             "%llu high-water stops in %.1f s (%.0f msg/s, %.1f MiB/s)",
             (unsigned long long)g_stats.msgs,
             (unsigned long long)g_stats.text,
             (unsigned long long)g_stats.binary,
             (unsigned long long)g_stats.big,
             (double)g_stats.bytes / MIB, (unsigned long long)g_stats.frames,
             (unsigned long long)g_stats.pings,
             (unsigned long long)g_stats.pongs,
             (unsigned long long)g_stats.high_water, secs,
             (double)g_stats.msgs / secs,
             (double)g_stats.bytes / MIB / secs);
    }
    tap(g_stats.bad == 0 && count_closed() == 0 && g_stats.msgs > 0,
        "every echo byte-exact and in order (%llu messages, %llu bad, "
        "%u connections lost)",
        (unsigned long long)g_stats.msgs, (unsigned long long)g_stats.bad,
        count_closed());
    {
        uint64_t sent = 0, echoed = 0;
        for (i = 0; i < g_nconns; i++) {
            sent += g_cli[i].sent;
            echoed += g_cli[i].echoed;
        }
        tap(ok && sent == echoed, "zero lost messages (%llu sent, %llu "
            "echoed)", (unsigned long long)sent, (unsigned long long)echoed);
    }

    /* 4. memory */
    {
        double growth = rss_warm ? 100.0 * ((double)rss_end -
                                            (double)rss_warm) /
                                       (double)rss_warm
                                 : 0.0;
        uint64_t limit = rss_warm + (uint64_t)((double)rss_warm *
                                               max_growth / 100.0) + slack;
        note("server RSS after warm-up %llu KiB, at the end %llu KiB: "
             "growth %+.2f%% (%+lld KiB), over %llu more messages",
             (unsigned long long)(rss_warm / KIB),
             (unsigned long long)(rss_end / KIB), growth,
             (long long)((int64_t)rss_end - (int64_t)rss_warm) / (long long)KIB,
             (unsigned long long)(g_stats.msgs - msgs_warm));
        tap(warm_done && rss_warm > 0 && rss_end <= limit,
            "server RSS within %.1f%% + %llu KiB of its warm-up value "
            "(%llu -> %llu KiB, %+.2f%%)", max_growth,
            (unsigned long long)(slack / KIB),
            (unsigned long long)(rss_warm / KIB),
            (unsigned long long)(rss_end / KIB), growth);
    }

    /* 5. close every connection */
    g_closing = 1;
    g_sending = 0;
    for (i = 0; i < g_nconns; i++)
        if (!g_cli[i].closed && g_cli[i].c)
            (void)ws_io_close(g_cli[i].c, 1000, "soak done", 9);
    t0 = now_ms();
    while (count_closed() < g_nconns && now_ms() < t0 + CLOSE_MS)
        ws_loop_run_once(loop, 50);
    {
        unsigned clean = 0;
        for (i = 0; i < g_nconns; i++) {
            struct cli *k = &g_cli[i];
            if (k->closed && k->close_code == 1000 && k->close_error == 0)
                clean++;
            else if (clean + 5 > i)
                note("conn %u: closed %d code %u error %s", i, k->closed,
                     k->close_code, ws_err_name(k->close_error));
        }
        tap(clean == g_nconns, "%u of %u connections closed cleanly with "
            "1000 in %llu ms", clean, g_nconns,
            (unsigned long long)(now_ms() - t0));
    }
    ws_loop_free(loop);

    /* 6. the server stops on SIGTERM */
    kill(g_server, SIGTERM);
    t0 = now_ms();
    {
        struct timespec tick = {0, 10000000L};
        pid_t r = 0;

        while (now_ms() < t0 + 5000 &&
               (r = waitpid(g_server, &status, WNOHANG)) == 0)
            nanosleep(&tick, NULL);
        if (r == g_server)
            g_server = -1;
        tap(r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "echo_server exited 0 after SIGTERM (%llu ms)",
            (unsigned long long)(now_ms() - t0));
    }
    kill_server();
    free(g_cli);
    free(g_tx);
    free(g_rx);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
