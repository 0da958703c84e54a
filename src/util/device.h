/* device.h: the devices a model's work can run on, by the names the CLI's
 * --device flag takes. Which of them this build can open is decided where
 * they are opened (train/step_device.h, infer/session_device.h): CUDA is
 * compiled in only where the Makefile found nvcc (-DTN_CUDA). */
#ifndef TN_UTIL_DEVICE_H
#define TN_UTIL_DEVICE_H

typedef enum TnDevice { TN_DEVICE_CPU, TN_DEVICE_CUDA } TnDevice;

/* "cpu" or "cuda"; -1 for another name. */
int tn_device_parse(const char *name, TnDevice *device);
const char *tn_device_name(TnDevice device);

/* 1 when this build was compiled with CUDA (it may still find no GPU). */
int tn_device_cuda_built(void);

/* "built with CUDA" or "built without CUDA", for --help texts. */
const char *tn_device_cuda_build(void);

#endif
