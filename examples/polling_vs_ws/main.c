/*
 * polling_vs_ws - one server publishing a ticking stock price over short
 * polling, long polling, Server-Sent Events and WebSocket at once, with a
 * page that shows them side by side and what each costs on the wire
 * (pvw.h has the protocol; server.c the server; bench.c the benchmark).
 *
 *   polling_vs_ws [--host H] [--port N] [--rate R] [--www DIR] [--quiet]
 *   polling_vs_ws --bench ...      the benchmark (see --bench --help)
 *
 * Defaults: 127.0.0.1:8080, 10 updates per second, the page from
 * examples/polling_vs_ws/www (relative to the current directory, so run it
 * from the repository root), else from the directory compiled in with
 * -DPVW_WWW_DIR="...". Prints "polling_vs_ws: open http://HOST:PORT/"
 * once it serves. SIGINT/SIGTERM: close every connection (WebSocket with
 * 1001), print the counters (unless --quiet) and exit 0.
 *
 * Exit codes: 0 clean stop, 1 cannot serve (e.g. the port is taken),
 * 2 bad usage.
 */
#define _POSIX_C_SOURCE 200809L
#include "pvw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define DEFAULT_WWW "examples/polling_vs_ws/www"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: polling_vs_ws [options]\n"
            "       polling_vs_ws --bench [benchmark options]\n"
            "  --host ADDR   listen address (default 127.0.0.1; :: for all "
            "IPv6+IPv4)\n"
            "  --port N      port (default 8080; 0 picks a free one)\n"
            "  --rate R      updates per second, 0.1 to 1000 (default 10)\n"
            "  --www DIR     the page: index.html, app.js, style.css "
            "(default\n"
            "                " DEFAULT_WWW " from the current "
            "directory)\n"
            "  --seed N      the same price walk on every run (also "
            "PVW_SEED=N)\n"
            "  --quiet       print only the ready line and errors\n"
            "  --bench ...   run the benchmark instead (--bench --help)\n"
            "  --help        this text\n"
            "Endpoints: / (the page), /poll?since=N, /longpoll?since=N, "
            "/events,\n/ws, /stats. Prints 'polling_vs_ws: open "
            "http://HOST:PORT/' once ready.\nSIGINT/SIGTERM stop it "
            "cleanly (exit 0).\n");
}

/* Hold many idle clients: raise the soft open-files limit to the hard
 * one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *default_www(void)
{
#ifdef PVW_WWW_DIR
    if (!is_dir(DEFAULT_WWW) && is_dir(PVW_WWW_DIR))
        return PVW_WWW_DIR;
#endif
    return DEFAULT_WWW;
}

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    return *s != '\0' && *end == '\0' && v >= 0 && v <= 65535;
}

static void print_counters(struct pvw_server *s)
{
    static const char *const names[PVW_NTRANS] = {"poll", "longpoll", "sse",
                                                  "ws"};
    struct pvw_counters c[PVW_NTRANS];
    int t;

    pvw_server_counters(s, c);
    fprintf(stderr, "polling_vs_ws: %-9s %9s %12s %12s %9s %12s\n",
            "transport", "requests", "bytes in", "bytes out", "updates",
            "bytes/update");
    for (t = 0; t < PVW_NTRANS; t++) {
        uint64_t total = c[t].bytes_in + c[t].bytes_out;
        fprintf(stderr, "polling_vs_ws: %-9s %9llu %12llu %12llu %9llu ",
                names[t], (unsigned long long)c[t].requests,
                (unsigned long long)c[t].bytes_in,
                (unsigned long long)c[t].bytes_out,
                (unsigned long long)c[t].updates);
        if (c[t].updates)
            fprintf(stderr, "%12.1f\n",
                    (double)total / (double)c[t].updates);
        else
            fprintf(stderr, "%12s\n", "-");
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "8080", *www = NULL;
    double rate = 10.0;
    int i, rv, quiet = 0;
    struct ws_loop *loop;
    struct pvw_server *server;

    /* The benchmark takes the whole command line (argv[0] and --bench
     * included) and parses it itself. */
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--bench") == 0)
            return pvw_bench_main(argc, argv);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = argv[++i];
            if (!parse_port(port)) {
                fprintf(stderr, "polling_vs_ws: bad --port '%s'\n", port);
                return 2;
            }
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            char *end;
            rate = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(rate >= 0.1) ||
                rate > 1000.0) {
                fprintf(stderr, "polling_vs_ws: --rate must be 0.1 to "
                                "1000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--www") == 0 && i + 1 < argc) {
            www = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strspn(v, "0123456789") != strlen(v) || strlen(v) == 0 ||
                strlen(v) > 18) {
                fprintf(stderr, "polling_vs_ws: bad --seed '%s'\n", v);
                return 2;
            }
            if (setenv("PVW_SEED", v, 1) != 0) {
                fprintf(stderr, "polling_vs_ws: cannot set the seed\n");
                return 1;
            }
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = 1;
        } else {
            fprintf(stderr, "polling_vs_ws: unknown or incomplete option "
                            "'%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (www == NULL)
        www = default_www();
    if (!is_dir(www) && !quiet)
        fprintf(stderr, "polling_vs_ws: no page directory '%s' (use --www "
                        "DIR); the endpoints still work\n", www);

    raise_fd_limit();
    if (ws_loop_new(&loop, 0) != WS_OK) {
        fprintf(stderr, "polling_vs_ws: cannot create the event loop\n");
        return 1;
    }
    errno = 0;
    rv = pvw_server_start(loop, host, port, rate, www, &server);
    if (rv != WS_OK) {
        /* A bind or listen failure is WS_ERR_TRANSPORT; errno says why. */
        fprintf(stderr, "polling_vs_ws: cannot serve on %s:%s: %s\n", host,
                port, rv == WS_ERR_TRANSPORT && errno ? strerror(errno)
                                                      : ws_strerror(rv));
        ws_loop_free(loop);
        return 1;
    }
    if (ws_loop_handle_signals(loop, 2000) != WS_OK) {
        fprintf(stderr, "polling_vs_ws: cannot handle signals\n");
        pvw_server_stop(server);
        ws_loop_free(loop);
        return 1;
    }
    printf("polling_vs_ws: open http://%s%s%s:%u/\n",
           strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
           pvw_server_port(server));
    fflush(stdout);
    ws_loop_run(loop);
    if (!quiet)
        print_counters(server);
    pvw_server_stop(server);
    ws_loop_free(loop);
    if (!quiet)
        fprintf(stderr, "polling_vs_ws: stopped\n");
    return 0;
}
