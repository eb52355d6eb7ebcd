/* hotyolo export (include/hotyolo/export.h): .pt read back by our own reader with identical
 * tensors; ONNX loaded back by our ONNX reader and run by ONNX Runtime (node, when
 * scripts/ort-setup.sh can provide it) against hotyolo's raw output; nc != 80 too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotyolo.h"
#include "hotyolo/export.h"
#include "hy_test.h"
#include "io/pt.h"

/* Every tensor of a (name, shape, dtype, bytes) equal to b's, same count and order. */
static int same_tensors(const hy__pt_file *a, const hy__pt_file *b) {
    if (a->n_tensors != b->n_tensors) {
        fprintf(stderr, "tensor count %zu vs %zu\n", a->n_tensors, b->n_tensors);
        return 0;
    }
    for (size_t i = 0; i < a->n_tensors; i++) {
        const hy__pt_tensor *x = &a->tensors[i], *y = hy__pt_find(b, x->name);
        if (!y || y->dtype != x->dtype || y->ndim != x->ndim || y->numel != x->numel ||
            memcmp(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->ndim) ||
            memcmp(x->data, y->data, x->numel * hy_dtype_size(x->dtype))) {
            fprintf(stderr, "tensor %s differs\n", x->name);
            return 0;
        }
    }
    return 1;
}

HY_TEST(export_pt_half_reads_back_identical) {
    const char *src = hy_test_asset("weights/yolov8n.pt");
    const char *out = hy_test_tmp("n_half.pt");
    unlink(out);
    hy_export_params p = hy_export_default_params();
    p.half = 1; /* the checkpoint's own dtype: float16 */
    ASSERT_OK(hy_export(src, out, &p));
    hy__pt_file *a = NULL, *b = NULL;
    ASSERT_OK(hy__pt_load(src, &a));
    ASSERT_OK(hy__pt_load(out, &b));
    ASSERT_TRUE(same_tensors(a, b));
    ASSERT_STREQ(b->source, "state_dict");
    ASSERT_EQ(b->nc, 80);
    ASSERT_STREQ(b->scale, "n");
    ASSERT_EQ(b->n_names, 80);
    ASSERT_STREQ(b->names[5], "bus");
    hy__pt_free(a);
    hy__pt_free(b);
    /* not overwritten without overwrite, replaced with it */
    p.half = 0;
    ASSERT_ERR(hy_export(src, out, &p), HY_ERR_IO);
    ASSERT_CONTAINS(hy_last_error(), "exists");
    p.overwrite = 1;
    ASSERT_OK(hy_export(src, out, &p));
    ASSERT_OK(hy__pt_load(out, &b));
    ASSERT_EQ(b->tensors[0].dtype, HY_DTYPE_F32);
    hy__pt_free(b);
}

static float *forward(const char *weights, const float *x, int side, size_t n_out) {
    hy_context *c = NULL;
    hy_context_params cp = hy_context_default_params();
    cp.prepare = 0;
    if (hy_context_load(weights, NULL, &cp, &c) != HY_OK) {
        fprintf(stderr, "%s: %s\n", weights, hy_last_error());
        return NULL;
    }
    float *y = malloc(n_out * sizeof *y);
    if (y && hy_model_forward(c, x, 1, side, side, y, n_out) != HY_OK) {
        fprintf(stderr, "forward %s: %s\n", weights, hy_last_error());
        free(y);
        y = NULL;
    }
    hy_context_free(c);
    return y;
}

static double max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* Max abs difference of (4 + nc, A) outputs: box rows (input pixels) and score rows apart.
 * Tolerance as tests/test_yolov8_golden.c: boxes 0.01 px, scores 1e-3. */
static int close_outputs(const char *what, const float *a, const float *b, size_t n_out) {
    size_t A = 8400, box = 4 * A;
    double eb = max_abs(a, b, box), es = max_abs(a + box, b + box, n_out - box);
    printf("  %s: max abs boxes %.3g px, scores %.3g\n", what, eb, es);
    return eb <= 0.01 && es <= 1e-3;
}

/* ONNX Runtime's output0 for model on the .npy input, via node; NULL (skip printed) when
 * onnxruntime-node is not available. */
static float *ort_run(const char *model, const char *npy, size_t n_out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/ort-setup.sh' 2>/dev/null", HY_SOURCE_DIR);
    FILE *f = popen(cmd, "r");
    char dir[1024] = "";
    if (f) {
        if (!fgets(dir, sizeof dir, f)) dir[0] = 0;
        if (pclose(f) != 0) dir[0] = 0;
    }
    dir[strcspn(dir, "\n")] = 0;
    if (!dir[0]) {
        printf("  skip: onnxruntime-node unavailable (scripts/ort-setup.sh failed)\n");
        return NULL;
    }
    const char *outp = hy_test_tmp("ort_out.bin");
    unlink(outp);
    static const char js[] =
        "const fs=require('fs'),ort=require('onnxruntime-node');"
        "const [m,i,o]=process.argv.slice(1);"
        "const b=fs.readFileSync(i),h=b.readUInt16LE(8);"
        "const x=new Float32Array(b.buffer.slice(b.byteOffset+10+h,b.byteOffset+b.length));"
        "const s=Math.round(Math.sqrt(x.length/3));"
        "ort.InferenceSession.create(m,{executionProviders:['cpu']}).then(S=>"
        "S.run({images:new ort.Tensor('float32',x,[1,3,s,s])})).then(r=>{const y=r.output0.data;"
        "fs.writeFileSync(o,Buffer.from(y.buffer,y.byteOffset,y.byteLength));})"
        ".catch(e=>{console.error(String(e));process.exit(1);});";
    snprintf(cmd, sizeof cmd, "NODE_PATH='%s/node_modules' node -e \"%s\" '%s' '%s' '%s'", dir, js, model, npy, outp);
    if (system(cmd) != 0) {
        fprintf(stderr, "node/onnxruntime failed on %s\n", model);
        return NULL;
    }
    FILE *o = fopen(outp, "rb");
    float *y = malloc(n_out * sizeof *y + 4);
    size_t got = o && y ? fread(y, sizeof *y, n_out + 1, o) : 0;
    if (o) fclose(o);
    if (got != n_out) {
        fprintf(stderr, "ort output: %zu floats, expected %zu\n", got, n_out);
        free(y);
        return NULL;
    }
    return y;
}

