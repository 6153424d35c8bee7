/*
 * pvw.h - the polling-vs-WebSocket demo: one server publishing a stream of
 * updates (a ticking stock price) over four transports at once, and a
 * benchmark that measures them side by side.
 *
 * Wire protocol (the page, the benchmark and the tests all follow it):
 *
 *   An update is the JSON object {"id":N,"t":T,"price":P}: id counts from
 *   1 without gaps, t is the server's wall clock in milliseconds since the
 *   epoch when the update was made (the same clock as Date.now()), price a
 *   number with 2 decimals. The server keeps the last PVW_HISTORY updates.
 *
 *   GET /poll?since=N        short polling: answers at once with
 *       {"now":T,"last":L,"updates":[...ids > N, oldest first, at most
 *       PVW_HISTORY...],"missed":M}   (M: ids > N no longer in history)
 *   GET /longpoll?since=N[&timeout=MS]   long polling: the same answer,
 *       held until an update with id > N exists or the timeout (default
 *       25000 ms) passes (then "updates":[]).
 *   GET /events              Server-Sent Events (text/event-stream): first
 *       "retry: 1000", then for each update "id: N\ndata: {update}\n\n";
 *       a reconnect with a Last-Event-ID header (or ?lastEventId=N) first
 *       gets every update after N still in history. A ": keep-alive"
 *       comment line every 15 s.
 *   GET /ws                  WebSocket: each update as a text message
 *       holding the update object itself ({"id":N,"t":T,"price":P}, no
 *       "type": the frame adds just 2 bytes). Other messages have a
 *       "type". From the page:
 *       {"type":"echo","t":T}  -> {"type":"echo","t":T,"server":S}
 *       {"type":"rate","value":R} -> sets the update rate (0.1..1000 per
 *       second) for everyone; every WebSocket client then gets
 *       {"type":"rate","value":R}.
 *   GET /stats               {"rate":R,"last":L,"uptime_ms":U,
 *       "transports":{"poll":{...},"longpoll":{...},"sse":{...},
 *       "ws":{...}}} with, per transport: "requests" (HTTP requests, or
 *       WebSocket handshakes), "bytes_in", "bytes_out" (bytes on the wire
 *       including HTTP headers and WebSocket framing, as the server read
 *       and wrote them), "updates" (updates the server sent), "clients"
 *       (connections open now).
 *   GET /, /app.js, /style.css   the page (files from the www directory).
 *   Anything else: 404. Malformed requests: 400, and the server goes on.
 */
#ifndef PVW_H
#define PVW_H

#include <ws_io.h>

#define PVW_HISTORY 4096

enum pvw_transport { PVW_POLL, PVW_LONGPOLL, PVW_SSE, PVW_WS, PVW_NTRANS };

struct pvw_counters {
    uint64_t requests, bytes_in, bytes_out, updates, clients;
};

struct pvw_server;

/* Start serving on host:port ("0": a free port) on loop, publishing rate
 * updates per second; www is the directory with index.html, app.js and
 * style.css (NULL: no page). Returns WS_OK or a ws status. */
int pvw_server_start(struct ws_loop *loop, const char *host,
                     const char *port, double rate, const char *www,
                     struct pvw_server **out);
unsigned pvw_server_port(const struct pvw_server *s);
/* Counters per transport, bytes of open connections included. */
void pvw_server_counters(struct pvw_server *s,
                         struct pvw_counters out[PVW_NTRANS]);
/* Stop publishing and close everything (the loop can then return). */
void pvw_server_stop(struct pvw_server *s);

/* The benchmark CLI (polling_vs_ws --bench ...). */
int pvw_bench_main(int argc, char **argv);

#endif /* PVW_H */
