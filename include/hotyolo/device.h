/* hotyolo devices: what can run a network on this machine (docs/cuda.md).
 *
 * A device is named by a string, everywhere one is taken (hy_model_params.device, the CLI's
 * --device, the server, Python), compared without regard to case:
 *   "cpu"          the optimised CPU kernels (the default)
 *   "ref"          the plain-C reference kernels (the spec every backend is tested against)
 *   "cuda"         the first GPU (= "cuda:0"); "cuda:N" or "N" (Ultralytics' device=0): GPU N
 *   "auto"         cuda:0 when it can run the network, else cpu (no warning)
 * Anything else is HY_ERR_INVALID_ARG. When a GPU was asked for and cannot be used (no driver,
 * no such GPU, a build without the CUDA backend, a failure while loading onto it), the model
 * loads on "cpu" instead, logs a warning and records why (hy_model_device_fallback);
 * hy_model_params.no_fallback makes that an error instead (HY_ERR_BACKEND). */
#ifndef HOTYOLO_DEVICE_H
#define HOTYOLO_DEVICE_H

#include <stdint.h>

#include "hotyolo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hy_device_info {
    char name[16];       /* "cpu", "cuda:0"; "cuda" for the CUDA row when no GPU is listed */
    char kind[8];        /* "cpu" or "cuda" */
    char model[128];     /* "AMD EPYC 9R14 96-Core Processor", "NVIDIA H100 80GB HBM3"; "" unknown */
    char detail[256];    /* cpu: kernels' ISA and cores; cuda: compute capability, driver,
                            cuDNN and cuBLAS versions */
    uint64_t memory_bytes; /* total RAM / GPU memory; 0 unknown */
    int usable;          /* 1: a model can be loaded on it now */
    char why[256];       /* usable == 0: why not ("no NVIDIA driver: ...") */
} hy_device_info;

/* Every device this build knows: the CPU first, then one row per GPU (or one "cuda" row saying
 * why none can be used). Writes at most max rows to out (out may be NULL to count) and returns
 * the number of rows there are. Probing loads the NVIDIA driver once per process. */
HY_API int hy_device_list(hy_device_info *out, int max);

/* HY_OK when s is a device string of one of the forms above (NULL and "" are "cpu"), else
 * HY_ERR_INVALID_ARG with hy_last_error naming the accepted forms. Checks the spelling only:
 * whether that device can be used is decided at load (hy_device_list says in advance). If
 * normalised is not NULL it receives the canonical name ("cpu", "ref", "cuda:1", "auto"). */
HY_API hy_status hy_device_check(const char *s, char normalised[16]);

/* Whether this build has the CUDA backend (configured with HY_CUDA=ON / AUTO and the toolkit). */
HY_API int hy_cuda_built(void);

#ifdef __cplusplus
}
#endif
#endif
