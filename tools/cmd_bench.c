/* hotyolo bench: the origin article's table for this machine — time to ready (each phase),
 * first inference without and after warm-up, steady latency and images/s at --batch N,
 * jitter, peak RSS, with --cold-process the wall time of fresh `hotyolo detect` processes,
 * and with --contexts K the throughput of K contexts sharing one model. With --video FILE
 * instead: every frame of a video decoded (on the stream's thread) and detected, end-to-end
 * fps, per-stage medians and the first frame against the steady median. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hotyolo.h"
#include "hotyolo/stream.h"

#define CMD "bench"
#define PAIR_RUNS 10 /* steady passes right after each engine's first, for the paired ratio */

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
           "  --no-cache         read .pt/.onnx weights directly, not through the packed-weights\n"
           "                     cache (hotyolo cache --help)\n"
           "  --batch N          images per forward pass, in [1, 256]: every figure is per pass,\n"
           "                     and the throughput line gives images/s (default 1)\n"
           "  --contexts K       also run K contexts on the one model, each with --threads threads\n"
           "                     and driven by a thread of its own for --runs passes, started\n"
           "                     together; reports their images/s (e.g. --threads 1 --contexts 2\n"
           "                     against --threads 2 --contexts 1)\n"
           "  --device NAME      what runs the network: cpu, ref (plain-C reference kernels; slow),\n"
           "                     cuda or cuda:N or N (GPU N), auto (cuda:0 when usable, else cpu).\n"
           "                     A GPU that cannot be used falls back to cpu with a warning, and the\n"
           "                     report gives the device asked for and why (default cpu)\n"
           "  --no-fallback      make that fallback an error (exit 1)\n"
           "  -q, --quiet        no fallback warning on stderr (the report still says it)\n"
           "  --image FILE       also time decode + detect of this image in-process\n"
           "  --cold-process K   run 'hotyolo detect MODEL FILE --json' as K fresh processes,\n"
           "                     alternated with in-process runs of the same image, and compare\n"
           "                     process start -> exit with decode + detect in-process (needs --image)\n"
           "  --cold-idle MS     sleep MS before each of those processes (default 0: back to back).\n"
           "                     Some VMs give memory back to the host when idle, so a process\n"
           "                     started after a pause pays more for fresh memory (HY_HUGE_PAGES,\n"
           "                     docs/design.md)\n"
           "  --engines K        fresh engines for the first-inference and time-to-ready figures\n"
           "                     (medians over K; default 5)\n"
           "  --video FILE       instead of the above: open the video FILE (every frame, none dropped),\n"
           "                     prepare and warm for its frame size, then decode (on the stream's own\n"
           "                     thread) and detect every frame: end-to-end frames/s, per-stage medians\n"
           "                     (decode, preprocess, inference, postprocess) and the first frame's\n"
           "                     decode + detect time against the steady median of the others\n"
           "                     (--imgsz, --threads, --device apply; hy_stream_prepare warms up)\n"
           "  --max-frames N     with --video: stop after N frames (default 0: all)\n"
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

