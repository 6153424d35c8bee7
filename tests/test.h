/*
 * test.h - a tiny test framework a student can step through.
 *
 * EXPECT_* macros never return or jump: on failure they print the
 * expression, both values and file:line, then call test_fail(), which is
 * not inlined, so `break test_fail` in gdb stops at every failure.
 * Tests are listed once, in tests/test_list.h (which includes one list file
 * per layer); test_main.c builds the runner table from it.
 */
#ifndef WS_TEST_H
#define WS_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ws.h"

void test_fail(const char *file, int line, const char *expr,
               const char *detail);
void test_fail_int(const char *file, int line, const char *expr,
                   long long got, long long want);
void test_fail_mem(const char *file, int line, const char *expr,
                   const void *got, size_t got_n, const void *want,
                   size_t want_n);
/* Returns 1 if equal, else reports and returns 0. */
int test_mem_eq(const char *file, int line, const char *expr, const void *a,
                size_t an, const void *b, size_t bn);
/* Printed as a TAP comment ("# ..."), for seeds and measured numbers. */
void test_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* A growing byte string for building inputs and recording outputs. The
 * helpers abort() if memory runs out (tests only). */
struct bytes {
    uint8_t *p;
    size_t n, cap;
};
void bytes_reserve(struct bytes *b, size_t extra);
void bytes_add(struct bytes *b, const void *p, size_t n);
void bytes_byte(struct bytes *b, unsigned v);
void bytes_str(struct bytes *b, const char *s);
void bytes_free(struct bytes *b);

/* Deterministic PRNG for property tests (xorshift64*). */
uint64_t test_rand(uint64_t *state);

#define EXPECT_TRUE(e)                                                         \
    do {                                                                       \
        if (!(e))                                                              \
            test_fail(__FILE__, __LINE__, #e, "is false");                     \
    } while (0)

#define EXPECT_EQ(a, b)                                                        \
    do {                                                                       \
        long long test_a_ = (long long)(a), test_b_ = (long long)(b);          \
        if (test_a_ != test_b_)                                                \
            test_fail_int(__FILE__, __LINE__, #a " == " #b, test_a_, test_b_); \
    } while (0)

#define EXPECT_MEM(p, n, q, m)                                                 \
    ((void)test_mem_eq(__FILE__, __LINE__, #p " == " #q, (p), (n), (q), (m)))

#define EXPECT_STR(s, t)                                                       \
    ((void)test_mem_eq(__FILE__, __LINE__, #s " == " #t, (s), strlen(s), (t), \
                       strlen(t)))

/* Declarations of every test, generated from the list. */
#define X(name) void test_##name(void);
#include "test_list.h"
#undef X

#endif /* WS_TEST_H */
