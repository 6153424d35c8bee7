/*
 * echo_load - load generator for WebSocket echo servers, on the libws I/O
 * layer (ws_client_connect, one epoll loop, one thread). Used by
 * tests/bench/run_echo.sh against libws, wslay, libwebsockets, Node ws and
 * Python websockets; see tests/bench/ECHO.md.
 *
 *   echo_load --url ws://127.0.0.1:PORT/ [--pid PID] [--label NAME]
 *             [--workload latency|pipelined|binary64k|text1m|idle]
 *             [--conns N] [--depth D] [--size BYTES] [--binary|--text]
 *             [--seconds S] [--warmup S] [--src-base 127.0.0.2]
 *             [--src-count N] [--json]
 *
 * Active workloads: N connections each keep D messages in flight (D = 1 is
 * ping-pong). Every echo is checked byte for byte: a message carries its
 * connection and sequence number in its first 16 bytes (hex, so text
 * stays ASCII) and a fixed pattern after that; echoes must come back in
 * order, whole, with the opcode they were sent with. Nothing is counted
 * during the warm-up; then, for --seconds, the tool counts echoes and
 * payload bytes, records each message's latency (send call -> echo
 * delivered) and reads the server's CPU time (utime + stime of
 * /proc/PID/stat, all threads) before and after: server CPU per message
 * is that difference divided by the echoes counted.
 *
 * The idle workload opens N raw TCP connections (not through ws_io: it
 * needs source addresses 127.0.0.x to stay clear of the ephemeral port
 * range), each sends one Upgrade request and checks the 101 answer
 * (RFC 6455 4.2.2 accept for the RFC's sample key), then stays idle. The
 * server's VmRSS (/proc/PID/status) before the first and 1 s after the
 * last connection gives the user-space memory per connection. The
 * connections end with a TCP reset (SO_LINGER 0), which leaves no
 * TIME_WAIT behind.
 *
 * Prints one line per run (or one JSON object with --json). Exit status 0
 * only if every echo was right and every connection behaved.
 */
#define _GNU_SOURCE 1
#include <ws_io.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STAMP 16                     /* bytes: 8 hex conn id + 8 hex seq */

struct run;

struct client {
    struct run *run;
    struct ws_io_conn *c;
    uint32_t id;
    uint64_t next_send, next_recv;   /* sequence numbers */
    uint64_t *sent_at;               /* ns, ring of depth entries */
    uint8_t *out;                    /* the message, stamped per send */
    int open, closed;
};

struct run {
    const char *url, *label, *workload;
    long pid;
    int conns, depth, binary, json;
    size_t size;
    double seconds, warmup;
    const char *src_base;
    int src_count;

    struct ws_loop *loop;
    struct client *cl;
    uint8_t *base;                   /* the pattern every message carries */
    int opened, closed, stopping, measuring, done;
    uint64_t msgs, bytes, errors;
    uint64_t t_start, t_end;         /* measurement window, ns */
    double cpu_start, cpu_end;       /* server CPU seconds */
    struct rusage ru_start, ru_end;  /* ours */
    float *lat;                      /* latencies in the window, us */
    size_t nlat, lat_cap;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* utime + stime of the whole process (all threads), seconds; -1 if gone. */
static double proc_cpu(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;
    int i;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');          /* the name may contain spaces */
    if (p == NULL)
        return -1;
    p += 2;                          /* field 3, state */
    for (i = 3; i < 14 && p; i++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS in KiB, or -1. */
static long proc_rss_kib(long pid)
{
    char path[64], line[256];
    long v = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    fclose(f);
    return v;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

static void make_pattern(uint8_t *p, size_t n, int binary)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = binary ? (uint8_t)((i * 2654435761u) >> 13)
                      : (uint8_t)('A' + (i * 7 + i / 58) % 58);
}

static void stamp(uint8_t *p, uint32_t id, uint64_t seq)
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)hex[(id >> (28 - 4 * i)) & 15];
        p[8 + i] = (uint8_t)hex[((uint32_t)seq >> (28 - 4 * i)) & 15];
    }
}

