/* Fixed-size thread pool. hy__threadpool_run() publishes one task to all workers by bumping
 * a generation counter; workers spin briefly (low latency between the ~60 ops of a forward
 * pass), then sleep on a condition variable. No allocation after create. */
#include "core.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

struct hy__threadpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int pending;
    atomic_bool stop;
    hy__task_fn fn;
    void *ctx;
};

typedef struct {
    hy__threadpool *tp;
    int ith;
} worker_arg;

static void *worker(void *p) {
    worker_arg a = *(worker_arg *)p;
    hy__free(p);
    hy__threadpool *tp = a.tp;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen && !atomic_load(&tp->stop)) {
            if (++spins < 20000) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&tp->mu);
            while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->stop)) pthread_cond_wait(&tp->cv, &tp->mu);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop)) return NULL;
        seen = g;
        tp->fn(tp->ctx, a.ith, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel);
    }
}

int hy__cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

hy_status hy__threadpool_create(int n_threads, hy__threadpool **out) {
    if (n_threads <= 0) n_threads = hy__cpu_count();
    if (n_threads > 256) return hy__error(HY_ERR_INVALID_ARG, "threads: %d is more than 256", n_threads);
    hy__threadpool *tp = hy__calloc(1, sizeof *tp);
    if (!tp) return hy__error(HY_ERR_NOMEM, "thread pool: out of memory");
    tp->n = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv, NULL);
    if (n_threads > 1) {
        tp->threads = hy__calloc((size_t)n_threads, sizeof(pthread_t));
        if (!tp->threads) goto fail;
        for (int i = 1; i < n_threads; i++) {
            worker_arg *a = hy__malloc(sizeof *a);
            if (!a) goto fail_started;
            a->tp = tp;
            a->ith = i;
            if (pthread_create(&tp->threads[i], NULL, worker, a) != 0) {
                hy__free(a);
                goto fail_started;
            }
            continue;
        fail_started:
            tp->n = i; /* threads 1..i-1 started */
            hy__threadpool_free(tp);
            return hy__error(HY_ERR_BACKEND, "thread pool: cannot start thread %d of %d", i, n_threads);
        }
    }
    *out = tp;
    return HY_OK;
fail:
    hy__free(tp->threads);
    hy__free(tp);
    return hy__error(HY_ERR_NOMEM, "thread pool: out of memory");
}

void hy__threadpool_free(hy__threadpool *tp) {
    if (!tp) return;
    if (tp->threads) {
        pthread_mutex_lock(&tp->mu);
        atomic_store(&tp->stop, true);
        pthread_cond_broadcast(&tp->cv);
        pthread_mutex_unlock(&tp->mu);
        for (int i = 1; i < tp->n; i++) pthread_join(tp->threads[i], NULL);
        hy__free(tp->threads);
    }
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv);
    hy__free(tp);
}

int hy__threadpool_size(const hy__threadpool *tp) { return tp ? tp->n : 1; }

typedef struct each_task {
    hy__item_fn item;
    void *ctx;
    hy__workq wq;
} each_task;

static void each_worker(void *p, int ith, int nth) {
    each_task *t = p;
    (void)nth;
    long i0, i1;
    while (hy__workq_take(&t->wq, ith, &i0, &i1))
        for (long i = i0; i < i1; i++) t->item(t->ctx, i, ith);
}

void hy__threadpool_each(hy__threadpool *tp, long n, hy__item_fn item, void *ctx) {
    if (n <= 0) return;
    each_task t = {.item = item, .ctx = ctx};
    hy__workq_init(&t.wq, n, hy__threadpool_size(tp), 0, 1);
    hy__threadpool_run(tp, each_worker, &t);
}

void hy__threadpool_run(hy__threadpool *tp, hy__task_fn fn, void *ctx) {
    if (!tp || tp->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    atomic_store(&tp->pending, tp->n - 1);
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->gen, 1, memory_order_release);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    fn(ctx, 0, tp->n);
    /* Spin briefly (workers usually finish within microseconds of us), then yield so a
     * descheduled worker on a busy machine gets the core back. */
    for (int spins = 0; atomic_load_explicit(&tp->pending, memory_order_acquire) > 0; spins++) {
        if (spins < 4000) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}
