/* tnllm train: train a model on the CPU or a GPU (train/trainer.h). */
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/switch_flags.h"
#include "dist/comm.h"
#include "train/trainer.h"
#include "util/device.h"
#include "tokenizer/tokenizer.h"

static void usage(void) {
    TnTrainOptions d;
    tn_train_options_defaults(&d);
    printf("usage: tnllm train (--size NAME | --config FILE | --init-from MODEL_DIR) --data PATHS -o DIR [options]\n"
           "       tnllm train ... -o DIR --resume     (the same command again, continues bit-identically)\n\n"
           "Trains a TransNormerLLM with AdamW on the CPU or a GPU (--device cuda), writing metrics.jsonl,\n"
           "checkpoints, the final model (DIR/model) and the loss curve (DIR/loss.svg) into DIR.\n"
           "Ctrl-C (SIGINT) or SIGTERM: the run says so at once, finishes its step, writes a checkpoint and\n"
           "exits with status 130; a second Ctrl-C aborts at once without saving (the run then resumes from\n"
           "the checkpoint before).\n"
           "A resume continues the run's model: model options, if given, must make the same model, and the\n"
           "seed must be the run's. Another --steps/--tokens, learning-rate schedule, AdamW setting or clip\n"
           "is taken from the checkpoint's step on, each change printed; a run already at its last step has\n"
           "nothing to do.\n\n"
           "model\n"
           "  --size NAME          a named size: %s\n"
           "  --config FILE        an HF config.json\n"
           "  --init-from DIR      fine-tune: start from the model directory DIR (config.json + weights, as\n"
           "                       tnllm init, a finished run's DIR/model or a released checkpoint give), its\n"
           "                       tokenizer too unless --tokenizer; step 0, fresh AdamW moments\n"
           "  --vocab N            vocabulary size (default: the tokenizer's; --config keeps its own)\n"
           "  --tokenizer FILE     tokenizer.json or SentencePiece .model for text data (default: byte-level)\n"
           "data\n"
           "  --data PATHS         comma-separated token shards, .jsonl ({\"text\": ...} lines) or text files\n"
           "                       (.jsonl and text also .gz or .zst, decompressed)\n"
           "  --val-data PATHS     validation data (default: the last --val-fraction of --data)\n"
           "  --val-fraction F     held-out fraction when no --val-data, at least one window (default %.2f;\n"
           "                       0: no validation, every token trains)\n"
           "  -c, --ctx T          context length of the training windows (default %d)\n"
           "  --micro-batch B      windows per forward pass (default %d)\n"
           "  --batch-tokens N     tokens per optimizer step, by gradient accumulation, rounded up to whole\n"
           "                       micro-batches (default %lld)\n"
           "schedule\n"
           "  --steps N            optimizer steps (default %lld)\n"
           "  --tokens N           train on N tokens instead of a number of steps (it wins over --steps)\n"
           "  --lr X               peak learning rate (default %g)\n"
           "  --min-lr-ratio X     cosine decay ends at X * lr (default %g)\n"
           "  --warmup N           linear warmup steps (default %lld)\n"
           "  --weight-decay X     decoupled AdamW decay on matrices, not on LRPE theta (default %g)\n"
           "  --beta1 X, --beta2 X, --eps X   AdamW (defaults %g, %g, %g)\n"
           "  --grad-clip X        global gradient-norm clip, 0 = off (default %g)\n"
           "  --seed S             initialisation and data order (default %llu)\n"
           "run\n"
           "  -o, --output DIR     run directory\n"
           "  --resume             continue the run in DIR from its latest checkpoint\n"
           "  --eval-every N       validation loss every N steps, 0 = only at the end (default %d)\n"
           "  --eval-windows N     validation windows per evaluation (default %d)\n"
           "  --save-every N       checkpoint every N steps, 0 = only at the end (default %d)\n"
           "  --log-every N        progress line every N steps (default %d)\n"
           "  --device NAME        where the training step runs: cpu, or cuda (one GPU: bf16 matrix products\n"
           "                       with fp32 accumulation, fp32 master weights and moments; head width 64\n"
           "                       or 128; every model switch and --arch transformer; validation on the\n"
           "                       GPU too; deterministic: two runs, or a run and its resume, agree bit for\n"
           "                       bit). Default cpu; this tnllm is %s\n"
           "  --recompute LEVEL    activation checkpointing of the GPU step (paper 5.2.2): none (default: keep\n"
           "                       every activation), norms (recompute the norms' outputs, q/k features, the\n"
           "                       gate and the SGLU product in the backward), layers (keep each layer's\n"
           "                       input only; one more forward in all). Same gradients; less memory\n"
           "  -t, --threads N      OpenMP threads (default: all cores; under mpirun give cores / ranks)\n"
           "data parallel (mpirun -np N tnllm train ...; %s; %s)\n"
           "  --zero K             ZeRO stage: 0 replicates everything, 1 shards the AdamW moments over the\n"
           "                       ranks, 2 also the reduced gradients, 3 also the parameters (FSDP: each\n"
           "                       layer gathered just before use) (default 0). Each rank computes every\n"
           "                       N-th micro-batch of a step (so --batch-tokens must give at least N\n"
           "                       micro-batches); the gradients are reduced while the backward runs; losses\n"
           "                       and weights match one process with the same options. Rank 0 writes the\n"
           "                       files; a checkpoint resumes with any N and K. On GPUs (--device cuda, one\n"
           "                       per rank: the rank's local rank) the same stages by NCCL (below 3 each\n"
           "                       GPU keeps the fp32 parameters and their bf16 copy whole).\n"
           "  --tp T               tensor parallelism (paper §3.2.2): groups of T consecutive ranks each hold\n"
           "                       one copy of the model split T ways (GLA by heads, SGLU by columns, one\n"
           "                       all-reduce per split product); T must divide H, G and N. The data\n"
           "                       parallelism and --zero then run over the N / T groups. Checkpoints stay\n"
           "                       whole: a run resumes with any --tp. On GPUs (--device cuda, one per\n"
           "                       rank) the all-reduces are NCCL's, with --zero 0 or 1 alone (tnllm plan\n"
           "                       lists those layouts). Default 1: no split\n"
           "  --dp D               data-parallel groups: checks that N = D x T (default N / T)\n"
           "  --dist-init SPEC     for ranks started without MPI, by torchrun (RANK, WORLD_SIZE, LOCAL_RANK)\n"
           "                       or srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), on GPUs: how rank 0\n"
           "                       passes NCCL's id: file:PATH (a fresh path on a shared file system) or\n"
           "                       tcp://HOST:PORT (HOST: rank 0's address). Under mpirun MPI passes it.\n",
           tn_config_size_names(), d.val_fraction, d.seq_len, d.micro_batch, d.batch_tokens, d.steps, d.lr,
           d.min_lr_ratio, d.warmup, d.adamw.weight_decay, d.adamw.beta1, d.adamw.beta2, d.adamw.eps, d.grad_clip,
           (unsigned long long)d.seed, d.eval_every, d.eval_windows, d.checkpoint_every, d.log_every,
           tn_device_cuda_build(),
#ifdef TN_MPI
           "this tnllm is built with MPI",
#else
           "this tnllm is built without MPI",
#endif
#ifdef TN_NCCL
           "with NCCL for GPUs"
#else
           "without NCCL: one GPU per run"
#endif
    );
    switch_flags_usage();
}

