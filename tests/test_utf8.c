/*
 * test_utf8.c - the incremental validator: RFC 3629 boundaries, every
 * class of invalid input, fail-fast positions, resumption at every split,
 * and a differential check against an arithmetic reference decoder.
 */
#include "test.h"

struct utf8_case {
    const char *bytes;
    size_t n;
    int valid;       /* 1: complete valid text */
    size_t fail_at;  /* invalid: index of the first byte that cannot be
                        part of valid UTF-8 (n if only truncated) */
};

#define S(lit) lit, sizeof(lit) - 1

static const struct utf8_case cases[] = {
    {S(""), 1, 0},
    {S("Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!"),
     1, 0},
    {S("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"), 1, 0},  /* kosme */
    {S("\xC2\x80"), 1, 0},             /* U+0080 */
    {S("\xDF\xBF"), 1, 0},             /* U+07FF */
    {S("\xE0\xA0\x80"), 1, 0},         /* U+0800 */
    {S("\xED\x9F\xBF"), 1, 0},         /* U+D7FF */
    {S("\xEE\x80\x80"), 1, 0},         /* U+E000 */
    {S("\xEF\xBF\xBF"), 1, 0},         /* U+FFFF */
    {S("\xF0\x90\x80\x80"), 1, 0},     /* U+10000 */
    {S("\xF4\x8F\xBF\xBF"), 1, 0},     /* U+10FFFF */
    {S("\xEF\xBF\xBE"), 1, 0},         /* U+FFFE: a noncharacter, valid */
    /* Overlong forms: the lead byte, or the byte after, gives them away. */
    {S("\xC0\x80"), 0, 0},
    {S("\xC1\xBF"), 0, 0},
    {S("\xE0\x80\x80"), 0, 1},
    {S("\xE0\x9F\xBF"), 0, 1},
    {S("\xF0\x80\x80\x80"), 0, 1},
    {S("\xF0\x8F\xBF\xBF"), 0, 1},
    /* Surrogates U+D800..DFFF. */
    {S("\xED\xA0\x80"), 0, 1},
    {S("\xED\xBF\xBF"), 0, 1},
    /* Above U+10FFFF, and bytes that never appear. */
    {S("\xF4\x90\x80\x80"), 0, 1},
    {S("\xF5\x80\x80\x80"), 0, 0},
    {S("\xFE"), 0, 0},
    {S("\xFF"), 0, 0},
    /* Stray continuation bytes, and a lead byte cut short. */
    {S("a\x80"), 0, 1},
    {S("\xC2\x41"), 0, 1},
    {S("\xE1\x80\x41"), 0, 2},
    /* Truncated at the end: nothing invalid yet, but not complete. */
    {S("\xC2"), 0, 1},
    {S("\xE1\x80"), 0, 2},
    {S("\xF0\x90\x80"), 0, 3},
    /* Autobahn 6.4.1: "kosme" + ED A0 80 + "edited" fails at A0. */
    {S("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64"
       "\x69\x74\x65\x64"), 0, 12},
    /* 8-byte ASCII runs around the fast path, then a bad byte. */
    {S("abcdefghijklmnopqrstuvwx\xFF"), 0, 24},
    {S("abcdefgh\xC3\xA9ijklmnop"), 1, 0},
};

/* Result of feeding p[0..n) in the given pieces. */
static void run_split(const uint8_t *p, size_t n, size_t piece, int *ok,
                      size_t *fail_at)
{
    struct ws_utf8 u;
    size_t off = 0;

    ws_utf8_reset(&u);
    *ok = 1;
    *fail_at = n;
    while (off < n) {
        size_t k = n - off < piece ? n - off : piece, valid = 0;
        if (ws_utf8_feed(&u, p + off, k, &valid) != WS_OK) {
            *ok = 0;
            *fail_at = off + valid;
            return;
        }
        off += k;
    }
    *ok = ws_utf8_finish(&u) == WS_OK;
}

void test_utf8_rfc3629_cases(void)
{
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *p = (const uint8_t *)cases[i].bytes;
        size_t n = cases[i].n, fail_at;
        int ok;

        EXPECT_EQ(ws_utf8_check(p, n),
                  cases[i].valid ? WS_OK : WS_ERR_BAD_UTF8);
        run_split(p, n, n ? n : 1, &ok, &fail_at);
        EXPECT_EQ(ok, cases[i].valid);
        if (!cases[i].valid) {
            if (cases[i].fail_at != fail_at)
                test_note("case %zu", i);
            EXPECT_EQ(fail_at, cases[i].fail_at);
        }
    }
}

/* Any split (byte at a time, every 2-way split) gives the same verdict and
 * the same failure position as one call. */
