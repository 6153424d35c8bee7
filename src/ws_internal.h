/*
 * ws_internal.h - the one internal header; every core source includes it first.
 *
 * Holds the crypto shim interface (SHA-1, Base64, random bytes) that
 * ws_crypto_openssl.c (OpenSSL, or the built-ins when WS_OPENSSL is 0) and
 * ws_sha1.c (the built-in SHA-1/Base64) provide, and small helpers shared by
 * the layers. Nothing here is public API.
 */
#ifndef WS_INTERNAL_H
#define WS_INTERNAL_H

#include "ws.h"

#include <string.h>

/* WS_OPENSSL: 1 = use libcrypto for SHA-1, Base64 and random bytes. The
 * Makefile sets it when OpenSSL is found; a vendored build without flags
 * gets the built-ins and needs nothing but libc. */
#ifndef WS_OPENSSL
#define WS_OPENSSL 0
#endif

#ifdef WS_DEBUG_ASSERT
#include <assert.h>
#define WS_ASSERT(x) assert(x)
#else
#define WS_ASSERT(x) ((void)0)
#endif

#define WS_SHA1_LEN 20
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 1.3 */

/* Crypto shim (ws_crypto_openssl.c): the configured provider. */
int ws__sha1(const uint8_t *data, size_t len, uint8_t out[WS_SHA1_LEN]);
/* Writes 4 * ceil(n / 3) characters (no NUL) and returns that count. */
size_t ws__base64_encode(const uint8_t *in, size_t n, char *out);
/* Fills out[0..n) with unpredictable bytes (RFC 6455 10.3).
 * Returns WS_OK or WS_ERR_CRYPTO. */
int ws__random(uint8_t *out, size_t n);

/* Built-ins (ws_sha1.c), always compiled so tests can check them against
 * the FIPS 180 vectors whichever provider is configured. */
struct ws__sha1_ctx {
    uint32_t h[5];
    uint64_t total;          /* bytes hashed */
    uint8_t block[64];
    size_t used;             /* bytes in block */
};
void ws__sha1_init(struct ws__sha1_ctx *ctx);
void ws__sha1_update(struct ws__sha1_ctx *ctx, const uint8_t *p, size_t n);
void ws__sha1_final(struct ws__sha1_ctx *ctx, uint8_t out[WS_SHA1_LEN]);
void ws__sha1_builtin(const uint8_t *data, size_t len,
                      uint8_t out[WS_SHA1_LEN]);
size_t ws__base64_encode_builtin(const uint8_t *in, size_t n, char *out);
/* Strict decoder (RFC 4648 4): padding required, no whitespace, canonical
 * trailing bits. Returns WS_OK or WS_ERR_INVALID_ARG (bad input, or more
 * than cap bytes of output). */
int ws__base64_decode(const char *in, size_t n, uint8_t *out, size_t cap,
                      size_t *outlen);

/* ASCII helpers shared by the handshake code (locale-independent). */
static inline int ws__lower(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch + ('a' - 'A') : ch;
}

#endif /* WS_INTERNAL_H */
