/* hotyolo bench: the origin article's table for this machine — time to ready (each phase),
 * first inference without and after warm-up, steady latency, jitter, peak RSS, and with
 * --cold-process the wall time of fresh `hotyolo detect` processes. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hotyolo.h"

#define CMD "bench"

static void help(void) {
    printf("usage: hotyolo bench MODEL [options]\n"
           "\n"
           "Measures start-up and latency of MODEL on this machine:\n"
           "  time to ready = load + prepare (plan, arena, weights touched) + warm-up passes;\n"
           "  first inference of a fresh engine without warm-up, and after warm-up;\n"
           "  steady latency (median, p90, p99, min, standard deviation) and peak RSS.\n"
           "\n"
           "options:\n"
           "  --imgsz N          network input size, multiple of 32 (default 640)\n"
           "  --runs N           steady-state runs (default 200)\n"
           "  --warmup N         warm-up passes (default 3, as the origin article)\n"
           "  --no-warmup        skip warm-up (same as --warmup 0)\n"
           "  --threads N        CPU threads (default: all cores)\n"
           "  --image FILE       also time decode + detect of this image in-process\n"
           "  --cold-process K   run 'hotyolo detect MODEL FILE --json' as K fresh processes and\n"
           "                     compare process start -> JSON written with the in-process time\n"
           "                     (needs --image)\n"
           "  --json             print the results as JSON\n"
           "  -h, --help         this help\n");
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double median, p90, p99, min, mean, sd;
} stats;

static stats summarize(double *v, int n) {
    stats s = {0};
    if (n <= 0) return s;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    s.mean = sum / n;
    for (int i = 0; i < n; i++) sq += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = n > 1 ? sqrt(sq / (n - 1)) : 0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    s.median = v[n / 2];
    s.p90 = v[(int)((n - 1) * 0.90)];
    s.p99 = v[(int)((n - 1) * 0.99)];
    s.min = v[0];
    return s;
}

static long peak_rss_kb(int who) {
    struct rusage ru;
    return getrusage(who, &ru) == 0 ? ru.ru_maxrss : 0;
}

static json_object *stats_json(const stats *s) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "median_ms", json_object_new_double(s->median));
    json_object_object_add(o, "p90_ms", json_object_new_double(s->p90));
    json_object_object_add(o, "p99_ms", json_object_new_double(s->p99));
    json_object_object_add(o, "min_ms", json_object_new_double(s->min));
    json_object_object_add(o, "mean_ms", json_object_new_double(s->mean));
    json_object_object_add(o, "stddev_ms", json_object_new_double(s->sd));
    return o;
}

/* Deterministic pseudo-image input in [0, 1). */
static void fill_input(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f;
    }
}

