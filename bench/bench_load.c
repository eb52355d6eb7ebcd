/* Load time of one model from each weights format, file in page cache, one process:
 * hy_model_load (read + validate + fold + pack for the CPU kernels) median over N runs.
 * usage: bench_load FILE... [-n N]   (prints each median and the ratio to the first) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "hotyolo.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int n = 30;
    const char *files[16];
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) n = atoi(argv[++i]);
        else if (nf < 16) files[nf++] = argv[i];
    }
    if (nf == 0 || n < 1) {
        fprintf(stderr, "usage: %s FILE... [-n N]\n", argv[0]);
        return 2;
    }
    double first = 0;
    double *t = malloc(sizeof(double) * (size_t)n);
    for (int f = 0; f < nf; f++) {
        for (int i = -2; i < n; i++) { /* 2 untimed runs: page cache warm */
            double s = hy__now_ms();
            hy_model *m;
            if (hy_model_load(files[f], NULL, &m) != HY_OK) {
                fprintf(stderr, "%s\n", hy_last_error());
                return 1;
            }
            double e = hy__now_ms() - s;
            hy_model_free(m);
            if (i >= 0) t[i] = e;
        }
        qsort(t, (size_t)n, sizeof(double), cmp);
        double med = t[n / 2];
        if (f == 0) first = med;
        printf("load %-60s median %8.2f ms  min %8.2f ms  (%d runs)  %.1fx faster than the first\n", files[f], med,
               t[0], n, first / med);
    }
    free(t);
    return 0;
}
