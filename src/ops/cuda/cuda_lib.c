/* The NVIDIA libraries, opened at run time (cuda_lib.h says why). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cuda/cuda_lib.h"

hy__cuda_api hy__cu;

#define STR2(x) #x
#define STR(x) STR2(x) /* expands the headers' macros first: cuDeviceTotalMem -> "cuDeviceTotalMem_v2" */

/* Sonames of the major versions the headers describe. */
#define SONAME_driver "libcuda.so.1"
#define SONAME_cudnn "libcudnn.so." STR(CUDNN_MAJOR)
#define SONAME_cublas "libcublas.so." STR(CUBLAS_VER_MAJOR)

/* Oldest GPU the toolkit's kernels run on: CUDA 13 builds for compute capability 7.5+. */
#define MIN_CC_MAJOR 7
#define MIN_CC_MINOR 5

static pthread_once_t once = PTHREAD_ONCE_INIT;
static hy__cuda_env env;

const char *hy__cuda_err(CUresult r, char *buf, size_t n) {
    const char *name = NULL, *text = NULL;
    if (hy__cu.cuGetErrorName && CU(cuGetErrorName)(r, &name) != CUDA_SUCCESS) name = NULL;
    if (hy__cu.cuGetErrorString && CU(cuGetErrorString)(r, &text) != CUDA_SUCCESS) text = NULL;
    if (name && text)
        snprintf(buf, n, "%s (%s)", name, text);
    else if (r == CUDA_ERROR_STUB_LIBRARY) /* the toolkit's link-time stub answers nothing else */
        snprintf(buf, n, "CUDA_ERROR_STUB_LIBRARY (the driver library is the toolkit's stub, not a driver)");
    else
        snprintf(buf, n, "CUresult %d", (int)r);
    return buf;
}

/* dlopen + every symbol of one library; 0 with env.why set when any is missing. */
static void *open_lib(const char *soname, const char *what, char *why, size_t n) {
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, n, "%s: cannot load %s: %s", what, soname, e ? e : "unknown error");
    }
    return h;
}