/* Runs `exe detect model image --json out --quiet` as a fresh process: wall ms, peak RSS. */
static int spawn_detect(const char *exe, const char *model, const char *image, const char *json_out, int threads,
                        double *wall_ms, long *rss_kb) {
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        if (threads > 0)
            execl(exe, exe, "detect", model, image, "--json", json_out, "--quiet", "--threads", th, (char *)NULL);
        else
            execl(exe, exe, "detect", model, image, "--json", json_out, "--quiet", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return -1;
    *wall_ms = now_ms() - t0;
    *rss_kb = ru.ru_maxrss;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int hy_cli_bench(int argc, char **argv) {
    enum { O_HELP, O_IMGSZ, O_RUNS, O_WARMUP, O_NOWARM, O_THREADS, O_IMAGE, O_COLD, O_JSON };
    static const hy_cli_opt table[] = {
        {"--help", "-h", O_HELP, 0},      {"--imgsz", NULL, O_IMGSZ, 1},   {"--runs", NULL, O_RUNS, 1},
        {"--warmup", NULL, O_WARMUP, 1},  {"--no-warmup", NULL, O_NOWARM, 0}, {"--threads", NULL, O_THREADS, 1},
        {"--image", NULL, O_IMAGE, 1},    {"--cold-process", NULL, O_COLD, 1}, {"--json", NULL, O_JSON, 0},
    };
    const char *model = NULL, *image = NULL;
    int imgsz = 640, runs = 200, warmup = 3, threads = 0, cold = 0, as_json = 0, positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof *table, argc, argv, &i, &positional_only, &val);
        if (k == -1) return HY_CLI_USAGE;
        if (k == -3) continue;
        if (k == -2) {
            if (model) {
                hy_cli_error(CMD, "unexpected argument '%s': one MODEL (see 'hotyolo bench --help')", argv[i]);
                return HY_CLI_USAGE;
            }
            model = argv[i];
            continue;
        }
        int rc = 0;
        switch (table[k].id) {
        case O_HELP:
            help();
            return HY_CLI_OK;
        case O_IMGSZ:
            rc = hy_cli_parse_int(CMD, "--imgsz", val, 32, 8192, &imgsz);
            if (!rc && imgsz % 32) {
                hy_cli_error(CMD, "--imgsz %d: must be a multiple of 32", imgsz);
                rc = -1;
            }
            break;
        case O_RUNS: rc = hy_cli_parse_int(CMD, "--runs", val, 1, 100000, &runs); break;
        case O_WARMUP: rc = hy_cli_parse_int(CMD, "--warmup", val, 0, 1000, &warmup); break;
        case O_NOWARM: warmup = 0; break;
        case O_THREADS: rc = hy_cli_parse_int(CMD, "--threads", val, 0, 256, &threads); break;
        case O_IMAGE: image = val; break;
        case O_COLD: rc = hy_cli_parse_int(CMD, "--cold-process", val, 1, 1000, &cold); break;
        case O_JSON: as_json = 1; break;
        }
        if (rc) return HY_CLI_USAGE;
    }
    if (!model) {
        hy_cli_error(CMD, "missing MODEL argument (see 'hotyolo bench --help')");
        return HY_CLI_USAGE;
    }
    if (cold && !image) {
        hy_cli_error(CMD, "--cold-process needs --image FILE");
        return HY_CLI_USAGE;
    }
    hy_model_params mp = hy_model_default_params();
    mp.n_threads = threads;
    mp.imgsz = imgsz;
    hy_shape shape = {imgsz, imgsz};
    size_t nx = (size_t)3 * imgsz * imgsz, ny = (size_t)84 * 100000;
    float *x = malloc(nx * sizeof(float)), *y = NULL;
    double *v = malloc(sizeof(double) * (size_t)(runs > 64 ? runs : 64));
    if (!x || !v) {
        hy_cli_error(CMD, "out of memory");
        return HY_CLI_RUNTIME;
    }
    fill_input(x, nx, 12345u);

    /* 1. A fresh engine, no warm-up: the first inference pays every one-time cost left. */
    hy_model *m = NULL;
    if (hy_model_load(model, &mp, &m) != HY_OK) {
        hy_cli_error(CMD, "%s", hy_last_error());
        free(x);
        free(v);
        return HY_CLI_RUNTIME;
    }
    ny = (size_t)(4 + hy_model_num_classes(m)) * (size_t)((imgsz / 8) * (imgsz / 8) + (imgsz / 16) * (imgsz / 16) +
                                                           (imgsz / 32) * (imgsz / 32));
    y = malloc(ny * sizeof(float));
    double t0 = now_ms();
    hy_status st = hy_model_forward(m, x, imgsz, imgsz, y, ny);
    double cold_first = now_ms() - t0;
    hy_engine_stats cold_stats;
    hy_model_engine_stats(m, &cold_stats);
    hy_model_free(m);
    m = NULL;

    /* 2. The engine as a service runs it: load -> prepare -> warm-up -> ready. */
    double r0 = now_ms();
    if (!st) st = hy_model_load(model, &mp, &m);
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = &shape;
    pp.n_shapes = 1;
    pp.warmup_runs = warmup;
    if (!st) st = hy_model_prepare(m, &pp);
    double ready = now_ms() - r0;
    fill_input(x, nx, 999u); /* a different input than warm-up saw */
    t0 = now_ms();
    if (!st) st = hy_model_forward(m, x, imgsz, imgsz, y, ny);
    double warm_first = now_ms() - t0;
    for (int i = 0; i < runs && !st; i++) {
        t0 = now_ms();
        st = hy_model_forward(m, x, imgsz, imgsz, y, ny);
        v[i] = now_ms() - t0;
    }
    if (st) {
        hy_cli_error(CMD, "%s", hy_last_error());
        hy_model_free(m);
        free(x);
        free(y);
        free(v);
        return HY_CLI_RUNTIME;
    }
    stats steady = summarize(v, runs);
    hy_engine_stats es;
    hy_model_engine_stats(m, &es);

    /* 3. Optional: the image through decode + detect, in-process and as fresh processes. */
    stats img_steady = {0}, proc = {0};
    long proc_rss = 0;
    int img_runs = 0, cold_ok = 0;
    if (image) {
        FILE *f = fopen(image, "rb");
        unsigned char *buf = NULL;
        long len = 0;
        if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)len);
            if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                buf = NULL;
            }
        }
        if (f) fclose(f);
        if (!buf) {
            hy_cli_error(CMD, "cannot read image '%s'", image);
            hy_model_free(m);
            free(x);
            free(y);
            free(v);
            return HY_CLI_RUNTIME;
        }
        img_runs = runs < 50 ? runs : 50;
        for (int i = -1; i < img_runs && !st; i++) { /* one untimed run plans the shape */
            hy_result *r = NULL;
            t0 = now_ms();
            st = hy_detect_encoded(m, buf, (size_t)len, NULL, &r);
            if (i >= 0) v[i] = now_ms() - t0;
            hy_result_free(r);
        }
        free(buf);
        if (st) {
            hy_cli_error(CMD, "%s: %s", image, hy_last_error());
            hy_model_free(m);
            free(x);
            free(y);
            free(v);
            return HY_CLI_RUNTIME;
        }
        img_steady = summarize(v, img_runs);
        if (cold) {
            char exe[4096], out[64];
            ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            exe[n > 0 ? n : 0] = 0;
            snprintf(out, sizeof out, "/tmp/hotyolo_bench_%d.json", (int)getpid());
            double w;
            long rss;
            spawn_detect(exe, model, image, out, threads, &w, &rss); /* page cache warm */
            for (int i = 0; i < cold; i++) {
                if (spawn_detect(exe, model, image, out, threads, &w, &rss) != 0) continue;
                v[cold_ok++] = w;
                if (rss > proc_rss) proc_rss = rss;
            }
            unlink(out);
            proc = summarize(v, cold_ok);
        }
    }
    long rss = peak_rss_kb(RUSAGE_SELF);

    if (as_json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object_object_add(o, "format", json_object_new_string(hy_model_format(m)));
        json_object_object_add(o, "threads", json_object_new_int(hy_model_num_threads(m)));
        json_object_object_add(o, "imgsz", json_object_new_int(imgsz));
        json_object_object_add(o, "warmup_runs", json_object_new_int(warmup));
        json_object_object_add(o, "load_ms", json_object_new_double(es.load_ms));
        json_object_object_add(o, "prepare_ms", json_object_new_double(es.prepare_ms));
        json_object_object_add(o, "warmup_ms", json_object_new_double(es.warmup_ms));
        json_object_object_add(o, "first_warmup_pass_ms", json_object_new_double(es.first_warmup_ms));
        json_object_object_add(o, "last_warmup_pass_ms", json_object_new_double(es.last_warmup_ms));
        json_object_object_add(o, "time_to_ready_ms", json_object_new_double(ready));
        json_object_object_add(o, "first_inference_no_warmup_ms", json_object_new_double(cold_first));
        json_object_object_add(o, "first_inference_after_warmup_ms", json_object_new_double(warm_first));
        json_object_object_add(o, "steady", stats_json(&steady));
        json_object_object_add(o, "runs", json_object_new_int(runs));
        json_object_object_add(o, "first_no_warmup_over_median", json_object_new_double(cold_first / steady.median));
        json_object_object_add(o, "first_after_warmup_over_median", json_object_new_double(warm_first / steady.median));
        json_object_object_add(o, "peak_rss_kb", json_object_new_int64(rss));
        if (image) {
            json_object_object_add(o, "image", json_object_new_string(image));
            json_object_object_add(o, "image_decode_detect", stats_json(&img_steady));
        }
        if (cold) {
            json_object_object_add(o, "cold_process", stats_json(&proc));
            json_object_object_add(o, "cold_process_runs", json_object_new_int(cold_ok));
            json_object_object_add(o, "cold_process_peak_rss_kb", json_object_new_int64(proc_rss));
            json_object_object_add(o, "cold_process_over_in_process",
                                   json_object_new_double(proc.median / img_steady.median));
        }
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("hotyolo bench: %s (%s), %dx%d, %d threads, %d warm-up passes, %d runs\n", model, hy_model_format(m),
               imgsz, imgsz, hy_model_num_threads(m), warmup, runs);
        printf("  %-40s %9.1f ms\n", "load", es.load_ms);
        printf("  %-40s %9.1f ms\n", "prepare (plan, arena, weights)", es.prepare_ms);
        printf("  %-40s %9.1f ms (first pass %.1f, last %.1f)\n", "warm-up", es.warmup_ms, es.first_warmup_ms,
               es.last_warmup_ms);
        printf("  %-40s %9.1f ms\n", "time to ready", ready);
        printf("  %-40s %9.1f ms  (%.2fx steady median)\n", "first inference, no warm-up", cold_first,
               cold_first / steady.median);
        printf("  %-40s %9.1f ms  (%.2fx steady median)\n", "first inference after warm-up", warm_first,
               warm_first / steady.median);
        printf("  %-40s %9.1f ms  p90 %.1f  p99 %.1f  min %.1f  sd %.2f (%.1f%%)\n", "steady median", steady.median,
               steady.p90, steady.p99, steady.min, steady.sd, 100.0 * steady.sd / steady.median);
        printf("  %-40s %9.1f MB\n", "peak RSS", (double)rss / 1024.0);
        if (image)
            printf("  %-40s %9.1f ms  (decode + detect, %d runs)\n", "image in-process median", img_steady.median,
                   img_runs);
        if (cold)
            printf("  %-40s %9.1f ms  min %.1f  (%.2fx in-process; %d/%d ok; peak RSS %.1f MB)\n",
                   "fresh process -> JSON written, median", proc.median, proc.min, proc.median / img_steady.median,
                   cold_ok, cold, (double)proc_rss / 1024.0);
    }
    hy_model_free(m);
    free(x);
    free(y);
    free(v);
    return cold && cold_ok < cold ? HY_CLI_RUNTIME : HY_CLI_OK;
}
