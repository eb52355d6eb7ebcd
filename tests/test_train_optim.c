/* Optimizer, schedule, clipping and EMA (src/train/optim.c) against values worked out by hand
 * from Ultralytics 8.0.172's trainer (build_optimizer, _setup_train, _do_train,
 * optimizer_step), ModelEMA and PyTorch 1.13's SGD / Adam / AdamW / clip_grad_norm_ formulas.
 * Every expected value below is a literal or plain double arithmetic on literals, with the
 * formula it comes from in the comment; none is produced by the code under test. */
#include "hy_test.h"
#include "train/optim.h"

// --- helpers -----------------------------------------------------------------------------------

/* A fixed-epoch explicit optimizer without warm-up (lrs = lr0, momentum = args.momentum). */
static hy__optim_args plain_args(const char *name, double lr0, double momentum, double wd) {
    hy__optim_args a = hy__optim_default_args();
    a.optimizer = name;
    a.lr0 = lr0;
    a.momentum = momentum;
    a.weight_decay = wd;
    a.warmup_epochs = 0.0; /* nw = -1: no warm-up */
    a.batch = 64;          /* accumulate round(64 / 64) = 1: decay unscaled */
    a.epochs = 10;
    a.n_images = 64;
    a.batches_per_epoch = 1;
    return a;
}

/* Three parameters of 3 elements: index 0 group g0 (weights), 1 g1 (BN weights), 2 g2 (bias). */
typedef struct three {
    float data[3][3], grad[3][3];
    hy__oparam p[3];
} three;

static void three_init(three *t, const float data[3][3], const float grad[3][3]) {
    memcpy(t->data, data, sizeof(t->data));
    memcpy(t->grad, grad, sizeof(t->grad));
    for (int i = 0; i < 3; i++) {
        t->p[i].data = t->data[i];
        t->p[i].grad = t->grad[i];
        t->p[i].numel = 3;
        t->p[i].group = i;
        t->p[i].trainable = 1;
    }
}

#define ASSERT_VEC3(got, exp, tol)                                                              \
    do {                                                                                        \
        for (int k_ = 0; k_ < 3; k_++) ASSERT_NEAR((got)[k_], (exp)[k_], tol);                  \
    } while (0)

// --- SGD -------------------------------------------------------------------------------------

HY_TEST(sgd_nesterov_two_steps) {
    /* SGD(lr 0.01, momentum 0.937, nesterov); g0 decay 5e-4 * 64 * 1 / 64 = 5e-4, g1/g2 none. */
    const float data[3][3] = {{1.0f, -2.0f, 0.5f}, {0.9f, 1.1f, 1.0f}, {0.01f, -0.02f, 0.0f}};
    const float grad1[3][3] = {{0.1f, -0.2f, 0.3f}, {0.05f, 0.0f, -0.05f}, {0.2f, 0.1f, -0.1f}};
    const float grad2[3][3] = {{0.3f, 0.1f, -0.2f}, {-0.1f, 0.2f, 0.0f}, {0.0f, -0.4f, 0.1f}};
    three t;
    three_init(&t, data, grad1);
    hy__optim_args a = plain_args("SGD", 0.01, 0.937, 5e-4);
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, t.p, 3, &o));
    ASSERT_EQ(hy__optim_begin_iter(o, 0, 0), 1); /* 0 - (-1) >= accumulate 1 */
    ASSERT_NEAR(hy__optim_lr(o, 0), 0.01, 1e-15);
    ASSERT_NEAR(hy__optim_momentum(o), 0.937, 1e-15);
    hy__optim_step(o, 0);

    const double lr = 0.01, m = 0.937, wd[3] = {5e-4, 0.0, 0.0};
    double buf[3][3], e1[3][3], e2[3][3];
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 3; k++) {
            /* step 1: d = g + wd p; buf = d (first step: clone, no dampening);
             * p -= lr (d + m buf) */
            double d = (double)grad1[i][k] + wd[i] * (double)data[i][k];
            buf[i][k] = d;
            e1[i][k] = (double)data[i][k] - lr * (d + m * buf[i][k]);
        }
        ASSERT_VEC3(t.data[i], e1[i], 2e-7);
        for (int k = 0; k < 3; k++) ASSERT_TRUE(t.grad[i][k] == 0.0f); /* zero_grad */
    }
    /* Literal check of one element: 1 - 0.01 * 1.937 * (0.1 + 5e-4) = 0.998053315 */
    ASSERT_NEAR(t.data[0][0], 0.998053315, 1e-7);

    memcpy(t.grad, grad2, sizeof(t.grad));
    ASSERT_EQ(hy__optim_begin_iter(o, 0, 1), 1);
    hy__optim_step(o, 1);
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 3; k++) {
            /* step 2: d = g + wd p; buf = m buf + d; p -= lr (d + m buf) */
            double d = (double)grad2[i][k] + wd[i] * e1[i][k];
            double b = m * buf[i][k] + d;
            e2[i][k] = e1[i][k] - lr * (d + m * b);
        }
        ASSERT_VEC3(t.data[i], e2[i], 3e-7);
    }
    hy__optim_free(o);
}

