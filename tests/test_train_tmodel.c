/* The trainable model (src/train/tmodel.c): loading weights/yolov8n.pt into the unfused
 * float32 state of Ultralytics' DetectionModel (names and shapes against the reference
 * gradient file of Ultralytics 8.0.172), parameter groups as build_optimizer, freezing,
 * transfer to a new nc, and the way back: as a source / saved file / fused conversion, the
 * detections must equal those of the original checkpoint exactly. */
#include <stdint.h>
#include <unistd.h>

#include "hy_test.h"
#include "io/safetensors.h"
#include "io/wfile.h"
#include "train/tmodel.h"

#define REF_GRADS "reference/train/yolov8n_coco8_320_grads_eval.safetensors"

/* Detections of model m on images/bus.jpg (n_out set; free()). */
static hy_detection *detect_bus(const hy_model *m, size_t *n_out) {
    hy_context *c = NULL;
    hy_image *img = NULL;
    hy_result *r = NULL;
    hy_detection *d = NULL;
    *n_out = 0;
    if (hy_context_create(m, NULL, &c) || hy_image_load(hy_test_asset("images/bus.jpg"), &img) ||
        hy_detect(c, img, NULL, &r)) {
        fprintf(stderr, "detect: %s\n", hy_last_error());
        goto done;
    }
    *n_out = hy_result_count(r);
    d = calloc(*n_out + 1, sizeof *d);
    for (size_t i = 0; d && i < *n_out; i++) d[i] = *hy_result_get(r, i);
done:
    hy_result_free(r);
    hy_image_free(img);
    hy_context_free(c);
    return d;
}

/* Bit-exact equality of two detection lists. */
static int same_dets(const hy_detection *a, size_t na, const hy_detection *b, size_t nb) {
    if (na != nb || !a || !b) return 0;
    for (size_t i = 0; i < na; i++)
        if (memcmp(&a[i].x1, &b[i].x1, 5 * sizeof(float)) || a[i].class_id != b[i].class_id) return 0;
    return 1;
}

static int count_group(const hy__tmodel *tm, int g) {
    int n = 0;
    for (int i = 0; i < tm->n_st; i++) n += tm->st[i].group == g;
    return n;
}

