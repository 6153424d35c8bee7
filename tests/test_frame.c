/*
 * test_frame.c - the frame codec against the RFC 6455 5.7 example bytes,
 * every header rule, and ws_mask against a byte-by-byte reference.
 */
#define _DEFAULT_SOURCE
#include "test.h"

#include <stdlib.h>
#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

/* RFC 6455 5.7: a single-frame unmasked text message containing "Hello". */
static const uint8_t unmasked_hello[] = {
    0x81,                         /* FIN=1 RSV=000 opcode=0x1 (text)  */
    0x05,                         /* MASK=0 payload length=5          */
    0x48, 0x65, 0x6c, 0x6c, 0x6f, /* "Hello"                          */
};

/* RFC 6455 5.7: a single-frame masked text message containing "Hello". */
static const uint8_t masked_hello[] = {
    0x81,                         /* FIN=1 RSV=000 opcode=0x1 (text)  */
    0x85,                         /* MASK=1 payload length=5          */
    0x37, 0xfa, 0x21, 0x3d,       /* masking key                      */
    0x7f, 0x9f, 0x4d, 0x51, 0x58, /* "Hello" XOR masking key          */
};

/* RFC 6455 5.7: a fragmented unmasked text message, "Hel" then "lo". */
static const uint8_t frag_hel[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
static const uint8_t frag_lo[] = {0x80, 0x02, 0x6c, 0x6f};

/* RFC 6455 5.7: unmasked ping "Hello", and a masked pong "Hello". */
static const uint8_t ping_hello[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t masked_pong_hello[] = {0x8a, 0x85, 0x37, 0xfa, 0x21,
                                            0x3d, 0x7f, 0x9f, 0x4d, 0x51,
                                            0x58};

/* RFC 6455 5.7: 256 bytes and 64 KiB of binary data, unmasked headers. */
static const uint8_t bin256_header[] = {0x82, 0x7E, 0x01, 0x00};
static const uint8_t bin64k_header[] = {0x82, 0x7F, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x01, 0x00, 0x00};

static void check_decode(const uint8_t *p, size_t n, unsigned fin,
                         unsigned opcode, unsigned masked, uint64_t length,
                         size_t header_size)
{
    struct ws_frame f;
    size_t used = 99, k;

    EXPECT_EQ(ws_frame_decode_header(&f, p, n, &used, NULL), WS_OK);
    EXPECT_EQ(used, header_size);
    EXPECT_EQ(f.fin, fin);
    EXPECT_EQ(f.rsv, 0);
    EXPECT_EQ(f.opcode, opcode);
    EXPECT_EQ(f.masked, masked);
    EXPECT_EQ(f.length, length);
    /* Every shorter prefix is incomplete and consumes nothing. */
    for (k = 0; k < header_size; k++) {
        used = 99;
        EXPECT_EQ(ws_frame_decode_header(&f, p, k, &used, NULL),
                  WS_INCOMPLETE);
        EXPECT_EQ(used, 0);
    }
}

void test_frame_decodes_rfc_unmasked_hello(void)
{
    check_decode(unmasked_hello, sizeof unmasked_hello, 1, WS_OPCODE_TEXT, 0,
                 5, 2);
}

void test_frame_decodes_rfc_masked_hello(void)
{
    struct ws_frame f;
    size_t used;
    uint8_t payload[5];

    check_decode(masked_hello, sizeof masked_hello, 1, WS_OPCODE_TEXT, 1, 5,
                 6);
    EXPECT_EQ(ws_frame_decode_header(&f, masked_hello, sizeof masked_hello,
                                     &used, NULL), WS_OK);
    EXPECT_MEM(f.mask, 4, masked_hello + 2, 4);
    ws_mask(payload, masked_hello + used, 5, f.mask, 0);
    EXPECT_MEM(payload, 5, "Hello", 5);
}

void test_frame_decodes_rfc_fragments(void)
{
    check_decode(frag_hel, sizeof frag_hel, 0, WS_OPCODE_TEXT, 0, 3, 2);
    check_decode(frag_lo, sizeof frag_lo, 1, WS_OPCODE_CONTINUATION, 0, 2, 2);
}

void test_frame_decodes_rfc_ping_pong(void)
{
    check_decode(ping_hello, sizeof ping_hello, 1, WS_OPCODE_PING, 0, 5, 2);
    check_decode(masked_pong_hello, sizeof masked_pong_hello, 1,
                 WS_OPCODE_PONG, 1, 5, 6);
}

void test_frame_decodes_rfc_256_and_64k(void)
{
    check_decode(bin256_header, sizeof bin256_header, 1, WS_OPCODE_BINARY, 0,
                 256, 4);
    check_decode(bin64k_header, sizeof bin64k_header, 1, WS_OPCODE_BINARY, 0,
                 65536, 10);
}

static void check_encode(unsigned fin, unsigned opcode, unsigned masked,
                         const uint8_t *key, uint64_t length,
                         const uint8_t *want, size_t want_n)
{
    struct ws_frame f;
    uint8_t out[WS_FRAME_HEADER_MAX];
    size_t n = 0;

    memset(&f, 0, sizeof f);
    f.fin = fin;
    f.opcode = opcode;
    f.masked = masked;
    if (key)
        memcpy(f.mask, key, 4);
    f.length = length;
    EXPECT_EQ(ws_frame_encode_header(out, sizeof out, &f, &n), WS_OK);
    EXPECT_MEM(out, n, want, want_n);
}

void test_frame_encodes_rfc_examples(void)
{
    uint8_t buf[5];

    check_encode(1, WS_OPCODE_TEXT, 0, NULL, 5, unmasked_hello, 2);
    check_encode(1, WS_OPCODE_TEXT, 1, masked_hello + 2, 5, masked_hello, 6);
    ws_mask(buf, (const uint8_t *)"Hello", 5, masked_hello + 2, 0);
    EXPECT_MEM(buf, 5, masked_hello + 6, 5);
    check_encode(0, WS_OPCODE_TEXT, 0, NULL, 3, frag_hel, 2);
    check_encode(1, WS_OPCODE_CONTINUATION, 0, NULL, 2, frag_lo, 2);
    check_encode(1, WS_OPCODE_PING, 0, NULL, 5, ping_hello, 2);
    check_encode(1, WS_OPCODE_PONG, 1, masked_pong_hello + 2, 5,
                 masked_pong_hello, 6);
    check_encode(1, WS_OPCODE_BINARY, 0, NULL, 256, bin256_header, 4);
    check_encode(1, WS_OPCODE_BINARY, 0, NULL, 65536, bin64k_header, 10);
}

/* RFC 6455 5.2: "the minimal number of bytes MUST be used". */
void test_frame_encodes_minimal_length(void)
{
    static const struct {
        uint64_t length;
        size_t size;
    } cases[] = {{0, 2},     {125, 2},   {126, 4},          {65535, 4},
                 {65536, 10}, {1u << 31, 10}, {(1ull << 63) - 1, 10}};
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ws_frame f, g;
        uint8_t out[WS_FRAME_HEADER_MAX];
        size_t n, used;

        memset(&f, 0, sizeof f);
        f.fin = 1;
        f.opcode = WS_OPCODE_BINARY;
        f.length = cases[i].length;
        EXPECT_EQ(ws_frame_encode_header(out, sizeof out, &f, &n), WS_OK);
        EXPECT_EQ(n, cases[i].size);
        EXPECT_EQ(ws_frame_decode_header(&g, out, n, &used, NULL), WS_OK);
        EXPECT_EQ(g.length, cases[i].length);
    }
}

void test_frame_encode_rejects_bad_args(void)
{
    struct ws_frame f;
    uint8_t out[WS_FRAME_HEADER_MAX];
    size_t n;

    memset(&f, 0, sizeof f);
    f.fin = 1;
    f.opcode = WS_OPCODE_PING;
    f.length = 126;                 /* RFC 6455 5.5 */
    EXPECT_EQ(ws_frame_encode_header(out, sizeof out, &f, &n),
              WS_ERR_INVALID_ARG);
    f.length = 5;
    f.fin = 0;                      /* RFC 6455 5.5 */
    EXPECT_EQ(ws_frame_encode_header(out, sizeof out, &f, &n),
              WS_ERR_INVALID_ARG);
    f.fin = 1;
    f.opcode = 16;
    EXPECT_EQ(ws_frame_encode_header(out, sizeof out, &f, &n),
              WS_ERR_INVALID_ARG);
    f.opcode = WS_OPCODE_BINARY;
    f.length = 1ull << 63;          /* RFC 6455 5.2 */
    EXPECT_EQ(ws_frame_encode_header(out, sizeof out, &f, &n),
              WS_ERR_INVALID_ARG);
    f.length = 70000;
    EXPECT_EQ(ws_frame_encode_header(out, 9, &f, &n), WS_ERR_NO_SPACE);
    EXPECT_EQ(ws_frame_encode_header(NULL, 14, &f, &n), WS_ERR_INVALID_ARG);
}

/* RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0. */
void test_frame_rejects_64bit_top_bit(void)
{
    static const uint8_t bad[] = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0};
    struct ws_frame f;
    size_t used;
    const char *why = NULL;

    EXPECT_EQ(ws_frame_decode_header(&f, bad, sizeof bad, &used, &why),
              WS_ERR_PROTOCOL);
    EXPECT_TRUE(why != NULL);
    EXPECT_EQ(used, sizeof bad);    /* still filled in, for dissectors */
}

