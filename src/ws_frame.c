/*
 * ws_frame.c - frame header codec and masking (RFC 6455 5.2, 5.3).
 *
 *      0                   1                   2                   3
 *      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *     +-+-+-+-+-------+-+-------------+-------------------------------+
 *     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *     | |1|2|3|       |K|             |                               |
 *     +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *     |     Extended payload length continued, if payload len == 127  |
 *     + - - - - - - - - - - - - - - - +-------------------------------+
 *     |                               |Masking-key, if MASK set to 1  |
 *     +-------------------------------+-------------------------------+
 *     | Masking-key (continued)       |          Payload Data         |
 *     +-------------------------------- - - - - - - - - - - - - - - - +
 *
 * Lengths are big-endian and assembled with shifts, never htons/ntohl, so
 * the code is the same on every byte order. Nothing here allocates or keeps
 * state: the connection layer (ws_conn.c) gathers header bytes that arrive
 * in pieces and calls ws_frame_decode_header() once they are all there.
 */
#include "ws_internal.h"

/* Header size from its second byte (MASK bit and 7-bit length). */
static size_t header_size(uint8_t b1)
{
    size_t n = 2;
    unsigned len7 = b1 & 0x7Fu;

    if (len7 == 126)
        n += 2;                 /* 16-bit extended length */
    else if (len7 == 127)
        n += 8;                 /* 64-bit extended length */
    if (b1 & 0x80u)
        n += 4;                 /* masking key */
    return n;
}

/* see ws.h */
int ws_frame_header_size(const uint8_t *data, size_t len, size_t *size)
{
    if ((data == NULL && len > 0) || size == NULL)
        return WS_ERR_INVALID_ARG;
    if (len < 2)
        return WS_INCOMPLETE;
    *size = header_size(data[1]);
    return WS_OK;
}

static int is_reserved_opcode(unsigned opcode)
{
    /* RFC 6455 5.2: %x3-7 reserved for further non-control frames,
     * %xB-F reserved for further control frames. */
    return (opcode >= 0x3 && opcode <= 0x7) || opcode >= 0xB;
}

static int fail_header(const char **why, const char *text)
{
    if (why)
        *why = text;
    return WS_ERR_PROTOCOL;
}

/* see ws.h */
int ws_frame_decode_header(struct ws_frame *f, const uint8_t *data,
                           size_t len, size_t *consumed, const char **why)
{
    size_t size, pos = 2;
    unsigned len7;
    int i;

    if (f == NULL || consumed == NULL || (data == NULL && len > 0))
        return WS_ERR_INVALID_ARG;
    *consumed = 0;
    if (len < 2)
        return WS_INCOMPLETE;
    size = header_size(data[1]);
    if (len < size)
        return WS_INCOMPLETE;

    f->fin = (data[0] >> 7) & 1u;
    f->rsv = (data[0] >> 4) & 7u;
    f->opcode = data[0] & 0x0Fu;
    f->masked = (data[1] >> 7) & 1u;
    len7 = data[1] & 0x7Fu;
    if (len7 < 126) {
        f->length = len7;
    } else if (len7 == 126) {
        f->length = (uint64_t)data[2] << 8 | data[3];
        pos = 4;
    } else {
        f->length = 0;
        for (i = 0; i < 8; i++)
            f->length = f->length << 8 | data[2 + i];
        pos = 10;
    }
    if (f->masked)
        memcpy(f->mask, data + pos, 4);
    else
        memset(f->mask, 0, 4);
    *consumed = size;

    /* RFC 6455 5.2: "the most significant bit MUST be 0". */
    if (len7 == 127 && (f->length >> 63))
        return fail_header(why, "64-bit payload length with the most "
                                "significant bit set (RFC 6455 5.2)");
    if (is_reserved_opcode(f->opcode))
        return fail_header(why, "reserved opcode (RFC 6455 5.2)");
    if (f->opcode & 0x8u) {
        /* RFC 6455 5.5: control frames are short and never fragmented. */
        if (f->length > WS_CONTROL_PAYLOAD_MAX)
            return fail_header(why, "control frame payload longer than 125 "
                                    "bytes (RFC 6455 5.5)");
        if (!f->fin)
            return fail_header(why, "fragmented control frame "
                                    "(RFC 6455 5.5)");
    }
    return WS_OK;
}

