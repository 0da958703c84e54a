/* test_fsdp: the per-part hooks of sharded training in one process
 * (model/transnormer.h TnModelHooks, dist/fsdp.h, dist/grad_reduce.h).
 *
 * For models that lay their parts out differently (tied and untied head,
 * the APE table in the embedding's part, layernorm gains and biases in the
 * layers and the head, the Transformer baseline), a model whose parameters
 * are held by FSDP (one rank: its shard is the whole buffer, but every
 * weight is read from the one-part gather buffer, bound part by part) must
 * give bit for bit the loss and every gradient of the same model reading
 * its own buffer, on fresh random tokens. Wrong offsets, a part bound to
 * the wrong range or a view left pointing at another part show as
 * differences.
 * The hooks' order: a forward and backward ask for the weights of the
 * embedding, layers 0..L-1, the head, then the head and layers L-1..0,
 * and finish the gradients of the head, layers L-1..0, the embedding;
 * tn_model_idle_pass must make exactly the same calls (ranks without a
 * micro-batch stay in step with those that have one). The gather buffer
 * is the largest part: a layer, the embedding, or the head with a tied
 * embedding; the gradient reduction refuses to finish an armed pass that
 * did not reach every part. Through the part buffers of sharded gradients
 * (dist/grad_reduce.h, one rank: its shard is the whole buffer) the
 * backward must give the same gradients bit for bit, in buffers smaller
 * than the model, and a backward that was not armed is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "dist/fsdp.h"
#include "dist/grad_reduce.h"
#include "test.h"
#include "util/rng.h"

#define MAX_CALLS 256

/* The hook calls of a pass: weights as part + 1000, grads_done as part. */
typedef struct Recorder {
    int calls[MAX_CALLS], n;
    TnFsdp *fsdp; /* also gather, when not NULL */
} Recorder;

static void record_weights(TnModel *m, int part, void *user) {
    Recorder *r = user;
    if (r->n < MAX_CALLS) r->calls[r->n++] = part + 1000;
    if (r->fsdp) tn_fsdp_gather_part(m, part, r->fsdp);
}

static void record_grads(TnModel *m, int part, void *user) {
    (void)m;
    Recorder *r = user;
    if (r->n < MAX_CALLS) r->calls[r->n++] = part;
}

/* The largest part, from the layout's offsets. */
static size_t largest_part(const TnModel *m) {
    const TnParamLayout *l = &m->layout;
    int L = m->config.n_layers;
    size_t embed = l->layer_begin[0], head = l->total - l->layer_begin[L] + (m->config.tie_word_embeddings ? embed : 0);
    size_t largest = embed > head ? embed : head;
    for (int i = 0; i < L; i++)
        if (l->layer_begin[i + 1] - l->layer_begin[i] > largest) largest = l->layer_begin[i + 1] - l->layer_begin[i];
    return largest;
}