// --- Adam / AdamW ------------------------------------------------------------------------------

/* Adam(lr 0.01, betas (0.9, 0.999), eps 1e-8), g0 decay 0.05 (L2 for Adam, decoupled for
 * AdamW), two steps (bias corrections 1 - 0.9^t, 1 - 0.999^t). g1 holds a zero gradient (eps
 * keeps 0 / 0 away: no change) and a 1e-8 one (step 1: lr * 1e-8 / (1e-8 + eps) = lr / 2). */
static void adam_case(const char *name, int decoupled) {
    const float data[3][3] = {{0.5f, -0.25f, 0.125f}, {0.9f, 1.1f, 1.0f}, {0.01f, -0.02f, 0.0f}};
    const float grad1[3][3] = {{0.02f, 0.01f, -0.001f}, {0.0f, 1e-8f, -0.03f},
                               {0.2f, -0.3f, 0.05f}};
    const float grad2[3][3] = {{-0.01f, 0.03f, 0.002f}, {0.0f, 2e-8f, 0.01f},
                               {0.1f, 0.1f, -0.2f}};
    three t;
    three_init(&t, data, grad1);
    hy__optim_args a = plain_args(name, 0.01, 0.9, 0.05);
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, t.p, 3, &o));
    hy__optim_info info;
    hy__optim_get_info(o, &info);
    ASSERT_EQ(info.kind, decoupled ? HY_OPT_ADAMW : HY_OPT_ADAM);
    ASSERT_NEAR(info.weight_decay, 0.05, 1e-15);
    ASSERT_NEAR(hy__optim_momentum(o), 0.9, 1e-15); /* beta1 = momentum */

    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd[3] = {0.05, 0.0, 0.0};
    double p[3][3], mm[3][3], vv[3][3];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) p[i][k] = data[i][k], mm[i][k] = 0.0, vv[i][k] = 0.0;

    for (int t_step = 1; t_step <= 2; t_step++) {
        const float(*g)[3] = t_step == 1 ? grad1 : grad2;
        if (t_step == 2) memcpy(t.grad, grad2, sizeof(t.grad));
        ASSERT_EQ(hy__optim_begin_iter(o, 0, t_step - 1), 1);
        hy__optim_step(o, t_step - 1);
        /* bias corrections: 1 - 0.9^1 = 0.1, 1 - 0.999^1 = 0.001; 1 - 0.81 = 0.19, 1 - 0.998001 */
        double bc1 = t_step == 1 ? 0.1 : 0.19, bc2 = t_step == 1 ? 0.001 : 1.0 - 0.998001;
        for (int i = 0; i < 3; i++) {
            double e[3];
            for (int k = 0; k < 3; k++) {
                double gk = g[i][k];
                if (decoupled) p[i][k] *= 1.0 - lr * wd[i]; /* AdamW: p *= 1 - lr wd */
                else gk += wd[i] * p[i][k];                 /* Adam: g += wd p */
                mm[i][k] = b1 * mm[i][k] + (1 - b1) * gk;  /* m = b1 m + (1 - b1) g */
                vv[i][k] = b2 * vv[i][k] + (1 - b2) * gk * gk;
                /* p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) */
                p[i][k] -= lr / bc1 * mm[i][k] / (sqrt(vv[i][k]) / sqrt(bc2) + eps);
                e[k] = p[i][k];
            }
            ASSERT_VEC3(t.data[i], e, 3e-7);
        }
        if (t_step == 1) {
            /* Literals: the 1e-8 gradient moves by lr / 2; the zero one not at all. */
            ASSERT_NEAR(t.data[1][1], 1.1 - 0.005, 2e-7);
            ASSERT_TRUE(t.data[1][0] == 0.9f);
            /* g0[1]: p -0.25, g 0.01. Adam: g + 0.05 p = -0.0025 < 0, so p rises by lr:
             * -0.24. AdamW: p 0.9995 (-0.25) then falls by lr: -0.2598750. */
            ASSERT_NEAR(t.data[0][1], decoupled ? -0.25 * 0.9995 - 0.01 : -0.25 + 0.01, 2e-7);
        }
    }
    hy__optim_free(o);
}

