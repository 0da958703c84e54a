#include "train/trainer.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/corpus.h"
#include "data/loader.h"
#include "data/shard.h"
#include "dist/fsdp.h"
#include "dist/grad_reduce.h"
#include "dist/tensor_parallel.h"
#include "infer/perplexity.h"
#include "model/checkpoint.h"
#include "model/transnormer.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "train/run_options.h"
#include "train/state.h"
#include "util/fileio.h"
#include "util/progress.h"

void tn_train_options_defaults(TnTrainOptions *o) {
    memset(o, 0, sizeof *o);
    o->val_fraction = 0.05;
    o->seq_len = 256;
    o->micro_batch = 8;
    o->batch_tokens = 8 * 256;
    o->steps = 1000;
    o->lr = 1e-3;
    o->min_lr_ratio = 0.1;
    o->warmup = 100;
    o->adamw = tn_adamw_defaults();
    o->grad_clip = 1.0;
    o->seed = 1234;
    o->eval_every = 100;
    o->eval_windows = 64;
    o->checkpoint_every = 500;
    o->log_every = 10;
}

/* Set by SIGINT/SIGTERM; the loop checks it between steps. */
static volatile sig_atomic_t stop_requested;
/* Whether this process says so when a signal arrives (rank 0: one line a job). */
static volatile sig_atomic_t announce_stop;

static void request_stop(int signo) {
    int saved_errno = errno; /* the interrupted code may be about to read it */
    /* at once: a step can take minutes, and a user who sees nothing presses
     * again, which kills the run without its checkpoint (write(2) is
     * async-signal-safe, stdio is not) */
    static const char on_int[] = "tnllm train: stopping after this step and saving a checkpoint; press Ctrl-C again "
                                 "to abort without saving\n";
    static const char on_term[] = "tnllm train: SIGTERM: stopping after this step and saving a checkpoint\n";
    if (announce_stop) {
        ssize_t written = signo == SIGINT ? write(STDERR_FILENO, on_int, sizeof on_int - 1)
                                          : write(STDERR_FILENO, on_term, sizeof on_term - 1);
        (void)written; /* nothing to do about a stderr that cannot be written */
    }
    stop_requested = 1;
    errno = saved_errno;
}

/* Everything one run holds; freed by run_free. */
typedef struct Run {
    const TnTrainOptions *o;
    TnTokenizer *tok;
    char tokenizer[4200];  /* its file (o->tokenizer, or init_from's), "" for the byte-level one */
    char *tokenizer_data;  /* that file's bytes, read once: each checkpoint keeps a copy (a resume's file is
                            * in a checkpoint the run later removes) */
    size_t tokenizer_size;
    TnRunOptions given;    /* this session's options, recorded with each checkpoint (run_options.h) */
    TnModel model;
    int have_model;
    uint32_t *train_tokens, *val_tokens; /* val_tokens may point into train_tokens' allocation */
    size_t n_train, n_val;
    int own_val, validates; /* validates: a validation split (--val-data, or --val-fraction above 0) */
    int ended;              /* resume: the checkpoint is the last step of the session that saved it, whose
                             * final model is model/ */
    TnLoader loader;
    float *grads, *m, *v; /* grads holds grads_range: the whole buffer, or (ZeRO-2/3) the rank's shard */
    TnRange grads_range;
    TnTpRun *norm_runs;   /* grads_range's runs of split and replicated tensors (global_norm) */
    int n_norm_runs;
    int32_t *inputs, *targets;
    int micro_batch, accum_steps;
    long long steps; /* of the whole run: o->steps, or o->total_tokens in whole steps */
    TnTrainState state;
    TnMetrics metrics;
    TnStepDevice *device; /* NULL: the step runs on the CPU */
    TnComm single;        /* the group when o->comm is NULL */
    const TnComm *world;  /* every rank of the job */
    const TnComm *comm;   /* the data group: world unless tensor-parallel */
    TnComm tensor_group, data_group; /* tensor parallelism (tp > 1): this rank's groups, owned */
    int tp;               /* ranks per tensor group, 1: none */
    TnParamLayout whole;  /* tp > 1: the whole model's layout (r->model holds this rank's part) */
    int root, quiet;      /* rank 0 writes files and prints */
    TnRange update;       /* the range of the model's buffer this rank updates; r->m and r->v hold it alone */
    TnGradReduce reduce;  /* the CPU step's gradient reduction, overlapped with the backward */
    TnFsdp fsdp;          /* ZeRO-3 on the CPU: the parameters sharded (range update), gathered part by part */
    int sharded;          /* fsdp is in use: model.params is NULL */
    float *first_shard;   /* ZeRO-3: the shard built or read at start, until the CPU's fsdp owns it; a GPU run
                           * keeps it as the host's copy, which checkpoints read (sync_host) */
    TnModelHooks hooks;   /* the model's, pointing at reduce and fsdp */
    char checkpoints[4096], latest[4096];
    char nonfinite_loss[400]; /* the step's first micro-batch loss that is not finite, described; "" if none */
    int stopped_together;     /* a non-finite loss sum or gradient norm stopped the run: every rank stops at the
                               * same step */
} Run;

static void run_free(Run *r, int failed) {
    /* A failed run may leave the groups' other ranks waiting in their
     * collectives: their GPU communicators are aborted before anything
     * waits for the GPU (the device's frees), and not destroyed. */
    if (failed && r->tp > 1) {
        tn_comm_free_failed(&r->tensor_group);
        tn_comm_free_failed(&r->data_group);
    }
    tn_step_device_close(r->device);
    tn_grad_reduce_free(&r->reduce);
    if (r->sharded) tn_fsdp_free(&r->fsdp);
    free(r->first_shard);
    if (r->tp > 1) {
        tn_param_layout_free(&r->whole);
        tn_comm_free(&r->tensor_group);
        tn_comm_free(&r->data_group);
    }
    tn_metrics_close(&r->metrics);
    tn_loader_free(&r->loader);
    if (r->have_model) tn_model_free(&r->model);
    if (r->tok) tn_tokenizer_free(r->tok);
    free(r->tokenizer_data);
    free(r->train_tokens);
    if (r->own_val) free(r->val_tokens);
    free(r->grads);
    free(r->norm_runs);
    free(r->m);
    free(r->v);
    free(r->inputs);
    free(r->targets);
}

/* The training and validation token streams (corpus.h), split when no
 * separate validation data is given (none held out at val_fraction 0). */
static int load_data(Run *r, int vocab_size, TnError *err) {
    const TnTrainOptions *o = r->o;
    if (tn_corpus_read(o->data, r->tok, vocab_size, &r->train_tokens, &r->n_train, err)) return -1;
    r->validates = o->val_data || o->val_fraction > 0;
    if (o->val_data) {
        r->own_val = 1;
        return tn_corpus_read(o->val_data, r->tok, vocab_size, &r->val_tokens, &r->n_val, err);
    }
    if (!r->validates) return 0;
    size_t held = (size_t)(o->val_fraction * (double)r->n_train), need = (size_t)o->seq_len + 1;
    if (held < need && r->root)
        fprintf(stderr, "tnllm train: warning: --val-fraction %g of %zu tokens is %zu, fewer than one validation "
                        "window of --ctx %d + 1: holding out %zu\n", o->val_fraction, r->n_train, held, o->seq_len,
                need);
    if (held < need) held = need;
    if (held + need > r->n_train)
        return tn_fail(err, "%s: %zu tokens cannot be split into training and validation windows of the context "
                            "%d + 1; use a shorter --ctx, more data or --val-data", o->data, r->n_train, o->seq_len);
    r->n_val = held;
    r->n_train -= held;
    r->val_tokens = r->train_tokens + r->n_train;
    return 0;
}

/* The newest step_N directory in the checkpoints directory into name
 * (""): with no `latest`, one that a kill cut short while it was saved. */
static void newest_step_dir(const Run *r, char *name, size_t cap) {
    name[0] = '\0';
    DIR *d = opendir(r->checkpoints);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "step_", 5) == 0 && strlen(e->d_name) < cap && strcmp(e->d_name, name) > 0)
            snprintf(name, cap, "%s", e->d_name);
    closedir(d);
}