/* A table row for the steady runs of one kind: n of the runs. */
static void print_subset(const char *label, const stats *s, int n, int runs) {
    printf("  %-40s %9.1f ms  p90 %.1f  sd %.2f (%.1f%%)  (%d of %d runs)\n", label, s->median, s->p90, s->sd,
           100.0 * s->sd / s->median, n, runs);
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

/* Two fixed loops timed after every steady run, in the same seconds: their spread is the
 * machine's own jitter (other tenants, SMT siblings, memory bandwidth), not ours.
 *   compute: ~3 ms of fused multiply-adds in 12 independent 256-bit chains on registers, as
 *            many per cycle as the core's FMA pipes take (like the GEMM micro-kernel), so an
 *            SMT sibling busy with another tenant's work slows it as it slows the model; plain
 *            C (64 multiply-add chains over an L1-resident block) where AVX2+FMA is missing;
 *   memory:  one read pass over 32 MiB (as large as the L3 here: streams from DRAM like the
 *            forward pass's large activations). */
static _Thread_local volatile float ref_sink; /* per thread: the loops run on several at once */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define REF_FMA_CHAINS 12
__attribute__((target("avx2,fma"))) static float ref_fma_loop(void) {
    __m256 acc[REF_FMA_CHAINS];
    for (int j = 0; j < REF_FMA_CHAINS; j++) acc[j] = _mm256_set1_ps(0.01f * (float)j);
    const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-4f);
    for (int r = 0; r < 1800000; r++)
        for (int j = 0; j < REF_FMA_CHAINS; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    __m256 s = acc[0];
    for (int j = 1; j < REF_FMA_CHAINS; j++) s = _mm256_add_ps(s, acc[j]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
static int ref_has_fma(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
static float ref_fma_loop(void) { return 0.0f; }
static int ref_has_fma(void) { return 0; }
#endif
static double ref_compute_ms(void) {
    static float blk[1024];
    if (ref_has_fma()) {
        double t0 = now_ms();
        ref_sink = ref_fma_loop();
        return now_ms() - t0;
    }
    float acc[64] = {0};
    if (blk[1] == 0)
        for (int i = 0; i < 1024; i++) blk[i] = (float)(i % 97) * 1e-3f;
    double t0 = now_ms();
    for (int r = 0; r < 100000; r++)
        for (int i = 0; i < 1024; i += 64)
            for (int j = 0; j < 64; j++) acc[j] = acc[j] * 0.999f + blk[i + j];
    double t = now_ms() - t0;
    float s = 0;
    for (int j = 0; j < 64; j++) s += acc[j];
    ref_sink = s;
    return t;
}

/* The compute loop on every thread the model uses, started together: the pair's wall time
 * is what a barrier-synchronised forward pass would see from a slow core. Then threads 0
 * and 1 pass a cache line back and forth REF_RTT_ROUNDS times: the round trip is ~60 ns
 * between cores that share an L3 and ~330 ns when the host has put them on different core
 * complexes, where forward passes here took ~1.7x (docs/bench.md). */
#define REF_RTT_ROUNDS 2000
typedef struct ref_team {
    pthread_barrier_t go, mid, done;
    int n, stop;
    pthread_t th[64];
    struct ref_arg {
        struct ref_team *t;
        int i;
    } args[64];
    _Alignas(64) atomic_int ball; /* odd: thread 1's turn */
} ref_team;
typedef struct ref_arg ref_arg;

static void ref_pong(ref_team *t) {
    for (int k = 0; k < REF_RTT_ROUNDS; k++) {
        int v;
        while (!((v = atomic_load_explicit(&t->ball, memory_order_acquire)) & 1)) {
        }
        atomic_store_explicit(&t->ball, v + 1, memory_order_release);
    }
}

static void *ref_helper(void *arg) {
    ref_arg *a = arg;
    ref_team *t = a->t;
    for (;;) {
        pthread_barrier_wait(&t->go);
        if (t->stop) return NULL;
        ref_compute_ms();
        pthread_barrier_wait(&t->mid);
        if (a->i == 1) ref_pong(t);
        pthread_barrier_wait(&t->done);
    }
}

static int ref_team_start(ref_team *t, int n) {
    t->n = n < 1 ? 1 : n > 64 ? 64 : n;
    t->stop = 0;
    atomic_init(&t->ball, 0);
    if (pthread_barrier_init(&t->go, NULL, (unsigned)t->n) || pthread_barrier_init(&t->mid, NULL, (unsigned)t->n) ||
        pthread_barrier_init(&t->done, NULL, (unsigned)t->n))
        return -1;
    for (int i = 1; i < t->n; i++) {
        t->args[i] = (ref_arg){t, i};
        if (pthread_create(&t->th[i], NULL, ref_helper, &t->args[i]) != 0) {
            t->n = i; /* helpers 1..i-1 run; the barrier counts n: stop them by hand below */
            return -1;
        }
    }
    return 0;
}

/* Compute-loop wall time (ms); *rtt_ns: the thread 0 <-> 1 round trip (0 with one thread). */
static double ref_team_run(ref_team *t, double *rtt_ns) {
    if (t->n > 1) pthread_barrier_wait(&t->go);
    double t0 = now_ms();
    ref_compute_ms();
    if (t->n > 1) pthread_barrier_wait(&t->mid);
    double ms = now_ms() - t0;
    *rtt_ns = 0;
    if (t->n > 1) {
        double r0 = now_ms();
        for (int k = 0; k < REF_RTT_ROUNDS; k++) {
            int v = atomic_load_explicit(&t->ball, memory_order_relaxed);
            atomic_store_explicit(&t->ball, v + 1, memory_order_release);
            while (atomic_load_explicit(&t->ball, memory_order_acquire) == v + 1) {
            }
        }
        *rtt_ns = (now_ms() - r0) * 1e6 / REF_RTT_ROUNDS;
        pthread_barrier_wait(&t->done);
    }
    return ms;
}

static void ref_team_stop(ref_team *t) {
    if (t->n > 1) {
        t->stop = 1;
        pthread_barrier_wait(&t->go);
        for (int i = 1; i < t->n; i++) pthread_join(t->th[i], NULL);
    }
    pthread_barrier_destroy(&t->go);
    pthread_barrier_destroy(&t->mid);
    pthread_barrier_destroy(&t->done);
}

#define REF_MEM_FLOATS ((size_t)8 << 20) /* 32 MiB */
static double ref_memory_ms(const float *buf) {
    float acc[16] = {0};
    double t0 = now_ms();
    for (size_t i = 0; i < REF_MEM_FLOATS; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += buf[i + j];
    double t = now_ms() - t0;
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    ref_sink = s;
    return t;
}

typedef struct bench_opts {
    const char *model, *image, *device;
    const char *video; /* --video FILE: the video mode alone */
    int max_frames;
    int imgsz, runs, warmup, threads, cold, as_json, engines;
    int cold_idle; /* ms before each fresh process */
    int batch;     /* images per forward pass */
    int contexts;  /* 0: none; K: K contexts on one model, one driving thread each */
    int no_fallback, quiet;
} bench_opts;

/* Runs `exe detect model image --json - --quiet` (with --threads, --device, --no-fallback as
 * given) as a fresh process, its stdout a pipe:
 * json_ms = start -> the JSON line read complete (the result is out), exit_ms = start -> the
 * process reaped (teardown included); peak RSS. 0 when it exited 0 and wrote a record. */
static int spawn_detect(const char *exe, const bench_opts *o, double *json_ms, double *exit_ms, long *rss_kb) {
    char th[16];
    snprintf(th, sizeof th, "%d", o->threads);
    char *args[16];
    int na = 0;
    args[na++] = (char *)exe;
    args[na++] = "detect";
    args[na++] = (char *)o->model;
    args[na++] = (char *)o->image;
    args[na++] = "--json";
    args[na++] = "-";
    args[na++] = "--quiet";
    if (o->threads > 0) args[na++] = "--threads", args[na++] = th;
    if (o->device) args[na++] = "--device", args[na++] = (char *)o->device;
    if (o->no_fallback) args[na++] = "--no-fallback";
    args[na] = NULL;
    int fd[2];
    if (pipe(fd) != 0) return -1;
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], STDOUT_FILENO) < 0) _exit(127);
        close(fd[1]);
        execv(exe, args);
        _exit(127);
    }
    close(fd[1]);
    char buf[4096];
    int got_line = 0, has_dets = 0;
    *json_ms = 0;
    for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (!got_line && memchr(buf, '\n', (size_t)n)) {
            *json_ms = now_ms() - t0;
            got_line = 1;
        }
        if (memmem(buf, (size_t)n, "\"detections\"", 12)) has_dets = 1;
    }
    close(fd[0]);
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return -1;
    *exit_ms = now_ms() - t0;
    *rss_kb = ru.ru_maxrss;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && got_line && has_dets ? 0 : -1;
}

/* ---- the command, one step per function ---------------------------------------------- */

/* Everything measured; the arrays have nv (runs) or engines entries. */
typedef struct bench_run {
    hy_model *m;   /* the last engine's model and context (steps 2 on) */
    hy_context *c;
    hy_model_params mp;
    size_t nx, ny; /* floats per image of input and output */
    float *x, *y;  /* (batch, 3, S, S), (batch, hy_model_output_shape) */
    int nv;
    double *v, *ref, *refm, *rtt, *near, *far;
    double *e_cold, *e_warm, *e_ready, *e_ratio;
    double *pv, *pe;
    uint8_t *img_buf;
    size_t img_len;
    /* results */
    double cold_first_engine;
    hy_engine_stats es;
    long rss;
    double rtt_min;
    int n_near, n_far;
    stats steady, noise, noise_mem, s_rtt, s_near, s_far, s_cold, s_warm, s_ready, s_ratio;
    stats img_steady, proc, proc_exit;
    long proc_rss;
    int img_runs, cold_ok;
    double ctx_images_per_s, ctx_wall_ms; /* --contexts */
    int ctx_threads;
    const char *err; /* set with a failure of ours (not the library's: hy_last_error then) */
} bench_run;

/* A failure of this file's own (threads, memory): its message replaces hy_last_error(). */
static hy_status bench_fail(bench_run *b, hy_status st, const char *msg) {
    b->err = msg;
    return st;
}

