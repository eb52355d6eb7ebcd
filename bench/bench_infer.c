/* Steady-state forward latency of one model, in process, for the side-by-side with ONNX
 * Runtime (scripts/bench.sh, docs/bench.md). The same measurement as bench/ort/ort_bench.js:
 * load -> prepare (+ W warm-up passes) -> R timed hy_model_forward on one fixed input.
 *
 *   bench_infer MODEL [--threads N] [--runs R] [--warmup W] [--imgsz S] [--input FILE]
 *               [--image IMG] [--cold] [--samples FILE] [--json]
 *
 *   --input FILE   (1, 3, S, S) float32: a .npy ('<f4', C order) or raw little-endian floats;
 *                  default: the deterministic pseudo-random input ort_bench.js also makes
 *   --image IMG    time hy_detect on the decoded image instead (letterbox + forward + NMS;
 *                  decode excluded): the steady latency of `hotyolo detect`
 *   --cold         one forward right after load, no warm-up (= --runs 1 --warmup 0): the
 *                  process-start -> first-result run, timed from outside by bench_spawn
 *   --samples FILE append every timed run (ms, one per line), for medians across processes
 *
 * GFLOP counts 2*cin*cout*k*k*oh*ow over every conv of the YOLOv8 variant at S x S (the DFL
 * conv excluded), computed from the Ultralytics yolov8.yaml scales: 8.74 (n) and 28.6 (s) at
 * 640, the "GFLOPs" column of the Ultralytics README. Peak RSS is getrusage ru_maxrss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/core.h"
#include "hotyolo.h"

/* ---- FLOPs of a YOLOv8 detection network ---------------------------------------------- */
typedef struct scale {
    const char *name;
    double depth, width;
    int max_ch;
} scale;

/* ultralytics/cfg/models/v8/yolov8.yaml "scales" */
static const scale scales[] = {
    { "n", 0.33, 0.25, 1024 }, { "s", 0.33, 0.50, 1024 }, { "m", 0.67, 0.75, 768 },
    { "l", 1.00, 1.00, 512 },  { "x", 1.00, 1.25, 512 },
};

static int ch(const scale *s, int c) { /* make_divisible(min(c, max_ch) * width, 8) */
    double v = (c < s->max_ch ? c : s->max_ch) * s->width;
    return (int)ceil(v / 8.0) * 8;
}
static int rep(const scale *s, int n) { /* max(round(n * depth), 1) */
    long r = lround(n * s->depth);
    return r < 1 ? 1 : (int)r;
}
/* one conv producing an o x o map (padding k/2, so o = input / stride) */
static double conv(int c1, int c2, int k, int o) { return 2.0 * c1 * c2 * k * k * (double)o * o; }
static double c2f(int c1, int c2, int n, int o) {
    int c = c2 / 2;
    return conv(c1, 2 * c, 1, o) + n * 2 * conv(c, c, 3, o) + conv((2 + n) * c, c2, 1, o);
}

/* GFLOP at S x S for variant v with nc classes; 0 if the variant is unknown. */
static double yolov8_gflop(const char *v, int nc, int S) {
    const scale *s = NULL;
    for (size_t i = 0; i < sizeof scales / sizeof *scales; i++)
        if (v && strcmp(v, scales[i].name) == 0) s = &scales[i];
    if (!s || nc < 1 || S < 32 || S % 32) return 0;
    int c64 = ch(s, 64), c128 = ch(s, 128), c256 = ch(s, 256), c512 = ch(s, 512), c1024 = ch(s, 1024);
    int n3 = rep(s, 3), n6 = rep(s, 6);
    int o2 = S / 2, o4 = S / 4, o8 = S / 8, o16 = S / 16, o32 = S / 32;
    double f = 0;
    /* backbone */
    f += conv(3, c64, 3, o2) + conv(c64, c128, 3, o4) + c2f(c128, c128, n3, o4);
    f += conv(c128, c256, 3, o8) + c2f(c256, c256, n6, o8);          /* P3 */
    f += conv(c256, c512, 3, o16) + c2f(c512, c512, n6, o16);        /* P4 */
    f += conv(c512, c1024, 3, o32) + c2f(c1024, c1024, n3, o32);     /* P5 */
    f += conv(c1024, c1024 / 2, 1, o32) + conv(c1024 / 2 * 4, c1024, 1, o32); /* SPPF */
    /* head (upsample, concat: no FLOPs) */
    f += c2f(c1024 + c512, c512, n3, o16);
    f += c2f(c512 + c256, c256, n3, o8);
    f += conv(c256, c256, 3, o16) + c2f(c256 + c512, c512, n3, o16);
    f += conv(c512, c512, 3, o32) + c2f(c512 + c1024, c1024, n3, o32);
    /* Detect: box branch c2 = max(16, ch0/4, 4*16), class branch c3 = max(ch0, min(nc, 100)) */
    int chs[3] = { c256, c512, c1024 }, os[3] = { o8, o16, o32 };
    int cb = c256 / 4 > 64 ? c256 / 4 : 64, cc = c256 > (nc < 100 ? nc : 100) ? c256 : (nc < 100 ? nc : 100);
    for (int i = 0; i < 3; i++) {
        f += conv(chs[i], cb, 3, os[i]) + conv(cb, cb, 3, os[i]) + conv(cb, 64, 1, os[i]);
        f += conv(chs[i], cc, 3, os[i]) + conv(cc, cc, 3, os[i]) + conv(cc, nc, 1, os[i]);
    }
    return f / 1e9;
}