/* Reads the name of the newest checkpoint into r->latest (a full path). */
static int read_latest(Run *r, TnError *err) {
    char path[4200], *name;
    if (tn_path_join(path, sizeof path, r->checkpoints, "latest", err)) return -1;
    if (!tn_file_exists(path)) {
        char cut[256];
        newest_step_dir(r, cut, sizeof cut);
        if (cut[0])
            return tn_fail(err, "no complete checkpoint in %s: %s was interrupted while saving; start again without "
                                "--resume", r->checkpoints, cut);
        return tn_fail(err, "%s: no checkpoint to resume from (was the run started with -o %s?)", path, r->o->out_dir);
    }
    if (tn_read_file(path, &name, NULL, err)) return -1;
    name[strcspn(name, "\n")] = '\0';
    int rc = tn_path_join(r->latest, sizeof r->latest, r->checkpoints, name, err);
    free(name);
    return rc;
}

static void remove_checkpoint(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[8400];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static int copy_tokenizer(const Run *r, const char *dir, TnError *err) {
    if (!r->tokenizer[0]) return 0;
    char path[4200];
    /* Under the name tn_tokenizer_for_model looks for. */
    const char *name = tn_tokenizer_is_sentencepiece(r->tokenizer) ? "tokenizer.model" : "tokenizer.json";
    return tn_path_join(path, sizeof path, dir, name, err) ||
                   tn_write_file(path, r->tokenizer_data, r->tokenizer_size, err)
               ? -1
               : 0;
}

/* The whole model's layout (the model's own unless tensor-parallel). */
static const TnParamLayout *whole_layout(const Run *r) { return r->tp > 1 ? &r->whole : &r->model.layout; }

/* Where rank 0 streams a buffer laid out like the whole model's: the next
 * count floats of it, in order. */
typedef int (*Sink)(void *user, const float *data, size_t count, TnError *err);

static int to_checkpoint(void *writer, const float *data, size_t count, TnError *err) {
    return tn_checkpoint_writer_write(writer, data, count, err);
}

static int to_state(void *writer, const float *data, size_t count, TnError *err) {
    return tn_train_state_writer_write(writer, data, count, err);
}

/* Puts tensor rank t's share of part p (of its part layout) into its
 * places in unit, the whole model's part w (tensor_parallel.h's runs). */
static void place_share(const Run *r, int t, TnRange p, TnRange w, const float *share, float *unit) {
    TnRun *runs;
    size_t n_runs = tn_tp_runs(&r->model.layout, &r->whole, &r->model.config, r->tp, t, p.begin, p.end, &runs);
    for (size_t i = 0; i < n_runs; i++)
        memcpy(unit + (runs[i].from - w.begin), share + runs[i].to, runs[i].count * sizeof *unit);
    free(runs);
}

/* The elements of the split tensors among runs (tn_tp_split_runs). */
static size_t split_count(const TnTpRun *runs, int n_runs) {
    size_t count = 0;
    for (int k = 0; k < n_runs; k++) count += runs[k].split ? runs[k].end - runs[k].begin : 0;
    return count;
}

/* Copies the split tensors' elements of part p (runs: its
 * tn_tp_split_runs) between share (the part: share[0] is element p.begin)
 * and packed, where they lie end to end: into packed when to_packed, else
 * back into their places in share. */
static void copy_split(const TnTpRun *runs, int n_runs, TnRange p, float *share, float *packed, int to_packed) {
    for (int k = 0; k < n_runs; k++) {
        if (!runs[k].split) continue;
        size_t count = runs[k].end - runs[k].begin;
        float *in_share = share + (runs[k].begin - p.begin);
        memcpy(to_packed ? packed : in_share, to_packed ? in_share : packed, count * sizeof *packed);
        packed += count;
    }
}

/* The most split elements of one part (runs: room for the layout's
 * tensors). */
static size_t largest_split(const TnModel *m, TnTpRun *runs) {
    size_t largest = 0;
    for (int part = TN_PART_EMBED; part <= m->config.n_layers; part++) {
        TnRange p;
        tn_param_part_range(&m->layout, m->config.n_layers, part, &p.begin, &p.end);
        size_t count = split_count(runs, tn_tp_split_runs(&m->layout, p, runs));
        largest = count > largest ? count : largest;
    }
    return largest;
}

/* Hands rank 0's sink the whole buffer of which this rank holds `held`,
 * the range `range` of its part, one part (params.h: the embedding, a
 * layer, the head) at a time: gathered from the data group's shards when
 * sharded, then, with tensor parallelism, the split tensors' elements
 * from the shares of the tensor group of data rank 0 (the replicated
 * tensors are rank 0's own: equal on every tensor rank), which rank 0
 * puts in place. No rank holds more than one part of the model (rank 0:
 * its share of one and a copy, the T shares' split elements and the
 * whole part; without MPI the gather is an all-gather (dist/comm.c), so
 * every rank of that tensor group holds the T shares' split elements for
 * the time of the call). Collective over the job (a rank that fails ends
 * the job, cmd_train). */
static int stream_whole(Run *r, float *held, TnRange range, Sink sink, void *user, TnError *err) {
    const TnModel *m = &r->model;
    size_t n = m->layout.total;
    int L = m->config.n_layers, T = r->tp, sharded = range.end - range.begin < n;
    if (T == 1 && !sharded) return r->root ? sink(user, held, n, err) : 0;
    int assembles = r->comm->rank == 0; /* holds its tensor rank's share whole */
    size_t largest = tn_param_largest_part(&m->layout, L, TN_PART_EMBED);
    float *gathered = sharded ? tn_malloc(largest * sizeof *gathered) : NULL;
    TnTpRun *runs = T > 1 ? tn_malloc((size_t)m->layout.n_tensors * sizeof *runs) : NULL;
    size_t most_split = T > 1 ? largest_split(m, runs) : 0;
    float *packed = T > 1 && assembles ? tn_malloc(most_split * sizeof *packed) : NULL;
    float *shares = T > 1 && r->root ? tn_malloc((size_t)T * most_split * sizeof *shares) : NULL;
    float *scratch = T > 1 && r->root ? tn_malloc(largest * sizeof *scratch) : NULL; /* one rank's share */
    size_t largest_whole = tn_param_largest_part(whole_layout(r), L, TN_PART_EMBED);
    float *unit = T > 1 && r->root ? tn_malloc(largest_whole * sizeof *unit) : NULL;
    int rc = 0;
    for (int part = TN_PART_EMBED; part <= L && !rc; part++) {
        TnRange p, w;
        tn_param_part_range(&m->layout, L, part, &p.begin, &p.end);
        float *share = sharded ? gathered : held + p.begin;
        if (sharded) rc = tn_comm_all_gather_part(r->comm, held, n, p, gathered, err);
        if (rc || !assembles) continue;
        if (T == 1) {
            rc = sink(user, share, p.end - p.begin, err);
            continue;
        }
        /* every tensor rank's part has the same layout, so the same split count (none: nothing to gather) */
        int n_runs = tn_tp_split_runs(&m->layout, p, runs);
        size_t split = split_count(runs, n_runs);
        copy_split(runs, n_runs, p, share, packed, 1);
        if (split) rc = tn_comm_gather(&r->tensor_group, packed, shares, (size_t)T * split, 0, err);
        if (rc || !r->root) continue;
        tn_param_part_range(&r->whole, L, part, &w.begin, &w.end);
        /* a copy of root's share turns into each rank's in turn: the split elements replaced, the replicated kept */
        memcpy(scratch, share, (p.end - p.begin) * sizeof *scratch);
        for (int t = 0; t < T; t++) {
            copy_split(runs, n_runs, p, scratch, shares + (size_t)t * split, 0);
            place_share(r, t, p, w, scratch, unit);
        }
        rc = sink(user, unit, w.end - w.begin, err);
    }
    free(gathered);
    free(runs);
    free(packed);
    free(shares);
    free(scratch);
    free(unit);
    return rc ? -1 : 0;
}

/* The parameters this rank holds and their range of its part: the shard
 * under ZeRO-3 (the CPU's FSDP shard, or a GPU run's host copy), else the
 * model's whole buffer. */
static float *held_params(const Run *r, TnRange *range) {
    float *shard = r->sharded ? r->fsdp.shard : r->first_shard;
    *range = shard ? r->update : (TnRange){0, r->model.layout.total};
    return shard ? shard : r->model.params;
}

/* Rank 0 writes the whole model into the HF directory dir, with the
 * tokenizer, streamed from the ranks' parameters. Collective. */
static int write_model(Run *r, const char *dir, TnError *err) {
    TnRange range;
    float *params = held_params(r, &range);
    TnCheckpointWriter writer;
    if (r->root && tn_checkpoint_writer_open(&writer, dir, &r->model.config, whole_layout(r), TN_F32, 0, err))
        return -1;
    if (stream_whole(r, params, range, to_checkpoint, &writer, err)) {
        if (r->root) tn_checkpoint_writer_abort(&writer);
        return -1;
    }
    if (!r->root) return 0;
    return tn_checkpoint_writer_close(&writer, err) || copy_tokenizer(r, dir, err) ? -1 : 0;
}

/* Rank 0 writes the state file at path with the whole moments, streamed
 * from the ranks' ranges. Collective. */
static int write_state(Run *r, const char *path, TnError *err) {
    TnTrainStateWriter writer;
    if (r->root && tn_train_state_writer_open(&writer, path, &r->state, whole_layout(r)->total,
                                              TN_TRAIN_STATE_BLOCK_FLOATS, err))
        return -1;
    if (stream_whole(r, r->m, r->update, to_state, &writer, err) ||
        stream_whole(r, r->v, r->update, to_state, &writer, err)) {
        if (r->root) tn_train_state_writer_abort(&writer);
        return -1;
    }
    return r->root ? tn_train_state_writer_commit(&writer, err) : 0;
}

/* Writes checkpoints/step_N (model, state with the whole parameters and
 * moments, the run's options), then points `latest` at it and removes the
 * previous one: a crash at any moment leaves a complete checkpoint named
 * by `latest`. Collective: every rank calls it, rank 0 writes. */
static int save_checkpoint(Run *r, TnError *err) {
    char name[64], dir[4096], state_path[4400], options_path[4400], latest_path[4200], previous[4096];
    snprintf(name, sizeof name, "step_%08lld", r->state.step);
    if (tn_path_join(dir, sizeof dir, r->checkpoints, name, err) ||
        tn_path_join(state_path, sizeof state_path, dir, TN_TRAIN_STATE_FILE, err) ||
        tn_path_join(options_path, sizeof options_path, dir, TN_RUN_OPTIONS_FILE, err) ||
        tn_path_join(latest_path, sizeof latest_path, r->checkpoints, "latest", err))
        return -1;
    r->state.loader = r->loader.state;
    if (r->root && tn_mkdir_p(dir, err)) return -1;
    if (write_model(r, dir, err) || write_state(r, state_path, err) ||
        (r->root && tn_run_options_save(options_path, &r->given, err))) {
        if (r->root && strcmp(dir, r->latest) != 0) remove_checkpoint(dir); /* no half-written checkpoint stays */
        return -1;
    }
    snprintf(previous, sizeof previous, "%s", r->latest);
    if (r->root && tn_write_file(latest_path, name, strlen(name), err)) return -1;
    /* every rank names it when it stops (the last good checkpoint) */
    snprintf(r->latest, sizeof r->latest, "%s", dir);
    if (!r->root) return 0;
    if (previous[0] && strcmp(previous, dir) != 0) remove_checkpoint(previous);
    return 0;
}

/* Names the first tensor holding a value that is not finite in the range
 * of a buffer laid out like the parameters (buffer[0] is element
 * range.begin); "" when all are finite. */
static const char *nonfinite_in_range(const TnParamLayout *layout, const float *buffer, TnRange range) {
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *t = &layout->tensors[i];
        TnRange in = tn_range_intersect(range, (TnRange){t->offset, t->offset + t->numel});
        for (size_t j = in.begin; j < in.end; j++)
            if (!isfinite(buffer[j - range.begin])) return t->name;
    }
    return "";
}

