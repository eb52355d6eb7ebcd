/* End-to-end detections vs what Ultralytics 8.0.172 computes (shared/assets/reference):
 * every image of yolov8n_predict_images.jsonl and yolov8n_predict_coco128.jsonl through
 * hy_detect with default parameters, and the CLI's --json output on the 10 images.
 *
 * Matching (the project's core tolerance): greedy over reference detections in
 * descending confidence; a match has the same class, IoU >= 0.95 and confidence within
 * 0.02. A detection (ours or reference) left unmatched is tolerated only when its
 * confidence is within 0.02 of the 0.25 threshold (< 0.27): it may fall either side. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "hy_test.h"

/* Core tolerance; the int8 ONNX export is checked looser (IoU >= 0.9, as its issue says). */
static double IOU_MIN = 0.95, CONF_TOL = 0.02;
#define CONF_BORDER (0.25 + CONF_TOL)
#define MAX_DETS 400
#define FAIL_TEXT 8192

typedef struct det {
    int cls;
    double conf;
    double box[4]; /* x1 y1 x2 y2, original image pixels */
} det;

typedef struct ref_image {
    char image[512];
    int width, height;
    det dets[MAX_DETS];
    int n;
} ref_image;

static hy_context *g_ctx;
static int g_images, g_images_ok;

/* One context (owning its model) for the default-weights cases, nothing prepared: shapes are
 * planned on demand as the images come. */
static hy_context *model(void) {
    if (!g_ctx) {
        hy_context_params cp = hy_context_default_params();
        if (hy_context_load(hy_test_asset("weights/yolov8n.pt"), NULL, &cp, &g_ctx) != HY_OK) {
            fprintf(stderr, "  cannot load weights/yolov8n.pt: %s\n", hy_last_error());
            g_ctx = NULL;
        }
    }
    return g_ctx;
}

static double iou(const double *a, const double *b) {
    double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]);
    double ih = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    double inter = iw * ih;
    double ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return ua > 0 ? inter / ua : 0;
}

static int json_num(json_object *o, double *v) {
    if (!o || !(json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int)))
        return -1;
    *v = json_object_get_double(o);
    return 0;
}

/* Parses one record {"image","width","height","detections":[...]} (reference or CLI);
 * err names the problem. names_out (optional) receives each detection's class_name. */
static int parse_record(const char *line, ref_image *r, char names_out[][32], char *err,
                        size_t errcap) {
    json_object *o = json_tokener_parse(line), *v, *dets;
    memset(r, 0, sizeof *r);
    if (!o || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errcap, "not a JSON object: %.80s", line);
        json_object_put(o);
        return -1;
    }
    if (!json_object_object_get_ex(o, "image", &v) || !json_object_is_type(v, json_type_string))
        goto bad;
    snprintf(r->image, sizeof r->image, "%s", json_object_get_string(v));
    if (!json_object_object_get_ex(o, "width", &v) || !json_object_is_type(v, json_type_int)) goto bad;
    r->width = json_object_get_int(v);
    if (!json_object_object_get_ex(o, "height", &v) || !json_object_is_type(v, json_type_int)) goto bad;
    r->height = json_object_get_int(v);
    if (!json_object_object_get_ex(o, "detections", &dets) || !json_object_is_type(dets, json_type_array))
        goto bad;
    size_t n = json_object_array_length(dets);
    if (n > MAX_DETS) goto bad;
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(dets, i), *box, *x;
        det *e = &r->dets[i];
        if (!json_object_object_get_ex(d, "class_id", &x) || !json_object_is_type(x, json_type_int)) goto bad;
        e->cls = json_object_get_int(x);
        if (!json_object_object_get_ex(d, "class_name", &x) || !json_object_is_type(x, json_type_string))
            goto bad;
        if (names_out) snprintf(names_out[i], 32, "%s", json_object_get_string(x));
        if (!json_object_object_get_ex(d, "confidence", &x) || json_num(x, &e->conf)) goto bad;
        if (!json_object_object_get_ex(d, "box", &box) || !json_object_is_type(box, json_type_array) ||
            json_object_array_length(box) != 4)
            goto bad;
        for (int k = 0; k < 4; k++)
            if (json_num(json_object_array_get_idx(box, (size_t)k), &e->box[k])) goto bad;
    }
    r->n = (int)n;
    json_object_put(o);
    return 0;
