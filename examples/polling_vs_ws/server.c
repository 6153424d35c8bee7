/*
 * server.c - the polling-vs-WebSocket demo server (the wire protocol is in
 * pvw.h): a ticking stock price published over short polling, long
 * polling, Server-Sent Events and WebSocket at once, on one port, with
 * the bytes each transport costs counted on the wire.
 *
 * Everything runs on one libws loop (include/ws_io.h):
 *
 *   - A repeating timer makes the updates. It computes how many updates
 *     are due since the rate last changed, so the rate stays right when
 *     the timer is late, and above 200 updates/s (ticks of 5 ms) each tick
 *     makes several.
 *   - Every update is formatted once as JSON into a ring of PVW_HISTORY
 *     entries; /poll, /longpoll and SSE resumes copy from the ring.
 *   - Each update goes to the WebSocket clients with one ws_io_broadcast()
 *     (the frame is encoded once), to each SSE stream with
 *     ws_io_http_write(), and then answers the long-poll waiters.
 *   - A housekeeping timer (every 100 ms) answers long polls whose time is
 *     up, sends the SSE keep-alive comments and frees closed clients.
 *
 * Per connection (ws_io_set_user) a struct client remembers which
 * transport the connection serves now and the byte counters it had at the
 * last look; the deltas go to that transport's totals when the next
 * request arrives (bytes read: to the new request's transport; bytes
 * written: to the previous one, whose answer they were), when the
 * connection closes, and when the counters are read.
 *
 * What the counters mean (pvw.h, GET /stats):
 *   requests   HTTP requests to /poll, /longpoll, /events; WebSocket
 *              handshakes that opened. The page, /stats and errors are
 *              not counted anywhere.
 *   bytes      as above; the bytes of a WebSocket's handshake count for ws.
 *   updates    update entries in /poll and /longpoll answers, SSE events
 *              written (resumes included), WebSocket update messages.
 *   clients    open connections whose latest request was for that
 *              transport: SSE streams, long polls held or between two
 *              requests on a kept-alive connection, WebSockets, and for
 *              poll the kept-alive connections of polling clients (a
 *              client that closes after each poll counts 0).
 *
 * Clients are never freed inside a callback: on_close unlinks them and
 * puts them on a graveyard list that the housekeeping timer empties. A
 * write may end a connection at once (and run on_close inside the write),
 * so code that loops over clients and writes can always look at the
 * client afterwards.
 *
 * Slow readers: a stream or WebSocket whose send queue is above
 * SLOW_QUEUE_BYTES does not get more updates until it has read. An SSE
 * client then sees a gap in the ids and can reconnect with Last-Event-ID
 * to get what it missed (the history has it); a WebSocket client sees a
 * gap and can catch up with /poll?since=N. The alternative, queueing
 * without limit, lets one stalled client hold unbounded memory; 1,000
 * stalled clients would hold 1,000 times that.
 */
#define _POSIX_C_SOURCE 200809L
#include "pvw.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T_NONE PVW_NTRANS              /* page, /stats, errors: not counted */
#define RATE_MIN 0.1
#define RATE_MAX 1000.0
#define TICK_MIN_MS 5u                 /* above 200/s: several per tick */
#define TICK_BURST_MAX 1000u           /* after a stall: skip, do not flood */
#define HOUSEKEEPING_MS 100u
#define LONGPOLL_DEFAULT_MS 25000u
#define LONGPOLL_MAX_MS 120000u
#define SSE_KEEPALIVE_MS 15000u
#define SLOW_QUEUE_BYTES (64u << 10)
#define MAX_FILE_BYTES (8u << 20)
#define MAX_CLIENT_MESSAGE 4096u       /* the page sends tiny JSON */
#define UPDATE_JSON_MAX 96             /* {"id":20,"t":20,"price":20.2} */

#define NO_STORE "Cache-Control: no-store\r\n"
#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

/* ------------------------------------------------------------------------ */
/* Small helpers: intrusive lists and a growable text buffer                */
/* ------------------------------------------------------------------------ */

/* A circular doubly linked list with a sentinel: unlinking needs no head,
 * so a node can leave whatever list it is on. */
struct link {
    struct link *prev, *next;
};

static void list_init(struct link *l)
{
    l->prev = l->next = l;
}

static int list_empty(const struct link *l)
{
    return l->next == l;
}

