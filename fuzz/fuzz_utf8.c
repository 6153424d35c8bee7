/*
 * fuzz_utf8.c - differential test of the UTF-8 validator.
 *
 * Input: one byte choosing a chunk size (1 + data[0] % 32), then the text.
 * The library's table-driven validator (ws_utf8_check, and ws_utf8_feed in
 * chunks) must agree with ref_validate() below, which decodes code points
 * arithmetically, on:
 *   - the verdict (ws_utf8_check, ws_utf8_finish);
 *   - the failure position: the first byte that cannot be part of valid
 *     UTF-8 (ws_utf8_feed's *valid, also across chunks);
 *   - a truncated tail: feed succeeds, finish and check fail;
 *   - stickiness: once failed, feed keeps failing with *valid = 0.
 */
#include "fuzz_check.h"

/*
 * 1 if some code point in [cp << 6*left, (cp << 6*left) | ones) is a
 * Unicode scalar value not below min (the smallest code point that needs
 * this many bytes): i.e. the bytes so far can still be completed without
 * an overlong form, a surrogate or a value above U+10FFFF.
 */
static int ref_can_complete(uint32_t cp, unsigned left, uint32_t min)
{
    uint32_t lo = cp << (6 * left);
    uint32_t hi = lo | ((1u << (6 * left)) - 1u);

    if (lo < min)
        lo = min;
    if (hi > 0x10FFFFu)
        hi = 0x10FFFFu;
    if (lo > hi)
        return 0;
    return !(lo >= 0xD800u && hi <= 0xDFFFu);
}

/* Index of the first byte that cannot be part of valid UTF-8, or n if
 * there is none; *truncated is 1 if the text ends inside a character. */
static size_t ref_validate(const uint8_t *p, size_t n, int *truncated)
{
    size_t i = 0;

    *truncated = 0;
    while (i < n) {
        uint8_t b = p[i];
        uint32_t cp, min;
        unsigned need;

        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xE0u) == 0xC0u) {
            need = 1;
            cp = b & 0x1Fu;
            min = 0x80;
        } else if ((b & 0xF0u) == 0xE0u) {
            need = 2;
            cp = b & 0x0Fu;
            min = 0x800;
        } else if ((b & 0xF8u) == 0xF0u) {
            need = 3;
            cp = b & 0x07u;
            min = 0x10000;
        } else {
            return i;           /* a continuation byte, or F8-FF */
        }
        if (!ref_can_complete(cp, need, min))
            return i;
        i++;
        while (need > 0) {
            if (i == n) {
                *truncated = 1;
                return n;
            }
            if ((p[i] & 0xC0u) != 0x80u)
                return i;
            cp = cp << 6 | (p[i] & 0x3Fu);
            need--;
            if (!ref_can_complete(cp, need, min))
                return i;
            i++;
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p;
    uint8_t *copy;
    size_t n, chunk, bad, off = 0, valid = 0;
    int truncated, ok, failed = 0;
    struct ws_utf8 u;

    if (size == 0)
        return 0;
    chunk = 1 + data[0] % 32u;
    n = size - 1;
    copy = malloc(n > 0 ? n : 1);          /* exact size: ASan sees overreads */
    FZ_CHECK(copy != NULL);
    if (n > 0)
        memcpy(copy, data + 1, n);
    p = copy;

    bad = ref_validate(p, n, &truncated);
    ok = bad == n && !truncated;

    /* One shot. */
    FZ_CHECK((ws_utf8_check(p, n) == WS_OK) == ok);

    /* One feed. */
    ws_utf8_reset(&u);
    FZ_CHECK((ws_utf8_feed(&u, p, n, &valid) == WS_OK) == (bad == n));
    FZ_CHECK(valid == bad);
    FZ_CHECK((ws_utf8_finish(&u) == WS_OK) == ok);

    /* In chunks: the failure is found at the same byte. */
    ws_utf8_reset(&u);
    while (off < n) {
        size_t m = n - off < chunk ? n - off : chunk, v = m + 1;
        int rv = ws_utf8_feed(&u, p + off, m, &v);

        if (failed) {
            FZ_CHECK(rv == WS_ERR_BAD_UTF8 && v == 0);
        } else if (rv != WS_OK) {
            FZ_CHECK(rv == WS_ERR_BAD_UTF8 && v < m);
            FZ_CHECK(off + v == bad);
            failed = 1;
        } else {
            FZ_CHECK(v == m && off + m <= bad);
        }
        off += m;
    }
    FZ_CHECK(failed == (bad != n));
    FZ_CHECK((ws_utf8_finish(&u) == WS_OK) == ok);
    /* Sticky until reset; an empty feed changes nothing. */
    FZ_CHECK((ws_utf8_feed(&u, p, 0, NULL) == WS_OK) == (bad == n));
    FZ_CHECK((ws_utf8_finish(&u) == WS_OK) == ok);
    ws_utf8_reset(&u);
    FZ_CHECK(ws_utf8_finish(&u) == WS_OK);

    free(copy);
    return 0;
}