/* 0 ok, 1 help shown, -1 usage error (printed). */
static int parse_args(int argc, char **argv, bench_opts *o) {
    enum { O_HELP, O_IMGSZ, O_RUNS, O_WARMUP, O_NOWARM, O_THREADS, O_IMAGE, O_COLD, O_JSON, O_ENGINES, O_IDLE,
           O_BATCH, O_CONTEXTS, O_DEVICE, O_VIDEO, O_MAXFRAMES, O_NO_FALLBACK, O_QUIET };
    static const hy_cli_opt table[] = {
        {"--help", "-h", O_HELP, 0},      {"--imgsz", NULL, O_IMGSZ, 1},   {"--runs", NULL, O_RUNS, 1},
        {"--warmup", NULL, O_WARMUP, 1},  {"--no-warmup", NULL, O_NOWARM, 0}, {"--threads", NULL, O_THREADS, 1},
        {"--image", NULL, O_IMAGE, 1},    {"--cold-process", NULL, O_COLD, 1}, {"--json", NULL, O_JSON, 0},
        {"--engines", NULL, O_ENGINES, 1}, {"--cold-idle", NULL, O_IDLE, 1}, {"--batch", NULL, O_BATCH, 1},
        {"--contexts", NULL, O_CONTEXTS, 1}, {"--device", NULL, O_DEVICE, 1}, {"--video", NULL, O_VIDEO, 1},
        {"--max-frames", NULL, O_MAXFRAMES, 1}, {"--no-fallback", NULL, O_NO_FALLBACK, 0},
        {"--quiet", "-q", O_QUIET, 0},
    };
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof *table, argc, argv, &i, &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue;
        if (k == -2) {
            if (o->model) {
                hy_cli_error(CMD, "unexpected argument '%s': one MODEL (see 'hotyolo bench --help')", argv[i]);
                return -1;
            }
            o->model = argv[i];
            continue;
        }
        int rc = 0;
        switch (table[k].id) {
        case O_HELP:
            help();
            return 1;
        case O_IMGSZ:
            rc = hy_cli_parse_int(CMD, "--imgsz", val, 32, 8192, &o->imgsz);
            if (!rc && o->imgsz % 32) {
                hy_cli_error(CMD, "--imgsz %d: must be a multiple of 32", o->imgsz);
                rc = -1;
            }
            break;
        case O_RUNS: rc = hy_cli_parse_int(CMD, "--runs", val, 1, 100000, &o->runs); break;
        case O_WARMUP: rc = hy_cli_parse_int(CMD, "--warmup", val, 0, 1000, &o->warmup); break;
        case O_NOWARM: o->warmup = 0; break;
        case O_THREADS: rc = hy_cli_parse_int(CMD, "--threads", val, 0, 256, &o->threads); break;
        case O_IMAGE: o->image = val; break;
        case O_COLD: rc = hy_cli_parse_int(CMD, "--cold-process", val, 1, 1000, &o->cold); break;
        case O_JSON: o->as_json = 1; break;
        case O_ENGINES: rc = hy_cli_parse_int(CMD, "--engines", val, 1, 100, &o->engines); break;
        case O_IDLE: rc = hy_cli_parse_int(CMD, "--cold-idle", val, 0, 600000, &o->cold_idle); break;
        case O_BATCH: rc = hy_cli_parse_int(CMD, "--batch", val, 1, 256, &o->batch); break;
        case O_CONTEXTS: rc = hy_cli_parse_int(CMD, "--contexts", val, 1, 64, &o->contexts); break;
        case O_DEVICE: rc = hy_cli_parse_device(CMD, "--device", val, &o->device); break;
        case O_VIDEO: o->video = val; break;
        case O_MAXFRAMES: rc = hy_cli_parse_int(CMD, "--max-frames", val, 0, 1000000000, &o->max_frames); break;
        case O_NO_FALLBACK: o->no_fallback = 1; break;
        case O_QUIET: o->quiet = 1; break;
        }
        if (rc) return -1;
    }
    if (!o->model) {
        hy_cli_error(CMD, "missing MODEL argument (see 'hotyolo bench --help')");
        return -1;
    }
    if (o->cold && !o->image) {
        hy_cli_error(CMD, "--cold-process needs --image FILE");
        return -1;
    }
    if (o->cold_idle && !o->cold) {
        hy_cli_error(CMD, "--cold-idle needs --cold-process K");
        return -1;
    }
    if (o->max_frames && !o->video) {
        hy_cli_error(CMD, "--max-frames needs --video FILE");
        return -1;
    }
    if (o->video && (o->image || o->contexts || o->batch != 1)) {
        hy_cli_error(CMD, "--video measures a video's frames alone: not with %s",
                     o->image ? "--image" : o->contexts ? "--contexts" : "--batch");
        return -1;
    }
    return 0;
}

static int bench_alloc(const bench_opts *o, bench_run *b) {
    b->nx = (size_t)3 * (size_t)o->imgsz * (size_t)o->imgsz;
    int nv = o->runs > 64 ? o->runs : 64;
    if (nv < 6 * o->cold) nv = 6 * o->cold;
    b->nv = nv;
    const size_t dv = sizeof(double) * (size_t)nv, de = sizeof(double) * (size_t)o->engines;
    const size_t dc = sizeof(double) * (size_t)(o->cold > 0 ? o->cold : 1);
    b->x = malloc(b->nx * (size_t)o->batch * sizeof(float));
    b->v = malloc(dv), b->ref = malloc(dv), b->refm = malloc(dv), b->rtt = malloc(dv);
    b->near = malloc(dv), b->far = malloc(dv);
    b->e_cold = malloc(de), b->e_warm = malloc(de), b->e_ready = malloc(de), b->e_ratio = malloc(de);
    b->pv = malloc(dc), b->pe = malloc(dc);
    if (!b->x || !b->v || !b->ref || !b->refm || !b->rtt || !b->near || !b->far || !b->e_ratio || !b->e_cold ||
        !b->e_warm || !b->e_ready || !b->pv || !b->pe) {
        hy_cli_error(CMD, "out of memory");
        return -1;
    }
    fill_input(b->x, b->nx * (size_t)o->batch, 12345u);
    if (o->image && hy_cli_read_file(o->image, &b->img_buf, &b->img_len) != 0) {
        hy_cli_error(CMD, "cannot read image '%s'", o->image);
        return -1;
    }
    return 0;
}

static void bench_free(bench_run *b) {
    hy_context_free(b->c);
    hy_model_free(b->m);
    free(b->x);
    free(b->y);
    free(b->v);
    free(b->ref);
    free(b->refm);
    free(b->rtt);
    free(b->near);
    free(b->far);
    free(b->e_cold);
    free(b->e_warm);
    free(b->e_ready);
    free(b->e_ratio);
    free(b->pv);
    free(b->pe);
    free(b->img_buf);
}

/* A fresh engine: model + context; with pp, prepared (and warmed) too. Replaces b's. */
static hy_status engine_open(const bench_opts *o, bench_run *b, const hy_prepare_params *pp) {
    hy_context_free(b->c);
    hy_model_free(b->m);
    b->c = NULL;
    b->m = NULL;
    hy_status st = hy_model_load(o->model, &b->mp, &b->m);
    if (!st) st = hy_context_create(b->m, NULL, &b->c);
    if (!st && pp) st = hy_model_prepare(b->c, pp);
    if (!st && !b->y) {
        size_t od[2] = {0, 0};
        st = hy_model_output_shape(b->m, o->imgsz, o->imgsz, od);
        b->ny = od[0] * od[1];
        if (!st && !(b->y = malloc(b->ny * (size_t)o->batch * sizeof(float))))
            st = bench_fail(b, HY_ERR_NOMEM, "out of memory");
    }
    return st;
}

