/* YOLOv8 detection loss (src/train/loss.c) against Ultralytics 8.0.172 (reference/train/):
 * the loss components in BatchNorm eval and train modes, the gradient summed over cells vs the
 * Detect output convs' bias gradients, central differences on a small random case, edges. */
#include <json-c/json.h>
#include <stdint.h>

#include "core/core.h"
#include "hy_test.h"
#include "io/safetensors.h"
#include "train/loss.h"

/* ---- reference ------------------------------------------------------------------------ */

typedef struct refcase {
    hy__st_file *head, *grads;
    float *targets;
    int n_targets;
    double box, cls, dfl, total;
} refcase;

static void refcase_free(refcase *r) {
    hy__st_close(r->head);
    hy__st_close(r->grads);
    free(r->targets);
}

static int json_mode(const char *path, const char *mode, refcase *r) {
    json_object *root = json_object_from_file(path);
    if (!root) return -1;
    int found = -1;
    for (size_t i = 0; i < json_object_array_length(root); i++) {
        json_object *o = json_object_array_get_idx(root, i), *v;
        if (!json_object_object_get_ex(o, "mode", &v) || strcmp(json_object_get_string(v), mode)) continue;
        json_object_object_get_ex(o, "box", &v);
        r->box = json_object_get_double(v);
        json_object_object_get_ex(o, "cls", &v);
        r->cls = json_object_get_double(v);
        json_object_object_get_ex(o, "dfl", &v);
        r->dfl = json_object_get_double(v);
        json_object_object_get_ex(o, "loss_sum_times_batch", &v);
        r->total = json_object_get_double(v);
        found = 0;
    }
    json_object_put(root);
    return found;
}

/* Loads mode's head maps, grads and loss values; 0 on success. */
static int refcase_load(const char *mode, refcase *r) {
    char rel[256];
    memset(r, 0, sizeof(*r));
    const char *tpath = hy_test_asset("reference/train/coco8_train_320_targets.npy");
    const char *jpath = hy_test_asset("reference/train/yolov8n_coco8_320_loss.json");
    snprintf(rel, sizeof(rel), "reference/train/yolov8n_coco8_320_head_%s.safetensors", mode);
    const char *hpath = hy_test_asset(rel);
    snprintf(rel, sizeof(rel), "reference/train/yolov8n_coco8_320_grads_%s.safetensors", mode);
    const char *gpath = hy_test_asset(rel);
    long long shape[8];
    int ndim;
    size_t count;
    r->targets = hy_test_npy_load(tpath, shape, &ndim, &count);
    if (!r->targets || ndim != 2 || shape[1] != 6) return -1;
    r->n_targets = (int)shape[0];
    if (json_mode(jpath, mode, r)) return -1;
    if (hy__st_open(hpath, 0, &r->head) || hy__st_open(gpath, 0, &r->grads)) return -1;
    return 0;
}

static int ref_views(const refcase *r, hy__tview p[3]) {
    static const char *names[3] = {"p3", "p4", "p5"};
    for (int i = 0; i < 3; i++) {
        const hy__wtensor *t = hy__st_find(r->head, names[i]);
        if (!t || t->dtype != HY_DTYPE_F32 || t->ndim != 4) return -1;
        p[i] = hy__tview_make((float *)t->data, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2],
                              (int)t->shape[3]);
    }
    return 0;
}

static double rel(double a, double b) {
    return fabs(a - b) / fabs(b);
}

