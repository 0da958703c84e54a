#include "util/device.h"

#include <string.h>

int tn_device_parse(const char *name, TnDevice *device) {
    if (strcmp(name, "cpu") == 0) *device = TN_DEVICE_CPU;
    else if (strcmp(name, "cuda") == 0) *device = TN_DEVICE_CUDA;
    else return -1;
    return 0;
}

const char *tn_device_name(TnDevice device) { return device == TN_DEVICE_CUDA ? "cuda" : "cpu"; }

int tn_device_cuda_built(void) {
#ifdef TN_CUDA
    return 1;
#else
    return 0;
#endif
}

const char *tn_device_cuda_build(void) { return tn_device_cuda_built() ? "built with CUDA" : "built without CUDA"; }