HY_TEST(adam_two_steps) { adam_case("Adam", 0); }
HY_TEST(adamw_two_steps) { adam_case("AdamW", 1); }

// --- "auto" and the decay ----------------------------------------------------------------------

static hy__optim_info resolve(const char *name, int nc, long n_images, int batch, int epochs) {
    hy__optim_args a = hy__optim_default_args();
    a.optimizer = name;
    a.nc = nc;
    a.n_images = n_images;
    a.batch = batch;
    a.epochs = epochs;
    a.batches_per_epoch = (n_images + batch - 1) / batch;
    hy__optim *o = NULL;
    hy__optim_info info;
    memset(&info, 0, sizeof(info));
    info.kind = -1;
    if (hy__optim_create(&a, NULL, 0, &o) != HY_OK) return info;
    hy__optim_get_info(o, &info);
    hy__optim_free(o);
    return info;
}

HY_TEST(auto_resolution) {
    /* iterations = ceil(4 / max(16, 64)) * 100 = 100 <= 10000: AdamW,
     * lr round(0.002 * 5 / (4 + 80), 6) = round(0.00011905, 6) = 0.000119, momentum 0.9,
     * warmup_bias_lr 0 */
    hy__optim_info i = resolve("auto", 80, 4, 16, 100);
    ASSERT_EQ(i.kind, HY_OPT_ADAMW);
    ASSERT_NEAR(i.lr, 0.000119, 1e-12);
    ASSERT_NEAR(i.momentum, 0.9, 1e-15);
    ASSERT_NEAR(i.warmup_bias_lr, 0.0, 0.0);
    /* nc 3: round(0.01 / 7, 6) = round(0.00142857, 6) = 0.001429 */
    i = resolve("auto", 3, 4, 16, 100);
    ASSERT_EQ(i.kind, HY_OPT_ADAMW);
    ASSERT_NEAR(i.lr, 0.001429, 1e-12);
    /* COCO: ceil(118287 / 64) * 10 = 1849 * 10 = 18490 > 10000: SGD lr 0.01 momentum 0.9 */
    i = resolve("auto", 80, 118287, 16, 10);
    ASSERT_EQ(i.kind, HY_OPT_SGD);
    ASSERT_NEAR(i.lr, 0.01, 1e-15);
    ASSERT_NEAR(i.momentum, 0.9, 1e-15);
    ASSERT_NEAR(i.warmup_bias_lr, 0.0, 0.0);
    /* The boundary: 6400 images -> 100 * 100 = 10000 (AdamW); 6401 -> 101 * 100 (SGD). */
    ASSERT_EQ(resolve("auto", 80, 6400, 16, 100).kind, HY_OPT_ADAMW);
    ASSERT_EQ(resolve("auto", 80, 6401, 16, 100).kind, HY_OPT_SGD);
    /* max(batch, nbs): batch 128, 12800 images -> ceil(12800 / 128) * 100 = 10000 (AdamW);
     * dividing by nbs 64 would give 20000 (SGD). */
    ASSERT_EQ(resolve("auto", 80, 12800, 128, 100).kind, HY_OPT_ADAMW);
    /* An explicit name keeps lr0, momentum and warmup_bias_lr. */
    i = resolve("SGD", 80, 118287, 16, 10);
    ASSERT_EQ(i.kind, HY_OPT_SGD);
    ASSERT_NEAR(i.lr, 0.01, 1e-15);
    ASSERT_NEAR(i.momentum, 0.937, 1e-15);
    ASSERT_NEAR(i.warmup_bias_lr, 0.1, 1e-15);
}