HY_TEST(loads_yolov8n_pt_as_ultralytics_state_dict) {
    const char *pt = hy_test_asset("weights/yolov8n.pt"), *ref = hy_test_asset(REF_GRADS);
    hy__tmodel *tm = NULL;
    ASSERT_OK(hy__tmodel_load(pt, 0, NULL, 0, &tm));
    ASSERT_EQ(tm->cfg.nc, 80);
    ASSERT_STREQ(tm->names[0], "person");
    ASSERT_STREQ(tm->names[79], "toothbrush");
    /* 57 Conv (conv.weight + bn.weight + bn.bias), 6 Conv2d (weight + bias), the DFL conv */
    int params = tm->n_st - count_group(tm, HY_PG_BUFFER), trainable = 0;
    for (int i = 0; i < tm->n_st; i++) trainable += tm->st[i].trainable;
    ASSERT_EQ(params, 184);
    ASSERT_EQ(count_group(tm, HY_PG_BUFFER), 2 * 57);
    /* Ultralytics 8.0.172 prints for yolov8n "57 weight(decay=0.0), 64 weight(decay=...), 63
     * bias(decay=0.0)": g0 holds the DFL conv too (requires_grad False, never updated) */
    ASSERT_EQ(count_group(tm, HY_PG_BN_WEIGHT), 57);
    ASSERT_EQ(count_group(tm, HY_PG_WEIGHT), 64);
    ASSERT_EQ(count_group(tm, HY_PG_BIAS), 63);
    /* exactly the reference's gradient list (183: every parameter but the DFL conv), in order,
     * same shapes; groups by Ultralytics' rule re-derived from the reference names */
    hy__st_file *rf = NULL;
    ASSERT_OK(hy__st_open(ref, 0, &rf));
    ASSERT_EQ(trainable, 183);
    ASSERT_EQ((int)hy__st_count(rf), trainable);
    size_t j = 0;
    int ref_g[3] = {1, 0, 0}; /* + the DFL conv (g0) the reference lacks */
    for (int i = 0; i < tm->n_st; i++) {
        const hy__tstate *s = &tm->st[i];
        if (!s->trainable) continue;
        const hy__wtensor *r = hy__st_tensor(rf, j++);
        ASSERT_STREQ(s->spec->name, r->name);
        ASSERT_EQ(s->spec->ndim, r->ndim);
        for (int d = 0; d < r->ndim; d++) ASSERT_EQ(s->spec->shape[d], r->shape[d]);
        ASSERT_EQ(s->numel, r->numel);
        size_t nl = strlen(r->name);
        ref_g[strstr(r->name, "bias") ? 2 : nl > 10 && !strcmp(r->name + nl - 10, ".bn.weight") ? 1 : 0]++;
    }
    ASSERT_EQ(ref_g[0], count_group(tm, HY_PG_WEIGHT));
    ASSERT_EQ(ref_g[1], count_group(tm, HY_PG_BN_WEIGHT));
    ASSERT_EQ(ref_g[2], count_group(tm, HY_PG_BIAS));
    hy__st_close(rf);
    int dfl = hy__tmodel_find(tm, "model.22.dfl.conv.weight");
    ASSERT_TRUE(dfl >= 0);
    ASSERT_EQ(tm->st[dfl].trainable, 0);
    ASSERT_EQ(tm->st[dfl].group, HY_PG_WEIGHT);
    ASSERT_EQ(tm->st[hy__tmodel_find(tm, "model.21.m.0.cv2.bn.running_var")].layer, 21);
    /* every value (and num_batches_tracked) as the checkpoint has it; 64-byte alignment */
    ASSERT_EQ((uintptr_t)tm->data % 64, 0);
    ASSERT_EQ((uintptr_t)tm->grad % 64, 0);
    hy__wfile *f = NULL;
    ASSERT_OK(hy__wfile_open(pt, 0, &f));
    const hy__wsource *src = hy__wfile_source(f);
    float *tmp = malloc(4 * 1024 * 1024);
    int seen = 0, nbt_seen = 0;
    for (size_t k = 0; k < src->n_tensors; k++) {
        const hy__wtensor *t = &src->tensors[k];
        int i = hy__tmodel_find(tm, t->name);
        if (i >= 0) {
            ASSERT_EQ(tm->st[i].offset % 16, 0);
            ASSERT_OK(hy__wtensor_to_f32(t, tmp));
            ASSERT_EQ(memcmp(tmp, hy__tmodel_tensor(tm, i), t->numel * sizeof(float)), 0);
            for (size_t e = 0; e < t->numel; e++) ASSERT_TRUE(hy__tmodel_grad(tm, i)[e] == 0.f);
            seen++;
        } else if (t->dtype == HY_DTYPE_I64) {
            int c = -1;
            for (int q = 0; q < tm->spec->n_convs; q++) {
                const char *pre = tm->spec->convs[q].prefix;
                size_t pl = strlen(pre);
                if (tm->bn_w[q] >= 0 && !strncmp(t->name, pre, pl) && !strcmp(t->name + pl, ".bn.num_batches_tracked"))
                    c = q;
            }
            ASSERT_TRUE(c >= 0);
            int64_t v;
            memcpy(&v, t->data, 8);
            ASSERT_EQ(tm->nbt[c], v);
            nbt_seen++;
        }
    }
    free(tmp);
    hy__wfile_close(f);
    ASSERT_EQ(seen, tm->n_st);
    ASSERT_EQ(nbt_seen, 57);
    /* the conv maps: conv 0 is model.0 */
    ASSERT_STREQ(tm->st[tm->conv_w[0]].spec->name, "model.0.conv.weight");
    ASSERT_STREQ(tm->st[tm->bn_rv[0]].spec->name, "model.0.bn.running_var");
    ASSERT_EQ(tm->conv_b[0], -1);
    hy__tmodel_free(tm);
}