static void check_reference(const char *mode, double gtol) {
    refcase r;
    hy__v8loss *l = NULL;
    float *g = NULL;
    if (refcase_load(mode, &r)) {
        refcase_free(&r);
        HY_FAIL_("cannot load the %s reference", mode);
    }
    hy__tview p[3], gv[3];
    if (ref_views(&r, p)) {
        refcase_free(&r);
        HY_FAIL_("head maps p3/p4/p5 missing");
    }
    hy__v8loss_params prm = hy__v8loss_default_params(80);
    int n = p[0].n;
    size_t tot = 0, off[3];
    for (int i = 0; i < 3; i++) {
        off[i] = tot;
        tot += (size_t)n * p[i].c * p[i].h * p[i].w;
    }
    g = malloc(tot * sizeof(float));
    for (int i = 0; i < 3; i++) gv[i] = hy__tview_make(g + off[i], n, p[i].c, p[i].h, p[i].w);
    hy__v8loss_out o;
    hy_status st = hy__v8loss_create(&prm, n, 320, 320, 16, &l);
    if (!st) st = hy__v8loss_compute(l, p, r.targets, r.n_targets, &o, gv, NULL);
    if (st) {
        free(g);
        hy__v8loss_free(l);
        refcase_free(&r);
        HY_FAIL_("v8loss: %s", hy_last_error());
    }
    double eb = rel(o.box, r.box), ec = rel(o.cls, r.cls), ed = rel(o.dfl, r.dfl), et = rel(o.total, r.total);
    printf("  %s: box %.7f (ref %.7f, rel %.2e) cls %.7f (ref %.7f, rel %.2e) dfl %.7f (ref %.7f, rel %.2e) "
           "total %.6f (ref %.6f, rel %.2e), %d fg\n",
           mode, o.box, r.box, eb, o.cls, r.cls, ec, o.dfl, r.dfl, ed, o.total, r.total, et, o.n_fg);

    /* bias gradients: sum over (n, h, w) of d total / d p per channel */
    double worst = 0.0;
    int bad = 0;
    for (int i = 0; i < 3 && !bad; i++) {
        for (int part = 0; part < 2; part++) {
            char name[64];
            snprintf(name, sizeof(name), "model.22.%s.%d.2.bias", part ? "cv3" : "cv2", i);
            const hy__wtensor *t = hy__st_find(r.grads, name);
            int c0 = part ? 64 : 0, nch = part ? 80 : 64;
            if (!t || (int)t->numel != nch) {
                bad = 1;
                break;
            }
            const float *ref = t->data;
            double num = 0.0, den = 0.0;
            size_t hw = (size_t)p[i].h * p[i].w;
            for (int c = 0; c < nch; c++) {
                double s = 0.0;
                for (int b = 0; b < n; b++) {
                    const float *gp = gv[i].d + (size_t)b * gv[i].bs + (size_t)(c0 + c) * hw;
                    for (size_t k = 0; k < hw; k++) s += gp[k];
                }
                num += (s - ref[c]) * (s - ref[c]);
                den += (double)ref[c] * ref[c];
            }
            double e = sqrt(num) / sqrt(den);
            printf("  %s: %s ||g - g_ref|| / ||g_ref|| = %.2e\n", mode, name, e);
            if (e > worst) worst = e;
        }
    }
    free(g);
    hy__v8loss_free(l);
    refcase_free(&r);
    if (bad) HY_FAIL_("bias gradient missing in the reference");
    ASSERT_TRUE(eb <= 1e-4 && ec <= 1e-4 && ed <= 1e-4 && et <= 1e-4);
    ASSERT_TRUE(worst <= gtol);
}

HY_TEST(reference_eval) {
    check_reference("eval", 1e-3);
}

HY_TEST(reference_train) {
    check_reference("train", 5e-3);
}

/* ---- small random case ---------------------------------------------------------------- */

enum { SN = 2, SNC = 3, SR = 16, SNO = 4 * SR + SNC, SIMG = 64 };

typedef struct small {
    float *buf;
    float *gbuf;
    hy__tview p[3], g[3];
    size_t total;
    hy__v8loss *l;
} small;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static int small_init(small *s, int n, int max_targets) {
    memset(s, 0, sizeof(*s));
    size_t off[3];
    for (int i = 0; i < 3; i++) {
        int hw = SIMG >> (3 + i);
        off[i] = s->total;
        s->total += (size_t)n * SNO * hw * hw;
    }
    s->buf = malloc(s->total * sizeof(float));
    s->gbuf = malloc(s->total * sizeof(float));
    for (int i = 0; i < 3; i++) {
        int hw = SIMG >> (3 + i);
        s->p[i] = hy__tview_make(s->buf + off[i], n, SNO, hw, hw);
        s->g[i] = hy__tview_make(s->gbuf + off[i], n, SNO, hw, hw);
        for (int b = 0; b < n; b++)
            for (int c = 0; c < SNO; c++)
                for (int k = 0; k < hw * hw; k++) {
                    float *v = s->p[i].d + (size_t)b * s->p[i].bs + (size_t)c * hw * hw + k;
                    /* DFL logits ~ U(-2, 2) (mean box of several cells), class logits ~ U(-4, 1) */
                    *v = c < 4 * SR ? (float)(4.0 * urand() - 2.0) : (float)(5.0 * urand() - 4.0);
                }
    }
    hy__v8loss_params prm = hy__v8loss_default_params(SNC);
    return hy__v8loss_create(&prm, n, SIMG, SIMG, max_targets, &s->l) == HY_OK ? 0 : -1;
}

