/* trainer.h: a training run, start to finish (llm.c-style loop), its step on
 * the CPU or on a GPU (step_device.h).
 *
 * A run lives in a directory:
 *   metrics.jsonl              one line per step and per evaluation (metrics.h)
 *   loss.svg                   the loss curve (plot.h), at the end
 *   val.bin                    the validation split as a token shard, for `tnllm eval`
 *   checkpoints/step_NNNNNNNN/ HF model directory + training_state.bin (state.h) + training_options.json
 *                              (run_options.h)
 *   checkpoints/latest         the name of the newest complete checkpoint
 *   model/                     the final model (HF directory)
 * The directories are created once the options, the data and the model
 * have been checked: a run refused at start leaves nothing behind.
 * Each step: `accum_steps` micro-batches of micro_batch x seq_len tokens
 * forward and backward into one gradient (the mean loss over the whole
 * batch), a global-norm clip, one AdamW step at the scheduled learning rate.
 *
 * SIGINT and SIGTERM finish the current step, write a checkpoint and return
 * TN_TRAIN_INTERRUPTED; rank 0 says so on stderr as the signal arrives. A
 * second one of the same signal kills the process at once, checkpoint or
 * not (a checkpoint cut short is never named by `latest`: the run resumes
 * from the one before, and a resume with none complete says which step was
 * cut short). A resumed run (resume = 1, the same data and batch options,
 * the same number of threads: BLAS may split sums by thread) continues
 * from checkpoints/latest and produces, step by step, the same losses and
 * weights as a run that was never stopped. A resume is refused when
 * model_options make another model than the run's, when the seed differs,
 * and when the run is past `steps`; it goes on, one line on stderr for
 * each, with another learning-rate schedule, AdamW setting, clip or length
 * (the schedule then follows the new values from the checkpoint's step),
 * and returns TN_TRAIN_COMPLETE, training nothing, when the run already
 * stands at its last step. A loss or
 * gradient that is not finite stops the run with an error naming the step
 * and the tensor (and its layer); the last good checkpoint stays in place.
 * With several ranks every rank stops at the same step, after the step's
 * reductions (a rank that met a non-finite loss finishes the step's passes
 * and collectives first), each naming the checkpoint.
 *
 * Data parallel (comm: a group of N ranks, dist/comm.h; every rank calls
 * tn_train_run with the same options): every rank draws the same global
 * sequence of micro-batches and computes micro-batches a = rank, rank + N,
 * ... of each step's accum_steps (so a step needs accum_steps >= N), with
 * the gradient scale of the whole batch, so that the summed gradient is the
 * single-process mean. The sum overlaps the step's last backward
 * (dist/grad_reduce.h: each layer's gradients start their reduction as the
 * backward leaves the layer). `zero` picks what is sharded over the ranks
 * (each rank owns the contiguous range tn_rank_range of the flat buffer):
 *   0: nothing; gradients all-reduced, every rank runs the whole AdamW step.
 *   1: the AdamW moments; gradients all-reduced, each rank updates its range
 *      of the parameters, then all-gather.
 *   2: also the gradients: reduce-scatter, the global norm from the shards'
 *      sums of squares, the update of the range, all-gather.
 *   3: also the parameters (FSDP, dist/fsdp.h): a rank keeps its shard and
 *      a buffer of one part (a layer, the embedding or the head), gathered
 *      just before the forward or backward uses it; every rank then runs
 *      the validation (its passes gather). No rank ever holds the whole
 *      model at start: each initialises its shard alone (the same values
 *      as one process, params.h tn_params_init_runs) or reads its range of
 *      the checkpoint's files (checkpoint.h TnCheckpointReader), and its
 *      range of the moments from the state file; rank 0 writes
 *      checkpoints and the final model one part at a time as the ranks
 *      gather it (the moments of ZeRO >= 1 too: the streaming writers of
 *      checkpoint.h and state.h).
 * From ZeRO-2 on a rank keeps only its shard of the gradients: the
 * backward fills one part's buffer at a time, reduce-scattered into the
 * shard as the next part is computed (dist/grad_reduce.h), every
 * micro-batch's sums accumulating there. Rank 0 alone writes
 * the metrics, the checkpoints (the moments gathered: the same files
 * whatever N and zero) and the final model; a checkpoint resumes under any
 * N and zero. Losses and weights agree with one process to float32
 * reduction order, not bit for bit.
 * On GPUs (device cuda, N ranks): one GPU per rank, the same share of the
 * micro-batches (an idle pass where a rank's share is one shorter), the
 * device gradients summed by NCCL before the clip and AdamW, zero as
 * train/step_device.h says (1: the AdamW moments sharded on the GPUs; 2:
 * also the gradients, each layer reduce-scattered as the backward leaves
 * it; below 3 the fp32 parameters stay whole, all-gathered after each
 * rank's update of its range; 3: also the parameters, each layer gathered
 * just before a pass reads it, and every rank validates). The host keeps
 * what the GPU holds of the parameters (whole, or the shard) and the
 * rank's range of the moments for the checkpoints, written as above. The
 * caller starts the group's GPU communicator first (dist/comm.h
 * tn_comm_gpu_init).
 *
 * Tensor parallel (tensor_parallel = T > 1, dist/tensor_parallel.h; on
 * the CPU, or on GPUs at ZeRO-0 and 1, step_device.h, the tensor and data
 * groups' NCCL communicators split from the job's): the N ranks form N / T
 * tensor groups of T consecutive ranks, each holding one copy of the
 * model split T ways (§3.2.2); the data parallel
 * above then runs over the N / T data groups (the ranks holding the same
 * part: "ranks" above means data groups), ZeRO sharding each rank's part.
 * The global gradient norm counts the replicated tensors once. Rank 0's
 * tensor group validates; checkpoints and the final model are gathered
 * part by part into the whole model's files, the same as without tensor
 * parallelism; at start and on resume each rank draws or reads its own
 * part alone (tensor_parallel.h tn_tp_runs): a checkpoint resumes under
 * any T, N and zero.
 */
