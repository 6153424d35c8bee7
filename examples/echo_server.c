/*
 * echo_server - echoes every message back exactly (text stays text, binary
 * stays binary), answers pings, closes properly, and sends nothing else.
 * It is the target of the conformance tests and the benchmarks.
 *
 *   echo_server [--host ADDR] [--port N] [--tls CERT KEY]
 *               [--max-message BYTES] [--reuseport] [--quiet]
 *
 * Defaults: 127.0.0.1:9001, messages up to 16 MiB (the Autobahn 9.x
 * sizes), one thread, open-files limit raised to the hard limit so it can
 * hold 100,000 connections. SIGINT/SIGTERM: close 1001 to every client,
 * wait up to 2 s for their close frames, exit 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <ws_io.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: echo_server [options]\n"
            "  --host ADDR          listen address (default 127.0.0.1; :: "
            "for all IPv6+IPv4)\n"
            "  --port N             port (default 9001; 0 picks a free "
            "one)\n"
            "  --tls CERT KEY       serve wss:// with these PEM files\n"
            "  --max-message BYTES  largest message (default 16777216)\n"
            "  --reuseport          SO_REUSEPORT: several processes share "
            "the port\n"
            "  --quiet              do not log connections\n"
            "  --help               this text\n"
            "Prints 'listening on HOST:PORT' once ready. SIGINT/SIGTERM "
            "close every\nconnection with 1001 and exit 0.\n");
}

static int quiet;

static int on_message(struct ws_io_conn *c, unsigned opcode, const uint8_t *p,
                      size_t n, void *user)
{
    int rv;

    (void)user;
    if (opcode == WS_OPCODE_TEXT)
        rv = ws_io_send_text(c, (const char *)p, n);
    else
        rv = ws_io_send_binary(c, p, n);
    /* WS_HIGH_WATER: queued; reading from this peer pauses by itself
     * until its queue drains. Closing or closed: nothing to do. */
    (void)rv;
    return 0;
}

static int on_open(struct ws_io_conn *c, void *user)
{
    (void)user;
    if (!quiet)
        fprintf(stderr, "open  %s %s\n", ws_io_get_peer(c),
                ws_io_get_path(c));
    return 0;
}

static void on_close(struct ws_io_conn *c, unsigned code, const char *reason,
                     size_t n, void *user)
{
    (void)user;
    if (!quiet)
        fprintf(stderr, "close %s %u (%s) %.*s%s%s\n", ws_io_get_peer(c),
                code, ws_close_code_str(code), (int)n, reason,
                ws_io_get_error(c) ? " error: " : "",
                ws_io_get_error(c) ? ws_strerror(ws_io_get_error(c)) : "");
}

static const struct ws_io_handlers handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

/* Hold many connections: raise the soft open-files limit to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "9001";
    struct ws_io_options opts;
    struct ws_server *server;
    struct ws_loop *loop;
    int i, rv;

    memset(&opts, 0, sizeof opts);
    opts.handlers = &handlers;
    opts.max_message = 16u << 20;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = argv[++i];
        } else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            opts.tls_cert = argv[++i];
            opts.tls_key = argv[++i];
        } else if (strcmp(argv[i], "--max-message") == 0 && i + 1 < argc) {
            char *end;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end != '\0' || v == 0) {
                fprintf(stderr, "echo_server: bad --max-message\n");
                return 2;
            }
            opts.max_message = v;
        } else if (strcmp(argv[i], "--reuseport") == 0) {
            opts.reuseport = 1;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else {
            fprintf(stderr, "echo_server: unknown or incomplete option '%s'"
                            "\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    raise_fd_limit();
    if (ws_loop_new(&loop, 0) != WS_OK) {
        fprintf(stderr, "echo_server: cannot create the event loop\n");
        return 1;
    }
    rv = ws_server_listen(loop, host, port, &opts, &server);
    if (rv != WS_OK) {
        fprintf(stderr, "echo_server: cannot listen on %s:%s: %s\n", host,
                port, ws_strerror(rv));
        ws_loop_free(loop);
        return 1;
    }
    ws_loop_handle_signals(loop, 2000);
    printf("listening on %s:%u%s\n", host, ws_server_port(server),
           opts.tls_cert ? " (wss)" : "");
    fflush(stdout);
    ws_loop_run(loop);
    ws_loop_free(loop);
    return 0;
}
