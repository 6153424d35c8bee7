/*
 * test_main.c - runs every test in tests/test_list.h, or those named on the
 * command line, in-process (no fork), so any one can be debugged:
 *     gdb --args build/tests/ws_tests frame_parses_masked_hello
 * Output is TAP followed by a "N passed, N failed" line.
 */
#include "test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct test_entry {
    const char *name;
    void (*fn)(void);
};

static const struct test_entry tests[] = {
#define X(name) {#name, test_##name},
#include "test_list.h"
#undef X
};

static int current_failed;

void __attribute__((noinline)) test_fail(const char *file, int line,
                                         const char *expr, const char *detail)
{
    current_failed++;
    printf("#   %s:%d: %s %s\n", file, line, expr, detail);
    fflush(stdout);
}

void test_fail_int(const char *file, int line, const char *expr, long long got,
                   long long want)
{
    char detail[96];
    snprintf(detail, sizeof detail, "(got %lld, want %lld)", got, want);
    test_fail(file, line, expr, detail);
}

static void hexline(const char *tag, const uint8_t *p, size_t n, size_t at)
{
    size_t i, from = at > 8 ? at - 8 : 0, to = at + 16 < n ? at + 16 : n;
    printf("#     %s (len %zu) @%zu:", tag, n, from);
    for (i = from; i < to; i++)
        printf(" %02x", p[i]);
    printf("\n");
}

void test_fail_mem(const char *file, int line, const char *expr,
                   const void *got, size_t got_n, const void *want,
                   size_t want_n)
{
    const uint8_t *a = got, *b = want;
    size_t i = 0, m = got_n < want_n ? got_n : want_n;
    char detail[96];

    while (i < m && a[i] == b[i])
        i++;
    snprintf(detail, sizeof detail, "(first difference at byte %zu)", i);
    test_fail(file, line, expr, detail);
    if (a)
        hexline("got ", a, got_n, i);
    if (b)
        hexline("want", b, want_n, i);
}

int test_mem_eq(const char *file, int line, const char *expr, const void *a,
                size_t an, const void *b, size_t bn)
{
    if (an == bn && (an == 0 || memcmp(a, b, an) == 0))
        return 1;
    test_fail_mem(file, line, expr, a, an, b, bn);
    return 0;
}

void test_note(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

void bytes_reserve(struct bytes *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 256;
    uint8_t *p;

    if (b->n + extra <= b->cap)
        return;
    while (cap < b->n + extra)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        abort();
    b->p = p;
    b->cap = cap;
}

void bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    bytes_reserve(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void bytes_byte(struct bytes *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    bytes_add(b, &x, 1);
}

void bytes_str(struct bytes *b, const char *s)
{
    bytes_add(b, s, strlen(s));
}

void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

uint64_t test_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

int main(int argc, char **argv)
{
    size_t n = sizeof tests / sizeof tests[0], i;
    int passed = 0, failed = 0, k, ran = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc > 1) {
        for (k = 1; k < argc; k++)
            for (i = 0; i < n; i++)
                if (strcmp(argv[k], tests[i].name) == 0)
                    ran++;
        printf("1..%d\n", ran);
    } else {
        printf("1..%zu\n", n);
    }
    for (i = 0; i < n; i++) {
        int selected = argc == 1;
        for (k = 1; k < argc && !selected; k++)
            selected = strcmp(argv[k], tests[i].name) == 0;
        if (!selected)
            continue;
        current_failed = 0;
        tests[i].fn();
        if (current_failed) {
            failed++;
            printf("not ok %d - %s\n", passed + failed, tests[i].name);
        } else {
            passed++;
            printf("ok %d - %s\n", passed + failed, tests[i].name);
        }
    }
    if (argc > 1 && ran != argc - 1) {
        printf("# some named tests do not exist (see --list)\n");
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
