/* Server metrics: histograms, counters and the Prometheus text exposition (format 0.0.4:
 * "# HELP", "# TYPE", then one sample per line; histograms as cumulative _bucket{le=...}
 * series plus _sum and _count). Also the growable text buffer used to build responses. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hotyolo/device.h"
#include "server/server_impl.h"

// --- text buffer -----------------------------------------------------------------------

static int sbuf_reserve(hy__sbuf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = hy__realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void hy__sbuf_put(hy__sbuf *b, const char *s, size_t n) {
    if (sbuf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void hy__sbuf_printf(hy__sbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        hy__sbuf_put(b, small, (size_t)n);
        return;
    }
    if (sbuf_reserve(b, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *hy__sbuf_take(hy__sbuf *b, size_t *len) {
    if (!b->failed && !b->p) sbuf_reserve(b, 0); /* empty text is still a buffer */
    char *p = b->failed ? NULL : b->p;
    if (len) *len = b->failed ? 0 : b->len;
    if (b->failed) hy__free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}

void hy__sbuf_free(hy__sbuf *b) {
    hy__free(b->p);
    memset(b, 0, sizeof *b);
}

// --- histograms ------------------------------------------------------------------------

/* Inference: 5 ms .. 2 s. Requests also include queueing and lazy loads: up to 10 s. */
static const double infer_le[] = {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0};
static const double request_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};

static void histo_init(hy__histo *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->le = le;
    h->n = n;
}

void hy__histo_init_inference(hy__histo *h) {
    histo_init(h, infer_le, (int)HY_ARRAY_LEN(infer_le));
}

void hy__histo_observe(hy__histo *h, double seconds) {
    int i = 0;
    while (i < h->n && seconds > h->le[i]) i++;
    h->bucket[i]++; /* i == n: +Inf */
    h->sum += seconds;
    h->count++;
}

/* name_bucket{labels,le="..."} cumulative counts, then name_sum and name_count. */
static void histo_write(hy__sbuf *b, const char *name, const char *labels, const hy__histo *h) {
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i <= h->n; i++) {
        cum += h->bucket[i];
        if (i < h->n)
            hy__sbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->le[i],
                            (unsigned long long)cum);
        else
            hy__sbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                            (unsigned long long)cum);
    }
    hy__sbuf_printf(b, "%s_sum{%s} %.9g\n", name, labels, h->sum);
    hy__sbuf_printf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

// --- registry --------------------------------------------------------------------------

#define MAX_SERIES 1024 /* bound on (model, code) pairs; more share model="" */

struct hy__req_series {
    char model[HY_SERVER_NAME_MAX];
    int code;
    hy__histo h;
};

/* The GPUs of this machine, probed once per process (at the first start of a server whose
 * models may run on a GPU, not per scrape): kind "cuda" rows with a known memory size. */
#define MAX_GPUS 16
static hy_device_info gpus[MAX_GPUS];
static int n_gpus;
static pthread_once_t gpus_once = PTHREAD_ONCE_INIT;

static void gpus_probe(void) {
    hy_device_info all[MAX_GPUS + 1];
    int n = HY_MIN(hy_device_list(all, MAX_GPUS + 1), MAX_GPUS + 1);
    for (int i = 0; i < n && n_gpus < MAX_GPUS; i++)
        if (!strcmp(all[i].kind, "cuda") && all[i].memory_bytes > 0) gpus[n_gpus++] = all[i];
}

void hy__metrics_init(hy__metrics *m, int probe_gpus) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    if (probe_gpus) pthread_once(&gpus_once, gpus_probe);
}

void hy__metrics_free(hy__metrics *m) {
    hy__free(m->series);
    pthread_mutex_destroy(&m->mu);
    memset(m, 0, sizeof *m);
}

static hy__req_series *series_get(hy__metrics *m, const char *model, int code) {
    for (int i = 0; i < m->n; i++)
        if (m->series[i].code == code && !strcmp(m->series[i].model, model)) return &m->series[i];
    if (m->n >= MAX_SERIES) return NULL;
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        hy__req_series *ns = hy__realloc(m->series, (size_t)cap * sizeof *ns);
        if (!ns) return NULL;
        m->series = ns;
        m->cap = cap;
    }
    hy__req_series *s = &m->series[m->n++];
    snprintf(s->model, sizeof s->model, "%s", model);
    s->code = code;
    histo_init(&s->h, request_le, (int)HY_ARRAY_LEN(request_le));
    return s;
}

void hy__metrics_request(hy__metrics *m, const char *model, int code, double seconds) {
    pthread_mutex_lock(&m->mu);
    hy__req_series *s = series_get(m, model, code);
    if (!s) s = series_get(m, "", code);
    if (s) hy__histo_observe(&s->h, seconds);
    pthread_mutex_unlock(&m->mu);
}