static int send_next(struct run *r, struct client *k)
{
    int rv;

    stamp(k->out, k->id, k->next_send);
    k->sent_at[k->next_send % (uint64_t)r->depth] = now_ns();
    k->next_send++;
    if (r->binary)
        rv = ws_io_send_binary(k->c, k->out, r->size);
    else
        rv = ws_io_send_text(k->c, (const char *)k->out, r->size);
    if (rv != WS_OK && rv != WS_HIGH_WATER) {
        fprintf(stderr, "echo_load: send on connection %u: %s\n", k->id,
                ws_strerror(rv));
        r->errors++;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Active workloads                                                         */
/* ------------------------------------------------------------------------ */

static int on_open(struct ws_io_conn *c, void *user)
{
    struct client *k = user;
    struct run *r = k->run;
    int i;

    (void)c;
    k->open = 1;
    r->opened++;
    for (i = 0; i < r->depth && !r->stopping; i++)
        if (send_next(r, k) < 0)
            break;
    return 0;
}

static void record_latency(struct run *r, float us)
{
    if (r->nlat == r->lat_cap) {
        size_t cap = r->lat_cap ? r->lat_cap * 2 : 65536;
        float *p = realloc(r->lat, cap * sizeof *p);
        if (p == NULL)
            return;
        r->lat = p;
        r->lat_cap = cap;
    }
    r->lat[r->nlat++] = us;
}

static int on_message(struct ws_io_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user)
{
    struct client *k = user;
    struct run *r = k->run;
    uint8_t want[STAMP];
    uint64_t t = now_ns();

    stamp(want, k->id, k->next_recv);
    if (opcode != (r->binary ? WS_OPCODE_BINARY : WS_OPCODE_TEXT) ||
        n != r->size || memcmp(p, want, STAMP) != 0 ||
        memcmp(p + STAMP, r->base + STAMP, n - STAMP) != 0) {
        if (r->errors++ < 5)
            fprintf(stderr, "echo_load: connection %u message %llu: echo "
                            "differs (opcode %u, %zu bytes)\n", k->id,
                    (unsigned long long)k->next_recv, opcode, n);
        return 0;
    }
    if (r->measuring) {
        r->msgs++;
        r->bytes += n;
        record_latency(r, (float)(t - k->sent_at[k->next_recv %
                                                 (uint64_t)r->depth]) / 1e3f);
    }
    k->next_recv++;
    if (!r->stopping)
        (void)send_next(r, k);
    else if (k->next_recv == k->next_send && !k->closed)
        ws_io_close(c, WS_CLOSE_NORMAL, NULL, 0);
    return 0;
}

static void on_close(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    struct client *k = user;
    struct run *r = k->run;

    if (!k->open) {
        r->errors++;
        fprintf(stderr, "echo_load: connection %u failed: %u %.*s (%s)\n",
                k->id, code, (int)n, reason,
                ws_strerror(ws_io_get_error(c)));
    } else if (!r->stopping) {
        r->errors++;
        fprintf(stderr, "echo_load: connection %u closed during the run: "
                        "%u %.*s\n", k->id, code, (int)n, reason);
    }
    k->closed = 1;
    k->c = NULL;
    r->closed++;
    if (r->closed == r->conns)
        ws_loop_stop(r->loop);
}

static const struct ws_io_handlers handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

static void start_window(struct ws_loop *loop, void *arg)
{
    struct run *r = arg;

    (void)loop;
    r->measuring = 1;
    r->msgs = r->bytes = 0;
    r->nlat = 0;
    r->cpu_start = proc_cpu(r->pid);
    getrusage(RUSAGE_SELF, &r->ru_start);
    r->t_start = now_ns();
}

static void close_all(struct ws_loop *loop, void *arg)
{
    struct run *r = arg;
    int i;

    (void)loop;
    for (i = 0; i < r->conns; i++)
        if (r->cl[i].c && !r->cl[i].closed)
            ws_io_close(r->cl[i].c, WS_CLOSE_NORMAL, NULL, 0);
}

static void end_window(struct ws_loop *loop, void *arg)
{
    struct run *r = arg;
    int i;

    r->t_end = now_ns();
    r->cpu_end = proc_cpu(r->pid);
    getrusage(RUSAGE_SELF, &r->ru_end);
    r->measuring = 0;
    r->stopping = 1;
    r->done = 1;
    /* Let what is in flight come back (and be checked), then close. */
    for (i = 0; i < r->conns; i++) {
        struct client *k = &r->cl[i];
        if (k->c && !k->closed && k->next_recv == k->next_send)
            ws_io_close(k->c, WS_CLOSE_NORMAL, NULL, 0);
    }
    ws_timer_start(loop, 3000, 0, close_all, r, NULL);
}

static void give_up(struct ws_loop *loop, void *arg)
{
    (void)arg;
    ws_loop_stop(loop);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;

    return x < y ? -1 : x > y;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int run_active(struct run *r)
{
    struct ws_io_options o;
    double win, p50 = 0, p99 = 0, srv = -1, cli;
    int i;

    memset(&o, 0, sizeof o);
    o.handlers = &handlers;
    o.max_message = 64u << 20;
    o.high_water = 256u << 20;       /* depth bounds what we send */
    o.max_buffered = 512u << 20;
    o.handshake_timeout_ms = 10000;
    if (ws_loop_new(&r->loop, 0) != WS_OK)
        return 2;
    r->base = malloc(r->size);
    r->cl = calloc((size_t)r->conns, sizeof *r->cl);
    if (r->base == NULL || r->cl == NULL)
        return 2;
    make_pattern(r->base, r->size, r->binary);
    for (i = 0; i < r->conns; i++) {
        struct client *k = &r->cl[i];
        int rv;
        k->id = (uint32_t)i;
        k->run = r;
        k->sent_at = calloc((size_t)r->depth, sizeof *k->sent_at);
        k->out = malloc(r->size);
        if (k->sent_at == NULL || k->out == NULL)
            return 2;
        memcpy(k->out, r->base, r->size);
        o.user = k;                  /* copied: each connection its own */
        rv = ws_client_connect(r->loop, r->url, &o, &k->c);
        if (rv != WS_OK) {
            fprintf(stderr, "echo_load: cannot connect to %s: %s\n", r->url,
                    ws_strerror(rv));
            return 2;
        }
    }
    ws_timer_start(r->loop, (uint32_t)(r->warmup * 1000), 0, start_window, r,
                   NULL);
    ws_timer_start(r->loop, (uint32_t)((r->warmup + r->seconds) * 1000), 0,
                   end_window, r, NULL);
    ws_timer_start(r->loop, (uint32_t)((r->warmup + r->seconds) * 1000) +
                                8000, 0, give_up, r, NULL);
    ws_loop_run(r->loop);
    ws_loop_free(r->loop);

    if (!r->done) {
        fprintf(stderr, "echo_load: %s %s: the run did not finish\n",
                r->label, r->workload);
        return 1;
    }
    if (r->opened != r->conns) {
        fprintf(stderr, "echo_load: only %d of %d connections opened\n",
                r->opened, r->conns);
        r->errors++;
    }
    win = (double)(r->t_end - r->t_start) / 1e9;
    if (r->nlat > 0) {
        qsort(r->lat, r->nlat, sizeof *r->lat, cmp_float);
        p50 = r->lat[r->nlat / 2];
        p99 = r->lat[(size_t)((double)r->nlat * 0.99)];
    }
    if (r->cpu_start >= 0 && r->cpu_end >= 0 && r->msgs > 0)
        srv = (r->cpu_end - r->cpu_start) * 1e6 / (double)r->msgs;
    cli = (tv_s(r->ru_end.ru_utime) + tv_s(r->ru_end.ru_stime) -
           tv_s(r->ru_start.ru_utime) - tv_s(r->ru_start.ru_stime)) / win;
    if (r->json) {
        printf("{\"server\":\"%s\",\"workload\":\"%s\",\"conns\":%d,"
               "\"depth\":%d,\"size\":%zu,\"binary\":%d,\"seconds\":%.3f,"
               "\"msgs\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f,"
               "\"p50_us\":%.1f,\"p99_us\":%.1f,\"srv_cpu_us_per_msg\":%.3f,"
               "\"srv_cpu_pct\":%.1f,\"cli_cpu_pct\":%.1f,\"errors\":%llu}\n",
               r->label, r->workload, r->conns, r->depth, r->size, r->binary,
               win, (unsigned long long)r->msgs, (double)r->msgs / win,
               (double)r->bytes / win / 1e6, p50, p99, srv,
               srv < 0 ? -1.0 : (r->cpu_end - r->cpu_start) / win * 100,
               cli * 100, (unsigned long long)r->errors);
    } else {
        printf("%-8s %-10s conns=%d depth=%d size=%zu %s msgs=%llu "
               "msgs/s=%.0f MB/s=%.1f p50=%.1fus p99=%.1fus "
               "srv_cpu=%.3fus/msg srv_cpu%%=%.0f cli_cpu%%=%.0f errors=%llu\n",
               r->label, r->workload, r->conns, r->depth, r->size,
               r->binary ? "binary" : "text", (unsigned long long)r->msgs,
               (double)r->msgs / win, (double)r->bytes / win / 1e6, p50, p99,
               srv, srv < 0 ? -1.0 : (r->cpu_end - r->cpu_start) / win * 100,
               cli * 100, (unsigned long long)r->errors);
    }
    fflush(stdout);
    return r->errors || r->msgs == 0 ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Idle connections                                                         */
/* ------------------------------------------------------------------------ */

struct idle {
    int fd;
    int state;                       /* 0 connecting, 1 waiting 101, 2 done */
    size_t got;
    char resp[512];
};

/* RFC 6455 1.3: the sample key and its accept value. */
static const char sample_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static int parse_host_port(const char *url, struct sockaddr_in *sa,
                           char *hostport, size_t cap)
{
    const char *h = strstr(url, "://"), *colon, *slash;
    char host[64];
    size_t n;

    h = h ? h + 3 : url;
    colon = strchr(h, ':');
    slash = strchr(h, '/');
    if (colon == NULL || (slash && slash < colon))
        return -1;
    n = (size_t)(colon - h);
    if (n >= sizeof host)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    snprintf(hostport, cap, "%s:%d", host, atoi(colon + 1));
    return 0;
}

static int idle_start(struct idle *c, int epfd, const struct sockaddr_in *dst,
                      const struct sockaddr_in *src)
{
    struct epoll_event e;
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
#ifdef IP_BIND_ADDRESS_NO_PORT
    (void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                     sizeof one);
#endif
    (void)one;
    if (bind(c->fd, (const struct sockaddr *)src, sizeof *src) < 0 ||
        (connect(c->fd, (const struct sockaddr *)dst, sizeof *dst) < 0 &&
         errno != EINPROGRESS)) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    memset(&e, 0, sizeof e);
    e.events = EPOLLOUT;
    e.data.ptr = c;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e);
}

/* 1: handshake done, 0: not yet, -1: failed. */
static int idle_step(struct idle *c, int epfd, const char *req, size_t reqlen)
{
    struct epoll_event e;
    ssize_t n;

    if (c->state == 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
            return -1;
        if (send(c->fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen)
            return -1;
        c->state = 1;
        memset(&e, 0, sizeof e);
        e.events = EPOLLIN;
        e.data.ptr = c;
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
        return 0;
    }
    n = recv(c->fd, c->resp + c->got, sizeof c->resp - 1 - c->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    c->got += (size_t)n;
    c->resp[c->got] = '\0';
    if (strstr(c->resp, "\r\n\r\n") == NULL)
        return c->got < sizeof c->resp - 1 ? 0 : -1;
    if (strncmp(c->resp, "HTTP/1.1 101", 12) != 0 ||
        strstr(c->resp, sample_accept) == NULL)
        return -1;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->state = 2;
    return 1;
}

static int run_idle(struct run *r)
{
    struct sockaddr_in dst, src;
    struct epoll_event ev[256];
    struct idle *cs;
    char hostport[96], req[512];
    int epfd, started = 0, inflight = 0, done = 0, failed = 0, i;
    long before, after;
    uint32_t src0;
    uint64_t t0;
    double secs;
    struct linger lg = {1, 0};

    if (parse_host_port(r->url, &dst, hostport, sizeof hostport) < 0) {
        fprintf(stderr, "echo_load: idle needs ws://IPv4:PORT/, not %s\n",
                r->url);
        return 2;
    }
    if (r->pid <= 0) {
        fprintf(stderr, "echo_load: idle needs --pid\n");
        return 2;
    }
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n", hostport);
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    if (inet_pton(AF_INET, r->src_base, &src.sin_addr) != 1)
        return 2;
    src0 = ntohl(src.sin_addr.s_addr);
    cs = calloc((size_t)r->conns, sizeof *cs);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (cs == NULL || epfd < 0)
        return 2;
    before = proc_rss_kib(r->pid);
    t0 = now_ns();
    while (done + failed < r->conns) {
        int n;
        /* Keep at most 256 handshakes in flight: a small listen backlog
         * (asyncio's is 100) would otherwise drop SYNs and stall us for
         * the 1 s SYN retry. */
        while (started < r->conns && inflight < 256) {
            src.sin_addr.s_addr =
                htonl(src0 + (uint32_t)(started % r->src_count));
            if (idle_start(&cs[started], epfd, &dst, &src) < 0) {
                if (failed++ < 3)
                    fprintf(stderr, "echo_load: idle connect %d: %s\n",
                            started, strerror(errno));
            } else {
                inflight++;
            }
            started++;
        }
        if (now_ns() - t0 > 60000000000ull) {
            fprintf(stderr, "echo_load: idle: timed out\n");
            failed += r->conns - done - failed;
            break;
        }
        n = epoll_wait(epfd, ev, 256, 1000);
        for (i = 0; i < n; i++) {
            struct idle *c = ev[i].data.ptr;
            int s = idle_step(c, epfd, req, strlen(req));
            if (s == 1) {
                done++;
                inflight--;
            } else if (s < 0) {
                if (failed++ < 3)
                    fprintf(stderr, "echo_load: idle handshake failed: "
                                    "%.60s\n", c->resp);
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                inflight--;
            }
        }
    }
    secs = (double)(now_ns() - t0) / 1e9;
    sleep(1);                        /* let lazy allocations happen */
    after = proc_rss_kib(r->pid);
    for (i = 0; i < r->conns; i++) {
        if (cs[i].fd >= 0) {
            (void)setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(cs[i].fd);
        }
    }
    close(epfd);
    free(cs);
    if (r->json)
        printf("{\"server\":\"%s\",\"workload\":\"idle\",\"conns\":%d,"
               "\"open\":%d,\"connect_s\":%.2f,\"rss_before_kib\":%ld,"
               "\"rss_after_kib\":%ld,\"kib_per_conn\":%.3f,\"errors\":%d}\n",
               r->label, r->conns, done, secs, before, after,
               done ? (double)(after - before) / done : -1.0, failed);
    else
        printf("%-8s %-10s conns=%d open=%d connect=%.2fs rss_before=%ldKiB "
               "rss_after=%ldKiB per_conn=%.3fKiB errors=%d\n", r->label,
               "idle", r->conns, done, secs, before, after,
               done ? (double)(after - before) / done : -1.0, failed);
    fflush(stdout);
    usleep(300000);                  /* let the server take the resets */
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: echo_load --url ws://127.0.0.1:PORT/ [options]\n"
            "  --workload W     latency (1 conn, depth 1, 32 B text),\n"
            "                   pipelined (100 conns, depth 8, 32 B text),\n"
            "                   binary64k (10 conns, depth 1, 64 KiB binary),\n"
            "                   text1m (1 conn, depth 1, 1 MiB text),\n"
            "                   idle (10,000 idle connections; needs --pid)\n"
            "  --conns N --depth D --size BYTES --binary --text  override\n"
            "  --seconds S      measured time (default 2)\n"
            "  --warmup S       not counted, before (default 0.3)\n"
            "  --pid PID        the server process: CPU time, RSS\n"
            "  --label NAME     the server's name in the output\n"
            "  --src-base ADDR  idle: first source address (127.0.0.2)\n"
            "  --src-count N    idle: source addresses used (16)\n"
            "  --json           one JSON object per run\n");
}

static int preset(struct run *r, const char *w)
{
    r->workload = w;
    if (strcmp(w, "latency") == 0) {
        r->conns = 1, r->depth = 1, r->size = 32, r->binary = 0;
    } else if (strcmp(w, "pipelined") == 0) {
        r->conns = 100, r->depth = 8, r->size = 32, r->binary = 0;
    } else if (strcmp(w, "binary64k") == 0) {
        r->conns = 10, r->depth = 1, r->size = 64u << 10, r->binary = 1;
    } else if (strcmp(w, "text1m") == 0) {
        r->conns = 1, r->depth = 1, r->size = 1u << 20, r->binary = 0;
    } else if (strcmp(w, "idle") == 0) {
        r->conns = 10000;
    } else {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct run r;
    int i;

    memset(&r, 0, sizeof r);
    r.label = "server";
    r.seconds = 2;
    r.warmup = 0.3;
    r.src_base = "127.0.0.2";
    r.src_count = 16;
    preset(&r, "latency");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--workload") == 0 && v) {
            if (preset(&r, v) < 0) {
                fprintf(stderr, "echo_load: unknown workload %s\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--url") == 0 && v) {
            r.url = v, i++;
        } else if (strcmp(a, "--pid") == 0 && v) {
            r.pid = atol(v), i++;
        } else if (strcmp(a, "--label") == 0 && v) {
            r.label = v, i++;
        } else if (strcmp(a, "--conns") == 0 && v) {
            r.conns = atoi(v), i++;
        } else if (strcmp(a, "--depth") == 0 && v) {
            r.depth = atoi(v), i++;
        } else if (strcmp(a, "--size") == 0 && v) {
            r.size = (size_t)atol(v), i++;
        } else if (strcmp(a, "--seconds") == 0 && v) {
            r.seconds = atof(v), i++;
        } else if (strcmp(a, "--warmup") == 0 && v) {
            r.warmup = atof(v), i++;
        } else if (strcmp(a, "--src-base") == 0 && v) {
            r.src_base = v, i++;
        } else if (strcmp(a, "--src-count") == 0 && v) {
            r.src_count = atoi(v), i++;
        } else if (strcmp(a, "--binary") == 0) {
            r.binary = 1;
        } else if (strcmp(a, "--text") == 0) {
            r.binary = 0;
        } else if (strcmp(a, "--json") == 0) {
            r.json = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "echo_load: unknown or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (r.url == NULL || r.conns < 1 || r.depth < 1 || r.size < STAMP ||
        r.seconds <= 0 || r.warmup < 0 || r.src_count < 1) {
        usage(stderr);
        return 2;
    }
    raise_fd_limit();
    if (strcmp(r.workload, "idle") == 0)
        return run_idle(&r);
    return run_active(&r);
}
