/*
 * poll_echo.c - the libws core in your own event loop: plain poll() and
 * non-blocking sockets, many clients, no I/O layer.
 *
 * It shows the three things a loop must do for a sans-I/O connection:
 *   1. readable: recv() and hand the bytes to ws_conn_feed();
 *   2. the send callback: write what the socket takes right now and report
 *      it in *written; the core keeps the rest (in the connection's buffer,
 *      or pinned in your payload: WS_PENDING);
 *   3. writable (POLLOUT while ws_conn_wants_flush()): ws_conn_flush().
 * Backpressure: a client whose output is waiting is not read from until it
 * drains, so a peer that never reads costs a bounded amount of memory.
 *
 * Usage: poll_echo [port]   (default 9001; 127.0.0.1 only)
 */
#define _POSIX_C_SOURCE 200809L
#include <ws.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define MAX_MESSAGE (1u << 20)

struct client {
    int fd;                          /* -1: slot free */
    struct ws_conn conn;
    uint8_t buf[8192];               /* the connection's working memory */
    uint8_t *msg;                    /* reassembly buffer (whole messages) */
    uint8_t *pinned;                 /* an echo kept alive for WS_PENDING */
};

static struct client clients[MAX_CLIENTS];

/* 2. The transport: take what the socket takes now, never block. */
static int on_send(struct ws_conn *c, const struct ws_iov *iov, size_t cnt,
                   size_t *written, void *user)
{
    struct client *cl = user;
    size_t i;

    (void)c;
    *written = 0;
    for (i = 0; i < cnt; i++) {
        ssize_t n = send(cl->fd, iov[i].base, iov[i].len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;                   /* would block: the core keeps it */
        if (n < 0 && errno == EINTR)
            return 0;
        if (n < 0)
            return -1;                  /* the connection is gone */
        *written += (size_t)n;
        if ((size_t)n < iov[i].len)
            return 0;
    }
    return 0;
}

static int on_message(struct ws_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user)
{
    struct client *cl = user;
    int rv;

    /* p is only valid during this call. If the echo cannot be written or
     * buffered at once (WS_PENDING), its tail stays in OUR memory until
     * ws_conn_flush() returns WS_OK: so echo from a copy we own. */
    free(cl->pinned);
    cl->pinned = malloc(n ? n : 1);
    if (cl->pinned == NULL)
        return -1;
    memcpy(cl->pinned, p, n);
    if (opcode == WS_OPCODE_TEXT)
        rv = ws_conn_send_text(c, (const char *)cl->pinned, n);
    else
        rv = ws_conn_send_binary(c, cl->pinned, n);
    /* WS_AGAIN cannot happen here: we stop reading while output waits. */
    return rv == WS_OK || rv == WS_PENDING ? 0 : -1;
}

static const struct ws_callbacks callbacks = {
    .send = on_send,
    .on_message = on_message,
};

static void drop(struct client *cl)
{
    ws_conn_reset(&cl->conn);
    close(cl->fd);
    cl->fd = -1;
    free(cl->msg);
    free(cl->pinned);
    cl->msg = cl->pinned = NULL;
}

static void accept_client(int lfd)
{
    struct ws_config cfg = {0};
    int fd = accept(lfd, NULL, NULL), i;

    if (fd < 0)
        return;
    for (i = 0; i < MAX_CLIENTS && clients[i].fd >= 0; i++)
        ;
    if (i == MAX_CLIENTS || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        close(fd);                      /* full: refuse */
        return;
    }
    clients[i].fd = fd;
    clients[i].msg = malloc(MAX_MESSAGE);
    cfg.message_buf = clients[i].msg;
    cfg.message_buf_len = MAX_MESSAGE;
    if (clients[i].msg == NULL ||
        ws_conn_init(&clients[i].conn, &cfg, &callbacks, &clients[i],
                     clients[i].buf, sizeof clients[i].buf) != WS_OK)
        drop(&clients[i]);
}

/* 1. Readable: feed everything we read. */
static void read_client(struct client *cl)
{
    uint8_t in[16384];
    ssize_t n = recv(cl->fd, in, sizeof in, 0);
    size_t used;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {                       /* reset, or the peer closed TCP */
        drop(cl);
        return;
    }
    (void)ws_conn_feed(&cl->conn, in, (size_t)n, &used);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 9001, one = 1, lfd, i;
    struct sockaddr_in addr;

    if (argc > 2 || port <= 0 || port > 65535) {
        fprintf(stderr, "usage: poll_echo [port]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(lfd, 64) < 0) {
        perror("poll_echo");
        return 1;
    }
    for (i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    fprintf(stderr, "poll_echo: ws://127.0.0.1:%d/\n", port);
    for (;;) {
        struct pollfd pfd[1 + MAX_CLIENTS];
        int slot[1 + MAX_CLIENTS], n = 1;

        pfd[0].fd = lfd;
        pfd[0].events = POLLIN;
        for (i = 0; i < MAX_CLIENTS; i++) {
            struct client *cl = &clients[i];
            if (cl->fd < 0)
                continue;
            pfd[n].fd = cl->fd;
            /* Backpressure: while output waits, only wait for writable. */
            pfd[n].events = ws_conn_wants_flush(&cl->conn) ? POLLOUT : POLLIN;
            slot[n++] = i;
        }
        if (poll(pfd, (nfds_t)n, -1) < 0 && errno != EINTR)
            return 1;
        if (pfd[0].revents & POLLIN)
            accept_client(lfd);
        for (i = 1; i < n; i++) {
            struct client *cl = &clients[slot[i]];
            if (pfd[i].revents & POLLOUT)
                (void)ws_conn_flush(&cl->conn);    /* 3. writable */
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                read_client(cl);
            /* RFC 6455 7.1.1: after the close handshake (or a failure
             * whose close frame went out) the server closes TCP. */
            if (cl->fd >= 0 && ws_conn_is_closed(&cl->conn) &&
                !ws_conn_wants_flush(&cl->conn))
                drop(cl);
        }
    }
}
