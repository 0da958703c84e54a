#include "model/token_groups.h"

#include <string.h>

int tn_group_tokens(int32_t *groups, int32_t *counts, const int32_t *tokens, int n_rows, int vocab, int32_t padding) {
    int32_t *starts = groups + TN_GROUP_STARTS(n_rows), *ids = groups + TN_GROUP_IDS(n_rows);
    memset(counts, 0, ((size_t)vocab + 1) * sizeof *counts);
    for (int r = 0; r < n_rows; r++)
        if (tokens[r] != padding) counts[tokens[r] + 1]++;
    for (int v = 0; v < vocab; v++) counts[v + 1] += counts[v]; /* counts[v]: where id v's rows begin */
    int n_groups = 0;
    for (int v = 0; v < vocab; v++)
        if (counts[v + 1] > counts[v]) {
            starts[n_groups] = counts[v];
            ids[n_groups++] = v;
        }
    starts[n_groups] = counts[vocab];
    for (int r = 0; r < n_rows; r++) /* ascending r: each group's rows ascending */
        if (tokens[r] != padding) groups[counts[tokens[r]]++] = r;
    return n_groups;
}