/* RFC 6455 5.2: opcodes 3-7 and 11-15 are reserved. */
void test_frame_rejects_reserved_opcodes(void)
{
    unsigned op;

    for (op = 0; op < 16; op++) {
        uint8_t hdr[2];
        struct ws_frame f;
        size_t used;
        int reserved = (op >= 3 && op <= 7) || op >= 11;

        hdr[0] = (uint8_t)(0x80u | op);
        hdr[1] = 0;
        EXPECT_EQ(ws_frame_decode_header(&f, hdr, 2, &used, NULL),
                  reserved ? WS_ERR_PROTOCOL : WS_OK);
    }
}

/* RFC 6455 5.5: control frames carry at most 125 bytes. */
void test_frame_rejects_long_control(void)
{
    static const uint8_t ping126[] = {0x89, 0x7E, 0x00, 0x7E};
    static const uint8_t close126[] = {0x88, 0x7E, 0x00, 0x7E};
    static const uint8_t pong125[] = {0x8A, 0x7D};
    struct ws_frame f;
    size_t used;

    EXPECT_EQ(ws_frame_decode_header(&f, ping126, 4, &used, NULL),
              WS_ERR_PROTOCOL);
    EXPECT_EQ(ws_frame_decode_header(&f, close126, 4, &used, NULL),
              WS_ERR_PROTOCOL);
    EXPECT_EQ(ws_frame_decode_header(&f, pong125, 2, &used, NULL), WS_OK);
}