HY_TEST(round_trips_to_identical_detections) {
    const char *pt = hy_test_asset("weights/yolov8n.pt");
    const char *saved = hy_test_tmp("tm_last.safetensors"), *fused = hy_test_tmp("tm_fused.safetensors");
    hy_model *ref = NULL, *m = NULL;
    hy__tmodel *tm = NULL;
    size_t n0 = 0, n1 = 0;
    ASSERT_OK(hy_model_load(pt, NULL, &ref));
    hy_detection *d0 = detect_bus(ref, &n0);
    hy_model_free(ref);
    ASSERT_TRUE(n0 >= 4); /* bus.jpg: a bus and people */
    ASSERT_OK(hy__tmodel_load(pt, 0, NULL, 0, &tm));
    /* as a source -> inference model (BN folded by the loader) */
    ASSERT_OK(hy__tmodel_to_model(tm, NULL, NULL, &m));
    ASSERT_STREQ(hy_model_class_name(m, 5), "bus");
    hy_detection *d1 = detect_bus(m, &n1);
    hy_model_free(m);
    ASSERT_TRUE(same_dets(d0, n0, d1, n1));
    free(d1);
    /* saved (written twice: a checkpoint is rewritten every epoch) -> hy_model_load */
    ASSERT_OK(hy__tmodel_save(tm, tm->data, saved, "{\"epoch\":3,\"hotyolo.train\":\"last\"}"));
    ASSERT_OK(hy__tmodel_save(tm, NULL, saved, "{\"epoch\":4,\"hotyolo.train\":\"last\"}"));
    hy__st_file *sf = NULL;
    ASSERT_OK(hy__st_open(saved, 1, &sf));
    ASSERT_STREQ(hy__st_meta(sf, "epoch"), "4");
    ASSERT_STREQ(hy__st_meta(sf, "hotyolo.fused"), "false");
    ASSERT_STREQ(hy__st_meta(sf, "hotyolo.nc"), "80");
    ASSERT_EQ((int)hy__st_count(sf), tm->spec->n_tensors);
    ASSERT_EQ(hy__st_find(sf, "model.0.bn.num_batches_tracked")->dtype, HY_DTYPE_I64);
    hy__st_close(sf);
    ASSERT_OK(hy_model_load(saved, NULL, &m));
    ASSERT_STREQ(hy_model_format(m), "safetensors");
    d1 = detect_bus(m, &n1);
    hy_model_free(m);
    ASSERT_TRUE(same_dets(d0, n0, d1, n1));
    free(d1);
    /* hotyolo convert --fuse of the saved file: the inference form, without loss */
    hy_convert_params cp = hy_convert_default_params();
    cp.fuse = 1;
    ASSERT_OK(hy_convert(saved, fused, &cp));
    ASSERT_OK(hy_model_load(fused, NULL, &m));
    d1 = detect_bus(m, &n1);
    hy_model_free(m);
    ASSERT_TRUE(same_dets(d0, n0, d1, n1));
    free(d1);
    /* and the saved file loads back into an equal trainable model */
    hy__tmodel *tm2 = NULL;
    ASSERT_OK(hy__tmodel_load(saved, 0, NULL, 0, &tm2));
    ASSERT_EQ(tm2->n_floats, tm->n_floats);
    ASSERT_EQ(memcmp(tm2->data, tm->data, tm->n_floats * sizeof(float)), 0);
    ASSERT_EQ(memcmp(tm2->nbt, tm->nbt, (size_t)tm->spec->n_convs * sizeof(int64_t)), 0);
    ASSERT_STREQ(tm2->names[79], "toothbrush");
    hy__tmodel_free(tm2);
    /* a fused source: BN becomes identity on the folded bias (weight sqrt(1 + eps), mean 0,
     * var 1), so re-folding gives the folded weights again within float rounding */
    ASSERT_OK(hy__tmodel_load(fused, 0, NULL, 0, &tm2));
    ASSERT_NEAR(hy__tmodel_tensor(tm2, tm2->bn_w[3])[0], sqrtf(1.001f), 1e-7);
    ASSERT_EQ(hy__tmodel_tensor(tm2, tm2->bn_rv[3])[0], 1.f);
    ASSERT_OK(hy__tmodel_to_model(tm2, NULL, NULL, &m));
    d1 = detect_bus(m, &n1);
    hy_model_free(m);
    ASSERT_EQ(n1, n0);
    for (size_t i = 0; i < n0 && i < n1; i++) {
        ASSERT_EQ(d1[i].class_id, d0[i].class_id);
        ASSERT_NEAR(d1[i].x1, d0[i].x1, 0.05);
        ASSERT_NEAR(d1[i].y2, d0[i].y2, 0.05);
        ASSERT_NEAR(d1[i].confidence, d0[i].confidence, 1e-4);
    }
    free(d1);
    hy__tmodel_free(tm2);
    /* metadata: hotyolo's own keys and non-objects are refused, the file left as it was */
    ASSERT_ERR(hy__tmodel_save(tm, NULL, saved, "{\"hotyolo.nc\":\"3\"}"), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "hotyolo.nc");
    ASSERT_ERR(hy__tmodel_save(tm, NULL, saved, "[1,2]"), HY_ERR_INVALID_ARG);
    ASSERT_OK(hy__st_open(saved, 1, &sf));
    ASSERT_STREQ(hy__st_meta(sf, "epoch"), "4");
    hy__st_close(sf);
    free(d0);
    hy__tmodel_free(tm);
    unlink(saved);
    unlink(fused);
}