static hy_status forward(const bench_opts *o, bench_run *b) {
    return hy_model_forward(b->c, b->x, o->batch, o->imgsz, o->imgsz, b->y, b->ny * (size_t)o->batch);
}

/* 1. Fresh engines, no warm-up: the first inference pays every one-time cost left.
 *    K engines, so that one noisy sample does not make the figure. */
static hy_status measure_cold_engines(const bench_opts *o, bench_run *b) {
    hy_status st = HY_OK;
    for (int e = 0; e < o->engines && !st; e++) {
        if ((st = engine_open(o, b, NULL))) break;
        if (e == 0) hy_cli_warn_fallback(CMD, b->m, o->quiet);
        double t0 = now_ms();
        st = forward(o, b);
        b->e_cold[e] = now_ms() - t0;
        if (e == 0) b->cold_first_engine = b->e_cold[e];
    }
    return st;
}

/* 2. K engines the way a service starts them: load -> prepare -> warm-up -> ready, then
 *    the first real inference (an input warm-up never saw). The last one stays. */
static hy_status measure_ready_engines(const bench_opts *o, bench_run *b) {
    hy_shape shape = {o->imgsz, o->imgsz};
    hy_status st = HY_OK;
    for (int e = 0; e < o->engines && !st; e++) {
        hy_prepare_params pp = hy_prepare_default_params();
        pp.shapes = &shape;
        pp.n_shapes = 1;
        pp.warmup_runs = o->warmup;
        pp.batch = o->batch;
        double r0 = now_ms();
        st = engine_open(o, b, &pp);
        b->e_ready[e] = now_ms() - r0;
        fill_input(b->x, b->nx * (size_t)o->batch, 999u + (unsigned)e);
        double t0 = now_ms();
        if (!st) st = forward(o, b);
        b->e_warm[e] = now_ms() - t0;
        if (!st) hy_model_engine_stats(b->c, &b->es);
        /* paired: the same engine's next passes, seconds apart (the same machine phase) */
        double next[PAIR_RUNS];
        for (int i = 0; i < PAIR_RUNS && !st; i++) {
            t0 = now_ms();
            st = forward(o, b);
            next[i] = now_ms() - t0;
        }
        if (!st) b->e_ratio[e] = b->e_warm[e] / summarize(next, PAIR_RUNS).median;
    }
    return st;
}

/* 3. Steady state. After each run a fixed compute loop is timed too: its spread is the
 *    machine's own jitter (other tenants, SMT siblings, frequency) in the same seconds. */
static hy_status measure_steady(const bench_opts *o, bench_run *b) {
    b->rss = peak_rss_kb(RUSAGE_SELF); /* before the reference buffer below */
    float *membuf = malloc(REF_MEM_FLOATS * sizeof(float));
    if (!membuf) return bench_fail(b, HY_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < REF_MEM_FLOATS; i++) membuf[i] = (float)(i & 255);
    ref_team team;
    if (ref_team_start(&team, hy_context_num_threads(b->c)) != 0) {
        free(membuf);
        return bench_fail(b, HY_ERR_BACKEND, "cannot start the reference-loop threads");
    }
    hy_status st = HY_OK;
    const int runs = o->runs;
    for (int i = 0; i < runs && !st; i++) {
        double t0 = now_ms();
        st = forward(o, b);
        b->v[i] = now_ms() - t0;
        b->ref[i] = ref_team_run(&team, &b->rtt[i]);
        b->refm[i] = ref_memory_ms(membuf);
    }
    ref_team_stop(&team);
    free(membuf);
    if (st) return st;
    /* Runs whose thread round trip stayed within 2x of the fastest: the threads shared a core
     * complex (the host moves vCPUs; such phases last seconds, so the probe right after a run
     * tells where that run ran); the others ran on two complexes. */
    for (int i = 0; i < runs; i++)
        if (b->rtt[i] > 0 && (b->rtt_min == 0 || b->rtt[i] < b->rtt_min)) b->rtt_min = b->rtt[i];
    for (int i = 0; i < runs && b->rtt_min > 0; i++) {
        if (b->rtt[i] <= 2 * b->rtt_min)
            b->near[b->n_near++] = b->v[i];
        else
            b->far[b->n_far++] = b->v[i];
    }
    b->steady = summarize(b->v, runs), b->noise = summarize(b->ref, runs);
    b->noise_mem = summarize(b->refm, runs);
    b->s_rtt = summarize(b->rtt, runs), b->s_near = summarize(b->near, b->n_near);
    b->s_far = summarize(b->far, b->n_far);
    b->s_cold = summarize(b->e_cold, o->engines), b->s_warm = summarize(b->e_warm, o->engines);
    b->s_ready = summarize(b->e_ready, o->engines), b->s_ratio = summarize(b->e_ratio, o->engines);
    return HY_OK;
}

/* 4. Optional: the image through decode + detect in-process, its shape prepared and
 *    warmed first, and as fresh `hotyolo detect` processes alternated with in-process
 *    runs (same seconds, so that the machine's slow phases hit both alike). */
