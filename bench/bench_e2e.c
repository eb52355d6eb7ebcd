/* End-to-end latency: load time, first frame (cold) and steady state for one image.
 * usage: bench_e2e MODEL IMAGE [iterations] [threads] */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "hotyolo.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE [iterations=50] [threads=0]\n", argv[0]);
        return 2;
    }
    int iters = argc > 3 ? atoi(argv[3]) : 50;
    if (iters < 1) iters = 1;
    hy_model_params mp = hy_model_default_params();
    mp.n_threads = argc > 4 ? atoi(argv[4]) : 0;
    double t0 = hy__now_ms();
    hy_context_params cp = hy_context_default_params(); /* nothing planned: the first frame pays it */
    hy_context *m;
    if (hy_context_load(argv[1], &mp, &cp, &m) != HY_OK) {
        fprintf(stderr, "%s\n", hy_last_error());
        return 1;
    }
    double load_ms = hy__now_ms() - t0;
    hy_image *img;
    if (hy_image_load(argv[2], &img) != HY_OK) {
        fprintf(stderr, "%s\n", hy_last_error());
        hy_context_free(m);
        return 1;
    }
    double *total = malloc(sizeof(double) * (size_t)iters), *infer = malloc(sizeof(double) * (size_t)iters);
    double first = 0, first_inf = 0;
    for (int i = 0; i <= iters; i++) {
        hy_result *r;
        double s = hy__now_ms();
        if (hy_detect(m, img, NULL, &r) != HY_OK) {
            fprintf(stderr, "%s\n", hy_last_error());
            return 1;
        }
        double e = hy__now_ms() - s;
        hy_timings t = hy_result_timings(r);
        if (i == 0) {
            first = e;
            first_inf = t.inference_ms;
        } else {
            total[i - 1] = e;
            infer[i - 1] = t.inference_ms;
        }
        hy_result_free(r);
    }
    qsort(total, (size_t)iters, sizeof(double), cmp);
    qsort(infer, (size_t)iters, sizeof(double), cmp);
    printf("model        %s (%d threads, kernels %s)\n", argv[1], hy_context_num_threads(m),
           hy_context_device(m));
    printf("image        %s %dx%d\n", argv[2], img->width, img->height);
    printf("load         %.1f ms\n", load_ms);
    printf("first frame  %.1f ms (inference %.1f ms)\n", first, first_inf);
    printf("steady       median %.1f ms, p90 %.1f ms, min %.1f ms (inference median %.1f ms) over %d runs\n",
           total[iters / 2], total[(iters * 9) / 10 < iters ? (iters * 9) / 10 : iters - 1], total[0],
           infer[iters / 2], iters);
    free(total);
    free(infer);
    hy_image_free(img);
    hy_context_free(m);
    return 0;
}
