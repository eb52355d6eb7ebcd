/* The training graph end to end against Ultralytics 8.0.172 (reference/train/, MANIFEST.md):
 * weights/yolov8n.pt on the 4 letterboxed coco8 train images at 320, on each backend that
 * can train:
 *   - forward in eval and train mode: the raw Detect maps p3 / p4 / p5;
 *   - BatchNorm running statistics after one train-mode forward;
 *   - the v8 loss and d loss / d param of all 183 parameters (+ the total gradient norm);
 *   - freeze 10: model.0..9 get exactly zero, the rest exactly the unfrozen gradients, the
 *     frozen BatchNorms still update their statistics;
 *   - no allocation inside forward / loss / backward. */
#include <stdint.h>

#include "backend/backend_impl.h"
#include "hy_test.h"
#include "io/safetensors.h"
#include "train/loss.h"
#include "train/tgraph.h"
#include "train/tmodel.h"

#define REF "reference/train/"
#define IMGSZ 320
#define BATCH 4

/* ---- reference files ---------------------------------------------------------------- */
/* Field `key` of the object whose "mode" is `mode` in the loss json (NAN when absent); the
 * top-level keys of each object come before its nested "hyp". */
static double json_field(const char *json, const char *mode, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"mode\": \"%s\"", mode);
    const char *o = strstr(json, pat);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *k = o ? strstr(o, pat) : NULL;
    return k ? strtod(k + strlen(pat), NULL) : NAN;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    if (buf && fread(buf, 1, (1 << 16) - 1, f) == 0) buf[0] = 0;
    fclose(f);
    return buf;
}

