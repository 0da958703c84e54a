#include "train/step_device.h"

#include <stdlib.h>
#include <string.h>

#ifdef TN_CUDA
#include "model/transnormer_cuda.h"
#endif

#ifdef TN_CUDA

struct TnStepDevice {
    TnModelCuda gpu;
};

int tn_step_device_open(TnStepDevice **dev, TnDevice device, const TnModel *m, const float *adam_m,
                        const float *adam_v, int batch, int seq_len, TnRecompute recompute, TnError *err) {
    *dev = NULL;
    if (device != TN_DEVICE_CUDA) return tn_fail(err, "the %s runs the trainer's own step", tn_device_name(device));
    TnStepDevice *d = tn_calloc(1, sizeof *d);
    if (tn_model_cuda_init(&d->gpu, &m->config, m->params, err) ||
        tn_model_cuda_upload(&d->gpu, NULL, NULL, adam_m, adam_v, err) ||
        tn_model_cuda_reserve(&d->gpu, batch, seq_len, recompute, err)) {
        tn_step_device_close(d);
        return -1;
    }
    *dev = d;
    return 0;
}

void tn_step_device_close(TnStepDevice *dev) {
    if (!dev) return;
    tn_model_cuda_free(&dev->gpu);
    free(dev);
}

int tn_step_device_zero_grad(TnStepDevice *dev, TnError *err) { return tn_model_cuda_zero_grad(&dev->gpu, err); }

int tn_step_device_accumulate(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch,
                              int seq_len, float loss_scale, float *loss, TnError *err) {
    if (tn_model_cuda_forward(&dev->gpu, inputs, targets, batch, seq_len, loss, err)) return -1;
    return tn_model_cuda_backward(&dev->gpu, batch, seq_len, loss_scale, err);
}

int tn_step_device_score(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch, int seq_len,
                         float *losses, TnError *err) {
    float mean;
    if (tn_model_cuda_forward(&dev->gpu, inputs, targets, batch, seq_len, &mean, err)) return -1;
    memcpy(losses, dev->gpu.host_losses, (size_t)batch * seq_len * sizeof *losses);
    return 0;
}

int tn_step_device_update(TnStepDevice *dev, const TnAdamW *opt, float lr, long long t, double max_norm,
                          double *grad_norm, TnError *err) {
    return tn_model_cuda_step(&dev->gpu, opt->beta1, opt->beta2, opt->eps, opt->weight_decay, lr, t, max_norm,
                              grad_norm, err);
}

int tn_step_device_gradients(TnStepDevice *dev, float **grads, size_t *n, void **stream, TnError *err) {
    (void)err;
    *grads = dev->gpu.grads;
    *n = dev->gpu.n_params;
    *stream = dev->gpu.stream;
    return 0;
}

void tn_step_device_memory(const TnStepDevice *dev, size_t *state, size_t *arena) {
    *state = dev->gpu.layout.total * (4 * sizeof(float) + sizeof(uint16_t));
    *arena = dev->gpu.arena_bytes;
}

int tn_step_device_sync(TnStepDevice *dev, float *params, float *grads, float *adam_m, float *adam_v, TnError *err) {
    return tn_model_cuda_download(&dev->gpu, params, grads, adam_m, adam_v, err);
}

#else /* built without nvcc: no accelerator can be opened, so none of the others is reached */

struct TnStepDevice {
    int unused;
};

int tn_step_device_open(TnStepDevice **dev, TnDevice device, const TnModel *m, const float *adam_m,
                        const float *adam_v, int batch, int seq_len, TnRecompute recompute, TnError *err) {
    (void)m, (void)adam_m, (void)adam_v, (void)batch, (void)seq_len, (void)recompute;
    *dev = NULL;
    return tn_fail(err, "--device %s: this tnllm was built without CUDA (make found no nvcc)", tn_device_name(device));
}

void tn_step_device_close(TnStepDevice *dev) { TN_ASSERT(dev == NULL); }

int tn_step_device_zero_grad(TnStepDevice *dev, TnError *err) {
    (void)dev;
    return tn_fail(err, "no accelerator in this build");
}

int tn_step_device_accumulate(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch,
                              int seq_len, float loss_scale, float *loss, TnError *err) {
    (void)dev, (void)inputs, (void)targets, (void)batch, (void)seq_len, (void)loss_scale, (void)loss;
    return tn_fail(err, "no accelerator in this build");
}

int tn_step_device_score(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch, int seq_len,
                         float *losses, TnError *err) {
    (void)dev, (void)inputs, (void)targets, (void)batch, (void)seq_len, (void)losses;
    return tn_fail(err, "no accelerator in this build");
}

int tn_step_device_update(TnStepDevice *dev, const TnAdamW *opt, float lr, long long t, double max_norm,
                          double *grad_norm, TnError *err) {
    (void)dev, (void)opt, (void)lr, (void)t, (void)max_norm, (void)grad_norm;
    return tn_fail(err, "no accelerator in this build");
}

int tn_step_device_gradients(TnStepDevice *dev, float **grads, size_t *n, void **stream, TnError *err) {
    (void)dev, (void)grads, (void)n, (void)stream;
    return tn_fail(err, "no accelerator in this build");
}

void tn_step_device_memory(const TnStepDevice *dev, size_t *state, size_t *arena) {
    TN_ASSERT(dev == NULL); /* none can be opened */
    *state = *arena = 0;
}

int tn_step_device_sync(TnStepDevice *dev, float *params, float *grads, float *adam_m, float *adam_v, TnError *err) {
    (void)dev, (void)params, (void)grads, (void)adam_m, (void)adam_v;
    return tn_fail(err, "no accelerator in this build");
}

#endif
