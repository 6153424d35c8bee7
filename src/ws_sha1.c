#include "ws_internal.h"

/*
 * ws_sha1.c - the built-in SHA-1 (FIPS 180-4) and Base64 (RFC 4648).
 *
 * RFC 6455 4.2.2 step 5.4 needs exactly one hash: the server answers
 * base64(SHA-1(Sec-WebSocket-Key + GUID)) and the client checks it. SHA-1
 * is used here as a fixed, public fingerprint, not for security, so a
 * small, portable implementation is enough. This file is always compiled:
 * ws_crypto_openssl.c maps the provider onto it when WS_OPENSSL is 0, and
 * the tests check it against the FIPS 180 vectors in both builds.
 *
 * Portability: words are read and written big-endian with explicit shifts
 * (FIPS 180-4 3.1), never by casting byte pointers, so the code is
 * alignment-safe and gives the same result on any host byte order. Stack
 * use is small: the message schedule is a 16-word ring (64 bytes) rather
 * than the 80-word array of the textbook description (FIPS 180-4 6.1.3
 * describes this alternative method).
 */

/* FIPS 180-4 2.2.2: ROTL^n(x), 0 < n < 32. */
static uint32_t rotl32(uint32_t x, unsigned n)
{
    return (uint32_t)((x << n) | (x >> (32u - n)));
}

/* Big-endian 32-bit load (FIPS 180-4 3.1: the first byte is the most
 * significant). */
static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/*
 * FIPS 180-4 6.1.2: hash one 512-bit block into h[0..4].
 *
 * W[t] for t >= 16 is computed in place in a 16-word ring: W[t] replaces
 * W[t - 16], which is no longer needed (FIPS 180-4 6.1.3).
 */
static void compress(uint32_t h[5], const uint8_t *block)
{
    uint32_t w[16];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    unsigned t;

    for (t = 0; t < 16; t++)
        w[t] = load_be32(block + 4 * t);

    for (t = 0; t < 80; t++) {
        uint32_t f, k, tmp;

        if (t >= 16) {
            /* W[t] = ROTL^1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]) */
            w[t & 15] = rotl32(w[(t - 3) & 15] ^ w[(t - 8) & 15] ^
                               w[(t - 14) & 15] ^ w[t & 15], 1);
        }
        /* FIPS 180-4 4.1.1 (functions) and 4.2.1 (constants). */
        if (t < 20) {
            f = (b & c) | (~b & d);            /* Ch */
            k = 0x5a827999u;
        } else if (t < 40) {
            f = b ^ c ^ d;                     /* Parity */
            k = 0x6ed9eba1u;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);   /* Maj */
            k = 0x8f1bbcdcu;
        } else {
            f = b ^ c ^ d;                     /* Parity */
            k = 0xca62c1d6u;
        }
        tmp = rotl32(a, 5) + f + e + k + w[t & 15];
        e = d;
        d = c;
        c = rotl32(b, 30);
        b = a;
        a = tmp;
    }

    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws__sha1_init(struct ws__sha1_ctx *ctx)
{
    /* FIPS 180-4 5.3.1: initial hash value H(0). */
    ctx->h[0] = 0x67452301u;
    ctx->h[1] = 0xefcdab89u;
    ctx->h[2] = 0x98badcfeu;
    ctx->h[3] = 0x10325476u;
    ctx->h[4] = 0xc3d2e1f0u;
    ctx->total = 0;
    ctx->used = 0;
}

void ws__sha1_update(struct ws__sha1_ctx *ctx, const uint8_t *p, size_t n)
{
    ctx->total += (uint64_t)n;

    /* Top up a partly filled block first. */
    while (n > 0 && ctx->used > 0) {
        ctx->block[ctx->used++] = *p++;
        n--;
        if (ctx->used == 64) {
            compress(ctx->h, ctx->block);
            ctx->used = 0;
        }
    }
    /* Whole blocks straight from the input: no copy. */
    while (n >= 64) {
        compress(ctx->h, p);
        p += 64;
        n -= 64;
    }
    /* Keep the tail for the next call. */
    while (n > 0) {
        ctx->block[ctx->used++] = *p++;
        n--;
    }
}