HY_TEST(freeze_10_stops_model_0_to_9_and_the_dfl) {
    hy__tmodel *tm = NULL;
    ASSERT_OK(hy__tmodel_load(hy_test_asset("weights/yolov8n.pt"), 0, NULL, 0, &tm));
    hy__tmodel_set_freeze(tm, 10);
    ASSERT_EQ(tm->freeze, 10);
    int frozen = 0;
    for (int i = 0; i < tm->n_st; i++) {
        const hy__tstate *s = &tm->st[i];
        const char *nm = s->spec->name;
        if (s->group == HY_PG_BUFFER) {
            ASSERT_EQ(s->trainable, 0);
            continue;
        }
        /* Ultralytics: any of "model.0." .. "model.9." or ".dfl" in the name */
        int want_frozen = strstr(nm, ".dfl") != NULL;
        char pre[16];
        for (int l = 0; l < 10; l++) {
            snprintf(pre, sizeof pre, "model.%d.", l);
            if (strstr(nm, pre)) want_frozen = 1;
        }
        ASSERT_EQ(s->trainable, !want_frozen);
        frozen += want_frozen;
    }
    /* layers 0-9 of yolov8n: 27 Conv (3 parameters each: 5 Conv, C2f 4 + 6 + 6 + 4, SPPF 2)
     * + the DFL conv */
    ASSERT_EQ(frozen, 3 * 27 + 1);
    hy__tmodel_set_freeze(tm, 0);
    int trainable = 0;
    for (int i = 0; i < tm->n_st; i++) trainable += tm->st[i].trainable;
    ASSERT_EQ(trainable, 183);
    /* zero_grad clears every gradient */
    for (size_t i = 0; i < tm->n_floats; i++) tm->grad[i] = 1.f;
    hy__tmodel_zero_grad(tm);
    for (size_t i = 0; i < tm->n_floats; i++) ASSERT_TRUE(tm->grad[i] == 0.f);
    hy__tmodel_free(tm);
}

