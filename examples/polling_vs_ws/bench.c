/*
 * bench.c - polling_vs_ws --bench: the page's comparison without a
 * browser. C clients for each transport run against the demo server (one
 * started in-process, or a running one with --host/--port) for a fixed
 * time, and the result is printed as a table or as JSON:
 *
 *   polling_vs_ws --bench [--seconds N] [--rate R] [--clients C]
 *                 [--interval MS] [--reconnect] [--json]
 *                 [--host H --port P]
 *
 * Threads:
 *
 *   - the server (in-process only): its own ws_loop running ws_loop_run;
 *   - the HTTP clients (short polling, long polling, Server-Sent Events):
 *     a small non-blocking HTTP/1.1 client on raw sockets, all driven by
 *     one poll() loop; a pipe wakes it when it is time to stop;
 *   - the WebSocket clients: a second ws_loop (ws_client_connect) running
 *     ws_loop_run. They get their own thread so that neither kind of
 *     client waits in the other's poll() and adds to its latency.
 *   - the main thread sets up, sleeps for the run, reads the server's
 *     counters and stops everything (ws_loop_post, the pipe).
 *
 * What is measured, per transport:
 *
 *   - received: distinct update ids the clients got (summed over clients);
 *   - missed: ids that never came. Short polling, long polling and SSE
 *     start from the server's newest id when the run begins (since=L,
 *     Last-Event-ID: L), so every later id is expected; a WebSocket has
 *     no such request and starts at the first update it gets. The ids the
 *     server reports as "missed" (out of history) show up as gaps too;
 *   - duplicated / out of order: an id that came twice / after a newer
 *     one;
 *   - latency: receive time (CLOCK_REALTIME, ms) minus the update's "t";
 *   - requests, bytes: the server's counters (pvw_server_counters()
 *     in-process, GET /stats with --host), as differences over the run,
 *     divided by the updates the server sent on that transport.
 *
 * --reconnect: every client drops its connection once or twice at random
 * moments. Short polling simply goes on with since=last; long polling
 * asks again at once with since=last; SSE reconnects after the server's
 * "retry" with Last-Event-ID: last. A WebSocket cannot resume by itself:
 * it reconnects after the same 1 s and then fetches GET /poll?since=last
 * once (a blocking request on the WebSocket clients' thread, fast on
 * localhost) and counts those updates as received ("resynced"); updates
 * that then also arrive on the new socket are the expected overlap, not
 * duplicates. Those re-sync requests show in the server's poll counters.
 *
 * Against a running server (--host/--port) the rate is the server's own
 * (the benchmark does not change it for everyone), and other clients'
 * traffic during the run mixes into the server's counters.
 *
 * Exit status: 0 the run worked; 1 something failed (a transport got no
 * updates; duplicates, out-of-order ids or loss for long polling, SSE or
 * WebSocket; the server could not be started or reached); 2 bad usage.
 */
#define _POSIX_C_SOURCE 200809L
#include "pvw.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (64u << 10)        /* a response head larger: an error */
#define FETCH_TIMEOUT_MS 5000.0     /* /stats and WebSocket re-sync */
#define RETRY_MS 200.0              /* after a failed request */
#define SSE_RETRY_DEFAULT_MS 1000u
#define EVENT_DATA_MAX 1024u        /* an SSE data field (updates: ~60) */
#define MAX_CLIENTS 5000L

static const char *const tnames[PVW_NTRANS] = {"poll", "longpoll", "sse",
                                               "ws"};

/* ------------------------------------------------------------------------ */
/* Clocks, numbers, text                                                    */
/* ------------------------------------------------------------------------ */

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The clock of the server's "t" (and of the page's Date.now()). */
static double wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000.0);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* xorshift64*: drop times and start offsets, reproducible enough. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double random_unit(uint64_t *s)
{
    return (double)(next_random(s) >> 11) / 9007199254740992.0;
}

/* The first occurrence of needle in [p, end), or NULL. */
static const char *find_text(const char *p, const char *end,
                             const char *needle)
{
    size_t n = strlen(needle);

    for (; p && (size_t)(end - p) >= n; p++)
        if (*p == *needle && memcmp(p, needle, n) == 0)
            return p;
    return NULL;
}

/* Decimal digits at p (at most 19). 0, or -1 if there are none. */
static int parse_digits(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    int k = 0;

    while (p < end && *p >= '0' && *p <= '9' && k < 19) {
        v = v * 10u + (uint64_t)(*p++ - '0');
        k++;
    }
    *out = v;
    return k > 0 ? 0 : -1;
}

/* The unsigned integer after key (e.g. "\"id\":") in [p, end). */
static int json_u64(const char *p, const char *end, const char *key,
                    uint64_t *out)
{
    const char *q = find_text(p, end, key);

    if (q == NULL)
        return -1;
    q += strlen(key);
    while (q < end && *q == ' ')
        q++;
    return parse_digits(q, end, out);
}

/* An update object {"id":N,"t":T,...} (or a WebSocket message with the
 * same members) in [p, end). */
