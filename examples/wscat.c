/*
 * wscat - a WebSocket client for terminals and scripts (like websocat or
 * the node wscat), built on the I/O layer (ws_io.h).
 *
 *   wscat [options] URL            URL is ws://host[:port]/path or wss://...
 *
 * Each line read from stdin is sent as one text message (--binary: one
 * binary message), without its newline. Each message received is printed
 * on stdout: text as is followed by a newline, binary as hex followed by a
 * newline (--raw: the bytes as they are, nothing added). At the end of
 * stdin the client closes with 1000 (or --close CODE [REASON]), waits for
 * the close handshake and exits. --echo turns it into the client-role
 * conformance target: every message is sent back unchanged and the client
 * exits when the server closes.
 *
 * Threads: the loop runs on the main thread. A second thread reads stdin
 * and hands each line to the loop with ws_loop_post(), the one thread-safe
 * way in; the posted function runs on the loop thread and sends. Once the
 * connection is gone (on_close) posted lines are dropped: the connection
 * pointer is cleared on the loop thread, so no posted function can reach a
 * freed connection. The reader thread is bounded (it stops reading while
 * too many bytes are in flight or the send queue is long: see run()) and
 * is stopped and joined before the loop is freed.
 *
 * Exit status (the close code the connection ended with):
 *   0    1000 normal closure, or 1005 (a close frame without a code)
 *   1    connection, TLS or handshake failure; 1006 abnormal closure;
 *        writing stdout failed
 *   2    usage error (bad option or URL)
 *   3+N  close code 1000+N for 1001..1015 (1001 -> 4, 1002 -> 5, ...,
 *        1011 -> 14, 1015 -> 18)
 *   20   close codes 3000-4999 (registered and private use)
 *   21   any other close code
 */
#define _POSIX_C_SOURCE 200809L
#include <ws_io.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024u)         /* one read() of stdin */
#define MAX_LINE (16u << 20)             /* longer stdin lines are dropped */
#define MAX_INFLIGHT (1u << 20)          /* posted bytes not yet sent */
#define QUEUE_PAUSE (1u << 20)           /* send queue: stop reading stdin */
#define QUEUE_RESUME (256u << 10)        /* ... and start again */
#define MAX_LIST 2048                    /* --header / --subprotocol text */

enum {
    EXIT_NORMAL = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_CODE_BASE = 3,                  /* 1001..1015 -> 4..18 */
    EXIT_APP_CODE = 20,                  /* 3000..4999 */
    EXIT_OTHER_CODE = 21
};

struct options {
    const char *url;
    int binary;                          /* send lines as binary */
    int raw;                             /* print binary as raw bytes */
    int quiet;
    int echo;
    int no_stdin;
    unsigned long count;                 /* 0: no limit */
    unsigned close_code;                 /* sent at the end of stdin */
    const char *close_reason;
    const char **sends;                  /* --send TEXT, in order */
    size_t nsends;
    char headers[MAX_LIST];              /* "Name: value\r\n"... */
    char protocols[MAX_LIST];            /* "a, b" */
    struct ws_io_options io;
};

/* Shared by the loop thread and the stdin reader. */
struct wscat {
    const struct options *o;
    struct ws_loop *loop;

    /* Loop thread only. */
    struct ws_io_conn *conn;             /* NULL once on_close ran */
    int opened;
    int output_failed;
    unsigned long received;
    unsigned long line_no;               /* stdin lines handled */
    int throttled;                       /* stdin paused: queue too long */
    unsigned close_code;
    int error;
    char reason[WS_CLOSE_REASON_MAX + 1];

    /* The reader thread; mu guards the fields below it. */
    pthread_t reader;
    int reader_started;
    int stop_pipe[2];                    /* written once to stop it */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t inflight;                     /* bytes posted, not yet handled */
    int paused;                          /* = throttled, for the reader */
    int stopping;
};

