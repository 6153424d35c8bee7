/*
 * ws_io.c - the optional I/O layer: event loop, sockets, TLS, timers, send
 * queues with backpressure, graceful shutdown. Built on ws.h only.
 *
 * One loop per thread. The loop waits on epoll (Linux) or poll() for:
 * listening sockets, connections, and one wake-up descriptor (an eventfd or
 * a pipe) that ws_loop_post(), ws_loop_stop() and the signal handler write
 * to. Timers are per connection: each connection has one deadline (the
 * earliest of handshake, ping, pong, idle and close timeouts that apply to
 * its state) kept in a binary min-heap, so a tick costs O(log n).
 *
 * Input: bytes are read into one loop-wide buffer and fed to the core,
 * which unmasks them in place; whole messages are reassembled through the
 * core's allocator hooks (malloc), bounded by max_message.
 * Output: the core's send callback writes at once (writev: header + the
 * caller's payload, no copy) and copies only what the socket did not take
 * into the connection's queue; small frames sent while a connection's
 * input is fed are gathered and written together after it (cork_flush).
 * Server connections share one core buffer per loop (see feed()), so an
 * idle connection costs little more than its struct. Above high_water,
 * sends report WS_HIGH_WATER and reading from that peer pauses; below
 * low_water, on_drain runs; above max_buffered the connection fails (1008).
 *
 * Lifetime: a connection is closed (socket, TLS, queue) as soon as it ends
 * and its on_close runs, but its memory is freed only after the current
 * batch of events, so no event in the batch can touch freed memory.
 */
#define _GNU_SOURCE 1
#include "ws_internal.h"
#include "ws_io.h"
#include "io/io_tls.h"

#include <arpa/inet.h>
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
#include <sys/socket.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#define HAVE_EPOLL 1
#else
#define HAVE_EPOLL 0
#endif

#define READ_BUF_SIZE (64u * 1024u)
#define CONN_BUF_SIZE 4096u          /* core buffer: handshake + spill */
#define CORK_SIZE (64u * 1024u)      /* output gathered while reading */
#define CORK_FRAME_MAX 4096u         /* larger frames are written at once */
#define MAX_IOV 16
#define ACCEPT_BATCH 64
#define READS_PER_EVENT 4            /* fairness between connections */

enum handle_type { H_WAKE, H_SERVER, H_CONN };

/* The peer's address is kept in binary and formatted when asked for. */
enum peer_family { PEER_NONE, PEER_V4, PEER_V6 };
#define PEER_TEXT_MAX 72             /* "[IPv6]:port", or X-Forwarded-For */

/* Every descriptor the loop waits on starts with this. */
struct handle {
    int type;
    int fd;
    uint32_t events;                 /* what we wait for: POLLIN/POLLOUT */
};

/* A frame shared by several queues (broadcast). */
struct shared_frame {
    size_t refs;
    size_t len;
    uint8_t data[];
};

/* One queued piece of output. */
struct qnode {
    struct qnode *next;
    struct shared_frame *shared;     /* NULL: data[] is owned */
    const uint8_t *p;
    size_t len, off;
    uint8_t data[];
};

struct post {
    struct post *next;
    void (*fn)(struct ws_loop *, void *);
    void *arg;
};

struct ws_server {
    struct handle h;
    struct ws_loop *loop;
    struct ws_io_options opts;
    struct io_tls_ctx *tls;
    struct ws_server *next;
    unsigned port;
    /* opts.protocols with a NUL after each name: the core keeps the
     * chosen name by pointer (ws_conn_select_protocol) */
    char names[];
};

/* Ordered for packing (flags, then pointers, small fields last): every
 * idle connection costs its size (tests/bench/ECHO.md). */
struct ws_io_conn {
    struct handle h;
    unsigned tcp_connecting : 1;     /* client: connect() in progress */
    unsigned tls_handshaking : 1;
    unsigned core_ready : 1;         /* ws_conn_init done */
    unsigned high : 1;               /* above high_water, waiting to drain */
    unsigned awaiting_pong : 1;
    unsigned dead : 1;
    unsigned eof : 1;                /* the peer closed its side */
    unsigned tls_wants_read : 1;     /* a TLS write waits for readability */
    unsigned lingering : 1;          /* server: FIN sent, draining input */
    unsigned http : 1;               /* plain HTTP (on_http), not WebSocket */
    unsigned http_phase : 2;         /* HTTP_WAIT, _PENDING, ... */
    unsigned http_keep_alive : 1;    /* the pending request allows reuse */
    unsigned in_http : 1;            /* inside http_process() */
    unsigned peer_family : 2;        /* PEER_NONE, PEER_V4, PEER_V6 */
    unsigned close_timed : 1;        /* phase_start is the close's start */

    /* One of these two is set; they give conn_loop() and conn_opts(). */
    struct ws_server *server;        /* server role */
    struct io_client *client;        /* client role */
    struct io_tls *tls;
    struct ws_conn conn;
    void *user;

    struct qnode *qhead, *qtail;
    size_t queued;

    uint8_t *hbuf;                   /* HTTP: request bytes not yet used;
                                        open server: the core's own buffer
                                        while it is busy (see feed) */
    uint64_t bytes_in, bytes_out;

    uint64_t last_rx, last_activity;
    /* When the timed phase the connection is in began (see schedule()):
     * its opening handshake or the wait for an HTTP request; in OPEN, the
     * ping that waits for its pong; then the close. The phases follow one
     * another and never come back, so one field serves all three. */
    uint64_t phase_start;
    uint64_t deadline;
    uint32_t heap_idx;               /* NOT_IN_HEAP, or where in the heap */
    int error;

    char *close_reason;              /* malloc'd; NULL: none (n == 0) */
    char *peer;                      /* text: see ws_io_get_peer() */
    const char *path;                /* root_path, or malloc'd */

    /* The loop's list of live connections; once the connection is dead
     * and off that list, prev links the loop's dead list instead. */
    struct ws_io_conn *prev, *next;

    uint8_t peer_addr[16];           /* IPv4: the first 4 bytes */
    uint16_t peer_port;
    uint16_t close_code;
    uint16_t hlen;                   /* bytes in hbuf */
    uint8_t close_reason_len;
};

#define NOT_IN_HEAP UINT32_MAX

/* What only a client connection needs, allocated with it. A client keeps
 * its own core buffer: it holds the Upgrade request and the answer while
 * they come and go, and it is where the core masks outgoing frames. */
struct io_client {
    struct ws_loop *loop;
    struct ws_io_options opts;       /* the client's own copy */
    struct io_tls_ctx *tls;          /* its own TLS context */
    char *host;                      /* name for SNI/verification */
    char *host_header;               /* Host header value */
    char *port;
    int is_tls;                      /* wss */
    uint8_t buf[CONN_BUF_SIZE];      /* the core's buffer */
};

struct ws_loop {
    struct handle wake;
    int wake_write_fd;               /* == wake.fd for an eventfd */
    int epfd;                        /* -1: poll() */
    uint8_t *rbuf;
    uint8_t *core_buf;               /* the core buffer of server conns */
    struct ws_io_conn *cork;         /* output is being gathered for it */
    size_t cork_len;
    uint8_t *cork_buf;               /* CORK_SIZE bytes */
    struct ws_server *servers;       /* listening */
    struct ws_server *closed;        /* closed; freed with the loop */
    struct ws_timer *timers;
    struct ws_io_conn *conns;
    size_t nconns;
    struct ws_io_conn **heap;
    size_t heap_len, heap_cap;
    struct ws_io_conn *dead;
    pthread_mutex_t post_mu;
    struct post *posts, *posts_tail;
    volatile sig_atomic_t stop;
    volatile sig_atomic_t signalled;
    int shutting_down;
    int signal_timeout_ms;
    unsigned shutdown_code;
    uint64_t shutdown_deadline;
    uint64_t now;
    int spare_fd;                    /* for EMFILE: see accept_all */
};

struct ws_timer {
    struct ws_timer *next;
    struct ws_loop *loop;
    uint64_t due;
    uint32_t interval;
    int repeat;
    int cancelled;                   /* freed by the next sweep */
    void (*fn)(struct ws_loop *, void *);
    void *arg;
};

/* A connection's loop and options are its server's or its client's. */
static struct ws_loop *conn_loop(const struct ws_io_conn *c)
{
    return c->server ? c->server->loop : c->client->loop;
}

static const struct ws_io_options *conn_opts(const struct ws_io_conn *c)
{
    return c->server ? &c->server->opts : &c->client->opts;
}

/* Plain HTTP connections: waiting for a request head, holding one the
 * application has not answered yet (long polling), streaming an answer
 * (Server-Sent Events), or closing after the answer. */
enum http_phase { HTTP_WAIT, HTTP_PENDING, HTTP_STREAMING, HTTP_CLOSING };
#define HTTP_BUF_SIZE 8192u
/* hlen counts bytes of hbuf (CONN_BUF_SIZE or HTTP_BUF_SIZE) in 16 bits. */
typedef char hbuf_size_fits_hlen[HTTP_BUF_SIZE <= UINT16_MAX &&
                                  CONN_BUF_SIZE <= UINT16_MAX ? 1 : -1];

static struct ws_loop *signal_loop;  /* the one loop signals go to */

/* The request path of nearly every connection: not worth a malloc each. */
static const char root_path[] = "/";

static int conn_send(struct ws_conn *core, const struct ws_iov *iov,
                     size_t cnt, size_t *written, void *user);
static void conn_fail(struct ws_io_conn *c, int error, const char *why);
static void conn_end(struct ws_io_conn *c);
static void update_interest(struct ws_io_conn *c);
static void schedule(struct ws_io_conn *c);
static void flush_queue(struct ws_io_conn *c);
static void uncork(struct ws_io_conn *c);
static void cork_flush(struct ws_loop *loop);

/* ------------------------------------------------------------------------ */
/* Time and small helpers                                                   */
/* ------------------------------------------------------------------------ */

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *dup_str(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL, 0);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static uint32_t opt_ms(uint32_t v, uint32_t def)
{
    if (v == WS_IO_TIMEOUT_OFF)
        return 0;
    return v ? v : def;
}

/* ------------------------------------------------------------------------ */
/* Waiting: epoll or poll                                                   */
/* ------------------------------------------------------------------------ */

#if HAVE_EPOLL
static uint32_t to_epoll(uint32_t ev)
{
    return ((ev & POLLIN) ? (uint32_t)EPOLLIN : 0u) |
           ((ev & POLLOUT) ? (uint32_t)EPOLLOUT : 0u);
}
#endif

static int watch(struct ws_loop *loop, struct handle *h, uint32_t events)
{
    h->events = events;
#if HAVE_EPOLL
    if (loop->epfd >= 0) {
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = to_epoll(events);
        ev.data.ptr = h;
        return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, h->fd, &ev);
    }
#endif
    (void)loop;
    return 0;
}

static void rewatch(struct ws_loop *loop, struct handle *h, uint32_t events)
{
    if (h->events == events)
        return;
    h->events = events;
#if HAVE_EPOLL
    if (loop->epfd >= 0) {
        struct epoll_event ev;
        memset(&ev, 0, sizeof ev);
        ev.events = to_epoll(events);
        ev.data.ptr = h;
        (void)epoll_ctl(loop->epfd, EPOLL_CTL_MOD, h->fd, &ev);
    }
#endif
    (void)loop;
}