/* ||a - b|| / ||b|| in double. */
static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Relative L2 of a view (any batch stride) against a contiguous reference. */
static double rel_l2_view(hy__tview v, const float *ref) {
    double num = 0, den = 0;
    size_t per = (size_t)v.c * (size_t)v.h * (size_t)v.w;
    for (int b = 0; b < v.n; b++)
        for (size_t i = 0; i < per; i++) {
            double a = v.d[(size_t)b * v.bs + i], r = ref[(size_t)b * per + i];
            num += (a - r) * (a - r);
            den += r * r;
        }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* ---- the fixture ------------------------------------------------------------------------ */
typedef struct fixture {
    const char *dev;
    hy__threadpool *tp;
    hy__tmodel *tm;
    float *data0;         /* the loaded state, to restore between modes */
    int64_t *nbt0;
    hy__tgraph *g;
    hy__v8loss *loss;
    float *input, *targets;
    int n_targets;
    char *json;
} fixture;

static void fixture_free(fixture *f) {
    hy__v8loss_free(f->loss);
    hy__tgraph_free(f->g);
    hy__tmodel_free(f->tm);
    hy__threadpool_free(f->tp);
    free(f->data0);
    free(f->nbt0);
    free(f->input);
    free(f->targets);
    free(f->json);
}

static void restore(fixture *f) {
    memcpy(f->tm->data, f->data0, f->tm->n_floats * sizeof(float));
    memcpy(f->tm->nbt, f->nbt0, (size_t)f->tm->spec->n_convs * sizeof(int64_t));
    hy__tmodel_zero_grad(f->tm);
    hy__tmodel_set_freeze(f->tm, 0);
}

/* 0 when ready; -1 with a message when something is missing (the caller fails). */
static int fixture_init(fixture *f, const char *dev) {
    memset(f, 0, sizeof *f);
    f->dev = dev;
    long long shape[8];
    int nd;
    size_t count;
    f->input = hy_test_npy_load(hy_test_asset(REF "coco8_train_320_input.npy"), shape, &nd, &count);
    f->targets = hy_test_npy_load(hy_test_asset(REF "coco8_train_320_targets.npy"), shape, &nd, &count);
    if (!f->input || !f->targets || nd != 2 || shape[1] != 6) return -1;
    f->n_targets = (int)shape[0];
    f->json = read_text(hy_test_asset(REF "yolov8n_coco8_320_loss.json"));
    if (!f->json) return -1;
    if (hy__threadpool_create(2, &f->tp) || hy__tmodel_load(hy_test_asset("weights/yolov8n.pt"), 0, NULL, 0, &f->tm))
        return -1;
    f->data0 = malloc(f->tm->n_floats * sizeof(float));
    f->nbt0 = malloc((size_t)f->tm->spec->n_convs * sizeof(int64_t));
    if (!f->data0 || !f->nbt0) return -1;
    memcpy(f->data0, f->tm->data, f->tm->n_floats * sizeof(float));
    memcpy(f->nbt0, f->tm->nbt, (size_t)f->tm->spec->n_convs * sizeof(int64_t));
    hy__tgraph_params p = hy__tgraph_default_params();
    p.device = dev;
    p.tp = f->tp;
    if (hy__tgraph_create(f->tm, &p, BATCH, IMGSZ, IMGSZ, &f->g)) return -1;
    hy__v8loss_params lp = hy__v8loss_default_params(f->tm->cfg.nc);
    if (hy__v8loss_create(&lp, BATCH, IMGSZ, IMGSZ, 64, &f->loss)) return -1;
    memcpy(hy__tgraph_input(f->g), f->input, (size_t)BATCH * 3 * IMGSZ * IMGSZ * sizeof(float));
    return 0;
}

/* forward (mode) + loss + backward; *allocs: allocations made meanwhile. */
static hy_status step(fixture *f, int train, hy__v8loss_out *lo, int64_t *allocs) {
    hy__tview p[4], gp[4];
    int nl = hy__tgraph_levels(f->g);
    for (int l = 0; l < nl; l++) {
        p[l] = hy__tgraph_output(f->g, l);
        gp[l] = hy__tgraph_output_grad(f->g, l);
    }
    int64_t a0 = hy__alloc_total();
    hy_status st = hy__tgraph_forward(f->g, train);
    if (!st) st = hy__v8loss_compute(f->loss, p, f->targets, f->n_targets, lo, gp, f->tp);
    if (!st) st = hy__tgraph_backward(f->g);
    if (allocs) *allocs = hy__alloc_total() - a0;
    return st;
}

/* The head maps vs the reference file of mode; prints them; returns the worst. */
static double check_heads(fixture *f, const char *mode) {
    char path[128];
    snprintf(path, sizeof path, REF "yolov8n_coco8_320_head_%s.safetensors", mode);
    hy__st_file *sf = NULL;
    if (hy__st_open(hy_test_asset(path), 0, &sf)) return INFINITY;
    double worst = 0;
    static const char *names[3] = {"p3", "p4", "p5"};
    for (int l = 0; l < hy__tgraph_levels(f->g) && l < 3; l++) {
        const hy__wtensor *t = hy__st_find(sf, names[l]);
        hy__tview v = hy__tgraph_output(f->g, l);
        if (!t || t->dtype != HY_DTYPE_F32 || t->numel != (size_t)v.n * v.c * v.h * v.w) {
            worst = INFINITY;
            break;
        }
        double e = rel_l2_view(v, t->data);
        printf("    %-4s %-5s %-3s forward rel L2 %.3g\n", f->dev, mode, names[l], e);
        if (e > worst) worst = e;
    }
    hy__st_close(sf);
    return worst;
}

typedef struct gerr {
    const char *name;
    double e;
} gerr;
static int by_err_desc(const void *a, const void *b) {
    double x = ((const gerr *)a)->e, y = ((const gerr *)b)->e;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Every parameter gradient vs the reference file: returns the worst relative L2 (INFINITY
 * when a tensor is missing); *norm: our total gradient L2 norm. */
static double check_grads(fixture *f, const char *mode, double *norm) {
    *norm = 0;
    char path[128];
    snprintf(path, sizeof path, REF "yolov8n_coco8_320_grads_%s.safetensors", mode);
    hy__st_file *sf = NULL;
    if (hy__st_open(hy_test_asset(path), 0, &sf)) return INFINITY;
    size_t n = hy__st_count(sf);
    gerr *errs = calloc(n, sizeof *errs);
    double worst = n == 183 ? 0 : INFINITY;
    for (size_t i = 0; errs && i < n; i++) {
        const hy__wtensor *t = hy__st_tensor(sf, i);
        int k = hy__tmodel_find(f->tm, t->name);
        errs[i].name = t->name;
        if (k < 0 || t->dtype != HY_DTYPE_F32 || f->tm->st[k].numel != t->numel) {
            printf("    %s: %s missing or misshaped\n", mode, t->name);
            errs[i].e = INFINITY;
        } else {
            errs[i].e = rel_l2(hy__tmodel_grad(f->tm, k), t->data, t->numel);
        }
        if (!(errs[i].e <= worst)) worst = errs[i].e;
    }
    double s = 0;
    for (size_t i = 0; i < f->tm->n_floats; i++) s += (double)f->tm->grad[i] * f->tm->grad[i];
    *norm = sqrt(s);
    if (errs) {
        qsort(errs, n, sizeof *errs, by_err_desc);
        printf("    %-4s %-5s gradients: %zu tensors, worst 5:", f->dev, mode, n);
        for (size_t i = 0; i < 5 && i < n; i++) printf(" %s %.3g%s", errs[i].name, errs[i].e, i < 4 ? "," : "\n");
    } else {
        worst = INFINITY;
    }
    free(errs);
    hy__st_close(sf);
    return worst;
}

/* BN running statistics vs the reference after one train-mode forward; worst relative L2. */
static double check_bn_stats(fixture *f) {
    hy__st_file *sf = NULL;
    if (hy__st_open(hy_test_asset(REF "yolov8n_coco8_320_bn_after_train_forward.safetensors"), 0, &sf))
        return INFINITY;
    double worst = 0;
    const char *wname = "";
    size_t n = hy__st_count(sf);
    for (size_t i = 0; i < n; i++) {
        const hy__wtensor *t = hy__st_tensor(sf, i);
        int k = hy__tmodel_find(f->tm, t->name);
        double e = k < 0 || f->tm->st[k].numel != t->numel || t->dtype != HY_DTYPE_F32
                       ? INFINITY
                       : rel_l2(hy__tmodel_tensor(f->tm, k), t->data, t->numel);
        if (!(e <= worst)) {
            worst = e;
            wname = t->name;
        }
    }
    printf("    %-4s train BN running stats: %zu tensors, worst %s %.3g\n", f->dev, n, wname, worst);
    hy__st_close(sf);
    return n >= 2 * 57 ? worst : INFINITY;
}

/* ---- the cases ---------------------------------------------------------------------------- */
static void run_engine(const char *dev) {
    const struct hy__backend_i *bi = hy__backend_find(dev);
    if (!bi || !bi->train) HY_SKIP("backend %s has no training kernels yet", dev);
    hy_test_require_assets();
    const int sanitized = hy_test_sanitized();
    /* the plain-C reference is too slow for three steps under the sanitizers */
    const int eval_only = sanitized && strcmp(dev, "ref") == 0;
    fixture f;
    double t0 = hy__now_ms();
    int ok = fixture_init(&f, dev) == 0;
    if (!ok) {
        fixture_free(&f);
        HY_FAIL_("%s: setup: %s", dev, hy_last_error());
    }
    printf("    %s: %zu MiB planned for batch %d at %d\n", dev, hy__tgraph_bytes(f.g) >> 20, BATCH, IMGSZ);
    float *g_train = NULL;
    hy__v8loss_out lo;
    int64_t allocs = -1;
    double norm = 0, e;
    const char *modes[2] = {"eval", "train"};
    for (int m = 0; m < (eval_only ? 1 : 2) && ok; m++) {
        restore(&f);
        double ts = hy__now_ms();
        hy_status st = step(&f, m, &lo, &allocs);
        if (st) {
            printf("    %s %s: step: %s\n", dev, modes[m], hy_last_error());
            ok = 0;
            break;
        }
        printf("    %-4s %-5s step (fwd + loss + bwd) %.2f s, %lld allocations inside\n", dev, modes[m],
               (hy__now_ms() - ts) / 1e3, (long long)allocs);
        if (allocs != 0) ok = 0;
        e = check_heads(&f, modes[m]);
        if (!(e <= 1e-4)) {
            printf("    %s %s: forward error %.3g > 1e-4\n", dev, modes[m], e);
            ok = 0;
        }
        if (m == 1) {
            e = check_bn_stats(&f);
            if (!(e <= 1e-5)) {
                printf("    %s: BN stats error %.3g > 1e-5\n", dev, e);
                ok = 0;
            }
            int nbt_ok = 1;
            for (int i = 0; i < f.tm->spec->n_convs; i++)
                if (f.tm->spec->convs[i].has_bn && f.tm->nbt[i] != f.nbt0[i] + 1) nbt_ok = 0;
            if (!nbt_ok) {
                printf("    %s: num_batches_tracked not incremented once\n", dev);
                ok = 0;
            }
        }
        double ref_loss = json_field(f.json, modes[m], "loss_sum_times_batch");
        double ref_norm = json_field(f.json, modes[m], "grad_norm_total");
        double le = fabs(lo.total - ref_loss) / ref_loss;
        printf("    %-4s %-5s loss %.7g (ref %.7g, rel %.3g): box %.6g cls %.6g dfl %.6g\n", dev, modes[m], lo.total,
               ref_loss, le, lo.box, lo.cls, lo.dfl);
        if (!(le <= (m ? 5e-4 : 1e-4))) ok = 0;
        double tol = m ? 5e-3 : 1e-3;
        e = check_grads(&f, modes[m], &norm);
        double ne = fabs(norm - ref_norm) / ref_norm;
        printf("    %-4s %-5s gradient norm %.6g (ref %.6g, rel %.3g); worst tensor %.3g (tol %g)\n", dev, modes[m],
               norm, ref_norm, ne, e, tol);
        if (!(e <= tol) || !(ne <= tol)) ok = 0;
        if (m == 1) {
            g_train = malloc(f.tm->n_floats * sizeof(float));
            if (g_train) memcpy(g_train, f.tm->grad, f.tm->n_floats * sizeof(float));
        }
    }
    /* Freeze 10 in train mode: same gradients for model.10+, zero below, BN stats still move. */
    if (ok && g_train) {
        restore(&f);
        double fl_all = hy__tgraph_flops(f.g, 1);
        hy__tmodel_set_freeze(f.tm, 10);
        double ts = hy__now_ms();
        hy_status st = step(&f, 1, &lo, &allocs);
        double tf = (hy__now_ms() - ts) / 1e3;
        /* every backend's kernels are bitwise reproducible (train_op.h), so freezing must give
         * exactly the unfrozen numbers for layers >= 10 */
        const int exact = 1;
        int n_zero = 0, n_same = 0, n_close = 0, bad = st != HY_OK;
        double worst_diff = 0;
        for (int i = 0; i < f.tm->n_st && !bad; i++) {
            const hy__tstate *s = &f.tm->st[i];
            if (s->group == HY_PG_BUFFER) continue;
            const float *gr = hy__tmodel_grad(f.tm, i), *gu = g_train + s->offset;
            if (s->layer < 10) {
                for (size_t j = 0; j < s->numel && !bad; j++) bad = gr[j] != 0.0f;
                if (bad) printf("    %s freeze 10: %s got a gradient\n", dev, s->spec->name);
                n_zero++;
            } else if (memcmp(gr, gu, s->numel * sizeof(float)) == 0) {
                n_same++;
            } else {
                double d = rel_l2(gr, gu, s->numel);
                if (d > worst_diff) worst_diff = d;
                bad = exact || !(d <= 1e-5);
                if (bad)
                    printf("    %s freeze 10: %s differs from the unfrozen gradient (%.3g)\n", dev, s->spec->name,
                           d);
                n_close++;
            }
        }
        double bn_e = check_bn_stats(&f);
        printf("    %-4s freeze 10: step %.2f s (%.1f GFLOP bwd vs %.1f unfrozen), %d tensors zero, %d equal to the "
               "unfrozen run, %d within %.3g of it\n",
               dev, tf, hy__tgraph_flops(f.g, 1) / 1e9, fl_all / 1e9, n_zero, n_same, n_close, worst_diff);
        if (bad || allocs != 0 || !(bn_e <= 1e-5)) ok = 0;
    } else if (eval_only) {
        printf("    %s: sanitized build: eval mode only (train mode and freezing skipped: too slow)\n", dev);
    }
    printf("    %s: %.1f s in all\n", dev, (hy__now_ms() - t0) / 1e3);
    free(g_train);
    fixture_free(&f);
    if (!ok) HY_FAIL_("%s: the training engine differs from Ultralytics (see above)", dev);
}

HY_TEST(engine_matches_ultralytics_ref) { run_engine("ref"); }
HY_TEST(engine_matches_ultralytics_cpu) { run_engine("cpu"); }

/* Timing and memory of one train-mode step (forward, loss, backward) at 320 for batch 4 and
 * 16 on each backend, 2 threads, each in a forked child (peak RSS growth measured): only with
 * HY_TRAIN_BENCH=1 (minutes on the reference backend). */
typedef struct bench_arg {
    const char *dev;
    int n;
    hy__threadpool *tp; /* made in the child */
    hy__tmodel *tm;
    const float *input, *targets;
    int n_targets;
    size_t bytes;
    double fwd_s, bwd_s;
} bench_arg;

static int bench_step(void *p) {
    bench_arg *a = p;
    hy__tgraph_params gp = hy__tgraph_default_params();
    gp.device = a->dev;
    hy__tgraph *g = NULL;
    hy__v8loss *l = NULL;
    hy__v8loss_params lp = hy__v8loss_default_params(a->tm->cfg.nc);
    float *tg = malloc((size_t)a->n_targets * (size_t)(a->n / BATCH) * 6 * sizeof(float));
    int rc = 1;
    /* threads made here: a forked child has none of its parent's workers */
    if (hy__threadpool_create(2, &a->tp)) goto done;
    gp.tp = a->tp;
    if (!tg || hy__tgraph_create(a->tm, &gp, a->n, IMGSZ, IMGSZ, &g) ||
        hy__v8loss_create(&lp, a->n, IMGSZ, IMGSZ, 64, &l))
        goto done;
    size_t img = (size_t)3 * IMGSZ * IMGSZ;
    for (int b = 0; b < a->n; b += BATCH) {
        memcpy(hy__tgraph_input(g) + (size_t)b * img, a->input, BATCH * img * sizeof(float));
        for (int t = 0; t < a->n_targets; t++) {
            float *r = tg + ((size_t)(b / BATCH) * a->n_targets + t) * 6;
            memcpy(r, a->targets + (size_t)t * 6, 6 * sizeof(float));
            r[0] += (float)b;
        }
    }
    hy__tview p4[4], g4[4];
    for (int i = 0; i < hy__tgraph_levels(g); i++) {
        p4[i] = hy__tgraph_output(g, i);
        g4[i] = hy__tgraph_output_grad(g, i);
    }
    hy__v8loss_out lo;
    double t0 = hy__now_ms();
    if (hy__tgraph_forward(g, 1)) goto done;
    double t1 = hy__now_ms();
    if (hy__v8loss_compute(l, p4, tg, a->n_targets * (a->n / BATCH), &lo, g4, a->tp) || hy__tgraph_backward(g))
        goto done;
    a->fwd_s = (t1 - t0) / 1e3;
    a->bwd_s = (hy__now_ms() - t1) / 1e3;
    a->bytes = hy__tgraph_bytes(g);
    printf("    %-4s batch %2d: %zu MiB planned, forward %.2f s (%.1f GFLOP/s), loss + backward %.2f s "
           "(%.1f GFLOP/s)\n",
           a->dev, a->n, a->bytes >> 20, a->fwd_s, hy__tgraph_flops(g, 0) / 1e9 / a->fwd_s, a->bwd_s,
           hy__tgraph_flops(g, 1) / 1e9 / a->bwd_s);
    fflush(stdout);
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench %s: %s\n", a->dev, hy_last_error());
    hy__v8loss_free(l);
    hy__tgraph_free(g);
    hy__threadpool_free(a->tp);
    free(tg);
    return rc;
}

HY_TEST(bench_train_step_320) {
    if (!getenv("HY_TRAIN_BENCH")) HY_SKIP("set HY_TRAIN_BENCH=1 to time a training step");
    hy_test_require_assets();
    fixture f;
    if (fixture_init(&f, "ref")) {
        fixture_free(&f);
        HY_FAIL_("setup: %s", hy_last_error());
    }
    int fails = 0;
    static const char *devs[2] = {"cpu", "ref"};
    for (int d = 0; d < 2; d++) {
        const struct hy__backend_i *bi = hy__backend_find(devs[d]);
        if (!bi || !bi->train) {
            printf("    %s: no training kernels yet\n", devs[d]);
            continue;
        }
        for (int n = BATCH; n <= 16; n *= 4) {
            bench_arg a = {devs[d], n, NULL, f.tm, f.input, f.targets, f.n_targets, 0, 0, 0};
            hy_test_bound b;
            fails += hy_test_bounded(bench_step, &a, 4096, 600, &b) != 0;
            printf("    %-4s batch %2d: step %.2f s, peak RSS +%.0f MB\n", devs[d], n, b.seconds, b.extra_rss_mb);
        }
    }
    fixture_free(&f);
    ASSERT_EQ(fails, 0);
}

/* An unknown device and a size the strides do not divide are refused with an error. */
HY_TEST(create_refuses_unknown_device_and_bad_size) {
    hy_test_require_assets();
    hy__tmodel *tm = NULL;
    ASSERT_OK(hy__tmodel_load(hy_test_asset("weights/yolov8n.pt"), 0, NULL, 0, &tm));
    hy__tgraph_params p = hy__tgraph_default_params();
    hy__tgraph *g = NULL;
    p.device = "nope";
    hy_status st = hy__tgraph_create(tm, &p, 1, 64, 64, &g);
    p.device = "ref";
    hy_status st2 = hy__tgraph_create(tm, &p, 1, 65, 64, &g);
    hy__tmodel_free(tm);
    ASSERT_ERR(st, HY_ERR_UNSUPPORTED);
    ASSERT_ERR(st2, HY_ERR_INVALID_ARG);
    ASSERT_TRUE(g == NULL);
}

HY_TEST_MAIN()