HY_TEST(transfer_to_three_classes_initialises_the_class_convs) {
    char *names[3] = {"red", "white", "platelet"};
    hy__tmodel *tm = NULL;
    const char *pt = hy_test_asset("weights/yolov8n.pt");
    ASSERT_ERR(hy__tmodel_load(pt, 3, names, 0, &tm), HY_ERR_MISMATCH); /* strict: nc differs */
    ASSERT_OK(hy__tmodel_load(pt, 3, names, 1, &tm));
    ASSERT_EQ(tm->cfg.nc, 3);
    ASSERT_STREQ(tm->names[2], "platelet");
    /* initialised: the class branches model.22.cv3.i: their width is c3 = max(ch[0],
     * min(nc, 100)), 80 for nc 80 but 64 for nc 3, so per level Conv .0 and .1 (conv.weight
     * + 4 BN tensors; num_batches_tracked is a scalar and fits) and Conv2d .2 (weight, bias) */
    const hy__load_list *ini = &tm->report.lists[HY_LOAD_INITIALIZED];
    ASSERT_EQ((int)ini->n, 3 * (5 + 5 + 2));
    for (size_t i = 0; i < ini->n; i++) ASSERT_TRUE(strncmp(ini->items[i].name, "model.22.cv3.", 13) == 0);
    ASSERT_EQ((int)tm->report.lists[HY_LOAD_IGNORED].n, 36);
    /* transferred: everything else (the box branches cv2 included) */
    const hy__load_list *tr = &tm->report.lists[HY_LOAD_TRANSFERRED];
    ASSERT_EQ((int)tr->n, tm->spec->n_tensors - 36);
    int box = 0;
    for (size_t i = 0; i < tr->n; i++) box += strncmp(tr->items[i].name, "model.22.cv2.", 13) == 0;
    ASSERT_EQ(box, 3 * (2 * 6 + 2)); /* per level: 2 Conv (6 tensors each) + Conv2d (2) */
    /* a transferred tensor has the checkpoint's values; an initialised BN is the identity */
    hy__tmodel *full = NULL;
    ASSERT_OK(hy__tmodel_load(pt, 0, NULL, 0, &full));
    const char *rv = "model.22.cv2.2.1.bn.running_var";
    int a = hy__tmodel_find(tm, rv), b = hy__tmodel_find(full, rv);
    ASSERT_EQ(memcmp(hy__tmodel_tensor(tm, a), hy__tmodel_tensor(full, b), 64 * sizeof(float)), 0);
    hy__tmodel_free(full);
    int g = hy__tmodel_find(tm, "model.22.cv3.1.0.bn.weight");
    int v = hy__tmodel_find(tm, "model.22.cv3.1.0.bn.running_var");
    int m = hy__tmodel_find(tm, "model.22.cv3.1.0.bn.running_mean");
    for (int k = 0; k < 64; k++) {
        ASSERT_EQ(hy__tmodel_tensor(tm, g)[k], 1.f);
        ASSERT_EQ(hy__tmodel_tensor(tm, v)[k], 1.f);
        ASSERT_EQ(hy__tmodel_tensor(tm, m)[k], 0.f);
    }
    /* Detect.bias_init: class bias log(5 / nc / (640 / s)^2) per stride s */
    static const int strides[3] = {8, 16, 32};
    for (int l = 0; l < 3; l++) {
        char nm[64];
        snprintf(nm, sizeof nm, "model.22.cv3.%d.2.bias", l);
        int i = hy__tmodel_find(tm, nm);
        ASSERT_TRUE(i >= 0);
        float want = (float)log(5.0 / 3 / ((640.0 / strides[l]) * (640.0 / strides[l])));
        for (int c = 0; c < 3; c++) ASSERT_EQ(hy__tmodel_tensor(tm, i)[c], want);
        /* weight: PyTorch default U(+-1 / sqrt(fan_in)), fan_in = 64 */
        snprintf(nm, sizeof nm, "model.22.cv3.%d.2.weight", l);
        i = hy__tmodel_find(tm, nm);
        float mx = 0;
        for (size_t k = 0; k < tm->st[i].numel; k++) mx = fmaxf(mx, fabsf(hy__tmodel_tensor(tm, i)[k]));
        ASSERT_TRUE(mx <= 0.125f && mx > 0.1f);
    }
    hy__tmodel_free(tm);
}

