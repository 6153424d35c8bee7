/*
 * ws_crypto_openssl.c - the crypto shim: SHA-1, Base64 and random bytes.
 *
 * The rest of the core calls only ws__sha1(), ws__base64_encode() and
 * ws__random() (ws_internal.h); this is the one file that decides where
 * they come from, and the only file that includes OpenSSL headers.
 *
 *   WS_OPENSSL=1   libcrypto: EVP_Digest(EVP_sha1()) (the low-level SHA1_*
 *                  calls are deprecated in OpenSSL 3), EVP_EncodeBlock()
 *                  and RAND_bytes().
 *   WS_OPENSSL=0   the built-ins of ws_sha1.c, and the system's CSPRNG:
 *                  getrandom() on Linux (falling back to /dev/urandom on
 *                  kernels older than 3.17), arc4random_buf() on macOS,
 *                  the BSDs and Android, /dev/urandom elsewhere.
 *
 * An embedded target with its own entropy source builds with
 * -DWS_RANDOM_HOOK=my_fn, where
 *     int my_fn(uint8_t *out, size_t n);
 * fills out[0..n) and returns 0 on success. The hook replaces every other
 * random source, RAND_bytes() included.
 *
 * RFC 6455 10.3 requires the client's masking keys to be unpredictable,
 * and 4.1 wants a fresh random 16-byte Sec-WebSocket-Key per connection:
 * hence a CSPRNG, never rand().
 */

/*
 * Feature-test macros must come before the first system header, so they
 * precede the usual first include (ws_internal.h). They only widen what
 * libc declares:
 *   - Linux: getrandom() is in <sys/random.h>; glibc and musl declare it
 *     unconditionally, other C libraries may want _DEFAULT_SOURCE.
 *   - macOS and the BSDs hide arc4random_buf() when _POSIX_C_SOURCE (set
 *     by the Makefile) asks for a strict POSIX namespace, and show
 *     everything when it is not defined, so this file drops it there.
 */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE 1
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||    \
    defined(__NetBSD__)
#undef _POSIX_C_SOURCE
#endif

#include "ws_internal.h"

#if WS_OPENSSL
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#endif

/* Which random source ws__random() uses (see the file comment). */
#if defined(WS_RANDOM_HOOK)
#define RANDOM_FROM_HOOK 1
#elif WS_OPENSSL
#define RANDOM_FROM_OPENSSL 1
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||  \
    defined(__NetBSD__) || defined(__ANDROID__)
