/* Bounded inference queue and its worker threads.
 *
 * HTTP threads submit jobs and wait for them with a deadline; workers run them FIFO. A
 * waiter that times out gives its job up: a queued job is unlinked and freed by the waiter,
 * a running one is freed by its worker when the pass ends (a forward pass cannot be
 * interrupted). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "model/model_impl.h"
#include "server/server_impl.h"

// --- jobs ------------------------------------------------------------------------------

hy_status hy__job_new(hy__job_kind kind, hy__job **out) {
    hy__job *j = hy__calloc(1, sizeof *j);
    if (!j) return hy__error(HY_ERR_NOMEM, "out of memory (job)");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->kind = kind;
    *out = j;
    return HY_OK;
}

void hy__job_free(struct hy_server *s, hy__job *j) {
    if (!j) return;
    if (j->ver) hy__cache_release(&s->cache, j->ver);
    hy__free(j->image);
    hy__free(j->classes);
    hy__free(j->x);
    hy__free(j->out);
    hy_result_free(j->res);
    pthread_cond_destroy(&j->cv);
    hy__free(j);
}

// --- inference slots -------------------------------------------------------------------

void hy__slot_acquire(hy__queue *q) {
    if (!q->slots) return;
    pthread_mutex_lock(&q->slot_mu);
    while (q->slots_free == 0) pthread_cond_wait(&q->slot_cv, &q->slot_mu);
    q->slots_free--;
    pthread_mutex_unlock(&q->slot_mu);
}

void hy__slot_release(hy__queue *q) {
    if (!q->slots) return;
    pthread_mutex_lock(&q->slot_mu);
    q->slots_free++;
    pthread_cond_signal(&q->slot_cv);
    pthread_mutex_unlock(&q->slot_mu);
}

// --- workers ---------------------------------------------------------------------------

/* Claims the context of `worker` (another unclaimed one if a job of a timed-out rendezvous
 * took it; w->mu held); NULL when every context is claimed. */
static hy__vctx *warm_claim(hy__warm_sync *w, int worker) {
    hy__vctx *v = worker < w->n && !w->ctx[worker].claimed ? &w->ctx[worker] : NULL;
    for (int i = 0; !v && i < w->n; i++)
        if (!w->ctx[i].claimed) v = &w->ctx[i];
    if (v) v->claimed = 1;
    return v;
}

static void run_warm(hy__queue *q, hy__job *j, int worker) {
    hy__warm_sync *w = j->warm_sync;
    pthread_mutex_lock(&w->mu);
    hy__vctx *v = warm_claim(w, worker);
    pthread_mutex_unlock(&w->mu);
    hy__slot_acquire(q);
    j->st = v ? hy_model_prepare(v->ctx, w->prep) : HY_OK;
    for (int i = 0; v && w->jpg && i < 2 && j->st == HY_OK; i++) {
        hy_result *r = NULL;
        j->st = hy_detect_encoded(v->ctx, w->jpg, w->len, NULL, &r);
        hy_result_free(r);
    }
    hy__slot_release(q);
    if (j->st != HY_OK) snprintf(j->err, sizeof j->err, "%s", hy_last_error());
    pthread_mutex_lock(&w->mu);
    w->started++;
    pthread_cond_broadcast(&w->cv);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10; /* safety: never hold a worker forever */
    while (w->started < w->n)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&w->mu);
}