static void unwatch(struct ws_loop *loop, struct handle *h)
{
#if HAVE_EPOLL
    if (loop->epfd >= 0 && h->fd >= 0)
        (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
#endif
    (void)loop;
}

/* ------------------------------------------------------------------------ */
/* The timer heap: connections ordered by deadline                          */
/* ------------------------------------------------------------------------ */

static void heap_swap(struct ws_loop *loop, size_t a, size_t b)
{
    struct ws_io_conn *t = loop->heap[a];

    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_idx = (uint32_t)a;
    loop->heap[b]->heap_idx = (uint32_t)b;
}

static void heap_up(struct ws_loop *loop, size_t i)
{
    while (i > 0 && loop->heap[(i - 1) / 2]->deadline > loop->heap[i]->deadline) {
        heap_swap(loop, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct ws_loop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len &&
            loop->heap[l]->deadline < loop->heap[m]->deadline)
            m = l;
        if (r < loop->heap_len &&
            loop->heap[r]->deadline < loop->heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

static void heap_remove(struct ws_loop *loop, struct ws_io_conn *c)
{
    size_t i = c->heap_idx;

    if (i == NOT_IN_HEAP)
        return;
    c->heap_idx = NOT_IN_HEAP;
    loop->heap_len--;
    if (i == loop->heap_len)
        return;
    loop->heap[i] = loop->heap[loop->heap_len];
    loop->heap[i]->heap_idx = (uint32_t)i;
    heap_up(loop, i);
    heap_down(loop, loop->heap[i]->heap_idx);
}

static void heap_set(struct ws_loop *loop, struct ws_io_conn *c,
                     uint64_t deadline)
{
    if (deadline == 0) {
        heap_remove(loop, c);
        return;
    }
    if (c->heap_idx == NOT_IN_HEAP) {
        if (loop->heap_len == loop->heap_cap) {
            size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
            struct ws_io_conn **h = realloc(loop->heap, cap * sizeof *h);
            if (h == NULL)
                return;     /* no timer: the connection still works */
            loop->heap = h;
            loop->heap_cap = cap;
        }
        c->deadline = deadline;
        c->heap_idx = (uint32_t)loop->heap_len++;
        loop->heap[c->heap_idx] = c;
        heap_up(loop, c->heap_idx);
        return;
    }
    c->deadline = deadline;
    heap_up(loop, c->heap_idx);
    heap_down(loop, c->heap_idx);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* The close timeout counts from now. */
static void start_close_timer(struct ws_io_conn *c)
{
    c->phase_start = conn_loop(c)->now;
    c->close_timed = 1;
}

/* The connection's next deadline, from its state. */
static void schedule(struct ws_io_conn *c)
{
    const struct ws_io_options *o = conn_opts(c);
    struct ws_loop *loop = conn_loop(c);
    uint64_t d = 0;
    enum ws_state st;

    if (c->dead)
        return;
    st = c->core_ready ? ws_conn_get_state(&c->conn) : WS_STATE_CONNECTING;
    if (c->http && c->http_phase != HTTP_WAIT) {
        /* An answer is pending or streaming: the application decides. */
        uint32_t idle = opt_ms(o->idle_timeout_ms, 0);
        if (c->lingering)
            d = c->phase_start + opt_ms(o->close_timeout_ms,
                                        WS_IO_DEFAULT_CLOSE_TIMEOUT_MS);
        else if (idle)
            d = c->last_activity + idle;
    } else if (st == WS_STATE_CONNECTING) {
        /* Also a keep-alive HTTP connection waiting for its next request
         * (phase_start is reset after each answer). */
        uint32_t t = opt_ms(o->handshake_timeout_ms,
                            WS_IO_DEFAULT_HANDSHAKE_TIMEOUT_MS);
        if (t)
            d = c->phase_start + t;
    } else if (st == WS_STATE_OPEN) {
        uint32_t ping = opt_ms(o->ping_interval_ms, 0);
        uint32_t pong = opt_ms(o->pong_timeout_ms,
                               WS_IO_DEFAULT_PONG_TIMEOUT_MS);
        uint32_t idle = opt_ms(o->idle_timeout_ms, 0);
        /* While a ping waits for its pong, the next ping is not due; with
         * no pong timeout there is nothing to wake up for (a deadline in
         * the past that on_deadline cannot act on would spin the loop). */
        if (c->awaiting_pong) {
            if (pong)
                d = earliest(d, c->phase_start + pong);
        } else if (ping) {
            d = earliest(d, c->last_rx + ping);
        }
        if (idle)
            d = earliest(d, c->last_activity + idle);
    } else {
        uint32_t t = opt_ms(o->close_timeout_ms,
                            WS_IO_DEFAULT_CLOSE_TIMEOUT_MS);
        if (!c->close_timed)    /* the core started it (peer or failure) */
            start_close_timer(c);
        if (t)
            d = c->phase_start + t;
    }
    if (loop->shutting_down)
        d = earliest(d, loop->shutdown_deadline);
    heap_set(loop, c, d);
}

/* A deadline passed: decide what it meant. */
static void on_deadline(struct ws_io_conn *c)
{
    const struct ws_io_options *o = conn_opts(c);
    struct ws_loop *loop = conn_loop(c);
    uint64_t now = loop->now;
    enum ws_state st;

    if (loop->shutting_down && now >= loop->shutdown_deadline) {
        conn_fail(c, WS_ERR_CLOSED, "shutdown timeout");
        return;
    }
    st = c->core_ready ? ws_conn_get_state(&c->conn) : WS_STATE_CONNECTING;
    if (c->http) {
        if (c->http_phase == HTTP_WAIT && c->hlen == 0)
            conn_end(c);        /* an idle keep-alive connection: fine */
        else
            conn_fail(c, c->lingering ? 0 : WS_ERR_HANDSHAKE,
                      "HTTP request timeout");
        return;
    }
    if (st == WS_STATE_CONNECTING) {
        conn_fail(c, WS_ERR_HANDSHAKE, "opening handshake timeout");
        return;
    }
    if (st != WS_STATE_OPEN) {
        /* CLOSED: the close handshake is done and only the server's FIN
         * is missing, which is still a clean end. CLOSING: the peer never
         * answered our close frame, so it is not (as the shutdown timeout
         * says too). */
        conn_fail(c, c->error ? c->error
                              : st == WS_STATE_CLOSED ? 0 : WS_ERR_CLOSED,
                  "close handshake timeout");
        return;
    }
    if (c->awaiting_pong) {
        uint32_t pong = opt_ms(o->pong_timeout_ms,
                               WS_IO_DEFAULT_PONG_TIMEOUT_MS);
        if (pong && now >= c->phase_start + pong) {
            conn_fail(c, WS_ERR_TRANSPORT, "no pong before the deadline");
            return;
        }
    }
    if (opt_ms(o->idle_timeout_ms, 0) &&
        now >= c->last_activity + opt_ms(o->idle_timeout_ms, 0)) {
        ws_io_close(c, WS_CLOSE_GOING_AWAY, "idle timeout", 12);
        return;
    }
    if (!c->awaiting_pong && opt_ms(o->ping_interval_ms, 0) &&
        now >= c->last_rx + opt_ms(o->ping_interval_ms, 0)) {
        uint8_t stamp[8];
        int i;
        for (i = 0; i < 8; i++)
            stamp[i] = (uint8_t)(now >> (56 - 8 * i));
        c->awaiting_pong = 1;
        c->phase_start = now;   /* the pong timeout starts */
        (void)ws_io_send_ping(c, stamp, sizeof stamp);
    }
    schedule(c);
}

/* ------------------------------------------------------------------------ */
/* Closing and freeing                                                      */
/* ------------------------------------------------------------------------ */

static void free_queue(struct ws_io_conn *c)
{
    struct qnode *n = c->qhead;

    while (n) {
        struct qnode *next = n->next;
        if (n->shared && --n->shared->refs == 0)
            free(n->shared);
        free(n);
        n = next;
    }
    c->qhead = c->qtail = NULL;
    c->queued = 0;
}

/* Remember the code and reason on_close will report. The reason is kept
 * in its own allocation (most connections never need one); without memory
 * for it, on_close gets the code with an empty reason. */
static void set_close(struct ws_io_conn *c, unsigned code, const char *reason,
                      size_t n)
{
    char *copy = NULL;

    n = n < WS_CLOSE_REASON_MAX ? n : WS_CLOSE_REASON_MAX;
    if (n > 0 && (copy = dup_str(reason, n)) == NULL)
        n = 0;
    c->close_code = (uint16_t)code;
    free(c->close_reason);
    c->close_reason = copy;
    c->close_reason_len = (uint8_t)n;
}

/* Take c off the loop's list of live connections. */
static void unlink_conn(struct ws_loop *loop, struct ws_io_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    loop->nconns--;
}

/*
 * End the connection now: close the socket, run on_close (once), and put
 * the memory on the loop's dead list, freed after the current batch.
 */
static void conn_end(struct ws_io_conn *c)
{
    struct ws_loop *loop = conn_loop(c);
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;

    if (c->dead)
        return;
    if (loop->cork == c) {
        /* A clean end still sends what was gathered (best effort, as a
         * queue is at close); a failed one drops it. */
        if (c->error == 0)
            cork_flush(loop);
        loop->cork = NULL;
        loop->cork_len = 0;
        if (c->dead)
            return;
    }
    c->dead = 1;
    if (c->close_code == 0 && c->http && c->error == 0) {
        c->close_code = WS_CLOSE_NORMAL;    /* an HTTP exchange that ended */
    } else if (c->close_code == 0) {
        /* Ended without a close frame settling it (e.g. a failed opening
         * handshake): abnormal closure, with the core's reason. */
        const char *why = c->core_ready ? ws_conn_get_reason(&c->conn) : "";
        set_close(c, WS_CLOSE_ABNORMAL, why, strlen(why));
    }
    heap_remove(loop, c);
    unwatch(loop, &c->h);
    if (c->tls) {
        if (!c->eof && c->error == 0)
            io_tls_shutdown(c->tls);
        io_tls_free(c->tls);
        c->tls = NULL;
    }
    if (c->h.fd >= 0)
        close(c->h.fd);
    c->h.fd = -1;
    free_queue(c);
    if (c->core_ready)
        ws_conn_reset(&c->conn);
    unlink_conn(loop, c);
    c->prev = loop->dead;
    loop->dead = c;
    if (hd && hd->on_close)
        hd->on_close(c, c->close_code,
                     c->close_reason ? c->close_reason : "",
                     c->close_reason_len, c->user);
}

static void free_path(struct ws_io_conn *c)
{
    if (c->path != root_path)
        free((char *)c->path);
    c->path = NULL;
}

static void conn_free(struct ws_io_conn *c)
{
    free(c->hbuf);
    free(c->close_reason);
    free(c->peer);
    free_path(c);
    if (c->client) {
        free(c->client->host);
        free(c->client->host_header);
        free(c->client->port);
        if (c->client->tls)
            io_tls_ctx_free(c->client->tls);
        free(c->client);
    }
    free(c);
}

static void free_dead(struct ws_loop *loop)
{
    while (loop->dead) {
        struct ws_io_conn *c = loop->dead;
        loop->dead = c->prev;
        conn_free(c);
    }
}

/* The connection cannot go on: remember why, end it (no close frame can
 * help: the transport is gone or the peer is not answering). */
static void conn_fail(struct ws_io_conn *c, int error, const char *why)
{
    if (c->dead)
        return;
    if (c->error == 0)
        c->error = error;
    if (c->close_code == 0)     /* no close frame settled it (7.1.5) */
        set_close(c, WS_CLOSE_ABNORMAL, why, strlen(why));
    conn_end(c);
}

/* After the close handshake, or after a failure the core reported: close
 * TCP once the output is flushed. RFC 6455 7.1.1: the server closes first;
 * a client waits (bounded by close_timeout) for the server to do so. */
static void begin_linger(struct ws_io_conn *c);

static void maybe_finish(struct ws_io_conn *c)
{
    if (c->dead)
        return;
    uncork(c);
    if (c->dead)
        return;
    if (c->http) {
        /* An answer that ends the connection: half-close once it is out. */
        if (c->http_phase == HTTP_CLOSING && c->qhead == NULL &&
            !c->lingering)
            begin_linger(c);
        return;
    }
    if (!c->core_ready || !ws_conn_is_closed(&c->conn))
        return;
    if (c->error == 0 && ws_conn_get_error(&c->conn) != 0)
        c->error = ws_conn_get_error(&c->conn);
    if (c->qhead != NULL && !c->eof)
        return;                 /* the close frame is still going out */
    if (c->eof || (c->server == NULL && c->error != 0)) {
        conn_end(c);
        return;
    }
    if (c->server != NULL && !c->lingering)
        begin_linger(c);
    schedule(c);                /* wait for the peer's FIN */
}

/* RFC 6455 7.1.1: the server closes TCP first. Half-close and drain what
 * the peer still sends until its FIN (bounded by the close timeout):
 * close() with unread input would answer with a TCP reset, which can
 * destroy our last bytes before the peer reads them (e.g. a 1009 close
 * frame while it is still sending a huge message). */
static void begin_linger(struct ws_io_conn *c)
{
    c->lingering = 1;
    if (c->tls)
        io_tls_shutdown(c->tls);
    (void)shutdown(c->h.fd, SHUT_WR);
    start_close_timer(c);
    update_interest(c);
    schedule(c);
}

/* Lingering: discard input until the peer's FIN. */
static void drain_input(struct ws_io_conn *c)
{
    uint8_t *rbuf = conn_loop(c)->rbuf;
    int i;

    for (i = 0; i < READS_PER_EVENT * 4; i++) {
        long n;
        if (c->tls) {
            n = io_tls_read(c->tls, rbuf, READ_BUF_SIZE);
            if (n == IO_TLS_WANT_READ || n == IO_TLS_WANT_WRITE)
                return;
        } else {
            n = (long)recv(c->h.fd, rbuf, READ_BUF_SIZE, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                          errno == EINTR))
                return;
        }
        if (n <= 0) {           /* FIN (or reset, or TLS end): done */
            c->eof = 1;
            conn_end(c);
            return;
        }
        c->bytes_in += (uint64_t)n;
    }
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static struct qnode *new_owned_node(const uint8_t *p, size_t n)
{
    struct qnode *q = malloc(sizeof *q + n);

    if (q == NULL)
        return NULL;
    q->next = NULL;
    q->shared = NULL;
    memcpy(q->data, p, n);
    q->p = q->data;
    q->len = n;
    q->off = 0;
    return q;
}

static void enqueue(struct ws_io_conn *c, struct qnode *q)
{
    if (c->qtail)
        c->qtail->next = q;
    else
        c->qhead = q;
    c->qtail = q;
    c->queued += q->len - q->off;
}

/* Write iov[] to the socket without blocking. Returns bytes written, or
 * -1 on a fatal error (EAGAIN counts as 0 written). */
static long write_socket(struct ws_io_conn *c, const struct iovec *iov,
                         int cnt);

/* Write iov[] to the socket without blocking, counting the bytes. Returns
 * bytes written, or -1 on a fatal error (EAGAIN counts as 0 written). */
static long write_now(struct ws_io_conn *c, const struct iovec *iov, int cnt)
{
    long n = write_socket(c, iov, cnt);

    if (n > 0)
        c->bytes_out += (uint64_t)n;
    return n;
}

static long write_socket(struct ws_io_conn *c, const struct iovec *iov,
                         int cnt)
{
    if (c->tls) {
        long total = 0;
        int i;
        for (i = 0; i < cnt; i++) {
            long n;
            if (iov[i].iov_len == 0)
                continue;
            n = io_tls_write(c->tls, iov[i].iov_base, iov[i].iov_len);
            if (n == IO_TLS_WANT_WRITE || n == IO_TLS_WANT_READ) {
                c->tls_wants_read = n == IO_TLS_WANT_READ;
                return total;
            }
            if (n < 0)
                return -1;
            total += n;
            if ((size_t)n < iov[i].iov_len)
                return total;
        }
        return total;
    } else {
        struct msghdr msg;
        ssize_t n;

        memset(&msg, 0, sizeof msg);
        msg.msg_iov = (struct iovec *)iov;
        msg.msg_iovlen = (size_t)cnt;
        do {
            n = sendmsg(c->h.fd, &msg, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        return (long)n;
    }
}

/*
 * Gathered output ("cork"). While a connection's input is fed, the small
 * frames its handlers and the core send (echoes, pongs, replies) are
 * copied into one loop-wide buffer and written with one system call after
 * the input is used up, instead of one each: an echo server that reads
 * 100 pipelined messages makes one write, not 100. Larger frames are
 * written at once, as always, after what was gathered before them. The
 * gathered bytes are written before anything else can look at or end the
 * connection's output (flush_queue, maybe_finish, conn_end, broadcast).
 */
static void cork_flush(struct ws_loop *loop)
{
    struct ws_io_conn *c = loop->cork;
    const struct ws_io_options *o;
    struct iovec v;
    struct qnode *q;
    size_t high;
    long n = 0;

    if (c == NULL || loop->cork_len == 0)
        return;
    v.iov_base = loop->cork_buf;
    v.iov_len = loop->cork_len;
    loop->cork_len = 0;
    if (c->dead)
        return;
    if (c->qhead == NULL)
        n = write_now(c, &v, 1);
    if (n < 0) {
        loop->cork = NULL;      /* conn_fail must not come back here */
        conn_fail(c, WS_ERR_TRANSPORT, "write failed");
        return;
    }
    if (n > 0)
        c->last_activity = loop->now;
    if ((size_t)n == v.iov_len)
        return;
    q = new_owned_node(loop->cork_buf + n, v.iov_len - (size_t)n);
    if (q == NULL) {
        loop->cork = NULL;
        conn_fail(c, WS_ERR_NO_MEMORY, "out of memory");
        return;
    }
    enqueue(c, q);
    /* The sends that made this reported WS_OK: apply high_water now. */
    o = conn_opts(c);
    high = o->high_water ? o->high_water : WS_IO_DEFAULT_HIGH_WATER;
    if (c->queued > high)
        c->high = 1;
    update_interest(c);
}

/* Write what was gathered for c, if anything. */
static void uncork(struct ws_io_conn *c)
{
    struct ws_loop *loop = conn_loop(c);

    if (loop->cork == c && loop->cork_len > 0)
        cork_flush(loop);
}

static void check_drain(struct ws_io_conn *c)
{
    const struct ws_io_options *o = conn_opts(c);
    size_t low = o->low_water ? o->low_water : WS_IO_DEFAULT_LOW_WATER;

    if (c->high && c->queued <= low) {
        c->high = 0;
        update_interest(c);
        if (o->handlers && o->handlers->on_drain)
            o->handlers->on_drain(c, c->user);
    }
}

/* Write queued output until the socket would block. */
static void flush_queue(struct ws_io_conn *c)
{
    uncork(c);
    while (c->qhead && !c->dead) {
        struct iovec iov[MAX_IOV];
        struct qnode *q = c->qhead;
        int cnt = 0;
        long n;

        for (; q && cnt < MAX_IOV; q = q->next, cnt++) {
            iov[cnt].iov_base = (void *)(q->p + q->off);
            iov[cnt].iov_len = q->len - q->off;
        }
        n = write_now(c, iov, cnt);
        if (n < 0) {
            conn_fail(c, WS_ERR_TRANSPORT, "write failed");
            return;
        }
        if (n > 0)
            c->last_activity = conn_loop(c)->now;
        c->queued -= (size_t)n;
        while (n > 0) {
            q = c->qhead;
            if ((size_t)n < q->len - q->off) {
                q->off += (size_t)n;
                break;
            }
            n -= (long)(q->len - q->off);
            c->qhead = q->next;
            if (c->qhead == NULL)
                c->qtail = NULL;
            if (q->shared && --q->shared->refs == 0)
                free(q->shared);
            free(q);
        }
        if (c->qhead && n == 0)
            break;              /* would block */
    }
    if (c->dead)
        return;
    update_interest(c);
    check_drain(c);
    maybe_finish(c);
}

/* Above max_buffered: the peer does not read. Accept no more output,
 * queue close 1008, and let the close timeout end it if the peer never
 * reads again. What is queued stays: the queue does not know where frames
 * begin (conn_send queues the unwritten tail of a frame as a node with
 * off 0, and a frame may span several nodes), so dropping nodes could cut
 * a frame whose header is already out and corrupt the stream. Memory stays
 * bounded by max_buffered plus the one send that crossed it (that frame
 * still goes out, before the close frame, though the send reports
 * WS_ERR_CLOSED). */
static void over_limit(struct ws_io_conn *c)
{
    if (c->error == 0)
        c->error = WS_ERR_TRANSPORT;
    (void)ws_conn_close(&c->conn, WS_CLOSE_POLICY_VIOLATION,
                        "send queue limit", 16);
    c->close_code = WS_CLOSE_POLICY_VIOLATION;
    schedule(c);
}

/* The core's transport. Writes what the socket takes, queues the rest:
 * from the core's point of view every byte is always taken. */
static int conn_send(struct ws_conn *core, const struct ws_iov *iov,
                     size_t cnt, size_t *written, void *user)
{
    struct ws_io_conn *c = user;
    struct ws_loop *loop = conn_loop(c);
    size_t total = 0, done = 0, i;

    (void)core;
    for (i = 0; i < cnt; i++)
        total += iov[i].len;
    *written = total;       /* the core never sees a short write */
    if (c->dead)
        return 0;
    if (loop->cork == c) {
        if (total <= CORK_FRAME_MAX && total > CORK_SIZE - loop->cork_len)
            cork_flush(loop);
        if (c->dead)
            return 0;
        if (total <= CORK_FRAME_MAX && c->qhead == NULL &&
            !c->tcp_connecting && !c->tls_handshaking) {
            for (i = 0; i < cnt; i++) {
                if (iov[i].len > 0)
                    memcpy(loop->cork_buf + loop->cork_len, iov[i].base,
                           iov[i].len);
                loop->cork_len += iov[i].len;
            }
            return 0;
        }
        uncork(c);              /* what came before goes first */
        if (c->dead)
            return 0;
    }
    if (c->qhead == NULL && !c->tcp_connecting && !c->tls_handshaking) {
        struct iovec v[MAX_IOV];
        int k = 0;
        long n;
        for (i = 0; i < cnt && k < MAX_IOV; i++) {
            v[k].iov_base = (void *)iov[i].base;
            v[k++].iov_len = iov[i].len;
        }
        n = write_now(c, v, k);
        if (n < 0) {
            c->error = WS_ERR_TRANSPORT;
            return -1;
        }
        if (n > 0)
            c->last_activity = loop->now;
        done = (size_t)n;
    }
    /* Queue what the socket did not take. */
    for (i = 0; i < cnt; i++) {
        struct qnode *q;
        if (done >= iov[i].len) {
            done -= iov[i].len;
            continue;
        }
        q = new_owned_node(iov[i].base + done, iov[i].len - done);
        done = 0;
        if (q == NULL) {
            c->error = WS_ERR_NO_MEMORY;
            return -1;
        }
        enqueue(c, q);
    }
    if (c->qhead)
        update_interest(c);
    return 0;
}

/* After a send: backpressure bookkeeping. */
static int after_send(struct ws_io_conn *c, int rv)
{
    const struct ws_io_options *o = conn_opts(c);
    size_t high = o->high_water ? o->high_water : WS_IO_DEFAULT_HIGH_WATER;
    size_t cap = o->max_buffered ? o->max_buffered
                                 : WS_IO_DEFAULT_MAX_BUFFERED;

    if (rv == WS_ERR_TRANSPORT || rv == WS_ERR_NO_MEMORY) {
        conn_fail(c, c->error ? c->error : rv, "write failed");
        return rv;
    }
    if (rv != WS_OK)
        return rv;
    if (c->queued > cap) {
        over_limit(c);
        return WS_ERR_CLOSED;
    }
    if (c->queued > high) {
        if (!c->high) {
            c->high = 1;
            update_interest(c);     /* pause reading */
        }
        return WS_HIGH_WATER;
    }
    return WS_OK;
}

/* ------------------------------------------------------------------------ */
/* Core callbacks                                                           */
/* ------------------------------------------------------------------------ */

static void *io_realloc(void *ctx, void *p, size_t old, size_t n)
{
    (void)ctx;
    (void)old;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

static const struct ws_allocator io_allocator = {io_realloc, NULL};

/* Pick the first of our protocols that the client offered. */
static void choose_protocol(struct ws_io_conn *c, const struct ws_request *r)
{
    struct ws_slice list, tok;
    size_t pos = 0;

    if (conn_opts(c)->protocols == NULL)
        return;
    list.p = conn_opts(c)->protocols;
    list.n = strlen(list.p);
    while (ws_token_next(list, &pos, &tok) == WS_OK) {
        const char *name = c->server->names + (tok.p - list.p);
        if (tok.n == 0)
            continue;
        if (ws_request_has_protocol(r, name) &&
            ws_conn_select_protocol(&c->conn, name) == WS_OK)
            return;
    }
}

/* With trust_proxy: the last X-Forwarded-For address is the client. */
static void use_forwarded_for(struct ws_io_conn *c,
                              const struct ws_request *r)
{
    struct ws_slice v, last = {NULL, 0}, tok;
    size_t pos = 0, tpos;

    while (ws_header_find(r->headers, "X-Forwarded-For", &pos, &v) == WS_OK) {
        tpos = 0;
        while (ws_token_next(v, &tpos, &tok) == WS_OK)
            last = tok;
    }
    if (last.n > 0 && last.n < PEER_TEXT_MAX) {
        /* In place if the text exists (see ws_io_get_peer): a pointer the
         * application got from an on_http before the upgrade stays valid. */
        if (c->peer == NULL && (c->peer = malloc(PEER_TEXT_MAX)) == NULL)
            return;             /* the socket's address stays */
        memcpy(c->peer, last.p, last.n);
        c->peer[last.n] = '\0';
    }
}

static int core_request(struct ws_conn *core, const struct ws_request *r,
                        void *user)
{
    struct ws_io_conn *c = user;
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;

    (void)core;
    free_path(c);
    if (r->path.n == 1 && r->path.p[0] == '/')
        c->path = root_path;
    else
        c->path = dup_str(r->path.p, r->path.n);
    if (conn_opts(c)->trust_proxy)
        use_forwarded_for(c, r);
    choose_protocol(c, r);
    if (hd && hd->on_request)
        return hd->on_request(c, r, c->user);
    return 0;
}

static int core_open(struct ws_conn *core, void *user)
{
    struct ws_io_conn *c = user;
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;
    struct ws_loop *loop = conn_loop(c);

    (void)core;
    c->last_rx = c->last_activity = loop->now;
    if (loop->shutting_down) {
        ws_io_close(c, loop->shutdown_code, "going away", 10);
        return 0;
    }
    return hd && hd->on_open ? hd->on_open(c, c->user) : 0;
}

static int core_message(struct ws_conn *core, unsigned opcode,
                        const uint8_t *p, size_t n, void *user)
{
    struct ws_io_conn *c = user;
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;

    (void)core;
    return hd && hd->on_message ? hd->on_message(c, opcode, p, n, c->user)
                                : 0;
}

static int core_ping(struct ws_conn *core, const uint8_t *p, size_t n,
                     void *user)
{
    struct ws_io_conn *c = user;
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;

    (void)core;
    return hd && hd->on_ping ? hd->on_ping(c, p, n, c->user) : 0;
}

static int core_pong(struct ws_conn *core, const uint8_t *p, size_t n,
                     void *user)
{
    struct ws_io_conn *c = user;
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;

    (void)core;
    c->awaiting_pong = 0;
    return hd && hd->on_pong ? hd->on_pong(c, p, n, c->user) : 0;
}

static int core_close(struct ws_conn *core, unsigned code, const char *reason,
                      size_t n, void *user)
{
    struct ws_io_conn *c = user;

    (void)core;
    /* After over_limit() the 1008 we sent stays the reported code. */
    if (c->close_code == 0 || c->close_code == WS_CLOSE_ABNORMAL ||
        c->close_code == WS_CLOSE_POLICY_VIOLATION)
        set_close(c, c->close_code == WS_CLOSE_POLICY_VIOLATION
                         ? WS_CLOSE_POLICY_VIOLATION : code,
                  reason, n);
    return 0;
}

static const struct ws_callbacks io_callbacks = {
    .send = conn_send,
    .on_request = core_request,
    .on_open = core_open,
    .on_message = core_message,
    .on_ping = core_ping,
    .on_pong = core_pong,
    .on_close = core_close,
};

/* ------------------------------------------------------------------------ */
/* Input                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Above high_water a server stops reading from that peer: its input is
 * what makes output (an echo, a request), so this bounds what a peer that
 * does not read can cost. A client keeps reading: if both ends of one
 * connection paused, each would wait for the other to read and neither
 * queue could drain (a deadlock our own client and server hit when both
 * send large messages at once).
 */
static int reading_paused(const struct ws_io_conn *c)
{
    return c->high && c->server != NULL && !c->lingering;
}

static void update_interest(struct ws_io_conn *c)
{
    uint32_t ev = 0;

    if (c->dead)
        return;
    if (c->tcp_connecting) {
        ev = POLLOUT;
    } else {
        if (!reading_paused(c) || c->tls_handshaking)
            ev |= POLLIN;
        if (c->qhead || c->tls_wants_read)
            ev |= POLLOUT;
        if (c->tls_wants_read)
            ev |= POLLIN;
    }
    rewatch(conn_loop(c), &c->h, ev);
}

static int start_core(struct ws_io_conn *c)
{
    const struct ws_io_options *o = conn_opts(c);
    struct ws_config cfg;
    int rv;

    memset(&cfg, 0, sizeof cfg);
    cfg.role = c->server ? WS_ROLE_SERVER : WS_ROLE_CLIENT;
    cfg.max_message = o->max_message;
    cfg.alloc = &io_allocator;
    if (c->server) {
        cfg.response_headers = o->extra_headers;
    } else {
        cfg.request.host = c->client->host_header;
        cfg.request.path = c->path;
        cfg.request.origin = o->origin;
        cfg.request.protocols = o->protocols;
        cfg.request.extra_headers = o->extra_headers;
    }
    c->core_ready = 1;
    /* A server connection's core buffer is the loop's (see feed()). */
    rv = ws_conn_init(&c->conn, &cfg, &io_callbacks, c,
                      c->server ? c->server->loop->core_buf : c->client->buf,
                      CONN_BUF_SIZE);
    if (rv != WS_OK) {
        c->core_ready = rv == WS_ERR_TRANSPORT || rv == WS_ERR_CRYPTO;
        conn_fail(c, rv, ws_strerror(rv));
        return rv;
    }
    return WS_OK;
}

static void http_input(struct ws_io_conn *c, const uint8_t *p, size_t n);

static void feed_core(struct ws_io_conn *c, uint8_t *p, size_t n)
{
    size_t used = 0;
    int rv;

    rv = ws_conn_feed(&c->conn, p, n, &used);
    /* A handler may return the core's WS_PAUSED. This layer pauses by
     * high_water instead, and the unconsumed bytes live in the loop-wide
     * read buffer, so they must be fed now or be lost. The core moves past
     * an event before its callback runs, so each round makes progress. */
    while (rv == WS_PAUSED && !c->dead && used < n) {
        p += used;
        n -= used;
        rv = ws_conn_feed(&c->conn, p, n, &used);
    }
    if (c->dead)
        return;
    /* A failure's close code reaches us through core_close already. */
    if (rv != WS_OK && rv != WS_PAUSED && c->error == 0)
        c->error = rv;
}

static int handshaking(struct ws_io_conn *c)
{
    return ws_conn_get_state(&c->conn) == WS_STATE_CONNECTING;
}

/*
 * Server connections share one core buffer, loop->core_buf, instead of
 * holding 4 KiB each: an idle connection then costs its struct and not
 * much more (tests/bench/ECHO.md). This is safe because the core touches
 * that buffer only inside a call on the same connection:
 *  - a server's frames go out as header + payload iovecs, and conn_send
 *    always takes every byte (it queues what the socket does not), so the
 *    core never keeps output in its buffer;
 *  - the opening handshake is gathered there across calls, so a request
 *    that arrives in pieces is kept here (hbuf) instead, and each time
 *    more of it comes the core starts over and is fed all of it. The
 *    core's parser keeps no state between calls either (it parses the
 *    whole head again on each new line), so this answers exactly as
 *    feeding the pieces would: the same early 400, the same 431 at
 *    CONN_BUF_SIZE, one on_request.
 *  - once open, the core keeps bytes in its buffer only when a control
 *    frame arrives in pieces (ws_conn_buffer_busy): for as long as that
 *    lasts the connection gets a buffer of its own (own_buffer).
 * Other connections' calls cannot come in between: the loop is one
 * thread, a handler cannot feed, and sending on a server connection never
 * writes into the buffer. Client connections keep a buffer of their own
 * (they mask into it and gather the answer to their request there).
 */
static void feed_input(struct ws_io_conn *c, uint8_t *p, size_t n);

static void own_buffer(struct ws_io_conn *c)
{
    int busy;

    if (c->dead || c->server == NULL || c->http || !c->core_ready ||
        handshaking(c))
        return;
    busy = ws_conn_buffer_busy(&c->conn);
    if (busy && c->hbuf == NULL) {
        uint8_t *b = malloc(CONN_BUF_SIZE);
        if (b == NULL ||
            ws_conn_set_buffer(&c->conn, b, CONN_BUF_SIZE) != WS_OK) {
            free(b);
            conn_fail(c, WS_ERR_NO_MEMORY, "out of memory");
            return;
        }
        c->hbuf = b;
    } else if (!busy && c->hbuf != NULL) {
        (void)ws_conn_set_buffer(&c->conn, conn_loop(c)->core_buf,
                                 CONN_BUF_SIZE);
        free(c->hbuf);
        c->hbuf = NULL;
    }
}

static void feed(struct ws_io_conn *c, uint8_t *p, size_t n)
{
    feed_input(c, p, n);
    own_buffer(c);
}

static void feed_input(struct ws_io_conn *c, uint8_t *p, size_t n)
{
    size_t take;

    c->last_rx = c->last_activity = conn_loop(c)->now;
    if (c->http) {
        http_input(c, p, n);
        return;
    }
    if (c->server == NULL || !handshaking(c)) {
        feed_core(c, p, n);
        return;
    }
    if (c->hbuf == NULL) {
        /* Usually the whole request is in one read. */
        feed_core(c, p, n);
        if (!c->dead && handshaking(c) && n > 0) {
            /* Incomplete, so the core took all of it (less than
             * CONN_BUF_SIZE, or it would have answered 431). */
            c->hbuf = malloc(CONN_BUF_SIZE);
            if (c->hbuf == NULL) {
                conn_fail(c, WS_ERR_NO_MEMORY, "out of memory");
                return;
            }
            memcpy(c->hbuf, p, n);
            c->hlen = (uint16_t)n;
        }
        return;
    }
    take = n < CONN_BUF_SIZE - c->hlen ? n : CONN_BUF_SIZE - c->hlen;
    memcpy(c->hbuf + c->hlen, p, take);
    c->hlen = (uint16_t)(c->hlen + take);
    ws_conn_reset(&c->conn);
    if (start_core(c) != WS_OK || c->dead)
        return;
    feed_core(c, c->hbuf, c->hlen);
    if (c->dead || handshaking(c))
        return;
    free(c->hbuf);
    c->hbuf = NULL;
    c->hlen = 0;
    if (take < n)
        feed(c, p + take, n - take);
}

/* Read until the socket is empty (bounded, for fairness). */
static void handle_readable(struct ws_io_conn *c)
{
    struct ws_loop *loop = conn_loop(c);
    int i;

    if (c->lingering) {
        drain_input(c);
        return;
    }

    for (i = 0; i < READS_PER_EVENT && !c->dead; i++) {
        long n;
        if (c->tls) {
            n = io_tls_read(c->tls, loop->rbuf, READ_BUF_SIZE);
            if (n == IO_TLS_WANT_READ || n == IO_TLS_WANT_WRITE)
                break;
            if (n == IO_TLS_EOF)
                n = 0;
            else if (n < 0) {
                conn_fail(c, WS_ERR_TRANSPORT, io_tls_error(c->tls));
                return;
            }
        } else {
            ssize_t r;
            do {
                r = recv(c->h.fd, loop->rbuf, READ_BUF_SIZE, 0);
            } while (r < 0 && errno == EINTR);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (r < 0) {
                conn_fail(c, WS_ERR_TRANSPORT, "connection reset");
                return;
            }
            n = (long)r;
        }
        if (n == 0) {
            /* The peer closed TCP. Clean after a close handshake (or
             * between HTTP requests); otherwise abnormal (1006). */
            c->eof = 1;
            if (c->http && (c->http_phase != HTTP_WAIT || c->hlen == 0))
                conn_end(c);
            else if (c->core_ready && ws_conn_is_closed(&c->conn) &&
                ws_conn_get_error(&c->conn) == 0)
                conn_end(c);
            else
                conn_fail(c, WS_ERR_TRANSPORT,
                          "connection closed without a close frame");
            return;
        }
        c->bytes_in += (uint64_t)n;
        loop->cork = c;
        feed(c, loop->rbuf, (size_t)n);
        if (loop->cork == c)
            cork_flush(loop);
        loop->cork = NULL;
        loop->cork_len = 0;
        if (c->dead || reading_paused(c))
            break;
        if ((size_t)n < READ_BUF_SIZE && !(c->tls && io_tls_pending(c->tls)))
            break;
    }
    if (c->dead)
        return;
    maybe_finish(c);
    if (!c->dead) {
        update_interest(c);
        schedule(c);
    }
}

/* After TCP (and TLS): a WebSocket session, or, on a server with on_http,
 * first a look at the request to tell plain HTTP from an upgrade. */
static int start_session(struct ws_io_conn *c)
{
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;

    if (c->server == NULL || hd == NULL || hd->on_http == NULL)
        return start_core(c);
    c->hbuf = malloc(HTTP_BUF_SIZE);
    if (c->hbuf == NULL) {
        conn_fail(c, WS_ERR_NO_MEMORY, "out of memory");
        return WS_ERR_NO_MEMORY;
    }
    c->http = 1;
    c->http_phase = HTTP_WAIT;
    return WS_OK;
}

static void continue_tls(struct ws_io_conn *c)
{
    int rv = io_tls_handshake(c->tls);

    if (rv == IO_TLS_WANT_READ) {
        rewatch(conn_loop(c), &c->h, POLLIN);
        return;
    }
    if (rv == IO_TLS_WANT_WRITE) {
        rewatch(conn_loop(c), &c->h, POLLOUT);
        return;
    }
    if (rv < 0) {
        conn_fail(c, WS_ERR_TRANSPORT, io_tls_error(c->tls));
        return;
    }
    c->tls_handshaking = 0;
    if (start_session(c) == WS_OK && !c->dead) {
        update_interest(c);
        schedule(c);
        if (io_tls_pending(c->tls))
            handle_readable(c);
    }
}

static void start_transport(struct ws_io_conn *c, struct io_tls_ctx *tls)
{
    if (tls) {
        c->tls = io_tls_new(tls, c->h.fd, c->server != NULL,
                            c->client ? c->client->host : NULL);
        if (c->tls == NULL) {
            conn_fail(c, WS_ERR_NO_MEMORY, "cannot create a TLS session");
            return;
        }
        c->tls_handshaking = 1;
        continue_tls(c);
        return;
    }
    if (start_session(c) == WS_OK && !c->dead) {
        update_interest(c);
        schedule(c);
    }
}

static void handle_conn(struct ws_io_conn *c, uint32_t revents)
{
    if (c->tcp_connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
            err != 0) {
            conn_fail(c, WS_ERR_TRANSPORT, err ? strerror(err)
                                               : "connect failed");
            return;
        }
        c->tcp_connecting = 0;
        start_transport(c, c->client->tls);
        return;
    }
    if (c->tls_handshaking) {
        continue_tls(c);
        return;
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !reading_paused(c))
        handle_readable(c);
    else if (revents & (POLLHUP | POLLERR))
        handle_readable(c);
    if (!c->dead && (revents & POLLOUT)) {
        c->tls_wants_read = 0;
        flush_queue(c);
    }
    if (!c->dead && c->tls_wants_read && (revents & POLLIN))
        flush_queue(c);
}

/* ------------------------------------------------------------------------ */
/* Accepting                                                                */
/* ------------------------------------------------------------------------ */

/* Keep the peer's address (19 bytes, not a 128-byte sockaddr_storage or
 * its text): ws_io_get_peer() formats it if and when it is asked for. */
static void save_peer(struct ws_io_conn *c, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        memcpy(c->peer_addr, &a->sin6_addr, 16);
        c->peer_port = ntohs(a->sin6_port);
        c->peer_family = PEER_V6;
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        memcpy(c->peer_addr, &a->sin_addr, 4);
        c->peer_port = ntohs(a->sin_port);
        c->peer_family = PEER_V4;
    }
}

static void format_peer(const struct ws_io_conn *c, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];

    if (c->peer_family == PEER_V6) {
        inet_ntop(AF_INET6, c->peer_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, c->peer_port);
    } else if (c->peer_family == PEER_V4) {
        inet_ntop(AF_INET, c->peer_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, c->peer_port);
    } else {
        snprintf(out, cap, "unknown");
    }
}

/* A connection of server s, or of client cl (exactly one of them). */
static struct ws_io_conn *new_conn(struct ws_loop *loop, int fd,
                                   struct ws_server *s, struct io_client *cl)
{
    struct ws_io_conn *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->h.type = H_CONN;
    c->h.fd = fd;
    c->server = s;
    c->client = cl;
    c->user = conn_opts(c)->user;
    c->heap_idx = NOT_IN_HEAP;
    c->phase_start = c->last_rx = c->last_activity = loop->now;
    c->next = loop->conns;
    if (loop->conns)
        loop->conns->prev = c;
    loop->conns = c;
    loop->nconns++;
    return c;
}

static void accept_all(struct ws_server *s)
{
    struct ws_loop *loop = s->loop;
    int i;

    for (i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        struct ws_io_conn *c;
        int fd, one = 1;

        fd = accept(s->h.fd, (struct sockaddr *)&ss, &len);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && loop->spare_fd >= 0) {
                /* Out of descriptors: accept and drop one with the spare
                 * so the listener does not stay readable forever. */
                close(loop->spare_fd);
                fd = accept(s->h.fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            return;     /* EAGAIN, or an error the next event retries */
        }
        if (set_nonblocking(fd) < 0) {
            close(fd);
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = new_conn(loop, fd, s, NULL);
        if (c == NULL) {
            close(fd);
            continue;
        }
        save_peer(c, (struct sockaddr *)&ss);
        if (watch(loop, &c->h, POLLIN) < 0) {
            conn_fail(c, WS_ERR_TRANSPORT, "epoll_ctl failed");
            continue;
        }
        start_transport(c, s->tls);
        if (!c->dead)
            schedule(c);
    }
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */
/* ------------------------------------------------------------------------ */

static void wake(struct ws_loop *loop)
{
    uint64_t one = 1;
    ssize_t n;

    do {
        n = write(loop->wake_write_fd, &one,
                  loop->wake_write_fd == loop->wake.fd ? sizeof one : 1);
    } while (n < 0 && errno == EINTR);
}

/* Make ws_loop_run() return (any thread). */
static void request_stop(struct ws_loop *loop)
{
    pthread_mutex_lock(&loop->post_mu);
    loop->stop = 1;
    pthread_mutex_unlock(&loop->post_mu);
}

/* see ws_io.h */
int ws_loop_new(struct ws_loop **out, unsigned flags)
{
    struct ws_loop *loop;

    if (out == NULL)
        return WS_ERR_INVALID_ARG;
    *out = NULL;
    loop = calloc(1, sizeof *loop);
    if (loop == NULL)
        return WS_ERR_NO_MEMORY;
    loop->rbuf = malloc(READ_BUF_SIZE);
    loop->core_buf = malloc(CONN_BUF_SIZE);
    loop->cork_buf = malloc(CORK_SIZE);
    loop->epfd = -1;
    loop->wake.fd = -1;
    loop->wake_write_fd = -1;
    loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pthread_mutex_init(&loop->post_mu, NULL);
    loop->now = monotonic_ms();
    if (loop->rbuf == NULL || loop->core_buf == NULL ||
        loop->cork_buf == NULL) {
        ws_loop_free(loop);
        return WS_ERR_NO_MEMORY;
    }
#if HAVE_EPOLL
    if (!(flags & WS_LOOP_USE_POLL))
        loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->wake_write_fd = loop->wake.fd;
#else
    (void)flags;
#endif
    if (loop->wake.fd < 0) {
        int p[2];
        if (pipe(p) == 0) {
            set_nonblocking(p[0]);
            set_nonblocking(p[1]);
            loop->wake.fd = p[0];
            loop->wake_write_fd = p[1];
        }
    }
    loop->wake.type = H_WAKE;
    if (loop->wake.fd < 0 ||
        (HAVE_EPOLL && !(flags & WS_LOOP_USE_POLL) && loop->epfd < 0) ||
        watch(loop, &loop->wake, POLLIN) < 0) {
        ws_loop_free(loop);
        return WS_ERR_TRANSPORT;
    }
    *out = loop;
    return WS_OK;
}

/* see ws_io.h */
void ws_loop_free(struct ws_loop *loop)
{
    struct post *p;

    if (loop == NULL)
        return;
    while (loop->conns)
        conn_fail(loop->conns, WS_ERR_CLOSED, "loop freed");
    free_dead(loop);
    while (loop->servers)
        ws_server_close(loop->servers);
    while (loop->closed) {
        struct ws_server *s = loop->closed;
        loop->closed = s->next;
        if (s->tls)
            io_tls_ctx_free(s->tls);
        free(s);
    }
    while ((p = loop->posts) != NULL) {
        loop->posts = p->next;
        free(p);
    }
    while (loop->timers) {
        struct ws_timer *t = loop->timers;
        loop->timers = t->next;
        free(t);
    }
    if (signal_loop == loop)
        signal_loop = NULL;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wake_write_fd >= 0 && loop->wake_write_fd != loop->wake.fd)
        close(loop->wake_write_fd);
    if (loop->wake.fd >= 0)
        close(loop->wake.fd);
    if (loop->spare_fd >= 0)
        close(loop->spare_fd);
    pthread_mutex_destroy(&loop->post_mu);
    free(loop->heap);
    free(loop->rbuf);
    free(loop->core_buf);
    free(loop->cork_buf);
    free(loop);
}

static void run_posts(struct ws_loop *loop)
{
    struct post *p;

    pthread_mutex_lock(&loop->post_mu);
    p = loop->posts;
    loop->posts = loop->posts_tail = NULL;
    pthread_mutex_unlock(&loop->post_mu);
    while (p) {
        struct post *next = p->next;
        p->fn(loop, p->arg);
        free(p);
        p = next;
    }
}

static void handle_wake(struct ws_loop *loop)
{
    uint8_t drain[64];

    while (read(loop->wake.fd, drain, sizeof drain) > 0)
        ;
    if (loop->signalled) {
        loop->signalled = 0;
        ws_loop_shutdown(loop, WS_CLOSE_GOING_AWAY, loop->signal_timeout_ms);
    }
    run_posts(loop);
}

static void dispatch(struct ws_loop *loop, struct handle *h, uint32_t ev)
{
    if (h->type == H_WAKE)
        handle_wake(loop);
    else if (h->type == H_SERVER)
        accept_all((struct ws_server *)h);
    else if (!((struct ws_io_conn *)h)->dead)
        handle_conn((struct ws_io_conn *)h, ev);
}

static uint64_t timers_next_due(const struct ws_loop *loop);
static void run_user_timers(struct ws_loop *loop);
static int timers_active(const struct ws_loop *loop);

static int next_timeout(struct ws_loop *loop, int timeout_ms)
{
    uint64_t d = timers_next_due(loop);
    int t;

    if (loop->heap_len > 0)
        d = earliest(d, loop->heap[0]->deadline);
    if (d == 0)
        return timeout_ms;
    t = d <= loop->now ? 0 : (d - loop->now > 60000 ? 60000
                                                    : (int)(d - loop->now));
    return (timeout_ms < 0 || t < timeout_ms) ? t : timeout_ms;
}

static void run_timers(struct ws_loop *loop)
{
    int guard = 0;

    while (loop->heap_len > 0 && loop->heap[0]->deadline <= loop->now &&
           guard++ < 100000) {
        struct ws_io_conn *c = loop->heap[0];
        heap_remove(loop, c);
        on_deadline(c);
    }
}

static int wait_poll(struct ws_loop *loop, int timeout)
{
    size_t cap = 1 + loop->nconns, n = 0, i;
    struct ws_server *s;
    struct ws_io_conn *c;
    struct pollfd *pfd;
    struct handle **hs;
    int rv;

    for (s = loop->servers; s; s = s->next)
        cap++;
    pfd = malloc(cap * sizeof *pfd);
    hs = malloc(cap * sizeof *hs);
    if (pfd == NULL || hs == NULL) {
        free(pfd);
        free(hs);
        return -1;
    }
    pfd[n].fd = loop->wake.fd;
    pfd[n].events = POLLIN;
    hs[n++] = &loop->wake;
    for (s = loop->servers; s; s = s->next) {
        pfd[n].fd = s->h.fd;
        pfd[n].events = POLLIN;
        hs[n++] = &s->h;
    }
    for (c = loop->conns; c; c = c->next) {
        pfd[n].fd = c->h.fd;
        pfd[n].events = (short)c->h.events;
        hs[n++] = &c->h;
    }
    rv = poll(pfd, n, timeout);
    loop->now = monotonic_ms();
    for (i = 0; rv > 0 && i < n; i++)
        if (pfd[i].revents)
            dispatch(loop, hs[i], (uint32_t)pfd[i].revents);
    free(pfd);
    free(hs);
    return rv;
}

#if HAVE_EPOLL
static int wait_epoll(struct ws_loop *loop, int timeout)
{
    struct epoll_event ev[128];
    int n, i;

    n = epoll_wait(loop->epfd, ev, 128, timeout);
    loop->now = monotonic_ms();
    for (i = 0; i < n; i++) {
        uint32_t e = ev[i].events, pe = 0;
        if (e & EPOLLIN)
            pe |= POLLIN;
        if (e & EPOLLOUT)
            pe |= POLLOUT;
        if (e & EPOLLHUP)
            pe |= POLLHUP;
        if (e & EPOLLERR)
            pe |= POLLERR;
        dispatch(loop, ev[i].data.ptr, pe);
    }
    return n;
}
#endif

/* see ws_io.h */
int ws_loop_run_once(struct ws_loop *loop, int timeout_ms)
{
    int t;

    if (loop == NULL)
        return WS_ERR_INVALID_ARG;
    loop->now = monotonic_ms();
    t = next_timeout(loop, timeout_ms);
#if HAVE_EPOLL
    if (loop->epfd >= 0)
        (void)wait_epoll(loop, t);
    else
#endif
        (void)wait_poll(loop, t);
    run_timers(loop);
    run_user_timers(loop);
    free_dead(loop);
    if (loop->shutting_down && loop->nconns == 0)
        request_stop(loop);
    return WS_OK;
}

/* see ws_io.h */
int ws_loop_run(struct ws_loop *loop)
{
    if (loop == NULL)
        return WS_ERR_INVALID_ARG;
    for (;;) {
        int stop, posts;

        /* stop and posts are written by other threads: read them under
         * the lock. A stop requested before this call counts too. */
        pthread_mutex_lock(&loop->post_mu);
        stop = loop->stop;
        posts = loop->posts != NULL;
        loop->stop = 0;
        pthread_mutex_unlock(&loop->post_mu);
        if (stop)
            break;
        if (loop->servers == NULL && loop->conns == NULL && !posts &&
            !loop->shutting_down && !timers_active(loop))
            break;
        ws_loop_run_once(loop, -1);
    }
    return WS_OK;
}

/* see ws_io.h */
void ws_loop_stop(struct ws_loop *loop)
{
    request_stop(loop);
    wake(loop);
}

/* see ws_io.h */
int ws_loop_post(struct ws_loop *loop,
                 void (*fn)(struct ws_loop *loop, void *arg), void *arg)
{
    struct post *p;

    if (loop == NULL || fn == NULL)
        return WS_ERR_INVALID_ARG;
    p = malloc(sizeof *p);
    if (p == NULL)
        return WS_ERR_NO_MEMORY;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&loop->post_mu);
    if (loop->posts_tail)
        loop->posts_tail->next = p;
    else
        loop->posts = p;
    loop->posts_tail = p;
    pthread_mutex_unlock(&loop->post_mu);
    wake(loop);
    return WS_OK;
}

/* see ws_io.h */
uint64_t ws_loop_now(const struct ws_loop *loop)
{
    return loop->now;
}

/* see ws_io.h */
size_t ws_loop_count(const struct ws_loop *loop)
{
    return loop->nconns;
}

/* see ws_io.h */
void ws_loop_shutdown(struct ws_loop *loop, unsigned code, int timeout_ms)
{
    struct ws_io_conn *c, *next;

    if (loop->shutting_down)
        return;
    loop->shutting_down = 1;
    loop->shutdown_code = code ? code : WS_CLOSE_GOING_AWAY;
    loop->now = monotonic_ms();
    loop->shutdown_deadline = loop->now + (timeout_ms > 0 ? (uint64_t)timeout_ms
                                                          : 1u);
    while (loop->servers)
        ws_server_close(loop->servers);
    for (c = loop->conns; c; c = next) {
        next = c->next;
        if (c->core_ready && ws_conn_is_open(&c->conn))
            ws_io_close(c, loop->shutdown_code, "going away", 10);
        else if (!c->core_ready ||
                 ws_conn_get_state(&c->conn) == WS_STATE_CONNECTING)
            conn_fail(c, WS_ERR_CLOSED, "shutting down");
        if (!c->dead)
            schedule(c);
    }
    if (loop->nconns == 0)
        request_stop(loop);
}

static void on_signal(int sig)
{
    int saved = errno;      /* the interrupted code may be about to read it */

    (void)sig;
    if (signal_loop) {
        signal_loop->signalled = 1;
        wake(signal_loop);
    }
    errno = saved;
}

/* see ws_io.h */
int ws_loop_handle_signals(struct ws_loop *loop, int timeout_ms)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return WS_ERR_TRANSPORT;
    signal_loop = loop;
    loop->signal_timeout_ms = timeout_ms;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return WS_ERR_TRANSPORT;
    return WS_OK;
}

/* ------------------------------------------------------------------------ */
/* Servers                                                                  */
/* ------------------------------------------------------------------------ */

static int listen_on(const char *host, const char *port, int reuseport,
                     int backlog, unsigned *bound_port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, one = 1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef SO_REUSEPORT
        if (reuseport)
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
#else
        (void)reuseport;
#endif
        if (set_nonblocking(fd) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, backlog > 0 ? backlog : 511) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
            *bound_port = ntohs(ss.ss_family == AF_INET6
                                    ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                    : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return fd;
}

/*
 * Compute one accept key, so that the crypto library initialises now and
 * not in the first client's handshake: OpenSSL 3 takes about 1 ms and
 * 2 MiB of RSS (code and tables, once per process) on its first SHA-1.
 * A failure here shows again, and is reported, in every handshake.
 */
static void warm_up_crypto(void)
{
    char accept[WS_ACCEPT_LEN + 1];

    (void)ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
}

/* see ws_io.h */
int ws_server_listen(struct ws_loop *loop, const char *host, const char *port,
                     const struct ws_io_options *opts,
                     struct ws_server **out)
{
    struct ws_server *s;
    size_t plen = opts && opts->protocols ? strlen(opts->protocols) : 0;
    char err[256];

    if (out)
        *out = NULL;
    if (loop == NULL || port == NULL || opts == NULL ||
        (opts->tls_cert == NULL) != (opts->tls_key == NULL))
        return WS_ERR_INVALID_ARG;
    warm_up_crypto();
    s = calloc(1, sizeof *s + plen + 1);
    if (s == NULL)
        return WS_ERR_NO_MEMORY;
    s->loop = loop;
    s->opts = *opts;
    if (plen > 0) {
        struct ws_slice list, tok;
        size_t pos = 0;
        list.p = opts->protocols;
        list.n = plen;
        memcpy(s->names, list.p, plen);
        while (ws_token_next(list, &pos, &tok) == WS_OK)
            s->names[(size_t)(tok.p - list.p) + tok.n] = '\0';
    }
    s->h.type = H_SERVER;
    if (opts->tls_cert) {
        s->tls = io_tls_server_ctx(opts->tls_cert, opts->tls_key, err,
                                   sizeof err);
        if (s->tls == NULL) {
            fprintf(stderr, "libws: %s\n", err);
            free(s);
            return WS_ERR_TRANSPORT;
        }
    }
    s->h.fd = listen_on(host, port, opts->reuseport, opts->backlog, &s->port);
    if (s->h.fd < 0 || watch(loop, &s->h, POLLIN) < 0) {
        if (s->h.fd >= 0)
            close(s->h.fd);
        if (s->tls)
            io_tls_ctx_free(s->tls);
        free(s);
        return WS_ERR_TRANSPORT;
    }
    s->next = loop->servers;
    loop->servers = s;
    if (out)
        *out = s;
    return WS_OK;
}

/* see ws_io.h */
unsigned ws_server_port(const struct ws_server *s)
{
    return s->port;
}

/* see ws_io.h */
void ws_server_close(struct ws_server *s)
{
    struct ws_loop *loop = s->loop;
    struct ws_server **pp;

    for (pp = &loop->servers; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            unwatch(loop, &s->h);
            close(s->h.fd);
            s->h.fd = -1;
            /* connections keep pointing at s->opts: free it later */
            s->next = loop->closed;
            loop->closed = s;
            return;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Clients                                                                  */
/* ------------------------------------------------------------------------ */

/* ws://host[:port][/path] or wss://... Brackets around IPv6 literals. */
static int parse_url(struct io_client *c, char **path_out, const char *url)
{
    const char *p, *host, *host_end, *port = NULL, *path;
    size_t host_len;
    int tls;

    if (strncmp(url, "ws://", 5) == 0) {
        tls = 0;
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        tls = 1;
        p = url + 6;
    } else {
        return WS_ERR_INVALID_ARG;
    }
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return WS_ERR_INVALID_ARG;
        p = host_end + 1;
    } else {
        host = p;
        while (*p && *p != ':' && *p != '/' && *p != '?')
            p++;
        host_end = p;
    }
    if (*p == ':') {
        port = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == port || p - port > 5)
            return WS_ERR_INVALID_ARG;
    }
    if (*p != '\0' && *p != '/' && *p != '?')
        return WS_ERR_INVALID_ARG;
    path = *p ? p : "/";
    host_len = (size_t)(host_end - host);
    if (host_len == 0 || strchr(path, '#') != NULL)
        return WS_ERR_INVALID_ARG;
    c->is_tls = tls;
    c->host = dup_str(host, host_len);
    c->port = port ? dup_str(port, (size_t)(p - port))
                   : dup_str(tls ? "443" : "80", tls ? 3 : 2);
    if (*path == '?') {
        *path_out = malloc(strlen(path) + 2);
        if (*path_out) {
            (*path_out)[0] = '/';
            strcpy(*path_out + 1, path);
        }
    } else {
        *path_out = dup_str(path, strlen(path));
    }
    /* Host header: RFC 6455 4.1 step 4 (port only when not the default). */
    c->host_header = malloc(host_len + 16);
    if (c->host == NULL || c->port == NULL || *path_out == NULL ||
        c->host_header == NULL)
        return WS_ERR_NO_MEMORY;
    if (memchr(c->host, ':', host_len))
        snprintf(c->host_header, host_len + 16, "[%s]", c->host);
    else
        snprintf(c->host_header, host_len + 16, "%s", c->host);
    if (port)
        snprintf(c->host_header + strlen(c->host_header), 8, ":%s", c->port);
    return WS_OK;
}

/* see ws_io.h */
int ws_client_connect(struct ws_loop *loop, const char *url,
                      const struct ws_io_options *opts,
                      struct ws_io_conn **out)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct io_client *cl;
    struct ws_io_conn *c;
    char err[256], *path = NULL;
    int fd = -1, rv, one = 1;

    if (out)
        *out = NULL;
    if (loop == NULL || url == NULL || opts == NULL)
        return WS_ERR_INVALID_ARG;
    cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return WS_ERR_NO_MEMORY;
    cl->loop = loop;
    cl->opts = *opts;
    c = new_conn(loop, -1, NULL, cl);
    if (c == NULL) {
        free(cl);
        return WS_ERR_NO_MEMORY;
    }
    rv = parse_url(c->client, &path, url);
    c->path = path;
    if (rv != WS_OK)
        goto fail;
    if (c->client->is_tls) {
        c->client->tls = io_tls_client_ctx(opts->tls_ca_file,
                                           opts->tls_insecure, err,
                                           sizeof err);
        if (c->client->tls == NULL) {
            fprintf(stderr, "libws: %s\n", err);
            rv = WS_ERR_TRANSPORT;
            goto fail;
        }
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rv = WS_ERR_TRANSPORT;
    if (getaddrinfo(c->client->host, c->client->port, &hints, &res) != 0)
        goto fail;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (set_nonblocking(fd) == 0 &&
            (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
             errno == EINPROGRESS)) {
            save_peer(c, ai->ai_addr);
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        goto fail;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->h.fd = fd;
    c->tcp_connecting = 1;
    if (watch(loop, &c->h, POLLOUT) < 0)
        goto fail;
    schedule(c);
    if (out)
        *out = c;
    return WS_OK;

fail:
    /* Nothing was reported yet: undo quietly (no on_close). */
    if (c->h.fd >= 0)
        close(c->h.fd);
    c->h.fd = -1;
    c->dead = 1;
    unlink_conn(loop, c);
    conn_free(c);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Sending and getters                                                      */
/* ------------------------------------------------------------------------ */

static int io_ready(const struct ws_io_conn *c)
{
    if (c == NULL)
        return WS_ERR_INVALID_ARG;
    if (c->dead)
        return WS_ERR_CLOSED;
    if (!c->core_ready)
        return WS_ERR_BAD_STATE;
    return WS_OK;
}

/*
 * A client's frame is masked into its core buffer and handed over in
 * CONN_BUF_SIZE pieces; gathered (see cork_flush), a 1 MiB message takes
 * 16 writes instead of 256. Returns 1 if this call started gathering.
 */
static int cork_client(struct ws_io_conn *c)
{
    if (c->client == NULL || c->client->loop->cork != NULL)
        return 0;
    c->client->loop->cork = c;
    return 1;
}

static void uncork_client(struct ws_io_conn *c, int corked)
{
    struct ws_loop *loop = conn_loop(c);

    if (!corked)
        return;
    if (loop->cork == c)
        cork_flush(loop);
    loop->cork = NULL;
    loop->cork_len = 0;
}

/* see ws_io.h */
int ws_io_send_text(struct ws_io_conn *c, const char *p, size_t n)
{
    int rv = io_ready(c), corked;

    if (rv != WS_OK)
        return rv;
    corked = cork_client(c);
    rv = ws_conn_send_text(&c->conn, p, n);
    uncork_client(c, corked);
    return after_send(c, rv);
}

/* see ws_io.h */
int ws_io_send_binary(struct ws_io_conn *c, const void *p, size_t n)
{
    int rv = io_ready(c), corked;

    if (rv != WS_OK)
        return rv;
    corked = cork_client(c);
    rv = ws_conn_send_binary(&c->conn, p, n);
    uncork_client(c, corked);
    return after_send(c, rv);
}

/* see ws_io.h */
int ws_io_send_frame(struct ws_io_conn *c, unsigned opcode, int fin,
                     const void *p, size_t n)
{
    int rv = io_ready(c), corked;

    if (rv != WS_OK)
        return rv;
    corked = cork_client(c);
    rv = ws_conn_send_frame(&c->conn, opcode, fin, p, n);
    uncork_client(c, corked);
    return after_send(c, rv);
}

/* see ws_io.h */
int ws_io_send_ping(struct ws_io_conn *c, const void *p, size_t n)
{
    int rv = io_ready(c);

    if (rv != WS_OK)
        return rv;
    return after_send(c, ws_conn_send_ping(&c->conn, p, n));
}

/* see ws_io.h */
int ws_io_close(struct ws_io_conn *c, unsigned code, const char *reason,
                size_t n)
{
    int rv;

    if (c != NULL && !c->dead && c->http) {
        /* Plain HTTP: end the connection once its output is out. */
        c->http_phase = HTTP_CLOSING;
        c->http_keep_alive = 0;
        maybe_finish(c);
        return WS_OK;
    }
    rv = io_ready(c);

    if (rv != WS_OK)
        return rv;
    rv = ws_conn_close(&c->conn, code, reason, n);
    if (rv == WS_OK) {
        start_close_timer(c);
        schedule(c);
    }
    return after_send(c, rv);
}

/* see ws_io.h */
int ws_io_reject(struct ws_io_conn *c, unsigned http_status,
                 const char *reason)
{
    int rv = io_ready(c);

    if (rv != WS_OK)
        return rv;
    return ws_conn_reject(&c->conn, http_status, reason);
}

/* see ws_io.h */
int ws_io_broadcast(struct ws_io_conn *const *conns, size_t count,
                    unsigned opcode, const void *p, size_t n, size_t *sent)
{
    struct shared_frame *f = NULL;   /* header + payload, encoded once */
    struct ws_frame hdr;
    uint8_t head[WS_FRAME_HEADER_MAX];
    size_t hl, i, k = 0;
    int rv;

    if (sent)
        *sent = 0;
    if ((conns == NULL && count > 0) || (p == NULL && n > 0) ||
        (opcode != WS_OPCODE_TEXT && opcode != WS_OPCODE_BINARY))
        return WS_ERR_INVALID_ARG;
    if (opcode == WS_OPCODE_TEXT && ws_utf8_check(p, n) != WS_OK)
        return WS_ERR_INVALID_ARG;
    memset(&hdr, 0, sizeof hdr);
    hdr.fin = 1;
    hdr.opcode = opcode;
    hdr.length = n;
    rv = ws_frame_encode_header(head, sizeof head, &hdr, &hl);
    if (rv != WS_OK)
        return rv;
    for (i = 0; i < count; i++) {
        struct ws_io_conn *c = conns[i];
        struct qnode *q;
        size_t w = 0;

        /* Server frames only: they are not masked, so one encoding
         * serves every connection (RFC 6455 5.1). */
        if (c == NULL || c->dead || !c->core_ready || c->server == NULL ||
            ws_conn_can_send(&c->conn) != WS_OK)
            continue;
        uncork(c);
        if (c->dead)
            continue;
        if (c->qhead == NULL) {
            struct iovec v[2];
            long r;
            v[0].iov_base = head;
            v[0].iov_len = hl;
            v[1].iov_base = (void *)p;
            v[1].iov_len = n;
            r = write_now(c, v, 2);
            if (r < 0) {
                conn_fail(c, WS_ERR_TRANSPORT, "write failed");
                continue;
            }
            if (r > 0)          /* output counts as traffic (idle timer) */
                c->last_activity = conn_loop(c)->now;
            w = (size_t)r;
        }
        k++;
        if (w == hl + n)
            continue;
        if (f == NULL) {
            f = malloc(sizeof *f + hl + n);
            if (f == NULL) {
                conn_fail(c, WS_ERR_NO_MEMORY, "out of memory");
                continue;
            }
            f->refs = 1;            /* ours, dropped at the end */
            f->len = hl + n;
            memcpy(f->data, head, hl);
            if (n)
                memcpy(f->data + hl, p, n);
        }
        q = malloc(sizeof *q);
        if (q == NULL) {
            conn_fail(c, WS_ERR_NO_MEMORY, "out of memory");
            continue;
        }
        q->next = NULL;
        q->shared = f;
        f->refs++;
        q->p = f->data;
        q->len = f->len;
        q->off = w;
        enqueue(c, q);
        update_interest(c);
        (void)after_send(c, WS_OK);
    }
    if (f && --f->refs == 0)
        free(f);
    if (sent)
        *sent = k;
    return WS_OK;
}


/* ------------------------------------------------------------------------ */
/* Plain HTTP on the WebSocket port                                         */
/* ------------------------------------------------------------------------ */

/* Write raw bytes (HTTP head and body) through the same queue. */
static int http_send(struct ws_io_conn *c, const struct ws_iov *iov,
                     size_t cnt)
{
    const struct ws_io_options *o = conn_opts(c);
    size_t high = o->high_water ? o->high_water : WS_IO_DEFAULT_HIGH_WATER;
    size_t cap = o->max_buffered ? o->max_buffered
                                 : WS_IO_DEFAULT_MAX_BUFFERED;
    size_t w;

    if (conn_send(&c->conn, iov, cnt, &w, c) != 0) {
        conn_fail(c, c->error ? c->error : WS_ERR_TRANSPORT, "write failed");
        return WS_ERR_TRANSPORT;
    }
    if (c->queued > cap) {
        conn_fail(c, WS_ERR_TRANSPORT, "send queue limit");
        return WS_ERR_CLOSED;
    }
    if (!c->dead && c->qhead == NULL)
        maybe_finish(c);
    if (c->queued > high) {
        c->high = 1;            /* on_drain once it is below low_water */
        update_interest(c);
        return WS_HIGH_WATER;
    }
    return WS_OK;
}

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : "Error";
    }
}

/* Status line and headers; n < 0: streamed (no Content-Length). */
static int http_head(struct ws_io_conn *c, unsigned status,
                     const char *content_type, const char *extra,
                     long long n, char *out, size_t cap, size_t *len)
{
    int k = snprintf(out, cap, "HTTP/1.1 %u %s\r\n%s%s%s", status,
                     reason_phrase(status),
                     content_type ? "Content-Type: " : "",
                     content_type ? content_type : "",
                     content_type ? "\r\n" : "");
    size_t used;

    if (k < 0 || (size_t)k >= cap)
        return WS_ERR_NO_SPACE;
    used = (size_t)k;
    if (n >= 0)
        k = snprintf(out + used, cap - used, "Content-Length: %lld\r\n%s", n,
                     c->http_keep_alive ? "" : "Connection: close\r\n");
    else
        k = snprintf(out + used, cap - used, "Connection: close\r\n");
    if (k < 0 || (size_t)k >= cap - used)
        return WS_ERR_NO_SPACE;
    used += (size_t)k;
    k = snprintf(out + used, cap - used, "%s\r\n", extra ? extra : "");
    if (k < 0 || (size_t)k >= cap - used)
        return WS_ERR_NO_SPACE;
    *len = used + (size_t)k;
    return WS_OK;
}

/* A request we cannot take: answer with its status and close. */
static void http_error(struct ws_io_conn *c, unsigned status, const char *why)
{
    char out[512];
    size_t n;
    struct ws_iov iov;

    c->http_phase = HTTP_CLOSING;
    c->error = WS_ERR_HANDSHAKE;
    if (ws_handshake_write_error(out, sizeof out, status ? status : 400, why,
                                 &n) != WS_OK)
        n = 0;
    iov.base = (const uint8_t *)out;
    iov.len = n;
    (void)http_send(c, &iov, 1);
    if (!c->dead)
        maybe_finish(c);
}

/* 1 if the request lets the connection be reused (RFC 9112 9.3). */
static int wants_keep_alive(const struct ws_request *req)
{
    struct ws_slice v, tok;
    size_t pos = 0, tpos;
    int keep = req->http_major == 1 && req->http_minor >= 1;

    while (ws_header_find(req->headers, "Connection", &pos, &v) == WS_OK) {
        tpos = 0;
        while (ws_token_next(v, &tpos, &tok) == WS_OK) {
            if (tok.n == 5 && strncasecmp(tok.p, "close", 5) == 0)
                keep = 0;
            else if (tok.n == 10 && strncasecmp(tok.p, "keep-alive", 10) == 0)
                keep = 1;
        }
    }
    return keep;
}

/* Handle the buffered request heads, one at a time (pipelining). */
static void http_process(struct ws_io_conn *c)
{
    const struct ws_io_handlers *hd = conn_opts(c)->handlers;

    if (c->in_http)
        return;
    c->in_http = 1;
    while (!c->dead && c->http && c->http_phase == HTTP_WAIT && c->hlen > 0) {
        struct ws_request req;
        struct ws_slice v;
        size_t used = 0, pos = 0;
        int rv = ws_http_parse_request(&req, c->hbuf, c->hlen, HTTP_BUF_SIZE,
                                       WS_DEFAULT_MAX_HEADERS, &used);

        if (rv == WS_INCOMPLETE && c->hlen >= HTTP_BUF_SIZE)
            rv = WS_ERR_HEADER_TOO_BIG;
        if (rv == WS_INCOMPLETE)
            break;
        if (rv != WS_OK) {
            http_error(c, ws_err_http_status(rv), req.error);
            break;
        }
        if (ws_request_is_upgrade(&req)) {
            /* A WebSocket after all: the core takes the request and any
             * frames after it (the read buffer is free: the bytes were
             * copied into hbuf). */
            uint8_t *rbuf = conn_loop(c)->rbuf;
            size_t n = c->hlen;
            memcpy(rbuf, c->hbuf, n);
            free(c->hbuf);
            c->hbuf = NULL;
            c->hlen = 0;
            c->http = 0;
            if (start_core(c) == WS_OK && !c->dead) {
                c->in_http = 0;
                feed(c, rbuf, n);
                maybe_finish(c);
                return;
            }
            break;
        }
        if (req.http_major != 1) {
            http_error(c, 505, "only HTTP/1.x is spoken here");
            break;
        }
        /* Bodies are not taken (the endpoints this is for are GETs). */
        if (ws_header_find(req.headers, "Transfer-Encoding", &pos, &v) ==
                WS_OK ||
            (pos = 0, ws_header_find(req.headers, "Content-Length", &pos,
                                     &v) == WS_OK &&
                          !(v.n == 1 && v.p[0] == '0'))) {
            http_error(c, 413, "request bodies are not supported here");
            break;
        }
        c->http_keep_alive = wants_keep_alive(&req) != 0;
        c->http_phase = HTTP_PENDING;
        schedule(c);
        if (hd->on_http(c, &req, c->user) != 0 && !c->dead &&
            c->http_phase == HTTP_PENDING)
            http_error(c, 500, "the handler failed");
        if (c->dead)
            break;
        /* req pointed into hbuf: only now may it move. */
        memmove(c->hbuf, c->hbuf + used, c->hlen - used);
        c->hlen = (uint16_t)(c->hlen - used);
    }
    c->in_http = 0;
}

static void http_input(struct ws_io_conn *c, const uint8_t *p, size_t n)
{
    size_t room;

    if (c->http_phase == HTTP_STREAMING || c->http_phase == HTTP_CLOSING)
        return;                 /* nothing more is expected: drop it */
    room = HTTP_BUF_SIZE - c->hlen;
    if (n > room) {
        if (c->http_phase == HTTP_PENDING) {
            /* A pipelining client that outruns us: too much. */
            http_error(c, 431, "too many pipelined requests");
            return;
        }
        n = room;               /* the parser reports 431 */
    }
    memcpy(c->hbuf + c->hlen, p, n);
    c->hlen = (uint16_t)(c->hlen + n);
    http_process(c);
}

/* After an answer is complete: next request, or close. */
static void http_done(struct ws_io_conn *c)
{
    struct ws_loop *loop = conn_loop(c);

    if (c->http_keep_alive && !loop->shutting_down) {
        c->http_phase = HTTP_WAIT;
        c->phase_start = loop->now;     /* the request timeout restarts */
        schedule(c);
        http_process(c);
    } else {
        c->http_phase = HTTP_CLOSING;
        maybe_finish(c);
    }
}

static int http_ready(const struct ws_io_conn *c, int phase)
{
    if (c == NULL)
        return WS_ERR_INVALID_ARG;
    if (c->dead)
        return WS_ERR_CLOSED;
    if (!c->http || c->http_phase != phase)
        return WS_ERR_BAD_STATE;
    return WS_OK;
}

/* see ws_io.h */
int ws_io_http_respond(struct ws_io_conn *c, unsigned status,
                       const char *content_type, const char *extra_headers,
                       const void *body, size_t n)
{
    char head[1024];
    struct ws_iov iov[2];
    size_t hl;
    int rv = http_ready(c, HTTP_PENDING);

    if (rv != WS_OK)
        return rv;
    if (status < 100 || status > 599 || (body == NULL && n > 0))
        return WS_ERR_INVALID_ARG;
    rv = http_head(c, status, content_type, extra_headers, (long long)n, head,
                   sizeof head, &hl);
    if (rv != WS_OK)
        return WS_ERR_INVALID_ARG;
    iov[0].base = (const uint8_t *)head;
    iov[0].len = hl;
    iov[1].base = body;
    iov[1].len = n;
    c->http_phase = HTTP_STREAMING;     /* no request is pending any more */
    rv = http_send(c, iov, n ? 2 : 1);
    if (!c->dead)
        http_done(c);
    return rv;
}

/* see ws_io.h */
int ws_io_http_begin(struct ws_io_conn *c, unsigned status,
                     const char *content_type, const char *extra_headers)
{
    char head[1024];
    struct ws_iov iov;
    size_t hl;
    int rv = http_ready(c, HTTP_PENDING);

    if (rv != WS_OK)
        return rv;
    if (status < 100 || status > 599)
        return WS_ERR_INVALID_ARG;
    c->http_keep_alive = 0;             /* the body ends with the connection */
    rv = http_head(c, status, content_type, extra_headers, -1, head,
                   sizeof head, &hl);
    if (rv != WS_OK)
        return WS_ERR_INVALID_ARG;
    c->http_phase = HTTP_STREAMING;
    schedule(c);
    iov.base = (const uint8_t *)head;
    iov.len = hl;
    return http_send(c, &iov, 1);
}

/* see ws_io.h */
int ws_io_http_write(struct ws_io_conn *c, const void *p, size_t n)
{
    struct ws_iov iov;
    int rv = http_ready(c, HTTP_STREAMING);

    if (rv != WS_OK)
        return rv;
    if (p == NULL && n > 0)
        return WS_ERR_INVALID_ARG;
    if (n == 0)
        return WS_OK;
    iov.base = p;
    iov.len = n;
    return http_send(c, &iov, 1);
}

/* see ws_io.h */
int ws_io_http_end(struct ws_io_conn *c)
{
    int rv = http_ready(c, HTTP_STREAMING);

    if (rv != WS_OK)
        return rv;
    c->http_phase = HTTP_CLOSING;
    maybe_finish(c);
    return WS_OK;
}

/* see ws_io.h */
int ws_io_is_http(const struct ws_io_conn *c)
{
    return c->http;
}

/* see ws_io.h */
uint64_t ws_io_get_bytes_in(const struct ws_io_conn *c)
{
    return c->bytes_in;
}

/* see ws_io.h */
uint64_t ws_io_get_bytes_out(const struct ws_io_conn *c)
{
    return c->bytes_out;
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */
/* ------------------------------------------------------------------------ */

/* see ws_io.h */
int ws_timer_start(struct ws_loop *loop, uint32_t interval_ms, int repeat,
                   void (*fn)(struct ws_loop *loop, void *arg), void *arg,
                   struct ws_timer **out)
{
    struct ws_timer *t;

    if (out)
        *out = NULL;
    if (loop == NULL || fn == NULL || (repeat && interval_ms == 0))
        return WS_ERR_INVALID_ARG;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return WS_ERR_NO_MEMORY;
    t->loop = loop;
    t->interval = interval_ms;
    t->repeat = repeat;
    t->fn = fn;
    t->arg = arg;
    loop->now = monotonic_ms();
    t->due = loop->now + interval_ms;
    t->next = loop->timers;
    loop->timers = t;
    if (out)
        *out = t;
    return WS_OK;
}

/* see ws_io.h */
void ws_timer_set_interval(struct ws_timer *t, uint32_t interval_ms)
{
    if (t && interval_ms > 0) {
        t->interval = interval_ms;
        if (t->due > t->loop->now + interval_ms)
            t->due = t->loop->now + interval_ms;
    }
}

/* see ws_io.h */
void ws_timer_stop(struct ws_timer *t)
{
    if (t)
        t->cancelled = 1;
}

static int timers_active(const struct ws_loop *loop)
{
    const struct ws_timer *t;

    for (t = loop->timers; t; t = t->next)
        if (!t->cancelled)
            return 1;
    return 0;
}

static uint64_t timers_next_due(const struct ws_loop *loop)
{
    const struct ws_timer *t;
    uint64_t d = 0;

    for (t = loop->timers; t; t = t->next)
        if (!t->cancelled)
            d = earliest(d, t->due ? t->due : 1);
    return d;
}

static void run_user_timers(struct ws_loop *loop)
{
    struct ws_timer *t, **pp;

    for (t = loop->timers; t; t = t->next) {
        if (t->cancelled || t->due > loop->now)
            continue;
        if (t->repeat) {
            t->due += t->interval;
            if (t->due <= loop->now)
                t->due = loop->now + t->interval;   /* fell behind: skip */
        } else {
            t->cancelled = 1;
        }
        t->fn(loop, t->arg);
    }
    for (pp = &loop->timers; *pp;) {
        t = *pp;
        if (t->cancelled) {
            *pp = t->next;
            free(t);
        } else {
            pp = &t->next;
        }
    }
}

/* see ws_io.h */
size_t ws_io_get_buffered(const struct ws_io_conn *c)
{
    const struct ws_loop *loop = conn_loop(c);

    return c->queued + (loop->cork == c ? loop->cork_len : 0);
}

/* see ws_io.h */
const char *ws_io_get_peer(const struct ws_io_conn *c)
{
    /* Formatted on the first call and kept until the connection is freed,
     * so the string stays valid (on_close included). With trust_proxy it
     * gets room for an X-Forwarded-For address that may replace it. c is
     * const to the caller only: every connection is malloc'd here. */
    struct ws_io_conn *m = (struct ws_io_conn *)c;

    if (m->peer == NULL) {
        char text[PEER_TEXT_MAX];
        size_t n;
        format_peer(m, text, sizeof text);
        n = strlen(text) + 1;
        m->peer = malloc(conn_opts(m)->trust_proxy ? PEER_TEXT_MAX : n);
        if (m->peer == NULL)
            return "unknown";
        memcpy(m->peer, text, n);
    }
    return m->peer;
}

/* see ws_io.h */
const char *ws_io_get_protocol(const struct ws_io_conn *c)
{
    return c->core_ready ? ws_conn_get_protocol(&c->conn) : "";
}

/* see ws_io.h */
const char *ws_io_get_path(const struct ws_io_conn *c)
{
    return c->path ? c->path : "";
}

/* see ws_io.h */
int ws_io_get_error(const struct ws_io_conn *c)
{
    return c->error;
}

/* see ws_io.h */
struct ws_conn *ws_io_get_conn(struct ws_io_conn *c)
{
    return &c->conn;
}

/* see ws_io.h */
struct ws_loop *ws_io_get_loop(const struct ws_io_conn *c)
{
    return conn_loop(c);
}

/* see ws_io.h */
void *ws_io_get_user(const struct ws_io_conn *c)
{
    return c->user;
}

/* see ws_io.h */
void ws_io_set_user(struct ws_io_conn *c, void *user)
{
    c->user = user;
}