/* Names the first tensor of this rank's gradients (r->grads) holding a
 * value that is not finite. From ZeRO-2 on a rank holds its range alone,
 * so the value may lie in another rank's. */
static const char *nonfinite_gradient(const Run *r) {
    const char *name = nonfinite_in_range(&r->model.layout, r->grads, r->grads_range);
    return *name ? name : "another rank's range";
}

/* Names where a non-finite loss first appears: a parameter, else the
 * first layer whose residual stream is not finite. */
static void locate_nonfinite_loss(const Run *r, int batch, char *out, size_t cap) {
    const TnModel *m = &r->model;
    TnRange range;
    const char *param = nonfinite_in_range(&m->layout, held_params(r, &range), range);
    if (*param) { snprintf(out, cap, "parameter %s", param); return; }
    size_t n = (size_t)batch * r->o->seq_len * m->config.dim;
    for (int l = 0; l < m->config.n_layers; l++) {
        const TnLayerActs *la = &m->acts.layers[l];
        for (size_t i = 0; i < n; i++)
            if (!isfinite(la->resid_mid[i]) || !isfinite(l + 1 < m->config.n_layers ? m->acts.layers[l + 1].resid[i]
                                                                                        : m->acts.resid_final[i])) {
                snprintf(out, cap, "the activations of layer %d", l);
                return;
            }
    }
    snprintf(out, cap, "the logits");
}

/* A micro-batch loss that is not finite does not stop its rank at once:
 * the other ranks would wait for it in the step's collectives forever. The
 * first of the step is described (note_nonfinite_loss), the step's passes
 * run on (the gradients turn NaN, harmlessly), and every rank stops
 * together once the loss sum, added over the ranks, is not finite
 * (check_loss_sum): the rank that saw it says where. */
static void note_nonfinite_loss(Run *r, float micro_loss, const char *where) {
    if (!r->nonfinite_loss[0])
        snprintf(r->nonfinite_loss, sizeof r->nonfinite_loss, "the loss is %g %s", micro_loss, where);
}

/* Fails the step being taken for the reason `what`, naming the last good
 * checkpoint (the one a restart resumes from). */
static int stop_training(const Run *r, const char *what, TnError *err) {
    return tn_fail(err, "step %lld: %s; stopped, the last good checkpoint is %s", r->state.step + 1, what,
                   r->latest[0] ? r->latest : "(none yet)");
}

/* stop_training for a gradient that is not finite in the tensor named:
 * every rank stops alike (the norm is summed over the ranks). */
static int stop_on_gradient(Run *r, const char *tensor, TnError *err) {
    r->stopped_together = 1;
    char what[512];
    snprintf(what, sizeof what, "the gradient of %s is not finite", tensor);
    return stop_training(r, what, err);
}

static int check_loss_sum(Run *r, double loss_sum, TnError *err) {
    if (isfinite(loss_sum)) return 0;
    r->stopped_together = 1;
    return stop_training(r, r->nonfinite_loss[0] ? r->nonfinite_loss : "the loss is not finite on another rank", err);
}

/* train_step on the accelerator: the same micro-batches, scale and checks;
 * with several ranks (one GPU each) every rank computes its share of the
 * micro-batches in passes of one per rank as on the CPU (an idle pass
 * where its share is one shorter: from ZeRO-2 on every backward makes
 * collectives), then the device sums the gradients over the ranks and
 * updates (step_device.h: ZeRO-0 to 3); the losses are summed on the host. The backward scaled
 * every rank's gradient by 1 / (the whole batch's tokens), so the sum is
 * the gradient of the batch's mean loss. */
static int device_train_step(Run *r, double lr, float *loss, double *grad_norm, TnError *err) {
    const TnTrainOptions *o = r->o;
    int B = r->micro_batch, T = o->seq_len, ranks = r->comm->size;
    float scale = 1.0f / (float)((long long)B * T * r->accum_steps);
    if (tn_step_device_zero_grad(r->device, err)) return -1;
    r->nonfinite_loss[0] = '\0';
    double sum = 0.0;
    for (int a = 0; a < r->accum_steps; a++) {
        float micro_loss;
        /* every rank draws every micro-batch, so that the loaders stay in step */
        tn_loader_next(&r->loader, B, r->inputs, r->targets);
        if (a % ranks != r->comm->rank) continue;
        if (tn_step_device_accumulate(r->device, r->inputs, r->targets, B, T, scale, &micro_loss, err)) return -1;
        if (!isfinite(micro_loss)) {
            char where[64];
            snprintf(where, sizeof where, "on %s", tn_device_name(o->device));
            note_nonfinite_loss(r, micro_loss, where);
        }
        sum += micro_loss;
    }
    int passes = (r->accum_steps + ranks - 1) / ranks;
    if ((passes - 1) * ranks + r->comm->rank >= r->accum_steps &&
        tn_step_device_idle(r->device, r->inputs, r->targets, B, T, err))
        return -1;
    if (tn_step_device_reduce(r->device, err) || (ranks > 1 && tn_comm_all_reduce_sum_double(r->comm, &sum, 1, err)) ||
        check_loss_sum(r, sum, err))
        return -1;
    *loss = (float)(sum / r->accum_steps);
    if (tn_step_device_update(r->device, &o->adamw, (float)lr, r->state.step + 1, o->grad_clip, grad_norm, err))
        return -1;
    if (!isfinite(*grad_norm)) {
        const char *where = tn_step_device_sync(r->device, NULL, r->grads, NULL, NULL, err)
                                ? "(unknown)" : nonfinite_gradient(r);
        return stop_on_gradient(r, where, err);
    }
    return 0;
}

