/* The machine's fp32 FMA peak (GFLOP/s) for 1..T threads: a register-resident loop of 12
 * independent FMA chains per thread (enough to cover FMA latency x issue width on current
 * x86 cores), ~0.2 s per measurement, best of 3. Every ISA the build allows is measured
 * (AVX-512 with __AVX512F__, AVX2 with __FMA__, scalar always) and the best is the peak.
 * An FMA counts 2 FLOP per lane, as the GFLOP/s of bench_infer and bench_ops.
 *
 *   bench_peak [--threads T] [--ms MS] [--json]      (default T = 2, MS = 200) */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#define ACC 12
#define INNER 4096 /* loop trips between clock reads are counted by the caller */

typedef double (*kernel_fn)(long iters); /* runs iters x ACC FMAs x lanes; returns a sink */

#ifdef __AVX512F__
static double k_avx512(long iters) {
    __m512 acc[ACC];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    for (int j = 0; j < ACC; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < ACC; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    __m512 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}
#endif

#ifdef __FMA__
static double k_avx2(long iters) {
    __m256 acc[ACC];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    for (int j = 0; j < ACC; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < ACC; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    __m256 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm256_add_ps(s, acc[j]);
    float f[8];
    _mm256_storeu_ps(f, s);
    return (double)f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

static double k_scalar(long iters) {
    float acc[ACC];
    for (int j = 0; j < ACC; j++) acc[j] = (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < ACC; j++) acc[j] = fmaf(acc[j], 0.999999f, 1e-6f);
    double s = 0;
    for (int j = 0; j < ACC; j++) s += acc[j];
    return s;
}

typedef struct isa {
    const char *name;
    int lanes;
    kernel_fn fn;
} isa;

static const isa isas[] = {
#ifdef __AVX512F__
    { "avx512", 16, k_avx512 },
#endif
#ifdef __FMA__
    { "avx2", 8, k_avx2 },
#endif
    { "scalar", 1, k_scalar },
};

/* One thread's job: call the kernel in INNER-trip chunks until ms milliseconds passed.
 * All threads start together (barrier) and stop on their own clock. */
typedef struct job {
    kernel_fn fn;
    double ms;
    pthread_barrier_t *bar;
    long trips;
    double elapsed_ms, sink;
} job;

static void *run_job(void *p) {
    job *j = p;
    pthread_barrier_wait(j->bar);
    double t0 = hy__now_ms(), t;
    j->trips = 0;
    do {
        j->sink += j->fn(INNER);
        j->trips += INNER;
    } while ((t = hy__now_ms() - t0) < j->ms);
    j->elapsed_ms = t;
    return NULL;
}

/* GFLOP/s of nt threads running fn together: sum of FLOPs / the slowest thread's time. */
static double measure(const isa *is, int nt, double ms, double *sink) {
    pthread_t th[64];
    job jobs[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nt);
    for (int i = 0; i < nt; i++) jobs[i] = (job){ .fn = is->fn, .ms = ms, .bar = &bar };
    int started = 1;
    for (int i = 1; i < nt; i++, started++)
        if (pthread_create(&th[i], NULL, run_job, &jobs[i])) {
            fprintf(stderr, "bench_peak: cannot start thread %d\n", i);
            exit(1); /* the barrier waits for nt: a bench tool can give up here */
        }
    run_job(&jobs[0]);
    for (int i = 1; i < started; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    double flop = 0, slowest = 0;
    for (int i = 0; i < nt; i++) {
        flop += 2.0 * ACC * is->lanes * (double)jobs[i].trips;
        if (jobs[i].elapsed_ms > slowest) slowest = jobs[i].elapsed_ms;
        *sink += jobs[i].sink;
    }
    return flop / (slowest * 1e6);
}

int main(int argc, char **argv) {
    int max_t = 2, json = 0;
    double ms = 200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) max_t = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc) ms = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads T] [--ms MS] [--json]\n", argv[0]);
            return 2;
        }
    }
    if (max_t < 1 || max_t > 64 || !(ms >= 1 && ms <= 60000)) {
        fprintf(stderr, "bench_peak: need 1 <= threads <= 64 and 1 <= ms <= 60000\n");
        return 2;
    }
    enum { N_ISA = sizeof isas / sizeof *isas };
    double best[N_ISA][64] = { { 0 } }, sink = 0;
    for (int t = 1; t <= max_t; t++)
        for (int i = 0; i < N_ISA; i++)
            for (int rep = 0; rep < 3; rep++) {
                double g = measure(&isas[i], t, isas[i].lanes == 1 ? ms / 4 : ms, &sink);
                if (g > best[i][t - 1]) best[i][t - 1] = g;
            }
    /* the peak is the best ISA per thread count */
    int top = 0;
    for (int i = 1; i < N_ISA; i++)
        if (best[i][0] > best[top][0]) top = i;
    if (json) {
        printf("{\"isa\": \"%s\", \"accumulators\": %d, \"ms_per_measurement\": %.0f", isas[top].name, ACC, ms);
        for (int t = 1; t <= max_t; t++) {
            double b = 0;
            for (int i = 0; i < N_ISA; i++) b = best[i][t - 1] > b ? best[i][t - 1] : b;
            printf(", \"gflops_t%d\": %.1f", t, b);
        }
        for (int i = 0; i < N_ISA; i++)
            for (int t = 1; t <= max_t; t++) printf(", \"%s_t%d\": %.1f", isas[i].name, t, best[i][t - 1]);
        printf(", \"sink\": %.3g}\n", sink);
    } else {
        printf("fp32 FMA peak, %d accumulators per thread, best of 3 x %.0f ms (GFLOP/s)\n", ACC, ms);
        printf("%-8s", "threads");
        for (int i = 0; i < N_ISA; i++) printf(" %10s", isas[i].name);
        printf("\n");
        for (int t = 1; t <= max_t; t++) {
            printf("%-8d", t);
            for (int i = 0; i < N_ISA; i++) printf(" %10.1f", best[i][t - 1]);
            printf("\n");
        }
        if (sink == 12345.678) printf("\n"); /* keeps the sums live */
    }
    return 0;
}