static void check_case(const char *switches, int tied, uint64_t seed) {
    TnConfig cfg = test_config(61, 32, 3, 2, 48, 1u);
    cfg.tie_word_embeddings = tied;
    TnModel plain, sharded;
    switched_model_init(&plain, &cfg, switches, seed);
    switched_model_init(&sharded, &cfg, switches, seed);
    randomize_norm_params(plain.params, &plain.layout, seed + 1);
    memcpy(sharded.params, plain.params, plain.layout.total * sizeof *plain.params);
    const int B = 2, T = 9, N = B * T;
    int32_t tokens[2 * 9], targets[2 * 9];
    TnRng rng;
    tn_rng_seed(&rng, seed, 3);
    for (int i = 0; i < N; i++) {
        tokens[i] = (int32_t)tn_rng_below(&rng, (uint64_t)cfg.vocab_size);
        targets[i] = (int32_t)tn_rng_below(&rng, (uint64_t)cfg.vocab_size);
    }
    TnComm single = {.backend = TN_COMM_SINGLE, .rank = 0, .size = 1};
    TnFsdp fsdp;
    tn_fsdp_init(&fsdp, &sharded, &single);
    CHECK(fsdp.gather_floats == largest_part(&plain) && fsdp.gather_floats < plain.layout.total,
          "%s tied %d: gather buffer %zu floats, the largest part %zu of %zu", switches, tied, fsdp.gather_floats,
          largest_part(&plain), plain.layout.total);
    Recorder real = {.fsdp = &fsdp}, idle = {0};
    TnModelHooks hooks = {.weights = record_weights, .weights_user = &real, .grads_done = record_grads,
                          .grads_user = &real};
    sharded.hooks = &hooks;
    size_t n = plain.layout.total;
    float *grads_plain = calloc(n, sizeof *grads_plain), *grads_sharded = calloc(n, sizeof *grads_sharded);
    float loss_plain, loss_sharded;
    TnError err;
    TnModel *models[2] = {&plain, &sharded};
    for (int i = 0; i < 2; i++) {
        tn_model_reserve(models[i], B, T);
        tn_model_reserve_backward(models[i]);
    }
    int rc = tn_model_forward(&plain, tokens, targets, B, T, &loss_plain, &err) ||
             tn_model_forward(&sharded, tokens, targets, B, T, &loss_sharded, &err);
    CHECK(rc == 0, "%s: %s", switches, err.msg);
    tn_model_backward(&plain, tokens, targets, B, T, 1.0f / N, grads_plain);
    tn_model_backward(&sharded, tokens, targets, B, T, 1.0f / N, grads_sharded);
    CHECK(tn_fsdp_status(&fsdp, &err) == 0, "%s: a gather failed: %s", switches, err.msg);
    CHECK(loss_plain == loss_sharded, "%s tied %d: loss %.9g with FSDP, %.9g without", switches, tied, loss_sharded,
          loss_plain);
    CHECK(memcmp(grads_plain, grads_sharded, n * sizeof *grads_plain) == 0,
          "%s tied %d: the gradients differ with FSDP", switches, tied);

    int L = cfg.n_layers, expected[MAX_CALLS], count = 0;
    for (int part = TN_PART_EMBED; part <= L; part++) expected[count++] = part + 1000;
    expected[count++] = L + 1000;
    expected[count++] = L;
    for (int l = L - 1; l >= 0; l--) {
        expected[count++] = l + 1000;
        expected[count++] = l;
    }
    expected[count++] = TN_PART_EMBED;
    CHECK(real.n == count && memcmp(real.calls, expected, (size_t)count * sizeof *expected) == 0,
          "%s: a forward and backward made %d hook calls in another order than the %d expected", switches, real.n,
          count);
    hooks.weights_user = hooks.grads_user = &idle;
    tn_model_idle_pass(&sharded);
    CHECK(idle.n == real.n && memcmp(idle.calls, real.calls, (size_t)real.n * sizeof *real.calls) == 0,
          "%s: the idle pass made %d hook calls, not the %d of a real pass", switches, idle.n, real.n);

    /* the reduction: an armed pass that reached no part cannot finish */
    TnGradReduce reduce;
    tn_grad_reduce_init(&reduce, &single, &sharded, grads_sharded, 0);
    tn_grad_reduce_arm(&reduce);
    CHECK(tn_grad_reduce_finish(&reduce, &err) < 0 && strstr(err.msg, "finished 0 of"),
          "an armed pass without parts: %s", err.msg);
    hooks = (TnModelHooks){.grads_done = tn_grad_reduce_part_done, .grads_user = &reduce};
    tn_grad_reduce_arm(&reduce);
    tn_model_idle_pass(&sharded);
    CHECK(tn_grad_reduce_finish(&reduce, &err) == 0, "%s: a complete pass did not finish: %s", switches, err.msg);
    tn_grad_reduce_free(&reduce);

    /* sharded gradients: the backward fills the part buffers, reduced (one
     * rank: as they are) into the shard, which must hold the same gradients */
    float *shard = calloc(n, sizeof *shard);
    tn_grad_reduce_init(&reduce, &single, &sharded, shard, 1);
    hooks = (TnModelHooks){.weights = tn_fsdp_gather_part, .weights_user = &fsdp, .grads = tn_grad_reduce_bind,
                           .grads_done = tn_grad_reduce_part_done, .grads_user = &reduce};
    CHECK(tn_grad_reduce_buffer_floats(&sharded.layout, sharded.config.n_layers) < n, "%s tied %d: gradient buffers of %zu floats, the model %zu",
          switches, tied, tn_grad_reduce_buffer_floats(&sharded.layout, sharded.config.n_layers), n);
    tn_grad_reduce_arm(&reduce);
    rc = tn_model_forward(&sharded, tokens, targets, B, T, &loss_sharded, &err);
    tn_model_backward(&sharded, tokens, targets, B, T, 1.0f / N, NULL);
    CHECK(rc == 0 && tn_grad_reduce_finish(&reduce, &err) == 0, "%s: %s", switches, err.msg);
    CHECK(memcmp(grads_plain, shard, n * sizeof *shard) == 0,
          "%s tied %d: the gradients differ through the part buffers", switches, tied);
    /* a backward left unarmed would lose its gradients: refused */
    rc = tn_model_forward(&sharded, tokens, targets, B, T, &loss_sharded, &err);
    tn_model_backward(&sharded, tokens, targets, B, T, 1.0f / N, NULL);
    CHECK(rc == 0 && tn_grad_reduce_finish(&reduce, &err) < 0 && strstr(err.msg, "unarmed"),
          "%s: an unarmed backward under sharded gradients: %s", switches, err.msg);
    tn_grad_reduce_free(&reduce);
    free(shard);

    sharded.hooks = NULL;
    tn_fsdp_free(&fsdp);
    free(grads_plain);
    free(grads_sharded);
    tn_model_free(&plain);
    tn_model_free(&sharded);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    check_case("", 1, seed);
    check_case("", 0, seed + 10);
    check_case("pe=ape norm=layernorm", 1, seed + 20);
    check_case("pe=ape norm=layernorm", 0, seed + 30);
    check_case("arch=transformer", 0, seed + 40);
    return TEST_DONE(argv[0]);
}
