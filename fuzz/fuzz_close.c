/*
 * fuzz_close.c - the close handshake (RFC 6455 5.5.1, 7.1.5, 7.4).
 *
 * The input (truncated to 125 bytes) is the payload of one masked close
 * frame sent to an OPEN server. Whatever the payload, the connection ends
 * CLOSED, and:
 *   empty payload             no error; on_close gets 1005; reply: close
 *                             frame without a code
 *   1 byte                    WS_ERR_PROTOCOL; close 1002 sent
 *   code not valid (7.4)      WS_ERR_PROTOCOL; close 1002 sent
 *   reason not UTF-8          WS_ERR_BAD_UTF8; close 1007 sent
 *   otherwise                 no error; on_close gets the code and reason;
 *                             reply: a close frame echoing just the code
 * plus the general invariants of fuzz_conn.h.
 */
#include "fuzz_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    uint8_t frame[2 + 4 + WS_CONTROL_PAYLOAD_MAX];
    size_t n = size < WS_CONTROL_PAYLOAD_MAX ? size : WS_CONTROL_PAYLOAD_MAX;
    unsigned code = 0;
    int want = WS_OK, err;
    struct fz_conn *h;

    frame[0] = 0x80u | WS_OPCODE_CLOSE;
    frame[1] = (uint8_t)(0x80u | n);
    memcpy(frame + 2, key, 4);
    ws_mask(frame + 6, data, n, key, 0);

    if (n >= 2)
        code = (unsigned)data[0] << 8 | data[1];
    if (n == 1 || (n >= 2 && !ws_close_code_is_valid(code)))
        want = WS_ERR_PROTOCOL;
    else if (n >= 2 && ws_utf8_check(data + 2, n - 2) != WS_OK)
        want = WS_ERR_BAD_UTF8;

    h = fz_new(WS_ROLE_SERVER, 0, WS_CONFIG_START_OPEN);
    fz_feed(h, frame, 6 + n, 6 + n);
    fz_finish(h);

    err = ws_conn_get_error(&h->c);
    FZ_CHECK(ws_conn_get_state(&h->c) == WS_STATE_CLOSED);
    FZ_CHECK(err == want);
    FZ_CHECK(h->closed && h->out_closes == 1);
    FZ_CHECK(h->out_len >= 2 && h->out[0] == (0x80u | WS_OPCODE_CLOSE));
    if (want != WS_OK) {
        FZ_CHECK(h->out_close_code == ws_err_close_code(want));
        FZ_CHECK(h->close_code == ws_err_close_code(want));
    } else if (n == 0) {
        FZ_CHECK(h->out_len == 2 && h->out[1] == 0);
        FZ_CHECK(h->close_code == WS_CLOSE_NO_STATUS && h->reason_len == 0);
        FZ_CHECK(ws_conn_get_close_code(&h->c) == WS_CLOSE_NO_STATUS);
    } else {
        FZ_CHECK(h->out_len == 4 && h->out[1] == 2);
        FZ_CHECK(h->out[2] == data[0] && h->out[3] == data[1]);
        FZ_CHECK(h->close_code == code && ws_conn_get_close_code(&h->c) == code);
        FZ_CHECK(h->reason_len == n - 2 &&
                 (n == 2 || memcmp(h->reason, data + 2, n - 2) == 0));
    }
    fz_free(h);
    return 0;
}
