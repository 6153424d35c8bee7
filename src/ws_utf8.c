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

/* see ws.h */
void ws_utf8_reset(struct ws_utf8 *u)
{
    u->state = ACCEPT;
}

/* see ws.h */
int ws_utf8_feed(struct ws_utf8 *u, const uint8_t *p, size_t n, size_t *valid)
{
    uint32_t s = u->state;
    size_t i = 0;

    if (s == REJECT) {
        if (valid)
            *valid = 0;
        return WS_ERR_BAD_UTF8;
    }
    while (i < n) {
        uint8_t b = p[i];

        if (s == ACCEPT) {
            /* ASCII fast path: skip 8 bytes at a time while no byte has
             * its top bit set. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            while (i < n && p[i] < 0x80)
                i++;
            if (i == n)
                break;
            s = lead_state(p[i]);
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
    u->state = s;
    if (valid)
        *valid = i;
    return s == REJECT ? WS_ERR_BAD_UTF8 : WS_OK;
}

/* see ws.h */
int ws_utf8_finish(const struct ws_utf8 *u)
{
    return u->state == ACCEPT ? WS_OK : WS_ERR_BAD_UTF8;
}

/* see ws.h */
int ws_utf8_check(const uint8_t *p, size_t n)
{
    struct ws_utf8 u;

    ws_utf8_reset(&u);
    if (ws_utf8_feed(&u, p, n, NULL) != WS_OK)
        return WS_ERR_BAD_UTF8;
    return ws_utf8_finish(&u);
}