HY_TEST(decay_scaling_and_accumulate) {
    /* accumulate = max(round(nbs / batch), 1); decay = 5e-4 * batch * accumulate / nbs */
    hy__optim_info i = resolve("SGD", 80, 100, 16, 1);
    ASSERT_EQ(i.accumulate, 4);                             /* 64 / 16 */
    ASSERT_NEAR(i.weight_decay, 5e-4 * 16 * 4 / 64, 1e-18); /* 5e-4 */
    i = resolve("SGD", 80, 100, 4, 1);
    ASSERT_EQ(i.accumulate, 16);
    ASSERT_NEAR(i.weight_decay, 5e-4, 1e-18);
    i = resolve("SGD", 80, 100, 48, 1);
    ASSERT_EQ(i.accumulate, 1);                 /* round(1.333) */
    ASSERT_NEAR(i.weight_decay, 3.75e-4, 1e-18); /* 5e-4 * 48 / 64 */
    i = resolve("SGD", 80, 100, 128, 1);
    ASSERT_EQ(i.accumulate, 1);                 /* max(round(0.5) = 0, 1) */
    ASSERT_NEAR(i.weight_decay, 1e-3, 1e-18);   /* 5e-4 * 128 / 64 */
    /* Python rounds halves to even: nbs 20, batch 8 -> round(2.5) = 2, decay 5e-4 * 16 / 20 */
    hy__optim_args a = plain_args("SGD", 0.01, 0.937, 5e-4);
    a.nbs = 20;
    a.batch = 8;
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));
    hy__optim_get_info(o, &i);
    hy__optim_free(o);
    ASSERT_EQ(i.accumulate, 2);
    ASSERT_NEAR(i.weight_decay, 4e-4, 1e-18);
}

HY_TEST(warmup_iterations) {
    /* nw = max(round(warmup_epochs * nb), 100); -1 (none) when warmup_epochs is 0 */
    hy__optim_args a = plain_args("SGD", 0.01, 0.937, 5e-4);
    struct {
        double we;
        long nb, nw;
    } cases[] = {{3.0, 20, 100}, {3.0, 50, 150}, {2.5, 41, 102} /* round(102.5) = 102 */,
                 {0.0, 50, -1}};
    for (size_t c = 0; c < HY_ARRAY_LEN(cases); c++) {
        a.warmup_epochs = cases[c].we;
        a.batches_per_epoch = cases[c].nb;
        hy__optim *o = NULL;
        ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));
        hy__optim_info i;
        hy__optim_get_info(o, &i);
        hy__optim_free(o);
        ASSERT_EQ(i.nw, cases[c].nw);
    }
}

// --- warm-up and schedule ----------------------------------------------------------------------

HY_TEST(warmup_values) {
    /* SGD lr0 0.01, lrf 0.01, momentum 0.937, warm-up 3 epochs of nb 20 -> nw 100, batch 16
     * (accumulate ramps 1 -> 4), 10 epochs, linear lf(e) = (1 - e / 10) * 0.99 + 0.01. */
    hy__optim_args a = plain_args("SGD", 0.01, 0.937, 5e-4);
    a.warmup_epochs = 3.0;
    a.batch = 16;
    a.batches_per_epoch = 20;
    a.n_images = 320;
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));

    /* ni 0 (epoch 0): biases at warmup_bias_lr 0.1, others 0; momentum 0.8; accumulate 1 */
    hy__optim_begin_iter(o, 0, 0);
    ASSERT_NEAR(hy__optim_lr(o, 2), 0.1, 1e-15);
    ASSERT_NEAR(hy__optim_lr(o, 0), 0.0, 0.0);
    ASSERT_NEAR(hy__optim_lr(o, 1), 0.0, 0.0);
    ASSERT_NEAR(hy__optim_momentum(o), 0.8, 1e-15);
    ASSERT_EQ(hy__optim_accumulate(o), 1);

    /* ni 50 (epoch 2): target 0.01 * lf(2) = 0.01 * (0.8 * 0.99 + 0.01) = 0.00802;
     * bias 0.1 + (0.00802 - 0.1) / 2 = 0.05401, others 0.00401;
     * momentum 0.8 + 0.137 / 2 = 0.8685; accumulate round(1 + 3 / 2 = 2.5) = 2 (half to even) */
    hy__optim_begin_iter(o, 2, 50);
    ASSERT_NEAR(hy__optim_lr(o, 2), 0.05401, 1e-15);
    ASSERT_NEAR(hy__optim_lr(o, 0), 0.00401, 1e-15);
    ASSERT_NEAR(hy__optim_lr(o, 1), 0.00401, 1e-15);
    ASSERT_NEAR(hy__optim_momentum(o), 0.8685, 1e-15);
    ASSERT_EQ(hy__optim_accumulate(o), 2);
    /* ni 25: round(1.75) = 2; ni 83: round(3.49) = 3 */
    hy__optim_begin_iter(o, 1, 25);
    ASSERT_EQ(hy__optim_accumulate(o), 2);
    hy__optim_begin_iter(o, 4, 83);
    ASSERT_EQ(hy__optim_accumulate(o), 3);

    /* ni nw = 100 (epoch 5, included in 8.0.172's warm-up): every lr 0.01 * lf(5) =
     * 0.01 * (0.5 * 0.99 + 0.01) = 0.00505; momentum 0.937; accumulate 4 */
    hy__optim_begin_iter(o, 5, 100);
    for (int g = 0; g < 3; g++) ASSERT_NEAR(hy__optim_lr(o, g), 0.00505, 1e-15);
    ASSERT_NEAR(hy__optim_momentum(o), 0.937, 1e-15);
    ASSERT_EQ(hy__optim_accumulate(o), 4);
    /* ni 101: past the warm-up nothing changes, even with another epoch's lf */
    hy__optim_begin_iter(o, 6, 101);
    for (int g = 0; g < 3; g++) ASSERT_NEAR(hy__optim_lr(o, g), 0.00505, 1e-15);
    ASSERT_NEAR(hy__optim_momentum(o), 0.937, 1e-15);
    ASSERT_EQ(hy__optim_accumulate(o), 4);
    /* scheduler.step() after epoch 6: 0.01 * lf(6) = 0.01 * (0.4 * 0.99 + 0.01) = 0.00406 */
    hy__optim_end_epoch(o, 6);
    for (int g = 0; g < 3; g++) ASSERT_NEAR(hy__optim_lr(o, g), 0.00406, 1e-15);
    hy__optim_free(o);
}