static void run_job(hy_server *s, hy__job *j, int worker) {
    hy__queue *q = &s->queue;
    if (j->kind == HY__JOB_WARM) {
        run_warm(q, j, worker);
        return;
    }
    /* decode first, outside the inference slot (overlapping other workers' passes) */
    hy_image *img = NULL;
    double t0 = hy__now_ms(), dec = 0;
    j->st = j->kind == HY__JOB_DETECT ? hy_image_decode(j->image, j->image_len, &img) : HY_OK;
    if (j->kind == HY__JOB_DETECT) dec = hy__now_ms() - t0;
    hy__slot_acquire(q);
    hy_context *ctx = hy__cache_before_run(&s->cache, j->ver, worker); /* may re-warm */
    j->t_start = hy__now_ms() - dec; /* the slot wait and a re-warm count as queueing */
    if (j->st == HY_OK && j->kind == HY__JOB_DETECT) {
        j->st = hy_detect(ctx, img, &j->dp, &j->res);
        if (j->st == HY_OK) hy__result_set_decode_ms(j->res, dec);
    } else if (j->st == HY_OK) {
        j->st = hy_model_forward(ctx, j->x, 1, j->h, j->w, j->out, j->out_len);
    }
    hy__slot_release(q);
    hy_image_free(img);
    j->t_end = hy__now_ms();
    if (j->st != HY_OK) snprintf(j->err, sizeof j->err, "%s", hy_last_error());
    /* the watchdog judges the forward pass alone: a slow decode is the image's cost */
    double fwd = j->st != HY_OK                 ? -1
                 : j->kind == HY__JOB_FORWARD ? j->t_end - j->t_start
                                               : hy_result_timings(j->res).inference_ms;
    hy__cache_after_run(&s->cache, j->ver, worker, j->t_end - j->t_start, fwd,
                        j->t_end - j->t_queued);
}