static int parse_update(const char *p, const char *end, uint64_t *id,
                        uint64_t *t)
{
    if (json_u64(p, end, "\"id\":", id) != 0 ||
        json_u64(p, end, "\"t\":", t) != 0 || *id == 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* What one client received                                                 */
/* ------------------------------------------------------------------------ */

struct track {
    uint64_t base;              /* ids above base are expected */
    uint64_t first, max;        /* lowest and highest id seen; 0: none */
    unsigned char *seen;        /* bit (id - base - 1): id arrived */
    size_t seen_bytes;
    uint64_t received, duplicated, out_of_order, overlap, stale;
    uint64_t server_missed;     /* sum of the "missed" fields (polling) */
    double *lat;
    size_t nlat, lat_cap;
    int oom;
};

static void track_init(struct track *k, uint64_t base)
{
    memset(k, 0, sizeof *k);
    k->base = base;
}

static void track_free(struct track *k)
{
    free(k->seen);
    free(k->lat);
}

static unsigned bit_at(const unsigned char *p, uint64_t bit)
{
    return (unsigned)p[bit / 8u] >> (unsigned)(bit % 8u) & 1u;
}

static int track_has(const struct track *k, uint64_t id)
{
    uint64_t bit = id - k->base - 1;

    return id > k->base && bit / 8u < k->seen_bytes &&
           bit_at(k->seen, bit);
}

/*
 * Record one update that arrived at `now` (wall clock ms). may_repeat:
 * the id may legitimately come twice (a WebSocket's re-sync overlap), so
 * a repeat is not a duplicate.
 */
static void track_add(struct track *k, uint64_t id, uint64_t t, double now,
                      int may_repeat)
{
    uint64_t bit;
    size_t byte;

    if (id <= k->base) {
        k->stale++;             /* older than what we asked for */
        return;
    }
    bit = id - k->base - 1;
    if (bit > ((uint64_t)1 << 32)) {
        k->oom = 1;
        return;
    }
    byte = (size_t)(bit / 8u);
    if (byte >= k->seen_bytes) {
        size_t n = k->seen_bytes ? k->seen_bytes : 256;
        unsigned char *p;

        while (n <= byte)
            n *= 2;
        p = realloc(k->seen, n);
        if (p == NULL) {
            k->oom = 1;
            return;
        }
        memset(p + k->seen_bytes, 0, n - k->seen_bytes);
        k->seen = p;
        k->seen_bytes = n;
    }
    if (bit_at(k->seen, bit)) {
        if (may_repeat)
            k->overlap++;
        else
            k->duplicated++;
        return;
    }
    k->seen[byte] = (unsigned char)(k->seen[byte] | 1u << (bit % 8u));
    k->received++;
    if (k->first == 0 || id < k->first)
        k->first = id;
    if (id < k->max)
        k->out_of_order++;
    else
        k->max = id;
    if (k->nlat == k->lat_cap) {
        size_t cap = k->lat_cap ? 2 * k->lat_cap : 256;
        double *p = realloc(k->lat, cap * sizeof *p);
        if (p == NULL) {
            k->oom = 1;
            return;
        }
        k->lat = p;
        k->lat_cap = cap;
    }
    k->lat[k->nlat++] = now - (double)t;
}

/* Ids that never came, from the first expected one (base + 1, or the
 * first seen) to the newest seen. Later ids may still be on the way. */
static uint64_t track_missed(const struct track *k, int from_base)
{
    uint64_t id, start, n = 0;

    if (k->max == 0)
        return 0;
    start = from_base ? k->base + 1 : k->first;
    for (id = start; id <= k->max; id++)
        if (!track_has(k, id))
            n++;
    return n;
}

/* A /poll or /longpoll answer: {"now":T,"last":L,"updates":[...],
 * "missed":M}. *hi: the newest id in it (unchanged if none). */
static int parse_poll_body(const char *p, size_t n, struct track *k,
                           double now, uint64_t *hi, uint64_t *count)
{
    const char *end = p + n, *q = find_text(p, end, "\"updates\":[");
    uint64_t id, t, missed;

    *count = 0;
    if (q == NULL)
        return -1;
    q += strlen("\"updates\":[");
    for (;;) {
        const char *close_brace;

        while (q < end && (*q == ' ' || *q == ',' || *q == '\n'))
            q++;
        if (q >= end)
            return -1;
        if (*q == ']')
            break;
        if (*q != '{')
            return -1;
        close_brace = memchr(q, '}', (size_t)(end - q));
        if (close_brace == NULL || parse_update(q, close_brace, &id, &t) != 0)
            return -1;
        track_add(k, id, t, now, 0);
        if (id > *hi)
            *hi = id;
        (*count)++;
        q = close_brace + 1;
    }
    if (json_u64(q, end, "\"missed\":", &missed) == 0)
        k->server_missed += missed;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* HTTP response heads                                                      */
/* ------------------------------------------------------------------------ */

struct head {
    unsigned status;
    size_t head_len;            /* bytes up to and including CRLF CRLF */
    size_t body_len;            /* Content-Length, if has_len */
    int has_len, conn_close;
};

/* 1: a whole head was parsed; 0: need more bytes; -1: malformed. */
static int parse_head(const char *p, size_t n, struct head *h)
{
    const char *end, *line, *eol;
    size_t i;

    memset(h, 0, sizeof *h);
    for (i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' &&
            p[i + 3] == '\n')
            break;
    if (i + 3 >= n)
        return n > HEAD_MAX ? -1 : 0;
    h->head_len = i + 4;
    end = p + i + 2;            /* after the last header line's CRLF */
    if (i < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9')
        return -1;
    h->status = (unsigned)((p[9] - '0') * 100 + (p[10] - '0') * 10 +
                           (p[11] - '0'));
    if (p[7] == '0')
        h->conn_close = 1;      /* HTTP/1.0: no keep-alive assumed */
    line = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
    for (; line < end; line = eol + 1) {
        const char *v;

        eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            return -1;
        v = memchr(line, ':', (size_t)(eol - line));
        if (v == NULL)
            return -1;
        v++;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        if (v - line >= 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
            uint64_t len;
            if (parse_digits(v, eol, &len) != 0 || len > (64u << 20))
                return -1;
            h->body_len = (size_t)len;
            h->has_len = 1;
        } else if (v - line >= 11 &&
                   strncasecmp(line, "Connection:", 11) == 0) {
            h->conn_close = find_text(v, eol, "close") != NULL ||
                            find_text(v, eol, "Close") != NULL;
        }
    }
    return 1;
}

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ------------------------------------------------------------------------ */
/* The benchmark's state                                                    */
/* ------------------------------------------------------------------------ */

struct bench_opts {
    double seconds, rate;
    long clients, interval_ms;
    int json, reconnect;
    const char *host, *port;    /* host NULL: start a server in-process */
};

struct hclient;
struct wclient;

struct bench {
    struct bench_opts o;
    char host[256], port[16];   /* where the clients go */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host_header[300];
    char ws_url[320];
    uint64_t base;              /* the newest id before the clients start */
    double t0;                  /* mono ms when the clients start */
    uint64_t rng;

    /* In-process server. */
    struct ws_loop *srv_loop;
    struct pvw_server *srv;
    pthread_t srv_thread;
    int srv_running;

    /* HTTP clients: poll, then longpoll, then SSE, `clients` each. */
    struct hclient *http;
    size_t nhttp;
    int wake[2];                /* main -> HTTP thread: stop */
    pthread_t http_thread;
    int http_running;

    /* WebSocket clients. */
    struct wclient *ws;
    struct ws_loop *ws_loop;
    int ws_stopping;            /* WebSocket thread only */
    pthread_t ws_thread;
    int ws_running;
};

/* ------------------------------------------------------------------------ */
/* A blocking GET (for /stats and the WebSocket re-sync)                    */
/* ------------------------------------------------------------------------ */

/* Wait for events on fd until deadline (mono ms). 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, double deadline)
{
    struct pollfd pfd;
    int rv;

    for (;;) {
        double left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rv = poll(&pfd, 1, (int)left + 1);
        if (rv > 0)
            return 1;
        if (rv < 0 && errno != EINTR)
            return 0;
    }
}

/*
 * GET path with Connection: close; on status 200 *body gets the body
 * (malloc'ed, NUL-terminated; free it). Returns 0, or -1 (no connection,
 * timeout, malformed answer, or a status other than 200).
 */
static int http_fetch(const struct bench *b, const char *path, char **body,
                      size_t *body_len)
{
    double deadline = mono_ms() + FETCH_TIMEOUT_MS;
    char req[512];
    char *buf = NULL;
    size_t n = 0, cap = 0, off = 0;
    int fd, k, err = 0, rv;
    socklen_t elen = sizeof err;
    struct head h;

    *body = NULL;
    *body_len = 0;
    k = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                 path, b->host_header);
    if (k < 0 || (size_t)k >= sizeof req)
        return -1;
    fd = socket(b->addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (set_nonblocking(fd) != 0 ||
        (connect(fd, (const struct sockaddr *)&b->addr, b->addrlen) != 0 &&
         errno != EINPROGRESS) ||
        !wait_fd(fd, POLLOUT, deadline) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)
        goto fail;
    while (off < (size_t)k) {
        ssize_t w = send(fd, req + off, (size_t)k - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            goto fail;
        else if (!wait_fd(fd, POLLOUT, deadline))
            goto fail;
    }
    for (;;) {
        ssize_t r;

        if (cap - n < 4096) {
            char *p = realloc(buf, cap ? 2 * cap : 8192);
            if (p == NULL)
                goto fail;
            buf = p;
            cap = cap ? 2 * cap : 8192;
        }
        r = recv(fd, buf + n, cap - n - 1, 0);
        if (r > 0) {
            n += (size_t)r;
            rv = parse_head(buf, n, &h);
            if (rv < 0)
                goto fail;
            if (rv == 1 && h.has_len && n >= h.head_len + h.body_len)
                break;
        } else if (r == 0) {
            break;
        } else if (errno != EAGAIN && errno != EINTR) {
            goto fail;
        } else if (!wait_fd(fd, POLLIN, deadline)) {
            goto fail;
        }
    }
    close(fd);
    fd = -1;
    if (parse_head(buf, n, &h) != 1 || h.status != 200)
        goto fail;
    if (!h.has_len || h.head_len + h.body_len > n)
        h.body_len = n - h.head_len;
    memmove(buf, buf + h.head_len, h.body_len);
    buf[h.body_len] = '\0';
    *body = buf;
    *body_len = h.body_len;
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    return -1;
}

struct stats {
    double rate;
    uint64_t last;
    struct pvw_counters c[PVW_NTRANS];
};

/* GET /stats: {"rate":R,"last":L,...,"transports":{"poll":{...},...}} */
static int fetch_stats(const struct bench *b, struct stats *st)
{
    char *body, *end;
    const char *p, *q, *obj_end;
    size_t n;
    unsigned t;

    memset(st, 0, sizeof *st);
    if (http_fetch(b, "/stats", &body, &n) != 0)
        return -1;
    end = body + n;
    p = find_text(body, end, "\"rate\":");
    if (p)
        st->rate = strtod(p + 7, NULL);
    q = find_text(body, end, "\"transports\":");
    if (json_u64(body, end, "\"last\":", &st->last) != 0 || q == NULL) {
        free(body);
        return -1;
    }
    for (t = 0; t < PVW_NTRANS; t++) {
        char key[32];
        uint64_t *fields[5];
        static const char *const names[5] = {
            "\"requests\":", "\"bytes_in\":", "\"bytes_out\":",
            "\"updates\":", "\"clients\":"};
        int i;

        snprintf(key, sizeof key, "\"%s\":{", tnames[t]);
        p = find_text(q, end, key);
        obj_end = p ? memchr(p, '}', (size_t)(end - p)) : NULL;
        if (obj_end == NULL) {
            free(body);
            return -1;
        }
        fields[0] = &st->c[t].requests;
        fields[1] = &st->c[t].bytes_in;
        fields[2] = &st->c[t].bytes_out;
        fields[3] = &st->c[t].updates;
        fields[4] = &st->c[t].clients;
        for (i = 0; i < 5; i++)
            if (json_u64(p, obj_end, names[i], fields[i]) != 0) {
                free(body);
                return -1;
            }
    }
    free(body);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* HTTP clients: short polling, long polling, SSE                           */
/* ------------------------------------------------------------------------ */

enum hstate {
    H_IDLE,         /* no request out (a keep-alive socket may be open) */
    H_CONNECTING,   /* TCP connect in progress */
    H_SENDING,      /* writing the request */
    H_HEAD,         /* reading the response head */
    H_BODY,         /* reading a Content-Length (or until-close) body */
    H_STREAM        /* reading the event stream (SSE) */
};

struct hclient {
    struct bench *b;
    unsigned transport;
    int fd;
    enum hstate st;
    int answered;               /* this socket answered a request before */
    uint64_t last;              /* newest id: since=, Last-Event-ID */
    double next_at;             /* H_IDLE: next request (mono ms) */
    double drop_at[2];          /* --reconnect: when to drop (mono ms) */
    int ndrops, drops_done;
    char req[512];
    size_t req_len, req_off;
    char *in;
    size_t in_len, in_cap;
    struct head h;
    unsigned retry_ms;          /* SSE "retry:" */
    /* SSE: the event being read. */
    uint64_t ev_id;
    int ev_has_id;
    char ev_data[EVENT_DATA_MAX];
    size_t ev_data_len;
    int ev_has_data;
    uint64_t requests, reconnects, errors;
    struct track track;
};

static void hc_close(struct hclient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = H_IDLE;
    c->in_len = 0;
    c->answered = 0;
}

/* The request failed: count it, close, and try again in a while. */
static void hc_fail(struct hclient *c, double now)
{
    c->errors++;
    hc_close(c);
    c->next_at = now + (c->transport == PVW_SSE ? (double)c->retry_ms
                                                : RETRY_MS);
}

static void hc_send(struct hclient *c, double now)
{
    while (c->req_off < c->req_len) {
        ssize_t w = send(c->fd, c->req + c->req_off, c->req_len - c->req_off,
                         MSG_NOSIGNAL);
        if (w > 0) {
            c->req_off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            c->st = H_SENDING;
            return;
        } else {
            hc_fail(c, now);
            return;
        }
    }
    c->st = H_HEAD;
    c->in_len = 0;
    c->requests++;
}

static void hc_connect(struct hclient *c, double now)
{
    static const int one = 1;
    const struct bench *b = c->b;

    c->fd = socket(b->addr.ss_family, SOCK_STREAM, 0);
    if (c->fd < 0 || set_nonblocking(c->fd) != 0) {
        hc_fail(c, now);
        return;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->answered = 0;
    if (connect(c->fd, (const struct sockaddr *)&b->addr, b->addrlen) == 0)
        hc_send(c, now);
    else if (errno == EINPROGRESS)
        c->st = H_CONNECTING;
    else
        hc_fail(c, now);
}

/* Send the transport's next request (on the open socket if there is
 * one: keep-alive). */
static void hc_request(struct hclient *c, double now)
{
    const struct bench *b = c->b;
    unsigned long long last = (unsigned long long)c->last;
    int k;

    if (c->transport == PVW_POLL) {
        /* A fixed cadence from the client's (staggered) start. */
        while (c->next_at <= now)
            c->next_at += (double)b->o.interval_ms;
        k = snprintf(c->req, sizeof c->req,
                     "GET /poll?since=%llu HTTP/1.1\r\nHost: %s\r\n\r\n",
                     last, b->host_header);
    } else if (c->transport == PVW_LONGPOLL) {
        k = snprintf(c->req, sizeof c->req,
                     "GET /longpoll?since=%llu HTTP/1.1\r\nHost: %s\r\n\r\n",
                     last, b->host_header);
    } else {
        /* A reconnecting EventSource sends the last id it saw; the first
         * connection sends the run's starting point, so that no update
         * of the run is left out. */
        hc_close(c);
        c->ev_has_data = 0;
        c->ev_has_id = 0;
        c->ev_data_len = 0;
        k = snprintf(c->req, sizeof c->req,
                     "GET /events HTTP/1.1\r\nHost: %s\r\n"
                     "Accept: text/event-stream\r\nLast-Event-ID: %llu\r\n"
                     "\r\n",
                     b->host_header, last);
    }
    if (k < 0 || (size_t)k >= sizeof c->req) {
        hc_fail(c, now);
        return;
    }
    c->req_len = (size_t)k;
    c->req_off = 0;
    if (c->fd < 0)
        hc_connect(c, now);
    else
        hc_send(c, now);
}

/* One SSE line (without its line end); now: wall clock ms. */
static void sse_line(struct hclient *c, const char *line, size_t len,
                     double now)
{
    const char *colon, *v, *end = line + len;
    size_t name_len;
    uint64_t id, t;

    if (len == 0) {
        /* A blank line dispatches the event. */
        if (c->ev_has_data) {
            if (parse_update(c->ev_data, c->ev_data + c->ev_data_len, &id,
                             &t) == 0) {
                track_add(&c->track, id, t, now, 0);
                if (!c->ev_has_id && id > c->last)
                    c->last = id;
            } else {
                c->errors++;
            }
        }
        if (c->ev_has_id)
            c->last = c->ev_id;     /* the EventSource's last event ID */
        c->ev_has_data = 0;
        c->ev_has_id = 0;
        c->ev_data_len = 0;
        return;
    }
    if (line[0] == ':')
        return;                     /* a comment: the keep-alive */
    colon = memchr(line, ':', len);
    name_len = colon ? (size_t)(colon - line) : len;
    v = colon ? colon + 1 : end;
    if (v < end && *v == ' ')
        v++;
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        size_t n = (size_t)(end - v);
        if (c->ev_has_data && c->ev_data_len < sizeof c->ev_data)
            c->ev_data[c->ev_data_len++] = '\n';
        if (n > sizeof c->ev_data - c->ev_data_len)
            n = sizeof c->ev_data - c->ev_data_len;
        memcpy(c->ev_data + c->ev_data_len, v, n);
        c->ev_data_len += n;
        c->ev_has_data = 1;
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        if (parse_digits(v, end, &id) == 0) {
            c->ev_id = id;
            c->ev_has_id = 1;
        }
    } else if (name_len == 5 && memcmp(line, "retry", 5) == 0) {
        if (parse_digits(v, end, &t) == 0 && t <= 60000)
            c->retry_ms = (unsigned)t;
    }
}

/* Every whole line in the buffer; what is left is a partial line.
 * now: monotonic ms (for the retry). */
static void sse_feed(struct hclient *c, double now)
{
    double wall = wall_ms();
    size_t off = 0;

    for (;;) {
        char *nl = memchr(c->in + off, '\n', c->in_len - off);
        size_t len;

        if (nl == NULL)
            break;
        len = (size_t)(nl - (c->in + off));
        if (len > 0 && c->in[off + len - 1] == '\r')
            len--;
        sse_line(c, c->in + off, len, wall);
        off = (size_t)(nl - c->in) + 1;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->in_len > HEAD_MAX)
        hc_fail(c, now);            /* a line that never ends */
}

/* A whole answer to /poll or /longpoll is in. */
static void hc_answer(struct hclient *c, const char *body, size_t n,
                      double now)
{
    uint64_t hi = c->last, count;

    if (c->h.status != 200 ||
        parse_poll_body(body, n, &c->track, wall_ms(), &hi, &count) != 0) {
        hc_fail(c, now);
        return;
    }
    c->last = hi;
    c->answered = 1;
    if (c->h.conn_close)
        hc_close(c);
    c->st = H_IDLE;
    c->in_len = 0;
    if (c->transport == PVW_LONGPOLL)
        c->next_at = now;           /* ask again at once */
}

static void hc_process(struct hclient *c, double now)
{
    int rv;

    if (c->st == H_HEAD) {
        rv = parse_head(c->in, c->in_len, &c->h);
        if (rv < 0) {
            hc_fail(c, now);
            return;
        }
        if (rv == 0)
            return;
        if (c->transport == PVW_SSE) {
            if (c->h.status != 200) {
                hc_fail(c, now);
                return;
            }
            memmove(c->in, c->in + c->h.head_len, c->in_len - c->h.head_len);
            c->in_len -= c->h.head_len;
            c->st = H_STREAM;
        } else {
            c->st = H_BODY;
        }
    }
    if (c->st == H_STREAM) {
        sse_feed(c, now);
    } else if (c->st == H_BODY && c->h.has_len &&
               c->in_len >= c->h.head_len + c->h.body_len) {
        if (c->in_len > c->h.head_len + c->h.body_len) {
            hc_fail(c, now);        /* we never pipeline: bytes too many */
            return;
        }
        hc_answer(c, c->in + c->h.head_len, c->h.body_len, now);
    }
}

static void hc_read(struct hclient *c, double now)
{
    for (;;) {
        ssize_t r;

        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? 2 * c->in_cap : 16384;
            char *p = realloc(c->in, cap);
            if (p == NULL) {
                hc_fail(c, now);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            if (c->st == H_IDLE) {
                hc_fail(c, now);    /* bytes nobody asked for */
                return;
            }
            hc_process(c, now);
            if (c->fd < 0 || c->st == H_IDLE)
                return;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        /* The server closed (or reset) the connection. */
        if (c->st == H_IDLE) {
            hc_close(c);            /* an idle keep-alive socket: fine */
        } else if (c->st == H_HEAD && c->in_len == 0 && c->answered) {
            /* It closed the kept-alive socket as we reused it: ask again
             * on a new one (what browsers do). */
            hc_close(c);
            hc_request(c, now);
        } else if (c->st == H_BODY && !c->h.has_len && r == 0) {
            hc_answer(c, c->in + c->h.head_len, c->in_len - c->h.head_len,
                      now);
            hc_close(c);
        } else {
            hc_fail(c, now);        /* includes an SSE stream that ended */
        }
        return;
    }
}

static void hc_ready(struct hclient *c, short revents, double now)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (c->st == H_CONNECTING) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
            hc_fail(c, now);
            return;
        }
        hc_send(c, now);
    } else if (c->st == H_SENDING) {
        hc_send(c, now);
    } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
        hc_read(c, now);
    }
}

/* --reconnect: drop the connection now, then resume as the transport
 * does. */
static void hc_drop(struct hclient *c, double now)
{
    c->reconnects++;
    hc_close(c);
    if (c->transport == PVW_LONGPOLL)
        c->next_at = now;
    else if (c->transport == PVW_SSE)
        c->next_at = now + (double)c->retry_ms;
    /* Short polling: the next poll, on its schedule, opens a new socket. */
}

static void *http_main(void *arg)
{
    struct bench *b = arg;
    struct pollfd *pfd = malloc((b->nhttp + 1) * sizeof *pfd);
    struct hclient **who = malloc((b->nhttp + 1) * sizeof *who);
    size_t i;

    if (pfd == NULL || who == NULL) {
        for (i = 0; i < b->nhttp; i++)
            b->http[i].errors++;
        free(pfd);
        free(who);
        return NULL;
    }
    for (;;) {
        double now = mono_ms(), wait = 1000.0;
        size_t k = 0;
        int rv;

        for (i = 0; i < b->nhttp; i++) {
            struct hclient *c = &b->http[i];

            if (c->drops_done < c->ndrops &&
                now >= c->drop_at[c->drops_done]) {
                c->drops_done++;
                hc_drop(c, now);
            }
            if (c->drops_done < c->ndrops &&
                c->drop_at[c->drops_done] - now < wait)
                wait = c->drop_at[c->drops_done] - now;
            if (c->st == H_IDLE && now >= c->next_at &&
                (c->transport != PVW_SSE || c->fd < 0))
                hc_request(c, now);
            if (c->st == H_IDLE && (c->transport != PVW_SSE || c->fd < 0) &&
                c->next_at - now < wait)
                wait = c->next_at - now;
            if (c->fd >= 0) {
                pfd[k].fd = c->fd;
                pfd[k].events = (c->st == H_CONNECTING || c->st == H_SENDING)
                                    ? POLLOUT
                                    : POLLIN;
                pfd[k].revents = 0;
                who[k++] = c;
            }
        }
        pfd[k].fd = b->wake[0];
        pfd[k].events = POLLIN;
        pfd[k].revents = 0;
        if (wait < 0)
            wait = 0;
        rv = poll(pfd, k + 1, (int)wait + (wait > (double)(int)wait));
        if (rv < 0 && errno != EINTR)
            break;
        if (pfd[k].revents)
            break;                  /* main says stop */
        now = mono_ms();
        for (i = 0; rv > 0 && i < k; i++)
            if (pfd[i].revents && who[i]->fd == pfd[i].fd)
                hc_ready(who[i], pfd[i].revents, now);
    }
    for (i = 0; i < b->nhttp; i++)
        hc_close(&b->http[i]);
    free(pfd);
    free(who);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* WebSocket clients                                                        */
/* ------------------------------------------------------------------------ */

struct wclient {
    struct bench *b;
    struct ws_io_conn *conn;        /* NULL: not connected */
    struct ws_timer *drop_timer, *retry_timer;
    int drop_pending, retry_pending;
    double drop_in[2];              /* --reconnect: ms after the start */
    int ndrops, drops_done;
    int opened_before, dropping;
    uint64_t last;                  /* newest id received */
    uint64_t overlap_hi;            /* after a re-sync: may come twice */
    uint64_t handshakes, reconnects, errors, resynced;
    struct track track;
};

static void wc_connect(struct wclient *w);

/* GET /poll?since=last: the updates the socket missed while it was
 * away. Blocking, but on localhost it is a fraction of a millisecond. */
static void wc_resync(struct wclient *w)
{
    char path[64], *body;
    size_t n;
    uint64_t hi = w->last, count;

    snprintf(path, sizeof path, "/poll?since=%llu",
             (unsigned long long)w->last);
    if (http_fetch(w->b, path, &body, &n) != 0) {
        w->errors++;
        return;
    }
    if (parse_poll_body(body, n, &w->track, wall_ms(), &hi, &count) != 0)
        w->errors++;
    w->resynced += count;
    w->overlap_hi = hi;
    w->last = hi;
    free(body);
}

static int wc_on_open(struct ws_io_conn *c, void *user)
{
    struct wclient *w = user;

    (void)c;
    w->handshakes++;
    /* The server already sends us every new update; what came between
     * the drop and now is only in its history. */
    if (w->opened_before)
        wc_resync(w);
    w->opened_before = 1;
    return 0;
}

static int wc_on_message(struct ws_io_conn *c, unsigned opcode,
                         const uint8_t *p, size_t n, void *user)
{
    struct wclient *w = user;
    const char *s = (const char *)p, *end = s + n;
    uint64_t id, t;
    double now = wall_ms();

    (void)c;
    /* pvw.h: an update is the bare update object; every other message
     * has a "type" ({"type":"rate",...}). An older server's
     * {"type":"update",...} is taken too. */
    if (opcode != WS_OPCODE_TEXT ||
        (find_text(s, end, "\"type\":") != NULL &&
         find_text(s, end, "\"type\":\"update\"") == NULL))
        return 0;
    if (parse_update(s, end, &id, &t) != 0) {
        w->errors++;
        return 0;
    }
    track_add(&w->track, id, t, now, id <= w->overlap_hi);
    if (id > w->last)
        w->last = id;
    return 0;
}

static void wc_retry(struct ws_loop *loop, void *arg)
{
    struct wclient *w = arg;

    (void)loop;
    w->retry_pending = 0;
    if (!w->b->ws_stopping)
        wc_connect(w);
}

static void wc_on_close(struct ws_io_conn *c, unsigned code,
                        const char *reason, size_t n, void *user)
{
    struct wclient *w = user;

    (void)c;
    (void)code;
    (void)reason;
    (void)n;
    w->conn = NULL;
    if (w->b->ws_stopping)
        return;
    if (!w->dropping)
        w->errors++;
    /* After a drop, wait as long as the SSE client does (the server's
     * "retry"), so that both have a gap to make up. */
    if (ws_timer_start(w->b->ws_loop,
                       w->dropping ? SSE_RETRY_DEFAULT_MS : (uint32_t)RETRY_MS,
                       0, wc_retry, w, &w->retry_timer) == WS_OK)
        w->retry_pending = 1;
    w->dropping = 0;
}

static const struct ws_io_handlers wc_handlers = {
    .on_open = wc_on_open,
    .on_message = wc_on_message,
    .on_close = wc_on_close,
};

static void wc_connect(struct wclient *w)
{
    struct ws_io_options opts;

    memset(&opts, 0, sizeof opts);
    opts.handlers = &wc_handlers;
    opts.user = w;
    if (ws_client_connect(w->b->ws_loop, w->b->ws_url, &opts, &w->conn) !=
        WS_OK) {
        w->conn = NULL;
        w->errors++;
        if (ws_timer_start(w->b->ws_loop, (uint32_t)RETRY_MS, 0, wc_retry, w,
                           &w->retry_timer) == WS_OK)
            w->retry_pending = 1;
    }
}

static void wc_drop(struct ws_loop *loop, void *arg);

static void wc_schedule_drop(struct wclient *w)
{
    double in;

    if (w->drops_done >= w->ndrops)
        return;
    in = w->drop_in[w->drops_done] - (mono_ms() - w->b->t0);
    if (ws_timer_start(w->b->ws_loop, in > 0 ? (uint32_t)in : 0u, 0, wc_drop,
                       w, &w->drop_timer) == WS_OK)
        w->drop_pending = 1;
}

/* --reconnect: close the socket now; on_close connects again and the
 * new socket's on_open re-syncs. */
static void wc_drop(struct ws_loop *loop, void *arg)
{
    struct wclient *w = arg;

    (void)loop;
    w->drop_pending = 0;
    w->drops_done++;
    if (w->conn != NULL && !w->dropping &&
        ws_io_close(w->conn, WS_CLOSE_NORMAL, "bench reconnect", 15) ==
            WS_OK) {
        w->dropping = 1;
        w->reconnects++;
    }
    wc_schedule_drop(w);
}

/* Posted by the main thread: close every socket, cancel the timers, and
 * let ws_loop_run return once the close handshakes are done. */
static void ws_stop(struct ws_loop *loop, void *arg)
{
    struct bench *b = arg;
    long i;

    b->ws_stopping = 1;
    for (i = 0; i < b->o.clients; i++) {
        struct wclient *w = &b->ws[i];
        if (w->drop_pending)
            ws_timer_stop(w->drop_timer);
        if (w->retry_pending)
            ws_timer_stop(w->retry_timer);
        w->drop_pending = w->retry_pending = 0;
    }
    ws_loop_shutdown(loop, WS_CLOSE_NORMAL, 1000);
}

static void *ws_main(void *arg)
{
    struct bench *b = arg;
    long i;

    for (i = 0; i < b->o.clients; i++) {
        wc_connect(&b->ws[i]);
        wc_schedule_drop(&b->ws[i]);
    }
    ws_loop_run(b->ws_loop);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The in-process server                                                    */
/* ------------------------------------------------------------------------ */

static void *server_main(void *arg)
{
    struct bench *b = arg;

    ws_loop_run(b->srv_loop);
    return NULL;
}

/* The server's counters are the loop thread's: read them there. */
struct counters_call {
    struct pvw_server *srv;
    struct pvw_counters c[PVW_NTRANS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void counters_on_loop(struct ws_loop *loop, void *arg)
{
    struct counters_call *k = arg;

    (void)loop;
    pvw_server_counters(k->srv, k->c);
    pthread_mutex_lock(&k->mu);
    k->done = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static int server_counters(struct bench *b, struct pvw_counters out[])
{
    struct counters_call k;

    memset(&k, 0, sizeof k);
    k.srv = b->srv;
    pthread_mutex_init(&k.mu, NULL);
    pthread_cond_init(&k.cv, NULL);
    if (ws_loop_post(b->srv_loop, counters_on_loop, &k) != WS_OK) {
        pthread_mutex_destroy(&k.mu);
        pthread_cond_destroy(&k.cv);
        return -1;
    }
    pthread_mutex_lock(&k.mu);
    while (!k.done)
        pthread_cond_wait(&k.cv, &k.mu);
    pthread_mutex_unlock(&k.mu);
    pthread_mutex_destroy(&k.mu);
    pthread_cond_destroy(&k.cv);
    memcpy(out, k.c, sizeof k.c);
    return 0;
}

static void server_stop_on_loop(struct ws_loop *loop, void *arg)
{
    struct bench *b = arg;

    pvw_server_stop(b->srv);
    b->srv = NULL;
    ws_loop_shutdown(loop, WS_CLOSE_GOING_AWAY, 500);
}

/* The counters now: in-process from the server itself, else /stats. */
static int read_counters(struct bench *b, struct stats *st)
{
    if (fetch_stats(b, st) != 0)
        return -1;
    if (b->srv != NULL && server_counters(b, st->c) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: polling_vs_ws --bench [options]\n"
        "  --seconds N     how long to run (default 10)\n"
        "  --rate R        updates per second, 0.1 to 1000 (default 10;\n"
        "                  with --host the server's own rate is used)\n"
        "  --clients C     clients per transport (default 10)\n"
        "  --interval MS   short-polling interval (default 1000)\n"
        "  --reconnect     every client drops its connection once or twice\n"
        "                  and must resume without loss (WebSocket: re-sync\n"
        "                  with GET /poll?since=last)\n"
        "  --json          print JSON instead of the table\n"
        "  --host H --port P   benchmark a running server (default: start\n"
        "                  one in-process on 127.0.0.1, a free port)\n"
        "Prints, per transport: updates received (all clients), missed,\n"
        "duplicated, out of order, median and p95 latency (receive time -\n"
        "update t), server requests (WebSocket: handshakes), bytes per\n"
        "update down/up and requests per update from the server's\n"
        "counters. Exit 0: the run worked; 1: a transport got nothing, or\n"
        "long polling/SSE/WebSocket lost, repeated or reordered updates;\n"
        "2: bad usage.\n");
}

static int option_number(const char *name, const char *v, double lo,
                         double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);

    if (end == v || *end != '\0' || !(d >= lo) || d > hi) {
        fprintf(stderr, "polling_vs_ws: %s must be %g to %g\n", name, lo,
                hi);
        return -1;
    }
    *out = d;
    return 0;
}

/* 0: run; 1: --help was printed; -1: bad usage (printed). */
static int parse_options(int argc, char **argv, struct bench_opts *o)
{
    int i;
    double d;

    memset(o, 0, sizeof *o);
    o->seconds = 10;
    o->rate = 10;
    o->clients = 10;
    o->interval_ms = 1000;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--bench") == 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--reconnect") == 0) {
            o->reconnect = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "polling_vs_ws: unknown or incomplete option "
                            "'%s'\n", a);
            usage(stderr);
            return -1;
        }
        i++;
        if (strcmp(a, "--seconds") == 0) {
            if (option_number(a, v, 0.5, 86400, &o->seconds) != 0)
                return -1;
        } else if (strcmp(a, "--rate") == 0) {
            if (option_number(a, v, 0.1, 1000, &o->rate) != 0)
                return -1;
        } else if (strcmp(a, "--clients") == 0) {
            if (option_number(a, v, 1, (double)MAX_CLIENTS, &d) != 0)
                return -1;
            o->clients = (long)d;
        } else if (strcmp(a, "--interval") == 0) {
            if (option_number(a, v, 10, 600000, &d) != 0)
                return -1;
            o->interval_ms = (long)d;
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--port") == 0) {
            if (option_number(a, v, 1, 65535, &d) != 0)
                return -1;
            o->port = v;
        } else {
            fprintf(stderr, "polling_vs_ws: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    if ((o->host == NULL) != (o->port == NULL)) {
        fprintf(stderr, "polling_vs_ws: --host and --port go together\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

struct result {
    uint64_t clients, received, missed, duplicated, out_of_order, stale;
    uint64_t overlap, resynced, reconnects, errors, client_requests;
    uint64_t server_missed;
    int have_lat;
    double median, p95;
    struct pvw_counters d;      /* the server's counters over the run */
    int oom;
};

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Sums the clients' tracks into r; latency percentiles of all of them. */
static int add_tracks(struct result *r, struct track *const *tracks,
                      size_t n, int from_base)
{
    size_t i, total = 0, k = 0;
    double *all;

    for (i = 0; i < n; i++) {
        const struct track *t = tracks[i];
        r->received += t->received;
        r->missed += track_missed(t, from_base);
        r->duplicated += t->duplicated;
        r->out_of_order += t->out_of_order;
        r->stale += t->stale;
        r->overlap += t->overlap;
        r->server_missed += t->server_missed;
        r->oom |= t->oom;
        total += t->nlat;
    }
    if (total == 0)
        return 0;
    all = malloc(total * sizeof *all);
    if (all == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        memcpy(all + k, tracks[i]->lat, tracks[i]->nlat * sizeof *all);
        k += tracks[i]->nlat;
    }
    qsort(all, total, sizeof *all, compare_double);
    r->median = total % 2 ? all[total / 2]
                          : (all[total / 2 - 1] + all[total / 2]) / 2.0;
    /* p95: nearest rank. */
    k = (size_t)((double)total * 0.95 + 0.999999);
    r->p95 = all[(k ? k : 1) - 1];
    r->have_lat = 1;
    free(all);
    return 0;
}

static void collect(struct bench *b, struct result res[PVW_NTRANS],
                    const struct stats *before, const struct stats *after)
{
    struct track **tracks = malloc((size_t)b->o.clients * sizeof *tracks);
    unsigned t;
    long i;

    memset(res, 0, PVW_NTRANS * sizeof *res);
    for (t = 0; t < PVW_NTRANS; t++) {
        struct result *r = &res[t];
        const struct pvw_counters *x = &before->c[t], *y = &after->c[t];

        r->clients = (uint64_t)b->o.clients;
        r->d.requests = y->requests - x->requests;
        r->d.bytes_in = y->bytes_in - x->bytes_in;
        r->d.bytes_out = y->bytes_out - x->bytes_out;
        r->d.updates = y->updates - x->updates;
        for (i = 0; i < b->o.clients; i++) {
            if (t == PVW_WS) {
                struct wclient *w = &b->ws[i];
                r->reconnects += w->reconnects;
                r->errors += w->errors;
                r->client_requests += w->handshakes;
                r->resynced += w->resynced;
                if (tracks)
                    tracks[i] = &w->track;
            } else {
                struct hclient *c = &b->http[(size_t)t * (size_t)b->o.clients +
                                             (size_t)i];
                r->reconnects += c->reconnects;
                r->errors += c->errors;
                r->client_requests += c->requests;
                if (tracks)
                    tracks[i] = &c->track;
            }
        }
        if (tracks == NULL ||
            add_tracks(r, tracks, (size_t)b->o.clients, t != PVW_WS) != 0)
            r->oom = 1;
    }
    free(tracks);
}

/* Why the run failed, one reason per call (NULL: it did not). */
static int check_result(unsigned t, const struct result *r, char *why,
                        size_t cap)
{
    int strict = t != PVW_POLL;

    if (r->oom)
        snprintf(why, cap, "%s: out of memory while recording", tnames[t]);
    else if (r->received == 0)
        snprintf(why, cap, "%s: no updates received", tnames[t]);
    else if (strict && r->duplicated + r->stale > 0)
        snprintf(why, cap, "%s: %llu duplicated updates", tnames[t],
                 (unsigned long long)(r->duplicated + r->stale));
    else if (strict && r->out_of_order > 0)
        snprintf(why, cap, "%s: %llu updates out of order", tnames[t],
                 (unsigned long long)r->out_of_order);
    else if (strict && r->missed > 0)
        snprintf(why, cap, "%s: %llu updates missed", tnames[t],
                 (unsigned long long)r->missed);
    else
        return 0;
    return 1;
}

static double per_update(uint64_t x, uint64_t updates)
{
    return updates ? (double)x / (double)updates : 0.0;
}

static void print_command(const struct bench *b, FILE *f)
{
    fprintf(f, "polling_vs_ws --bench --seconds %g", b->o.seconds);
    if (b->o.host == NULL)          /* else the server's rate is used */
        fprintf(f, " --rate %g", b->o.rate);
    fprintf(f, " --clients %ld --interval %ld%s", b->o.clients,
            b->o.interval_ms, b->o.reconnect ? " --reconnect" : "");
    if (b->o.host)
        fprintf(f, " --host %s --port %s", b->o.host, b->o.port);
}

static void print_table(const struct bench *b, const struct result res[],
                        const struct stats *before, const struct stats *after,
                        double elapsed)
{
    unsigned t;

    print_command(b, stdout);
    printf("\nserver: %s %s:%s, rate %g/s, %llu updates made in %.1f s\n",
           b->o.host ? "running" : "in-process", b->host, b->port,
           after->rate, (unsigned long long)(after->last - before->last),
           elapsed / 1000.0);
    printf("%-9s %7s %9s %7s %5s %5s %10s %9s %9s %8s %8s %8s %7s\n",
           "transport", "clients", "received", "missed", "dup", "ooo",
           "median ms", "p95 ms", "requests", "B/upd dn", "B/upd up",
           "req/upd", "reconn");
    for (t = 0; t < PVW_NTRANS; t++) {
        const struct result *r = &res[t];
        char med[32] = "-", p95[32] = "-", dn[32] = "-", up[32] = "-",
             rq[32] = "-";

        if (r->have_lat) {
            snprintf(med, sizeof med, "%.1f", r->median);
            snprintf(p95, sizeof p95, "%.1f", r->p95);
        }
        if (r->d.updates) {
            snprintf(dn, sizeof dn, "%.1f",
                     per_update(r->d.bytes_out, r->d.updates));
            snprintf(up, sizeof up, "%.1f",
                     per_update(r->d.bytes_in, r->d.updates));
            snprintf(rq, sizeof rq, "%.3f",
                     per_update(r->d.requests, r->d.updates));
        }
        printf("%-9s %7llu %9llu %7llu %5llu %5llu %10s %9s %9llu %8s %8s "
               "%8s %7llu\n",
               tnames[t], (unsigned long long)r->clients,
               (unsigned long long)r->received,
               (unsigned long long)r->missed,
               (unsigned long long)(r->duplicated + r->stale),
               (unsigned long long)r->out_of_order, med, p95,
               (unsigned long long)r->d.requests, dn, up, rq,
               (unsigned long long)r->reconnects);
    }
    printf("latency: receive time - update t. requests, bytes: the "
           "server's counters over the run\n(WebSocket requests are "
           "handshakes), per update the server sent on that transport.\n");
    if (b->o.reconnect)
        printf("--reconnect: WebSocket clients re-synced %llu updates with "
               "GET /poll?since=last\n(counted as received; those requests "
               "are in the poll row).\n",
               (unsigned long long)res[PVW_WS].resynced);
}

static void print_json(const struct bench *b, const struct result res[],
                       const struct stats *before, const struct stats *after,
                       double elapsed, char failures[][160], int nfail)
{
    unsigned t;
    int i;

    printf("{\"params\":{\"seconds\":%g,\"rate\":%g,\"clients\":%ld,"
           "\"interval_ms\":%ld,\"reconnect\":%s,\"server\":\"%s\","
           "\"host\":\"%s\",\"port\":%s},",
           b->o.seconds, after->rate, b->o.clients, b->o.interval_ms,
           b->o.reconnect ? "true" : "false",
           b->o.host ? "running" : "in-process", b->host, b->port);
    printf("\"elapsed_ms\":%.0f,\"updates_made\":%llu,\"transports\":{",
           elapsed, (unsigned long long)(after->last - before->last));
    for (t = 0; t < PVW_NTRANS; t++) {
        const struct result *r = &res[t];

        printf("%s\"%s\":{\"clients\":%llu,\"received\":%llu,"
               "\"missed\":%llu,\"duplicated\":%llu,\"out_of_order\":%llu,",
               t ? "," : "", tnames[t], (unsigned long long)r->clients,
               (unsigned long long)r->received,
               (unsigned long long)r->missed,
               (unsigned long long)(r->duplicated + r->stale),
               (unsigned long long)r->out_of_order);
        if (r->have_lat)
            printf("\"latency_median_ms\":%.1f,\"latency_p95_ms\":%.1f,",
                   r->median, r->p95);
        else
            printf("\"latency_median_ms\":null,\"latency_p95_ms\":null,");
        printf("\"requests\":%llu,\"bytes_down\":%llu,\"bytes_up\":%llu,"
               "\"server_updates\":%llu,",
               (unsigned long long)r->d.requests,
               (unsigned long long)r->d.bytes_out,
               (unsigned long long)r->d.bytes_in,
               (unsigned long long)r->d.updates);
        if (r->d.updates)
            printf("\"bytes_per_update_down\":%.1f,"
                   "\"bytes_per_update_up\":%.1f,"
                   "\"requests_per_update\":%.4f,",
                   per_update(r->d.bytes_out, r->d.updates),
                   per_update(r->d.bytes_in, r->d.updates),
                   per_update(r->d.requests, r->d.updates));
        else
            printf("\"bytes_per_update_down\":null,"
                   "\"bytes_per_update_up\":null,"
                   "\"requests_per_update\":null,");
        printf("\"client_requests\":%llu,\"reconnects\":%llu,"
               "\"resynced\":%llu,\"server_missed\":%llu,\"errors\":%llu}",
               (unsigned long long)r->client_requests,
               (unsigned long long)r->reconnects,
               (unsigned long long)r->resynced,
               (unsigned long long)r->server_missed,
               (unsigned long long)r->errors);
    }
    printf("},\"ok\":%s,\"failures\":[", nfail ? "false" : "true");
    for (i = 0; i < nfail; i++)
        printf("%s\"%s\"", i ? "," : "", failures[i]);   /* no quotes in */
    printf("]}\n");
}

/* ------------------------------------------------------------------------ */
/* Setup and teardown                                                       */
/* ------------------------------------------------------------------------ */

static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int resolve(struct bench *b)
{
    struct addrinfo hints, *res = NULL;
    int bracket = strchr(b->host, ':') != NULL;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(b->host, b->port, &hints, &res) != 0 || res == NULL ||
        res->ai_addrlen > sizeof b->addr) {
        if (res)
            freeaddrinfo(res);
        fprintf(stderr, "polling_vs_ws: cannot resolve %s\n", b->host);
        return -1;
    }
    memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
    b->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(b->host_header, sizeof b->host_header, "%s%s%s:%s",
             bracket ? "[" : "", b->host, bracket ? "]" : "", b->port);
    snprintf(b->ws_url, sizeof b->ws_url, "ws://%s/ws", b->host_header);
    return 0;
}

static int start_server(struct bench *b)
{
    int rv;

    if (ws_loop_new(&b->srv_loop, 0) != WS_OK) {
        fprintf(stderr, "polling_vs_ws: cannot create the event loop\n");
        return -1;
    }
    rv = pvw_server_start(b->srv_loop, "127.0.0.1", "0", b->o.rate, NULL,
                          &b->srv);
    if (rv != WS_OK) {
        fprintf(stderr, "polling_vs_ws: cannot start the server: %s\n",
                ws_strerror(rv));
        return -1;
    }
    snprintf(b->host, sizeof b->host, "127.0.0.1");
    snprintf(b->port, sizeof b->port, "%u", pvw_server_port(b->srv));
    if (pthread_create(&b->srv_thread, NULL, server_main, b) != 0) {
        fprintf(stderr, "polling_vs_ws: cannot start a thread\n");
        return -1;
    }
    b->srv_running = 1;
    return 0;
}

static void stop_server(struct bench *b)
{
    if (b->srv_running) {
        if (ws_loop_post(b->srv_loop, server_stop_on_loop, b) != WS_OK)
            ws_loop_stop(b->srv_loop);
        pthread_join(b->srv_thread, NULL);
        b->srv_running = 0;
    }
    if (b->srv != NULL) {           /* started, but its thread did not */
        pvw_server_stop(b->srv);
        b->srv = NULL;
    }
    if (b->srv_loop != NULL)
        ws_loop_free(b->srv_loop);
    b->srv_loop = NULL;
}

/* --reconnect: one or two moments in the middle of the run (ms after the
 * start), in order. */
static int pick_drops(struct bench *b, double at[2])
{
    double span = b->o.seconds * 1000.0;
    int n, i;

    if (!b->o.reconnect)
        return 0;
    n = 1 + (int)(next_random(&b->rng) % 2u);
    for (i = 0; i < n; i++)
        at[i] = span * (0.15 + 0.7 * random_unit(&b->rng));
    if (n == 2 && at[1] < at[0]) {
        double x = at[0];
        at[0] = at[1];
        at[1] = x;
    }
    return n;
}

static int make_clients(struct bench *b)
{
    size_t i, n = (size_t)b->o.clients;
    long k;

    b->nhttp = 3 * n;
    b->http = calloc(b->nhttp, sizeof *b->http);
    b->ws = calloc(n, sizeof *b->ws);
    if (b->http == NULL || b->ws == NULL)
        return -1;
    for (i = 0; i < b->nhttp; i++) {
        struct hclient *c = &b->http[i];
        int d;

        c->b = b;
        c->transport = (unsigned)(i / n);
        c->fd = -1;
        c->st = H_IDLE;
        c->last = b->base;
        c->retry_ms = SSE_RETRY_DEFAULT_MS;
        track_init(&c->track, b->base);
        c->next_at = b->t0;
        if (c->transport == PVW_POLL)       /* spread the polls out */
            c->next_at += (double)b->o.interval_ms * random_unit(&b->rng);
        c->ndrops = pick_drops(b, c->drop_at);
        for (d = 0; d < c->ndrops; d++)
            c->drop_at[d] += b->t0;
    }
    for (k = 0; k < b->o.clients; k++) {
        struct wclient *w = &b->ws[k];

        w->b = b;
        track_init(&w->track, b->base);
        w->ndrops = pick_drops(b, w->drop_in);
    }
    return 0;
}

static void free_clients(struct bench *b)
{
    size_t i;

    for (i = 0; b->http && i < b->nhttp; i++) {
        free(b->http[i].in);
        track_free(&b->http[i].track);
    }
    for (i = 0; b->ws && i < (size_t)b->o.clients; i++)
        track_free(&b->ws[i].track);
    free(b->http);
    free(b->ws);
    b->http = NULL;
    b->ws = NULL;
}

static int start_clients(struct bench *b)
{
    if (pipe(b->wake) != 0) {
        b->wake[0] = b->wake[1] = -1;
        return -1;
    }
    if (ws_loop_new(&b->ws_loop, 0) != WS_OK)
        return -1;
    b->t0 = mono_ms();
    if (make_clients(b) != 0)
        return -1;
    if (pthread_create(&b->http_thread, NULL, http_main, b) != 0)
        return -1;
    b->http_running = 1;
    if (pthread_create(&b->ws_thread, NULL, ws_main, b) != 0)
        return -1;
    b->ws_running = 1;
    return 0;
}

static void stop_clients(struct bench *b)
{
    if (b->http_running) {
        ssize_t w;
        do
            w = write(b->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(b->http_thread, NULL);
        b->http_running = 0;
    }
    if (b->ws_running) {
        if (ws_loop_post(b->ws_loop, ws_stop, b) != WS_OK)
            ws_loop_stop(b->ws_loop);
        pthread_join(b->ws_thread, NULL);
        b->ws_running = 0;
    }
    /* The thread is gone: its flag is ours now. ws_loop_free() runs the
     * on_close of what is left, which must not reconnect. */
    b->ws_stopping = 1;
    if (b->ws_loop)
        ws_loop_free(b->ws_loop);
    b->ws_loop = NULL;
    if (b->wake[0] >= 0) {
        close(b->wake[0]);
        close(b->wake[1]);
    }
    b->wake[0] = b->wake[1] = -1;
}

/* see pvw.h */
int pvw_bench_main(int argc, char **argv)
{
    struct bench *b;
    struct stats before, after;
    struct result res[PVW_NTRANS];
    char failures[PVW_NTRANS + 2][160];
    int nfail = 0, rv;
    double elapsed = 0;
    struct sigaction sa;
    unsigned t;

    b = calloc(1, sizeof *b);
    if (b == NULL)
        return 1;
    rv = parse_options(argc, argv, &b->o);
    if (rv != 0) {
        free(b);
        return rv > 0 ? 0 : 2;
    }
    b->wake[0] = b->wake[1] = -1;
    b->rng = (uint64_t)mono_ms() * 2654435761u ^ (uint64_t)getpid() << 32;
    if (b->rng == 0)
        b->rng = 1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    raise_fd_limit();

    rv = 1;
    if (b->o.host == NULL) {
        if (start_server(b) != 0)
            goto out;
    } else {
        snprintf(b->host, sizeof b->host, "%s", b->o.host);
        snprintf(b->port, sizeof b->port, "%s", b->o.port);
    }
    if (resolve(b) != 0)
        goto out;
    if (read_counters(b, &before) != 0) {
        fprintf(stderr, "polling_vs_ws: no answer from http://%s/stats\n",
                b->host_header);
        goto out;
    }
    b->base = before.last;
    if (start_clients(b) != 0) {
        fprintf(stderr, "polling_vs_ws: cannot start the clients\n");
        goto out;
    }
    sleep_ms(b->o.seconds * 1000.0);
    elapsed = mono_ms() - b->t0;
    if (read_counters(b, &after) != 0) {
        fprintf(stderr, "polling_vs_ws: no answer from http://%s/stats at "
                        "the end\n", b->host_header);
        goto out;
    }
    stop_clients(b);
    collect(b, res, &before, &after);
    for (t = 0; t < PVW_NTRANS; t++)
        if (check_result(t, &res[t], failures[nfail], sizeof failures[0]))
            nfail++;
    if (b->o.json)
        print_json(b, res, &before, &after, elapsed, failures, nfail);
    else
        print_table(b, res, &before, &after, elapsed);
    fflush(stdout);
    for (t = 0; t < (unsigned)nfail; t++)
        fprintf(stderr, "polling_vs_ws: FAILED: %s\n", failures[t]);
    rv = nfail ? 1 : 0;

out:
    stop_clients(b);
    stop_server(b);
    free_clients(b);
    free(b);
    return rv;
}