HY_TEST(warmup_auto_adamw_and_sgd) {
    /* auto -> AdamW (lr 0.000119): warmup_bias_lr 0, so every group starts at 0; beta1 stays 0.9 */
    hy__optim_args a = hy__optim_default_args();
    a.n_images = 4;
    a.batch = 16;
    a.epochs = 100;
    a.batches_per_epoch = 1;
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));
    hy__optim_begin_iter(o, 0, 0);
    for (int g = 0; g < 3; g++) ASSERT_NEAR(hy__optim_lr(o, g), 0.0, 0.0);
    ASSERT_NEAR(hy__optim_momentum(o), 0.9, 1e-15);
    /* ni 50 of nw 100 (epoch 50): 0.000119 * lf(50) / 2 = 0.000119 * (0.5 * 0.99 + 0.01) / 2 */
    hy__optim_begin_iter(o, 50, 50);
    ASSERT_NEAR(hy__optim_lr(o, 2), 0.000119 * 0.505 / 2, 1e-17);
    ASSERT_NEAR(hy__optim_momentum(o), 0.9, 1e-15);
    hy__optim_free(o);
    /* auto -> SGD momentum 0.9, but the warm-up ramps SGD's momentum 0.8 -> args.momentum
     * (0.937), as _do_train interpolates to self.args.momentum. */
    a.n_images = 118287;
    a.epochs = 10;
    a.batches_per_epoch = 7393;
    ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));
    ASSERT_NEAR(hy__optim_momentum(o), 0.9, 1e-15);
    hy__optim_begin_iter(o, 0, 0);
    ASSERT_NEAR(hy__optim_lr(o, 2), 0.0, 0.0);
    ASSERT_NEAR(hy__optim_momentum(o), 0.8, 1e-15);
    hy__optim_begin_iter(o, 3, 22179); /* nw = round(3 * 7393) = 22179 */
    ASSERT_NEAR(hy__optim_momentum(o), 0.937, 1e-15);
    hy__optim_free(o);
}

