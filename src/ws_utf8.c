/*
 * ws_utf8.c - incremental UTF-8 validator (RFC 3629 4; RFC 6455 8.1).
 *
 * A text message may be split anywhere: across frames and across reads, in
 * the middle of a character. The validator therefore keeps, between calls,
 * what the next byte must look like. It fails at the first byte that cannot
 * be part of valid UTF-8, not at the end of the message (browsers and the
 * Autobahn 6.x cases expect this "fail fast").
 *
 * RFC 3629 4 (the table that rules out overlong forms, surrogates
 * U+D800..DFFF and code points above U+10FFFF):
 *
 *   UTF8-1 = %x00-7F
 *   UTF8-2 = %xC2-DF UTF8-tail
 *   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
 *            %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
 *   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
 *            %xF4 %x80-8F 2( UTF8-tail )
 *   UTF8-tail = %x80-BF
 *
 * The state packs the number of bytes still expected (bits 16-23) and the
 * allowed range of the very next byte (lo in bits 8-15, hi in bits 0-7).
 * Only the byte after the lead byte can have a narrower range than 80-BF.
 */
#include "ws_internal.h"

#define ACCEPT 0u
#define REJECT 0xFFFFFFFFu
#define NEED(k, lo, hi) ((uint32_t)(k) << 16 | (uint32_t)(lo) << 8 | (hi))

/* The state after lead byte b (b >= 0x80), or REJECT. */
static uint32_t lead_state(uint8_t b)
{
    if (b >= 0xC2 && b <= 0xDF)
        return NEED(1, 0x80, 0xBF);
    if (b == 0xE0)
        return NEED(2, 0xA0, 0xBF);   /* no overlong 3-byte forms */
    if (b == 0xED)
        return NEED(2, 0x80, 0x9F);   /* no surrogates */
    if (b >= 0xE1 && b <= 0xEF)
        return NEED(2, 0x80, 0xBF);
    if (b == 0xF0)
        return NEED(3, 0x90, 0xBF);   /* no overlong 4-byte forms */
    if (b >= 0xF1 && b <= 0xF3)
        return NEED(3, 0x80, 0xBF);
    if (b == 0xF4)
        return NEED(3, 0x80, 0x8F);   /* nothing above U+10FFFF */
    return REJECT;                    /* 80-C1 (stray tail, overlong), F5-FF */
}

/*
 * Speed. Most text is ASCII, and most of the rest is short characters
 * between ASCII runs, where a byte-at-a-time state machine pays a branch
 * misprediction per character. So ws_utf8_feed() runs in two gears:
 *
 *   valid_prefix()  the fast gear, used whenever the state is ACCEPT (at a
 *                   character boundary). It checks many bytes at once and
 *                   returns how far the text is certainly valid, always
 *                   stopping at a character boundary. It never decides
 *                   that text is invalid: where it sees (or suspects) a
 *                   problem it stops early, at the start of the character
 *                   concerned.
 *   the DFA below   the exact gear: it takes over from there for a few
 *                   bytes and finds the precise failing byte (fail fast
 *                   needs its position), finishes a character that the
 *                   input splits, and keeps the state between calls.
 *
 * So results do not depend on the fast gear at all, only speed does:
 * valid_prefix() may return any boundary up to the true one. On x86 with
 * SSE2 (every x86-64) it validates 64 bytes per step, multi-byte
 * characters included; elsewhere it skips ASCII 16 bytes per step with
 * 64-bit words. WS_NO_SIMD forces the portable version (build the tests
 * with CPPFLAGS=-DWS_NO_SIMD to check it gives the same answers).
 */