/* Exports src to ONNX; hotyolo (the exported file) and ONNX Runtime agree with hotyolo (src). */
static void check_onnx(const char *src, const char *name, int nc, const float *ref) {
    const char *npy = hy_test_asset("reference/bus_letterbox_640_input.npy");
    char out[1024];
    snprintf(out, sizeof out, "%s", hy_test_tmp(name));
    unlink(out);
    hy_export_params p = hy_export_default_params();
    p.format = HY_EXPORT_ONNX;
    p.imgsz = 640;
    ASSERT_OK(hy_export(src, out, &p));
    long long shape[8];
    int nd;
    size_t nx;
    float *x = hy_test_npy_load(npy, shape, &nd, &nx);
    ASSERT_TRUE(x != NULL);
    size_t n_out = (size_t)(4 + nc) * 8400;
    float *y_src = forward(src, x, 640, n_out), *y_onnx = forward(out, x, 640, n_out);
    ASSERT_TRUE(y_src && y_onnx);
    char what[160];
    snprintf(what, sizeof what, "%s: hotyolo(export) vs hotyolo(source)", name);
    ASSERT_TRUE(close_outputs(what, y_src, y_onnx, n_out));
    if (ref) {
        snprintf(what, sizeof what, "%s: hotyolo(source) vs Ultralytics reference", name);
        close_outputs(what, y_src, ref, n_out);
    }
    float *y_ort = ort_run(out, npy, n_out);
    if (y_ort) {
        snprintf(what, sizeof what, "%s: ONNX Runtime(export) vs hotyolo(source)", name);
        ASSERT_TRUE(close_outputs(what, y_src, y_ort, n_out));
        if (ref) {
            snprintf(what, sizeof what, "%s: ONNX Runtime(export) vs Ultralytics reference", name);
            ASSERT_TRUE(close_outputs(what, y_ort, ref, n_out));
        }
    }
    free(y_ort);
    free(y_src);
    free(y_onnx);
    free(x);
}

HY_TEST(export_onnx_matches_hotyolo_and_onnxruntime) {
    const char *refp = hy_test_asset("reference/bus_letterbox_640_output0.npy");
    long long shape[8];
    int nd;
    size_t n;
    float *ref = hy_test_npy_load(refp, shape, &nd, &n);
    ASSERT_TRUE(ref && n == 84 * 8400);
    check_onnx(hy_test_asset("weights/yolov8n.pt"), "n.onnx", 80, ref);
    free(ref);
}

/* A 3-class unfused safetensors (yolov8n transferred, new head): .pt and .onnx. */
HY_TEST(export_three_classes) {
    const char *src = hy_test_asset("weights/yolov8n.pt");
    const char *st = hy_test_tmp("n3.safetensors");
    unlink(st);
    hy_convert_params cp = hy_convert_default_params();
    cp.load.mode = HY_LOAD_TRANSFER;
    cp.load.nc = 3;
    ASSERT_OK(hy_convert(src, st, &cp));
    const char *pt = hy_test_tmp("n3.pt");
    unlink(pt);
    hy_export_params p = hy_export_default_params();
    ASSERT_OK(hy_export(st, pt, &p));
    hy__pt_file *b = NULL;
    ASSERT_OK(hy__pt_load(pt, &b));
    ASSERT_EQ(b->nc, 3);
    const hy__pt_tensor *cls = hy__pt_find(b, "model.22.cv3.0.2.weight");
    ASSERT_TRUE(cls && cls->shape[0] == 3 && cls->dtype == HY_DTYPE_F32);
    ASSERT_TRUE(hy__pt_find(b, "model.0.bn.running_var") != NULL); /* unfused: BN kept */
    hy__pt_free(b);
    check_onnx(st, "n3.onnx", 3, NULL);
}

HY_TEST(export_bad_args) {
    hy_export_format f;
    ASSERT_ERR(hy_export_format_parse("tflite", &f), HY_ERR_INVALID_ARG);
    ASSERT_CONTAINS(hy_last_error(), "tflite");
    hy_export_params p = hy_export_default_params();
    p.imgsz = 100;
    ASSERT_ERR(hy_export("a", "b", &p), HY_ERR_INVALID_ARG);
}

HY_TEST_MAIN()
