/* token_groups.h: the rows of a batch grouped by token id, so that the
 * embedding's gradient on the GPU (elementwise_cuda.h's
 * embedding_backward_cuda) needs no atomics: each group owns one row of the
 * table and adds its rows' gradients in ascending row order, the order of
 * embedding_backward_cpu, so the sum has the same bits on every run.
 *
 * A counting sort on the host (O(rows + vocab)), where the batch's tokens
 * are anyway: the caller owns both buffers, sized by the macros below.
 */
#ifndef TN_MODEL_TOKEN_GROUPS_H
#define TN_MODEL_TOKEN_GROUPS_H

#include <stdint.h>

/* int32 entries of the groups buffer for n_rows rows:
 *   [0, n_rows)                     the rows of group 0, then group 1, ...
 *   [TN_GROUP_STARTS(n_rows), + n_groups + 1)  group g's rows are entries
 *                                   starts[g] .. starts[g + 1] - 1 above
 *   [TN_GROUP_IDS(n_rows), + n_groups)         group g's token id */
#define TN_TOKEN_GROUPS_SIZE(n_rows) (3 * (n_rows) + 1)
#define TN_GROUP_STARTS(n_rows) (n_rows)
#define TN_GROUP_IDS(n_rows) (2 * (n_rows) + 1)

/* Groups the rows of tokens[0..n_rows) (ids in [0, vocab)) by id, the ids
 * ascending, each group's rows ascending; rows holding `padding` are left
 * out (nn.Embedding(padding_idx) gives them no gradient). counts is scratch
 * of vocab + 1 entries. Returns the number of groups. */
int tn_group_tokens(int32_t *groups, int32_t *counts, const int32_t *tokens, int n_rows, int vocab, int32_t padding);

#endif