bad:
    snprintf(err, errcap, "record does not have the reference shape: %.200s", line);
    json_object_put(o);
    return -1;
}

static const char *cname(int cls) {
    const char *n = g_ctx ? hy_model_class_name(hy_context_model(g_ctx), cls) : NULL;
    return n ? n : "?";
}

static void append(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(char *buf, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= FAIL_TEXT) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, FAIL_TEXT - len, fmt, ap);
    va_end(ap);
}

static void describe(char *buf, const char *who, const det *d) {
    append(buf, "    %s unmatched: %s (%d) %.4f [%.1f, %.1f, %.1f, %.1f]", who, cname(d->cls), d->cls,
           d->conf, d->box[0], d->box[1], d->box[2], d->box[3]);
}

/* Compares ours against ref; returns 1 if the image passes, else 0 with details in why. */
static int match(const ref_image *ref, const det *ours, int n_ours, char *why) {
    int used[MAX_DETS] = {0};
    int ok = 1;
    why[0] = '\0';
    for (int i = 0; i < ref->n; i++) {
        const det *rd = &ref->dets[i];
        int best = -1, near = -1;
        double best_iou = 0, near_iou = 0;
        for (int j = 0; j < n_ours; j++) {
            if (used[j] || ours[j].cls != rd->cls) continue;
            double v = iou(rd->box, ours[j].box);
            if (v > near_iou) near_iou = v, near = j;
            if (v >= IOU_MIN && fabs(ours[j].conf - rd->conf) <= CONF_TOL && v > best_iou)
                best_iou = v, best = j;
        }
        if (best >= 0) {
            used[best] = 1;
        } else if (rd->conf >= CONF_BORDER) {
            ok = 0;
            describe(why, "reference", rd);
            if (near >= 0)
                append(why, "; nearest ours: %.4f IoU %.3f [%.1f, %.1f, %.1f, %.1f]", ours[near].conf,
                       near_iou, ours[near].box[0], ours[near].box[1], ours[near].box[2],
                       ours[near].box[3]);
            append(why, "\n");
        }
    }
    for (int j = 0; j < n_ours; j++)
        if (!used[j] && ours[j].conf >= CONF_BORDER) {
            ok = 0;
            describe(why, "ours", &ours[j]);
            append(why, "\n");
        }
    return ok;
}

/* Runs every record of a reference file through hy_detect; returns failing images. */
static int run_reference_with(hy_context *m, const char *rel, int expect_lines, int *n_lines, const char *only) {
    FILE *f = fopen(hy_test_asset(rel), "r");
    static ref_image ref;
    static det ours[MAX_DETS];
    static char why[FAIL_TEXT];
    char err[512];
    char *line = NULL;
    size_t cap = 0;
    int failed = 0;
    *n_lines = 0;
    if (!m || !f) {
        if (f) fclose(f);
        fprintf(stderr, "  %s\n", !m ? "no model" : "cannot open reference file");
        return -1;
    }
    hy_detect_params dp = hy_detect_default_params();
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '\n') continue;
        ++*n_lines;
        g_images++;
        if (parse_record(line, &ref, NULL, err, sizeof err)) {
            fprintf(stderr, "  %s line %d: %s\n", rel, *n_lines, err);
            failed++;
            continue;
        }
        if (only && !strstr(only, ref.image)) {
            g_images--;
            continue;
        }
        hy_image *img = NULL;
        hy_result *r = NULL;
        if (hy_image_load(hy_test_asset(ref.image), &img) != HY_OK ||
            hy_detect(m, img, &dp, &r) != HY_OK) {
            fprintf(stderr, "  %s: %s\n", ref.image, hy_last_error());
            hy_image_free(img);
            failed++;
            continue;
        }
        int n = (int)hy_result_count(r);
        if (n > MAX_DETS) n = MAX_DETS;
        for (int i = 0; i < n; i++) {
            const hy_detection *d = hy_result_get(r, (size_t)i);
            ours[i] = (det){d->class_id, d->confidence, {d->x1, d->y1, d->x2, d->y2}};
        }
        int ok = match(&ref, ours, n, why);
        if (img->width != ref.width || img->height != ref.height) {
            ok = 0;
            snprintf(why, sizeof why, "    size %dx%d, reference %dx%d\n", img->width, img->height,
                     ref.width, ref.height);
        }
        if (ok)
            g_images_ok++;
        else {
            failed++;
            fprintf(stderr, "  MISMATCH %s (%d ours, %d reference):\n%s", ref.image, n, ref.n, why);
        }
        hy_result_free(r);
        hy_image_free(img);
    }
    free(line);
    fclose(f);
    if (*n_lines != expect_lines)
        fprintf(stderr, "  %s: %d records, expected %d\n", rel, *n_lines, expect_lines);
    return failed;
}

