#include "train/step_device.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/tensor_parallel.h"
#ifdef TN_CUDA
#include "dist/fsdp_gpu.h"
#include "dist/grad_reduce_gpu.h"
#include "model/transnormer_cuda.h"
#endif

int tn_step_device_tp_check(int zero, TnError *err) {
    if (zero <= TN_TP_GPU_MAX_ZERO) return 0;
    return tn_fail(err, "--tp with --zero %d on GPUs: ZeRO-2 and 3 reduce (and gather) each layer over the data "
                        "group on a second stream while the passes' tensor-parallel all-reduces run on the step's, "
                        "and NCCL does not promise that two communicators' collectives progress side by side; use "
                        "--zero 0 or 1 with --tp", zero);
}

#ifdef TN_CUDA

struct TnStepDevice {
    TnModelCuda gpu;
    const TnComm *comm; /* the data group; NULL: this GPU alone */
    const TnComm *tensor; /* the tensor group (tensor parallelism); NULL: the whole model */
    int zero;           /* the stage in effect: 0 with one rank */
    /* tensor parallelism: the update range's runs of split and replicated
     * tensors (tensor_parallel.h), their bounds and their sums of squares */
    TnTpRun *runs;
    size_t *bounds;
    double *run_squares;
    int n_runs;
    TnGradReduceGpu reduce; /* ZeRO-2/3: the gradients reduce-scattered per part */
    TnFsdpGpu fsdp;         /* ZeRO-3: the parameters gathered per part */
    TnModelCudaHooks hooks; /* the model's, pointing at reduce and fsdp */
};

/* The model's sum over its parts (transnormer_cuda.h): NCCL's all-reduce
 * over the tensor group, on the step's stream. */
static int sum_over_tensor_group(TnModelCuda *g, float *buf, size_t n, void *user, TnError *err) {
    const TnStepDevice *d = user;
    return tn_comm_gpu_all_reduce_sum(d->tensor, buf, n, g->stream, err);
}

/* The sharded stages' and tensor parallelism's hooks on the model (transnormer_cuda.h). */
static int install_hooks(TnStepDevice *d, TnError *err) {
    if (d->zero >= 2) {
        if (tn_grad_reduce_gpu_init(&d->reduce, d->comm, &d->gpu, err)) return -1;
        d->hooks.grads = tn_grad_reduce_gpu_bind;
        d->hooks.grads_done = tn_grad_reduce_gpu_part_done;
        d->hooks.grads_user = &d->reduce;
    }
    if (d->zero == 3) {
        /* one stream for the gathers and the reductions: the collectives in the order they are issued */
        if (tn_fsdp_gpu_init(&d->fsdp, d->comm, &d->gpu, d->reduce.stream, err)) return -1;
        d->hooks.weights = tn_fsdp_gpu_gather_part;
        d->hooks.weights_user = &d->fsdp;
    }
    if (d->tensor) {
        d->hooks.sum_parts = sum_over_tensor_group;
        d->hooks.sum_parts_user = d;
    }
    d->gpu.hooks = d->zero >= 2 || d->tensor ? &d->hooks : NULL;
    return 0;
}

/* The runs of the update range for the global norm (global_squares). */
static void find_runs(TnStepDevice *d) {
    const TnModelCuda *g = &d->gpu;
    int n = g->layout.n_tensors;
    d->runs = tn_malloc((size_t)n * sizeof *d->runs);
    d->bounds = tn_malloc(2 * (size_t)n * sizeof *d->bounds);
    d->run_squares = tn_malloc((size_t)n * sizeof *d->run_squares);
    d->n_runs = tn_tp_split_runs(&g->layout, (TnRange){g->update_begin, g->update_end}, d->runs);
    for (int k = 0; k < d->n_runs; k++) {
        d->bounds[2 * k] = d->runs[k].begin;
        d->bounds[2 * k + 1] = d->runs[k].end;
    }
}

/* Opens the model: the whole, or with tensor parallelism this rank's part
 * (tensor_parallel.h's layout), of which ZeRO shards the rank's range. */
static int open_model(TnStepDevice *d, const TnConfig *cfg, const float *params, TnError *err) {
    TnParamLayout whole, part;
    tn_param_layout_init(&whole, cfg);
    int T = d->tensor ? d->tensor->size : 1;
    if (d->tensor) tn_tp_layout(&part, &whole, cfg, T);
    TnCudaPart split = {.parts = T, .index = d->tensor ? d->tensor->rank : 0, .layout = d->tensor ? &part : &whole};
    size_t n = split.layout->total;
    TnRange own = d->zero ? tn_rank_range(n, d->comm->size, d->comm->rank) : (TnRange){0, n};
    int rc = tn_model_cuda_init_shard(&d->gpu, cfg, d->tensor ? &split : NULL, params, own.begin, own.end, d->zero,
                                      err);
    if (d->tensor) tn_param_layout_free(&part);
    tn_param_layout_free(&whole);
    return rc;
}