static hy_status measure_image(const bench_opts *o, bench_run *b) {
    int iw, ih;
    hy_shape is;
    hy_status st = hy_image_probe(b->img_buf, b->img_len, &iw, &ih);
    if (!st) st = hy_model_input_shape(b->m, iw, ih, o->imgsz, &is);
    hy_prepare_params pp = hy_prepare_default_params();
    pp.shapes = &is;
    pp.n_shapes = 1;
    pp.warmup_runs = o->warmup;
    if (!st) st = hy_model_prepare(b->c, &pp);
    if (st) return st;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    double wj, we;
    long prss;
    const int cold = o->cold;
    if (cold) spawn_detect(exe, o, &wj, &we, &prss); /* page cache warm */
    int per = cold ? 5 : (o->runs < 50 ? o->runs : 50); /* in-process runs per process run */
    for (int k = 0; k < (cold ? cold : 1) && !st; k++) {
        if (cold && o->cold_idle) {
            struct timespec ts = {o->cold_idle / 1000, (long)(o->cold_idle % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        if (cold && spawn_detect(exe, o, &wj, &we, &prss) == 0) {
            b->pe[b->cold_ok] = we;
            b->pv[b->cold_ok++] = wj;
            if (prss > b->proc_rss) b->proc_rss = prss;
        }
        for (int i = 0; i < per && !st; i++) {
            hy_result *r = NULL;
            double t0 = now_ms();
            st = hy_detect_encoded(b->c, b->img_buf, b->img_len, NULL, &r);
            b->v[b->img_runs++] = now_ms() - t0;
            hy_result_free(r);
        }
    }
    if (st) return st;
    b->img_steady = summarize(b->v, b->img_runs);
    b->proc = summarize(b->pv, b->cold_ok);
    b->proc_exit = summarize(b->pe, b->cold_ok);
    return HY_OK;
}

/* 5. Optional (--contexts K): K contexts on the one model, each prepared and warmed at the
 *    batch shape and driven by a thread of its own for --runs passes, started together:
 *    images/s over the wall time of all of them. */
typedef struct ctx_gate { /* the threads start together when go is set */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go, abort;
} ctx_gate;

typedef struct ctx_job {
    hy_context *c;
    const bench_opts *o;
    float *x, *y;
    size_t ny;
    ctx_gate *gate;
    hy_status st;
} ctx_job;

static void *ctx_main(void *arg) {
    ctx_job *j = arg;
    pthread_mutex_lock(&j->gate->mu);
    while (!j->gate->go) pthread_cond_wait(&j->gate->cv, &j->gate->mu);
    const int abort_run = j->gate->abort;
    pthread_mutex_unlock(&j->gate->mu);
    for (int i = 0; i < j->o->runs && !j->st && !abort_run; i++)
        j->st = hy_model_forward(j->c, j->x, j->o->batch, j->o->imgsz, j->o->imgsz, j->y,
                                 j->ny * (size_t)j->o->batch);
    return NULL;
}

static void gate_open(ctx_gate *g, int abort_run) {
    pthread_mutex_lock(&g->mu);
    g->go = 1;
    g->abort = abort_run;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static hy_status measure_contexts(const bench_opts *o, bench_run *b) {
    const int k = o->contexts;
    ctx_job jobs[64];
    pthread_t th[64];
    ctx_gate gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    memset(jobs, 0, sizeof jobs);
    hy_shape shape = {o->imgsz, o->imgsz};
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 1;
    cp.prep.shapes = &shape;
    cp.prep.n_shapes = 1;
    cp.prep.warmup_runs = o->warmup;
    cp.prep.batch = o->batch;
    hy_status st = HY_OK;
    int made = 0, started = 0;
    for (; made < k && !st; made++) {
        ctx_job *j = &jobs[made];
        j->o = o;
        j->ny = b->ny;
        j->gate = &gate;
        j->x = malloc(b->nx * (size_t)o->batch * sizeof(float));
        j->y = malloc(b->ny * (size_t)o->batch * sizeof(float));
        if (!j->x || !j->y) {
            st = bench_fail(b, HY_ERR_NOMEM, "out of memory");
            break;
        }
        fill_input(j->x, b->nx * (size_t)o->batch, 777u + (unsigned)made);
        st = hy_context_create(b->m, &cp, &j->c);
    }
    for (; !st && started < k; started++)
        if (pthread_create(&th[started], NULL, ctx_main, &jobs[started]) != 0) {
            st = bench_fail(b, HY_ERR_BACKEND, "cannot start the context threads");
            break;
        }
    const double t0 = now_ms();
    gate_open(&gate, st != HY_OK);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (!st) {
        b->ctx_wall_ms = now_ms() - t0;
        b->ctx_images_per_s = 1000.0 * k * o->runs * o->batch / b->ctx_wall_ms;
        b->ctx_threads = hy_context_num_threads(jobs[0].c);
        for (int i = 0; i < k && !st; i++) st = jobs[i].st;
    }
    for (int i = 0; i < made && i < 64; i++) {
        hy_context_free(jobs[i].c);
        free(jobs[i].x);
        free(jobs[i].y);
    }
    return st;
}

/* "device" (what ran), "device_requested" (as normalised), "device_fallback" (why the device
 * asked for was not used; null when it was). */
static void add_device_json(json_object *j, const hy_model *m) {
    const char *why = hy_model_device_fallback(m);
    json_object_object_add(j, "device", json_object_new_string(hy_model_device(m)));
    json_object_object_add(j, "device_requested", json_object_new_string(hy_model_device_requested(m)));
    json_object_object_add(j, "device_fallback", why && why[0] ? json_object_new_string(why) : NULL);
}

/* Text report: "  device fallback: <why>" under the header line, when there was one. */
static void print_device_fallback(const hy_model *m) {
    const char *why = hy_model_device_fallback(m);
    if (!why || !why[0]) return;
    printf("  device fallback: ");
    hy_cli_put_escaped(stdout, why);
    printf("\n");
}

static void report_json(const bench_opts *o, const bench_run *b) {
    json_object *j = json_object_new_object();
    const double ips = 1000.0 * o->batch / b->steady.median;
    json_object_object_add(j, "model", json_object_new_string(o->model));
    json_object_object_add(j, "format", json_object_new_string(hy_model_format(b->m)));
    add_device_json(j, b->m);
    json_object_object_add(j, "threads", json_object_new_int(hy_context_num_threads(b->c)));
    json_object_object_add(j, "imgsz", json_object_new_int(o->imgsz));
    json_object_object_add(j, "batch", json_object_new_int(o->batch));
    json_object_object_add(j, "warmup_runs", json_object_new_int(o->warmup));
    json_object_object_add(j, "load_ms", json_object_new_double(b->es.load_ms));
    json_object_object_add(j, "prepare_ms", json_object_new_double(b->es.prepare_ms));
    json_object_object_add(j, "huge_pages", json_object_new_boolean(b->es.huge_pages));
    json_object_object_add(j, "huge_page_probe_ms", b->es.huge_page_probe_ms >= 0
                                                         ? json_object_new_double(b->es.huge_page_probe_ms)
                                                         : NULL);
    json_object_object_add(j, "warmup_ms", json_object_new_double(b->es.warmup_ms));
    json_object_object_add(j, "first_warmup_pass_ms", json_object_new_double(b->es.first_warmup_ms));
    json_object_object_add(j, "last_warmup_pass_ms", json_object_new_double(b->es.last_warmup_ms));
    json_object_object_add(j, "engines", json_object_new_int(o->engines));
    json_object_object_add(j, "time_to_ready_ms", json_object_new_double(b->s_ready.median));
    json_object_object_add(j, "first_inference_no_warmup_ms", json_object_new_double(b->s_cold.median));
    json_object_object_add(j, "first_inference_no_warmup_first_engine_ms", json_object_new_double(b->cold_first_engine));
    json_object_object_add(j, "first_inference_after_warmup_ms", json_object_new_double(b->s_warm.median));
    json_object_object_add(j, "first_inference_after_warmup_max_ms", json_object_new_double(b->e_warm[o->engines - 1]));
    json_object_object_add(j, "steady", stats_json(&b->steady));
    json_object_object_add(j, "images_per_s", json_object_new_double(ips));
    json_object_object_add(j, "runs", json_object_new_int(o->runs));
    json_object_object_add(j, "reference_compute_loop", stats_json(&b->noise));
    json_object_object_add(j, "reference_memory_loop", stats_json(&b->noise_mem));
    if (b->rtt_min > 0) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "median_ns", json_object_new_double(b->s_rtt.median));
        json_object_object_add(r, "min_ns", json_object_new_double(b->s_rtt.min));
        json_object_object_add(r, "runs_within_2x_min", json_object_new_int(b->n_near));
        json_object_object_add(r, "runs_over_2x_min", json_object_new_int(b->n_far));
        json_object_object_add(j, "reference_round_trip", r);
        if (b->n_near > 1) json_object_object_add(j, "steady_round_trip_within_2x_min", stats_json(&b->s_near));
        if (b->n_far > 1) json_object_object_add(j, "steady_round_trip_over_2x_min", stats_json(&b->s_far));
    }
    json_object_object_add(j, "first_no_warmup_over_median", json_object_new_double(b->s_cold.median / b->steady.median));
    json_object_object_add(j, "first_after_warmup_over_median", json_object_new_double(b->s_warm.median / b->steady.median));
    json_object_object_add(j, "first_after_warmup_over_next_runs", json_object_new_double(b->s_ratio.median));
    json_object_object_add(j, "peak_rss_kb", json_object_new_int64(b->rss));
    if (o->image) {
        json_object_object_add(j, "image", json_object_new_string(o->image));
        json_object_object_add(j, "image_decode_detect", stats_json(&b->img_steady));
    }
    if (o->cold) {
        json_object_object_add(j, "cold_process", stats_json(&b->proc));
        json_object_object_add(j, "cold_process_exit", stats_json(&b->proc_exit));
        json_object_object_add(j, "cold_process_runs", json_object_new_int(b->cold_ok));
        json_object_object_add(j, "cold_idle_ms", json_object_new_int(o->cold_idle));
        json_object_object_add(j, "cold_process_peak_rss_kb", json_object_new_int64(b->proc_rss));
        json_object_object_add(j, "cold_process_over_in_process",
                               json_object_new_double(b->proc.median / b->img_steady.median));
    }
    if (o->contexts) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "n", json_object_new_int(o->contexts));
        json_object_object_add(c, "threads_each", json_object_new_int(b->ctx_threads));
        json_object_object_add(c, "runs_each", json_object_new_int(o->runs));
        json_object_object_add(c, "wall_ms", json_object_new_double(b->ctx_wall_ms));
        json_object_object_add(c, "images_per_s", json_object_new_double(b->ctx_images_per_s));
        json_object_object_add(j, "contexts", c);
    }
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);
}