/* Brings the host model and moments up to date before the trainer reads
 * them (checkpoints, the final model). */
static int sync_host(Run *r, TnError *err) {
    /* the CPU's model is current (ZeRO-3's shards are gathered where used) */
    if (!r->device) return 0;
    TnRange range;
    return tn_step_device_sync(r->device, held_params(r, &range), NULL, r->m, r->v, err);
}

/* The global norm of the summed gradient, of which this rank holds the
 * range grads_range of its part: the sums of squares of the split tensors
 * ([0]) and of the replicated ones ([1]) are added over the data group
 * when the range is a shard, then the split ones over the tensor group
 * (every rank of it holds the same replicated gradients: counted once). */
static int global_norm(Run *r, double *grad_norm, TnError *err) {
    const TnParamLayout *layout = &r->model.layout;
    TnRange range = r->grads_range;
    double squares[2] = {0, 0};
    for (int k = 0; k < r->n_norm_runs; k++) {
        const TnTpRun *run = &r->norm_runs[k];
        squares[run->split ? 0 : 1] += tn_grad_squares(r->grads + (run->begin - range.begin), run->end - run->begin);
    }
    if (range.end - range.begin < layout->total && tn_comm_all_reduce_sum_double(r->comm, squares, 2, err)) return -1;
    if (r->tp > 1 && tn_comm_all_reduce_sum_double(&r->tensor_group, squares, 1, err)) return -1;
    *grad_norm = sqrt(squares[0] + squares[1]);
    return 0;
}

/* Waits for the data group's gradients to be summed (the reductions
 * started by the backward, grad_reduce.h: all-reduce, or reduce-scatter
 * from ZeRO-2 on), sums the losses and takes the global norm of the sum. */
static int reduce_gradients(Run *r, double *loss_sum, double *grad_norm, TnError *err) {
    const TnComm *c = r->comm;
    if (tn_grad_reduce_finish(&r->reduce, err)) return -1;
    if (c->size > 1 && tn_comm_all_reduce_sum_double(c, loss_sum, 1, err)) return -1;
    return global_norm(r, grad_norm, err);
}

/* Forward and backward of the micro-batch in r->inputs, adding its loss
 * to *sum and its gradient (times scale) to r->grads; a loss that is not
 * finite is noted, not fatal (note_nonfinite_loss). */
static int micro_step(Run *r, float scale, double *sum, TnError *err) {
    TnModel *m = &r->model;
    int B = r->micro_batch, T = r->o->seq_len;
    float micro_loss;
    if (tn_model_forward(m, r->inputs, r->targets, B, T, &micro_loss, err) ||
        (r->sharded && tn_fsdp_status(&r->fsdp, err)))
        return -1;
    if (!isfinite(micro_loss) && !r->nonfinite_loss[0]) {
        char value[256], where[300];
        locate_nonfinite_loss(r, B, value, sizeof value);
        snprintf(where, sizeof where, "(first non-finite value in %s)", value);
        note_nonfinite_loss(r, micro_loss, where);
    }
    /* sharded gradients: into the part buffers of the reduction (grad_reduce.h) */
    tn_model_backward(m, r->inputs, r->targets, B, T, scale, r->o->zero >= 2 ? NULL : r->grads);
    *sum += micro_loss;
    return r->sharded ? tn_fsdp_status(&r->fsdp, err) : 0;
}

/* One optimizer step: accumulated micro-batches (this rank's share of
 * them), the gradients summed over the ranks, clip, AdamW on this rank's
 * range, the parameters gathered (trainer.h). The micro-batches go in
 * passes of one per rank; a rank whose share is one shorter runs an idle
 * last pass, so that every rank makes the same collectives (ZeRO-3's
 * gathers, the reductions started by the last backward). */
static int train_step(Run *r, double lr, float *loss, double *grad_norm, TnError *err) {
    const TnTrainOptions *o = r->o;
    TnModel *m = &r->model;
    if (r->device) return device_train_step(r, lr, loss, grad_norm, err);
    int B = r->micro_batch, T = o->seq_len, ranks = r->comm->size;
    int passes = (r->accum_steps + ranks - 1) / ranks;
    float scale = 1.0f / (float)((long long)B * T * r->accum_steps);
    memset(r->grads, 0, (r->grads_range.end - r->grads_range.begin) * sizeof *r->grads);
    r->nonfinite_loss[0] = '\0';
    double sum = 0.0;
    for (int pass = 0; pass < passes; pass++) {
        int mine = pass * ranks + r->comm->rank;
        if (pass == passes - 1 || o->zero >= 2) tn_grad_reduce_arm(&r->reduce);
        /* every rank draws every micro-batch, so that the loaders stay in step */
        for (int a = pass * ranks; a < (pass + 1) * ranks && a < r->accum_steps; a++) {
            tn_loader_next(&r->loader, B, r->inputs, r->targets);
            if (a == mine && micro_step(r, scale, &sum, err)) return -1;
        }
        if (mine >= r->accum_steps) {
            tn_model_idle_pass(m);
            if (r->sharded && tn_fsdp_status(&r->fsdp, err)) return -1;
        }
    }
    if (reduce_gradients(r, &sum, grad_norm, err) || check_loss_sum(r, sum, err)) return -1;
    *loss = (float)(sum / r->accum_steps);
    if (!isfinite(*grad_norm))
        return stop_on_gradient(r, nonfinite_gradient(r), err);
    size_t begin = r->update.begin, count = r->update.end - begin;
    float *grads = r->grads + (begin - r->grads_range.begin), *params = r->sharded ? r->fsdp.shard : m->params + begin;
    if (o->grad_clip > 0) tn_grad_clip(grads, count, *grad_norm, o->grad_clip);
    tn_adamw_update_range(&o->adamw, &m->layout, params, grads, r->m, r->v, (float)lr, r->state.step + 1, begin,
                          r->update.end);
    if (r->sharded) {
        tn_fsdp_invalidate(&r->fsdp);
        return 0;
    }
    if (o->zero == 1 || o->zero == 2) return tn_comm_all_gather(r->comm, m->params, m->layout.total, err);
    return 0;
}

/* tn_eval_windows' scorer on the training step's device: a window of
 * T + 1 tokens scores its first T positions (the last one's target lies
 * past it), so it is one forward of T tokens, the step's own shape, in its
 * arena and on its weights. */
static int score_on_device(void *user, const int32_t *inputs, const int32_t *targets, int batch, int ctx,
                           float *losses, TnError *err) {
    Run *r = user;
    int T = ctx - 1;
    for (int b = 0; b < batch; b++) {
        memcpy(r->inputs + (size_t)b * T, inputs + (size_t)b * ctx, T * sizeof *r->inputs);
        memcpy(r->targets + (size_t)b * T, targets + (size_t)b * ctx, T * sizeof *r->targets);
    }
    if (tn_step_device_score(r->device, r->inputs, r->targets, batch, T, losses, err)) return -1;
    /* rows of T to rows of ctx, last row first: a row only moves up over rows already moved */
    for (int b = batch - 1; b >= 0; b--) {
        memmove(losses + (size_t)b * ctx, losses + (size_t)b * T, T * sizeof *losses);
        losses[(size_t)b * ctx + T] = 0.0f;
    }
    return 0;
}

/* Mean loss over the first eval_windows windows of the validation split,
 * on the step's device (bf16 matrix products, as the training step) or the
 * CPU: the same windows either way. */
static int validate(Run *r, double *val_loss, TnError *err) {
    const TnTrainOptions *o = r->o;
    size_t windows = (r->n_val - 1) / (size_t)o->seq_len, use = (size_t)o->eval_windows;
    if (use > windows) use = windows;
    TnEvalResult e;
    /* windows of ctx tokens score ctx - 1 targets: use T + 1 to predict T */
    size_t n = use * o->seq_len + 1;
    int ctx = o->seq_len + 1;
    if (r->device ? tn_eval_windows(score_on_device, r, r->val_tokens, n, ctx, o->seq_len, r->micro_batch, 0, &e, err)
                  : tn_eval_tokens(&r->model, r->val_tokens, n, ctx, o->seq_len, r->micro_batch, TN_DEVICE_CPU, 0, &e,
                                   err))
        return -1;
    *val_loss = e.mean_loss;
    return 0;
}