/* RFC 6455 5.5: control frames MUST NOT be fragmented. */
void test_frame_rejects_fragmented_ping(void)
{
    static const uint8_t frag_ping[] = {0x09, 0x00};
    struct ws_frame f;
    size_t used;

    EXPECT_EQ(ws_frame_decode_header(&f, frag_ping, 2, &used, NULL),
              WS_ERR_PROTOCOL);
}

void test_frame_reads_rsv_bits(void)
{
    static const uint8_t rsv[] = {0xF1, 0x00};
    struct ws_frame f;
    size_t used;

    /* RSV bits are a connection rule (extensions), not a codec rule. */
    EXPECT_EQ(ws_frame_decode_header(&f, rsv, 2, &used, NULL), WS_OK);
    EXPECT_EQ(f.rsv, WS_RSV1 | WS_RSV2 | WS_RSV3);
}

void test_frame_decode_stays_in_bounds(void)
{
#ifdef __linux__
    /* Each header ends exactly at a PROT_NONE page: any over-read faults. */
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const uint8_t *hdrs[] = {unmasked_hello, masked_hello, bin256_header,
                             bin64k_header};
    const size_t sizes[] = {2, 6, 4, 10};
    size_t i, k;

    EXPECT_TRUE(mem != MAP_FAILED);
    if (mem == MAP_FAILED)
        return;
    EXPECT_EQ(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
    for (i = 0; i < 4; i++) {
        for (k = 0; k <= sizes[i]; k++) {
            uint8_t *at = mem + page - k;
            struct ws_frame f;
            size_t used, size;

            memcpy(at, hdrs[i], k);
            EXPECT_EQ(ws_frame_decode_header(&f, at, k, &used, NULL),
                      k == sizes[i] ? WS_OK : WS_INCOMPLETE);
            (void)ws_frame_header_size(at, k, &size);
        }
    }
    munmap(mem, (size_t)page * 2);
#endif
}

static void mask_reference(uint8_t *dst, const uint8_t *src, size_t n,
                           const uint8_t key[4], uint64_t off)
{
    size_t i;

    for (i = 0; i < n; i++)
        dst[i] = src[i] ^ key[(off + i) % 4];
}

/* ws_mask equals the byte-at-a-time definition for every length, key
 * offset and alignment, in place and out of place. */
void test_mask_matches_reference(void)
{
    uint8_t src[300 + 8], dst[300 + 8], ref[300 + 8];
    uint64_t seed = 1;
    size_t n, a, i;

    for (i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)test_rand(&seed);
    for (n = 0; n <= 300; n += (n < 70 ? 1 : 37)) {
        for (a = 0; a < 8; a++) {
            uint8_t key[4];
            uint64_t off = test_rand(&seed) % 1000;

            for (i = 0; i < 4; i++)
                key[i] = (uint8_t)test_rand(&seed);
            mask_reference(ref, src + a, n, key, off);
            ws_mask(dst + (7 - a), src + a, n, key, off);
            EXPECT_MEM(dst + (7 - a), n, ref, n);
            memcpy(dst + a, src + a, n);
            ws_mask(dst + a, dst + a, n, key, off);   /* in place */
            EXPECT_MEM(dst + a, n, ref, n);
        }
    }
}

/* Masking in two pieces at any split point equals masking at once. */
void test_mask_resumes_at_any_offset(void)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t src[100], whole[100], split[100];
    size_t n = sizeof src, k;

    for (k = 0; k < n; k++)
        src[k] = (uint8_t)(k * 7 + 3);
    ws_mask(whole, src, n, key, 0);
    for (k = 0; k <= n; k++) {
        ws_mask(split, src, k, key, 0);
        ws_mask(split + k, src + k, n - k, key, k);
        EXPECT_MEM(split, n, whole, n);
    }
}

