#include "infer/session_device.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef TN_CUDA
#include "infer/session_cuda.h"

struct TnSessionDevice {
    TnSessionCuda gpu;
    char description[512];
};

int tn_session_device_open(TnSessionDevice **dev, TnDevice device, const TnModel *m, int max_batch, int max_rows,
                           TnError *err) {
    *dev = NULL;
    if (device != TN_DEVICE_CUDA) return tn_fail(err, "the %s runs the session's own code", tn_device_name(device));
    TnSessionDevice *d = tn_calloc(1, sizeof *d);
    if (tn_session_cuda_init(&d->gpu, &m->config, m->params, max_batch, max_rows, err)) {
        free(d);
        return -1;
    }
    *dev = d;
    return 0;
}

void tn_session_device_close(TnSessionDevice *dev) {
    if (!dev) return;
    tn_session_cuda_free(&dev->gpu);
    free(dev);
}

float *tn_session_device_logits(TnSessionDevice *dev) { return dev->gpu.host_logits; }

const char *tn_session_device_describe(TnSessionDevice *dev) {
    const TnSessionCuda *g = &dev->gpu;
    double gib = tn_session_cuda_bytes(&g->config, g->max_batch, g->max_rows) / 1073741824.0;
    snprintf(dev->description, sizeof dev->description, "cuda: %.2f GiB for bf16 weights, %d states and %d rows; %s%s",
             gib, g->max_batch, g->max_rows, g->graphs_enabled ? "decode steps replay CUDA graphs" : "no CUDA graphs: ",
             g->graphs_enabled ? "" : g->graph_error);
    return dev->description;
}

int tn_session_device_forward(TnSessionDevice *dev, const int32_t *tokens, const int *positions, int first_seq,
                              int batch, int rows, int logits, TnError *err) {
    return tn_session_cuda_forward(&dev->gpu, tokens, positions, first_seq, batch, rows, logits, err);
}

int tn_session_device_copy(TnSessionDevice *dev, int from, int to, TnError *err) {
    return tn_session_cuda_copy(&dev->gpu, from, to, err);
}

int tn_session_device_score(TnSessionDevice *dev, const int32_t *tokens, const int32_t *targets, int batch,
                            int seq_len, float *losses, TnError *err) {
    return tn_session_cuda_score(&dev->gpu, tokens, targets, batch, seq_len, losses, err);
}

#else /* built without nvcc: no device can be opened, so none of the others is reached */

struct TnSessionDevice {
    int unused;
};

int tn_session_device_open(TnSessionDevice **dev, TnDevice device, const TnModel *m, int max_batch, int max_rows,
                           TnError *err) {
    (void)m, (void)max_batch, (void)max_rows;
    *dev = NULL;
    return tn_fail(err, "--device %s: this tnllm was built without CUDA (make found no nvcc)", tn_device_name(device));
}

void tn_session_device_close(TnSessionDevice *dev) { TN_ASSERT(dev == NULL); }

float *tn_session_device_logits(TnSessionDevice *dev) {
    (void)dev;
    TN_ASSERT(!"no device in this build");
    return NULL;
}

const char *tn_session_device_describe(TnSessionDevice *dev) {
    (void)dev;
    return "no device in this build";
}

int tn_session_device_forward(TnSessionDevice *dev, const int32_t *tokens, const int *positions, int first_seq,
                              int batch, int rows, int logits, TnError *err) {
    (void)dev, (void)tokens, (void)positions, (void)first_seq, (void)batch, (void)rows, (void)logits;
    return tn_fail(err, "no device in this build");
}

int tn_session_device_copy(TnSessionDevice *dev, int from, int to, TnError *err) {
    (void)dev, (void)from, (void)to;
    return tn_fail(err, "no device in this build");
}

int tn_session_device_score(TnSessionDevice *dev, const int32_t *tokens, const int32_t *targets, int batch,
                            int seq_len, float *losses, TnError *err) {
    (void)dev, (void)tokens, (void)targets, (void)batch, (void)seq_len, (void)losses;
    return tn_fail(err, "no device in this build");
}

#endif
