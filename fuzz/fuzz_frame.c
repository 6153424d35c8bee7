/*
 * fuzz_frame.c - the frame codec (RFC 6455 5.2, 5.3).
 *
 * ws_frame_decode_header on the input (an exactly-sized copy):
 *   - *consumed <= len; it equals ws_frame_header_size() unless
 *     WS_INCOMPLETE (then 0, and len is short of the header size);
 *   - the fields match the bits of the input;
 *   - WS_OK: the rules of 5.2/5.5 hold, and encoding the header with
 *     ws_frame_encode_header (minimal length form, never longer than the
 *     input's) then decoding it gives the same fields; one byte less room
 *     gives WS_ERR_NO_SPACE;
 *   - WS_ERR_PROTOCOL: *why is set and some rule is really broken.
 * ws_mask over the input, with key and offset taken from it:
 *   - equals a byte-by-byte reference;
 *   - two calls split at a point chosen by the input equal one call;
 *   - in place equals out of place; masking twice restores the input.
 */
#include "fuzz_check.h"

static int same_frame(const struct ws_frame *a, const struct ws_frame *b)
{
    return a->fin == b->fin && a->rsv == b->rsv && a->opcode == b->opcode &&
           a->masked == b->masked && a->length == b->length &&
           (!a->masked || memcmp(a->mask, b->mask, 4) == 0);
}

/* True if f breaks a rule ws_frame_decode_header checks. */
static int breaks_rules(const struct ws_frame *f)
{
    int reserved = (f->opcode >= 3 && f->opcode <= 7) || f->opcode >= 0xB;

    return (f->length >> 63) != 0 || reserved ||
           ((f->opcode & 8u) && (f->length > WS_CONTROL_PAYLOAD_MAX ||
                                 !f->fin));
}

static void check_header(const uint8_t *p, size_t n)
{
    struct ws_frame f, g;
    uint8_t out[WS_FRAME_HEADER_MAX];
    const char *why = NULL;
    size_t used = n + 1, size = 0, w = 0, used2 = 0;
    int rv = ws_frame_decode_header(&f, p, n, &used, &why);
    int rs = ws_frame_header_size(p, n, &size);

    FZ_CHECK(used <= n);
    if (rv == WS_INCOMPLETE) {
        FZ_CHECK(used == 0 && (rs == WS_INCOMPLETE || n < size));
        return;
    }
    FZ_CHECK(rs == WS_OK && used == size && size >= 2 &&
             size <= WS_FRAME_HEADER_MAX);
    FZ_CHECK(f.fin == (unsigned)(p[0] >> 7) && f.rsv == ((p[0] >> 4) & 7u) &&
             f.opcode == (p[0] & 15u) && f.masked == (unsigned)(p[1] >> 7));
    FZ_CHECK(!f.masked || memcmp(f.mask, p + size - 4, 4) == 0);
    if (rv != WS_OK) {
        FZ_CHECK(rv == WS_ERR_PROTOCOL && why != NULL && breaks_rules(&f));
        return;
    }
    FZ_CHECK(why == NULL && !breaks_rules(&f));

    /* Round trip through the encoder. */
    FZ_CHECK(ws_frame_encode_header(out, sizeof out, &f, &w) == WS_OK);
    FZ_CHECK(w >= 2 && w <= used);
    FZ_CHECK(ws_frame_decode_header(&g, out, w, &used2, NULL) == WS_OK);
    FZ_CHECK(used2 == w && same_frame(&f, &g));
    FZ_CHECK(ws_frame_encode_header(out, w - 1, &f, &used2) ==
             WS_ERR_NO_SPACE);
}

static void check_mask(const uint8_t *p, size_t n)
{
    uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    uint8_t *one = malloc(n > 0 ? n : 1), *two = malloc(n > 0 ? n : 1);
    uint64_t offset = 0;
    size_t split = 0, i;

    FZ_CHECK(one != NULL && two != NULL);
    if (n >= 6) {
        memcpy(key, p, 4);
        offset = p[4];
        split = p[5] % (n + 1);
    }
    ws_mask(one, p, n, key, offset);
    for (i = 0; i < n; i++)
        FZ_CHECK(one[i] == (p[i] ^ key[(offset + i) % 4]));

    ws_mask(two, p, split, key, offset);
    ws_mask(two + split, p + split, n - split, key, offset + split);
    FZ_CHECK(n == 0 || memcmp(one, two, n) == 0);

    if (n > 0)
        memcpy(two, p, n);
    ws_mask(two, two, n, key, offset);              /* in place */
    FZ_CHECK(n == 0 || memcmp(one, two, n) == 0);
    ws_mask(two, two, n, key, offset);              /* and back */
    FZ_CHECK(n == 0 || memcmp(two, p, n) == 0);
    free(one);
    free(two);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);

    FZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    check_header(copy, size);
    check_mask(copy, size);
    free(copy);
    return 0;
}