void hy__metrics_reject(hy__metrics *m, hy__reject why) {
    pthread_mutex_lock(&m->mu);
    m->rejects[why]++;
    pthread_mutex_unlock(&m->mu);
}

void hy__metrics_forget(hy__metrics *m, const char *model) {
    if (!model || !*model) return;
    pthread_mutex_lock(&m->mu);
    int k = 0;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->series[i].model, model) != 0) m->series[k++] = m->series[i];
    m->n = k;
    pthread_mutex_unlock(&m->mu);
}

size_t hy__rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (size_t)(resident * (unsigned long long)page) : 0;
}

// --- exposition ------------------------------------------------------------------------

static void header(hy__sbuf *b, const char *name, const char *type, const char *help) {
    hy__sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static void put_label_value(hy__sbuf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\') hy__sbuf_put(b, "\\\\", 2);
        else if (*v == '"') hy__sbuf_put(b, "\\\"", 2);
        else if (*v == '\n') hy__sbuf_put(b, "\\n", 2);
        else hy__sbuf_put(b, v, 1);
    }
}

static const char *const reject_names[HY__REJ_COUNT] = {
    "queue_full",         "timeout",     "body_too_large", "bad_request", "not_found",
    "method_not_allowed", "unavailable", "internal",       "forbidden",   "unauthorized",
    "unsupported_media_type", "too_many_models",
};

/* Per-model values copied under the cache lock, written afterwards. */
typedef struct model_snap {
    char name[HY_SERVER_NAME_MAX];
    int ready;
    double load_s, warm_s, first_s;
    size_t memory;
    uint64_t served, rewarms_idle, rewarms_periodic, reloads, evictions, failures;
    hy__histo infer;
    uint64_t cold_events;  /* summed over the serving version's contexts */
    uint64_t *winf;        /* (n_w) forward passes per worker context, hy__malloc'd */
    int n_w;
    size_t weights, per_worker;
    int registry;          /* served from a registry reference */
    char device[16], requested[16]; /* the serving version's: what runs it, what was asked */
    int fallback;          /* it runs on another device than requested */
    uint64_t reg_swaps, reg_refusals;
} model_snap;

static void snaps_free(model_snap *s, int n) {
    for (int i = 0; s && i < n; i++) hy__free(s[i].winf);
    hy__free(s);
}

static model_snap *snapshot_models(hy__cache *c, int *n_out) {
    pthread_mutex_lock(&c->mu);
    int n = c->n;
    model_snap *s = hy__calloc(n > 0 ? (size_t)n : 1, sizeof *s);
    int i = 0;
    for (hy__mentry *e = c->head; e && s && i < n; e = e->next, i++) {
        model_snap *o = &s[i];
        memcpy(o->name, e->name, sizeof o->name);
        o->ready = e->state == HY__M_READY;
        o->load_s = e->load_ms / 1e3;
        o->warm_s = e->warmup_ms / 1e3;
        o->first_s = e->first_request_ms / 1e3;
        o->memory = e->cur ? e->memory : 0;
        o->served = e->served;
        o->rewarms_idle = e->rewarms_idle;
        o->rewarms_periodic = e->rewarms_periodic;
        o->reloads = e->reloads;
        o->evictions = e->evictions;
        o->failures = e->failures;
        o->infer = e->infer;
        o->registry = e->source != NULL;
        o->reg_swaps = e->reg_swaps;
        o->reg_refusals = e->reg_refusals;
        const hy__mver *v = e->cur;
        if (v && (o->winf = hy__calloc((size_t)v->n_ctx, sizeof *o->winf))) {
            o->n_w = v->n_ctx;
            for (int k = 0; k < v->n_ctx; k++) {
                o->winf[k] = v->ctx[k].inferences;
                o->cold_events += (uint64_t)v->ctx[k].cold_events;
            }
            o->weights = v->weights_bytes;
            o->per_worker = v->ctx_bytes;
        }
        if (v) {
            snprintf(o->device, sizeof o->device, "%s", hy_model_device(v->model));
            snprintf(o->requested, sizeof o->requested, "%s", hy_model_device_requested(v->model));
            o->fallback = hy_model_device_fallback(v->model)[0] != '\0';
        }
    }
    pthread_mutex_unlock(&c->mu);
    *n_out = s ? i : 0;
    return s;
}