#if !defined(WS_NO_SIMD) &&                                                  \
    (defined(__SSE2__) || defined(_M_X64) ||                                 \
     (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#define WS_UTF8_SSE2 1
#include <emmintrin.h>
#endif

/* Bytes the exact gear handles after the fast gear stopped early, before
 * handing back: enough to pass the 64 bytes the fast gear balked at (plus
 * the up to 3 bytes of a character it backed up over). */
#define SLOW_SPAN 80u

#ifdef WS_UTF8_SSE2

/* Start of the character that byte i is in, or i itself: p[lo..i) is
 * valid UTF-8 that begins on a character boundary, so at most 3
 * continuation bytes stand between i and the lead byte of an incomplete
 * character. */
static size_t char_start(const uint8_t *p, size_t lo, size_t i)
{
    size_t k = i;

    while (k > lo && i - k < 3 && (p[k - 1] & 0xC0u) == 0x80u)
        k--;
    if (k > lo && p[k - 1] >= 0xC0u) {
        size_t len = p[k - 1] >= 0xF0u ? 4 : p[k - 1] >= 0xE0u ? 3 : 2;
        if (k - 1 + len > i)
            return k - 1;       /* its character does not end before i */
    }
    return i;
}

/*
 * Nonzero bytes where the 16 bytes in cur break a rule of RFC 3629 4, given the 16
 * bytes before them in prev (only its last 3 matter). The idea (as in
 * simdjson's and Keiser-Lemire's validators, here with plain SSE2
 * compares instead of table shuffles): valid UTF-8 is exactly
 *
 *   1. every byte is a continuation byte (80-BF) if and only if a lead
 *      byte 1, 2 or 3 places before it asks for one: C0-FF asks for the
 *      next byte, E0-FF for the second, F0-FF for the third;
 *   2. no byte is C0, C1 or F5-FF;
 *   3. the byte after E0 is >= A0, after ED <= 9F, after F0 >= 90, after
 *      F4 <= 8F (no overlong forms, surrogates, or values > U+10FFFF).
 *
 * p1, p2, p3 hold, for each byte, the byte 1, 2, 3 places before it.
 * Signed byte compares do unsigned work here: as int8_t, 80-BF are
 * -128..-65, below C0-FF (-64..-1), below ASCII (0..127).
 */
static inline __m128i block_errors(__m128i prev, __m128i cur)
{
    const __m128i zero = _mm_setzero_si128();
    __m128i p1 = _mm_or_si128(_mm_slli_si128(cur, 1), _mm_srli_si128(prev, 15));
    __m128i p2 = _mm_or_si128(_mm_slli_si128(cur, 2), _mm_srli_si128(prev, 14));
    __m128i p3 = _mm_or_si128(_mm_slli_si128(cur, 3), _mm_srli_si128(prev, 13));
    __m128i must, is_cont, err;

    /* Rule 1. Saturating subtraction leaves a nonzero (positive) byte
     * exactly where the byte before is >= C0, 2 before >= E0, 3 before
     * >= F0. */
    must = _mm_or_si128(_mm_subs_epu8(p1, _mm_set1_epi8((char)0xBF)),
                        _mm_subs_epu8(p2, _mm_set1_epi8((char)0xDF)));
    must = _mm_or_si128(must, _mm_subs_epu8(p3, _mm_set1_epi8((char)0xEF)));
    must = _mm_cmpgt_epi8(must, zero);
    is_cont = _mm_cmplt_epi8(cur, _mm_set1_epi8((char)0xC0));
    err = _mm_xor_si128(must, is_cont);

    /* Rule 2: C0/C1 (overlong 2-byte forms), F5-FF (beyond U+10FFFF). */
    err = _mm_or_si128(err, _mm_cmpeq_epi8(
                                _mm_and_si128(cur, _mm_set1_epi8((char)0xFE)),
                                _mm_set1_epi8((char)0xC0)));
    err = _mm_or_si128(err, _mm_subs_epu8(cur, _mm_set1_epi8((char)0xF4)));

    /* Rule 3. Only continuation bytes matter here (anything else after
     * a lead byte already failed rule 1), so signed compares suffice. */
    err = _mm_or_si128(err, _mm_and_si128(
        _mm_cmpeq_epi8(p1, _mm_set1_epi8((char)0xE0)),
        _mm_cmplt_epi8(cur, _mm_set1_epi8((char)0xA0))));
    err = _mm_or_si128(err, _mm_and_si128(
        _mm_cmpeq_epi8(p1, _mm_set1_epi8((char)0xED)),
        _mm_cmpgt_epi8(cur, _mm_set1_epi8((char)0x9F))));
    err = _mm_or_si128(err, _mm_and_si128(
        _mm_cmpeq_epi8(p1, _mm_set1_epi8((char)0xF0)),
        _mm_cmplt_epi8(cur, _mm_set1_epi8((char)0x90))));
    err = _mm_or_si128(err, _mm_and_si128(
        _mm_cmpeq_epi8(p1, _mm_set1_epi8((char)0xF4)),
        _mm_cmpgt_epi8(cur, _mm_set1_epi8((char)0x8F))));
    return err;
}

static int any_nonzero(__m128i v)
{
    return _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) !=
           0xFFFF;
}

/* Nonzero if a character starting in cur goes on past its end: byte 15
 * >= C0, byte 14 >= E0 or byte 13 >= F0. */
static int block_ends_inside_char(__m128i cur)
{
    const __m128i last = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1,
                                       -1, -1, -1, -1, (char)0xEF,
                                       (char)0xDF, (char)0xBF);
    return any_nonzero(_mm_subs_epu8(cur, last));
}