#ifndef TN_TRAIN_TRAINER_H
#define TN_TRAIN_TRAINER_H

#include <stdint.h>

#include "dist/comm.h"
#include "model/config.h"
#include "train/optimizer.h"
#include "train/step_device.h"
#include "util/error.h"

typedef struct TnTrainOptions {
    TnConfig config;           /* the model to create (on resume the checkpoint's is taken, see model_options) */
    const char *init_from;     /* a model directory (config.json and weights) whose model starts the run instead
                                * of config (fine-tuning: step 0, fresh AdamW moments); its tokenizer is the
                                * run's unless tokenizer is given */
    const char *model_options; /* the options that made config (or init_from), as given: "--size tiny --pe ape",
                                * recorded with the checkpoints; on resume, when not NULL, the model they make
                                * must be the run's (refused, naming them and the run's, otherwise) */
    const char *data;          /* corpus.h paths, comma-separated */
    const char *val_data;      /* NULL: hold out val_fraction of the tokens of data */
    const char *tokenizer;     /* tokenizer.json, NULL: byte-level (a resume: the checkpoint's) */
    int vocab_from_tokenizer;  /* config's vocab_size is the tokenizer's (no --vocab): a resume's is its tokenizer's */
    double val_fraction;       /* default 0.05; 0 without val_data: no validation, every token trains */
    int seq_len, micro_batch;  /* T and the windows per forward pass */
    long long batch_tokens;    /* tokens per optimizer step (rounded to micro-batches) */
    long long steps;           /* optimizer steps of the whole run */
    long long total_tokens;    /* > 0: instead of steps, enough steps to see this many tokens */
    double lr, min_lr_ratio;   /* peak learning rate; the cosine ends at min_lr_ratio * lr */
    long long warmup;          /* steps of linear warmup */
    TnAdamW adamw;
    double grad_clip;          /* max global l2 norm; <= 0 disables */
    uint64_t seed;             /* initialisation and data order */
    int eval_every, eval_windows; /* validation every N steps on up to this many windows */
    int checkpoint_every, log_every;
    const char *out_dir;
    int resume;
    int quiet;                 /* no progress lines (tests) */
    TnDevice device;           /* where the step and the validation run (step_device.h) */
    TnRecompute recompute;     /* activation checkpointing of a device step (model/recompute.h) */
    const TnComm *comm;        /* the job's ranks (the data group, or split with tensor_parallel); NULL: alone */
    int zero;                  /* ZeRO stage 0..3, see above */
    int tensor_parallel;       /* T, ranks per tensor group; 0 or 1: none */
    int data_parallel;         /* > 0: the job's ranks must be this x T; 0: N / T */
    /* Called after every step with its 1-based number and mean loss. */
    void (*on_step)(long long step, float loss, void *user);
    void *user;
} TnTrainOptions;