char *hy__metrics_render(struct hy_server *s, size_t *len) {
    hy__sbuf b = {0};
    int n = 0;
    model_snap *ms = snapshot_models(&s->cache, &n);
    if (!ms) return NULL;
    char labels[HY_SERVER_NAME_MAX + 32];

    header(&b, "hotyolo_http_request_duration_seconds", "histogram",
           "HTTP request latency by model (\"\" when not about a model) and status code.");
    pthread_mutex_lock(&s->metrics.mu);
    for (int i = 0; i < s->metrics.n; i++) {
        const hy__req_series *r = &s->metrics.series[i];
        snprintf(labels, sizeof labels, "model=\"%s\",code=\"%d\"", r->model, r->code);
        histo_write(&b, "hotyolo_http_request_duration_seconds", labels, &r->h);
    }
    uint64_t rejects[HY__REJ_COUNT];
    memcpy(rejects, s->metrics.rejects, sizeof rejects);
    pthread_mutex_unlock(&s->metrics.mu);

    header(&b, "hotyolo_inference_duration_seconds", "histogram",
           "Worker time per inference (decode, pre-process, forward pass, NMS).");
    for (int i = 0; i < n; i++) {
        snprintf(labels, sizeof labels, "model=\"%s\"", ms[i].name);
        histo_write(&b, "hotyolo_inference_duration_seconds", labels, &ms[i].infer);
    }

    /* Per-model gauges and counters: one family each, one sample per model. */
    struct {
        const char *name, *type, *help;
    } fam[] = {
        {"hotyolo_model_ready", "gauge", "1 when the model serves requests."},
        {"hotyolo_model_load_duration_seconds", "gauge", "Last load (read, validate, fold, pack)."},
        {"hotyolo_model_warmup_duration_seconds", "gauge", "Last plan + warm-up."},
        {"hotyolo_model_first_request_latency_seconds", "gauge",
         "Latency of the first request after the model became ready (-1: none yet)."},
        {"hotyolo_model_memory_bytes", "gauge", "Memory of the loaded model (estimate)."},
        {"hotyolo_model_requests_total", "counter", "Inferences served."},
        {"hotyolo_model_reloads_total", "counter", "Hot swaps and watchdog reloads."},
        {"hotyolo_model_evictions_total", "counter", "Evictions under the memory budget."},
        {"hotyolo_model_load_failures_total", "counter", "Failed loads."},
    };
    for (size_t f = 0; f < HY_ARRAY_LEN(fam); f++) {
        header(&b, fam[f].name, fam[f].type, fam[f].help);
        for (int i = 0; i < n; i++) {
            const model_snap *m = &ms[i];
            double v = 0;
            switch (f) {
            case 0: v = m->ready; break;
            case 1: v = m->load_s; break;
            case 2: v = m->warm_s; break;
            case 3: v = m->first_s; break;
            case 4: v = (double)m->memory; break;
            case 5: v = (double)m->served; break;
            case 6: v = (double)m->reloads; break;
            case 7: v = (double)m->evictions; break;
            default: v = (double)m->failures; break;
            }
            hy__sbuf_printf(&b, "%s{model=\"%s\"} %.9g\n", fam[f].name, m->name, v);
        }
    }
    header(&b, "hotyolo_model_rewarms_total", "counter",
           "Re-warm passes: after an idle period or periodic.");
    for (int i = 0; i < n; i++) {
        hy__sbuf_printf(&b, "hotyolo_model_rewarms_total{model=\"%s\",trigger=\"idle\"} %llu\n",
                        ms[i].name, (unsigned long long)ms[i].rewarms_idle);
        hy__sbuf_printf(&b, "hotyolo_model_rewarms_total{model=\"%s\",trigger=\"periodic\"} %llu\n",
                        ms[i].name, (unsigned long long)ms[i].rewarms_periodic);
    }
    /* Engine figures of the serving version: weights once, one context per worker. */
    header(&b, "hotyolo_model_cold_events_total", "counter",
           "Shapes planned on demand by requests (not prepared at load), all workers' contexts "
           "of the serving version.");
    for (int i = 0; i < n; i++)
        if (ms[i].n_w)
            hy__sbuf_printf(&b, "hotyolo_model_cold_events_total{model=\"%s\"} %llu\n",
                            ms[i].name, (unsigned long long)ms[i].cold_events);
    header(&b, "hotyolo_model_weights_bytes", "gauge",
           "Resident growth of loading the serving version's weights (held once).");
    for (int i = 0; i < n; i++)
        if (ms[i].n_w)
            hy__sbuf_printf(&b, "hotyolo_model_weights_bytes{model=\"%s\"} %zu\n", ms[i].name,
                            ms[i].weights);
    header(&b, "hotyolo_model_worker_bytes", "gauge",
           "Resident growth per worker context of the serving version (arena, scratch, "
           "threads), mean.");
    for (int i = 0; i < n; i++)
        if (ms[i].n_w)
            hy__sbuf_printf(&b, "hotyolo_model_worker_bytes{model=\"%s\"} %zu\n", ms[i].name,
                            ms[i].per_worker);
    header(&b, "hotyolo_worker_inferences_total", "counter",
           "Forward passes run for requests by each worker's context of the serving version.");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < ms[i].n_w; k++)
            hy__sbuf_printf(&b,
                            "hotyolo_worker_inferences_total{model=\"%s\",worker=\"%d\"} %llu\n",
                            ms[i].name, k, (unsigned long long)ms[i].winf[k]);
    header(&b, "hotyolo_registry_swaps_total", "counter",
           "Registry versions swapped in because the model's reference named another version.");
    for (int i = 0; i < n; i++)
        if (ms[i].registry)
            hy__sbuf_printf(&b, "hotyolo_registry_swaps_total{model=\"%s\"} %llu\n", ms[i].name,
                            (unsigned long long)ms[i].reg_swaps);
    header(&b, "hotyolo_registry_refused_total", "counter",
           "Registry versions refused (sha256 mismatch or load failure); the current one kept "
           "serving.");
    for (int i = 0; i < n; i++)
        if (ms[i].registry)
            hy__sbuf_printf(&b, "hotyolo_registry_refused_total{model=\"%s\"} %llu\n",
                            ms[i].name, (unsigned long long)ms[i].reg_refusals);
    header(&b, "hotyolo_model_device_info", "gauge",
           "Device the serving version runs on (device) and the one asked for (requested); "
           "always 1.");
    for (int i = 0; i < n; i++)
        if (ms[i].device[0])
            hy__sbuf_printf(&b,
                            "hotyolo_model_device_info{model=\"%s\",device=\"%s\",requested="
                            "\"%s\"} 1\n",
                            ms[i].name, ms[i].device, ms[i].requested);
    header(&b, "hotyolo_model_device_fallback", "gauge",
           "1 when the model runs on another device than requested (a GPU that cannot be used "
           "ran it on cpu); the reason is in the server log and in GET /v1/models "
           "(device_fallback).");
    for (int i = 0; i < n; i++)
        if (ms[i].device[0])
            hy__sbuf_printf(&b, "hotyolo_model_device_fallback{model=\"%s\"} %d\n", ms[i].name,
                            ms[i].fallback);
    snaps_free(ms, n);

    if (n_gpus > 0) {
        header(&b, "hotyolo_gpu_memory_total_bytes", "gauge",
               "Memory of each GPU this machine lists (probed once at server start).");
        for (int i = 0; i < n_gpus; i++) {
            hy__sbuf_printf(&b, "hotyolo_gpu_memory_total_bytes{device=\"");
            put_label_value(&b, gpus[i].name);
            hy__sbuf_printf(&b, "\",name=\"");
            put_label_value(&b, gpus[i].model);
            hy__sbuf_printf(&b, "\"} %llu\n", (unsigned long long)gpus[i].memory_bytes);
        }
    }

    int queued = 0, running = 0;
    hy__queue_counts(&s->queue, &queued, &running);
    header(&b, "hotyolo_requests_in_flight", "gauge", "HTTP requests being handled.");
    hy__sbuf_printf(&b, "hotyolo_requests_in_flight %ld\n", atomic_load(&s->in_flight));
    header(&b, "hotyolo_requests_queued", "gauge", "Inferences waiting for a worker.");
    hy__sbuf_printf(&b, "hotyolo_requests_queued %d\n", queued);
    header(&b, "hotyolo_inference_running", "gauge", "Inferences running on workers.");
    hy__sbuf_printf(&b, "hotyolo_inference_running %d\n", running);
    header(&b, "hotyolo_rejections_total", "counter", "Requests refused, by reason.");
    for (int i = 0; i < HY__REJ_COUNT; i++)
        hy__sbuf_printf(&b, "hotyolo_rejections_total{reason=\"%s\"} %llu\n", reject_names[i],
                        (unsigned long long)rejects[i]);
    char reason[8];
    header(&b, "hotyolo_ready", "gauge", "1 when every pinned model is ready.");
    hy__sbuf_printf(&b, "hotyolo_ready %d\n", hy__server_ready(s, reason, sizeof reason));
    header(&b, "hotyolo_process_resident_memory_bytes", "gauge",
           "Resident set size of the process (/proc/self/statm).");
    hy__sbuf_printf(&b, "hotyolo_process_resident_memory_bytes %zu\n", hy__rss_bytes());
    header(&b, "hotyolo_uptime_seconds", "gauge", "Seconds since the server started.");
    hy__sbuf_printf(&b, "hotyolo_uptime_seconds %.3f\n", (hy__now_ms() - s->t_start_ms) / 1e3);
    return hy__sbuf_take(&b, len);
}