/* One stdin line (or the end of stdin) on its way to the loop thread. */
struct line {
    struct wscat *w;
    int eof;
    size_t n;
    char data[];
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: wscat [options] URL\n"
        "  URL                    ws://host[:port]/path or wss://...\n"
        "Stdin lines become messages; received messages go to stdout (text\n"
        "as is, binary as hex), one per line. At the end of stdin wscat\n"
        "closes (1000) and exits when the close handshake is done.\n"
        "  --binary               send each line (no newline) as binary\n"
        "  --raw                  print binary messages as raw bytes, with\n"
        "                         no newline added\n"
        "  --send TEXT            send TEXT after connecting, before stdin\n"
        "                         (repeatable; binary with --binary)\n"
        "  --no-stdin             do not read stdin: wait for the server to\n"
        "                         close (or for --count)\n"
        "  --echo                 send every message back unchanged (same\n"
        "                         opcode), print nothing, ignore stdin, exit\n"
        "                         when the server closes\n"
        "  --count N              close (1000) after receiving N messages\n"
        "  --close CODE [REASON]  close code (and reason) used at the end\n"
        "                         of stdin (default 1000); REASON is taken\n"
        "                         if the next argument is not an option or\n"
        "                         a ws:// or wss:// URL\n"
        "  --ping SECONDS         ping after this much silence; no pong in\n"
        "                         10 s ends the connection (1006)\n"
        "  --header 'Name: value' extra request header (repeatable)\n"
        "  --subprotocol NAME     offer this subprotocol (repeatable); the\n"
        "                         one the server picks is printed\n"
        "  --origin URL           send this Origin header\n"
        "  --ca FILE              verify the server against this CA (PEM)\n"
        "                         instead of the system's\n"
        "  --insecure             do not verify the server's certificate\n"
        "  --max-message BYTES    largest message accepted (default 16 "
        "MiB)\n"
        "  --timeout SECONDS      opening handshake timeout (default 10)\n"
        "  -q, --quiet            no status lines (connected, protocol,\n"
        "                         close code) on stderr\n"
        "  -h, --help             this text\n"
        "SIGINT/SIGTERM close with 1001 (going away).\n"
        "Exit status: 0 closed with 1000 (or 1005: no code); 1 connection,\n"
        "TLS or handshake failure, or 1006 abnormal closure; 2 usage error;\n"
        "close codes 1001..1015 give 4..18 (code - 997); 3000-4999 give 20;\n"
        "any other code gives 21.\n");
}

/* ------------------------------------------------------------------------ */
/* Exit status and status lines                                             */
/* ------------------------------------------------------------------------ */

/* See the table at the top of the file. */
static int exit_status(unsigned code)
{
    if (code == WS_CLOSE_NORMAL || code == WS_CLOSE_NO_STATUS)
        return EXIT_NORMAL;
    if (code == WS_CLOSE_ABNORMAL || code == 0)
        return EXIT_FAILED;
    if (code > WS_CLOSE_NORMAL && code <= WS_CLOSE_TLS_HANDSHAKE)
        return EXIT_CODE_BASE + (int)(code - WS_CLOSE_NORMAL);
    if (code >= 3000 && code <= 4999)
        return EXIT_APP_CODE;
    return EXIT_OTHER_CODE;
}

static void status(const struct wscat *w, const char *fmt, const char *arg)
{
    if (!w->o->quiet) {
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static int print_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char buf[1024];
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        buf[k++] = digits[p[i] >> 4];
        buf[k++] = digits[p[i] & 15];
        if (k == sizeof buf) {
            if (fwrite(buf, 1, k, stdout) != k)
                return -1;
            k = 0;
        }
    }
    if (k > 0 && fwrite(buf, 1, k, stdout) != k)
        return -1;
    return 0;
}