static void *worker_main(void *arg) {
    hy__queue *q = ((struct hy__worker_arg *)arg)->q;
    int worker = ((struct hy__worker_arg *)arg)->index;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop) pthread_cond_wait(&q->cv, &q->mu);
        if (!q->head) break; /* stopping and drained */
        hy__job *j = q->head;
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        j->next = NULL;
        q->n_queued--;
        q->n_running++;
        j->state = HY__JOB_RUNNING;
        pthread_mutex_unlock(&q->mu);

        run_job(q->srv, j, worker);

        pthread_mutex_lock(&q->mu);
        q->n_running--;
        if (j->state == HY__JOB_ABANDONED) {
            pthread_mutex_unlock(&q->mu);
            hy__job_free(q->srv, j); /* its waiter timed out */
            pthread_mutex_lock(&q->mu);
        } else {
            j->state = HY__JOB_DONE;
            pthread_cond_signal(&j->cv);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

// --- queue -----------------------------------------------------------------------------

/* Appends j (q->mu held). */
static void enqueue_locked(hy__queue *q, hy__job *j) {
    j->state = HY__JOB_QUEUED;
    j->t_queued = hy__now_ms();
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n_queued++;
}

hy_status hy__queue_start(hy__queue *q, struct hy_server *s, int workers, int max_queued) {
    memset(q, 0, sizeof *q);
    q->srv = s;
    q->max_queued = max_queued;
    pthread_mutex_init(&q->slot_mu, NULL);
    pthread_cond_init(&q->slot_cv, NULL);
    const int cores = hy__cpu_count(), per = s->p.n_threads > 0 ? s->p.n_threads : cores;
    q->slots = q->slots_free = HY_MAX(1, cores / per);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->threads = hy__calloc((size_t)workers, sizeof *q->threads);
    q->args = hy__calloc((size_t)workers, sizeof *q->args);
    if (!q->threads || !q->args) {
        hy__free(q->threads);
        hy__free(q->args);
        q->threads = NULL;
        q->args = NULL;
        return hy__error(HY_ERR_NOMEM, "out of memory (workers)");
    }
    for (int i = 0; i < workers; i++) {
        q->args[i] = (struct hy__worker_arg){q, i};
        if (pthread_create(&q->threads[i], NULL, worker_main, &q->args[i]) != 0) {
            hy__queue_stop(q);
            return hy__error(HY_ERR_NOMEM, "cannot start worker thread %d of %d", i + 1, workers);
        }
        q->n_threads++;
    }
    return HY_OK;
}

void hy__queue_stop(hy__queue *q) {
    if (!q->threads) return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->n_threads; i++) pthread_join(q->threads[i], NULL);
    hy__free(q->threads);
    hy__free(q->args);
    q->threads = NULL;
    q->args = NULL;
    q->n_threads = 0;
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

hy_status hy__queue_submit(hy__queue *q, hy__job *j) {
    pthread_mutex_lock(&q->mu);
    if (q->stop || q->n_queued >= q->max_queued) {
        int n = q->n_queued;
        pthread_mutex_unlock(&q->mu);
        return hy__error(HY_ERR_BUSY,
                         "server overloaded: %d requests already queued (--max-queue %d)", n,
                         q->max_queued);
    }
    enqueue_locked(q, j);
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return HY_OK;
}

static void unlink_job(hy__queue *q, hy__job *j) {
    hy__job *prev = NULL;
    for (hy__job *it = q->head; it; prev = it, it = it->next) {
        if (it != j) continue;
        if (prev)
            prev->next = j->next;
        else
            q->head = j->next;
        if (q->tail == j) q->tail = prev;
        q->n_queued--;
        return;
    }
}

int hy__queue_wait(hy__queue *q, hy__job *j, double deadline_ms) {
    struct timespec ts;
    if (deadline_ms > 0) {
        /* monotonic ms -> timespec on the job's CLOCK_MONOTONIC condvar */
        double sec = deadline_ms / 1e3;
        ts.tv_sec = (time_t)sec;
        ts.tv_nsec = (long)((sec - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&q->mu);
    while (j->state != HY__JOB_DONE) {
        int rc = deadline_ms > 0 ? pthread_cond_timedwait(&j->cv, &q->mu, &ts)
                                 : pthread_cond_wait(&j->cv, &q->mu);
        if (rc == ETIMEDOUT && j->state != HY__JOB_DONE) {
            int queued = j->state == HY__JOB_QUEUED;
            if (queued) unlink_job(q, j);
            j->state = HY__JOB_ABANDONED;
            pthread_mutex_unlock(&q->mu);
            if (queued) hy__job_free(q->srv, j); /* no worker saw it */
            return 0;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return 1;
}

hy_status hy__queue_warm(hy__queue *q, hy__warm_sync *w) {
    if (!q->threads || q->n_threads <= 0 || w->n != q->n_threads)
        return hy__error(HY_ERR_INVALID_ARG, "warm-up: %d contexts for %d workers", w->n,
                         q->n_threads);
    enum { MAXW = 256 }; /* hy_server_params.workers <= 256 */
    hy__job *jobs[MAXW];
    if (w->n > MAXW) return hy__error(HY_ERR_INVALID_ARG, "warm-up: more than %d workers", MAXW);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->started = 0;
    hy_status st = HY_OK;
    int n = 0;
    for (; n < w->n && st == HY_OK; n++) {
        if ((st = hy__job_new(HY__JOB_WARM, &jobs[n]))) break;
        jobs[n]->warm_sync = w;
    }
    if (st != HY_OK) { /* could not make them all: run none (the rendezvous counts n) */
        for (int i = 0; i < n; i++) hy__job_free(q->srv, jobs[i]);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        return st;
    }
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < n; i++) enqueue_locked(q, jobs[i]); /* past max_queue: the server's own */
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < n; i++) {
        hy__queue_wait(q, jobs[i], 0);
        if (st == HY_OK && jobs[i]->st != HY_OK)
            st = hy__error(jobs[i]->st, "warm-up: %s", jobs[i]->err);
        hy__job_free(q->srv, jobs[i]);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return st;
}

void hy__queue_counts(hy__queue *q, int *queued, int *running) {
    if (!q->threads) {
        *queued = *running = 0;
        return;
    }
    pthread_mutex_lock(&q->mu);
    *queued = q->n_queued;
    *running = q->n_running;
    pthread_mutex_unlock(&q->mu);
}