static void small_free(small *s) {
    free(s->buf);
    free(s->gbuf);
    hy__v8loss_free(s->l);
}

/* (image, class, cx, cy, w, h) normalised */
static const float small_targets[] = {
    0, 0, 0.40f, 0.45f, 0.50f, 0.60f, /* large */
    0, 2, 0.75f, 0.30f, 0.20f, 0.25f, /* small, overlapping the first */
    1, 1, 0.50f, 0.50f, 0.90f, 0.80f, /* covers most of the image */
    1, 1, 0.20f, 0.80f, 0.25f, 0.20f,
};

static int same_assignment(const hy__v8loss *l, const int *ref, int n, int A) {
    for (int b = 0; b < n; b++) {
        int na;
        const int *a = hy__v8loss_assigned(l, b, &na);
        if (!a || na != A || memcmp(a, ref + (size_t)b * A, (size_t)A * sizeof(int))) return 0;
    }
    return 1;
}

HY_TEST(gradient_central_differences) {
    small s;
    ASSERT_TRUE(small_init(&s, SN, 4) == 0);
    hy__v8loss_out o0, op, om;
    int nt = (int)(sizeof(small_targets) / sizeof(small_targets[0]) / 6);
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, nt, &o0, s.g, NULL));
    int A;
    const int *a0 = hy__v8loss_assigned(s.l, 0, &A);
    ASSERT_TRUE(a0 != NULL && A == 64 + 16 + 4);
    int *base = malloc((size_t)SN * A * sizeof(int));
    for (int b = 0; b < SN; b++) memcpy(base + (size_t)b * A, hy__v8loss_assigned(s.l, b, NULL), (size_t)A * sizeof(int));
    printf("  small case: box %.5f cls %.5f dfl %.5f total %.5f, %d fg\n", o0.box, o0.cls, o0.dfl, o0.total, o0.n_fg);
    ASSERT_TRUE(o0.n_fg >= 8 && o0.box > 0 && o0.dfl > 0);

    /* sample: every DFL and class logit of the fg anchors, plus random others */
    enum { MAXS = 4000 };
    size_t *idx = malloc(MAXS * sizeof(size_t));
    int ns = 0;
    for (int b = 0; b < SN; b++)
        for (int a = 0; a < A; a++) {
            if (base[(size_t)b * A + a] < 0) continue;
            int lv = a < 64 ? 0 : a < 80 ? 1 : 2, k = a - (lv == 0 ? 0 : lv == 1 ? 64 : 80);
            size_t hw = (size_t)s.p[lv].h * s.p[lv].w;
            for (int c = 0; c < SNO && ns < MAXS; c += (c < 4 * SR ? 3 : 1))
                idx[ns++] = (size_t)(s.p[lv].d - s.buf) + (size_t)b * s.p[lv].bs + c * hw + k;
        }
    int n_fg_samples = ns;
    for (int i = 0; i < 200 && ns < MAXS; i++) idx[ns++] = (size_t)(urand() * (double)s.total) % s.total;

    float *g = malloc(s.total * sizeof(float));
    memcpy(g, s.gbuf, s.total * sizeof(float));
    double worst = 0.0, worst_full = 0.0;
    int skipped = 0, checked = 0, checked_full = 0, fails = 0;
    for (int i = 0; i < ns; i++) {
        float *x = s.buf + idx[i], x0 = *x;
        float xp = x0 + 1e-3f, xm = x0 - 1e-3f;
        /* the assignment must not move: full computations at x +- h */
        *x = xp;
        ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, nt, &op, NULL, NULL));
        int same = same_assignment(s.l, base, SN, A);
        *x = xm;
        ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, nt, &om, NULL, NULL));
        same = same && same_assignment(s.l, base, SN, A);
        if (!same) {
            skipped++;
            *x = x0;
            continue;
        }
        double step = (double)xp - (double)xm;
        /* full loss (target scores move with the predictions): equal where they cannot, the
         * logits of classes no target has (class 0 of image 1, etc.) */
        double fd_full = (op.total - om.total) / step;
        /* the gradient proper: assignment and target scores fixed, as autograd */
        *x = x0;
        ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, nt, &o0, NULL, NULL));
        *x = xp;
        ASSERT_OK(hy__v8loss_compute_fixed(s.l, s.p, &op, NULL, NULL));
        *x = xm;
        ASSERT_OK(hy__v8loss_compute_fixed(s.l, s.p, &om, NULL, NULL));
        *x = x0;
        double fd = (op.total - om.total) / step, ga = g[idx[i]];
        double e = fabs(fd - ga) / fmax(fmax(fabs(fd), fabs(ga)), 1e-3);
        if (e > worst) worst = e;
        if (e > 1e-4) {
            if (fails++ < 5) printf("  element %zu: analytic %.8g, central %.8g (rel %.2e)\n", idx[i], ga, fd, e);
        }
        checked++;
        if (fabs(fd_full - fd) < 1e-12 * fmax(1.0, fabs(fd))) {
            double ef = fabs(fd_full - ga) / fmax(fmax(fabs(fd_full), fabs(ga)), 1e-3);
            if (ef > worst_full) worst_full = ef;
            checked_full++;
        }
    }
    printf("  %d elements (%d of fg anchors), %d skipped (assignment moved), max rel error %.2e (fixed "
           "assignment), %.2e over %d elements the assignment cannot see\n",
           checked, n_fg_samples, skipped, worst, worst_full, checked_full);
    free(g);
    free(idx);
    free(base);
    small_free(&s);
    ASSERT_TRUE(checked >= 200 && skipped <= ns / 10);
    ASSERT_TRUE(worst <= 1e-4);
    ASSERT_TRUE(worst_full <= 1e-4);
}