int tn_step_device_open(TnStepDevice **dev, TnDevice device, const TnConfig *cfg, const float *params,
                        const float *adam_m, const float *adam_v, int batch, int seq_len, TnRecompute recompute,
                        const TnComm *comm, const TnComm *tensor_group, int zero, TnError *err) {
    *dev = NULL;
    if (device != TN_DEVICE_CUDA) return tn_fail(err, "the %s runs the trainer's own step", tn_device_name(device));
    if (zero < 0 || zero > 3) return tn_fail(err, "ZeRO stage %d: use 0, 1, 2 or 3", zero);
    const TnComm *tensor = tensor_group && tensor_group->size > 1 ? tensor_group : NULL;
    if (tensor && (tn_tp_check(cfg, tensor->size, err) || tn_step_device_tp_check(zero, err))) return -1;
    TnStepDevice *d = tn_calloc(1, sizeof *d);
    d->comm = comm && comm->size > 1 ? comm : NULL;
    d->tensor = tensor;
    d->zero = d->comm ? zero : 0;
    int rc = open_model(d, cfg, params, err);
    if (!rc && d->tensor) find_runs(d);
    if (rc || install_hooks(d, err) || tn_model_cuda_upload(&d->gpu, NULL, NULL, adam_m, adam_v, err) ||
        tn_model_cuda_reserve(&d->gpu, batch, seq_len, recompute, err)) {
        tn_step_device_close(d);
        return -1;
    }
    *dev = d;
    return 0;
}

void tn_step_device_close(TnStepDevice *dev) {
    if (!dev) return;
    if (dev->zero >= 2) tn_grad_reduce_gpu_free(&dev->reduce);
    if (dev->zero == 3) tn_fsdp_gpu_free(&dev->fsdp);
    tn_model_cuda_free(&dev->gpu);
    free(dev->runs);
    free(dev->bounds);
    free(dev->run_squares);
    free(dev);
}

int tn_step_device_zero_grad(TnStepDevice *dev, TnError *err) { return tn_model_cuda_zero_grad(&dev->gpu, err); }

int tn_step_device_accumulate(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch,
                              int seq_len, float loss_scale, float *loss, TnError *err) {
    return tn_model_cuda_accumulate(&dev->gpu, inputs, targets, batch, seq_len, loss_scale, loss, err);
}

int tn_step_device_score(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch, int seq_len,
                         float *losses, TnError *err) {
    float mean;
    if (tn_model_cuda_forward(&dev->gpu, inputs, targets, batch, seq_len, &mean, err)) return -1;
    memcpy(losses, dev->gpu.host_losses, (size_t)batch * seq_len * sizeof *losses);
    return 0;
}

int tn_step_device_idle(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch, int seq_len,
                        TnError *err) {
    float loss;
    /* a loss scale of 0 makes every gradient an exact zero: the pass adds nothing */
    return dev->zero >= 2 ? tn_step_device_accumulate(dev, inputs, targets, batch, seq_len, 0.0f, &loss, err) : 0;
}

/* NCCL makes no promise that two collectives of a communicator progress at
 * once: one running on a stream of the step while another starts on the
 * group's own (the trainer's host collectives) could wait for each other
 * in different orders on different ranks. So the step's collectives are
 * waited for before it returns to the trainer. */
int tn_step_device_reduce(TnStepDevice *dev, TnError *err) {
    TnModelCuda *g = &dev->gpu;
    if (!dev->comm) return 0;
    if (tn_model_cuda_settle_grads(g, err)) return -1; /* a rank that ran no pass sends zeros */
    switch (dev->zero) {
    case 0:
        return tn_comm_gpu_all_reduce_sum(dev->comm, g->grads, g->n_params, g->stream, err) ||
                       tn_model_cuda_synchronize(g, err)
                   ? -1 : 0;
    case 1:
        return tn_comm_gpu_reduce_scatter_sum(dev->comm, g->grads, g->n_params, g->stream, err) ||
                       tn_model_cuda_synchronize(g, err)
                   ? -1 : 0;
    default: return tn_grad_reduce_gpu_finish(&dev->reduce, err);
    }
}

/* The sum of the squares of the whole summed gradient: the update
 * range's, added over the data group where it is a shard; with tensor
 * parallelism the split tensors' added over the tensor group too, the
 * replicated ones (the same on every rank of it) counted once, as the
 * CPU's trainer does. */