static void report_text(const bench_opts *o, const bench_run *b) {
    const stats *steady = &b->steady;
    const int nth = hy_context_num_threads(b->c);
    char dev[96];
    printf("hotyolo bench: %s (%s), %dx%d, batch %d, %d threads, device %s, %d warm-up passes, %d runs, %d engines\n",
           o->model, hy_model_format(b->m), o->imgsz, o->imgsz, o->batch, nth, hy_cli_device_desc(b->m, dev, sizeof dev),
           o->warmup, o->runs, o->engines);
    print_device_fallback(b->m);
    printf("  %-40s %9.1f ms\n", "load", b->es.load_ms);
    char pages[128];
    if (b->es.huge_page_probe_ms >= 0)
        snprintf(pages, sizeof pages, "%s: a 2 MiB huge page took %.2f ms; HY_HUGE_PAGES in docs/design.md",
                 b->es.huge_pages ? "2 MiB huge pages" : "4 KiB pages", b->es.huge_page_probe_ms);
    else
        snprintf(pages, sizeof pages, "%s", b->es.huge_pages ? "2 MiB huge pages" : "4 KiB pages; HY_HUGE_PAGES in docs/design.md");
    printf("  %-40s %9.1f ms  (%s)\n", "prepare (plan, arena, weights)", b->es.prepare_ms, pages);
    printf("  %-40s %9.1f ms (first pass %.1f, last %.1f)\n", "warm-up", b->es.warmup_ms, b->es.first_warmup_ms,
           b->es.last_warmup_ms);
    printf("  %-40s %9.1f ms  (median of %d engines)\n", "time to ready", b->s_ready.median, o->engines);
    printf("  %-40s %9.1f ms  (%.2fx steady median; first engine %.1f ms)\n", "first inference, no warm-up",
           b->s_cold.median, b->s_cold.median / steady->median, b->cold_first_engine);
    printf("  %-40s %9.1f ms  (%.2fx steady median; worst of %d %.1f ms)\n", "first inference after warm-up",
           b->s_warm.median, b->s_warm.median / steady->median, o->engines, b->e_warm[o->engines - 1]);
    printf("  %-40s %9.2fx     (median over the engines of first / median of its next %d passes)\n",
           "  paired with the same engine", b->s_ratio.median, PAIR_RUNS);
    printf("  %-40s %9.1f ms  p90 %.1f  p99 %.1f  min %.1f  sd %.2f (%.1f%%)\n", "steady median", steady->median,
           steady->p90, steady->p99, steady->min, steady->sd, 100.0 * steady->sd / steady->median);
    printf("  %-40s %9.1f img/s  (batch %d at the steady median)\n", "throughput", 1000.0 * o->batch / steady->median,
           o->batch);
    printf("  %-40s %9.2f ms  sd %.1f%%  (fixed loop on %d threads after each run: the machine's jitter)\n",
           "reference compute loop median", b->noise.median, 100.0 * b->noise.sd / b->noise.median, nth);
    printf("  %-40s %9.2f ms  sd %.1f%%  (one read pass over 32 MiB after each run)\n",
           "reference memory loop median", b->noise_mem.median, 100.0 * b->noise_mem.sd / b->noise_mem.median);
    if (b->rtt_min > 0) {
        printf("  %-40s %9.0f ns  min %.0f  (threads 0 <-> 1 after each run: ~60 ns on one core complex)\n",
               "reference round trip median", b->s_rtt.median, b->s_rtt.min);
        if (b->n_near > 1 && b->n_near < o->runs)
            print_subset("steady, round trip within 2x of its min", &b->s_near, b->n_near, o->runs);
        if (b->n_far > 1 && b->n_near > 1) print_subset("steady, round trip over 2x its min", &b->s_far, b->n_far, o->runs);
    }
    printf("  %-40s %9.1f MB\n", "peak RSS", (double)b->rss / 1024.0);
    if (o->image)
        printf("  %-40s %9.1f ms  (decode + detect, %d runs%s)\n", "image in-process median", b->img_steady.median,
               b->img_runs, o->cold ? ", alternated with the processes" : "");
    if (o->cold)
        printf("  %-40s %9.1f ms  min %.1f  (%.2fx in-process; %d/%d ok; peak RSS %.1f MB)\n"
               "  %-40s %9.1f ms  min %.1f  (%.2fx in-process)\n",
               "fresh process -> JSON written, median", b->proc.median, b->proc.min, b->proc.median / b->img_steady.median,
               b->cold_ok, o->cold, (double)b->proc_rss / 1024.0, "fresh process -> exit, median", b->proc_exit.median,
               b->proc_exit.min, b->proc_exit.median / b->img_steady.median);
    if (o->cold && o->cold_idle)
        printf("  %-40s %9d ms  (before each fresh process)\n", "idle", o->cold_idle);
    if (o->contexts)
        printf("  %-40s %9.1f img/s  (%d context%s x %d thread%s on one model, %d runs each, %.0f ms)\n",
               "contexts in parallel", b->ctx_images_per_s, o->contexts, o->contexts == 1 ? "" : "s", b->ctx_threads,
               b->ctx_threads == 1 ? "" : "s", o->runs, b->ctx_wall_ms);
    /* The zero-cold-start targets (docs/bench.md), as measured by this run. */
    printf("  targets (this run; on a shared machine read them beside the reference probes):\n");
    printf("    first after warm-up <= 1.05x steady    %5.2fx paired, %.2fx of the median  %s\n", b->s_ratio.median,
           b->s_warm.median / steady->median, b->s_ratio.median <= 1.05 ? "met" : "not met");
    printf("    stddev <= 5%% of the median             %5.1f%%  %s\n", 100.0 * steady->sd / steady->median,
           steady->sd <= 0.05 * steady->median ? "met" : "not met");
    printf("    time to ready <= 4x steady + 50 ms     %5.0f ms <= %.0f ms  %s\n", b->s_ready.median,
           4 * steady->median + 50, b->s_ready.median <= 4 * steady->median + 50 ? "met" : "not met");
    if (o->cold) {
        const double r = b->proc.median / b->img_steady.median;
        printf("    one-shot JSON <= 1.25x in-process      %5.2fx  %s%s\n", r, r <= 1.25 ? "met" : "not met",
               o->cold_idle ? " (after idle gaps)" : "");
        printf("    one-shot peak RSS <= 80 MB             %5.1f MB  %s\n", (double)b->proc_rss / 1024.0,
               b->proc_rss <= 80 * 1000 * 1000 / 1024 ? "met" : "not met");
    }
}

