/*
 * fuzz_conn_client.c - ws_conn_feed() on an OPEN client connection
 * (WS_CONFIG_START_OPEN): unmasked server frames from the fuzzer; our own
 * output (pongs, echoes, close) must be masked.
 *
 * Input: one configuration byte (chunk size, receive mode, limits; see
 * fuzz_conn.h), then the bytes the server sends. The invariants are those
 * listed in fuzz_conn.h.
 */
#include "fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_conn *h;

    if (size == 0)
        return 0;
    h = fz_new(WS_ROLE_CLIENT, data[0], WS_CONFIG_START_OPEN);
    fz_feed(h, data + 1, size - 1, 1 + data[0] % 32u);
    fz_finish(h);
    fz_free(h);
    return 0;
}