/* p[0..n), n < 16, padded with zeros (built in registers: a copy to a
 * local array would cost a memcpy call, and the stack protector's check). */
static __m128i load_padded(const uint8_t *p, size_t n)
{
    uint64_t lo = 0, hi = 0;
    size_t k;

    for (k = 0; k < n && k < 8; k++)
        lo |= (uint64_t)p[k] << 8 * k;
    for (; k < n; k++)
        hi |= (uint64_t)p[k] << 8 * (k - 8);
    return _mm_set_epi64x((long long)hi, (long long)lo);
}

/* A block whose last 3 bytes are the 3 before p[at] (zeros before p[0]):
 * all that block_errors() needs of the block before p[at]. */
static __m128i context_before(const uint8_t *p, size_t at)
{
    uint32_t w = 0;
    size_t k;

    for (k = 1; k <= 3 && k <= at; k++)
        w |= (uint32_t)p[at - k] << (32 - 8 * k);
    return _mm_slli_si128(_mm_cvtsi32_si128((int)w), 12);
}

/*
 * The fast gear (SSE2): see above. Call only at a character boundary.
 * 64 bytes per step: all ASCII (one OR, one movemask) is skipped at once;
 * otherwise the four blocks are checked and their errors tested once, so
 * text that mixes ASCII and other characters runs without a branch per
 * block. An error stops it at the start of the 64 bytes (or of the
 * character straddling into them).
 */