/* models/yolov5?.yaml depth / width multiples (no channel cap) */
static const scale scales_v5[] = {
    { "n", 0.33, 0.25, 1 << 30 }, { "s", 0.33, 0.50, 1 << 30 }, { "m", 0.67, 0.75, 1 << 30 },
    { "l", 1.00, 1.00, 1 << 30 }, { "x", 1.33, 1.25, 1 << 30 },
};
static double c3(int c1, int c2, int n, int o) { /* cv1, cv2, n x (1x1, 3x3), cv3 */
    int c = c2 / 2;
    return 2 * conv(c1, c, 1, o) + n * (conv(c, c, 1, o) + conv(c, c, 3, o)) + conv(2 * c, c2, 1, o);
}

/* YOLOv5 GFLOP at S x S (yolov5?.yaml, 3 anchors); 0 if the variant is unknown. */
static double yolov5_gflop(const char *v, int nc, int S) {
    const scale *s = NULL;
    for (size_t i = 0; i < sizeof scales_v5 / sizeof *scales_v5; i++)
        if (v && strcmp(v, scales_v5[i].name) == 0) s = &scales_v5[i];
    if (!s || nc < 1 || S < 32 || S % 32) return 0;
    int c64 = ch(s, 64), c128 = ch(s, 128), c256 = ch(s, 256), c512 = ch(s, 512), c1024 = ch(s, 1024);
    int n3 = rep(s, 3), n6 = rep(s, 6), n9 = rep(s, 9);
    int o2 = S / 2, o4 = S / 4, o8 = S / 8, o16 = S / 16, o32 = S / 32;
    double f = conv(3, c64, 6, o2) + conv(c64, c128, 3, o4) + c3(c128, c128, n3, o4);
    f += conv(c128, c256, 3, o8) + c3(c256, c256, n6, o8);
    f += conv(c256, c512, 3, o16) + c3(c512, c512, n9, o16);
    f += conv(c512, c1024, 3, o32) + c3(c1024, c1024, n3, o32);
    f += conv(c1024, c1024 / 2, 1, o32) + conv(c1024 / 2 * 4, c1024, 1, o32); /* SPPF */
    f += conv(c1024, c512, 1, o32) + c3(2 * c512, c512, n3, o16);
    f += conv(c512, c256, 1, o16) + c3(2 * c256, c256, n3, o8);
    f += conv(c256, c256, 3, o16) + c3(2 * c256, c512, n3, o16);
    f += conv(c512, c512, 3, o32) + c3(2 * c512, c1024, n3, o32);
    f += conv(c256, 3 * (5 + nc), 1, o8) + conv(c512, 3 * (5 + nc), 1, o16) + conv(c1024, 3 * (5 + nc), 1, o32);
    return f / 1e9;
}

/* ---- statistics (same definitions as ort_bench.js and bench.sh) -------------------------- */
typedef struct stats {
    double median, p90, p99, min, max, mean, stddev;
} stats;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts t in place. median: mean of the middle two; pXX: nearest rank; stddev: sample (n-1). */
static stats stats_of(double *t, int n) {
    stats s = { 0 };
    if (n < 1) return s;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    s.median = (t[(n - 1) / 2] + t[n / 2]) / 2;
    s.p90 = t[(int)ceil(0.90 * n) - 1];
    s.p99 = t[(int)ceil(0.99 * n) - 1];
    s.min = t[0];
    s.max = t[n - 1];
    for (int i = 0; i < n; i++) s.mean += t[i];
    s.mean /= n;
    for (int i = 0; i < n && n > 1; i++) s.stddev += (t[i] - s.mean) * (t[i] - s.mean);
    s.stddev = n > 1 ? sqrt(s.stddev / (n - 1)) : 0;
    return s;
}

/* ---- input ---------------------------------------------------------------------------- */
/* Deterministic input in [0, 1): the LCG ort_bench.js uses, so both engines see equal data. */
static void fill_pseudo_random(float *x, size_t n) {
    uint32_t s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 8) & 0xFFFF) / 65536.0f;
    }
}

