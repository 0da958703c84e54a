/* Training runs end to end on a small random config and synthetic text:
 *  - a run interrupted by SIGINT (raised from inside the step callback, so
 *    the real handler runs) says so on stderr as the signal arrives, before
 *    the step's checkpoint, and resumed gives, step by step, bit-identical
 *    losses and final weights to an uninterrupted run;
 *  - the loss decreases;
 *  - resuming with other data is refused; a NaN stops the run naming the
 *    tensor; a read-only run directory is a clear error. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/transnormer.h"
#include "test.h"
#include "train/metrics.h"
#include "train/state.h"
#include "train/trainer.h"
#include "util/fileio.h"
#include "util/rng.h"

enum { STEPS = 8, STOP_AT = 3 };

typedef struct Record {
    float losses[STEPS + 1];
    long long stop_at; /* raise SIGINT after this step (0: never) */
    const char *checkpoints; /* where stop_at's checkpoint goes: said_before_saving is whether stderr said so */
    int said_before_saving;  /* before it was saved */
} Record;

/* Whether the file at path holds text. */
static int file_holds(const char *path, const char *text) {
    char *data;
    TnError err;
    if (tn_read_file(path, &data, NULL, &err)) return 0;
    int found = strstr(data, text) != NULL;
    free(data);
    return found;
}

/* Where stderr (fd 2, which the signal handler writes) goes during a run. */
static char stderr_path[4200];

static void on_step(long long step, float loss, void *user) {
    Record *r = user;
    if (step <= STEPS) r->losses[step] = loss;
    if (step != r->stop_at) return;
    raise(SIGINT);
    char latest[4400];
    snprintf(latest, sizeof latest, "%s/latest", r->checkpoints ? r->checkpoints : "");
    r->said_before_saving = r->checkpoints && !tn_file_exists(latest) &&
                            file_holds(stderr_path, "stopping after this step and saving a checkpoint; press Ctrl-C "
                                                    "again to abort without saving");
}

/* tn_train_run with stderr into stderr_path. */
static int run_capturing_stderr(const TnTrainOptions *o, TnTrainResult *res, TnError *err) {
    fflush(stderr);
    int saved = dup(STDERR_FILENO), fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    close(fd);
    int rc = tn_train_run(o, res, err);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return rc;
}

/* Text with structure a model can learn: words from a small list. */
static void write_corpus(const char *path, uint64_t seed) {
    static const char *words[] = {"the", "linear", "attention", "decays", "with", "a", "gate", "and", "norm", "of"};
    TnRng rng;
    tn_rng_seed(&rng, seed, 3);
    size_t cap = 24000, n = 0;
    char *text = malloc(cap + 16);
    while (n < cap) {
        const char *w = words[tn_rng_below(&rng, 10)];
        n += (size_t)sprintf(text + n, "%s%s", w, tn_rng_below(&rng, 8) == 0 ? ".\n" : " ");
    }
    TnError err;
    CHECK(tn_write_file(path, text, n, &err) == 0, "%s", err.msg);
    free(text);
}

static void options(TnTrainOptions *o, const char *data, const char *out, uint64_t seed, Record *rec) {
    tn_train_options_defaults(o);
    TnError err;
    CHECK(tn_config_from_size(&o->config, "tiny", &err) == 0, "%s", err.msg);
    o->config.vocab_size = 259;
    o->config.dim = 32;
    o->config.n_heads = 2;
    o->config.glu_dim = 64;
    o->data = data;
    o->out_dir = out;
    o->seq_len = 24;
    o->micro_batch = 3;
    o->batch_tokens = 2 * 3 * 24; /* two accumulated micro-batches */
    o->steps = STEPS;
    o->lr = 3e-3;
    o->warmup = 2;
    o->seed = seed;
    o->eval_every = 4;
    o->eval_windows = 8;
    o->checkpoint_every = 2;
    o->quiet = 1;
    o->on_step = on_step;
    o->user = rec;
}