static size_t valid_prefix(const uint8_t *p, size_t n)
{
    const __m128i zero = _mm_setzero_si128();
    __m128i prev = zero, cur;
    int pending = 0;            /* the last block ends inside a character */
    size_t i = 0;

    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(p + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(p + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(p + i + 48));
        __m128i err;

        if (!pending &&
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b),
                                           _mm_or_si128(c, d))) == 0) {
            prev = zero;        /* ASCII asks nothing of what follows */
            continue;
        }
        err = _mm_or_si128(block_errors(prev, a), block_errors(a, b));
        err = _mm_or_si128(err, block_errors(b, c));
        err = _mm_or_si128(err, block_errors(c, d));
        if (any_nonzero(err))
            return char_start(p, 0, i);
        pending = block_ends_inside_char(d);
        prev = d;
    }
    /* The last 0..3 whole blocks. Short messages live here, so an ASCII
     * block skips the full check. */
    for (; i + 16 <= n; i += 16) {
        cur = _mm_loadu_si128((const __m128i *)(p + i));
        if (pending || _mm_movemask_epi8(cur) != 0) {
            if (any_nonzero(block_errors(prev, cur)))
                return char_start(p, 0, i);
            pending = block_ends_inside_char(cur);
        }
        prev = cur;
    }
    if (i < n) {
        /* The last 1..15 bytes. In a text of 16 bytes or more: the last
         * 16, some of them checked already, after the 3 bytes before
         * them (checking valid bytes again, in their true context, finds
         * nothing new; without that context a character straddling into
         * the block would look wrong and go to the exact gear, which is
         * right but slow). In a shorter one: the text padded with zeros,
         * ASCII, which asks for nothing but ends an unfinished character
         * with an "error" (the exact gear then sees that it is only
         * unfinished). */
        if (n >= 16) {
            cur = _mm_loadu_si128((const __m128i *)(p + n - 16));
            prev = context_before(p, n - 16);
        } else {
            cur = load_padded(p, n);
        }
        if (!pending && _mm_movemask_epi8(cur) == 0)
            return n;
        if (any_nonzero(block_errors(prev, cur)))
            return char_start(p, 0, i);
        pending = block_ends_inside_char(cur);
    }
    return pending ? char_start(p, 0, n) : n;
}

#else

/* The fast gear, portable: skip ASCII, 16 bytes (two 64-bit words) per
 * step, then 8; the exact gear does the rest. */
static size_t valid_prefix(const uint8_t *p, size_t n)
{
    size_t i = 0;

    for (; i + 16 <= n; i += 16) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        if ((a | b) & 0x8080808080808080ull)
            break;
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t a;
        memcpy(&a, p + i, 8);
        if (a & 0x8080808080808080ull)
            break;
    }
    return i;
}

#endif

/* see ws.h */
void ws_utf8_reset(struct ws_utf8 *u)
{
    u->state = ACCEPT;
}

/* Validate p[0..n) from state s (not REJECT); returns the new state and
 * sets *valid (if not NULL) to the bytes before the failing one (n if
 * none). */
static uint32_t feed(uint32_t s, const uint8_t *p, size_t n, size_t *valid)
{
    size_t i = 0, stop = 0;

    while (i < n) {
        uint8_t b = p[i];

        if (s == ACCEPT) {
            if (i >= stop) {
                /* Fast gear; then the exact gear for SLOW_SPAN bytes
                 * from wherever it stopped. */
                i += valid_prefix(p + i, n - i);
                if (i == n)
                    break;
                stop = n - i > SLOW_SPAN ? i + SLOW_SPAN : n;
                b = p[i];
            }
            if (b < 0x80) {
                i++;
                continue;
            }
            s = lead_state(b);
            if (s == REJECT)
                break;
            i++;
            continue;
        }
        if (b < ((s >> 8) & 0xFFu) || b > (s & 0xFFu)) {
            s = REJECT;
            break;
        }
        i++;
        s = (s >> 16) - 1 == 0 ? ACCEPT : NEED((s >> 16) - 1, 0x80, 0xBF);
    }
    if (valid)
        *valid = i;
    return s;
}

/* see ws.h */
int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n, size_t *valid)
{
    if (u->state == REJECT) {
        if (valid)
            *valid = 0;
        return WS_ERR_BAD_UTF8;
    }
    u->state = feed(u->state, p, n, valid);
    return u->state == REJECT ? WS_ERR_BAD_UTF8 : WS_OK;
}

/* see ws.h */
int ws_utf8_finish(const struct ws_utf8 *u)
{
    return u->state == ACCEPT ? WS_OK : WS_ERR_BAD_UTF8;
}

/* see ws.h */
int ws_utf8_check(const uint8_t *p, size_t n)
{
    if (valid_prefix(p, n) == n)
        return WS_OK;           /* the fast gear vouches for all of it */
    return feed(ACCEPT, p, n, NULL) == ACCEPT ? WS_OK : WS_ERR_BAD_UTF8;
}