/* Reads n floats from a .npy ('<f4', C order, exactly n elements) or a raw file of 4n bytes. */
static int read_input(const char *path, float *x, size_t n) {
    uint8_t *data;
    size_t size;
    if (hy__file_read(path, &data, &size) != HY_OK) {
        fprintf(stderr, "bench_infer: %s\n", hy_last_error());
        return -1;
    }
    size_t off = 0;
    const char *why = NULL;
    if (size >= 10 && memcmp(data, "\x93NUMPY", 6) == 0) {
        size_t hlen = data[6] == 1 ? (size_t)data[8] | (size_t)data[9] << 8
                      : size >= 12 ? (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
                                         (size_t)data[11] << 24
                                   : SIZE_MAX;
        off = (data[6] == 1 ? 10 : 12) + hlen;
        if (hlen == SIZE_MAX || off > size) why = "truncated .npy header";
        else {
            char hdr[512];
            size_t hl = hlen < sizeof hdr - 1 ? hlen : sizeof hdr - 1;
            memcpy(hdr, data + (data[6] == 1 ? 10 : 12), hl);
            hdr[hl] = 0;
            if (!strstr(hdr, "'<f4'")) why = ".npy dtype is not '<f4' (float32)";
            else if (!strstr(hdr, "'fortran_order': False")) why = ".npy is Fortran-ordered";
        }
    }
    if (!why && size - off != n * sizeof(float)) why = "wrong size";
    if (why) {
        fprintf(stderr, "bench_infer: %s: %s (need %zu float32 = (1, 3, S, S), data has %zu bytes)\n", path, why, n,
                size - (off <= size ? off : size));
        hy__free(data);
        return -1;
    }
    memcpy(x, data + off, n * sizeof(float));
    hy__free(data);
    return 0;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s MODEL [--threads N] [--runs R] [--warmup W] [--imgsz S] [--input FILE]\n"
            "       [--image IMG] [--cold] [--samples FILE] [--json]\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *input_path = NULL, *image_path = NULL, *samples_path = NULL;
    int threads = 0, runs = 30, warmup = 3, imgsz = 640, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--cold") == 0) runs = 1, warmup = 0;
        else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "bench_infer: %s needs a value\n", a);
            return 2;
        } else if (strcmp(a, "--threads") == 0) threads = atoi(argv[++i]);
        else if (strcmp(a, "--runs") == 0) runs = atoi(argv[++i]);
        else if (strcmp(a, "--warmup") == 0) warmup = atoi(argv[++i]);
        else if (strcmp(a, "--imgsz") == 0) imgsz = atoi(argv[++i]);
        else if (strcmp(a, "--input") == 0) input_path = argv[++i];
        else if (strcmp(a, "--image") == 0) image_path = argv[++i];
        else if (strcmp(a, "--samples") == 0) samples_path = argv[++i];
        else if (a[0] == '-' || model_path) {
            usage(argv[0]);
            return 2;
        } else model_path = a;
    }
    if (!model_path || threads < 0 || runs < 1 || runs > 1000000 || warmup < 0 || warmup > 1000 || imgsz < 32 ||
        imgsz > 8192 || imgsz % 32) {
        usage(argv[0]);
        fprintf(stderr, "  threads >= 0, runs >= 1, 0 <= warmup <= 1000, imgsz a multiple of 32\n");
        return 2;
    }

    int rc = 1;
    hy_model *m = NULL;
    hy_context *c = NULL;
    hy_image *img = NULL;
    float *x = NULL, *out = NULL;
    double *t = NULL;
    FILE *sf = NULL;

    double t0 = hy__now_ms();
    hy_model_params mp = hy_model_default_params();
    mp.n_threads = threads;
    mp.imgsz = imgsz;
    if (hy_model_load(model_path, &mp, &m) != HY_OK) goto fail;
    if (hy_context_create(m, NULL, &c) != HY_OK) goto fail; /* load_ms: model + context */
    double t1 = hy__now_ms();
    hy_shape shape = { imgsz, imgsz };
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = &shape;
    pp.n_shapes = 1;
    pp.warmup_runs = warmup;
    if (image_path) pp.warmup_runs = 0; /* warmed below on the image's own letterboxed shape */
    if (hy_model_prepare(c, &pp) != HY_OK) goto fail;
    double t2 = hy__now_ms();

    size_t n_in = (size_t)3 * imgsz * imgsz, od[2];
    if (hy_model_output_shape(m, imgsz, imgsz, od) != HY_OK) goto fail;
    size_t n_out = od[0] * od[1];
    x = hy__aligned_alloc(64, n_in * sizeof(float));
    out = hy__aligned_alloc(64, n_out * sizeof(float));
    t = hy__malloc((size_t)runs * sizeof(double));
    if (!x || !out || !t) {
        fprintf(stderr, "bench_infer: out of memory\n");
        goto done;
    }
    if (input_path) {
        if (read_input(input_path, x, n_in)) goto done;
    } else fill_pseudo_random(x, n_in);
    if (image_path && hy_image_load(image_path, &img) != HY_OK) goto fail;

    /* hy_detect letterboxes in "rect" mode (e.g. 480x640 for bus.jpg): that shape is planned
     * by the first call, so the warm-up runs are hy_detect calls too */
    for (int i = 0; img && i < warmup; i++) {
        hy_result *r;
        if (hy_detect(c, img, NULL, &r) != HY_OK) goto fail;
        hy_result_free(r);
    }
    for (int i = 0; i < runs; i++) {
        double s = hy__now_ms();
        if (img) {
            hy_result *r;
            if (hy_detect(c, img, NULL, &r) != HY_OK) goto fail;
            hy_result_free(r);
        } else if (hy_model_forward(c, x, 1, imgsz, imgsz, out, n_out) != HY_OK) goto fail;
        t[i] = hy__now_ms() - s;
    }
    double t3 = hy__now_ms();
    double first = t[0];
    if (samples_path) {
        if (!(sf = fopen(samples_path, "a"))) {
            fprintf(stderr, "bench_infer: cannot open %s\n", samples_path);
            goto done;
        }
        for (int i = 0; i < runs; i++) fprintf(sf, "%.4f\n", t[i]);
        if (fclose(sf)) {
            sf = NULL;
            fprintf(stderr, "bench_infer: write error on %s\n", samples_path);
            goto done;
        }
        sf = NULL;
    }
    stats st = stats_of(t, runs);
    hy_engine_stats es;
    if (hy_model_engine_stats(c, &es) != HY_OK) goto fail;
    int nc = hy_model_num_classes(m);
    double gflop = img                                       ? 0
                   : strcmp(hy_model_arch(m), "yolov5") == 0 ? yolov5_gflop(hy_model_variant(m), nc, imgsz)
                                                             : yolov8_gflop(hy_model_variant(m), nc, imgsz);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double checksum = 0;
    for (size_t i = 0; i < n_out && !img; i++) checksum += out[i];

    if (json) {
        printf("{\"engine\": \"hotyolo\", \"model\": \"%s\", \"format\": \"%s\", \"variant\": \"%s\", "
               "\"threads\": %d, \"imgsz\": %d, \"mode\": \"%s\", \"runs\": %d, \"warmup\": %d, "
               "\"load_ms\": %.3f, \"prepare_ms\": %.3f, \"warmup_ms\": %.3f, \"first_warmup_ms\": %.3f, "
               "\"first_run_ms\": %.3f, \"load_to_result_ms\": %.3f, "
               "\"median_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"min_ms\": %.3f, \"max_ms\": %.3f, "
               "\"mean_ms\": %.3f, \"stddev_ms\": %.3f, \"gflop\": %.4f, \"gflops\": %.2f, "
               "\"peak_rss_kb\": %ld, \"output_sum\": %.6g}\n",
               model_path, hy_model_format(m), hy_model_variant(m), hy_context_num_threads(c), imgsz,
               img ? "detect" : "forward", runs, warmup, t1 - t0, es.prepare_ms, es.warmup_ms,
               es.first_warmup_ms, first, (t2 - t0) + first, st.median, st.p90, st.p99, st.min, st.max, st.mean,
               st.stddev, gflop, gflop > 0 ? gflop / (st.median / 1e3) : 0, ru.ru_maxrss, checksum);
    } else {
        printf("model      %s (%s, yolov8%s, %d threads)\n", model_path, hy_model_format(m), hy_model_variant(m),
               hy_context_num_threads(c));
        printf("input      %s, %dx%d, %s\n", img ? image_path : input_path ? input_path : "pseudo-random", imgsz,
               imgsz, img ? "hy_detect (letterbox + forward + NMS)" : "hy_model_forward");
        printf("load       %.1f ms, prepare %.1f ms + %d warm-up passes %.1f ms (first %.1f ms)\n", t1 - t0,
               es.prepare_ms, warmup, es.warmup_ms, es.first_warmup_ms);
        printf("latency    median %.2f  p90 %.2f  p99 %.2f  min %.2f  mean %.2f  stddev %.2f ms  (%d runs, %.1f s)\n",
               st.median, st.p90, st.p99, st.min, st.mean, st.stddev, runs, (t3 - t2) / 1e3);
        if (gflop > 0) printf("compute    %.2f GFLOP/run, %.1f GFLOP/s at the median\n", gflop, gflop / (st.median / 1e3));
        printf("peak RSS   %.1f MiB\n", ru.ru_maxrss / 1024.0);
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_infer: %s\n", hy_last_error());
done:
    hy__free(t);
    hy__aligned_free(out);
    hy__aligned_free(x);
    hy_image_free(img);
    hy_context_free(c);
    hy_model_free(m);
    return rc;
}