static void format_duration(char *out, size_t cap, double seconds) {
    long s = seconds > 0 && seconds < 1e8 ? (long)seconds : 0;
    if (s >= 3600) snprintf(out, cap, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else snprintf(out, cap, "%ldm%02lds", s / 60, s % 60);
}

/* The runs of the whole model's buffer (tensor_parallel.h) that make the
 * range `range` of this rank's part. */
static size_t rank_runs(const Run *r, TnRange range, TnRun **runs) {
    return tn_tp_runs(&r->model.layout, whole_layout(r), &r->model.config, r->tp, r->tp > 1 ? r->tensor_group.rank : 0,
                      range.begin, range.end, runs);
}

/* Reads the state file at path into saved and this rank's range of its
 * part of the moments (the file holds them whole, whatever the ranks that
 * wrote it): that range alone, streamed. */
static int load_moments(Run *r, const char *path, TnTrainState *saved, TnError *err) {
    TnRun *runs;
    size_t n_runs = rank_runs(r, r->update, &runs);
    int rc = tn_train_state_load_runs(path, saved, r->m, r->v, whole_layout(r)->total, runs, n_runs, err);
    free(runs);
    return rc;
}

/* Groups the ranks for tensor parallelism (tensor_parallel.h): r->comm
 * becomes the data group. Refuses a layout that does not match the job. */
static int make_groups(Run *r, TnError *err) {
    const TnTrainOptions *o = r->o;
    int N = r->world->size;
    r->tp = o->tensor_parallel > 1 ? o->tensor_parallel : 1;
    if (o->data_parallel > 0 && o->data_parallel * r->tp != N)
        return tn_fail(err, "--dp %d x --tp %d = %d ranks, but the job has %d (mpirun -np %d)", o->data_parallel,
                       r->tp, o->data_parallel * r->tp, N, o->data_parallel * r->tp);
    if (r->tp == 1) return 0;
    if (o->device != TN_DEVICE_CPU && tn_step_device_tp_check(o->zero, err)) return -1;
    if (tn_tp_groups(r->world, r->tp, &r->tensor_group, &r->data_group, err)) return -1;
    r->comm = &r->data_group;
    return 0;
}

/* The model the options make: init_from's, else o->config. */
static int given_config(const Run *r, TnConfig *cfg, TnError *err) {
    if (!r->o->init_from) {
        *cfg = r->o->config;
        /* the vocabulary of the tokenizer this session reads with (a resume
         * without --tokenizer: the checkpoint's, not the byte-level one the
         * options were built with) */
        if (r->o->vocab_from_tokenizer && r->tok) cfg->vocab_size = tn_tokenizer_vocab_size(r->tok);
        return tn_config_validate(cfg, err);
    }
    return tn_checkpoint_load_config(r->o->init_from, cfg, err);
}

/* Refuses a resume whose model options (when given) make another model
 * than the run's (run: its checkpoint's config), naming both. */
static int check_model(const Run *r, const TnConfig *run, const TnRunOptions *recorded, TnError *err) {
    const TnTrainOptions *o = r->o;
    if (!o->model_options) return 0;
    TnConfig given;
    char difference[256];
    if (given_config(r, &given, err)) return -1;
    if (!tn_run_model_differs(run, &given, difference, sizeof difference)) return 0;
    if (!recorded || !recorded->model_options[0]) /* a run of an older tnllm, or of a caller without options */
        return tn_fail(err, "%s does not make the model of the run in %s (%s): a resume continues the run's model; "
                            "give the model options it was started with, or none", o->model_options, o->out_dir,
                       difference);
    return tn_fail(err, "%s does not match the run in %s, started with %s (%s): a resume continues the run's model; "
                        "give the run's model options, or none", o->model_options, o->out_dir,
                   recorded->model_options, difference);
}

/* Creates the model, reads it from init_from, or loads it from r->latest
 * (resume; recorded: the run's options, NULL if it has none): this rank's
 * tensor-parallel part, of which ZeRO-3 keeps its shard alone (into
 * r->first_shard, which fsdp takes over) and the other stages the whole
 * part. No rank ever holds the whole model: each draws its own elements of
 * the initialisation (the same values as one process, params.h) or reads
 * them from the model's files (checkpoint.h TnCheckpointReader). */
static int create_model(Run *r, const TnRunOptions *recorded, TnError *err) {
    const TnTrainOptions *o = r->o;
    TnModel *m = &r->model;
    TnConfig cfg;
    if (o->resume ? tn_checkpoint_load_config(r->latest, &cfg, err) || check_model(r, &cfg, recorded, err)
                  : given_config(r, &cfg, err))
        return -1;
    tn_model_create(m, &cfg);
    r->have_model = 1;
    if (r->tp > 1) {
        tn_param_layout_init(&r->whole, &cfg);
        if (tn_tp_split_model(m, &r->tensor_group, err)) return -1;
    }
    int shard = o->zero == 3;
    TnRange range = shard ? tn_rank_range(m->layout.total, r->comm->size, r->comm->rank) : (TnRange){0, m->layout.total};
    float *held = tn_malloc((range.end - range.begin) * sizeof *held);
    if (shard) {
        r->first_shard = held;
    } else {
        m->params = held;
        tn_weights_bind(&m->w, &m->layout, held);
    }
    TnRun *runs;
    size_t n_runs = rank_runs(r, range, &runs);
    int rc = 0;
    if (o->resume || o->init_from) {
        TnCheckpointReader *reader;
        rc = tn_checkpoint_reader_open(&reader, o->resume ? r->latest : o->init_from, whole_layout(r), err) ||
             tn_checkpoint_read_runs(reader, runs, n_runs, held, err);
        if (reader) tn_checkpoint_reader_close(reader);
    } else {
        tn_params_init_runs(held, whole_layout(r), &cfg, o->seed, runs, n_runs);
    }
    free(runs);
    return rc ? -1 : 0;
}

/* The CPU step's hooks: the gradient reduction overlapped with the
 * backward, and for ZeRO-3 the parameters sharded and gathered per part
 * (over the data group; with tensor parallelism, of this rank's part). */
static void install_hooks(Run *r) {
    TnModel *m = &r->model;
    tn_grad_reduce_init(&r->reduce, r->comm, m, r->grads, r->o->zero >= 2);
    if (r->o->zero >= 2) r->hooks.grads = tn_grad_reduce_bind;
    r->hooks.grads_done = tn_grad_reduce_part_done;
    r->hooks.grads_user = &r->reduce;
    if (r->o->zero == 3) {
        if (r->first_shard) tn_fsdp_init_shard(&r->fsdp, m, r->comm, r->first_shard);
        else tn_fsdp_init(&r->fsdp, m, r->comm);
        r->first_shard = NULL;
        r->sharded = 1;
        r->hooks.weights = tn_fsdp_gather_part;
        r->hooks.weights_user = &r->fsdp;
    }
    m->hooks = &r->hooks;
}

/* The run's tokenizer: o->tokenizer, else init_from's (looked for as
 * tn_tokenizer_for_model does), else the byte-level one. */
static int load_tokenizer(Run *r, TnError *err) {
    const TnTrainOptions *o = r->o;
    /* without --tokenizer: a model directory's, the checkpoint's on a resume
     * (copy_tokenizer keeps the run's in each), else --init-from's */
    const char *model_dir = o->resume ? r->latest : o->init_from;
    char found[4200] = "";
    if (!o->tokenizer && model_dir && tn_tokenizer_path_in(model_dir, found, sizeof found, err)) return -1;
    snprintf(r->tokenizer, sizeof r->tokenizer, "%s", o->tokenizer ? o->tokenizer : found);
    if (!r->tokenizer[0]) {
        r->tok = tn_tokenizer_bytes();
        return 0;
    }
    return tn_read_file(r->tokenizer, &r->tokenizer_data, &r->tokenizer_size, err) ||
                   tn_tokenizer_load(&r->tok, r->tokenizer, err)
               ? -1
               : 0;
}

/* The options recorded with the checkpoint a resume starts from into
 * recorded; *have 0 where there are none (a checkpoint of an older tnllm). */
static int read_recorded(const Run *r, TnRunOptions *recorded, int *have, TnError *err) {
    char path[4400];
    if (tn_path_join(path, sizeof path, r->latest, TN_RUN_OPTIONS_FILE, err)) return -1;
    *have = tn_file_exists(path);
    if (!*have && r->root)
        fprintf(stderr, "tnllm train: warning: %s is missing (a checkpoint of an older tnllm): the options given are "
                        "not checked against the run's\n", path);
    return *have ? tn_run_options_load(path, recorded, err) : 0;
}

/* This session's options as run_options.h records them; the model's keep
 * the text the run was started with (recorded, NULL: none). */
static void record_options(Run *r, const TnRunOptions *recorded) {
    const TnTrainOptions *o = r->o;
    TnRunOptions *g = &r->given;
    const char *model = recorded ? recorded->model_options : o->model_options ? o->model_options : "";
    snprintf(g->model_options, sizeof g->model_options, "%.*s", (int)sizeof g->model_options - 1, model);
    g->steps = r->steps;
    g->warmup = o->warmup;
    g->lr = o->lr;
    g->min_lr_ratio = o->min_lr_ratio;
    g->weight_decay = o->adamw.weight_decay;
    g->beta1 = o->adamw.beta1;
    g->beta2 = o->adamw.beta2;
    g->eps = o->adamw.eps;
    g->grad_clip = o->grad_clip;
    g->seed = o->seed;
}

/* A resume against the run's step and its recorded options (NULL: none):
 * a length below the step reached is refused, one equal to it leaves
 * nothing to train (TN_TRAIN_COMPLETE); another seed is refused (the run's
 * data order goes on from the checkpoint); another schedule, AdamW setting
 * or clip is taken from here on, one line on stderr each. */
static int check_resume(Run *r, const TnRunOptions *recorded, TnError *err) {
    const TnTrainOptions *o = r->o;
    const TnRunOptions *g = &r->given;
    char length[96];
    if (o->total_tokens > 0) snprintf(length, sizeof length, "--tokens %lld (%lld steps)", o->total_tokens, r->steps);
    else snprintf(length, sizeof length, "--steps %lld", r->steps);
    if (recorded && recorded->seed != g->seed)
        return tn_fail(err, "--seed %llu: the run in %s was started with --seed %llu, and a resume continues its data "
                            "order: give --seed %llu", (unsigned long long)g->seed, o->out_dir,
                       (unsigned long long)recorded->seed, (unsigned long long)recorded->seed);
    if (r->state.step > r->steps)
        return tn_fail(err, "%s: the run in %s is already at step %lld (give --steps %lld or more to continue it)",
                       length, o->out_dir, r->state.step, r->state.step);
    r->ended = recorded && recorded->steps == r->state.step;
    if (r->state.step == r->steps) return TN_TRAIN_COMPLETE;
    if (!recorded || !r->root) return 0;
    if (recorded->steps != g->steps)
        fprintf(stderr, "tnllm train: resuming with %s (the run so far: %lld steps)\n", length, recorded->steps);
    const struct { const char *flag; double run, given; } values[] = {
        {"--lr", recorded->lr, g->lr},
        {"--min-lr-ratio", recorded->min_lr_ratio, g->min_lr_ratio},
        {"--warmup", (double)recorded->warmup, (double)g->warmup},
        {"--weight-decay", recorded->weight_decay, g->weight_decay},
        {"--beta1", recorded->beta1, g->beta1},
        {"--beta2", recorded->beta2, g->beta2},
        {"--eps", recorded->eps, g->eps},
        {"--grad-clip", recorded->grad_clip, g->grad_clip},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (values[i].run != values[i].given)
            fprintf(stderr, "tnllm train: resuming with %s %.10g (the run so far: %.10g)\n", values[i].flag,
                    values[i].given, values[i].run);
    return 0;
}

/* Warns (rank 0) of what the run does not take as given: a micro-batch
 * larger than the batch, a batch rounded up to whole micro-batches, a
 * warmup as long as the run. */
static void warn_adjustments(const Run *r) {
    const TnTrainOptions *o = r->o;
    if (!r->root) return;
    long long step_tokens = (long long)r->micro_batch * o->seq_len * r->accum_steps;
    if (r->micro_batch != o->micro_batch)
        fprintf(stderr, "tnllm train: warning: --micro-batch %d lowered to %d: --batch-tokens %lld holds %d window%s "
                        "of --ctx %d\n", o->micro_batch, r->micro_batch, o->batch_tokens, r->micro_batch,
                r->micro_batch == 1 ? "" : "s", o->seq_len);
    if (step_tokens != o->batch_tokens)
        fprintf(stderr, "tnllm train: warning: --batch-tokens %lld rounded up to %lld, whole micro-batches (%d of %d x "
                        "%d tokens)\n", o->batch_tokens, step_tokens, r->accum_steps, r->micro_batch, o->seq_len);
    if (o->warmup >= r->steps)
        fprintf(stderr, "tnllm train: warning: --warmup %lld is not below the run's %lld step%s: the learning rate "
                        "rises for the whole run (to %.3g of --lr %g at the last step) and never decays\n",
                o->warmup, r->steps, r->steps == 1 ? "" : "s",
                tn_lr_schedule(r->steps - 1, r->steps, o->warmup, o->lr, o->min_lr_ratio), o->lr);
}

/* Removes the step_N directories a new run finds: with no `latest`, each
 * was cut short while it was saved (read_latest). */
static void remove_cut_checkpoints(const Run *r) {
    DIR *d = opendir(r->checkpoints);
    if (!d) return;
    struct dirent *e;
    char dir[8400];
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "step_", 5) == 0) {
            snprintf(dir, sizeof dir, "%s/%s", r->checkpoints, e->d_name);
            remove_checkpoint(dir);
            fprintf(stderr, "tnllm train: removed %s, a checkpoint cut short while it was saved\n", dir);
        }
    closedir(d);
}