/* ---- --video FILE ----------------------------------------------------------------------- */

/* Per frame (ms): decode (the stream's thread: demux + decode + RGB), hy_detect's stages and
 * its wall time; a frame's time = decode + detect wall. */
typedef struct video_frame {
    double decode, pre, infer, post, detect;
} video_frame;

typedef struct video_run {
    hy_model *m;
    hy_context *c;
    hy_stream *s;
    hy_stream_info info;
    hy_stream_stats ss;
    hy_shape input; /* the network input the frames are letterboxed to */
    video_frame *f;
    size_t n, cap;
    double load_ms, open_ms, prepare_ms, wall_ms, first_ms;
    stats decode, pre, infer, post, steady; /* steady: frames 1..n-1 */
    long rss;
    const char *err; /* a failure of ours; else hy_last_error() (which names the model / the video) */
    int detect_failed; /* hy_detect's error: prefixed with the video and the frame */
} video_run;

static hy_status video_measure(const bench_opts *o, video_run *v) {
    hy_model_params mp = hy_model_default_params();
    mp.n_threads = o->threads;
    mp.imgsz = o->imgsz;
    mp.device = o->device;
    mp.no_fallback = o->no_fallback;
    double t0 = now_ms();
    hy_status st = hy_model_load(o->model, &mp, &v->m);
    if (!st) hy_cli_warn_fallback(CMD, v->m, o->quiet);
    if (!st) st = hy_context_create(v->m, NULL, &v->c);
    v->load_ms = now_ms() - t0;
    if (st) return st;
    hy_stream_params sp = hy_stream_default_params();
    sp.live = 0; /* a benchmark sees every frame */
    sp.max_frames = o->max_frames;
    t0 = now_ms();
    st = hy_stream_open(o->video, &sp, &v->s);
    v->open_ms = now_ms() - t0;
    if (!st) st = hy_stream_get_info(v->s, &v->info);
    if (!st) st = hy_model_input_shape(v->m, v->info.width, v->info.height, o->imgsz, &v->input);
    if (st) return st;
    t0 = now_ms();
    st = hy_stream_prepare(v->s, v->c, o->imgsz);
    v->prepare_ms = now_ms() - t0;
    if (st) return st;
    hy_detect_params dp = hy_model_detect_params(v->m);
    dp.imgsz = o->imgsz;
    const double w0 = now_ms();
    for (;;) {
        hy_frame fr;
        if ((st = hy_stream_read(v->s, &fr)) != HY_OK) break;
        if (v->n == v->cap) {
            size_t cap = v->cap ? 2 * v->cap : 256;
            video_frame *nf = realloc(v->f, cap * sizeof *nf);
            if (!nf) {
                v->err = "out of memory";
                return HY_ERR_NOMEM;
            }
            v->f = nf, v->cap = cap;
        }
        hy_result *r = NULL;
        t0 = now_ms();
        st = hy_detect(v->c, fr.image, &dp, &r);
        const double dt = now_ms() - t0;
        if (st) {
            v->detect_failed = 1;
            return st;
        }
        hy_timings tm = hy_result_timings(r);
        hy_result_free(r);
        v->f[v->n++] = (video_frame){fr.decode_ms, tm.preprocess_ms, tm.inference_ms, tm.postprocess_ms, dt};
    }
    v->wall_ms = now_ms() - w0;
    if (st != HY_END) return st;
    hy_stream_get_stats(v->s, &v->ss);
    v->rss = peak_rss_kb(RUSAGE_SELF);
    if (v->n == 0) {
        v->err = "no frame decoded";
        return HY_ERR_FORMAT;
    }
    return HY_OK;
}

/* The statistics over the frames (after video_measure; v->n >= 1). */
static int video_summarize(video_run *v) {
    const size_t n = v->n;
    double *a = malloc(n * sizeof *a);
    if (!a) return -1;
#define VIDEO_STAT(field, out)                                                                 \
    do {                                                                                       \
        for (size_t i = 0; i < n; i++) a[i] = v->f[i].field;                                   \
        v->out = summarize(a, (int)n);                                                         \
    } while (0)
    VIDEO_STAT(decode, decode);
    VIDEO_STAT(pre, pre);
    VIDEO_STAT(infer, infer);
    VIDEO_STAT(post, post);
#undef VIDEO_STAT
    v->first_ms = v->f[0].decode + v->f[0].detect;
    for (size_t i = 1; i < n; i++) a[i - 1] = v->f[i].decode + v->f[i].detect;
    v->steady = summarize(a, (int)n - 1);
    free(a);
    return 0;
}