HY_TEST(strict_load_names_the_misshaped_tensor) {
    const char *pt = hy_test_asset("weights/yolov8n.pt");
    const char *bad = hy_test_tmp("tm_bad.safetensors");
    hy__tmodel *tm = NULL;
    ASSERT_OK(hy__tmodel_load(pt, 0, NULL, 0, &tm));
    hy__wsource src;
    ASSERT_OK(hy__tmodel_as_source(tm, NULL, &src));
    /* model.4.m.1.cv2.conv.weight 32x32x3x3 stored as 16x32x3x3 */
    hy__wtensor *t = NULL;
    for (size_t i = 0; i < src.n_tensors; i++)
        if (!strcmp(src.tensors[i].name, "model.4.m.1.cv2.conv.weight")) t = &src.tensors[i];
    ASSERT_TRUE(t != NULL);
    t->shape[0] /= 2;
    t->numel /= 2;
    ASSERT_OK(hy__st_write_source(bad, &src, NULL));
    hy__tmodel_source_free(&src);
    hy__tmodel *tm2 = NULL;
    ASSERT_ERR(hy__tmodel_load(bad, 0, NULL, 0, &tm2), HY_ERR_MISMATCH);
    ASSERT_CONTAINS(hy_last_error(), "model.4.m.1.cv2.conv.weight: expected 32x32x3x3, file has 16x32x3x3");
    ASSERT_TRUE(tm2 == NULL);
    /* transfer takes the rest and initialises that one */
    ASSERT_OK(hy__tmodel_load(bad, 0, NULL, 1, &tm2));
    ASSERT_EQ((int)tm2->report.lists[HY_LOAD_INITIALIZED].n, 1);
    ASSERT_STREQ(tm2->report.lists[HY_LOAD_INITIALIZED].items[0].name, "model.4.m.1.cv2.conv.weight");
    hy__tmodel_free(tm2);
    hy__tmodel_free(tm);
    unlink(bad);
}

HY_TEST(create_is_seeded_pytorch_default_init) {
    hy__arch_cfg cfg;
    ASSERT_OK(hy__arch_table[0]->cfg_for_variant("n", 2, &cfg));
    hy__tmodel *a = NULL, *b = NULL, *c = NULL;
    ASSERT_OK(hy__tmodel_create(&cfg, NULL, 7, &a));
    ASSERT_OK(hy__tmodel_create(&cfg, NULL, 7, &b));
    ASSERT_OK(hy__tmodel_create(&cfg, NULL, 8, &c));
    ASSERT_EQ(memcmp(a->data, b->data, a->n_floats * sizeof(float)), 0);
    ASSERT_TRUE(memcmp(a->data, c->data, a->n_floats * sizeof(float)) != 0);
    ASSERT_STREQ(a->names[1], "class1");
    /* model.0.conv.weight (16, 3, 3, 3): U(+-1/sqrt(27)); BN identity */
    const float *w = hy__tmodel_tensor(a, a->conv_w[0]);
    float mx = 0;
    for (size_t k = 0; k < a->st[a->conv_w[0]].numel; k++) mx = fmaxf(mx, fabsf(w[k]));
    ASSERT_TRUE(mx <= 1 / sqrtf(27.f) && mx > 0.8f / sqrtf(27.f));
    ASSERT_EQ(hy__tmodel_tensor(a, a->bn_w[0])[5], 1.f);
    ASSERT_EQ(hy__tmodel_tensor(a, a->bn_rv[0])[5], 1.f);
    ASSERT_EQ(hy__tmodel_tensor(a, a->bn_b[0])[5], 0.f);
    int dfl = hy__tmodel_find(a, "model.22.dfl.conv.weight");
    ASSERT_EQ(hy__tmodel_tensor(a, dfl)[15], 15.f);
    ASSERT_EQ(hy__tmodel_tensor(a, hy__tmodel_find(a, "model.22.cv2.1.2.bias"))[0], 1.f);
    hy__tmodel_free(a);
    hy__tmodel_free(b);
    hy__tmodel_free(c);
}

HY_TEST_MAIN()