#define RANDOM_FROM_ARC4RANDOM 1
#elif defined(__linux__) &&                                                  \
    (!defined(__GLIBC__) || __GLIBC__ > 2 ||                                 \
     (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
/* glibc gained <sys/random.h> in 2.25; __GLIBC__ comes from the libc
 * headers ws_internal.h has already included. */
#define RANDOM_FROM_GETRANDOM 1
#define RANDOM_FROM_URANDOM 1 /* fallback for kernels without getrandom */
#else
#define RANDOM_FROM_URANDOM 1
#endif

#if defined(RANDOM_FROM_HOOK)
extern int WS_RANDOM_HOOK(uint8_t *out, size_t n);
#endif
#if defined(RANDOM_FROM_ARC4RANDOM)
#include <stdlib.h>
#endif
#if defined(RANDOM_FROM_GETRANDOM)
#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>
#endif
#if defined(RANDOM_FROM_URANDOM)
#include <stdio.h>
#endif

/* ------------------------------------------------------------------------ */
/* SHA-1 and Base64                                                         */
/* ------------------------------------------------------------------------ */

#if WS_OPENSSL

int ws__sha1(const uint8_t *data, size_t len, uint8_t out[WS_SHA1_LEN])
{
    static const uint8_t empty[1] = {0};
    unsigned int md_len = 0;

    /* EVP_Digest() is documented for a valid pointer; an empty message
     * may arrive as NULL. */
    if (data == NULL)
        data = empty;
    if (EVP_Digest(data, len, out, &md_len, EVP_sha1(), NULL) != 1 ||
        md_len != WS_SHA1_LEN)
        return WS_ERR_CRYPTO;
    return WS_OK;
}

/*
 * EVP_EncodeBlock() appends a NUL and takes an int length, but our callers
 * pass buffers of exactly 4 * ceil(n / 3) characters (WS_ACCEPT_LEN,
 * WS_KEY_LEN). So the input goes through in chunks of B64_CHUNK bytes, a
 * multiple of 3 (Base64 of a concatenation of 3-byte groups is the
 * concatenation of their encodings, RFC 4648 4), each encoded into a small
 * stack buffer and copied out without its NUL. Only the last chunk can be
 * padded.
 */
#define B64_CHUNK 48 /* -> 64 characters + NUL */

size_t ws__base64_encode(const uint8_t *in, size_t n, char *out)
{
    unsigned char tmp[B64_CHUNK / 3 * 4 + 1];
    size_t o = 0;

    while (n > 0) {
        size_t take = n < B64_CHUNK ? n : B64_CHUNK;
        int k = EVP_EncodeBlock(tmp, in, (int)take);

        WS_ASSERT(k == (int)((take + 2) / 3 * 4));
        memcpy(out + o, tmp, (size_t)k);
        o += (size_t)k;
        in += take;
        n -= take;
    }
    return o;
}

#else /* !WS_OPENSSL */

int ws__sha1(const uint8_t *data, size_t len, uint8_t out[WS_SHA1_LEN])
{
    ws__sha1_builtin(data, len, out);
    return WS_OK;
}

size_t ws__base64_encode(const uint8_t *in, size_t n, char *out)
{
    return ws__base64_encode_builtin(in, n, out);
}

#endif /* WS_OPENSSL */

/* ------------------------------------------------------------------------ */
/* Random bytes (RFC 6455 4.1, 5.3, 10.3)                                   */
/* ------------------------------------------------------------------------ */

#if defined(RANDOM_FROM_URANDOM)
/* Plain stdio, so it builds on any hosted system that has the device.
 * Unbuffered: no stdio buffer is allocated, and no random bytes are left
 * behind in one after fclose(). */
static int read_urandom(uint8_t *out, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");
    int rv = WS_OK;

    if (f == NULL)
        return WS_ERR_CRYPTO;
    if (setvbuf(f, NULL, _IONBF, 0) != 0) {
        fclose(f);
        return WS_ERR_CRYPTO;
    }
    while (n > 0) {
        size_t got = fread(out, 1, n, f);

        if (got == 0) {            /* EOF or error: the device failed */
            rv = WS_ERR_CRYPTO;
            break;
        }
        out += got;
        n -= got;
    }
    fclose(f);
    return rv;
}
#endif

#if defined(RANDOM_FROM_GETRANDOM)
/* getrandom(2) blocks only until the kernel pool is first seeded, and
 * returns short reads for large requests or when a signal arrives. */
static int read_getrandom(uint8_t *out, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(out, n, 0);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOSYS)   /* Linux < 3.17 */
                return read_urandom(out, n);
            return WS_ERR_CRYPTO;
        }
        out += (size_t)got;
        n -= (size_t)got;
    }
    return WS_OK;
}
#endif

int ws__random(uint8_t *out, size_t n)
{
    WS_ASSERT(out != NULL || n == 0);
    if (n == 0)
        return WS_OK;
    if (out == NULL)
        return WS_ERR_CRYPTO;

#if defined(RANDOM_FROM_HOOK)
    return WS_RANDOM_HOOK(out, n) == 0 ? WS_OK : WS_ERR_CRYPTO;
#elif defined(RANDOM_FROM_OPENSSL)
    /* RAND_bytes() takes an int count. */
    while (n > 0) {
        size_t take = n < (size_t)INT_MAX ? n : (size_t)INT_MAX;

        if (RAND_bytes(out, (int)take) != 1)
            return WS_ERR_CRYPTO;
        out += take;
        n -= take;
    }
    return WS_OK;
#elif defined(RANDOM_FROM_ARC4RANDOM)
    /* Cannot fail; reseeds itself from the kernel. */
    arc4random_buf(out, n);
    return WS_OK;
#elif defined(RANDOM_FROM_GETRANDOM)
    return read_getrandom(out, n);
#else
    return read_urandom(out, n);
#endif
}