/* Print one message; returns -1 if stdout failed (closed pipe, full disk). */
static int print_message(const struct options *o, unsigned opcode,
                         const uint8_t *p, size_t n)
{
    if (opcode == WS_OPCODE_BINARY && o->raw) {
        if (n > 0 && fwrite(p, 1, n, stdout) != n)
            return -1;
    } else if (opcode == WS_OPCODE_BINARY) {
        if (print_hex(p, n) < 0 || putchar('\n') == EOF)
            return -1;
    } else {
        if ((n > 0 && fwrite(p, 1, n, stdout) != n) || putchar('\n') == EOF)
            return -1;
    }
    return fflush(stdout) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* The stdin reader thread                                                  */
/* ------------------------------------------------------------------------ */

static void stop_reader(struct wscat *w)
{
    char one = 1;

    pthread_mutex_lock(&w->mu);
    if (!w->stopping) {
        w->stopping = 1;
        pthread_cond_signal(&w->cv);
        /* Wake the poll() too (one byte, once: it cannot block). */
        if (write(w->stop_pipe[1], &one, 1) < 0)
            perror("wscat: stop pipe");
    }
    pthread_mutex_unlock(&w->mu);
}

static void send_line(struct ws_loop *loop, void *arg);

/* Hand one line (or the end of stdin, eof = 1) to the loop thread.
 * Returns -1 if the thread should stop. */
static int post_line(struct wscat *w, const char *p, size_t n, int eof)
{
    struct line *l = malloc(sizeof *l + n);

    if (l == NULL) {
        fprintf(stderr, "wscat: out of memory reading stdin\n");
        return -1;
    }
    l->w = w;
    l->eof = eof;
    l->n = n;
    if (n > 0)
        memcpy(l->data, p, n);
    pthread_mutex_lock(&w->mu);
    w->inflight += n;
    pthread_mutex_unlock(&w->mu);
    if (ws_loop_post(w->loop, send_line, l) != WS_OK) {
        fprintf(stderr, "wscat: out of memory reading stdin\n");
        pthread_mutex_lock(&w->mu);
        w->inflight -= n;
        pthread_mutex_unlock(&w->mu);
        free(l);
        return -1;
    }
    return 0;
}

/* Wait until the loop has room for more input. Returns -1 when told to
 * stop, 0 to go on. */
static int wait_for_room(struct wscat *w)
{
    int stopping;

    pthread_mutex_lock(&w->mu);
    while (!w->stopping && (w->paused || w->inflight >= MAX_INFLIGHT))
        pthread_cond_wait(&w->cv, &w->mu);
    stopping = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return stopping ? -1 : 0;
}

/* Wait for stdin to be readable. Returns -1 when told to stop. */
static int wait_for_stdin(struct wscat *w)
{
    struct pollfd pfd[2];

    pfd[0].fd = STDIN_FILENO;
    pfd[0].events = POLLIN;
    pfd[1].fd = w->stop_pipe[0];
    pfd[1].events = POLLIN;
    for (;;) {
        pfd[0].revents = pfd[1].revents = 0;
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 0;           /* let read() report the problem */
        }
        if (pfd[1].revents)
            return -1;
        return 0;
    }
}

/*
 * Read stdin with poll(2) and read(2), not stdio, so that the thread can
 * be woken from its wait by the stop pipe and joined when the connection
 * ends, even while stdin stays open (a terminal, or a pipe from a
 * process that is still running). Lines are split here; each goes to the
 * loop as one post.
 */
