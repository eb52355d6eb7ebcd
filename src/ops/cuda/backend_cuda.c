/* CUDA backend: device discovery and the choice that runs a model on a GPU or falls back to
 * cpu. Its kernels (cuDNN convolutions with a fused SiLU epilogue, decode, FP16) are not in
 * this build yet: they are written and checked against `ref` on a machine with a GPU
 * (docs/cuda.md). Until then probe() says so, and every model asked to run on a GPU runs on
 * cpu with that reason (or fails with no_fallback). */
#include <stdio.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "ops/cuda/cuda_lib.h"

#define NO_KERNELS "this build's CUDA backend has no kernels yet (docs/cuda.md)"

static void versions(const hy__cuda_env *e, char *buf, size_t n) {
    const char *none = e->n_gpus ? "not found" : "not loaded";
    char drv[32] = "none", dnn[32], blas[32];
    snprintf(dnn, sizeof dnn, "%s", none);
    snprintf(blas, sizeof blas, "%s", none);
    if (e->driver_version) snprintf(drv, sizeof drv, "%d.%d", e->driver_version / 1000, e->driver_version % 1000 / 10);
    if (e->cudnn_version)
        snprintf(dnn, sizeof dnn, "%d.%d.%d", e->cudnn_version / 10000, e->cudnn_version % 10000 / 100,
                 e->cudnn_version % 100);
    if (e->cublas_version[0])
        snprintf(blas, sizeof blas, "%d.%d.%d", e->cublas_version[0], e->cublas_version[1], e->cublas_version[2]);
    snprintf(buf, n, "built for CUDA %d.%d, driver %s, cuDNN %s, cuBLAS %s", CUDA_VERSION / 1000,
             CUDA_VERSION % 1000 / 10, drv, dnn, blas);
}

static int cuda_devices(hy_device_info *out, int max) {
    const hy__cuda_env *e = hy__cuda_env_get();
    char v[200];
    versions(e, v, sizeof v);
    if (e->why[0] || e->n_gpus == 0) {
        if (max >= 1) {
            memset(out, 0, sizeof *out);
            snprintf(out->name, sizeof out->name, "cuda");
            snprintf(out->kind, sizeof out->kind, "cuda");
            snprintf(out->detail, sizeof out->detail, "%s", v);
            snprintf(out->why, sizeof out->why, "%s", e->why[0] ? e->why : "no GPU");
        }
        return 1;
    }
    for (int i = 0; i < e->n_gpus && i < max; i++) {
        const hy__cuda_gpu *g = &e->gpus[i];
        hy_device_info *d = &out[i];
        memset(d, 0, sizeof *d);
        snprintf(d->name, sizeof d->name, "cuda:%d", i);
        snprintf(d->kind, sizeof d->kind, "cuda");
        snprintf(d->model, sizeof d->model, "%s", g->name);
        snprintf(d->detail, sizeof d->detail, "compute capability %d.%d, %s", g->cc_major, g->cc_minor, v);
        d->memory_bytes = g->memory;
        snprintf(d->why, sizeof d->why, "%s", g->why[0] ? g->why : NO_KERNELS);
    }
    return e->n_gpus;
}

static hy_status cuda_probe(int ordinal) {
    const hy__cuda_env *e = hy__cuda_env_get();
    if (e->why[0]) return hy__error(HY_ERR_BACKEND, "%s", e->why);
    if (ordinal >= e->n_gpus)
        return hy__error(HY_ERR_BACKEND, "cuda:%d: the NVIDIA driver lists %d GPU%s", ordinal, e->n_gpus,
                         e->n_gpus == 1 ? "" : "s");
    const hy__cuda_gpu *g = &e->gpus[ordinal];
    if (g->why[0]) return hy__error(HY_ERR_BACKEND, "cuda:%d (%s): %s", ordinal, g->name, g->why);
    return hy__error(HY_ERR_BACKEND, "cuda:%d (%s): %s", ordinal, g->name, NO_KERNELS);
}

/* Reached only if a caller skips probe(): nothing below can run without kernels. */
static hy_status no_kernels(void) { return hy__error(HY_ERR_BACKEND, "cuda: %s", NO_KERNELS); }
static int cuda_supports_op(const hy__node *n) { return 0; }
static hy_status cuda_weights_create(const hy__conv_weights *w, int n, hy__threadpool *tp, int lock_memory,
                                     hy__bweights **out) {
    return no_kernels();
}
static void cuda_weights_free(hy__bweights *w) {}
static hy_status cuda_create(const hy__backend_params *p, const hy__bweights *w, hy__backend **out) {
    return no_kernels();
}
static hy_status cuda_graph_prepare(hy__backend *be, const hy__graph *g, hy__plan **out) { return no_kernels(); }
static hy_status cuda_tensor_set(hy__backend *be, hy__plan *plan, int t, const float *src, size_t n) {
    return no_kernels();
}
static hy_status cuda_tensor_get(hy__backend *be, hy__plan *plan, int t, float *dst, size_t n) {
    return no_kernels();
}
static hy_status cuda_graph_compute(hy__backend *be, hy__plan *plan) { return no_kernels(); }
static void cuda_plan_free(hy__backend *be, hy__plan *plan) {}
static void cuda_free(hy__backend *be) {}

const struct hy__backend_i hy__backend_cuda = {
    .api_version = HY_BACKEND_API_VERSION,
    .name = "cuda",
    .description = "NVIDIA GPUs (cuDNN, cuBLAS): device discovery and fallback; kernels not built yet",
    .devices = cuda_devices,
    .probe = cuda_probe,
    .supports_op = cuda_supports_op,
    .weights_create = cuda_weights_create,
    .weights_free = cuda_weights_free,
    .create = cuda_create,
    .graph_prepare = cuda_graph_prepare,
    .tensor_set = cuda_tensor_set,
    .tensor_get = cuda_tensor_get,
    .graph_compute = cuda_graph_compute,
    .plan_free = cuda_plan_free,
    .free = cuda_free,
};