void ws__sha1_final(struct ws__sha1_ctx *ctx, uint8_t out[WS_SHA1_LEN])
{
    /* FIPS 180-4 5.1.1: the message length in bits, as a 64-bit big-endian
     * integer. Messages of 2^64 bits or more are not supported by SHA-1;
     * the count simply wraps, as in every common implementation. */
    uint64_t bits = ctx->total << 3;
    unsigned i;

    /* Append the bit "1", then zeros until 56 bytes into a block (5.1.1). */
    ctx->block[ctx->used++] = 0x80;
    if (ctx->used > 56) {
        while (ctx->used < 64)
            ctx->block[ctx->used++] = 0;
        compress(ctx->h, ctx->block);
        ctx->used = 0;
    }
    while (ctx->used < 56)
        ctx->block[ctx->used++] = 0;
    store_be32(ctx->block + 56, (uint32_t)(bits >> 32));
    store_be32(ctx->block + 60, (uint32_t)bits);
    compress(ctx->h, ctx->block);

    /* FIPS 180-4 6.1.2: the digest is H0 || H1 || H2 || H3 || H4. */
    for (i = 0; i < 5; i++)
        store_be32(out + 4 * i, ctx->h[i]);

    /* Leave no trace of the input in the context. */
    memset(ctx, 0, sizeof *ctx);
}

void ws__sha1_builtin(const uint8_t *data, size_t len,
                      uint8_t out[WS_SHA1_LEN])
{
    struct ws__sha1_ctx ctx;

    ws__sha1_init(&ctx);
    ws__sha1_update(&ctx, data, len);
    ws__sha1_final(&ctx, out);
}

/* ------------------------------------------------------------------------ */
/* Base64, RFC 4648 4 (standard alphabet, '=' padding)                      */
/* ------------------------------------------------------------------------ */

/* RFC 4648 4, Table 1. */
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ws__base64_encode_builtin(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;

    /* Each 3 input bytes become 4 characters of 6 bits each. */
    while (n - i >= 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) |
                     (uint32_t)in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
        i += 3;
    }
    /* RFC 4648 4: a final quantum of 8 or 16 bits is padded with zero bits
     * to whole sextets, then with "==" or "=". */
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

/* The 6-bit value of one alphabet character, or -1 for anything else
 * (including '=', which only decode() handles, and all whitespace).
 * Plain ASCII comparisons: independent of the locale. */
static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/*
 * Strict on purpose (RFC 4648 3.3 and 3.5): a Sec-WebSocket-Key must be
 * exactly base64 of 16 bytes (RFC 6455 4.1), so anything a lenient decoder
 * would quietly repair is treated as a malformed key instead:
 *   - the length is a multiple of 4 (padding is required, 3.2);
 *   - '=' appears only as the last one or two characters;
 *   - no whitespace or characters outside the alphabet (3.3);
 *   - the pad bits of the last sextet are zero (3.5), so every byte string
 *     has exactly one accepted encoding.
 * On failure out[] may hold part of the output; *outlen is set only on
 * success.
 */
int ws__base64_decode(const char *in, size_t n, uint8_t *out, size_t cap,
                      size_t *outlen)
{
    size_t pad = 0, need, i, o = 0;

    if (outlen == NULL || (in == NULL && n > 0))
        return WS_ERR_INVALID_ARG;
    if (n % 4 != 0)
        return WS_ERR_INVALID_ARG;
    if (n > 0 && in[n - 1] == '=') {
        pad = 1;
        if (in[n - 2] == '=')
            pad = 2;
    }
    need = n / 4 * 3 - pad;
    if (need > cap || (out == NULL && need > 0))
        return WS_ERR_INVALID_ARG;

    for (i = 0; i < n; i += 4) {
        int last = (i + 4 == n);
        int v0 = b64_value(in[i]);
        int v1 = b64_value(in[i + 1]);
        /* The padding characters of the final quantum count as zero
         * sextets; any other '=' is rejected by b64_value(). */
        int v2 = (last && pad == 2) ? 0 : b64_value(in[i + 2]);
        int v3 = (last && pad >= 1) ? 0 : b64_value(in[i + 3]);
        uint32_t v;

        if (v0 < 0 || v1 < 0 || v2 < 0 || v3 < 0)
            return WS_ERR_INVALID_ARG;
        v = ((uint32_t)v0 << 18) | ((uint32_t)v1 << 12) |
            ((uint32_t)v2 << 6) | (uint32_t)v3;

        if (last && pad == 2) {
            /* "xx==": 12 bits carry 8; the low 4 must be zero (3.5). */
            if ((v & 0xffffu) != 0)
                return WS_ERR_INVALID_ARG;
            out[o++] = (uint8_t)(v >> 16);
        } else if (last && pad == 1) {
            /* "xxx=": 18 bits carry 16; the low 2 must be zero (3.5). */
            if ((v & 0xffu) != 0)
                return WS_ERR_INVALID_ARG;
            out[o++] = (uint8_t)(v >> 16);
            out[o++] = (uint8_t)(v >> 8);
        } else {
            out[o++] = (uint8_t)(v >> 16);
            out[o++] = (uint8_t)(v >> 8);
            out[o++] = (uint8_t)v;
        }
    }
    WS_ASSERT(o == need);
    *outlen = o;
    return WS_OK;
}