HY_TEST(schedule_lf) {
    hy__optim_args a = plain_args("SGD", 0.01, 0.937, 5e-4);
    a.epochs = 10;
    a.lrf = 0.01;
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));
    /* linear (1 - e / 10) * 0.99 + 0.01 */
    ASSERT_NEAR(hy__optim_lf(o, 0), 1.0, 1e-15);
    ASSERT_NEAR(hy__optim_lf(o, 5), 0.505, 1e-15);
    ASSERT_NEAR(hy__optim_lf(o, 9), 0.1 * 0.99 + 0.01, 1e-15); /* 0.109 */
    ASSERT_NEAR(hy__optim_lf(o, 10), 0.01, 1e-15);
    /* end_epoch(e): lr = 0.01 * lf(e); epoch 0's step leaves lf(0) (8.0.172's off-by-one) */
    hy__optim_end_epoch(o, 0);
    ASSERT_NEAR(hy__optim_lr(o, 0), 0.01, 1e-15);
    hy__optim_end_epoch(o, 9);
    ASSERT_NEAR(hy__optim_lr(o, 1), 0.00109, 1e-15);
    hy__optim_free(o);
    /* cosine one_cycle(1, 0.01, 10): ((1 - cos(e pi / 10)) / 2) * (0.01 - 1) + 1 */
    a.cos_lr = 1;
    ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));
    ASSERT_NEAR(hy__optim_lf(o, 0), 1.0, 1e-15);
    ASSERT_NEAR(hy__optim_lf(o, 5), 0.505, 1e-15); /* cos(pi / 2) = 0 */
    /* cos(0.9 pi) = -0.9510565162951535 */
    ASSERT_NEAR(hy__optim_lf(o, 9), 1.0 - 0.99 * (1.0 + 0.9510565162951535) / 2.0, 1e-15);
    ASSERT_NEAR(hy__optim_lf(o, 10), 0.01, 1e-15);
    hy__optim_free(o);
}

HY_TEST(step_cadence) {
    /* Same warm-up as warmup_values: accumulate(ni) = round(1 + 3 ni / 100) for ni <= 100:
     * 1 for ni 0..16, 2 for 17..50 (round(2.5) = 2), 3 for 51..83, 4 from 84. A step when
     * ni - last_step >= accumulate. */
    static const long expect[] = {
        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,   /* acc 1 */
        18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50,   /* acc 2 */
        53, 56, 59, 62, 65, 68, 71, 74, 77, 80, 83,                           /* acc 3 */
        87, 91, 95, 99, 103, 107};                                            /* acc 4 */
    hy__optim_args a = plain_args("SGD", 0.01, 0.937, 5e-4);
    a.warmup_epochs = 3.0;
    a.batch = 16;
    a.batches_per_epoch = 20;
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, NULL, 0, &o));
    size_t n = 0;
    for (long ni = 0; ni <= 110; ni++) {
        if (hy__optim_begin_iter(o, (int)(ni / 20), ni)) {
            ASSERT_TRUE(n < HY_ARRAY_LEN(expect));
            ASSERT_EQ(ni, expect[n]);
            n++;
            hy__optim_step(o, ni);
        }
    }
    ASSERT_EQ(n, HY_ARRAY_LEN(expect));
    hy__optim_free(o);
}

// --- clipping and frozen parameters ------------------------------------------------------------

HY_TEST(clip_grad_norm) {
    /* norm sqrt(12^2 + 16^2) = 20 > 10: scaled by 10 / (20 + 1e-6); the frozen parameter's
     * 1000 is neither counted nor scaled */
    float g0[2] = {12.0f, 0.0f}, g1[1] = {16.0f}, gf[1] = {1000.0f}, d[2] = {0};
    hy__oparam p[3] = {{d, g0, 2, 0, 1}, {d, g1, 1, 2, 1}, {d, gf, 1, 0, 0}};
    double norm = hy__clip_grad_norm(p, 3, 10.0);
    ASSERT_NEAR(norm, 20.0, 1e-6);
    ASSERT_NEAR(g0[0], 12.0 * 10.0 / (20.0 + 1e-6), 12.0 * 1e-7); /* 5.9999997 */
    ASSERT_NEAR(g1[0], 16.0 * 10.0 / (20.0 + 1e-6), 16.0 * 1e-7); /* 7.9999996 */
    ASSERT_TRUE(g0[1] == 0.0f);
    ASSERT_TRUE(gf[0] == 1000.0f);
    /* norm 5 (3, 4): 10 / 5 >= 1, untouched */
    float h[2] = {3.0f, 4.0f};
    hy__oparam q[1] = {{d, h, 2, 0, 1}};
    ASSERT_NEAR(hy__clip_grad_norm(q, 1, 10.0), 5.0, 1e-12);
    ASSERT_TRUE(h[0] == 3.0f && h[1] == 4.0f);
}

