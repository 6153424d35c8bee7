/*
 * core_echo.c - the libws core over a plain POSIX socket, in one page.
 *
 * An echo server: one client at a time, blocking socket, no I/O layer.
 * It shows the whole contract of the sans-I/O core: bytes from recv() go
 * into ws_conn_feed(), the send callback writes to the socket, and
 * callbacks receive messages. Usage: core_echo [port]   (default 9001)
 */
#define _POSIX_C_SOURCE 200809L
#include <ws.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The transport: write everything (a blocking socket never "would block"). */
static int on_send(struct ws_conn *c, const struct ws_iov *iov, size_t cnt,
                   size_t *written, void *user)
{
    int fd = *(int *)user;
    size_t i;

    (void)c;
    *written = 0;
    for (i = 0; i < cnt; i++) {
        size_t off = 0;
        while (off < iov[i].len) {
            ssize_t n = send(fd, iov[i].base + off, iov[i].len - off,
                             MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -1;
            off += (size_t)n;
        }
        *written += off;
    }
    return 0;
}

/* Echo each message back as it came (text stays text). */
static int on_message(struct ws_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user)
{
    (void)user;
    if (opcode == WS_OPCODE_TEXT)
        return ws_conn_send_text(c, (const char *)p, n) < 0 ? -1 : 0;
    return ws_conn_send_binary(c, p, n) < 0 ? -1 : 0;
}

static int on_close(struct ws_conn *c, unsigned code, const char *reason,
                    size_t n, void *user)
{
    (void)c;
    (void)user;
    fprintf(stderr, "closed: %u (%s) %.*s\n", code, ws_close_code_str(code),
            (int)n, reason);
    return 0;
}

static const struct ws_callbacks callbacks = {
    .send = on_send,
    .on_message = on_message,
    .on_close = on_close,
};

static void serve(int fd)
{
    static uint8_t conn_buf[8192], msg_buf[1 << 20], in[16384];
    struct ws_config cfg = {0};
    struct ws_conn c;
    size_t used;
    ssize_t n;
    int rv = WS_OK;

    cfg.message_buf = msg_buf;          /* whole messages up to 1 MiB */
    cfg.message_buf_len = sizeof msg_buf;
    if (ws_conn_init(&c, &cfg, &callbacks, &fd, conn_buf,
                     sizeof conn_buf) != WS_OK)
        return;
    while (!ws_conn_is_closed(&c) && (n = recv(fd, in, sizeof in, 0)) > 0) {
        rv = ws_conn_feed(&c, in, (size_t)n, &used);
        if (rv < 0)
            fprintf(stderr, "failed: %s (%s)\n", ws_strerror(rv),
                    ws_conn_get_reason(&c));
    }
    /* RFC 6455 7.1.1: after the close handshake the server closes TCP. */
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 9001, one = 1, lfd;
    struct sockaddr_in addr;

    if (argc > 1 && (port <= 0 || port > 65535)) {
        fprintf(stderr, "usage: core_echo [port]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
                              sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(lfd, 16) < 0) {
        perror("core_echo");
        return 1;
    }
    fprintf(stderr, "core_echo: ws://127.0.0.1:%d/\n", port);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            return 1;
        serve(fd);
        close(fd);
    }
}
