/*
 * fuzz_conn_handshake.c - a server connection from its first byte: the
 * opening handshake (RFC 6455 4.2) comes from the fuzzer, then frames.
 *
 * Input: one configuration byte (chunk size, receive mode, limits; see
 * fuzz_conn.h), then the bytes the client sends. Besides the invariants
 * listed in fuzz_conn.h: a connection that opens answered "HTTP/1.1 101 "
 * (accepted by ws_handshake_parse_response for the client's key), and one
 * that fails while CONNECTING answered 400 (WS_ERR_HANDSHAKE), 426
 * (WS_ERR_VERSION), 431 (WS_ERR_HEADER_TOO_BIG) or 403 (our on_request
 * rejected path "/reject"), and never ran on_close.
 */
#include "fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_conn *h;

    if (size == 0)
        return 0;
    h = fz_new(WS_ROLE_SERVER, data[0], 0);
    fz_feed(h, data + 1, size - 1, 1 + data[0] % 32u);
    fz_finish(h);
    fz_free(h);
    return 0;
}