/* torch.topk's choice among equal metrics. One gt over the first 12 P3 cells of row 0 of a
 * 256x256 input (1344 anchors: PyTorch's partial_sort path); only anchors 10 and 11 have a
 * positive metric (class logit -200 elsewhere: score 0), so topk(10) picks 8 of the 10 zeros
 * of anchors 0..9. The expected set was produced by libstdc++'s std::partial_sort with
 * PyTorch's comparator on that row ({10, 11, 8, 4, 9, 7, 3, 1, 5, 0}): anchors 2 and 6 stay
 * background, where "lowest index first" would drop 8 and 9 instead. */
HY_TEST(topk_ties_as_libstdcxx) {
    enum { S = 256, NO = 4 * SR + 1 };
    hy__v8loss_params prm = hy__v8loss_default_params(1);
    hy__v8loss *l = NULL;
    ASSERT_OK(hy__v8loss_create(&prm, 1, S, S, 1, &l));
    size_t off[3], tot = 0;
    hy__tview p[3];
    for (int i = 0; i < 3; i++) {
        off[i] = tot;
        tot += (size_t)NO * (S >> (3 + i)) * (S >> (3 + i));
    }
    float *buf = calloc(tot, sizeof(float));
    for (int i = 0; i < 3; i++) {
        int hw = S >> (3 + i);
        p[i] = hy__tview_make(buf + off[i], 1, NO, hw, hw);
        for (int k = 0; k < hw * hw; k++) p[i].d[(size_t)4 * SR * hw * hw + k] = -200.0f;
    }
    /* anchors 10 and 11 predict the gt box itself: DFL mass split over two bins per side */
    static const int bins[2][4] = {{10, 0, 1, 0}, {11, 0, 0, 0}};
    size_t hw3 = 32 * 32;
    for (int a = 10; a <= 11; a++) {
        p[0].d[(size_t)4 * SR * hw3 + a] = 0.0f;
        for (int side = 0; side < 4; side++)
            for (int j = 0; j < 2; j++) p[0].d[(size_t)(side * SR + bins[a - 10][side] + j) * hw3 + a] = 30.0f;
    }
    const float t[6] = {0, 0, 0.1875f, 0.015625f, 0.375f, 0.03125f}; /* (0, 0, 96, 8) pixels */
    hy__v8loss_out o;
    hy_status st = hy__v8loss_compute(l, p, t, 1, &o, NULL, NULL);
    int na = 0;
    const int *as = st ? NULL : hy__v8loss_assigned(l, 0, &na);
    char got[64] = "";
    int nfg = 0, mism = 0;
    for (int a = 0; as && a < na; a++) {
        int want = a < 12 && a != 2 && a != 6;
        if (as[a] >= 0) {
            nfg++;
            if (a < 12) snprintf(got + strlen(got), sizeof(got) - strlen(got), "%d ", a);
        }
        mism += (as[a] >= 0) != want;
    }
    printf("  foreground anchors: %s(want 0 1 3 4 5 7 8 9 10 11)\n", got);
    free(buf);
    hy__v8loss_free(l);
    ASSERT_OK(st);
    ASSERT_TRUE(na == 1344 && nfg == 10 && o.n_fg == 10 && mism == 0);
}