/* OpenMPI pins each rank to one core when it starts two ranks or fewer, and
 * OpenMP then gives the rank one thread: a job far slower than the machine
 * allows, with nothing to say why. */
static void warn_if_pinned(const TnComm *comm) {
    cpu_set_t allowed;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (comm->size < 2 || sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int cores = CPU_COUNT(&allowed);
    if ((long)cores * comm->size < online)
        fprintf(stderr, "tnllm train: warning: rank %d may run on %d of the %ld cores (the launcher pinned it) with "
                        "%d OpenMP thread%s: start mpirun with --bind-to none and give -t CORES/RANKS\n",
                comm->rank, cores, online, omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s");
}

/* Appends "FLAG VALUE" to the text of the model options (TnTrainOptions.model_options). */
static void add_model_option(char *text, size_t cap, const char *flag, const char *value) {
    size_t n = strlen(text);
    snprintf(text + n, cap - n, "%s%s %s", n ? " " : "", flag, value);
}

/* The model of a new run, or the one a resume's model options make (the
 * trainer checks it against the run's): --config or --size, the switches,
 * the vocabulary. --init-from's is read by the trainer. */
static void build_config(TnTrainOptions *o, const char *size, const char *config, int vocab,
                         const TnSwitchFlags *switches) {
    TnError err;
    if (!config && !size) tn_die_usage("tnllm train: give --size NAME, --config FILE or --init-from DIR");
    if (config && tn_config_load(&o->config, config, &err)) tn_die("tnllm train: %s", err.msg); /* a file that fails */
    if (!config && tn_config_from_size(&o->config, size, &err)) tn_die_usage("tnllm train: %s", err.msg);
    switch_flags_apply(switches, &o->config, "train");
    if (vocab) {
        o->config.vocab_size = vocab;
    } else if (!config) {
        TnTokenizer *tok;
        if (o->tokenizer ? tn_tokenizer_load(&tok, o->tokenizer, &err) : (tok = tn_tokenizer_bytes(), 0))
            tn_die("%s", err.msg);
        o->config.vocab_size = tn_tokenizer_vocab_size(tok);
        o->vocab_from_tokenizer = 1;
        tn_tokenizer_free(tok);
    }
}

int cmd_train(int argc, char **argv) {
    TnTrainOptions o;
    tn_train_options_defaults(&o);
    const char *size = NULL, *config = NULL, *dist_init = NULL;
    int vocab = 0, threads = 0, steps_given = 0;
    TnSwitchFlags switches = {0};
    TnArgs a;
    args_init(&a, "train", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, NULL, "--size")) size = args_value(&a);
        else if (args_is(&a, NULL, "--config")) config = args_value(&a);
        else if (args_is(&a, NULL, "--init-from")) o.init_from = args_value(&a);
        else if (args_is(&a, NULL, "--vocab")) vocab = (int)args_int(&a, 3, 1 << 24);
        else if (args_is(&a, NULL, "--tokenizer")) o.tokenizer = args_value(&a);
        else if (args_is(&a, NULL, "--data")) o.data = args_value(&a);
        else if (args_is(&a, NULL, "--val-data")) o.val_data = args_value(&a);
        else if (args_is(&a, NULL, "--val-fraction")) o.val_fraction = args_double(&a, 0.0, 0.9);
        else if (args_is(&a, "-c", "--ctx")) o.seq_len = (int)args_int(&a, 1, 1 << 20);
        else if (args_is(&a, NULL, "--micro-batch")) o.micro_batch = (int)args_int(&a, 1, 1 << 16);
        else if (args_is(&a, NULL, "--batch-tokens")) o.batch_tokens = args_int(&a, 1, (long long)1 << 40);
        else if (args_is(&a, NULL, "--steps")) o.steps = args_int(&a, 1, (long long)1 << 40), steps_given = 1;
        else if (args_is(&a, NULL, "--tokens")) o.total_tokens = args_int(&a, 1, (long long)1 << 50);
        else if (args_is(&a, NULL, "--lr")) o.lr = args_double(&a, 0.0, 10.0);
        else if (args_is(&a, NULL, "--min-lr-ratio")) o.min_lr_ratio = args_double(&a, 0.0, 1.0);
        else if (args_is(&a, NULL, "--warmup")) o.warmup = args_int(&a, 0, (long long)1 << 40);
        else if (args_is(&a, NULL, "--weight-decay")) o.adamw.weight_decay = (float)args_double(&a, 0.0, 10.0);
        else if (args_is(&a, NULL, "--beta1")) o.adamw.beta1 = (float)args_double(&a, 0.0, 0.999999);
        else if (args_is(&a, NULL, "--beta2")) o.adamw.beta2 = (float)args_double(&a, 0.0, 0.999999);
        else if (args_is(&a, NULL, "--eps")) o.adamw.eps = (float)args_double(&a, 1e-30, 1.0);
        else if (args_is(&a, NULL, "--grad-clip")) o.grad_clip = args_double(&a, 0.0, 1e9);
        else if (args_is(&a, NULL, "--seed")) o.seed = (uint64_t)args_int(&a, 0, (long long)1 << 62);
        else if (args_is(&a, "-o", "--output")) o.out_dir = args_value(&a);
        else if (args_is(&a, NULL, "--resume")) o.resume = 1;
        else if (args_is(&a, NULL, "--eval-every")) o.eval_every = (int)args_int(&a, 0, 1 << 30);
        else if (args_is(&a, NULL, "--eval-windows")) o.eval_windows = (int)args_int(&a, 1, 1 << 30);
        else if (args_is(&a, NULL, "--save-every")) o.checkpoint_every = (int)args_int(&a, 0, 1 << 30);
        else if (args_is(&a, NULL, "--log-every")) o.log_every = (int)args_int(&a, 1, 1 << 30);
        else if (args_is(&a, NULL, "--device")) {
            const char *name = args_value(&a);
            if (tn_device_parse(name, &o.device)) tn_die_usage("tnllm train: --device %s: use cpu or cuda", name);
        } else if (args_is(&a, NULL, "--recompute")) {
            const char *name = args_value(&a);
            if (tn_recompute_parse(name, &o.recompute))
                tn_die_usage("tnllm train: --recompute %s: use none, norms or layers", name);
        } else if (args_is(&a, "-t", "--threads")) threads = (int)args_int(&a, 1, 4096);
        else if (args_is(&a, NULL, "--zero")) o.zero = (int)args_int(&a, 0, 3);
        else if (args_is(&a, NULL, "--tp")) o.tensor_parallel = (int)args_int(&a, 1, 4096);
        else if (args_is(&a, NULL, "--dp")) o.data_parallel = (int)args_int(&a, 1, 1 << 20);
        else if (args_is(&a, NULL, "--dist-init")) dist_init = args_value(&a);
        else if (!switch_flags_match(&switches, &a)) args_unknown(&a);
    }
    args_require(&a, o.out_dir, "-o DIR");
    if (o.recompute != TN_RECOMPUTE_NONE && o.device == TN_DEVICE_CPU)
        tn_die_usage("tnllm train: --recompute %s is for --device cuda (the CPU trainer keeps every activation)",
               tn_recompute_name(o.recompute));
    args_require(&a, o.data, "--data PATHS");
    if (threads) omp_set_num_threads(threads);
    /* the model options as given: recorded with the run, and on a resume checked against its model */
    char model_options[8192] = "";
    if (size) add_model_option(model_options, sizeof model_options, "--size", size);
    if (config) add_model_option(model_options, sizeof model_options, "--config", config);
    if (vocab) {
        char text[16];
        snprintf(text, sizeof text, "%d", vocab);
        add_model_option(model_options, sizeof model_options, "--vocab", text);
    }
    for (int i = 0; i < switches.count; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", switches.key[i]);
        add_model_option(model_options, sizeof model_options, flag, switches.value[i]);
    }
    if (o.init_from && model_options[0])
        tn_die_usage("tnllm train: --init-from takes the model from %s/config.json: drop %s", o.init_from, model_options);
    if (o.init_from) add_model_option(model_options, sizeof model_options, "--init-from", o.init_from);
    if (o.resume && model_options[0] && !o.init_from && !size && !config)
        tn_die_usage("tnllm train: %s on a resume: give all the model options the run was started with (--size or "
               "--config too), or none (a resume continues the run's model)", model_options);
    if (model_options[0]) o.model_options = model_options;
    if (!o.init_from && (!o.resume || model_options[0])) build_config(&o, size, config, vocab, &switches);
    TnError err;
    /* before any GPU is started: a layout the GPUs do not run */
    if (o.device == TN_DEVICE_CUDA && o.tensor_parallel > 1 && tn_step_device_tp_check(o.zero, &err))
        tn_die("tnllm train: %s", err.msg);
    TnComm comm;
    if (tn_comm_init(&comm, &err)) tn_die("tnllm train: %s", err.msg);
    o.comm = &comm;
    warn_if_pinned(&comm);
    if (comm.rank == 0 && steps_given && o.total_tokens > 0)
        fprintf(stderr, "tnllm train: warning: --tokens %lld sets the number of steps; --steps %lld is ignored\n",
                o.total_tokens, o.steps);
    TnTrainResult r = {0}; /* read on failure too, where tn_train_run never ran */
    /* one GPU per rank, the ranks' gradients (and with --tp the parts'
     * results) summed by NCCL over groups split from this one */
    int gpus = o.device == TN_DEVICE_CUDA && comm.size > 1;
    int rc = gpus ? tn_comm_gpu_init(&comm, dist_init, &err) : 0;
    if (!rc) rc = tn_train_run(&o, &r, &err);
    if (rc < 0) {
        if (comm.size > 1) { /* the other ranks would wait for this one in a collective */
            fprintf(stderr, "tnllm: error: rank %d of %d: %s\n", comm.rank, comm.size, err.msg);
            fflush(stderr);
            /* where every rank stops alike, each has said why before the first abort ends the job */
            TnError barrier_err;
            if (r.stopped_together) tn_comm_barrier(&comm, &barrier_err);
            tn_comm_abort(&comm, 1);
        }
        tn_die("tnllm train: %s", err.msg);
    }
    int root = comm.rank == 0;
    tn_comm_finalize(&comm);
    if (!root) return rc == TN_TRAIN_INTERRUPTED ? 130 : 0;
    if (rc == TN_TRAIN_INTERRUPTED) {
        fprintf(stderr, "tnllm train: interrupted after step %lld; checkpoint %s; run the same command with --resume "
                        "to continue\n", r.steps, r.model_dir);
        return 130;
    }
    if (rc == TN_TRAIN_COMPLETE) {
        char length[48];
        if (o.total_tokens > 0) snprintf(length, sizeof length, "--tokens %lld", o.total_tokens);
        else snprintf(length, sizeof length, "--steps %lld", o.steps);
        printf("run %s is already complete at step %lld (%s): nothing to do; model %s\n", o.out_dir, r.steps, length,
               r.model_dir);
        return 0;
    }
    char validation[96] = "no validation (--val-fraction 0)";
    if (!isnan(r.final_val_loss))
        snprintf(validation, sizeof validation, "validation loss %.4f (perplexity %.3f)", r.final_val_loss,
                 exp(r.final_val_loss));
    printf("done: %lld steps, %lld tokens in %.1f s; final loss %.4f, %s; model %s\n", r.steps, r.tokens, r.seconds,
           r.final_loss, validation, r.model_dir);
    return 0;
}