/* A new run's directories and validation split (rank 0), made once the
 * options, the data and the model have passed their checks. */
static int create_run_dir(const Run *r, TnError *err) {
    char val_path[4200];
    if (tn_mkdir_p(r->o->out_dir, err) || tn_mkdir_p(r->checkpoints, err)) return -1;
    remove_cut_checkpoints(r);
    if (!r->validates) return 0;
    return tn_path_join(val_path, sizeof val_path, r->o->out_dir, "val.bin", err) ||
                   tn_shard_write(val_path, r->val_tokens, r->n_val, err)
               ? -1 : 0;
}

/* Creates or resumes the model, optimizer state, data position; returns
 * TN_TRAIN_COMPLETE for a resume with nothing left to train. */
static int setup(Run *r, TnError *err) {
    const TnTrainOptions *o = r->o;
    if (o->zero < 0 || o->zero > 3) return tn_fail(err, "ZeRO stage %d: use 0, 1, 2 or 3", o->zero);
    if (make_groups(r, err)) return -1;
    if (r->world->size > 1 && o->device != TN_DEVICE_CPU && !r->world->gpu)
        return tn_fail(err, "--device %s over %d ranks needs the ranks' NCCL group (a tnllm built with NCCL: see "
                            "make's report line)", tn_device_name(o->device), r->world->size);
    if (r->world->backend == TN_COMM_NCCL && o->device == TN_DEVICE_CPU)
        return tn_fail(err, "a launch without MPI (torchrun, srun) trains on GPUs: give --device cuda, or start CPU "
                            "ranks with mpirun");
    if (tn_path_join(r->checkpoints, sizeof r->checkpoints, o->out_dir, "checkpoints", err)) return -1;
    TnRunOptions recorded;
    int have_recorded = 0;
    if (o->resume) {
        if (read_latest(r, err) || read_recorded(r, &recorded, &have_recorded, err)) return -1;
    } else {
        char latest[4200];
        if (tn_path_join(latest, sizeof latest, r->checkpoints, "latest", err)) return -1;
        if (tn_file_exists(latest))
            return tn_fail(err, "%s already holds a run; continue it with --resume or choose another -o", o->out_dir);
    }
    if (load_tokenizer(r, err)) return -1;
    if (create_model(r, have_recorded ? &recorded : NULL, err)) return -1;
    TnModel *m = &r->model;
    if (load_data(r, m->config.vocab_size, err)) return -1;
    if (tn_loader_init(&r->loader, r->train_tokens, r->n_train, o->seq_len, o->seed, o->data, err)) return -1;
    if (r->validates && r->n_val < (size_t)o->seq_len + 1)
        return tn_fail(err, "%s: %zu validation tokens are fewer than one window of the context %d + 1",
                       o->val_data ? o->val_data : o->data, r->n_val, o->seq_len);
    long long window = (long long)o->seq_len;
    r->micro_batch = o->micro_batch;
    if (o->batch_tokens < r->micro_batch * window) r->micro_batch = (int)(o->batch_tokens / window > 0 ? o->batch_tokens / window : 1);
    r->accum_steps = (int)((o->batch_tokens + r->micro_batch * window - 1) / (r->micro_batch * window));
    if (r->accum_steps < r->comm->size)
        return tn_fail(err, "%d micro-batches per step cannot be shared by %d ranks (each takes every %d-th): raise "
                            "--batch-tokens to at least %lld or lower --micro-batch", r->accum_steps, r->comm->size,
                       r->comm->size, (long long)r->comm->size * r->micro_batch * window);
    long long step_tokens = r->micro_batch * window * r->accum_steps;
    r->steps = o->total_tokens > 0 ? (o->total_tokens + step_tokens - 1) / step_tokens : o->steps;
    record_options(r, have_recorded ? &recorded : NULL);
    size_t n = m->layout.total, tokens = (size_t)r->micro_batch * o->seq_len;
    r->update = o->zero == 0 ? (TnRange){0, n} : tn_rank_range(n, r->comm->size, r->comm->rank);
    size_t owned = r->update.end - r->update.begin;
    /* ZeRO-2/3 keep the gradients of their range alone (grad_reduce.h, grad_reduce_gpu.h) */
    r->grads_range = o->zero >= 2 ? r->update : (TnRange){0, n};
    r->grads = tn_malloc((r->grads_range.end - r->grads_range.begin) * sizeof *r->grads);
    r->norm_runs = tn_malloc((size_t)m->layout.n_tensors * sizeof *r->norm_runs);
    r->n_norm_runs = tn_tp_split_runs(&m->layout, r->grads_range, r->norm_runs);
    r->m = tn_calloc(owned, sizeof *r->m);
    r->v = tn_calloc(owned, sizeof *r->v);
    r->inputs = tn_malloc(tokens * sizeof *r->inputs);
    r->targets = tn_malloc(tokens * sizeof *r->targets);
    /* validation forwards T + 1 tokens per window; a device validates on its own */
    if (o->device == TN_DEVICE_CPU) {
        tn_model_reserve(m, r->micro_batch, o->seq_len + 1);
        tn_model_reserve_backward(m);
        /* what `tnllm info` reports for a run of the whole model is what it
         * allocates (tensor parallelism holds a part of it: see tnllm plan) */
        TN_ASSERT(r->tp > 1 || (m->acts.n_floats + m->grad_acts.n_floats) * sizeof(float) ==
                                   tn_train_activation_bytes(&m->config, r->micro_batch, o->seq_len,
                                                             omp_get_max_threads()));
    }
    r->state.seq_len = o->seq_len;
    r->state.micro_batch = r->micro_batch;
    r->state.accum_steps = r->accum_steps;
    r->state.data_hash = tn_tokens_hash(r->train_tokens, r->n_train);
    if (o->resume) {
        char path[4400];
        TnTrainState saved;
        if (tn_path_join(path, sizeof path, r->latest, TN_TRAIN_STATE_FILE, err) ||
            load_moments(r, path, &saved, err))
            return -1;
        if (saved.seq_len != o->seq_len || saved.micro_batch != r->micro_batch || saved.accum_steps != r->accum_steps)
            return tn_fail(err, "%s: the run used --ctx %d with %d x %d windows per step; give the same --ctx, "
                                "--micro-batch and --batch-tokens to resume", path, saved.seq_len,
                           saved.micro_batch, saved.accum_steps);
        if (saved.data_hash != r->state.data_hash)
            return tn_fail(err, "%s: the training data differ from the run's (give the same --data, --val-data and "
                                "--val-fraction to resume)", path);
        TnError reason;
        if (tn_loader_restore(&r->loader, &saved.loader, &reason)) return tn_fail(err, "%s: %s", path, reason.msg);
        r->state = saved;
        int rc = check_resume(r, have_recorded ? &recorded : NULL, err);
        if (rc) return rc;
    }
    if (!o->resume) warn_adjustments(r); /* said when the run began; a resume of the same command would repeat them */
    TnRange held;
    if (o->device != TN_DEVICE_CPU &&
        tn_step_device_open(&r->device, o->device, &m->config, held_params(r, &held), r->m, r->v, r->micro_batch,
                            o->seq_len, o->recompute, r->comm, r->tp > 1 ? &r->tensor_group : NULL, o->zero, err))
        return -1;
    if (o->device == TN_DEVICE_CPU) install_hooks(r);
    if (!o->resume && r->root && create_run_dir(r, err)) return -1;
    return r->root ? tn_metrics_open(&r->metrics, o->out_dir, o->resume ? r->state.step : -1, err) : 0;
}