/* ---- edges ---------------------------------------------------------------------------- */

static double bce0(double x) {
    return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
}

HY_TEST(all_background_batch) {
    small s;
    ASSERT_TRUE(small_init(&s, SN, 4) == 0);
    hy__v8loss_out o;
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, NULL, 0, &o, s.g, NULL));
    /* target score sum 0 clamps to 1: cls = 0.5 * sum BCE(x, 0), grad = 0.5 n sigmoid(x) */
    double cls = 0.0, gerr = 0.0;
    int dfl_nonzero = 0;
    for (int i = 0; i < 3; i++) {
        size_t hw = (size_t)s.p[i].h * s.p[i].w;
        for (int b = 0; b < SN; b++)
            for (int c = 0; c < SNO; c++)
                for (size_t k = 0; k < hw; k++) {
                    size_t j = (size_t)b * s.p[i].bs + c * hw + k;
                    double x = s.p[i].d[j], gg = s.g[i].d[j];
                    if (c < 4 * SR) {
                        dfl_nonzero += gg != 0.0;
                        continue;
                    }
                    cls += bce0(x);
                    double e = fabs(gg - 0.5 * SN / (1.0 + exp(-x)));
                    if (e > gerr) gerr = e;
                }
    }
    printf("  all background: cls %.6f (by hand %.6f), max grad error %.2e\n", o.cls, 0.5 * cls, gerr);
    small_free(&s);
    ASSERT_TRUE(o.n_fg == 0 && o.box == 0.0 && o.dfl == 0.0 && dfl_nonzero == 0);
    ASSERT_TRUE(fabs(o.cls - 0.5 * cls) <= 1e-6 * cls); /* PyTorch's float BCE rounding */
    ASSERT_TRUE(fabs(o.total - SN * o.cls) <= 1e-9 * o.total);
    ASSERT_TRUE(gerr <= 1e-6);
}

HY_TEST(image_without_targets) {
    small s;
    ASSERT_TRUE(small_init(&s, SN, 4) == 0);
    /* image 0's targets only: image 1 contributes BCE against 0 and nothing else */
    hy__v8loss_out o2, o1;
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, 2, &o2, s.g, NULL));
    /* image 1: no DFL gradient; class gradient 0.5 n sigmoid(x) / tss (tss read off it) */
    double dfl_g1 = 0.0, cls1 = 0.0, inv_lo = INFINITY, inv_hi = 0.0;
    for (int i = 0; i < 3; i++) {
        size_t hw = (size_t)s.p[i].h * s.p[i].w;
        for (int c = 0; c < SNO; c++)
            for (size_t k = 0; k < hw; k++) {
                size_t j = s.p[i].bs + c * hw + k;
                if (c < 4 * SR) {
                    dfl_g1 += fabs(s.g[i].d[j]);
                    continue;
                }
                double x = s.p[i].d[j], inv = s.g[i].d[j] * (1.0 + exp(-x)) / (0.5 * SN);
                cls1 += bce0(x);
                inv_lo = fmin(inv_lo, inv);
                inv_hi = fmax(inv_hi, inv);
            }
    }
    /* the same image 0 alone (a batch of 1: same assignment and target score sum) */
    hy__tview p1[3];
    for (int i = 0; i < 3; i++) {
        p1[i] = s.p[i];
        p1[i].n = 1;
    }
    ASSERT_OK(hy__v8loss_compute(s.l, p1, small_targets, 2, &o1, NULL, NULL));
    printf("  two images: box %.6f dfl %.6f; image 0 alone: box %.6f dfl %.6f; %d fg\n", o2.box, o2.dfl, o1.box,
           o1.dfl, o2.n_fg);
    small_free(&s);
    ASSERT_TRUE(o2.n_fg > 0 && o2.n_fg == o1.n_fg);
    ASSERT_TRUE(fabs(o2.box - o1.box) <= 1e-12 && fabs(o2.dfl - o1.dfl) <= 1e-12);
    ASSERT_TRUE(dfl_g1 == 0.0);
    /* cls(2 images) - cls(image 0) = image 1's BCE against 0 with the same normaliser */
    double want = 0.5 * cls1 * inv_hi;
    printf("  1 / tss in [%.9f, %.9f]; image 1's cls %.8f (by hand %.8f)\n", inv_lo, inv_hi, o2.cls - o1.cls, want);
    ASSERT_TRUE(inv_hi - inv_lo <= 1e-6 * inv_hi && inv_hi <= 1.0 + 1e-6);
    ASSERT_TRUE(fabs(o2.cls - o1.cls - want) <= 1e-6 * want);
}