static void list_add_tail(struct link *head, struct link *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static void list_del(struct link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define CLIENT_OF(ptr, member)                                                \
    ((struct client *)(void *)((char *)(ptr) - offsetof(struct client, member)))

struct buf {
    char *p;
    size_t n, cap;
    int failed;             /* out of memory: the text is incomplete */
};

static int buf_reserve(struct buf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->failed)
        return -1;
    if (b->n + more + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 1024;
    while (cap < b->n + more + 1)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_add(struct buf *b, const char *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof tmp) {
        b->failed = 1;      /* callers only format short things */
        return;
    }
    buf_add(b, tmp, (size_t)k);
}

static void buf_clear(struct buf *b)
{
    b->n = 0;
    b->failed = 0;
    if (b->p)
        b->p[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* State                                                                    */
/* ------------------------------------------------------------------------ */

struct update {
    uint64_t id;
    size_t len;
    char json[UPDATE_JSON_MAX];     /* {"id":N,"t":T,"price":P} */
};

enum role { ROLE_NONE, ROLE_WAITER, ROLE_STREAM, ROLE_SOCKET };

struct client {
    struct link all;            /* srv->clients, or srv->graveyard */
    struct link role;           /* srv->waiters / streams / sockets */
    struct pvw_server *srv;
    struct ws_io_conn *conn;    /* NULL once closed */
    unsigned transport;         /* enum pvw_transport, or T_NONE */
    enum role role_kind;
    uint64_t seen_in, seen_out; /* byte counters at the last look */
    uint64_t since;             /* long poll: answer when last > since */
    uint64_t deadline;          /* long poll: loop ms */
    uint64_t last_write;        /* SSE: loop ms, for the keep-alive */
    uint64_t skipped;           /* SSE/WS: updates left out (slow reader) */
};

struct pvw_server {
    struct ws_loop *loop;
    struct ws_server *listener;
    struct ws_timer *tick, *housekeeping;
    char *www;                  /* NULL: no page */
    struct pvw_server *next_registered;

    /* The update stream. */
    double rate;
    uint64_t rate_epoch;        /* loop ms when the rate last changed */
    uint64_t made_in_epoch;     /* updates made since then */
    uint64_t started;           /* loop ms */
    uint64_t rng;               /* xorshift64* state */
    long cents;                 /* the price */
    uint64_t last;              /* newest id; 0: none yet */
    struct update *ring;        /* PVW_HISTORY entries, id i at (i-1)%H */

    /* Connections. */
    struct link clients;        /* every open connection we know */
    struct link waiters;        /* long polls being held */
    struct link streams;        /* SSE */
    struct link sockets;        /* WebSocket */
    struct link graveyard;      /* closed, freed by housekeeping */
    struct pvw_counters tot[PVW_NTRANS];

    /* Scratch. */
    struct buf body;            /* answers built inside on_http */
    struct buf cache;           /* long-poll answers when updates arrive */
    uint64_t cache_since, cache_count;
    int cache_valid;
    struct buf event;           /* the SSE event / WS message being sent */
    struct ws_io_conn **conns;  /* WebSocket broadcast list */
    size_t conns_cap;
};

static const char *const transport_names[PVW_NTRANS] = {
    "poll", "longpoll", "sse", "ws"
};

/*
 * The registry of running servers, one per loop. Connections start with
 * user NULL (options.user) and find their server through their loop; only
 * then does each get its struct client. The reason: a connection that was
 * accepted but has sent nothing yet is invisible to us until its first
 * callback, and that may come after pvw_server_stop() freed the server, so
 * a server pointer in options.user could dangle. A lookup that fails
 * after the stop is harmless. The mutex is for processes that run several
 * loops on several threads (a benchmark with its clients in-process).
 */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pvw_server *registry;

static struct pvw_server *find_server(const struct ws_loop *loop)
{
    struct pvw_server *s;

    pthread_mutex_lock(&registry_mu);
    for (s = registry; s && s->loop != loop; s = s->next_registered)
        ;
    pthread_mutex_unlock(&registry_mu);
    return s;
}

/* Wall clock in ms since the epoch, the clock of the page's Date.now(). */
static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* xorshift64* (Vigna): small, fast, and the same walk for the same seed. */
static uint64_t next_random(struct pvw_server *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ull;
}

/* ------------------------------------------------------------------------ */
/* Byte accounting                                                          */
/* ------------------------------------------------------------------------ */

/* Give the bytes read since the last look to in_to and the bytes written
 * to out_to (T_NONE: nobody). */
static void account(struct client *cl, unsigned in_to, unsigned out_to)
{
    uint64_t in = ws_io_get_bytes_in(cl->conn);
    uint64_t out = ws_io_get_bytes_out(cl->conn);

    if (in_to < PVW_NTRANS)
        cl->srv->tot[in_to].bytes_in += in - cl->seen_in;
    if (out_to < PVW_NTRANS)
        cl->srv->tot[out_to].bytes_out += out - cl->seen_out;
    cl->seen_in = in;
    cl->seen_out = out;
}

/* The connection now serves transport t: counts of open clients follow. */
static void set_transport(struct client *cl, unsigned t)
{
    if (cl->transport < PVW_NTRANS)
        cl->srv->tot[cl->transport].clients--;
    if (t < PVW_NTRANS)
        cl->srv->tot[t].clients++;
    cl->transport = t;
}

static void set_role(struct client *cl, enum role r, struct link *list)
{
    if (cl->role_kind != ROLE_NONE)
        list_del(&cl->role);
    cl->role_kind = r;
    if (list)
        list_add_tail(list, &cl->role);
}

/* The connection's client, made on its first request. NULL: no server
 * runs on this loop any more, or out of memory. */
static struct client *get_client(struct ws_io_conn *c, void *user)
{
    struct pvw_server *s;
    struct client *cl = user;

    if (cl)
        return cl;
    s = find_server(ws_io_get_loop(c));
    if (s == NULL)
        return NULL;
    cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return NULL;
    cl->srv = s;
    cl->conn = c;
    cl->transport = T_NONE;
    cl->role_kind = ROLE_NONE;
    list_init(&cl->role);
    list_add_tail(&s->clients, &cl->all);
    ws_io_set_user(c, cl);
    return cl;
}

/* ------------------------------------------------------------------------ */
/* Building answers                                                         */
/* ------------------------------------------------------------------------ */

static const struct update *update_at(const struct pvw_server *s, uint64_t id)
{
    return &s->ring[(id - 1) % PVW_HISTORY];
}

static uint64_t oldest_id(const struct pvw_server *s)
{
    return s->last > PVW_HISTORY ? s->last - PVW_HISTORY + 1 : 1;
}

/* {"now":T,"last":L,"updates":[...],"missed":M} for ids > since;
 * *count: how many updates it holds. */
static void build_updates(const struct pvw_server *s, struct buf *b,
                          uint64_t since, uint64_t *count)
{
    uint64_t id, first = since + 1, missed = 0;

    buf_clear(b);
    buf_printf(b, "{\"now\":%llu,\"last\":%llu,\"updates\":[",
               (unsigned long long)wall_ms(), (unsigned long long)s->last);
    *count = 0;
    if (s->last > since) {
        if (first < oldest_id(s)) {
            missed = oldest_id(s) - first;
            first = oldest_id(s);
        }
        if (buf_reserve(b, (size_t)(s->last - first + 1) *
                               (UPDATE_JSON_MAX + 1)) == 0) {
            for (id = first; id <= s->last; id++) {
                const struct update *u = update_at(s, id);
                if (id > first)
                    buf_add(b, ",", 1);
                buf_add(b, u->json, u->len);
            }
            *count = s->last - first + 1;
        }
    }
    buf_printf(b, "],\"missed\":%llu}", (unsigned long long)missed);
}

/* One SSE event: "id: N\ndata: {update}\n\n". */
static void add_event(struct buf *b, const struct update *u)
{
    buf_printf(b, "id: %llu\ndata: ", (unsigned long long)u->id);
    buf_add(b, u->json, u->len);
    buf_add(b, "\n\n", 2);
}

static void format_rate(char *out, size_t cap, double rate)
{
    /* %g never uses an exponent for 0.1 .. 1000, so this is JSON. */
    snprintf(out, cap, "%.6g", rate);
}

static void build_stats(struct pvw_server *s, struct buf *b)
{
    struct pvw_counters c[PVW_NTRANS];
    char rate[32];
    unsigned t;

    pvw_server_counters(s, c);
    format_rate(rate, sizeof rate, s->rate);
    buf_clear(b);
    buf_printf(b, "{\"rate\":%s,\"last\":%llu,\"uptime_ms\":%llu,"
                  "\"transports\":{",
               rate, (unsigned long long)s->last,
               (unsigned long long)(ws_loop_now(s->loop) - s->started));
    for (t = 0; t < PVW_NTRANS; t++)
        buf_printf(b, "%s\"%s\":{\"requests\":%llu,\"bytes_in\":%llu,"
                      "\"bytes_out\":%llu,\"updates\":%llu,"
                      "\"clients\":%llu}",
                   t ? "," : "", transport_names[t],
                   (unsigned long long)c[t].requests,
                   (unsigned long long)c[t].bytes_in,
                   (unsigned long long)c[t].bytes_out,
                   (unsigned long long)c[t].updates,
                   (unsigned long long)c[t].clients);
    buf_str(b, "}}");
}

/* ------------------------------------------------------------------------ */
/* Publishing                                                               */
/* ------------------------------------------------------------------------ */

/* Answer every long poll on the list due (each leaves it first: an answer
 * may run the connection's next pipelined request, which may wait again).
 * Answers for the same `since` are built once. */
static void answer_waiters(struct pvw_server *s, struct link *due)
{
    s->cache_valid = 0;
    while (!list_empty(due)) {
        struct client *cl = CLIENT_OF(due->next, role);

        set_role(cl, ROLE_NONE, NULL);
        if (!s->cache_valid || s->cache_since != cl->since) {
            build_updates(s, &s->cache, cl->since, &s->cache_count);
            s->cache_since = cl->since;
            s->cache_valid = !s->cache.failed;
        }
        if (s->cache.failed) {
            (void)ws_io_http_respond(cl->conn, 503, TEXT_TYPE, NO_STORE,
                                     "out of memory\n", 14);
            continue;
        }
        s->tot[PVW_LONGPOLL].updates += s->cache_count;
        (void)ws_io_http_respond(cl->conn, 200, JSON_TYPE, NO_STORE,
                                 s->cache.p, s->cache.n);
    }
    s->cache_valid = 0;
}

static void send_to_streams(struct pvw_server *s, const struct update *u)
{
    struct link *l, *next;

    buf_clear(&s->event);
    add_event(&s->event, u);
    if (s->event.failed)
        return;
    for (l = s->streams.next; l != &s->streams; l = next) {
        struct client *cl = CLIENT_OF(l, role);
        int rv;

        next = l->next;     /* a failed write unlinks cl, never another */
        if (ws_io_get_buffered(cl->conn) > SLOW_QUEUE_BYTES) {
            cl->skipped++;
            continue;
        }
        rv = ws_io_http_write(cl->conn, s->event.p, s->event.n);
        if (rv == WS_OK || rv == WS_HIGH_WATER) {
            s->tot[PVW_SSE].updates++;
            cl->last_write = ws_loop_now(s->loop);
        }
    }
}

/* Send text to every WebSocket client that keeps up, frame encoded once.
 * Returns how many got it. */
static size_t send_to_sockets(struct pvw_server *s, const char *p, size_t n)
{
    struct link *l;
    size_t k = 0, sent = 0;

    for (l = s->sockets.next; l != &s->sockets; l = l->next)
        k++;
    if (k > s->conns_cap) {
        struct ws_io_conn **a = realloc(s->conns, k * sizeof *a);
        if (a == NULL)
            return 0;
        s->conns = a;
        s->conns_cap = k;
    }
    /* A copy of the list: a connection that fails during the broadcast
     * runs on_close, which unlinks it; the copy does not change. */
    k = 0;
    for (l = s->sockets.next; l != &s->sockets; l = l->next) {
        struct client *cl = CLIENT_OF(l, role);
        if (ws_io_get_buffered(cl->conn) > SLOW_QUEUE_BYTES)
            cl->skipped++;
        else
            s->conns[k++] = cl->conn;
    }
    if (k > 0)
        (void)ws_io_broadcast(s->conns, k, WS_OPCODE_TEXT, p, n, &sent);
    return sent;
}

static void publish(struct pvw_server *s, const struct update *u)
{
    /* WebSocket: the update object itself, the same bytes as SSE's data
     * line; the frame adds only 2 bytes (RFC 6455 5.2). */
    s->tot[PVW_WS].updates += send_to_sockets(s, u->json, u->len);
    send_to_streams(s, u);
}

/* The next price: a random walk in cents, steps of up to 0.25, never
 * below 1.00, pulled gently back towards 100.00 so hours of demo stay on
 * a readable scale. */
static void make_update(struct pvw_server *s)
{
    struct update *u;
    long step = (long)(next_random(s) % 51u) - 25;
    int k;

    if (s->cents > 15000 && step > 0 && next_random(s) % 4u == 0)
        step = -step;
    if (s->cents < 5000 && step < 0 && next_random(s) % 4u == 0)
        step = -step;
    s->cents += step;
    if (s->cents < 100)
        s->cents = 100 + (100 - s->cents);
    s->last++;
    u = &s->ring[(s->last - 1) % PVW_HISTORY];
    u->id = s->last;
    k = snprintf(u->json, sizeof u->json,
                 "{\"id\":%llu,\"t\":%llu,\"price\":%ld.%02ld}",
                 (unsigned long long)s->last, (unsigned long long)wall_ms(),
                 s->cents / 100, s->cents % 100);
    u->len = k > 0 && (size_t)k < sizeof u->json ? (size_t)k : 0;
}

static void on_tick(struct ws_loop *loop, void *arg)
{
    struct pvw_server *s = arg;
    uint64_t now = ws_loop_now(loop), due, n, i;
    struct link ready, *l, *next;

    due = (uint64_t)((double)(now - s->rate_epoch) * s->rate / 1000.0);
    if (due <= s->made_in_epoch)
        return;
    n = due - s->made_in_epoch;
    if (n > TICK_BURST_MAX)
        n = TICK_BURST_MAX;     /* the loop stalled: do not flood */
    s->made_in_epoch = due;
    for (i = 0; i < n; i++) {
        make_update(s);
        publish(s, update_at(s, s->last));
    }
    list_init(&ready);
    for (l = s->waiters.next; l != &s->waiters; l = next) {
        struct client *cl = CLIENT_OF(l, role);
        next = l->next;
        if (cl->since < s->last) {
            list_del(l);
            list_add_tail(&ready, l);
        }
    }
    answer_waiters(s, &ready);
}

static uint32_t tick_interval(double rate)
{
    /* Rounded up, so a tick never comes before the update it is for. */
    double ms = 1000.0 / rate;
    uint32_t t = (uint32_t)ms;

    if ((double)t < ms)
        t++;
    return t < TICK_MIN_MS ? TICK_MIN_MS : t;
}

static void set_rate(struct pvw_server *s, double rate)
{
    s->rate = rate;
    s->rate_epoch = ws_loop_now(s->loop);
    s->made_in_epoch = 0;
    ws_timer_set_interval(s->tick, tick_interval(rate));
}

static void on_housekeeping(struct ws_loop *loop, void *arg)
{
    struct pvw_server *s = arg;
    uint64_t now = ws_loop_now(loop);
    struct link due, *l, *next;

    while (!list_empty(&s->graveyard)) {
        struct client *cl = CLIENT_OF(s->graveyard.next, all);
        list_del(&cl->all);
        free(cl);
    }
    list_init(&due);
    for (l = s->waiters.next; l != &s->waiters; l = next) {
        struct client *cl = CLIENT_OF(l, role);
        next = l->next;
        if (now >= cl->deadline) {
            list_del(l);
            list_add_tail(&due, l);
        }
    }
    answer_waiters(s, &due);
    for (l = s->streams.next; l != &s->streams; l = next) {
        struct client *cl = CLIENT_OF(l, role);
        next = l->next;
        if (now - cl->last_write >= SSE_KEEPALIVE_MS &&
            ws_io_get_buffered(cl->conn) == 0 &&
            ws_io_http_write(cl->conn, ": keep-alive\n\n", 14) >= 0)
            cl->last_write = now;
    }
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */
/* ------------------------------------------------------------------------ */

static int slice_is(struct ws_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* A decimal number without sign, at most 18 digits. */
static int parse_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (n == 0 || n > 18)
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10u + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/* The value of name=value in a query string. 1: found, 0: absent. */
static int query_param(struct ws_slice q, const char *name,
                       struct ws_slice *value)
{
    size_t i = 0, len = strlen(name);

    while (i < q.n) {
        size_t end = i, eq;
        while (end < q.n && q.p[end] != '&')
            end++;
        for (eq = i; eq < end && q.p[eq] != '='; eq++)
            ;
        if (eq - i == len && memcmp(q.p + i, name, len) == 0) {
            value->p = q.p + (eq < end ? eq + 1 : eq);
            value->n = eq < end ? end - eq - 1 : 0;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

/* A number parameter: 0 OK (default if absent), -1 malformed. */
static int query_u64(struct ws_slice q, const char *name, uint64_t def,
                     uint64_t *out)
{
    struct ws_slice v;

    *out = def;
    if (!query_param(q, name, &v))
        return 0;
    return parse_u64(v.p, v.n, out);
}

static void respond_text(struct ws_io_conn *c, unsigned status,
                         const char *extra, const char *text)
{
    (void)ws_io_http_respond(c, status, TEXT_TYPE, extra, text,
                             strlen(text));
}

static void respond_body(struct ws_io_conn *c, const struct buf *b)
{
    if (b->failed)
        respond_text(c, 503, NO_STORE, "out of memory\n");
    else
        (void)ws_io_http_respond(c, 200, JSON_TYPE, NO_STORE, b->p, b->n);
}

static void serve_poll(struct client *cl, const struct ws_request *req)
{
    struct pvw_server *s = cl->srv;
    uint64_t since, count;

    if (query_u64(req->query, "since", 0, &since) != 0) {
        respond_text(cl->conn, 400, NULL, "since must be a number\n");
        return;
    }
    build_updates(s, &s->body, since, &count);
    if (!s->body.failed)
        s->tot[PVW_POLL].updates += count;
    respond_body(cl->conn, &s->body);
}

static void serve_longpoll(struct client *cl, const struct ws_request *req)
{
    struct pvw_server *s = cl->srv;
    uint64_t since, timeout, count;

    if (query_u64(req->query, "since", 0, &since) != 0 ||
        query_u64(req->query, "timeout", LONGPOLL_DEFAULT_MS, &timeout) !=
            0) {
        respond_text(cl->conn, 400, NULL,
                     "since and timeout must be numbers\n");
        return;
    }
    if (timeout > LONGPOLL_MAX_MS)
        timeout = LONGPOLL_MAX_MS;
    if (s->last > since || timeout == 0) {
        build_updates(s, &s->body, since, &count);
        if (!s->body.failed)
            s->tot[PVW_LONGPOLL].updates += count;
        respond_body(cl->conn, &s->body);
        return;
    }
    cl->since = since;
    cl->deadline = ws_loop_now(s->loop) + timeout;
    set_role(cl, ROLE_WAITER, &s->waiters);
}

static void serve_events(struct client *cl, const struct ws_request *req)
{
    struct pvw_server *s = cl->srv;
    struct ws_slice v;
    size_t pos = 0;
    uint64_t from = 0, id;
    int resume = 0, rv;

    /* The browser's reconnect sends Last-Event-ID; a page that opens a new
     * EventSource itself can only use the query. */
    if (ws_header_find(req->headers, "Last-Event-ID", &pos, &v) == WS_OK &&
        parse_u64(v.p, v.n, &from) == 0)
        resume = 1;
    else if (query_param(req->query, "lastEventId", &v) &&
             parse_u64(v.p, v.n, &from) == 0)
        resume = 1;
    rv = ws_io_http_begin(cl->conn, 200, "text/event-stream",
                          "Cache-Control: no-cache\r\n"
                          "X-Accel-Buffering: no\r\n");
    if (rv != WS_OK && rv != WS_HIGH_WATER)
        return;
    buf_clear(&s->body);
    buf_str(&s->body, "retry: 1000\n\n");
    if (resume && s->last > from) {
        id = from + 1 < oldest_id(s) ? oldest_id(s) : from + 1;
        for (; id <= s->last; id++) {
            add_event(&s->body, update_at(s, id));
            s->tot[PVW_SSE].updates++;
        }
    }
    if (s->body.failed) {
        (void)ws_io_http_end(cl->conn);
        return;
    }
    cl->last_write = ws_loop_now(s->loop);
    set_role(cl, ROLE_STREAM, &s->streams);
    (void)ws_io_http_write(cl->conn, s->body.p, s->body.n);
}

static void serve_stats(struct client *cl)
{
    build_stats(cl->srv, &cl->srv->body);
    respond_body(cl->conn, &cl->srv->body);
}

static void serve_file(struct client *cl, const char *name, const char *type)
{
    const char *www = cl->srv->www;
    char path[4096];
    FILE *f;
    char *data;
    long size;

    if (www == NULL ||
        snprintf(path, sizeof path, "%s/%s", www, name) >= (int)sizeof path ||
        (f = fopen(path, "rb")) == NULL) {
        if (strcmp(name, "index.html") == 0)
            respond_text(cl->conn, 404, NULL,
                         "polling_vs_ws: the page is missing. Run the server "
                         "from the repository root,\nor give the directory "
                         "of index.html, app.js and style.css with --www "
                         "DIR.\nThe endpoints work without it: /poll, "
                         "/longpoll, /events, /ws, /stats.\n");
        else
            respond_text(cl->conn, 404, NULL, "not found\n");
        return;
    }
    /* Read per request (the files are small): edits show on reload. */
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        size > (long)MAX_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0 ||
        (data = malloc((size_t)size + 1)) == NULL) {
        fclose(f);
        respond_text(cl->conn, 500, NULL, "cannot read the file\n");
        return;
    }
    if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(data);
        respond_text(cl->conn, 500, NULL, "cannot read the file\n");
        return;
    }
    fclose(f);
    (void)ws_io_http_respond(cl->conn, 200, type, "Cache-Control: no-cache\r\n",
                             data, (size_t)size);
    free(data);
}

struct route {
    const char *path;
    unsigned transport;
    const char *file, *type;    /* static files */
};

static const struct route routes[] = {
    {"/poll", PVW_POLL, NULL, NULL},
    {"/longpoll", PVW_LONGPOLL, NULL, NULL},
    {"/events", PVW_SSE, NULL, NULL},
    {"/stats", T_NONE, NULL, NULL},
    {"/", T_NONE, "index.html", "text/html; charset=utf-8"},
    {"/index.html", T_NONE, "index.html", "text/html; charset=utf-8"},
    {"/app.js", T_NONE, "app.js", "text/javascript; charset=utf-8"},
    {"/style.css", T_NONE, "style.css", "text/css; charset=utf-8"},
};

static int on_http(struct ws_io_conn *c, const struct ws_request *req,
                   void *user)
{
    struct client *cl = get_client(c, user);
    const struct route *r = NULL;
    size_t i;

    if (cl == NULL) {
        respond_text(c, 503, NULL, "the server is stopping\n");
        (void)ws_io_close(c, 0, NULL, 0);
        return 0;
    }
    for (i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (slice_is(req->path, routes[i].path))
            r = &routes[i];
    /* What was read is this request; what was written since the last
     * look answered the previous one. */
    account(cl, r ? r->transport : T_NONE, cl->transport);
    set_transport(cl, r ? r->transport : T_NONE);
    if (req->http_major != 1) {
        /* The parser takes any HTTP/x.y; RFC 9110 15.6.6. */
        respond_text(c, 505, NULL, "HTTP/1.x only\n");
        return 0;
    }
    if (r == NULL && slice_is(req->path, "/ws")) {
        respond_text(c, 426, "Upgrade: websocket\r\n",
                     "/ws is a WebSocket endpoint\n");
        return 0;
    }
    if (r == NULL) {
        respond_text(c, 404, NULL, "not found\n");
        return 0;
    }
    if (!slice_is(req->method, "GET")) {
        respond_text(c, 405, "Allow: GET\r\n", "only GET here\n");
        return 0;
    }
    if (r->transport < PVW_NTRANS)
        cl->srv->tot[r->transport].requests++;
    switch (r->transport) {
    case PVW_POLL:
        serve_poll(cl, req);
        break;
    case PVW_LONGPOLL:
        serve_longpoll(cl, req);
        break;
    case PVW_SSE:
        serve_events(cl, req);
        break;
    default:
        if (r->file)
            serve_file(cl, r->file, r->type);
        else
            serve_stats(cl);
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* WebSocket                                                                */
/* ------------------------------------------------------------------------ */

static int on_request(struct ws_io_conn *c, const struct ws_request *req,
                      void *user)
{
    if (!slice_is(req->path, "/ws"))
        return ws_io_reject(c, 404, "not found") == WS_OK ? 0 : -1;
    if (get_client(c, user) == NULL)
        return ws_io_reject(c, 503, "the server is stopping") == WS_OK ? 0
                                                                        : -1;
    return 0;
}

static int on_open(struct ws_io_conn *c, void *user)
{
    struct client *cl = user;

    (void)c;
    if (cl == NULL)
        return 0;           /* not ours (cannot happen: see on_request) */
    /* The handshake, both ways, is what a WebSocket costs up front. */
    account(cl, PVW_WS, PVW_WS);
    set_transport(cl, PVW_WS);
    cl->srv->tot[PVW_WS].requests++;
    set_role(cl, ROLE_SOCKET, &cl->srv->sockets);
    return 0;
}

/*
 * A tiny JSON reader for the page's messages: it checks the whole text
 * against the grammar (RFC 8259) and reports the raw text of three
 * top-level members. Strings are compared as written: "\u0065cho" is not
 * "echo" (the page never escapes these).
 */
struct jreader {
    const char *p, *end;
    int depth;
};

enum jkind { J_BAD, J_STRING, J_NUMBER, J_OTHER };

static void j_space(struct jreader *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int j_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
           (ch >= 'A' && ch <= 'F');
}

/* A string; *raw: its text between the quotes. */
static int j_string(struct jreader *j, struct ws_slice *raw)
{
    const char *start;

    if (j->p >= j->end || *j->p != '"')
        return -1;
    start = ++j->p;
    while (j->p < j->end && *j->p != '"') {
        unsigned char ch = (unsigned char)*j->p;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (++j->p >= j->end)
                return -1;
            if (*j->p == 'u') {
                int i;
                for (i = 0; i < 4; i++)
                    if (++j->p >= j->end || !j_hex(*j->p))
                        return -1;
            } else if (strchr("\"\\/bfnrt", *j->p) == NULL) {
                return -1;
            }
        }
        j->p++;
    }
    if (j->p >= j->end)
        return -1;
    raw->p = start;
    raw->n = (size_t)(j->p - start);
    j->p++;
    return 0;
}

static int j_digits(struct jreader *j)
{
    const char *start = j->p;

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > start ? 0 : -1;
}

static int j_number(struct jreader *j, struct ws_slice *raw)
{
    const char *start = j->p;

    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (j_digits(j) != 0)
        return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j_digits(j) != 0)
            return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j_digits(j) != 0)
            return -1;
    }
    raw->p = start;
    raw->n = (size_t)(j->p - start);
    return 0;
}

static enum jkind j_value(struct jreader *j, struct ws_slice *raw);

/* An object or array (after its opening bracket), members skipped. */
static int j_container(struct jreader *j, char close, int object)
{
    struct ws_slice tmp;

    if (++j->depth > 32)
        return -1;
    j_space(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        if (object) {
            j_space(j);
            if (j_string(j, &tmp) != 0)
                return -1;
            j_space(j);
            if (j->p >= j->end || *j->p++ != ':')
                return -1;
        }
        if (j_value(j, &tmp) == J_BAD)
            return -1;
        j_space(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        }
        return -1;
    }
}

static enum jkind j_value(struct jreader *j, struct ws_slice *raw)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t i;

    j_space(j);
    if (j->p >= j->end)
        return J_BAD;
    if (*j->p == '"')
        return j_string(j, raw) == 0 ? J_STRING : J_BAD;
    if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
        return j_number(j, raw) == 0 ? J_NUMBER : J_BAD;
    if (*j->p == '{' || *j->p == '[') {
        char open = *j->p++;
        return j_container(j, open == '{' ? '}' : ']', open == '{') == 0
                   ? J_OTHER
                   : J_BAD;
    }
    for (i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
            j->p += n;
            return J_OTHER;
        }
    }
    return J_BAD;
}

struct page_message {
    struct ws_slice type, t, value;     /* n = 0: absent or wrong kind */
};

/* 0 if p is one JSON object; its "type" (string), "t" and "value"
 * (numbers) members are reported. */
static int parse_message(const char *p, size_t n, struct page_message *m)
{
    struct jreader j;

    memset(m, 0, sizeof *m);
    j.p = p;
    j.end = p + n;
    j.depth = 1;
    j_space(&j);
    if (j.p >= j.end || *j.p++ != '{')
        return -1;
    j_space(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        for (;;) {
            struct ws_slice key, val;
            enum jkind kind;

            j_space(&j);
            if (j_string(&j, &key) != 0)
                return -1;
            j_space(&j);
            if (j.p >= j.end || *j.p++ != ':')
                return -1;
            kind = j_value(&j, &val);
            if (kind == J_BAD)
                return -1;
            if (slice_is(key, "type") && kind == J_STRING)
                m->type = val;
            else if (slice_is(key, "t") && kind == J_NUMBER)
                m->t = val;
            else if (slice_is(key, "value") && kind == J_NUMBER)
                m->value = val;
            j_space(&j);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                continue;
            }
            if (j.p < j.end && *j.p == '}') {
                j.p++;
                break;
            }
            return -1;
        }
    }
    j_space(&j);
    return j.p == j.end ? 0 : -1;
}

static void handle_echo(struct client *cl, const struct page_message *m)
{
    char out[160];
    int k;

    if (m->t.n == 0 || m->t.n > 64)
        return;
    k = snprintf(out, sizeof out, "{\"type\":\"echo\",\"t\":%.*s,"
                                  "\"server\":%llu}",
                 (int)m->t.n, m->t.p, (unsigned long long)wall_ms());
    if (k > 0 && (size_t)k < sizeof out)
        (void)ws_io_send_text(cl->conn, out, (size_t)k);
}

static void handle_rate(struct pvw_server *s, const struct page_message *m)
{
    char num[72], out[64], rate[32];
    double r;
    int k;

    if (m->value.n == 0 || m->value.n > 64)
        return;
    memcpy(num, m->value.p, m->value.n);
    num[m->value.n] = '\0';
    r = strtod(num, NULL);      /* the grammar was checked: a number */
    if (!(r == r))
        return;
    if (r < RATE_MIN)
        r = RATE_MIN;
    if (r > RATE_MAX)
        r = RATE_MAX;
    set_rate(s, r);
    format_rate(rate, sizeof rate, r);
    k = snprintf(out, sizeof out, "{\"type\":\"rate\",\"value\":%s}", rate);
    if (k > 0 && (size_t)k < sizeof out)
        (void)send_to_sockets(s, out, (size_t)k);
}

/* Messages from the page. Anything we do not understand is ignored and
 * the connection stays: bad JSON is the application's business, not an
 * RFC 6455 violation. */
static int on_message(struct ws_io_conn *c, unsigned opcode,
                      const uint8_t *p, size_t n, void *user)
{
    struct client *cl = user;
    struct page_message m;

    (void)c;
    if (cl == NULL || opcode != WS_OPCODE_TEXT ||
        parse_message((const char *)p, n, &m) != 0)
        return 0;
    if (slice_is(m.type, "echo"))
        handle_echo(cl, &m);
    else if (slice_is(m.type, "rate"))
        handle_rate(cl->srv, &m);
    return 0;
}

static void on_close(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    struct client *cl = user;

    (void)c;
    (void)code;
    (void)reason;
    (void)n;
    if (cl == NULL)
        return;
    account(cl, cl->transport, cl->transport);
    set_transport(cl, T_NONE);
    set_role(cl, ROLE_NONE, NULL);
    cl->conn = NULL;
    list_del(&cl->all);
    list_add_tail(&cl->srv->graveyard, &cl->all);
    ws_io_set_user(c, NULL);
}

static const struct ws_io_handlers handlers = {
    .on_request = on_request,
    .on_open = on_open,
    .on_message = on_message,
    .on_http = on_http,
    .on_close = on_close,
};

/* ------------------------------------------------------------------------ */
/* The API                                                                  */
/* ------------------------------------------------------------------------ */

static void free_server(struct pvw_server *s)
{
    while (!list_empty(&s->graveyard)) {
        struct client *cl = CLIENT_OF(s->graveyard.next, all);
        list_del(&cl->all);
        free(cl);
    }
    free(s->ring);
    free(s->body.p);
    free(s->cache.p);
    free(s->event.p);
    free(s->conns);
    free(s->www);
    free(s);
}

static uint64_t initial_seed(void)
{
    const char *env = getenv("PVW_SEED");
    uint64_t seed;
    struct timespec ts;

    if (env && parse_u64(env, strlen(env), &seed) == 0)
        return seed ? seed : 0x9E3779B97F4A7C15ull;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
           ((uint64_t)getpid() << 40);
    return seed ? seed : 1;
}

/* see pvw.h */
int pvw_server_start(struct ws_loop *loop, const char *host,
                     const char *port, double rate, const char *www,
                     struct pvw_server **out)
{
    struct ws_io_options opts;
    struct pvw_server *s;
    int rv;

    if (out)
        *out = NULL;
    if (loop == NULL || port == NULL || out == NULL || !(rate >= RATE_MIN) ||
        rate > RATE_MAX)
        return WS_ERR_INVALID_ARG;
    if (find_server(loop) != NULL)
        return WS_ERR_BAD_STATE;        /* one demo server per loop */
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return WS_ERR_NO_MEMORY;
    s->loop = loop;
    list_init(&s->clients);
    list_init(&s->waiters);
    list_init(&s->streams);
    list_init(&s->sockets);
    list_init(&s->graveyard);
    s->ring = calloc(PVW_HISTORY, sizeof *s->ring);
    if (www)
        s->www = malloc(strlen(www) + 1);
    if (s->ring == NULL || (www && s->www == NULL)) {
        free_server(s);
        return WS_ERR_NO_MEMORY;
    }
    if (www)
        strcpy(s->www, www);
    s->rng = initial_seed();
    s->cents = 10000;
    s->rate = rate;

    memset(&opts, 0, sizeof opts);
    opts.handlers = &handlers;
    opts.user = NULL;                   /* see the registry */
    opts.max_message = MAX_CLIENT_MESSAGE;
    opts.high_water = SLOW_QUEUE_BYTES;
    opts.low_water = SLOW_QUEUE_BYTES / 4;
    opts.max_buffered = 4 * SLOW_QUEUE_BYTES + (PVW_HISTORY << 7);
    opts.backlog = 4096;                /* 1,000 clients arrive at once */
    rv = ws_server_listen(loop, host ? host : "127.0.0.1", port, &opts,
                          &s->listener);
    if (rv != WS_OK) {
        free_server(s);
        return rv;
    }
    rv = ws_timer_start(loop, tick_interval(rate), 1, on_tick, s, &s->tick);
    if (rv == WS_OK)
        rv = ws_timer_start(loop, HOUSEKEEPING_MS, 1, on_housekeeping, s,
                            &s->housekeeping);
    if (rv != WS_OK) {
        ws_timer_stop(s->tick);
        ws_server_close(s->listener);
        free_server(s);
        return rv;
    }
    s->started = s->rate_epoch = ws_loop_now(loop);
    pthread_mutex_lock(&registry_mu);
    s->next_registered = registry;
    registry = s;
    pthread_mutex_unlock(&registry_mu);
    *out = s;
    return WS_OK;
}

/* see pvw.h */
unsigned pvw_server_port(const struct pvw_server *s)
{
    return s ? ws_server_port(s->listener) : 0;
}

/* see pvw.h */
void pvw_server_counters(struct pvw_server *s,
                         struct pvw_counters out[PVW_NTRANS])
{
    struct link *l;

    for (l = s->clients.next; l != &s->clients; l = l->next) {
        struct client *cl = CLIENT_OF(l, all);
        account(cl, cl->transport, cl->transport);
    }
    memcpy(out, s->tot, sizeof s->tot);
}

/* see pvw.h */
void pvw_server_stop(struct pvw_server *s)
{
    struct pvw_server **pp;

    if (s == NULL)
        return;
    pthread_mutex_lock(&registry_mu);
    for (pp = &registry; *pp; pp = &(*pp)->next_registered)
        if (*pp == s) {
            *pp = s->next_registered;
            break;
        }
    pthread_mutex_unlock(&registry_mu);
    ws_timer_stop(s->tick);
    ws_timer_stop(s->housekeeping);
    ws_server_close(s->listener);       /* a no-op after ws_loop_shutdown */
    /* Detach every connection first (user NULL: its on_close, now or
     * later, finds nothing to do), then close it. */
    while (!list_empty(&s->clients)) {
        struct client *cl = CLIENT_OF(s->clients.next, all);
        struct ws_io_conn *c = cl->conn;
        enum role r = cl->role_kind;

        list_del(&cl->all);
        list_del(&cl->role);
        ws_io_set_user(c, NULL);
        free(cl);
        if (r == ROLE_STREAM)
            (void)ws_io_http_end(c);
        else if (ws_io_is_http(c))
            (void)ws_io_close(c, 0, NULL, 0);
        else
            (void)ws_io_close(c, WS_CLOSE_GOING_AWAY, "server stopped", 14);
    }
    free_server(s);
}
