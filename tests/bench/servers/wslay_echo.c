/*
 * wslay_echo - echo server on wslay's event API (Debian libwslay-dev), for
 * tests/bench/run_echo.sh. One thread, epoll (level-triggered),
 * non-blocking sockets, the way wslay's own examples drive it:
 *
 *   wslay_echo [--port N] [--host ADDR]
 *
 * wslay does not do the opening handshake: this file reads the Upgrade
 * request, computes Sec-WebSocket-Accept (OpenSSL SHA-1 + Base64) and
 * answers 101, then hands the socket to wslay_event_recv/send. Echoes
 * text as text and binary as binary (wslay_event_queue_msg copies the
 * message), messages up to 16 MiB; wslay answers pings and closes itself.
 * Prints "listening on HOST:PORT (wslay)" once ready; SIGTERM stops it.
 */
#define _GNU_SOURCE 1
#include <wslay/wslay.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HS_MAX 8192

struct conn {
    int fd;
    int open;                    /* handshake done: wslay owns the socket */
    wslay_event_context_ptr ctx;
    char *hs;                    /* request head until the handshake */
    size_t hs_len;
    uint32_t events;
};

static int epfd;

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user)
{
    struct conn *c = user;
    ssize_t n;

    (void)flags;
    do {
        n = recv(c->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
                                       ? WSLAY_ERR_WOULDBLOCK
                                       : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user)
{
    struct conn *c = user;
    ssize_t n;
    int f = MSG_NOSIGNAL;

    if (flags & WSLAY_MSG_MORE)
        f |= MSG_MORE;
    do {
        n = send(c->fd, data, len, f);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK
                                       ? WSLAY_ERR_WOULDBLOCK
                                       : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    struct wslay_event_msg m;

    (void)user;
    if (wslay_is_ctrl_frame(arg->opcode))
        return;                  /* ping/pong/close: wslay handles them */
    m.opcode = arg->opcode;
    m.msg = arg->msg;
    m.msg_length = arg->msg_length;
    (void)wslay_event_queue_msg(ctx, &m);
}

static const struct wslay_event_callbacks callbacks = {
    recv_cb, send_cb, NULL, NULL, NULL, NULL, on_msg,
};

static void conn_close(struct conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->ctx)
        wslay_event_context_free(c->ctx);
    free(c->hs);
    free(c);
}

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e;

    if (ev == c->events)
        return;
    c->events = ev;
    memset(&e, 0, sizeof e);
    e.events = ev;
    e.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

/* RFC 6455 4.2.2: accept = base64(sha1(key + GUID)). */
static void accept_key(const char *key, size_t n, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char in[128], md[SHA_DIGEST_LENGTH];

    memcpy(in, key, n);
    memcpy(in + n, guid, sizeof guid - 1);
    SHA1(in, n + sizeof guid - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* Find a header's value in the request head (case-insensitive name). */
static const char *find_header(const char *head, const char *name,
                               size_t *len)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p && p[2] != '\r') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (end == NULL)
            return NULL;
        if ((size_t)(end - line) > nl && line[nl] == ':' &&
            strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            *len = (size_t)(end - v);
            while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
                (*len)--;
            return v;
        }
        p = end;
    }
    return NULL;
}

/* Gather the request head; answer 101 and start wslay. 0: go on, -1: close. */
static int handshake(struct conn *c)
{
    char resp[256], acc[29];
    const char *key, *end;
    size_t klen = 0;
    ssize_t n;
    int len;

    n = recv(c->fd, c->hs + c->hs_len, HS_MAX - 1 - c->hs_len, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    c->hs_len += (size_t)n;
    c->hs[c->hs_len] = '\0';
    end = strstr(c->hs, "\r\n\r\n");
    if (end == NULL)
        return c->hs_len < HS_MAX - 1 ? 0 : -1;
    key = find_header(c->hs, "Sec-WebSocket-Key", &klen);
    if (key == NULL || klen == 0 || klen > 64)
        return -1;
    accept_key(key, klen, acc);
    len = snprintf(resp, sizeof resp,
                   "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
    if (send(c->fd, resp, (size_t)len, MSG_NOSIGNAL) != len)
        return -1;
    if (end + 4 != c->hs + c->hs_len)
        return -1;   /* frames before our answer: not from our clients */
    free(c->hs);
    c->hs = NULL;
    if (wslay_event_context_server_init(&c->ctx, &callbacks, c) != 0)
        return -1;
    wslay_event_config_set_max_recv_msg_length(c->ctx, 16u << 20);
    c->open = 1;
    return 0;
}

static void handle(struct conn *c, uint32_t ev)
{
    if (!c->open) {
        if (handshake(c) < 0)
            conn_close(c);
        return;
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
        wslay_event_recv(c->ctx) != 0) {
        conn_close(c);
        return;
    }
    if ((ev & EPOLLOUT) || wslay_event_want_write(c->ctx)) {
        if (wslay_event_send(c->ctx) != 0) {
            conn_close(c);
            return;
        }
    }
    if (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx)) {
        conn_close(c);
        return;
    }
    set_events(c, (wslay_event_want_read(c->ctx) ? EPOLLIN : 0u) |
                      (wslay_event_want_write(c->ctx) ? EPOLLOUT : 0u));
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 9002, lfd, one = 1, i;
    struct sockaddr_in sa;
    struct epoll_event e, evs[256];
    struct rlimit rl;
    struct sigaction sig;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else {
            fprintf(stderr, "usage: wslay_echo [--port N] [--host ADDR]\n");
            return 2;
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&sig, 0, sizeof sig);
    sig.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sig, NULL);
    sig.sa_handler = on_signal;
    sigaction(SIGTERM, &sig, NULL);
    sigaction(SIGINT, &sig, NULL);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(lfd, 1024) < 0) {
        perror("wslay_echo: bind/listen");
        return 1;
    }
    if (port == 0) {
        socklen_t sl = sizeof sa;
        getsockname(lfd, (struct sockaddr *)&sa, &sl);
        port = ntohs(sa.sin_port);
    }
    {
        /* As libws's server does: let OpenSSL initialise (about 2 MiB of
         * RSS, once) before listening, not in the first handshake, so
         * that the idle benchmark counts per-connection memory only. */
        char warm[29];
        accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, warm);
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN;
    e.data.ptr = NULL;               /* NULL: the listener */
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e);
    printf("listening on %s:%d (wslay)\n", host, port);
    fflush(stdout);

    while (!stop) {
        int n = epoll_wait(epfd, evs, 256, 1000);
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr != NULL) {
                handle(evs[i].data.ptr, evs[i].events);
                continue;
            }
            for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                struct conn *c;
                if (fd < 0)
                    break;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = calloc(1, sizeof *c);
                if (c != NULL)
                    c->hs = malloc(HS_MAX);
                if (c == NULL || c->hs == NULL) {
                    close(fd);
                    free(c);
                    continue;
                }
                c->fd = fd;
                c->events = EPOLLIN;
                memset(&e, 0, sizeof e);
                e.events = EPOLLIN;
                e.data.ptr = c;
                epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
            }
        }
    }
    return 0;
}
