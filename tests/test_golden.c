/* The CPU forward pass against the official HF code's float64 outputs
 * (SPEC: logits and loss within 1e-5 relative l2), and the float64
 * reference against the same golden tensors (within 1e-6: they differ only
 * by the float32 rounding the official SRMSNorm does). */
#include <stdlib.h>
#include <math.h>

#include "golden.h"
#include "ref64.h"
#include "test.h"

int main(int argc, char **argv) {
    (void)argc;
    TnError err;
    GoldenCase c;
    if (golden_open(&c)) return TEST_DONE(argv[0]);
    TnModel *m = &c.model;
    int B = c.batch, T = c.seq_len, V = m->config.vocab_size, rc;
    int32_t *tokens = c.tokens, *targets = c.targets;
    const TnStTensor *logits_t = tn_st_find(&c.tensors, "logits"), *loss_t = tn_st_find(&c.tensors, "loss");
    CHECK(logits_t && loss_t, "golden file has logits, loss");
    if (!logits_t || !loss_t) { golden_close(&c); return TEST_DONE(argv[0]); }
    double *want = malloc(logits_t->numel * sizeof *want), want_loss;
    CHECK(tn_st_read_f64(&c.tensors, logits_t, want, &err) == 0, "%s", err.msg);
    CHECK(tn_st_read_f64(&c.tensors, loss_t, &want_loss, &err) == 0, "%s", err.msg);

    TnAttnAlgo algos[] = {TN_ATTN_CHUNKED, TN_ATTN_CHUNKED, TN_ATTN_PARALLEL, TN_ATTN_RECURRENT};
    int blocks[] = {16, 64, 0, 0};
    for (int a = 0; a < 4; a++) {
        tn_model_set_attention(m, algos[a], blocks[a]);
        tn_model_reserve(m, B, T);
        float loss = 0;
        rc = tn_model_forward(m, tokens, targets, B, T, &loss, &err);
        CHECK(rc == 0, "forward: %s", err.msg);
        double e_logits = rel_l2_f32_f64(m->acts.logits, want, (size_t)B * T * V);
        double e_loss = fabs(loss - want_loss) / fabs(want_loss);
        printf("golden %-9s block %2d: logits rel l2 %.2e, loss %.8f vs %.8f (rel %.2e)\n",
               tn_attn_algo_name(algos[a]), blocks[a], e_logits, loss, want_loss, e_loss);
        CHECK(e_logits <= 1e-5, "%s logits rel l2 %.3e > 1e-5", tn_attn_algo_name(algos[a]), e_logits);
        CHECK(e_loss <= 1e-5, "%s loss rel err %.3e > 1e-5", tn_attn_algo_name(algos[a]), e_loss);
    }

    double *ref = malloc((size_t)B * T * V * sizeof *ref);
    double ref_loss = ref64_forward(&m->config, &m->layout, m->params, tokens, targets, B, T, ref);
    double e_ref = 0, num = 0, den = 0;
    for (size_t i = 0; i < (size_t)B * T * V; i++) {
        num += (ref[i] - want[i]) * (ref[i] - want[i]);
        den += want[i] * want[i];
    }
    e_ref = sqrt(num / den);
    printf("golden float64 reference: logits rel l2 %.2e, loss rel %.2e\n", e_ref, fabs(ref_loss - want_loss) / want_loss);
    CHECK(e_ref <= 1e-6, "float64 reference vs golden logits %.3e > 1e-6", e_ref);
    CHECK(fabs(ref_loss - want_loss) <= 1e-6 * fabs(want_loss), "float64 reference loss %.10f vs %.10f", ref_loss, want_loss);

    free(ref); free(want);
    golden_close(&c);
    return TEST_DONE(argv[0]);
}
