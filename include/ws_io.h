/*
 * ws_io.h - libws optional I/O layer: sockets, event loop, TLS, timers.
 *
 * Built on the public core API (ws.h) only. POSIX; epoll on Linux, poll()
 * elsewhere (or when asked). Embedded users leave it out.
 *
 * Threading rule: one loop per thread. Every function here must be called
 * on the loop's thread, except ws_loop_post() and ws_loop_stop(), which any
 * thread may call to hand work to the loop (the loop wakes up at once).
 *
 * Memory: the I/O layer allocates (malloc) connections, their send queues
 * and reassembly buffers. What a connection may hold is bounded by its
 * options: max_message for input, max_buffered for output.
 *
 * Functions return WS_OK or a negative status from ws.h.
 */
#ifndef WS_IO_H
#define WS_IO_H

#include "ws.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ws_loop;      /* an event loop */
struct ws_server;    /* a listening socket */
struct ws_io_conn;   /* a connection: socket (+TLS) + struct ws_conn + queue */

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */
/* ------------------------------------------------------------------------ */

#define WS_LOOP_USE_POLL 0x1u        /* poll() even where epoll exists */

/* Create a loop. flags: WS_LOOP_USE_POLL. Returns WS_OK,
 * WS_ERR_NO_MEMORY, WS_ERR_TRANSPORT (epoll/eventfd failed). */
int ws_loop_new(struct ws_loop **out, unsigned flags);

/* Close every connection and server abruptly and free the loop. */
void ws_loop_free(struct ws_loop *loop);

/* Run until ws_loop_stop(), or until nothing is left to wait for (no
 * server, no connection, no timer). Returns WS_OK. */
int ws_loop_run(struct ws_loop *loop);

/* Wait at most timeout_ms (-1: no limit) for events, handle them, return. */
int ws_loop_run_once(struct ws_loop *loop, int timeout_ms);

/* Make ws_loop_run() return. Thread-safe. */
void ws_loop_stop(struct ws_loop *loop);

/* Run fn(loop, arg) on the loop's thread, soon. Thread-safe: this is how
 * another thread hands a message to a connection. Returns WS_OK or
 * WS_ERR_NO_MEMORY. */
int ws_loop_post(struct ws_loop *loop,
                 void (*fn)(struct ws_loop *loop, void *arg), void *arg);

/* Monotonic milliseconds, as the loop sees them. */
uint64_t ws_loop_now(const struct ws_loop *loop);

/*
 * ws_loop_shutdown - graceful stop: stop accepting, send close `code`
 * (normally 1001, going away) to every open connection, wait up to
 * timeout_ms for their close frames (or TCP close), then close what is
 * left and make ws_loop_run() return.
 */
void ws_loop_shutdown(struct ws_loop *loop, unsigned code, int timeout_ms);

/* Make SIGINT and SIGTERM call ws_loop_shutdown(loop, 1001, timeout_ms).
 * Also ignores SIGPIPE (writes use MSG_NOSIGNAL anyway). One loop per
 * process may do this. Returns WS_OK or WS_ERR_TRANSPORT. */
int ws_loop_handle_signals(struct ws_loop *loop, int timeout_ms);

/* ------------------------------------------------------------------------ */
/* Handlers and options                                                     */
/* ------------------------------------------------------------------------ */

struct ws_io_handlers {
    /* Server: a valid Upgrade request; may call ws_io_reject(). The
     * subprotocol is chosen from options.protocols before this runs
     * (ws_io_get_protocol tells which). Return 0 to go on. */
    int (*on_request)(struct ws_io_conn *c, const struct ws_request *req,
                      void *user);
    /* The connection is open. */
    int (*on_open)(struct ws_io_conn *c, void *user);
    /* A whole message (reassembled, at most max_message bytes). p is
     * valid during the call only. */
    int (*on_message)(struct ws_io_conn *c, unsigned opcode,
                      const uint8_t *p, size_t n, void *user);
    int (*on_ping)(struct ws_io_conn *c, const uint8_t *p, size_t n,
                   void *user);
    int (*on_pong)(struct ws_io_conn *c, const uint8_t *p, size_t n,
                   void *user);
    /* Output fell below low_water after ws_io_send_* returned
     * WS_HIGH_WATER (always called once per such episode). */
    void (*on_drain)(struct ws_io_conn *c, void *user);
    /* Server: a complete plain HTTP request (not a WebSocket upgrade) on
     * the same port. Answer it with ws_io_http_respond(), or stream with
     * ws_io_http_begin() + ws_io_http_write() (Server-Sent Events), now or
     * later (long polling: keep c, answer when there is news). The next
     * request on a keep-alive connection is read after the answer; a
     * connection waiting for a request is closed after
     * handshake_timeout_ms. Requests with a body get 413, HTTP/2+ 505.
     * Without on_http such requests get 400. req is valid during the call
     * only. */
    int (*on_http)(struct ws_io_conn *c, const struct ws_request *req,
                   void *user);
    /* The connection is gone (socket closed). code/reason: the peer's close
     * frame, or the code we failed with, or 1006 when the TCP connection
     * ended without a close handshake (reset, timeout, handshake failure).
     * ws_io_get_error() says why. Last callback; c is freed after it. */
    void (*on_close)(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user);
};

