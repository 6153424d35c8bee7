/*
 * test_crypto.c - the crypto shim: built-in SHA-1 and Base64 (ws_sha1.c)
 * and the configured provider (ws_crypto_openssl.c).
 *
 * Known answers come from FIPS 180 (SHA-1 examples), RFC 4648 10 (Base64)
 * and RFC 6455 1.3 (the Sec-WebSocket-Accept example). The provider is
 * also checked against the built-in on pseudo-random data, so the OpenSSL
 * build and the WS_OPENSSL=0 build must agree byte for byte.
 *
 * To check the random hook, build with
 *     -DWS_RANDOM_HOOK=test_crypto_random_hook
 * (random_hook_replaces_source then runs; otherwise it only notes a skip).
 */
#include "test.h"
#include "ws_internal.h"

/* Parse a hex string (no separators) into out; returns the byte count. */
static size_t from_hex(const char *hex, uint8_t *out)
{
    size_t n = 0;

    while (hex[0] && hex[1]) {
        unsigned v = 0;
        int i;

        for (i = 0; i < 2; i++) {
            char ch = hex[i];
            v <<= 4;
            if (ch >= '0' && ch <= '9')
                v |= (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                v |= (unsigned)(ch - 'a' + 10);
            else if (ch >= 'A' && ch <= 'F')
                v |= (unsigned)(ch - 'A' + 10);
        }
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

static void fill_random(uint64_t *seed, uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(test_rand(seed) >> 56);
}

/* ------------------------------------------------------------------------ */
/* SHA-1 (FIPS 180-4; vectors from the FIPS 180 examples)                   */
/* ------------------------------------------------------------------------ */

struct sha1_vector {
    const char *msg;
    const char *digest_hex;
};

static const struct sha1_vector fips_abc = {
    "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"};
static const struct sha1_vector fips_empty = {
    "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"};
/* 448 bits: the message fills 56 bytes, so padding needs a second block. */
static const struct sha1_vector fips_448 = {
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
    "84983e441c3bd26ebaae4aa1f95129e5e54670f1"};
static const struct sha1_vector fips_896 = {
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
    "a49b2446a02c645bf419f995b67091253a04a259"};
static const char million_a_hex[] = "34aa973cd4c4daa4f61eeb2bdbad27316534016f";

static void check_builtin(const struct sha1_vector *v)
{
    uint8_t want[WS_SHA1_LEN], got[WS_SHA1_LEN];

    EXPECT_EQ(from_hex(v->digest_hex, want), WS_SHA1_LEN);
    ws__sha1_builtin((const uint8_t *)v->msg, strlen(v->msg), got);
    EXPECT_MEM(got, WS_SHA1_LEN, want, WS_SHA1_LEN);
}

static void check_provider(const struct sha1_vector *v)
{
    uint8_t want[WS_SHA1_LEN], got[WS_SHA1_LEN];

    EXPECT_EQ(from_hex(v->digest_hex, want), WS_SHA1_LEN);
    EXPECT_EQ(ws__sha1((const uint8_t *)v->msg, strlen(v->msg), got), WS_OK);
    EXPECT_MEM(got, WS_SHA1_LEN, want, WS_SHA1_LEN);
}

void test_sha1_fips_abc(void)
{
    check_builtin(&fips_abc);
}

void test_sha1_fips_empty(void)
{
    uint8_t want[WS_SHA1_LEN], got[WS_SHA1_LEN];

    check_builtin(&fips_empty);
    /* An empty message may come as a NULL pointer. */
    from_hex(fips_empty.digest_hex, want);
    ws__sha1_builtin(NULL, 0, got);
    EXPECT_MEM(got, WS_SHA1_LEN, want, WS_SHA1_LEN);
    EXPECT_EQ(ws__sha1(NULL, 0, got), WS_OK);
    EXPECT_MEM(got, WS_SHA1_LEN, want, WS_SHA1_LEN);
}

void test_sha1_fips_448_bits(void)
{
    check_builtin(&fips_448);
}

void test_sha1_fips_896_bits(void)
{
    check_builtin(&fips_896);
}

/* One million 'a', fed through update() in odd-sized chunks so the input
 * straddles block boundaries in every phase of the 64-byte block. */
void test_sha1_fips_million_a_odd_chunks(void)
{
    static const size_t chunks[] = {1, 7, 63, 64, 65, 127, 128, 129, 997, 3};
    uint8_t a[1000];
    uint8_t want[WS_SHA1_LEN], got[WS_SHA1_LEN];
    struct ws__sha1_ctx ctx;
    size_t left = 1000000, k = 0;

    memset(a, 'a', sizeof a);
    from_hex(million_a_hex, want);
    ws__sha1_init(&ctx);
    while (left > 0) {
        size_t n = chunks[k++ % (sizeof chunks / sizeof chunks[0])];
        if (n > left)
            n = left;
        ws__sha1_update(&ctx, a, n);
        left -= n;
    }
    ws__sha1_final(&ctx, got);
    EXPECT_MEM(got, WS_SHA1_LEN, want, WS_SHA1_LEN);
}

/* The 896-bit message split at every point, and byte by byte, gives the
 * one-shot digest (update() resumes at any byte boundary). */
void test_sha1_streaming_every_split(void)
{
    const uint8_t *m = (const uint8_t *)fips_896.msg;
    size_t len = strlen(fips_896.msg), cut, i;
    uint8_t want[WS_SHA1_LEN], got[WS_SHA1_LEN];
    struct ws__sha1_ctx ctx;

    from_hex(fips_896.digest_hex, want);
    for (cut = 0; cut <= len; cut++) {
        ws__sha1_init(&ctx);
        ws__sha1_update(&ctx, m, cut);
        ws__sha1_update(&ctx, NULL, 0);
        ws__sha1_update(&ctx, m + cut, len - cut);
        ws__sha1_final(&ctx, got);
        if (!test_mem_eq(__FILE__, __LINE__, "split digest", got, WS_SHA1_LEN,
                         want, WS_SHA1_LEN)) {
            test_note("cut at %zu", cut);
            break;
        }
    }
    ws__sha1_init(&ctx);
    for (i = 0; i < len; i++)
        ws__sha1_update(&ctx, m + i, 1);
    ws__sha1_final(&ctx, got);
    EXPECT_MEM(got, WS_SHA1_LEN, want, WS_SHA1_LEN);
}

void test_sha1_provider_fips_vectors(void)
{
    static uint8_t million[1000000];
    uint8_t want[WS_SHA1_LEN], got[WS_SHA1_LEN];

    check_provider(&fips_abc);
    check_provider(&fips_empty);
    check_provider(&fips_448);
    check_provider(&fips_896);

    memset(million, 'a', sizeof million);
    from_hex(million_a_hex, want);
    EXPECT_EQ(ws__sha1(million, sizeof million, got), WS_OK);
    EXPECT_MEM(got, WS_SHA1_LEN, want, WS_SHA1_LEN);
}

/* Differential: every length 0..300 covers the padding edge cases (55, 56,
 * 63, 64, 119, 120 ... bytes) and multi-block input; the built-in is also
 * fed in two pieces split at a random point. */
void test_sha1_builtin_matches_provider(void)
{
    uint8_t data[300];
    uint8_t a[WS_SHA1_LEN], b[WS_SHA1_LEN], c[WS_SHA1_LEN];
    uint64_t seed = 0x51a1c0ffeeull;
    size_t len;

    for (len = 0; len <= sizeof data; len++) {
        struct ws__sha1_ctx ctx;
        size_t cut;

        fill_random(&seed, data, len);
        cut = len ? (size_t)(test_rand(&seed) % (len + 1)) : 0;
        ws__sha1_builtin(data, len, a);
        EXPECT_EQ(ws__sha1(data, len, b), WS_OK);
        ws__sha1_init(&ctx);
        ws__sha1_update(&ctx, data, cut);
        ws__sha1_update(&ctx, data + cut, len - cut);
        ws__sha1_final(&ctx, c);
        if (!test_mem_eq(__FILE__, __LINE__, "builtin == provider", a,
                         WS_SHA1_LEN, b, WS_SHA1_LEN) ||
            !test_mem_eq(__FILE__, __LINE__, "one-shot == split", a,
                         WS_SHA1_LEN, c, WS_SHA1_LEN)) {
            test_note("length %zu, cut %zu", len, cut);
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Base64 (RFC 4648)                                                        */
/* ------------------------------------------------------------------------ */

/* RFC 4648 10: test vectors. */
static const char *const b64_plain[] = {"",     "f",     "fo",    "foo",
                                        "foob", "fooba", "foobar"};
static const char *const b64_coded[] = {"",         "Zg==",     "Zm8=",
                                        "Zm9v",     "Zm9vYg==", "Zm9vYmE=",
                                        "Zm9vYmFy"};
#define B64_VECTORS (sizeof b64_plain / sizeof b64_plain[0])

/* Encode into an exact-size buffer followed by canaries: the encoder must
 * write exactly 4 * ceil(n / 3) characters and no NUL. */
static void check_encoder(size_t (*enc)(const uint8_t *, size_t, char *))
{
    size_t i;

    for (i = 0; i < B64_VECTORS; i++) {
        char out[16];
        size_t want = strlen(b64_coded[i]), got;

        memset(out, '#', sizeof out);
        got = enc((const uint8_t *)b64_plain[i], strlen(b64_plain[i]), out);
        EXPECT_EQ(got, want);
        EXPECT_MEM(out, got, b64_coded[i], want);
        EXPECT_EQ(out[want], '#');
    }
}

void test_base64_encode_rfc4648_vectors(void)
{
    check_encoder(ws__base64_encode_builtin);
}

void test_base64_encode_provider_rfc4648_vectors(void)
{
    check_encoder(ws__base64_encode);
}

/* Lengths 0..300 cover several of the provider's internal chunks; the
 * byte after the output must stay untouched. */
void test_base64_encode_provider_matches_builtin(void)
{
    uint8_t data[300];
    char a[401], b[401];
    uint64_t seed = 0xba5e64ull;
    size_t len;

    for (len = 0; len <= sizeof data; len++) {
        size_t want = (len + 2) / 3 * 4, na, nb;

        fill_random(&seed, data, len);
        memset(a, '#', sizeof a);
        memset(b, '#', sizeof b);
        na = ws__base64_encode_builtin(data, len, a);
        nb = ws__base64_encode(data, len, b);
        EXPECT_EQ(na, want);
        EXPECT_EQ(nb, want);
        EXPECT_EQ(a[want], '#');
        EXPECT_EQ(b[want], '#');
        if (!test_mem_eq(__FILE__, __LINE__, "builtin == provider", a, na, b,
                         nb)) {
            test_note("length %zu", len);
            break;
        }
    }
}

void test_base64_decode_rfc4648_vectors(void)
{
    size_t i;

    for (i = 0; i < B64_VECTORS; i++) {
        uint8_t out[8];
        size_t n = 99;

        EXPECT_EQ(ws__base64_decode(b64_coded[i], strlen(b64_coded[i]), out,
                                    sizeof out, &n),
                  WS_OK);
        EXPECT_MEM(out, n, b64_plain[i], strlen(b64_plain[i]));
    }
    /* RFC 6455 4.1: a Sec-WebSocket-Key is base64 of 16 bytes. */
    {
        uint8_t out[16];
        size_t n = 0;
        EXPECT_EQ(ws__base64_decode("dGhlIHNhbXBsZSBub25jZQ==", 24, out,
                                    sizeof out, &n),
                  WS_OK);
        EXPECT_MEM(out, n, "the sample nonce", 16);
    }
}

/* Expect in[0..n) to be rejected, with *outlen left alone. */
static void expect_reject(const char *in, size_t n, int line)
{
    uint8_t out[64];
    size_t got = 12345;
    int rv = ws__base64_decode(in, n, out, sizeof out, &got);

    if (rv != WS_ERR_INVALID_ARG || got != 12345) {
        test_fail_int(__FILE__, line, "ws__base64_decode rejects", rv,
                      WS_ERR_INVALID_ARG);
        test_note("input \"%.*s\" (length %zu)", (int)n, in, n);
    }
}
#define REJECT(s) expect_reject((s), sizeof(s) - 1, __LINE__)

/* RFC 4648 3.2: padding is required, so the length is a multiple of 4. */
void test_base64_decode_rejects_bad_length(void)
{
    REJECT("Z");
    REJECT("Zg");
    REJECT("Zg=");
    REJECT("Zm9");
    REJECT("Zm9vY");
    REJECT("Zm9vYg=");
    REJECT("dGhlIHNhbXBsZSBub25jZQ=");
    REJECT("dGhlIHNhbXBsZSBub25jZQ");
    /* Valid characters follow in memory: only n may stop the decoder. */
    expect_reject("Zm9vYmFy", 1, __LINE__);
    expect_reject("Zm9vYmFy", 2, __LINE__);
    expect_reject("Zm9vYmFy", 3, __LINE__);
    expect_reject("Zm9vYmFy", 5, __LINE__);
    expect_reject("Zm9vYmFy", 6, __LINE__);
    expect_reject("Zm9vYmFy", 7, __LINE__);
}

/* RFC 4648 3.3: characters outside the alphabet are rejected. */
void test_base64_decode_rejects_bad_chars(void)
{
    REJECT("Zm9!");
    REJECT("Zm-v");           /* base64url alphabet (RFC 4648 5) */
    REJECT("Zm_v");
    REJECT("Zm9\x80");
    REJECT("Zm9\xff");
    REJECT("Zm\0v");          /* embedded NUL */
    REJECT("Zm9v.mFy");
    REJECT("*m9v");
}

/* RFC 4648 3.3: '=' only as the final one or two characters. */
void test_base64_decode_rejects_misplaced_pad(void)
{
    REJECT("=m9v");
    REJECT("Z=9v");
    REJECT("Zm=v");
    REJECT("=Zm9");
    REJECT("Zg=a");
    REJECT("Z=g=");
    REJECT("Zg==Zm9v");       /* padding in a middle quantum */
    REJECT("Zm8=Zm9v");
    REJECT("Zm9v=m9v");
}

void test_base64_decode_rejects_triple_pad(void)
{
    REJECT("Z===");
    REJECT("====");
    REJECT("Zm9vZ===");
    REJECT("Zm9v====");
}

/* RFC 4648 3.3: no line breaks or other whitespace. */
void test_base64_decode_rejects_whitespace(void)
{
    REJECT("Zm\r\n");
    REJECT("Zm 9");
    REJECT(" Zm9");
    REJECT("Zm9v    ");
    REJECT("Zm9vYmF\t");
    REJECT("Zm9v\nYmFy\n");
    REJECT("Zm9vYg==\r\n\r\n");
    REJECT("Zm9\v");
}

/* RFC 4648 3.5: the pad bits of the last sextet must be zero, or two
 * strings would decode to the same bytes. */
void test_base64_decode_rejects_noncanonical_bits(void)
{
    REJECT("dGhlIHNhbXBsZSBub25jZR==");  /* 'R' = 010001: low 4 bits set */
    REJECT("dGhlIHNhbXBsZSBub25jZf==");
    REJECT("Zh==");
    REJECT("Zm9=");                       /* '9' = 111101: low 2 bits set */
    REJECT("Zm9vYh==");
    REJECT("Zm9vYmF=");
    REJECT("Zm9vYmG=");
}

/* Every "XY==" and "XYZ=" over the alphabet: exactly 256 (resp. 65536)
 * are accepted, and each accepted one re-encodes to itself. */
void test_base64_decode_accepts_only_canonical(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned x, y, z;
    unsigned long ok2 = 0, ok1 = 0, bad = 0;

    for (x = 0; x < 64; x++) {
        for (y = 0; y < 64; y++) {
            for (z = 0; z < 65; z++) {
                char in[4], back[4];
                uint8_t out[3];
                size_t n = 0;

                in[0] = alphabet[x];
                in[1] = alphabet[y];
                in[2] = z == 64 ? '=' : alphabet[z];
                in[3] = '=';
                if (ws__base64_decode(in, 4, out, sizeof out, &n) != WS_OK)
                    continue;
                if (z == 64)
                    ok2++;
                else
                    ok1++;
                if (n != (z == 64 ? 1u : 2u) ||
                    ws__base64_encode_builtin(out, n, back) != 4 ||
                    memcmp(in, back, 4) != 0)
                    bad++;
            }
        }
    }
    EXPECT_EQ(ok2, 256);
    EXPECT_EQ(ok1, 65536);
    EXPECT_EQ(bad, 0);
}

/* The output must fit in cap bytes; nothing is written when it does not. */
void test_base64_decode_rejects_over_cap(void)
{
    uint8_t out[8];
    size_t n = 12345;

    memset(out, 0xee, sizeof out);
    EXPECT_EQ(ws__base64_decode("Zm9vYmFy", 8, out, 5, &n),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws__base64_decode("Zm9vYg==", 8, out, 3, &n),
              WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws__base64_decode("Zg==", 4, out, 0, &n), WS_ERR_INVALID_ARG);
    EXPECT_EQ(ws__base64_decode("Zg==", 4, NULL, 0, &n), WS_ERR_INVALID_ARG);
    EXPECT_EQ(n, 12345);
    EXPECT_EQ(out[0], 0xee);

    /* Exactly enough room is fine. */
    EXPECT_EQ(ws__base64_decode("Zm9vYmFy", 8, out, 6, &n), WS_OK);
    EXPECT_MEM(out, n, "foobar", 6);
    EXPECT_EQ(out[6], 0xee);
    EXPECT_EQ(ws__base64_decode("Zm9vYg==", 8, out, 4, &n), WS_OK);
    EXPECT_MEM(out, n, "foob", 4);
    EXPECT_EQ(ws__base64_decode("", 0, NULL, 0, &n), WS_OK);
    EXPECT_EQ(n, 0);
    /* A missing out-parameter is a caller mistake. */
    EXPECT_EQ(ws__base64_decode("Zm9v", 4, out, sizeof out, NULL),
              WS_ERR_INVALID_ARG);
}

void test_base64_round_trip_random(void)
{
    uint8_t data[300], back[300];
    char text[400];
    uint64_t seed = 0x70a57ull;
    size_t len;

    for (len = 0; len <= sizeof data; len++) {
        size_t tn, bn = 0;

        fill_random(&seed, data, len);
        tn = ws__base64_encode(data, len, text);
        EXPECT_EQ(tn, (len + 2) / 3 * 4);
        EXPECT_EQ(ws__base64_decode(text, tn, back, len, &bn), WS_OK);
        if (!test_mem_eq(__FILE__, __LINE__, "round trip", back, bn, data,
                         len)) {
            test_note("length %zu", len);
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Random bytes (RFC 6455 10.3)                                             */
/* ------------------------------------------------------------------------ */

/* Each draw writes exactly n bytes, and over 32 draws of 64 bytes every
 * bit is seen both set and clear (false failure odds about 2^-22). */
void test_random_fills_buffer(void)
{
    static const size_t sizes[] = {0, 1, 3, 4, 16, 17, 1000};
    uint8_t buf[1001], all_or[64], all_and[64];
    size_t i, k;

    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        memset(buf, 0x5a, sizeof buf);
        EXPECT_EQ(ws__random(buf, sizes[k]), WS_OK);
        EXPECT_EQ(buf[sizes[k]], 0x5a);
    }
    EXPECT_EQ(ws__random(NULL, 0), WS_OK);

    memset(all_or, 0x00, sizeof all_or);
    memset(all_and, 0xff, sizeof all_and);
    for (k = 0; k < 32; k++) {
        uint8_t draw[64];
        EXPECT_EQ(ws__random(draw, sizeof draw), WS_OK);
        for (i = 0; i < sizeof draw; i++) {
            all_or[i] |= draw[i];
            all_and[i] &= draw[i];
        }
    }
    for (i = 0; i < sizeof all_or; i++) {
        if (all_or[i] != 0xff || all_and[i] != 0x00) {
            test_fail_int(__FILE__, __LINE__, "every bit varies", (long long)i,
                          -1);
            break;
        }
    }
}

/* Two Sec-WebSocket-Key nonces (RFC 6455 4.1) must not repeat. */
void test_random_draws_differ(void)
{
    uint8_t a[16], b[16];

    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    EXPECT_EQ(ws__random(a, sizeof a), WS_OK);
    EXPECT_EQ(ws__random(b, sizeof b), WS_OK);
    EXPECT_TRUE(memcmp(a, b, sizeof a) != 0);
}

/* A stand-in for an embedded entropy source, used only when the shim is
 * built with -DWS_RANDOM_HOOK=test_crypto_random_hook. It gives xorshift
 * output (so the other random tests still pass), or a counter when a test
 * wants to recognise its bytes, or fails on request. */
int test_crypto_random_hook(uint8_t *out, size_t n);

static int hook_fail, hook_counting;
static unsigned long hook_calls;
static uint8_t hook_next;
static uint64_t hook_seed = 0x400c5eedull;

int test_crypto_random_hook(uint8_t *out, size_t n)
{
    size_t i;

    hook_calls++;
    if (hook_fail)
        return -1;
    for (i = 0; i < n; i++)
        out[i] = hook_counting ? hook_next++
                               : (uint8_t)(test_rand(&hook_seed) >> 56);
    return 0;
}

void test_random_hook_replaces_source(void)
{
#ifdef WS_RANDOM_HOOK
    uint8_t buf[4];
    unsigned long calls = hook_calls;

    hook_counting = 1;
    hook_next = 0x10;
    EXPECT_EQ(ws__random(buf, sizeof buf), WS_OK);
    EXPECT_MEM(buf, 4, "\x10\x11\x12\x13", 4);
    EXPECT_EQ(hook_calls, calls + 1);
    /* RFC 6455 10.3 needs the source; its failure is the shim's failure. */
    hook_fail = 1;
    EXPECT_EQ(ws__random(buf, sizeof buf), WS_ERR_CRYPTO);
    hook_fail = 0;
    hook_counting = 0;
#else
    (void)hook_fail;
    (void)hook_counting;
    (void)hook_next;
    (void)hook_calls;
    test_note("random_hook_replaces_source: built without WS_RANDOM_HOOK");
#endif
}

/* ------------------------------------------------------------------------ */
/* RFC 6455 1.3: the worked Sec-WebSocket-Accept example, built from the    */
/* shim the way the handshake builds it                                     */
/* ------------------------------------------------------------------------ */

void test_crypto_rfc6455_accept_known_answer(void)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    char concat[sizeof key - 1 + sizeof WS_GUID - 1];
    uint8_t digest[WS_SHA1_LEN];
    char accept[WS_ACCEPT_LEN + 1];
    size_t n;

    memcpy(concat, key, sizeof key - 1);
    memcpy(concat + sizeof key - 1, WS_GUID, sizeof WS_GUID - 1);
    EXPECT_EQ(ws__sha1((const uint8_t *)concat, sizeof concat, digest), WS_OK);
    memset(accept, '#', sizeof accept);
    n = ws__base64_encode(digest, sizeof digest, accept);
    EXPECT_EQ(n, WS_ACCEPT_LEN);
    EXPECT_MEM(accept, n, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WS_ACCEPT_LEN);
    EXPECT_EQ(accept[WS_ACCEPT_LEN], '#');
}