size_t tn_train_activation_bytes(const TnConfig *cfg, int micro_batch, int seq_len, int threads) {
    /* the model's default attention (tn_model_init), on windows of T + 1 */
    return tn_model_activation_bytes(cfg, micro_batch, seq_len + 1, TN_ATTN_CHUNKED, TN_ATTN_DEFAULT_BLOCK, threads) +
           tn_model_backward_bytes(cfg, micro_batch, seq_len + 1, TN_ATTN_CHUNKED, TN_ATTN_DEFAULT_BLOCK, threads);
}

size_t tn_train_memory_bytes(const TnConfig *cfg, int micro_batch, int seq_len, int threads) {
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    size_t state = 4 * layout.total * sizeof(float); /* weights, gradients, AdamW m and v */
    tn_param_layout_free(&layout);
    return state + tn_train_activation_bytes(cfg, micro_batch, seq_len, threads);
}

int tn_train_longest_context(const TnConfig *cfg, int micro_batch, double budget, int threads) {
    int fits = 0, too_long = (1 << 24) + 1; /* memory grows with the context: bisect */
    while (too_long - fits > 1) {
        int mid = fits + (too_long - fits) / 2;
        if ((double)tn_train_memory_bytes(cfg, micro_batch, mid, threads) <= budget) fits = mid;
        else too_long = mid;
    }
    return fits;
}

static int finish(Run *r, TnTrainResult *result, TnError *err) {
    char model_dir[4096], plot[4200];
    if (tn_path_join(model_dir, sizeof model_dir, r->o->out_dir, "model", err) || write_model(r, model_dir, err))
        return -1;
    if (!r->root) return 0;
    snprintf(result->model_dir, sizeof result->model_dir, "%s", model_dir);
    TnError plot_err;
    if (tn_plot_run(r->o->out_dir, plot, sizeof plot, &plot_err))
        fprintf(stderr, "tnllm train: warning: no loss plot: %s\n", plot_err.msg);
    else if (!r->quiet)
        printf("loss curve: %s\n", plot);
    return 0;
}

/* Whether any rank was asked to stop (a signal may reach the ranks at
 * different steps; all must checkpoint and leave at the same one). */
static int agree_stop(Run *r, int *stop, TnError *err) {
    double requested = stop_requested;
    if (r->world->size > 1 && tn_comm_all_reduce_sum_double(r->world, &requested, 1, err)) return -1;
    *stop = requested > 0;
    return 0;
}