/* Defaults used for fields left 0. */
#define WS_IO_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define WS_IO_DEFAULT_CLOSE_TIMEOUT_MS 5000u
#define WS_IO_DEFAULT_PONG_TIMEOUT_MS 10000u
#define WS_IO_DEFAULT_HIGH_WATER (1u << 20)       /* 1 MiB */
#define WS_IO_DEFAULT_LOW_WATER (256u << 10)      /* 256 KiB */
#define WS_IO_DEFAULT_MAX_BUFFERED (16u << 20)    /* 16 MiB -> close 1008 */
#define WS_IO_TIMEOUT_OFF 0xFFFFFFFFu             /* disable a timer */

struct ws_io_options {
    const struct ws_io_handlers *handlers;
    void *user;                    /* passed to every handler */

    /* Timers, milliseconds (0: default; WS_IO_TIMEOUT_OFF: none). */
    uint32_t handshake_timeout_ms; /* whole opening handshake (10 s) */
    uint32_t ping_interval_ms;     /* send a ping after this much silence
                                      (0: off) */
    uint32_t pong_timeout_ms;      /* no pong by then: close 1006 (10 s) */
    uint32_t idle_timeout_ms;      /* no traffic at all: close 1001 (0: off) */
    uint32_t close_timeout_ms;     /* close handshake, then TCP close (5 s) */

    /* Limits. */
    uint64_t max_message;          /* 0: 16 MiB (close 1009 above) */
    size_t high_water;             /* send reports WS_HIGH_WATER above this
                                      (1 MiB); a server pauses reading */
    size_t low_water;              /* on_drain below this (256 KiB) */
    size_t max_buffered;           /* above: fail with 1008 (16 MiB) */

    /* Subprotocols: a server picks the first of these the client offers;
     * a client offers them. Comma-separated, e.g. "chat, superchat". */
    const char *protocols;
    const char *origin;            /* client: Origin header, or NULL */
    const char *extra_headers;     /* client request / server response
                                      lines, each ending in "\r\n" */

    /* TLS (wss). Server: certificate chain and key files (PEM). Client:
     * verification against the system CAs with hostname check and SNI,
     * or against tls_ca_file alone; tls_insecure skips verification. */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca_file;
    int tls_insecure;

    /* Server sockets. */
    int reuseport;                 /* SO_REUSEPORT: processes share a port */
    int trust_proxy;               /* believe X-Forwarded-For */
    int backlog;                   /* listen() backlog (0: 511) */
};

/* ------------------------------------------------------------------------ */
/* Servers and clients                                                      */
/* ------------------------------------------------------------------------ */

/*
 * ws_server_listen - listen on host:port (host "127.0.0.1", "::1", "::",
 * "0.0.0.0", or a name; port "0" picks a free one, see ws_server_port()).
 * opts is copied; its strings and handlers must outlive the server.
 * With tls_cert/tls_key set, every connection is wss.
 * Returns WS_OK, WS_ERR_INVALID_ARG, WS_ERR_TRANSPORT (bind/listen/TLS
 * setup failed: see errno / the message on stderr), WS_ERR_NO_MEMORY.
 */
int ws_server_listen(struct ws_loop *loop, const char *host, const char *port,
                     const struct ws_io_options *opts,
                     struct ws_server **out);
unsigned ws_server_port(const struct ws_server *s);
/* Stop accepting (existing connections stay). */
void ws_server_close(struct ws_server *s);

/*
 * ws_client_connect - open ws://host[:port]/path or wss://... . Resolves
 * the name (getaddrinfo, blocking), connects without blocking, runs TLS
 * and the opening handshake. on_open or on_close tells how it went.
 * Returns WS_OK (in progress), WS_ERR_INVALID_ARG (bad URL),
 * WS_ERR_TRANSPORT, WS_ERR_NO_MEMORY.
 */
int ws_client_connect(struct ws_loop *loop, const char *url,
                      const struct ws_io_options *opts,
                      struct ws_io_conn **out);

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Send. The frame is written at once when the socket takes it (server
 * frames: header + your payload with writev, no copy); whatever it does
 * not take is copied into the connection's queue. Returns:
 *   WS_OK          sent or queued
 *   WS_HIGH_WATER  queued, but the queue is above high_water: stop sending
 *                  to this peer until on_drain. A server also pauses
 *                  reading from that peer meanwhile; a client keeps
 *                  reading, so two endpoints can never wait for each other
 *   WS_ERR_CLOSED, WS_ERR_BAD_STATE, WS_ERR_INVALID_ARG, or a fatal status
 *   (above max_buffered the connection fails with 1008).
 */
int ws_io_send_text(struct ws_io_conn *c, const char *p, size_t n);
int ws_io_send_binary(struct ws_io_conn *c, const void *p, size_t n);
int ws_io_send_frame(struct ws_io_conn *c, unsigned opcode, int fin,
                     const void *p, size_t n);
