/* The CPU backward pass against the official HF code's float64 gradients
 * (SPEC section 1: every parameter's gradient within 1e-4 relative l2),
 * with the chunked attention backward at two block sizes (one that does not
 * divide T) and the parallel reference form. */
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "test.h"

int main(int argc, char **argv) {
    (void)argc;
    TnError err;
    GoldenCase c;
    if (golden_open(&c)) return TEST_DONE(argv[0]);
    TnModel *m = &c.model;
    int B = c.batch, T = c.seq_len, scored = c.scored;
    int32_t *tokens = c.tokens, *targets = c.targets;
    float *grads = malloc(m->layout.total * sizeof *grads);
    TnAttnAlgo algos[] = {TN_ATTN_CHUNKED, TN_ATTN_CHUNKED, TN_ATTN_PARALLEL};
    int blocks[] = {16, 20, 0};
    for (int a = 0; a < 3; a++) {
        tn_model_set_attention(m, algos[a], blocks[a]);
        tn_model_reserve(m, B, T);
        tn_model_reserve_backward(m);
        float loss;
        CHECK(tn_model_forward(m, tokens, targets, B, T, &loss, &err) == 0, "forward: %s", err.msg);
        memset(grads, 0, m->layout.total * sizeof *grads);
        tn_model_backward(m, tokens, targets, B, T, 1.0f / scored, grads);
        double worst = 0;
        const char *worst_name = "";
        for (int i = 0; i < m->layout.n_tensors; i++) {
            const TnTensorInfo *t = &m->layout.tensors[i];
            char name[160];
            snprintf(name, sizeof name, "grad.%s", t->name);
            const TnStTensor *want_t = tn_st_find(&c.tensors, name);
            CHECK(want_t && want_t->numel == t->numel, "golden has %s with %zu elements", name, t->numel);
            if (!want_t || want_t->numel != t->numel) continue;
            double *want = malloc(t->numel * sizeof *want);
            CHECK(tn_st_read_f64(&c.tensors, want_t, want, &err) == 0, "%s", err.msg);
            double e = rel_l2_f32_f64(grads + t->offset, want, t->numel);
            CHECK(e <= 1e-4, "%s block %d: %s rel l2 %.3e > 1e-4", tn_attn_algo_name(algos[a]), blocks[a], name, e);
            if (e > worst) { worst = e; worst_name = t->name; }
            free(want);
        }
        printf("golden gradients, %-8s block %2d: worst rel l2 %.2e (%s)\n", tn_attn_algo_name(algos[a]), blocks[a],
               worst, worst_name);
    }
    free(grads);
    golden_close(&c);
    return TEST_DONE(argv[0]);
}