static void count_step(long long step, double loss, double val_loss, void *user) {
    (void)val_loss;
    long long *counts = user;
    if (!isnan(loss)) counts[0]++, counts[1] = step > counts[1] ? step : counts[1];
}

static float *load_params(const char *dir, size_t *n) {
    TnModel m;
    TnError err;
    char path[4200];
    snprintf(path, sizeof path, "%s/model", dir);
    if (tn_model_load(&m, path, &err)) {
        CHECK(0, "load %s: %s", path, err.msg);
        return NULL;
    }
    float *p = malloc(m.layout.total * sizeof *p);
    memcpy(p, m.params, m.layout.total * sizeof *p);
    *n = m.layout.total;
    tn_model_free(&m);
    return p;
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    char dir[4096], data[4200], other[4200], straight[4200], resumed[4200], resumed_checkpoints[4300];
    make_temp_dir(dir, sizeof dir, "train");
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr.txt", dir);
    snprintf(data, sizeof data, "%s/corpus.txt", dir);
    snprintf(other, sizeof other, "%s/other.txt", dir);
    snprintf(straight, sizeof straight, "%s/straight", dir);
    snprintf(resumed, sizeof resumed, "%s/resumed", dir);
    write_corpus(data, seed);
    write_corpus(other, seed + 1);
    TnError err;
    TnTrainResult res;

    snprintf(resumed_checkpoints, sizeof resumed_checkpoints, "%s/checkpoints", resumed);
    Record a = {{0}, 0, NULL, 0}, b = {{0}, STOP_AT, resumed_checkpoints, 0};
    TnTrainOptions o;
    options(&o, data, straight, seed, &a);
    CHECK(tn_train_run(&o, &res, &err) == TN_TRAIN_DONE, "uninterrupted run: %s", err.msg);
    CHECK(a.losses[STEPS] < a.losses[1], "loss decreases: %.4f -> %.4f", a.losses[1], a.losses[STEPS]);
    printf("uninterrupted: loss %.4f -> %.4f, validation %.4f\n", a.losses[1], a.losses[STEPS], res.final_val_loss);

    int rc = tn_train_run(&o, &res, &err);
    CHECK(rc == -1 && strstr(err.msg, "--resume"), "a fresh run into a used directory is refused: %s", err.msg);
    options(&o, data, resumed, seed, &b);
    o.checkpoint_every = 0; /* the one checkpoint is the interruption's */
    rc = run_capturing_stderr(&o, &res, &err);
    CHECK(rc == TN_TRAIN_INTERRUPTED && res.steps == STOP_AT, "SIGINT stops after step %d (rc %d, step %lld)", STOP_AT,
          rc, res.steps);
    CHECK(b.said_before_saving, "the first SIGINT is answered at once on stderr, before the checkpoint is saved");
    o.checkpoint_every = 2;
    /* a line from steps the checkpoint does not cover, as a hard kill leaves */
    char metrics[4400];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", resumed);
    FILE *f = fopen(metrics, "a");
    fprintf(f, "{\"step\": %d, \"loss\": 1.0}\n", STOP_AT + 1);
    fclose(f);
    o.data = other;
    o.resume = 1;
    rc = tn_train_run(&o, &res, &err);
    CHECK(rc == -1 && strstr(err.msg, "differ"), "resuming on other data is refused: %s", err.msg);
    o.data = data;
    b.stop_at = 0;
    rc = tn_train_run(&o, &res, &err);
    CHECK(rc == TN_TRAIN_DONE, "resumed run: %s", err.msg);
    int same = 1;
    for (int s = 1; s <= STEPS; s++) same &= memcmp(&a.losses[s], &b.losses[s], sizeof(float)) == 0;
    CHECK(same, "the resumed run's losses equal the uninterrupted run's, bit for bit");
    for (int s = 1; s <= STEPS && !same; s++) printf("step %d: %.9g vs %.9g\n", s, a.losses[s], b.losses[s]);
    long long counts[2] = {0, 0};
    CHECK(tn_metrics_read(metrics, count_step, counts, &err) == 0, "%s", err.msg);
    CHECK(counts[0] == STEPS && counts[1] == STEPS, "the resumed metrics hold steps 1..%d once (%lld lines, last %lld)",
          STEPS, counts[0], counts[1]);
    size_t n1 = 0, n2 = 0;
    float *p1 = load_params(straight, &n1), *p2 = load_params(resumed, &n2);
    CHECK(p1 && p2 && n1 == n2 && memcmp(p1, p2, n1 * sizeof *p1) == 0, "final weights are bit-identical");
    free(p1);
    free(p2);

    /* NaN weights in a checkpoint: the resumed run's first step stops,
     * naming the step and the tensor, and the checkpoint stays */
    char nan_dir[4200], checkpoint[4400];
    snprintf(nan_dir, sizeof nan_dir, "%s/nan", dir);
    snprintf(checkpoint, sizeof checkpoint, "%s/checkpoints/step_00000002", nan_dir);
    Record c = {{0}, 2, NULL, 0};
    options(&o, data, nan_dir, seed, &c);
    CHECK(tn_train_run(&o, &res, &err) == TN_TRAIN_INTERRUPTED, "run to corrupt: %s", err.msg);
    TnModel m;
    CHECK(tn_model_load(&m, checkpoint, &err) == 0, "%s", err.msg);
    m.w.layers[1].l2[5] = NAN;
    CHECK(tn_model_save(&m, checkpoint, TN_F32, 0, &err) == 0, "%s", err.msg);
    tn_model_free(&m);
    o.resume = 1;
    c.stop_at = 0;
    rc = tn_train_run(&o, &res, &err);
    CHECK(rc == -1 && strstr(err.msg, "step 3") && strstr(err.msg, "model.layers.1.channel_mixer.l2.weight") &&
              strstr(err.msg, "step_00000002"),
          "a NaN stops the run naming the step, the tensor and the last good checkpoint: %s", err.msg);
    printf("NaN run: %s\n", err.msg);
    CHECK(tn_file_exists(checkpoint), "the last good checkpoint is kept");

    /* a data position beyond the data in the state file: the error names the file */
    char state_path[4600];
    snprintf(state_path, sizeof state_path, "%s/%s", checkpoint, TN_TRAIN_STATE_FILE);
    TnTrainState state;
    float *moments = malloc(2 * n1 * sizeof *moments);
    CHECK(tn_train_state_load(state_path, &state, moments, moments + n1, n1, &err) == 0, "%s", err.msg);
    state.loader.cursor = 1u << 30;
    CHECK(tn_train_state_save(state_path, &state, moments, moments + n1, n1, TN_TRAIN_STATE_BLOCK_FLOATS, &err) == 0,
          "%s", err.msg);
    free(moments);
    rc = tn_train_run(&o, &res, &err);
    CHECK(rc == -1 && strstr(err.msg, state_path) && strstr(err.msg, "beyond"),
          "a saved data position beyond the data is an error naming the state file: %s", err.msg);

    /* an output directory that cannot be created or written */
    char blocked[4200];
    snprintf(blocked, sizeof blocked, "%s/corpus.txt/run", dir);
    options(&o, data, blocked, seed, &c);
    rc = tn_train_run(&o, &res, &err);
    CHECK(rc == -1 && strstr(err.msg, "corpus.txt"), "an output path under a file is an error naming it: %s", err.msg);
    if (geteuid() != 0) { /* root writes anywhere */
        snprintf(blocked, sizeof blocked, "%s/readonly", dir);
        mkdir(blocked, 0555);
        options(&o, data, blocked, seed, &c);
        rc = tn_train_run(&o, &res, &err);
        CHECK(rc == -1 && strstr(err.msg, "readonly"), "a read-only directory is an error naming it: %s", err.msg);
    }
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