#define SYM(lib, name)                                                                             \
    if (!missing && !(*(void **)&a->name = dlsym(h_##lib, STR(name)))) missing = STR(name);

static int load_driver(hy__cuda_api *a) {
    const char *path = getenv("HOTYOLO_CUDA_DRIVER");
    if (!path || !path[0]) path = SONAME_driver;
    void *h_driver = open_lib(path, "no NVIDIA driver", env.why, sizeof env.why);
    if (!h_driver) return 0;
    const char *missing = NULL;
    HY_CUDA_DRIVER_SYMBOLS(SYM)
    if (missing) {
        snprintf(env.why, sizeof env.why, "the NVIDIA driver %s has no symbol %s (too old for CUDA %d.%d)", path,
                 missing, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
        return 0;
    }
    return 1;
}

/* cuDNN and cuBLAS: loaded, and their versions read. */
static void load_libraries(hy__cuda_api *a, char *why, size_t n) {
    char w1[256] = "", w2[256] = "";
    const char *missing = NULL;
    void *h_cudnn = open_lib(SONAME_cudnn, "cuDNN", w1, sizeof w1);
    if (h_cudnn) {
        HY_CUDA_CUDNN_SYMBOLS(SYM)
        if (missing)
            snprintf(w1, sizeof w1, "cuDNN: %s has no symbol %s", SONAME_cudnn, missing);
        else
            env.cudnn_version = (int)a->cudnnGetVersion();
    }
    missing = NULL;
    void *h_cublas = open_lib(SONAME_cublas, "cuBLAS", w2, sizeof w2);
    if (h_cublas) {
        HY_CUDA_CUBLAS_SYMBOLS(SYM)
        if (missing)
            snprintf(w2, sizeof w2, "cuBLAS: %s has no symbol %s", SONAME_cublas, missing);
        else
            for (int i = 0; i < 3; i++)
                if (a->cublasGetProperty((libraryPropertyType)i, &env.cublas_version[i]) != CUBLAS_STATUS_SUCCESS)
                    env.cublas_version[i] = 0;
    }
    snprintf(why, n, "%s%s%s", w1, w1[0] && w2[0] ? "; " : "", w2);
}
#undef SYM

static void list_gpus(void) {
    char eb[160];
    CUresult r = CU(cuInit)(0);
    if (r != CUDA_SUCCESS) {
        snprintf(env.why, sizeof env.why, "the NVIDIA driver did not start: cuInit: %s", hy__cuda_err(r, eb, sizeof eb));
        return;
    }
    if (CU(cuDriverGetVersion)(&env.driver_version) != CUDA_SUCCESS) env.driver_version = 0;
    int n = 0;
    if ((r = CU(cuDeviceGetCount)(&n)) != CUDA_SUCCESS) {
        snprintf(env.why, sizeof env.why, "cuDeviceGetCount: %s", hy__cuda_err(r, eb, sizeof eb));
        return;
    }
    if (n <= 0) {
        snprintf(env.why, sizeof env.why, "the NVIDIA driver lists no GPU (CUDA_VISIBLE_DEVICES=%s)",
                 getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "unset");
        return;
    }
    env.n_gpus = HY_MIN(n, HY_CUDA_MAX_GPUS);
    for (int i = 0; i < env.n_gpus; i++) {
        hy__cuda_gpu *g = &env.gpus[i];
        CUdevice d;
        size_t mem = 0;
        if ((r = CU(cuDeviceGet)(&d, i)) != CUDA_SUCCESS) {
            snprintf(g->why, sizeof g->why, "cuDeviceGet: %s", hy__cuda_err(r, eb, sizeof eb));
            continue;
        }
        if (CU(cuDeviceGetName)(g->name, (int)sizeof g->name, d) != CUDA_SUCCESS) g->name[0] = 0;
        g->name[sizeof g->name - 1] = 0;
        if (CU(cuDeviceTotalMem)(&mem, d) == CUDA_SUCCESS) g->memory = mem;
        if (CU(cuDeviceGetAttribute)(&g->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d) != CUDA_SUCCESS ||
            CU(cuDeviceGetAttribute)(&g->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d) != CUDA_SUCCESS) {
            snprintf(g->why, sizeof g->why, "the driver does not report its compute capability");
            continue;
        }
        if (g->cc_major * 10 + g->cc_minor < MIN_CC_MAJOR * 10 + MIN_CC_MINOR) {
            snprintf(g->why, sizeof g->why, "compute capability %d.%d: this build's CUDA %d.%d needs %d.%d or newer",
                     g->cc_major, g->cc_minor, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10, MIN_CC_MAJOR,
                     MIN_CC_MINOR);
            continue;
        }
        g->usable = 1;
    }
}

static void probe(void) {
    hy__cuda_api a;
    memset(&a, 0, sizeof a);
    int have_driver = load_driver(&a);
    hy__cu = a;
    if (!have_driver) return;
    list_gpus();
    if (env.why[0]) return;
    /* cuDNN and cuBLAS (hundreds of MB to map and relocate) only once a GPU is there to use */
    char lib_why[256] = "";
    load_libraries(&a, lib_why, sizeof lib_why);
    hy__cu = a; /* the libraries stay open for the life of the process */
    /* Kernels built by CUDA X.Y need a driver of major version X or newer. */
    if (env.driver_version / 1000 < CUDA_VERSION / 1000)
        snprintf(env.why, sizeof env.why, "the NVIDIA driver supports CUDA %d.%d; this build needs %d.x or newer",
                 env.driver_version / 1000, env.driver_version % 1000 / 10, CUDA_VERSION / 1000);
    else if (lib_why[0])
        snprintf(env.why, sizeof env.why, "%s", lib_why);
}

const hy__cuda_env *hy__cuda_env_get(void) {
    pthread_once(&once, probe);
    return &env;
}
