/*
 * fuzz_check.h - what every fuzz target includes (STYLE.md 7).
 *
 * FZ_CHECK(cond) aborts, naming the broken invariant, so libFuzzer (or the
 * standalone replayer) reports the input as a crash. Invariants are checked
 * in every build: they never compile away.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

/* The libFuzzer entry point each target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

#define FZ_CHECK(cond) ((cond) ? (void)0 : fz_fail(#cond, __FILE__, __LINE__))

/*
 * 1 if [p, p + n) lies inside [base, base + len); an empty range always
 * does (its pointer may be a string literal). Compared as integers: C
 * does not define < between pointers into different objects.
 */
#define FZ_INSIDE(p, n, base, len)                                           \
    ((n) == 0 ||                                                             \
     ((uintptr_t)(const void *)(p) >= (uintptr_t)(const void *)(base) &&     \
      (uintptr_t)(const void *)(p) - (uintptr_t)(const void *)(base) <=      \
          (uintptr_t)(len) &&                                                \
      (uintptr_t)(n) <= (uintptr_t)(len) - ((uintptr_t)(const void *)(p) -   \
                                            (uintptr_t)(const void *)(base))))

#endif /* FUZZ_CHECK_H */
