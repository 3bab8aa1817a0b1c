/*
 * Replays fuzz corpora without libFuzzer: calls LLVMFuzzerTestOneInput once
 * per file. Arguments are files or directories (every regular file inside,
 * in name order, dot files skipped). Linked with a fuzz target, it lets every
 * `make test` (gcc, sanitizers) rerun the committed corpora.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = sl_xmalloc(cap);
    for (;;) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            cap *= 2;
            buf = sl_xrealloc(buf, cap);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read error\n", path);
        sl_free(buf);
        return -1;
    }
    /* An exact-size copy, so that ASan sees any read past the input. */
    uint8_t *data = sl_xmalloc(n);
    memcpy(data, buf, n);
    sl_free(buf);
    LLVMFuzzerTestOneInput(data, n);
    sl_free(data);
    return 0;
}

static int not_dot(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    size_t ran = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                failed = 1;
            else
                ran++;
            continue;
        }
        struct dirent **list;
        int n = scandir(argv[i], &list, not_dot, alphasort);
        if (n < 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], list[k]->d_name);
            struct stat fst;
            if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
                if (run_file(path) != 0)
                    failed = 1;
                else
                    ran++;
            }
            sl_free(list[k]);
        }
        sl_free(list);
    }
    printf("replayed %zu inputs\n", ran);
    if (ran == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    return failed;
}
