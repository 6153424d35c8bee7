/*
 * standalone.c - replay inputs through LLVMFuzzerTestOneInput without
 * libFuzzer, so any compiler (gcc, no sanitizers) runs the corpus in
 * `make test`.
 *
 *   replay_<target> [-v] FILE|DIR...
 *
 * A directory replays the regular files directly in it (not recursive;
 * names starting with '.' are skipped). Each input is passed in a buffer
 * of exactly its size, so a sanitizer or valgrind sees overreads.
 * Arguments starting with '-' other than -v are ignored, so a libFuzzer
 * command line works too. Prints "replayed N inputs" and exits 0; an
 * input that breaks an invariant aborts (exit by SIGABRT); an unreadable
 * path exits 1.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct replay {
    unsigned long count;
    int verbose;
};

/* Read the whole file into a malloc'd buffer of exactly its size (one
 * byte for an empty file). Returns 0, or -1 (errno says why). */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL, *p;
    size_t len = 0, cap = 0, got;
    int bad;

    if (f == NULL)
        return -1;
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            p = realloc(buf, cap);
            if (p == NULL)
                break;
            buf = p;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    /* A normal end leaves len < cap; len == cap means realloc failed. */
    bad = ferror(f) || buf == NULL || len == cap;
    fclose(f);
    p = bad ? NULL : malloc(len > 0 ? len : 1);
    if (p != NULL && len > 0)
        memcpy(p, buf, len);
    free(buf);
    if (p == NULL)
        return -1;
    *data = p;
    *size = len;
    return 0;
}

static int replay_file(struct replay *r, const char *path)
{
    uint8_t *data;
    size_t size;

    if (read_file(path, &data, &size) != 0) {
        perror(path);
        return -1;
    }
    if (r->verbose)
        fprintf(stderr, "replay %s (%lu bytes)\n", path, (unsigned long)size);
    (void)LLVMFuzzerTestOneInput(data, size);
    free(data);
    r->count++;
    return 0;
}

static int replay_dir(struct replay *r, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rv = 0;

    if (d == NULL) {
        perror(dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path;
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        path = malloc(n);
        if (path == NULL) {
            rv = -1;
            break;
        }
        snprintf(path, n, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            replay_file(r, path) != 0)
            rv = -1;
        free(path);
    }
    closedir(d);
    return rv;
}

int main(int argc, char **argv)
{
    struct replay r;
    struct stat st;
    int i, rv = 0;

    r.count = 0;
    r.verbose = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            r.verbose = 1;
    }
    for (i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            rv = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (replay_dir(&r, argv[i]) != 0)
                rv = 1;
        } else if (replay_file(&r, argv[i]) != 0) {
            rv = 1;
        }
    }
    printf("replayed %lu inputs\n", r.count);
    return rv;
}