/* see ws.h */
int ws_frame_encode_header(uint8_t *out, size_t cap, const struct ws_frame *f,
                           size_t *written)
{
    size_t n = 2;
    int i;

    if (out == NULL || f == NULL || written == NULL)
        return WS_ERR_INVALID_ARG;
    *written = 0;
    if (f->opcode > 0xF || f->rsv > 7 || (f->length >> 63))
        return WS_ERR_INVALID_ARG;
    if ((f->opcode & 0x8u) && (f->length > WS_CONTROL_PAYLOAD_MAX || !f->fin))
        return WS_ERR_INVALID_ARG;
    if (f->length >= 126)
        n += f->length > 0xFFFF ? 8 : 2;
    if (f->masked)
        n += 4;
    if (cap < n)
        return WS_ERR_NO_SPACE;

    out[0] = (uint8_t)((f->fin ? 0x80u : 0) | f->rsv << 4 | f->opcode);
    /* RFC 6455 5.2: the minimal number of bytes MUST be used. */
    if (f->length < 126) {
        out[1] = (uint8_t)f->length;
        i = 2;
    } else if (f->length <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(f->length >> 8);
        out[3] = (uint8_t)f->length;
        i = 4;
    } else {
        out[1] = 127;
        for (i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(f->length >> (56 - 8 * i));
        i = 10;
    }
    if (f->masked) {
        out[1] |= 0x80u;
        memcpy(out + i, f->mask, 4);
    }
    *written = n;
    return WS_OK;
}

/*
 * SSE2 is part of every x86-64 CPU (and of x86 builds with -msse2), so it
 * needs no run-time check. Anything else takes the portable 64-bit path,
 * which gives the same bytes (test_mask_matches_reference runs on both:
 * the -m32 build has no SSE2).
 */
#if !defined(WS_NO_SIMD) &&                                                  \
    (defined(__SSE2__) || defined(_M_X64) ||                                 \
     (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#define WS_MASK_SSE2 1
#include <emmintrin.h>
#endif

/* see ws.h */
void ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
             uint64_t offset)
{
    /* RFC 6455 5.3: octet i of the payload is XORed with key[i % 4].
     * k32 is the key rotated to this offset; repeated, it gives a 64-bit
     * or 128-bit word that masks 8 or 16 payload bytes at a time (whatever
     * the byte order: the words are only ever loaded from and stored to
     * memory). memcpy and unaligned SIMD loads make every access
     * alignment-safe; compilers turn the memcpy calls into plain moves. */
    const uint16_t one = 1;
    uint8_t first;
    uint32_t k32;
    uint64_t k64, w[4];
    size_t i = 0;
    unsigned o = (unsigned)(offset & 3), r = 8 * o;

    /* k32 holds, in memory order, key rotated to this offset:
     * key[o], key[o+1], ... Rotating the loaded word is a right rotation
     * on a little-endian machine, a left one on a big-endian one (the
     * test folds to a constant). Working in registers matters: building
     * the word from single byte stores and loading it back stalls the
     * CPU (store forwarding fails), a third of the cost of masking a
     * 16-byte frame. */
    memcpy(&k32, key, 4);
    memcpy(&first, &one, 1);
    if (r != 0)
        k32 = first == 1 ? (k32 >> r | k32 << (32 - r))
                         : (k32 << r | k32 >> (32 - r));
    k64 = (uint64_t)k32 << 32 | k32;   /* two copies, either byte order */

#ifdef WS_MASK_SSE2
    if (n >= 16) {
        /* set1 copies k32 into each 32-bit lane: the same bytes, in the
         * same order, as four copies of k[0..3] in memory. */
        __m128i kv = _mm_set1_epi32((int)k32);

        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, kv));
            _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, kv));
            _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, kv));
            _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, kv));
        }
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, kv));
        }
    }
#else
    for (; i + 32 <= n; i += 32) {
        memcpy(w, src + i, 32);
        w[0] ^= k64;
        w[1] ^= k64;
        w[2] ^= k64;
        w[3] ^= k64;
        memcpy(dst + i, w, 32);
    }
#endif
    /* i is a multiple of 4 from here on, so k64 and k32 still line up. */
    for (; i + 8 <= n; i += 8) {
        memcpy(w, src + i, 8);
        w[0] ^= k64;
        memcpy(dst + i, w, 8);
    }
    if (i + 4 <= n) {
        uint32_t v;
        memcpy(&v, src + i, 4);
        v ^= k32;
        memcpy(dst + i, &v, 4);
        i += 4;
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[(o + i) & 3];
}