static int run_reference(const char *rel, int expect_lines, int *n_lines) {
    return run_reference_with(model(), rel, expect_lines, n_lines, NULL);
}

HY_TEST(reference_images) {
    int n;
    int failed = run_reference("reference/yolov8n_predict_images.jsonl", 10, &n);
    ASSERT_EQ(n, 10);
    ASSERT_EQ(failed, 0);
}

HY_TEST(reference_coco128) {
    int n;
    int failed = run_reference("reference/yolov8n_predict_coco128.jsonl", 128, &n);
    ASSERT_EQ(n, 128);
    ASSERT_EQ(failed, 0);
}

/* The CLI's --json on the 10 images: reference shape + timings_ms, same detections. */
HY_TEST(cli_json_matches_reference) {
    static ref_image refs[10], got;
    static det ours[MAX_DETS];
    static char names[MAX_DETS][32];
    static char why[FAIL_TEXT];
    char err[512], cmd[16384];
    ASSERT_TRUE(model() != NULL);
    ASSERT_TRUE(access(HY_CLI_PATH, X_OK) == 0); /* build the hotyolo_cli target first */

    FILE *f = fopen(hy_test_asset("reference/yolov8n_predict_images.jsonl"), "r");
    ASSERT_TRUE(f != NULL);
    char *line = NULL;
    size_t cap = 0;
    int n_ref = 0;
    while (n_ref < 10 && getline(&line, &cap, f) > 0)
        if (parse_record(line, &refs[n_ref], NULL, err, sizeof err) == 0) n_ref++;
    fclose(f);
    ASSERT_EQ(n_ref, 10);

    const char *out = hy_test_tmp("cli.jsonl");
    size_t len = (size_t)snprintf(cmd, sizeof cmd, "'%s' detect '%s'", HY_CLI_PATH,
                                  hy_test_asset("weights/yolov8n.pt"));
    for (int i = 0; i < n_ref; i++)
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, " '%s'", hy_test_asset(refs[i].image));
    len += (size_t)snprintf(cmd + len, sizeof cmd - len, " --quiet --json '%s'", out);
    ASSERT_TRUE(len < sizeof cmd);
    int st = system(cmd);
    if (st != 0) free(line);
    ASSERT_EQ(st, 0);

    f = fopen(out, "r");
    if (!f) free(line);
    ASSERT_TRUE(f != NULL);
    int n = 0, bad = 0;
    while (getline(&line, &cap, f) > 0) {
        if (n >= n_ref) {
            n++;
            break;
        }
        if (parse_record(line, &got, names, err, sizeof err)) {
            fprintf(stderr, "  CLI line %d: %s\n", n + 1, err);
            bad++;
            n++;
            continue;
        }
        /* timings_ms: four non-negative numbers */
        json_object *o = json_tokener_parse(line), *t, *x;
        int t_ok = o && json_object_object_get_ex(o, "timings_ms", &t);
        const char *keys[] = {"decode", "preprocess", "inference", "postprocess"};
        for (int k = 0; t_ok && k < 4; k++) {
            double v;
            t_ok = json_object_object_get_ex(t, keys[k], &x) && json_num(x, &v) == 0 && v >= 0;
        }
        json_object_put(o);
        if (!t_ok) {
            fprintf(stderr, "  CLI line %d: missing or bad timings_ms\n", n + 1);
            bad++;
        }
        if (strcmp(got.image, hy_test_asset(refs[n].image)) != 0 || got.width != refs[n].width ||
            got.height != refs[n].height) {
            fprintf(stderr, "  CLI line %d: image/size '%s' %dx%d, expected '%s' %dx%d\n", n + 1,
                    got.image, got.width, got.height, refs[n].image, refs[n].width, refs[n].height);
            bad++;
        }
        for (int i = 0; i < got.n; i++) {
            ours[i] = got.dets[i];
            if (strcmp(names[i], cname(got.dets[i].cls)) != 0) {
                fprintf(stderr, "  CLI line %d: class_name '%s' for class %d\n", n + 1, names[i],
                        got.dets[i].cls);
                bad++;
            }
        }
        if (!match(&refs[n], ours, got.n, why)) {
            fprintf(stderr, "  CLI MISMATCH %s:\n%s", refs[n].image, why);
            bad++;
        }
        n++;
    }
    free(line);
    fclose(f);
    ASSERT_EQ(n, n_ref);
    ASSERT_EQ(bad, 0);
}