HY_TEST(step_clips_and_skips_frozen) {
    /* SGD lr 0.1, momentum 0, no decay: p -= lr * clipped g. The trainable gradient (30, 40)
     * has norm 50: clipped to (6, 8); the frozen parameter (gradient 1000, which would dominate
     * the norm) keeps its data and gradient. */
    float d0[2] = {1.0f, 1.0f}, g0[2] = {30.0f, 40.0f}, df[2] = {5.0f, 5.0f},
          gf[2] = {1000.0f, 1000.0f};
    hy__oparam p[2] = {{d0, g0, 2, 2, 1}, {df, gf, 2, 0, 0}};
    hy__optim_args a = plain_args("SGD", 0.1, 0.0, 0.0);
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, p, 2, &o));
    hy__optim_begin_iter(o, 0, 0);
    hy__optim_step(o, 0);
    /* g = (30, 40) * 10 / (50 + 1e-6) = (6, 8); p = 1 - 0.1 * (6, 8) = (0.4, 0.2) */
    ASSERT_NEAR(d0[0], 0.4, 1e-6);
    ASSERT_NEAR(d0[1], 0.2, 1e-6);
    ASSERT_TRUE(df[0] == 5.0f && df[1] == 5.0f);
    ASSERT_TRUE(gf[0] == 1000.0f && gf[1] == 1000.0f);
    hy__optim_free(o);
}

HY_TEST(unfrozen_parameter_starts_its_own_state) {
    /* Adam lr 0.1, no decay. Parameter 1 is frozen for the first step and unfrozen before the
     * second: PyTorch creates its state then, so its first update has t = 1 and moves it by
     * lr * sign(g) = 0.1 (m = 0.1 g, v = 0.001 g^2, corrections 0.1 and 0.001). A step count
     * shared with parameter 0 (t = 2) would move it by 0.074. */
    float d0[1] = {1.0f}, g0[1] = {0.5f}, d1[1] = {2.0f}, g1[1] = {0.25f};
    hy__oparam p[2] = {{d0, g0, 1, 2, 1}, {d1, g1, 1, 2, 0}};
    hy__optim_args a = plain_args("Adam", 0.1, 0.9, 0.0);
    hy__optim *o = NULL;
    ASSERT_OK(hy__optim_create(&a, p, 2, &o));
    hy__optim_begin_iter(o, 0, 0);
    hy__optim_step(o, 0);
    ASSERT_NEAR(d0[0], 0.9, 1e-6);
    ASSERT_TRUE(d1[0] == 2.0f);
    ASSERT_TRUE(hy__optim_param_steps(o)[1] == 0);
    hy__optim_set_trainable(o, 1, 1);
    g0[0] = 0.5f;
    g1[0] = 0.25f;
    hy__optim_begin_iter(o, 0, 1);
    hy__optim_step(o, 1);
    ASSERT_NEAR(d1[0], 1.9, 1e-6); /* t = 1 for parameter 1 */
    ASSERT_TRUE(hy__optim_param_steps(o)[0] == 2 && hy__optim_param_steps(o)[1] == 1);
    hy__optim_free(o);
}

HY_TEST(state_round_trip_continues_exactly) {
    /* Two optimizers over the same start: A runs 4 steps; B runs 2, its state is copied into a
     * fresh C (scalars, steps, buffers), C runs the last 2: C's parameters equal A's bit for bit
     * (SGD with warm-up: the scalars carry momentum and accumulation; AdamW: the moments). */
    const char *kinds[2] = {"SGD", "AdamW"};
    for (int kk = 0; kk < 2; kk++) {
        const float data[3][3] = {{1.0f, -2.0f, 0.5f}, {0.9f, 1.1f, 1.0f}, {0.01f, -0.02f, 0.0f}};
        const float grad[3][3] = {{0.1f, -0.2f, 0.3f}, {0.05f, 0.0f, -0.05f}, {0.2f, 0.1f, -0.1f}};
        three ta, tb;
        three_init(&ta, data, grad);
        three_init(&tb, data, grad);
        hy__optim_args a = plain_args(kinds[kk], 0.01, 0.937, 5e-4);
        a.warmup_epochs = 1.0; /* nw = max(1 * 1, 100) = 100: every step inside the warm-up */
        hy__optim *oa = NULL, *ob = NULL, *oc = NULL;
        ASSERT_OK(hy__optim_create(&a, ta.p, 3, &oa));
        ASSERT_OK(hy__optim_create(&a, tb.p, 3, &ob));
        ASSERT_OK(hy__optim_create(&a, tb.p, 3, &oc));
        for (long ni = 0; ni < 4; ni++) {
            memcpy(ta.grad, grad, sizeof grad);
            if (hy__optim_begin_iter(oa, 0, ni)) hy__optim_step(oa, ni);
        }
        for (long ni = 0; ni < 2; ni++) {
            memcpy(tb.grad, grad, sizeof grad);
            if (hy__optim_begin_iter(ob, 0, ni)) hy__optim_step(ob, ni);
        }
        hy__optim_scalars sc;
        hy__optim_get_scalars(ob, &sc);
        hy__optim_set_scalars(oc, &sc);
        ASSERT_TRUE(hy__optim_state_len(ob) == 9 && hy__optim_state_bufs(ob) == (kk ? 2 : 1));
        for (int k = 0; k < hy__optim_state_bufs(ob); k++)
            memcpy(hy__optim_state_buf(oc, k), hy__optim_state_buf(ob, k), 9 * sizeof(float));
        memcpy(hy__optim_param_steps(oc), hy__optim_param_steps(ob), 3 * sizeof(long));
        for (long ni = 2; ni < 4; ni++) {
            memcpy(tb.grad, grad, sizeof grad);
            if (hy__optim_begin_iter(oc, 0, ni)) hy__optim_step(oc, ni);
        }
        ASSERT_TRUE(memcmp(ta.data, tb.data, sizeof ta.data) == 0);
        ASSERT_TRUE(memcmp(ta.data, data, sizeof ta.data) != 0);
        hy__optim_free(oa);
        hy__optim_free(ob);
        hy__optim_free(oc);
    }
}