/* Defaults: ctx 256, micro_batch 8, batch_tokens 8 x 256, 1000 steps, lr
 * 1e-3, min_lr_ratio 0.1, warmup 100, AdamW defaults, clip 1.0, seed 1234,
 * eval every 100 steps on 64 windows, checkpoint every 500, log every 10,
 * val_fraction 0.05. The config and the paths are left empty. */
void tn_train_options_defaults(TnTrainOptions *o);

/* TN_TRAIN_COMPLETE: a resume of a run already at its last step; nothing
 * was trained (result: the step, and the final model's directory, or the
 * checkpoint's if the run has none). */
typedef enum TnTrainStatus { TN_TRAIN_DONE = 0, TN_TRAIN_INTERRUPTED = 1, TN_TRAIN_COMPLETE = 2 } TnTrainStatus;

/* The bytes one rank holds, by kind (the sizes of its buffers, float32;
 * dist/plan.h's tn_plan_elements counts the same elements). */
typedef struct TnTrainMemory {
    size_t parameters;   /* the whole model, or (ZeRO-3) the rank's shard */
    size_t gather;       /* ZeRO-3: the gather buffer of one part (dist/fsdp.h) */
    size_t gradients;    /* the whole buffer, or (ZeRO-2/3) the rank's shard */
    size_t grad_buffers; /* ZeRO-2/3: the backward's part buffers (dist/grad_reduce.h) */
    size_t moments;      /* AdamW's m and v of the range the rank updates */
    size_t activations;  /* the forward's arena and the backward's buffers */
    size_t total;
} TnTrainMemory;

typedef struct TnTrainResult {
    long long steps, tokens;
    double final_loss, final_val_loss; /* val NaN when never evaluated */
    double seconds;                    /* of this session */
    char model_dir[4096];              /* the final model (or the checkpoint when interrupted) */
    TnTrainMemory memory;              /* this rank's, as printed at start-up */
    int stopped_together;              /* failed where every rank fails alike (a loss sum or gradient
                                        * norm that is not finite): the ranks can say why before the
                                        * job ends */
} TnTrainResult;

/* Memory of a CPU training run in one process (ZeRO-0) of cfg with
 * micro-batches of micro_batch x seq_len tokens on `threads` OpenMP
 * threads, as tn_train_run allocates it: the activation arenas of the
 * forward and backward passes (sized for the validation's windows of
 * seq_len + 1 tokens), and with tn_train_memory_bytes also the fp32
 * weights, gradients and AdamW moments (16 bytes per parameter). The token
 * buffers and the corpus are not counted. */
size_t tn_train_activation_bytes(const TnConfig *cfg, int micro_batch, int seq_len, int threads);
size_t tn_train_memory_bytes(const TnConfig *cfg, int micro_batch, int seq_len, int threads);
/* The longest seq_len whose tn_train_memory_bytes fits in budget bytes
 * (at most 2^24); 0 if not even one token fits. */
int tn_train_longest_context(const TnConfig *cfg, int micro_batch, double budget, int threads);

/* Runs (or resumes) the training described by o. Returns TN_TRAIN_DONE,
 * TN_TRAIN_INTERRUPTED, TN_TRAIN_COMPLETE, or -1 with err filled. Settings
 * it adjusts (a batch rounded to whole micro-batches, a validation split
 * raised to one window) and a warmup that fills the run are warned of on
 * stderr by rank 0. */
int tn_train_run(const TnTrainOptions *o, TnTrainResult *result, TnError *err);

#endif