/* Every weights format hotyolo reads gives the reference detections on the 10 images. */
static void check_format(const char *path, int fuse, hy_dtype dtype, const char *only) {
    char out[512];
    hy_context *m = NULL;
    const char *load = path;
    if (fuse >= 0) { /* convert first, then load the safetensors */
        snprintf(out, sizeof out, "%s", hy_test_tmp("converted.safetensors"));
        unlink(out);
        hy_convert_params cp = hy_convert_default_params();
        cp.fuse = fuse;
        cp.dtype = dtype;
        ASSERT_OK(hy_convert(path, out, &cp));
        load = out;
    }
    hy_context_params cp = hy_context_default_params();
    ASSERT_OK(hy_context_load(load, NULL, &cp, &m));
    int n;
    int failed = run_reference_with(m, "reference/yolov8n_predict_images.jsonl", 10, &n, only);
    hy_context_free(m);
    if (fuse >= 0) unlink(out);
    ASSERT_EQ(n, 10);
    ASSERT_EQ(failed, 0);
}

HY_TEST(format_onnx_fp32) { check_format(hy_test_asset("weights/yolov8n.onnx"), -1, HY_DTYPE_COUNT, NULL); }
HY_TEST(format_pt_to_safetensors_unfused) {
    check_format(hy_test_asset("weights/yolov8n.pt"), 0, HY_DTYPE_COUNT, NULL);
}
HY_TEST(format_pt_to_safetensors_fused_f32) {
    check_format(hy_test_asset("weights/yolov8n.pt"), 1, HY_DTYPE_F32, NULL);
}
HY_TEST(format_onnx_to_safetensors) { check_format(hy_test_asset("weights/yolov8n.onnx"), 0, HY_DTYPE_COUNT, NULL); }
HY_TEST(format_onnx_int8_bus_zidane) {
    IOU_MIN = 0.9;
    CONF_TOL = 0.05;
    check_format(hy_test_asset("weights/yolov8n_int8.onnx"), -1, HY_DTYPE_COUNT, "images/bus.jpg images/zidane.jpg");
    IOU_MIN = 0.95;
    CONF_TOL = 0.02;
}

HY_TEST(summary) {
    hy_test_require_assets(); // without them every case above skipped
    printf("%d/%d images match\n", g_images_ok, g_images);
    hy_context_free(g_ctx);
    g_ctx = NULL;
    ASSERT_EQ(g_images_ok, g_images);
    ASSERT_TRUE(g_images > 0);
}

HY_TEST_MAIN()