HY_TEST(too_many_targets) {
    small s;
    ASSERT_TRUE(small_init(&s, SN, 1) == 0);
    hy__v8loss_out o;
    /* image 0 has two rows, planned for one */
    ASSERT_ERR(hy__v8loss_compute(s.l, s.p, small_targets, 4, &o, s.g, NULL), HY_ERR_INVALID_ARG);
    printf("  %s\n", hy_last_error());
    ASSERT_TRUE(strstr(hy_last_error(), "max_targets") != NULL);
    ASSERT_TRUE(hy__v8loss_assigned(s.l, 0, NULL) == NULL);
    /* one per image is fine */
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets + 6, 2, &o, s.g, NULL));
    /* bad rows */
    float bad_img[6] = {2, 0, 0.5f, 0.5f, 0.1f, 0.1f}, bad_cls[6] = {0, 3, 0.5f, 0.5f, 0.1f, 0.1f};
    float bad_box[6] = {0, 0, NAN, 0.5f, 0.1f, 0.1f};
    ASSERT_ERR(hy__v8loss_compute(s.l, s.p, bad_img, 1, &o, NULL, NULL), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy__v8loss_compute(s.l, s.p, bad_cls, 1, &o, NULL, NULL), HY_ERR_INVALID_ARG);
    ASSERT_ERR(hy__v8loss_compute(s.l, s.p, bad_box, 1, &o, NULL, NULL), HY_ERR_INVALID_ARG);
    small_free(&s);
}

HY_TEST(degenerate_rows_change_nothing) {
    small s;
    ASSERT_TRUE(small_init(&s, SN, 8) == 0);
    int nt = (int)(sizeof(small_targets) / sizeof(small_targets[0]) / 6);
    hy__v8loss_out o0, o1;
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, nt, &o0, s.g, NULL));
    float *g0 = malloc(s.total * sizeof(float));
    memcpy(g0, s.gbuf, s.total * sizeof(float));
    /* a zero-size box (a valid row that no anchor centre is inside) and an all-zero row
     * (Ultralytics' mask_gt drops it), in both images, between the real rows */
    float t[8 * 6];
    memcpy(t, small_targets, 6 * sizeof(float));
    float zs[6] = {0, 1, 0.5f, 0.5f, 0.0f, 0.0f}, z0[6] = {1, 0, 0, 0, 0, 0};
    memcpy(t + 6, zs, sizeof(zs));
    memcpy(t + 12, small_targets + 6, 6 * sizeof(float));
    memcpy(t + 18, z0, sizeof(z0));
    memcpy(t + 24, small_targets + 12, 12 * sizeof(float));
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, t, 6, &o1, s.g, NULL));
    int same = memcmp(g0, s.gbuf, s.total * sizeof(float)) == 0;
    printf("  without: total %.8f, %d fg; with degenerate rows: total %.8f, %d fg\n", o0.total, o0.n_fg, o1.total,
           o1.n_fg);
    free(g0);
    small_free(&s);
    ASSERT_TRUE(o0.n_fg == o1.n_fg && o0.total == o1.total && same);
}

HY_TEST(threads_give_the_same_result) {
    small s;
    ASSERT_TRUE(small_init(&s, SN, 4) == 0);
    int nt = (int)(sizeof(small_targets) / sizeof(small_targets[0]) / 6);
    hy__v8loss_out o0, o1;
    hy__threadpool *tp = NULL;
    ASSERT_OK(hy__threadpool_create(2, &tp));
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, nt, &o0, s.g, NULL));
    float *g0 = malloc(s.total * sizeof(float));
    memcpy(g0, s.gbuf, s.total * sizeof(float));
    ASSERT_OK(hy__v8loss_compute(s.l, s.p, small_targets, nt, &o1, s.g, tp));
    int same = memcmp(g0, s.gbuf, s.total * sizeof(float)) == 0;
    free(g0);
    hy__threadpool_free(tp);
    small_free(&s);
    ASSERT_TRUE(same && o0.total == o1.total);
}

HY_TEST_MAIN()