int ws_io_send_ping(struct ws_io_conn *c, const void *p, size_t n);
/* Start the close handshake (see ws_conn_close). */
int ws_io_close(struct ws_io_conn *c, unsigned code, const char *reason,
                size_t n);
/* Server, from on_request: refuse with an HTTP status (e.g. 403). */
int ws_io_reject(struct ws_io_conn *c, unsigned http_status,
                 const char *reason);

/*
 * ws_io_broadcast - send one message to many connections, encoding the
 * frame once: the frame is shared by every queue it has to wait in.
 * Connections that are not open (or are client-role) are skipped.
 * *sent (if not NULL) counts the connections that got it.
 */
int ws_io_broadcast(struct ws_io_conn *const *conns, size_t count,
                    unsigned opcode, const void *p, size_t n, size_t *sent);

/* ------------------------------------------------------------------------ */
/* Plain HTTP on a WebSocket port (server, from on_http or later)           */
/* ------------------------------------------------------------------------ */

/*
 * ws_io_http_respond - answer the pending request: status line, the given
 * Content-Type (NULL: none), extra header lines (NULL, or lines each
 * ending in "\r\n"), Content-Length, and the body (copied). HTTP/1.1
 * keep-alive: the connection then waits for the next request (unless the
 * request said "Connection: close" or was HTTP/1.0).
 * Returns WS_OK, WS_HIGH_WATER, WS_ERR_BAD_STATE (no request pending),
 * WS_ERR_INVALID_ARG, or a fatal status.
 */
int ws_io_http_respond(struct ws_io_conn *c, unsigned status,
                       const char *content_type, const char *extra_headers,
                       const void *body, size_t n);
/* Start a streamed answer (no Content-Length; the body ends when the
 * connection does: ws_io_http_end or ws_io_close). For text/event-stream. */
int ws_io_http_begin(struct ws_io_conn *c, unsigned status,
                     const char *content_type, const char *extra_headers);
/* Append body bytes to a streamed answer. WS_OK, WS_HIGH_WATER (the peer
 * is slow: skip or coalesce), WS_ERR_BAD_STATE, or a fatal status (above
 * max_buffered the connection is dropped). */
int ws_io_http_write(struct ws_io_conn *c, const void *p, size_t n);
/* End a streamed answer: the connection closes once the output is out. */
int ws_io_http_end(struct ws_io_conn *c);
/* 1 if c is a plain HTTP connection (on_http), 0 if WebSocket. */
int ws_io_is_http(const struct ws_io_conn *c);

/* Bytes read from / written to the socket so far (after TLS), including
 * HTTP headers: what this connection costs on the wire. */
uint64_t ws_io_get_bytes_in(const struct ws_io_conn *c);
uint64_t ws_io_get_bytes_out(const struct ws_io_conn *c);

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */
/* ------------------------------------------------------------------------ */

struct ws_timer;

/* Run fn(loop, arg) after interval_ms, and then every interval_ms if
 * repeat. Loop thread only. Returns WS_OK, WS_ERR_INVALID_ARG,
 * WS_ERR_NO_MEMORY. A pending timer keeps ws_loop_run() running. */
int ws_timer_start(struct ws_loop *loop, uint32_t interval_ms, int repeat,
                   void (*fn)(struct ws_loop *loop, void *arg), void *arg,
                   struct ws_timer **out);
/* Change the interval of a repeating timer (from the next run on). */
void ws_timer_set_interval(struct ws_timer *t, uint32_t interval_ms);
/* Cancel a timer (also from inside its own callback). A one-shot timer
 * is gone after it ran: do not stop it then. */
void ws_timer_stop(struct ws_timer *t);

/* Bytes waiting in the connection's send queue. */
size_t ws_io_get_buffered(const struct ws_io_conn *c);
/* The peer's address as text ("127.0.0.1:54321", "[::1]:54321"); with
 * trust_proxy, the last address of X-Forwarded-For if the request had one.
 * Formatted on the first call; valid until c is freed (after on_close). */
const char *ws_io_get_peer(const struct ws_io_conn *c);
/* The negotiated subprotocol, or "". */
const char *ws_io_get_protocol(const struct ws_io_conn *c);
/* The request path (server), or the URL's path (client). */
const char *ws_io_get_path(const struct ws_io_conn *c);
/* Why the connection ended (a WS_ERR_* status), 0 if it closed cleanly. */
int ws_io_get_error(const struct ws_io_conn *c);
/* The core connection, for getters such as ws_conn_get_state(). */
struct ws_conn *ws_io_get_conn(struct ws_io_conn *c);
struct ws_loop *ws_io_get_loop(const struct ws_io_conn *c);
void *ws_io_get_user(const struct ws_io_conn *c);
void ws_io_set_user(struct ws_io_conn *c, void *user);
/* Number of connections the loop holds (all states). */
size_t ws_loop_count(const struct ws_loop *loop);

#ifdef __cplusplus
}
#endif

#endif /* WS_IO_H */