static int global_squares(TnStepDevice *d, double *squares, TnError *err) {
    TnModelCuda *g = &d->gpu;
    if (!d->tensor)
        return tn_model_cuda_grad_squares(g, squares, err) ||
                       tn_comm_all_reduce_sum_double(d->comm, squares, 1, err) ? -1 : 0;
    if (tn_model_cuda_grad_squares_runs(g, d->bounds, d->n_runs, d->run_squares, err)) return -1;
    double kinds[2] = {0, 0}; /* split, replicated */
    for (int k = 0; k < d->n_runs; k++) kinds[d->runs[k].split ? 0 : 1] += d->run_squares[k];
    if ((d->zero && tn_comm_all_reduce_sum_double(d->comm, kinds, 2, err)) ||
        tn_comm_all_reduce_sum_double(d->tensor, kinds, 1, err))
        return -1;
    *squares = kinds[0] + kinds[1];
    return 0;
}

int tn_step_device_update(TnStepDevice *dev, const TnAdamW *opt, float lr, long long t, double max_norm,
                          double *grad_norm, TnError *err) {
    TnModelCuda *g = &dev->gpu;
    if (!dev->zero && !dev->tensor)
        return tn_model_cuda_step(g, opt->beta1, opt->beta2, opt->eps, opt->weight_decay, lr, t, max_norm, grad_norm,
                                  err);
    double squares;
    if (global_squares(dev, &squares, err)) return -1;
    *grad_norm = sqrt(squares);
    if (tn_model_cuda_adamw(g, opt->beta1, opt->beta2, opt->eps, opt->weight_decay, lr, t, squares, max_norm, err))
        return -1;
    if (dev->zero == 0) return tn_model_cuda_synchronize(g, err);
    if (dev->zero == 3) { /* the next passes gather the updated shards */
        tn_fsdp_gpu_invalidate(&dev->fsdp);
        return 0;
    }
    return tn_comm_gpu_all_gather(dev->comm, g->params, g->n_params, g->stream, err) ||
                   tn_model_cuda_refresh(g, err) || tn_model_cuda_synchronize(g, err)
               ? -1 : 0;
}

void tn_step_device_memory(const TnStepDevice *dev, TnStepDeviceMemory *memory) {
    const TnModelCuda *g = &dev->gpu;
    size_t f = sizeof(float);
    memory->parameters = (g->params_end - g->params_begin) * f + (g->params_bf16 ? g->n_params * sizeof(uint16_t) : 0);
    memory->gather = dev->zero == 3 ? tn_fsdp_gpu_buffer_floats(&g->layout, &g->config) * f : 0;
    memory->gradients = (g->grads_end - g->grads_begin) * f;
    memory->grad_buffers = dev->zero >= 2 ? tn_grad_reduce_buffer_floats(&g->layout, g->config.n_layers) * f : 0;
    memory->moments = 2 * (g->update_end - g->update_begin) * f;
    memory->arena = g->arena_bytes;
    memory->total = memory->parameters + memory->gather + memory->gradients + memory->grad_buffers + memory->moments +
                    memory->arena;
}

int tn_step_device_sync(TnStepDevice *dev, float *params, float *grads, float *adam_m, float *adam_v, TnError *err) {
    return tn_model_cuda_download(&dev->gpu, params, grads, adam_m, adam_v, err);
}

#else /* built without nvcc: no accelerator can be opened, so none of the others is reached */

struct TnStepDevice {
    int unused;
};

int tn_step_device_open(TnStepDevice **dev, TnDevice device, const TnConfig *cfg, const float *params,
                        const float *adam_m, const float *adam_v, int batch, int seq_len, TnRecompute recompute,
                        const TnComm *comm, const TnComm *tensor_group, int zero, TnError *err) {
    (void)cfg, (void)params, (void)adam_m, (void)adam_v, (void)batch, (void)seq_len, (void)recompute, (void)comm;
    (void)tensor_group, (void)zero;
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

int tn_step_device_idle(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch, int seq_len,
                        TnError *err) {
    (void)dev, (void)inputs, (void)targets, (void)batch, (void)seq_len;
    return tn_fail(err, "no accelerator in this build");
}

int tn_step_device_reduce(TnStepDevice *dev, TnError *err) {
    (void)dev;
    return tn_fail(err, "no accelerator in this build");
}

void tn_step_device_memory(const TnStepDevice *dev, TnStepDeviceMemory *memory) {
    TN_ASSERT(dev == NULL); /* none can be opened */
    memset(memory, 0, sizeof *memory);
}

int tn_step_device_sync(TnStepDevice *dev, float *params, float *grads, float *adam_m, float *adam_v, TnError *err) {
    (void)dev, (void)params, (void)grads, (void)adam_m, (void)adam_v;
    return tn_fail(err, "no accelerator in this build");
}

#endif
