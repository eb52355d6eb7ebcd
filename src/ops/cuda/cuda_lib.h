/* The NVIDIA libraries the CUDA backend uses, opened at run time: the driver (libcuda.so.1),
 * cuDNN and cuBLAS. Nothing CUDA is linked, so a HY_CUDA build starts on any machine, and a
 * machine without a driver or a GPU gets a reason instead of a loader error; only headers
 * come from the toolkit at build time.
 *
 * Code calls them as CU(cuInit)(0): a pointer of the function's own type. The names go
 * through the headers' macros (cuDeviceTotalMem -> cuDeviceTotalMem_v2) before dlsym, so the
 * versioned entry points the headers describe are the ones found. */
#ifndef HY_OPS_CUDA_LIB_H
#define HY_OPS_CUDA_LIB_H

#include <cublas_api.h>
#include <cuda.h>
#include <cudnn.h>

#include "core/core.h"

/* X(library, function): every function the backend calls. */
#define HY_CUDA_DRIVER_SYMBOLS(X)                                                                  \
    X(driver, cuInit)                                                                              \
    X(driver, cuDriverGetVersion)                                                                  \
    X(driver, cuDeviceGetCount)                                                                    \
    X(driver, cuDeviceGet)                                                                         \
    X(driver, cuDeviceGetName)                                                                     \
    X(driver, cuDeviceTotalMem)                                                                    \
    X(driver, cuDeviceGetAttribute)                                                                \
    X(driver, cuGetErrorName)                                                                      \
    X(driver, cuGetErrorString)
#define HY_CUDA_CUDNN_SYMBOLS(X) X(cudnn, cudnnGetVersion)
#define HY_CUDA_CUBLAS_SYMBOLS(X) X(cublas, cublasGetProperty)

typedef struct hy__cuda_api {
#define HY_CUDA_FIELD(lib, name) __typeof__(&name) name;
    HY_CUDA_DRIVER_SYMBOLS(HY_CUDA_FIELD)
    HY_CUDA_CUDNN_SYMBOLS(HY_CUDA_FIELD)
    HY_CUDA_CUBLAS_SYMBOLS(HY_CUDA_FIELD)
#undef HY_CUDA_FIELD
} hy__cuda_api;

extern hy__cuda_api hy__cu;
#define CU(name) (*hy__cu.name)

/* One GPU as the driver describes it. */
typedef struct hy__cuda_gpu {
    char name[128];
    int cc_major, cc_minor;
    uint64_t memory;
    int usable;
    char why[256];
} hy__cuda_gpu;

#define HY_CUDA_MAX_GPUS 64

/* What this process found, probed once (thread-safe) and then constant. */
typedef struct hy__cuda_env {
    int driver_version;         /* cuDriverGetVersion (13000 = 13.0); 0: no driver */
    int cudnn_version;          /* cudnnGetVersion (91900 = 9.19.0); 0: not loaded (no GPU) */
    int cublas_version[3];      /* major, minor, patch; 0: not loaded */
    int n_gpus;                 /* GPUs the driver lists (CUDA_VISIBLE_DEVICES applies) */
    hy__cuda_gpu gpus[HY_CUDA_MAX_GPUS];
    char why[256];              /* "" when the driver and libraries are usable; else why not */
} hy__cuda_env;

/* Loads the driver and lists the GPUs once per process, then cuDNN and cuBLAS when there is
 * a GPU; never fails (reasons are in the result). The driver comes from $HOTYOLO_CUDA_DRIVER
 * when set (a path or a soname), else libcuda.so.1. */
const hy__cuda_env *hy__cuda_env_get(void);

/* "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)". Thread-safe: buf. */
const char *hy__cuda_err(CUresult r, char *buf, size_t n);

#endif