static double mebibytes(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* What this rank holds, by kind (trainer.h says what each ZeRO stage
 * shards, tensor_parallel.h what tensor parallelism splits): the sizes of
 * the buffers setup allocated. */
static TnTrainMemory measure_memory(const Run *r) {
    const TnModel *m = &r->model;
    size_t f = sizeof(float), owned = r->update.end - r->update.begin;
    TnTrainMemory mem = {0};
    TnRange held;
    held_params(r, &held);
    mem.parameters = (held.end - held.begin) * f;
    mem.gather = r->sharded ? r->fsdp.gather_floats * f : 0;
    mem.gradients = (r->grads_range.end - r->grads_range.begin) * f;
    mem.grad_buffers = r->reduce.scatter ? tn_grad_reduce_buffer_floats(&m->layout, m->config.n_layers) * f : 0;
    mem.moments = 2 * owned * f;
    mem.activations = (m->acts.n_floats + m->grad_acts.n_floats) * f;
    mem.total = mem.parameters + mem.gather + mem.gradients + mem.grad_buffers + mem.moments + mem.activations;
    return mem;
}

/* Prints measure_memory, so that a user sees the cost of the layout
 * before it runs. */
static void print_memory(const Run *r, const TnTrainMemory *mem) {
    size_t n = r->model.layout.total, owned = r->update.end - r->update.begin;
    char layout[128] = "", held[160] = "", buffers[160] = "";
    if (r->tp > 1)
        snprintf(layout, sizeof layout, ", tensor parallel %d x data parallel %d: %zu of the model's %zu parameters",
                 r->tp, r->comm->size, n, r->whole.total);
    if (r->sharded)
        snprintf(held, sizeof held, " (shard + gather buffer %.1f MiB: the largest layer, embedding or head, "
                                    "gathered per layer)", mebibytes(mem->gather));
    if (mem->grad_buffers)
        snprintf(buffers, sizeof buffers, " (shard + the backward's part buffers %.1f MiB: the embedding and %d of the "
                                          "largest layer or head)", mebibytes(mem->grad_buffers), TN_GRAD_RING);
    printf("memory per rank (%d rank%s, %s, ZeRO-%d%s): parameters %.1f MiB%s, gradients %.1f MiB%s, optimizer state "
           "%.1f MiB (AdamW m and v of %zu of %zu parameters), activations %.1f MiB; total %.1f MiB\n",
           r->world->size, r->world->size > 1 ? "s" : "", tn_comm_backend_name(r->world), r->o->zero, layout,
           mebibytes(mem->parameters + mem->gather), held, mebibytes(mem->gradients + mem->grad_buffers), buffers,
           mebibytes(mem->moments), owned, n, mebibytes(mem->activations), mebibytes(mem->total));
    if (r->device) {
        TnStepDeviceMemory d;
        tn_step_device_memory(r->device, &d);
        char params[112], parts[96] = "";
        if (d.gather)
            snprintf(params, sizeof params,
                     "the fp32 shard %.1f MiB + one part's fp32 and bf16 gather buffers %.1f MiB",
                     mebibytes(d.parameters), mebibytes(d.gather));
        else
            snprintf(params, sizeof params, "fp32 and a bf16 copy %.1f MiB", mebibytes(d.parameters));
        if (d.grad_buffers)
            snprintf(parts, sizeof parts, " + the backward's part buffers %.1f MiB", mebibytes(d.grad_buffers));
        printf("memory per GPU (%s, ZeRO-%d): parameters %s, gradients %.1f MiB%s, AdamW state %.1f MiB, activation "
               "arena %.1f MiB; total %.1f MiB\n", tn_device_name(r->o->device), r->comm->size > 1 ? r->o->zero : 0,
               params, mebibytes(d.gradients), parts,
               mebibytes(d.moments), mebibytes(d.arena), mebibytes(d.total));
    }
}

/* The result of a resume with nothing left to train: the run's step, and
 * its final model, or where that is not this step's (a run shortened to
 * the step it stopped at) the checkpoint. The final model is written again
 * from the checkpoint setup loaded: a run killed between its last
 * checkpoint and finish() has an older model/ (or none). */
static int complete(Run *r, TnTrainResult *result, TnError *err) {
    char model_dir[sizeof result->model_dir];
    result->steps = r->state.step;
    result->tokens = r->state.tokens_seen;
    result->final_loss = result->final_val_loss = NAN;
    snprintf(result->model_dir, sizeof result->model_dir, "%s", r->latest);
    if (!r->ended) return TN_TRAIN_COMPLETE;
    if (tn_path_join(model_dir, sizeof model_dir, r->o->out_dir, "model", err) || write_model(r, model_dir, err))
        return -1;
    snprintf(result->model_dir, sizeof result->model_dir, "%s", model_dir);
    return TN_TRAIN_COMPLETE;
}

static int train_loop(Run *r, TnTrainResult *result, TnError *err) {
    const TnTrainOptions *o = r->o;
    long long step_tokens = (long long)r->micro_batch * o->seq_len * r->accum_steps, first = r->state.step;
    /* the rate counts from the end of the session's first step: that one
     * also pays the one-time costs (cuBLASLt's choices, NCCL's connections) */
    double start = tn_now(), elapsed0 = r->state.elapsed, first_end = 0;
    result->final_val_loss = NAN;
    result->memory = measure_memory(r);
    if (!r->quiet) print_memory(r, &result->memory);
    if (!r->quiet)
        printf("training %zu parameters on %zu tokens (validation %zu) on %s: %lld steps of %d x %d x %d = %lld "
               "tokens, from step %lld\n",
               whole_layout(r)->total, r->n_train, r->n_val, o->device == TN_DEVICE_CUDA ? "the GPU" : "the CPU",
               r->steps, r->accum_steps, r->micro_batch, o->seq_len, step_tokens, first);
    if (!r->quiet && r->validates) {
        double unigram = tn_unigram_loss(r->train_tokens, r->n_train, r->val_tokens, r->n_val,
                                         r->model.config.vocab_size);
        printf("unigram baseline on the validation split: loss %.4f (perplexity %.2f)\n", unigram, exp(unigram));
        fflush(stdout); /* a job killed before its first step still shows its memory */
    }
    while (r->state.step < r->steps) {
        double lr = tn_lr_schedule(r->state.step, r->steps, o->warmup, o->lr, o->min_lr_ratio), norm = 0;
        float loss = 0;
        if (train_step(r, lr, &loss, &norm, err)) return -1;
        long long step = ++r->state.step;
        r->state.tokens_seen += step_tokens;
        double now = tn_now(), session = now - start;
        if (step == first + 1) first_end = now;
        double rate = step == first + 1 ? step_tokens / session
                                        : (double)(step - first - 1) * step_tokens / (now - first_end);
        r->state.elapsed = elapsed0 + session;
        result->final_loss = loss;
        if (r->root &&
            tn_metrics_log_step(&r->metrics, step, loss, lr, norm, r->state.tokens_seen, rate, r->state.elapsed, err))
            return -1;
        char val_text[48] = "";
        if (r->validates && ((o->eval_every > 0 && step % o->eval_every == 0) || step == r->steps)) {
            /* data rank 0 validates (with its tensor group); under ZeRO-3 every rank: the passes gather */
            double val_loss = NAN;
            if ((r->comm->rank == 0 || o->zero == 3) &&
                (validate(r, &val_loss, err) || (r->sharded && tn_fsdp_status(&r->fsdp, err))))
                return -1;
            if (r->root && tn_metrics_log_eval(&r->metrics, step, val_loss, err)) return -1;
            result->final_val_loss = val_loss;
            snprintf(val_text, sizeof val_text, " | val %.4f (ppl %.2f)", val_loss, exp(val_loss));
        }
        if (!r->quiet && (step % o->log_every == 0 || val_text[0] || step == r->steps)) {
            char eta[32];
            format_duration(eta, sizeof eta, (double)(r->steps - step) * step_tokens / rate);
            printf("step %6lld/%lld | loss %.4f%s | lr %.2e | norm %.3f | %.0f tok/s | ETA %s\n", step, r->steps, loss,
                   val_text, lr, norm, rate, eta);
            fflush(stdout);
        }
        if (o->on_step) o->on_step(step, loss, o->user);
        int last = step == r->steps, stop;
        if (agree_stop(r, &stop, err)) return -1;
        if ((o->checkpoint_every > 0 && step % o->checkpoint_every == 0) || last || stop)
            if (sync_host(r, err) || save_checkpoint(r, err)) return -1;
        if (stop && !last) {
            snprintf(result->model_dir, sizeof result->model_dir, "%s", r->latest);
            result->steps = step;
            result->tokens = r->state.tokens_seen;
            result->seconds = tn_now() - start;
            return TN_TRAIN_INTERRUPTED;
        }
    }
    result->steps = r->state.step;
    result->tokens = r->state.tokens_seen;
    result->seconds = tn_now() - start;
    return finish(r, result, err) ? -1 : TN_TRAIN_DONE;
}

int tn_train_run(const TnTrainOptions *o, TnTrainResult *result, TnError *err) {
    memset(result, 0, sizeof *result);
    if (o->seq_len < 1 || o->micro_batch < 1 || o->batch_tokens < 1 || (o->steps < 1 && o->total_tokens < 1))
        return tn_fail(err, "context, micro-batch, batch tokens and steps must be positive");
    Run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.single = (TnComm){.backend = TN_COMM_SINGLE, .rank = 0, .size = 1};
    r.world = r.comm = o->comm ? o->comm : &r.single;
    r.tp = 1;
    r.root = r.world->rank == 0;
    r.quiet = o->quiet || !r.root;
    stop_requested = 0;
    announce_stop = r.root;
    struct sigaction action, old_int, old_term;
    memset(&action, 0, sizeof action);
    action.sa_handler = request_stop;
    action.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    int rc = setup(&r, err);
    if (rc == TN_TRAIN_COMPLETE) rc = complete(&r, result, err);
    if (!rc) rc = train_loop(&r, result, err);
    result->stopped_together = r.stopped_together;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    run_free(&r, rc < 0);
    return rc;
}
