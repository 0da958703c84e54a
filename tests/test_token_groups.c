/* test_token_groups.c: the rows of a batch grouped by token
 * (model/token_groups.h), which the GPU's embedding gradient walks.
 *
 * On fresh random batches (few distinct ids so that they repeat, the
 * padding id among them, an id 0 and V - 1 at the edges) it checks that the
 * groups partition the non-padding rows, ids strictly ascending, each
 * group's rows ascending and holding its id; and that adding the rows'
 * gradients group by group, as embedding_backward_cuda does, gives exactly
 * (bit for bit) embedding_backward_cpu's result: the same additions in the
 * same order, whatever the grouping.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/embedding.h"
#include "model/token_groups.h"
#include "test.h"
#include "util/rng.h"

/* embedding_backward_cuda's arithmetic on the host: each table element adds
 * its group's rows in order. */
static void backward_by_groups(float *dembed, const float *dout, const int32_t *groups, int n_groups, int n_rows,
                               int dim, float scale) {
    const int32_t *starts = groups + TN_GROUP_STARTS(n_rows), *ids = groups + TN_GROUP_IDS(n_rows);
    for (int g = 0; g < n_groups; g++)
        for (int c = 0; c < dim; c++) {
            float sum = dembed[(size_t)ids[g] * dim + c];
            for (int i = starts[g]; i < starts[g + 1]; i++) sum += scale * dout[(size_t)groups[i] * dim + c];
            dembed[(size_t)ids[g] * dim + c] = sum;
        }
}

static void check_batch(TnRng *rng, int n_rows, int vocab, int distinct, int32_t padding) {
    const int dim = 24;
    int32_t *tokens = malloc(n_rows * sizeof *tokens), *groups = malloc(TN_TOKEN_GROUPS_SIZE(n_rows) * sizeof *groups);
    int32_t *counts = malloc((vocab + 1) * sizeof *counts), *pool = malloc(distinct * sizeof *pool);
    for (int i = 0; i < distinct; i++) pool[i] = (int32_t)tn_rng_below(rng, vocab);
    pool[0] = padding;
    pool[distinct - 1] = vocab - 1;
    if (distinct > 2) pool[1] = 0;
    int non_padding = 0;
    for (int r = 0; r < n_rows; r++) {
        tokens[r] = pool[tn_rng_below(rng, distinct)];
        non_padding += tokens[r] != padding;
    }
    int n_groups = tn_group_tokens(groups, counts, tokens, n_rows, vocab, padding);
    const int32_t *starts = groups + TN_GROUP_STARTS(n_rows), *ids = groups + TN_GROUP_IDS(n_rows);

    int ordered = starts[0] == 0 && starts[n_groups] == non_padding, holds = 1, seen_ok = 1;
    char *seen = calloc(n_rows, 1);
    for (int g = 0; g < n_groups; g++) {
        ordered &= starts[g + 1] > starts[g] && (g == 0 || ids[g] > ids[g - 1]) && ids[g] != padding;
        for (int i = starts[g]; i < starts[g + 1]; i++) {
            holds &= tokens[groups[i]] == ids[g];
            ordered &= i == starts[g] || groups[i] > groups[i - 1];
            seen_ok &= !seen[groups[i]];
            seen[groups[i]] = 1;
        }
    }
    CHECK(ordered, "groups of %d rows (V %d, %d ids drawn): ids or rows out of order, or a group empty", n_rows,
          vocab, distinct);
    CHECK(holds, "a row in the group of another id (%d rows)", n_rows);
    CHECK(seen_ok && n_groups <= non_padding, "a row listed twice (%d rows)", n_rows);

    float *dout = malloc((size_t)n_rows * dim * sizeof *dout);
    float *expected = malloc((size_t)vocab * dim * sizeof *expected), *got = malloc((size_t)vocab * dim * sizeof *got);
    for (size_t i = 0; i < (size_t)n_rows * dim; i++) dout[i] = tn_rng_uniform(rng) - 0.5f;
    for (size_t i = 0; i < (size_t)vocab * dim; i++) expected[i] = got[i] = tn_rng_uniform(rng) - 0.5f;
    embedding_backward_cpu(expected, dout, tokens, n_rows, dim, 0.37f, padding);
    backward_by_groups(got, dout, groups, n_groups, n_rows, dim, 0.37f);
    CHECK(memcmp(got, expected, (size_t)vocab * dim * sizeof *got) == 0,
          "the grouped embedding gradient differs from embedding_backward_cpu's (%d rows, V %d)", n_rows, vocab);
    free(tokens), free(groups), free(counts), free(pool), free(seen), free(dout), free(expected), free(got);
}

int main(int argc, char **argv) {
    (void)argc;
    TnRng rng;
    tn_rng_seed(&rng, test_seed(), 1);
    check_batch(&rng, 1, 5, 1, 0);
    check_batch(&rng, 257, 64, 9, 0);
    check_batch(&rng, 1000, 3000, 40, 17);
    check_batch(&rng, 4096, 500, 500, 499);
    return TEST_DONE(argv[0]);
}