void test_status_table_lookups(void)
{
    EXPECT_STR(ws_err_name(WS_ERR_PROTOCOL), "WS_ERR_PROTOCOL");
    EXPECT_EQ(ws_err_close_code(WS_ERR_PROTOCOL), 1002);
    EXPECT_EQ(ws_err_close_code(WS_ERR_BAD_UTF8), 1007);
    EXPECT_EQ(ws_err_close_code(WS_ERR_TOO_BIG), 1009);
    EXPECT_EQ(ws_err_close_code(WS_ERR_CALLBACK), 1011);
    EXPECT_EQ(ws_err_http_status(WS_ERR_VERSION), 426);
    EXPECT_EQ(ws_err_http_status(WS_ERR_HEADER_TOO_BIG), 431);
    EXPECT_EQ(ws_err_is_fatal(WS_ERR_PROTOCOL), 1);
    EXPECT_EQ(ws_err_is_fatal(WS_AGAIN), 0);
    EXPECT_EQ(ws_err_is_fatal(WS_ERR_INVALID_ARG), 0);
    EXPECT_STR(ws_strerror(12345), "unknown status");
    EXPECT_STR(ws_strerror(WS_OK), "success");
}

void test_close_code_names(void)
{
    unsigned code;

    EXPECT_STR(ws_close_code_str(1000), "normal closure");
    EXPECT_STR(ws_close_code_str(1002), "protocol error");
    EXPECT_STR(ws_close_code_str(1014), "bad gateway");
    EXPECT_STR(ws_close_code_str(3000), "registered (IANA)");
    EXPECT_STR(ws_close_code_str(4999), "private use");
    EXPECT_STR(ws_close_code_str(999), "invalid");
    EXPECT_STR(ws_close_code_str(5000), "invalid");
    for (code = 0; code < 70000; code++)
        EXPECT_TRUE(ws_close_code_str(code) != NULL);
}
