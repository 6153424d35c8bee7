/*
 * lws_echo - echo server on libwebsockets (Debian libwebsockets-dev), for
 * tests/bench/run_echo.sh. One service thread, lws's default event loop
 * (poll), the default protocol "" (any or no subprotocol):
 *
 *   lws_echo [--port N] [--rx-buffer BYTES]
 *
 * lws delivers a message in pieces of at most rx_buffer_size (default
 * 4096, lws's own default); they are appended to a per-connection buffer
 * (with LWS_PRE bytes of headroom, so the echo needs no copy) and the
 * complete message is queued. On LWS_CALLBACK_SERVER_WRITEABLE one queued
 * message is written (lws keeps what the socket did not take and sends it
 * before the next writeable callback). Text stays text, binary stays
 * binary; messages up to 16 MiB. Prints "listening on 127.0.0.1:PORT
 * (lws VERSION)" once ready; SIGTERM stops it.
 */
#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (16u << 20)

struct msg {
    struct msg *next;
    size_t len;
    int binary;
    unsigned char *buf;          /* LWS_PRE headroom + payload */
};

struct pss {
    struct msg *head, *tail;
    unsigned char *rx;           /* message being received */
    size_t rx_len, rx_cap;
    int rx_binary, in_msg;
};

static int append(struct pss *s, const void *in, size_t len)
{
    if (s->rx_len + len > MAX_MESSAGE)
        return -1;
    if (s->rx == NULL || LWS_PRE + s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 256;
        unsigned char *p;
        while (cap < LWS_PRE + s->rx_len + len)
            cap *= 2;
        p = realloc(s->rx, cap);
        if (p == NULL)
            return -1;
        s->rx = p;
        s->rx_cap = cap;
    }
    if (len)
        memcpy(s->rx + LWS_PRE + s->rx_len, in, len);
    s->rx_len += len;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len)
{
    struct pss *s = user;
    struct msg *m;

    switch (reason) {
    case LWS_CALLBACK_RECEIVE:
        if (!s->in_msg) {
            s->in_msg = 1;
            s->rx_len = 0;
            s->rx_binary = lws_frame_is_binary(wsi);
        }
        if (append(s, in, len) < 0)
            return -1;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
            break;
        s->in_msg = 0;
        m = malloc(sizeof *m);
        if (m == NULL)
            return -1;
        m->next = NULL;
        m->len = s->rx_len;
        m->binary = s->rx_binary;
        if (s->rx == NULL && append(s, "", 0) < 0)
            return -1;
        m->buf = s->rx;          /* the receive buffer becomes the echo */
        s->rx = NULL;
        s->rx_cap = s->rx_len = 0;
        if (s->tail)
            s->tail->next = m;
        else
            s->head = m;
        s->tail = m;
        lws_callback_on_writable(wsi);
        break;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        m = s->head;
        if (m == NULL)
            break;
        if (lws_write(wsi, m->buf + LWS_PRE, m->len,
                      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
            (int)m->len)
            return -1;
        s->head = m->next;
        if (s->head == NULL)
            s->tail = NULL;
        free(m->buf);
        free(m);
        if (s->head)
            lws_callback_on_writable(wsi);
        break;

    case LWS_CALLBACK_CLOSED:
        while ((m = s->head) != NULL) {
            s->head = m->next;
            free(m->buf);
            free(m);
        }
        s->tail = NULL;
        free(s->rx);
        s->rx = NULL;
        break;

    default:
        break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"", callback, sizeof(struct pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static volatile int interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;
    int port = 9003, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--rx-buffer") == 0 && i + 1 < argc)
            protocols[0].rx_buffer_size = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: lws_echo [--port N] [--rx-buffer B]\n");
            return 2;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    ctx = lws_create_context(&info);
    if (ctx == NULL) {
        fprintf(stderr, "lws_echo: cannot create the context\n");
        return 1;
    }
    printf("listening on 127.0.0.1:%d (lws %s)\n", port,
           lws_get_library_version());
    fflush(stdout);
    while (!interrupted && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
