/*
 * fuzz_replay: run the recovery fuzzer's entry without libFuzzer (any
 * compiler): every file of the corpus, then N deterministic mutations of
 * them (bit flips, byte sets, cuts, the fix-up flags toggled).
 *
 *   fuzz_replay [--mutate N] [--seed S] CORPUS_DIR_OR_FILE...
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz_recovery.h"
#include "rng.h"

struct input {
    uint8_t *b;
    size_t n;
};

static struct input *inputs;
static size_t ninputs, cap;

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: read failed\n", path);
        exit(2);
    }
    fclose(f);
    if (ninputs == cap) {
        cap = cap ? cap * 2 : 64;
        inputs = realloc(inputs, cap * sizeof *inputs);
        if (!inputs)
            exit(2);
    }
    inputs[ninputs++] = (struct input){b, (size_t)n};
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        add_file(p);
    }
    if (d)
        closedir(d);
}

int main(int argc, char **argv)
{
    uint64_t mutate = 0, seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mutate") && i + 1 < argc)
            mutate = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else
            add_path(argv[i]);
    }
    if (!ninputs) {
        fprintf(stderr, "usage: fuzz_replay [--mutate N] [--seed S] CORPUS...\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < ninputs; i++)
        fuzz_recovery_one(inputs[i].b, inputs[i].n);
    struct rng r;
    rng_seed(&r, seed);
    size_t bufcap = 1u << 21;
    uint8_t *buf = malloc(bufcap);
    for (uint64_t m = 0; m < mutate; m++) {
        const struct input *in = &inputs[rng_below(&r, ninputs)];
        size_t n = in->n < bufcap ? in->n : bufcap;
        memcpy(buf, in->b, n);
        int edits = (int)rng_range(&r, 1, 4);
        for (int k = 0; k < edits && n; k++) {
            size_t at = (size_t)rng_below(&r, n);
            switch (rng_below(&r, 5)) {
            case 0: buf[at] ^= (uint8_t)(1u << rng_below(&r, 8)); break;
            case 1: buf[at] = (uint8_t)rng_next(&r); break;
            case 2: n = at; break;                                /* cut */
            case 3: buf[0] ^= (uint8_t)(1u << rng_below(&r, 6)); break; /* flags */
            default: memset(buf + at, rng_below(&r, 2) ? 0xff : 0,
                            (size_t)rng_below(&r, n - at) + 1); break;
            }
        }
        /* Keep the fix-ups on most of the time so the edits reach deep. */
        if (n && rng_below(&r, 4))
            buf[0] = (uint8_t)((buf[0] & ~FZ_RAW) | FZ_FIX_STATUS | FZ_FIX_RECORDS);
        fuzz_recovery_one(buf, n);
    }
    free(buf);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fuzz_replay: %zu corpus inputs + %" PRIu64 " mutations recovered without a "
           "finding; %.1f s\n", ninputs, mutate, secs);
    for (size_t i = 0; i < ninputs; i++)
        free(inputs[i].b);
    free(inputs);
    return 0;
}