// --- EMA ---------------------------------------------------------------------------------------

HY_TEST(ema_decay_and_update) {
    /* d(u) = 0.9999 (1 - exp(-u / 2000)) */
    ASSERT_NEAR(hy__ema_decay(1), 0.9999 * (1.0 - 0.9995001249791693), 1e-15); /* e^-0.0005 */
    ASSERT_NEAR(hy__ema_decay(2000), 0.9999 * (1.0 - 0.36787944117144233), 1e-15); /* e^-1 */
    ASSERT_NEAR(hy__ema_decay(1000000), 0.9999, 1e-15); /* e^-500 ~ 7e-218 */

    const float init[3] = {1.0f, 2.0f, 3.0f}, model[3] = {3.0f, 2.0f, -1.0f};
    hy__ema *e = NULL;
    ASSERT_OK(hy__ema_create(init, 3, &e));
    ASSERT_EQ(hy__ema_updates(e), 0);
    hy__ema_update(e, model);
    ASSERT_EQ(hy__ema_updates(e), 1);
    /* d = 0.9999 * 4.99875e-4 = 4.99825e-4; ema = d ema + (1 - d) model */
    const double d = 0.9999 * (1.0 - 0.9995001249791693);
    const double exp1[3] = {d * 1.0 + (1 - d) * 3.0, 2.0, d * 3.0 + (1 - d) * -1.0};
    ASSERT_VEC3(hy__ema_data(e), exp1, 4e-7);
    ASSERT_NEAR(hy__ema_data(e)[0], 2.99900035, 4e-7); /* 3 - 2 d */
    hy__ema_free(e);
}

// --- invalid arguments -------------------------------------------------------------------------

HY_TEST(rejects_bad_args) {
    hy__optim *o = NULL;
    hy__optim_args a = plain_args("sgd", 0.01, 0.937, 5e-4); /* names are case-sensitive */
    ASSERT_ERR(hy__optim_create(&a, NULL, 0, &o), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "sgd");
    a = plain_args("RMSProp", 0.01, 0.937, 5e-4); /* Ultralytics has it; we do not */
    ASSERT_ERR(hy__optim_create(&a, NULL, 0, &o), HY_ERR_INVALID_ARG);
    a = plain_args("SGD", 0.01, 0.937, 5e-4);
    a.batch = 0;
    ASSERT_ERR(hy__optim_create(&a, NULL, 0, &o), HY_ERR_INVALID_ARG);
    a = plain_args("SGD", NAN, 0.937, 5e-4);
    ASSERT_ERR(hy__optim_create(&a, NULL, 0, &o), HY_ERR_INVALID_ARG);
    a = plain_args("SGD", 0.01, 0.937, 5e-4);
    float x = 0.0f;
    hy__oparam p = {&x, NULL, 1, 0, 1}; /* trainable without a gradient */
    ASSERT_ERR(hy__optim_create(&a, &p, 1, &o), HY_ERR_INVALID_ARG);
    p.grad = &x;
    p.group = 3;
    ASSERT_ERR(hy__optim_create(&a, &p, 1, &o), HY_ERR_INVALID_ARG);
    ASSERT_TRUE(o == NULL);
}

HY_TEST_MAIN()