static void video_report_json(const bench_opts *o, const video_run *v) {
    json_object *j = json_object_new_object();
    const double fps = v->wall_ms > 0 ? 1000.0 * (double)v->n / v->wall_ms : 0;
    json_object_object_add(j, "model", json_object_new_string(o->model));
    json_object_object_add(j, "format", json_object_new_string(hy_model_format(v->m)));
    add_device_json(j, v->m);
    json_object_object_add(j, "threads", json_object_new_int(hy_context_num_threads(v->c)));
    json_object_object_add(j, "imgsz", json_object_new_int(o->imgsz));
    json_object_object_add(j, "video", json_object_new_string(o->video));
    json_object_object_add(j, "video_format", json_object_new_string(v->info.format ? v->info.format : ""));
    json_object_object_add(j, "codec", json_object_new_string(v->info.codec ? v->info.codec : ""));
    json_object_object_add(j, "width", json_object_new_int(v->info.width));
    json_object_object_add(j, "height", json_object_new_int(v->info.height));
    json_object_object_add(j, "input_width", json_object_new_int(v->input.width));
    json_object_object_add(j, "input_height", json_object_new_int(v->input.height));
    json_object_object_add(j, "source_fps", json_object_new_double(v->info.fps));
    json_object_object_add(j, "load_ms", json_object_new_double(v->load_ms));
    json_object_object_add(j, "open_ms", json_object_new_double(v->open_ms));
    json_object_object_add(j, "prepare_ms", json_object_new_double(v->prepare_ms));
    json_object_object_add(j, "frames", json_object_new_int64((int64_t)v->n));
    json_object_object_add(j, "wall_ms", json_object_new_double(v->wall_ms));
    json_object_object_add(j, "fps", json_object_new_double(fps));
    json_object_object_add(j, "first_frame_ms", json_object_new_double(v->first_ms));
    json_object_object_add(j, "first_frame_decode_ms", json_object_new_double(v->f[0].decode));
    json_object_object_add(j, "first_frame_detect_ms", json_object_new_double(v->f[0].detect));
    json_object_object_add(j, "steady_frame_median_ms", v->n > 1 ? json_object_new_double(v->steady.median) : NULL);
    json_object_object_add(j, "first_over_steady",
                           v->n > 1 ? json_object_new_double(v->first_ms / v->steady.median) : NULL);
    json_object_object_add(j, "steady_frame", v->n > 1 ? stats_json(&v->steady) : NULL);
    json_object_object_add(j, "decode", stats_json(&v->decode));
    json_object_object_add(j, "preprocess", stats_json(&v->pre));
    json_object_object_add(j, "inference", stats_json(&v->infer));
    json_object_object_add(j, "postprocess", stats_json(&v->post));
    json_object_object_add(j, "corrupt", json_object_new_int64(v->ss.corrupt));
    json_object_object_add(j, "dropped", json_object_new_int64(v->ss.dropped));
    json_object_object_add(j, "peak_rss_kb", json_object_new_int64(v->rss));
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);
}

static void video_report_text(const bench_opts *o, const video_run *v) {
    const double fps = v->wall_ms > 0 ? 1000.0 * (double)v->n / v->wall_ms : 0;
    char dev[96];
    printf("hotyolo bench: %s (%s), video %s (%s %dx%d, %.2f fps), input %dx%d, %d threads, device %s\n", o->model,
           hy_model_format(v->m), o->video, v->info.codec ? v->info.codec : "?", v->info.width, v->info.height,
           v->info.fps, v->input.width, v->input.height, hy_context_num_threads(v->c),
           hy_cli_device_desc(v->m, dev, sizeof dev));
    print_device_fallback(v->m);
    printf("  %-40s %9.1f ms\n", "load", v->load_ms);
    printf("  %-40s %9.1f ms\n", "open (probe, decoder, thread)", v->open_ms);
    printf("  %-40s %9.1f ms\n", "prepare (plan + warm for the frame)", v->prepare_ms);
    printf("  %-40s %9zu       (corrupt %lld)\n", "frames", v->n, (long long)v->ss.corrupt);
    printf("  %-40s %9.1f fps   (%.0f ms wall; decoding overlapped on its own thread)\n", "end to end", fps,
           v->wall_ms);
    printf("  %-40s %9.2f ms  p90 %.2f\n", "decode median", v->decode.median, v->decode.p90);
    printf("  %-40s %9.2f ms  p90 %.2f\n", "preprocess median", v->pre.median, v->pre.p90);
    printf("  %-40s %9.2f ms  p90 %.2f\n", "inference median", v->infer.median, v->infer.p90);
    printf("  %-40s %9.2f ms  p90 %.2f\n", "postprocess median", v->post.median, v->post.p90);
    if (v->n > 1) {
        printf("  %-40s %9.1f ms  p90 %.1f  sd %.2f (%.1f%%)  (decode + detect, frames 1..%zu)\n",
               "steady frame median", v->steady.median, v->steady.p90, v->steady.sd,
               100.0 * v->steady.sd / v->steady.median, v->n - 1);
        const double r = v->first_ms / v->steady.median;
        printf("  first frame %.1f ms = %.2f x steady median %.1f ms  (decode %.1f + detect %.1f: inference %.1f)\n",
               v->first_ms, r, v->steady.median, v->f[0].decode, v->f[0].detect, v->f[0].infer);
        printf("  %-40s %9.1f MB\n", "peak RSS", (double)v->rss / 1024.0);
        printf("  targets (this run):\n");
        printf("    first frame <= 1.25x steady median     %5.2fx  %s\n", r, r <= 1.25 ? "met" : "not met");
    } else {
        printf("  first frame %.1f ms (one frame: no steady median)\n", v->first_ms);
        printf("  %-40s %9.1f MB\n", "peak RSS", (double)v->rss / 1024.0);
    }
}

static int bench_video(const bench_opts *o) {
    video_run v;
    memset(&v, 0, sizeof v);
    int ret = HY_CLI_RUNTIME;
    hy_status st = video_measure(o, &v);
    if (st && v.err)
        hy_cli_error(CMD, "%s: %s", o->video, v.err);
    else if (st && v.detect_failed)
        hy_cli_error(CMD, "%s frame %zu: %s", o->video, v.n, hy_last_error());
    else if (st) /* the library's message names the model file or the video */
        hy_cli_error(CMD, "%s", hy_last_error());
    else if (video_summarize(&v) != 0) {
        hy_cli_error(CMD, "out of memory");
    } else {
        if (o->as_json)
            video_report_json(o, &v);
        else
            video_report_text(o, &v);
        ret = HY_CLI_OK;
    }
    hy_stream_close(v.s);
    hy_context_free(v.c);
    hy_model_free(v.m);
    free(v.f);
    return ret;
}

int hy_cli_bench(int argc, char **argv) {
    bench_opts o = {.imgsz = 640, .runs = 200, .warmup = 3, .engines = 5, .batch = 1};
    int pr = parse_args(argc, argv, &o);
    if (pr) return pr > 0 ? HY_CLI_OK : HY_CLI_USAGE;
    if (o.video) return bench_video(&o);
    bench_run b;
    memset(&b, 0, sizeof b);
    b.mp = hy_model_default_params();
    b.mp.n_threads = o.threads;
    b.mp.imgsz = o.imgsz;
    b.mp.device = o.device;
    b.mp.no_fallback = o.no_fallback;
    int ret = HY_CLI_RUNTIME;
    if (bench_alloc(&o, &b) != 0) goto out;
    hy_status st = measure_cold_engines(&o, &b);
    if (!st) st = measure_ready_engines(&o, &b);
    if (!st) st = measure_steady(&o, &b);
    if (st) {
        hy_cli_error(CMD, "%s", b.err ? b.err : hy_last_error());
        goto out;
    }
    if (o.image && (st = measure_image(&o, &b))) {
        hy_cli_error(CMD, "%s: %s", o.image, hy_last_error());
        goto out;
    }
    if (o.contexts && (st = measure_contexts(&o, &b))) {
        hy_cli_error(CMD, "--contexts %d: %s", o.contexts, b.err ? b.err : hy_last_error());
        goto out;
    }
    if (o.as_json)
        report_json(&o, &b);
    else
        report_text(&o, &b);
    ret = o.cold && b.cold_ok < o.cold ? HY_CLI_RUNTIME : HY_CLI_OK;
out:
    bench_free(&b);
    return ret;
}