static void *reader_main(void *arg)
{
    struct wscat *w = arg;
    char *buf = NULL;
    size_t len = 0, cap = 0;      /* buf[0..len): a partial line */
    int discarding = 0;           /* inside a line longer than MAX_LINE */

    for (;;) {
        size_t start = 0, scan;
        char *nl;
        ssize_t r;

        if (wait_for_room(w) < 0 || wait_for_stdin(w) < 0)
            break;
        if (cap - len < READ_CHUNK) {
            char *nb = realloc(buf, len + READ_CHUNK);
            if (nb == NULL) {
                fprintf(stderr, "wscat: out of memory reading stdin\n");
                break;
            }
            buf = nb;
            cap = len + READ_CHUNK;
        }
        do {
            r = read(STDIN_FILENO, buf + len, READ_CHUNK);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            perror("wscat: reading stdin");
        if (r <= 0) {
            /* End of stdin: a last line without a newline still counts. */
            if (len == 0 || discarding || post_line(w, buf, len, 0) == 0)
                (void)post_line(w, NULL, 0, 1);
            break;
        }
        scan = len;               /* buf[0..len) has no newline */
        len += (size_t)r;
        /* Send every complete line, then keep the rest at the front. */
        while ((nl = memchr(buf + scan, '\n', len - scan)) != NULL) {
            size_t end = (size_t)(nl - buf);
            if (!discarding && post_line(w, buf + start, end - start, 0) < 0)
                goto out;
            discarding = 0;
            start = scan = end + 1;
        }
        len -= start;
        memmove(buf, buf + start, len);
        if (len > MAX_LINE) {
            if (!discarding)
                fprintf(stderr, "wscat: a stdin line is longer than %u "
                                "bytes: not sent\n", MAX_LINE);
            discarding = 1;
            len = 0;
        }
    }
out:
    free(buf);
    return NULL;
}

static void start_reader(struct wscat *w)
{
    if (pthread_create(&w->reader, NULL, reader_main, w) != 0) {
        fprintf(stderr, "wscat: cannot start the stdin thread\n");
        (void)ws_io_close(w->conn, WS_CLOSE_GOING_AWAY, NULL, 0);
        return;
    }
    w->reader_started = 1;
}

/* ------------------------------------------------------------------------ */
/* Sending (loop thread)                                                    */
/* ------------------------------------------------------------------------ */

static int send_message(struct wscat *w, const char *p, size_t n)
{
    int rv;

    if (w->o->binary)
        rv = ws_io_send_binary(w->conn, p, n);
    else
        rv = ws_io_send_text(w->conn, p, n);
    if (rv == WS_ERR_INVALID_ARG && !w->o->binary)
        fprintf(stderr, "wscat: line %lu is not valid UTF-8: not sent "
                        "(--binary sends bytes)\n", w->line_no);
    else if (rv != WS_OK && rv != WS_HIGH_WATER && rv != WS_ERR_CLOSED)
        fprintf(stderr, "wscat: send failed: %s\n", ws_strerror(rv));
    return rv;
}

/* Posted by the reader: runs on the loop thread. */
static void send_line(struct ws_loop *loop, void *arg)
{
    struct line *l = arg;
    struct wscat *w = l->w;

    (void)loop;
    /* w->conn is NULL once on_close ran: the connection may be freed. */
    if (w->conn != NULL && l->eof) {
        const char *r = w->o->close_reason;
        (void)ws_io_close(w->conn, w->o->close_code, r, r ? strlen(r) : 0);
    } else if (w->conn != NULL) {
        w->line_no++;
        (void)send_message(w, l->data, l->n);
    }
    if (w->conn != NULL && ws_io_get_buffered(w->conn) > QUEUE_PAUSE)
        w->throttled = 1;       /* until the queue drains: see run() */
    pthread_mutex_lock(&w->mu);
    w->inflight -= l->n;
    w->paused = w->throttled;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    free(l);
}

/* ------------------------------------------------------------------------ */
/* Connection handlers (loop thread)                                        */
/* ------------------------------------------------------------------------ */

static int on_open(struct ws_io_conn *c, void *user)
{
    struct wscat *w = user;
    const struct options *o = w->o;
    size_t i;

    w->opened = 1;
    status(w, "connected to %s", o->url);
    if (o->protocols[0] != '\0') {
        const char *p = ws_io_get_protocol(c);
        status(w, "protocol: %s", *p ? p : "none");
    }
    for (i = 0; i < o->nsends; i++)
        if (send_message(w, o->sends[i], strlen(o->sends[i])) ==
            WS_ERR_INVALID_ARG)
            break;
    if (!o->no_stdin && !o->echo)
        start_reader(w);
    return 0;
}

static int on_message(struct ws_io_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user)
{
    struct wscat *w = user;
    const struct options *o = w->o;

    if (o->count != 0 && w->received >= o->count)
        return 0;               /* arrived after our close: not counted */
    w->received++;
    if (o->echo) {
        /* WS_HIGH_WATER: reading pauses by itself until the queue drains;
         * WS_ERR_CLOSED: we are closing, nothing to echo to. */
        if (opcode == WS_OPCODE_TEXT)
            (void)ws_io_send_text(c, (const char *)p, n);
        else
            (void)ws_io_send_binary(c, p, n);
    } else if (!w->output_failed && print_message(o, opcode, p, n) < 0) {
        perror("wscat: writing stdout");
        w->output_failed = 1;
        (void)ws_io_close(c, WS_CLOSE_GOING_AWAY, NULL, 0);
        return 0;
    }
    if (o->count != 0 && w->received == o->count)
        (void)ws_io_close(c, WS_CLOSE_NORMAL, NULL, 0);
    return 0;
}

/* WS_ERR_TRANSPORT's message is about the core's send callback; here it
 * means the socket or TLS failed. */
static const char *describe(int error)
{
    if (error == 0)
        return "connection closed";
    if (error == WS_ERR_TRANSPORT)
        return "network or TLS error";
    return ws_strerror(error);
}

static void on_close(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    struct wscat *w = user;
    const char *why;

    w->conn = NULL;             /* posted lines must not touch c now */
    w->close_code = code;
    w->error = ws_io_get_error(c);
    n = n < WS_CLOSE_REASON_MAX ? n : WS_CLOSE_REASON_MAX;
    memcpy(w->reason, reason, n);
    w->reason[n] = '\0';
    /* The core's account of a failure (e.g. "server did not answer
     * 101") says more than the I/O layer's reason, which may be empty. */
    why = ws_conn_get_reason(ws_io_get_conn(c));
    if (*why == '\0')
        why = w->reason;
    if (!w->opened) {
        fprintf(stderr, "wscat: cannot connect to %s: %s%s%s\n", w->o->url,
                describe(w->error), *why ? ": " : "", why);
    } else {
        if (!w->o->quiet)
            fprintf(stderr, "closed: %u%s%s\n", code, n ? " " : "",
                    w->reason);
        if (w->error != 0)
            fprintf(stderr, "wscat: connection failed: %s%s%s\n",
                    describe(w->error), *why ? ": " : "", why);
    }
    stop_reader(w);
}

static const struct ws_io_handlers handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

static int bad(const char *what, const char *arg)
{
    fprintf(stderr, "wscat: %s: '%s'\n", what, arg);
    return -1;
}

static int parse_ulong(const char *s, unsigned long long max,
                       unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Seconds (fractions allowed) to milliseconds, 1 ms .. ~49 days. */
static int parse_seconds(const char *s, uint32_t *ms)
{
    char *end;
    double v;

    if ((*s < '0' || *s > '9') && *s != '.')
        return -1;
    v = strtod(s, &end);
    if (*end != '\0' || v * 1000.0 < 1.0 || v * 1000.0 >= 4.0e9)
        return -1;
    *ms = (uint32_t)(v * 1000.0);
    return 0;
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* Append to a fixed list buffer. */
static int append(char *list, const char *a, const char *b, const char *c)
{
    size_t have = strlen(list);
    size_t need = strlen(a) + strlen(b) + strlen(c);

    if (have + need + 1 > MAX_LIST)
        return -1;
    memcpy(list + have, a, strlen(a));
    memcpy(list + have + strlen(a), b, strlen(b));
    memcpy(list + have + strlen(a) + strlen(b), c, strlen(c) + 1);
    return 0;
}

/* "Name: value": a token name (RFC 7230 3.2.6), no CR or LF anywhere. */
static int add_header(struct options *o, const char *h)
{
    const char *colon = strchr(h, ':');
    const char *p;

    if (has_crlf(h))
        return bad("a header may not contain CR or LF", h);
    if (colon == NULL || colon == h)
        return bad("a header must look like 'Name: value'", h);
    for (p = h; p < colon; p++)
        if (*p <= ' ' || *p >= 127 || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return bad("bad header name", h);
    if (append(o->headers, h, "\r\n", "") < 0)
        return bad("too many headers", h);
    return 0;
}

/* A subprotocol is an HTTP token (RFC 6455 4.1, 11.3.4). */
static int add_protocol(struct options *o, const char *name)
{
    const char *p;

    if (*name == '\0' || strlen(name) > 63)
        return bad("a subprotocol must be 1 to 63 characters", name);
    for (p = name; *p; p++)
        if (*p <= ' ' || *p >= 127 || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return bad("a subprotocol must be a token", name);
    if (append(o->protocols, o->protocols[0] ? ", " : "", name, "") < 0)
        return bad("too many subprotocols", name);
    return 0;
}

static int is_url(const char *s)
{
    return strncmp(s, "ws://", 5) == 0 || strncmp(s, "wss://", 6) == 0;
}

/* Returns 0, 1 for --help, -1 for a usage error. */
static int parse_args(struct options *o, int argc, char **argv)
{
    unsigned long long v;
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return 1;
        } else if (strcmp(a, "--binary") == 0) {
            o->binary = 1;
        } else if (strcmp(a, "--raw") == 0) {
            o->raw = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--echo") == 0) {
            o->echo = 1;
        } else if (strcmp(a, "--no-stdin") == 0) {
            o->no_stdin = 1;
        } else if (strcmp(a, "--insecure") == 0) {
            o->io.tls_insecure = 1;
        } else if (strcmp(a, "--send") == 0 && more) {
            o->sends[o->nsends++] = argv[++i];
        } else if (strcmp(a, "--count") == 0 && more) {
            if (parse_ulong(argv[++i], (unsigned long)-1, &v) < 0)
                return bad("--count needs a number > 0", argv[i]);
            o->count = (unsigned long)v;
        } else if (strcmp(a, "--close") == 0 && more) {
            if (parse_ulong(argv[++i], 4999, &v) < 0 ||
                !ws_close_code_is_valid((unsigned)v))
                return bad("--close needs a code one may send (1000-1003, "
                           "1007-1014, 3000-4999)", argv[i]);
            o->close_code = (unsigned)v;
            if (i + 1 < argc && argv[i + 1][0] != '-' && !is_url(argv[i + 1])) {
                o->close_reason = argv[++i];
                if (strlen(o->close_reason) > WS_CLOSE_REASON_MAX ||
                    ws_utf8_check((const uint8_t *)o->close_reason,
                                  strlen(o->close_reason)) != WS_OK)
                    return bad("a close reason must be UTF-8, at most 123 "
                               "bytes", o->close_reason);
            }
        } else if (strcmp(a, "--ping") == 0 && more) {
            if (parse_seconds(argv[++i], &o->io.ping_interval_ms) < 0)
                return bad("--ping needs seconds > 0", argv[i]);
        } else if (strcmp(a, "--timeout") == 0 && more) {
            if (parse_seconds(argv[++i], &o->io.handshake_timeout_ms) < 0)
                return bad("--timeout needs seconds > 0", argv[i]);
        } else if (strcmp(a, "--max-message") == 0 && more) {
            if (parse_ulong(argv[++i], (unsigned long long)SIZE_MAX / 4,
                            &v) < 0)
                return bad("--max-message needs a byte count > 0", argv[i]);
            o->io.max_message = v;
        } else if (strcmp(a, "--header") == 0 && more) {
            if (add_header(o, argv[++i]) < 0)
                return -1;
        } else if (strcmp(a, "--subprotocol") == 0 && more) {
            if (add_protocol(o, argv[++i]) < 0)
                return -1;
        } else if (strcmp(a, "--origin") == 0 && more) {
            o->io.origin = argv[++i];
            if (has_crlf(o->io.origin) || *o->io.origin == '\0')
                return bad("bad --origin", o->io.origin);
        } else if (strcmp(a, "--ca") == 0 && more) {
            o->io.tls_ca_file = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return bad("unknown option, or its argument is missing", a);
        } else if (o->url == NULL) {
            o->url = a;
        } else {
            return bad("only one URL, please", a);
        }
    }
    if (o->url == NULL) {
        fprintf(stderr, "wscat: no URL given\n");
        return -1;
    }
    if (!is_url(o->url))
        return bad("the URL must start with ws:// or wss://", o->url);
    if (o->echo && (o->nsends > 0 || o->binary || o->raw))
        fprintf(stderr, "wscat: --echo ignores --send, --binary and "
                        "--raw\n");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * ws_loop_run(), plus stdin flow control. Stdin stops being read while
 * the send queue is above QUEUE_PAUSE and starts again below
 * QUEUE_RESUME; the queue is checked after every batch of events.
 *
 * Why not WS_HIGH_WATER and on_drain: above high_water the I/O layer also
 * stops reading from the peer. Against an echoing peer that applies the
 * same backpressure (echo_server) both sides would then stop reading at
 * once and never drain: a deadlock. So outside --echo high_water is set
 * out of reach (main) and the replies keep being read and printed while
 * stdin waits.
 */
static void run(struct wscat *w)
{
    while (w->conn != NULL) {
        (void)ws_loop_run_once(w->loop, -1);
        if (w->throttled &&
            (w->conn == NULL || ws_io_get_buffered(w->conn) <= QUEUE_RESUME)) {
            w->throttled = 0;
            pthread_mutex_lock(&w->mu);
            w->paused = 0;
            pthread_cond_signal(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
    }
}

int main(int argc, char **argv)
{
    static struct options o;
    static struct wscat w;
    size_t big;
    int rv;

    o.close_code = WS_CLOSE_NORMAL;
    o.sends = calloc((size_t)argc, sizeof *o.sends);
    if (o.sends == NULL) {
        fprintf(stderr, "wscat: out of memory\n");
        return EXIT_FAILED;
    }
    rv = parse_args(&o, argc, argv);
    if (rv != 0) {
        usage(rv > 0 ? stdout : stderr);
        free(o.sends);
        return rv > 0 ? EXIT_NORMAL : EXIT_USAGE;
    }
    o.io.handlers = &handlers;
    o.io.user = &w;
    o.io.protocols = o.protocols[0] ? o.protocols : NULL;
    o.io.extra_headers = o.headers[0] ? o.headers : NULL;
    /* A queue must hold the largest message we may send (a stdin line or
     * an echo) on top of the high-water mark, or a big send would fail
     * the connection with 1008. */
    big = o.io.max_message > MAX_LINE ? (size_t)o.io.max_message : MAX_LINE;
    o.io.max_buffered = 2 * big + WS_IO_DEFAULT_HIGH_WATER;
    /* --echo: pausing reads while our echoes queue up is the right
     * backpressure. Otherwise stdin is what we throttle (see run()). */
    if (!o.echo)
        o.io.high_water = o.io.max_buffered;

    w.o = &o;
    w.close_code = WS_CLOSE_ABNORMAL;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if (pipe(w.stop_pipe) < 0) {
        perror("wscat: pipe");
        return EXIT_FAILED;
    }
    if (ws_loop_new(&w.loop, 0) != WS_OK) {
        fprintf(stderr, "wscat: cannot create the event loop\n");
        return EXIT_FAILED;
    }
    (void)ws_loop_handle_signals(w.loop, 2000);
    rv = ws_client_connect(w.loop, o.url, &o.io, &w.conn);
    if (rv != WS_OK) {
        fprintf(stderr, "wscat: cannot connect to %s: %s%s\n", o.url,
                ws_strerror(rv),
                rv == WS_ERR_INVALID_ARG ? " (bad URL)" : "");
        ws_loop_free(w.loop);
        free(o.sends);
        return rv == WS_ERR_INVALID_ARG ? EXIT_USAGE : EXIT_FAILED;
    }
    run(&w);

    /* The connection is gone: stop the reader, then run what it posted
     * meanwhile (those posts see w.conn == NULL and just free the line). */
    stop_reader(&w);
    if (w.reader_started)
        pthread_join(w.reader, NULL);
    (void)ws_loop_run_once(w.loop, 0);
    ws_loop_free(w.loop);
    close(w.stop_pipe[0]);
    close(w.stop_pipe[1]);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    free(o.sends);

    if (fflush(stdout) != 0)
        w.output_failed = 1;
    if (!w.opened || w.output_failed)
        return EXIT_FAILED;
    return exit_status(w.close_code);
}