void test_utf8_split_invariance(void)
{
    size_t i, piece, k;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *p = (const uint8_t *)cases[i].bytes;
        size_t n = cases[i].n, want_at, at;
        int want, ok;

        run_split(p, n, n ? n : 1, &want, &want_at);
        for (piece = 1; piece <= n; piece++) {
            run_split(p, n, piece, &ok, &at);
            EXPECT_EQ(ok, want);
            EXPECT_EQ(at, want_at);
        }
        for (k = 0; k <= n; k++) {
            struct ws_utf8 u;
            size_t v1 = 0, v2 = 0;
            int r;

            ws_utf8_reset(&u);
            r = ws_utf8_feed(&u, p, k, &v1);
            if (r == WS_OK) {
                r = ws_utf8_feed(&u, p + k, n - k, &v2);
                v2 += k;
            } else {
                v2 = v1;
            }
            EXPECT_EQ(r == WS_OK && ws_utf8_finish(&u) == WS_OK, want);
            if (!want && r != WS_OK)
                EXPECT_EQ(v2, want_at);
        }
    }
}

void test_utf8_failure_is_sticky(void)
{
    struct ws_utf8 u;
    size_t valid = 99;

    ws_utf8_reset(&u);
    EXPECT_EQ(ws_utf8_feed(&u, (const uint8_t *)"\xFF", 1, NULL),
              WS_ERR_BAD_UTF8);
    EXPECT_EQ(ws_utf8_feed(&u, (const uint8_t *)"abc", 3, &valid),
              WS_ERR_BAD_UTF8);
    EXPECT_EQ(valid, 0);
    EXPECT_EQ(ws_utf8_finish(&u), WS_ERR_BAD_UTF8);
    ws_utf8_reset(&u);
    EXPECT_EQ(ws_utf8_feed(&u, (const uint8_t *)"abc", 3, &valid), WS_OK);
}

/*
 * Reference: decode with arithmetic instead of a table. After each byte,
 * the code points the sequence could still become form the interval
 * [lo, hi]; the prefix is invalid once that interval misses every valid
 * code point for the sequence's length (overlong, surrogate, > 10FFFF).
 */
static int interval_ok(uint32_t lo, uint32_t hi, uint32_t min)
{
    if (hi < min || lo > 0x10FFFF)
        return 0;
    if (lo < min)
        lo = min;
    if (hi > 0x10FFFF)
        hi = 0x10FFFF;
    /* [lo, hi] minus the surrogates [D800, DFFF] is empty? */
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

static void reference(const uint8_t *p, size_t n, int *ok, size_t *fail_at)
{
    size_t i = 0;

    while (i < n) {
        uint8_t b = p[i];
        size_t len, j;
        uint32_t cp, min;

        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xE0) == 0xC0) {
            len = 2, cp = b & 0x1Fu, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3, cp = b & 0x0Fu, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4, cp = b & 0x07u, min = 0x10000;
        } else {
            *ok = 0, *fail_at = i;
            return;
        }
        for (j = 0; j < len; j++) {
            unsigned left = (unsigned)(len - 1 - j) * 6;
            uint32_t lo = cp << left, hi = lo | ((1u << left) - 1);

            if (j > 0) {
                if ((p[i + j] & 0xC0) != 0x80) {
                    *ok = 0, *fail_at = i + j;
                    return;
                }
            }
            if (!interval_ok(lo, hi, min)) {
                *ok = 0, *fail_at = i + j;
                return;
            }
            if (j + 1 < len) {
                if (i + j + 1 >= n) {
                    *ok = 0, *fail_at = n;     /* truncated */
                    return;
                }
                cp = cp << 6 | (p[i + j + 1] & 0x3Fu);
            }
        }
        i += len;
    }
    *ok = 1, *fail_at = n;
}

/* Differential: random byte strings built from UTF-8-like pieces. */
void test_utf8_matches_reference(void)
{
    static const uint8_t interesting[] = {
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
        0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0,
        0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
    uint64_t seed = 0x5eed;
    uint8_t buf[40];
    int iter, mismatches = 0;

    test_note("seed %llu", (unsigned long long)seed);
    for (iter = 0; iter < 200000; iter++) {
        size_t n = test_rand(&seed) % sizeof buf, i, at_ref, at;
        int ok_ref, ok;

        for (i = 0; i < n; i++) {
            uint64_t r = test_rand(&seed);
            buf[i] = (r & 1) ? interesting[(r >> 8) % sizeof interesting]
                             : (uint8_t)(r >> 16);
        }
        reference(buf, n, &ok_ref, &at_ref);
        run_split(buf, n, n ? n : 1, &ok, &at);
        if (ok != ok_ref || at != at_ref) {
            if (mismatches++ < 3)
                test_note("mismatch at iteration %d", iter);
        }
        EXPECT_EQ(ok, ok_ref);
        EXPECT_EQ(at, at_ref);
        if (mismatches > 3)
            break;
    }
}

/* Exhaustive over every 3-byte string whose first byte is a lead byte or
 * worse (C0-FF: 4.2M strings; an ASCII first byte only repeats the 2-byte
 * cases): the table-free reference and the validator agree everywhere. */
void test_utf8_exhaustive_3_bytes(void)
{
    uint32_t v;
    int bad = 0;

    for (v = 0x800000; v < (1u << 24) && bad < 3; v++) {
        uint8_t b[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        size_t at_ref, at;
        int ok_ref, ok;

        reference(b, 3, &ok_ref, &at_ref);
        run_split(b, 3, 3, &ok, &at);
        if (ok != ok_ref || at != at_ref) {
            bad++;
            EXPECT_EQ(ok, ok_ref);
            EXPECT_EQ(at, at_ref);
        }
    }
}
