/* fsdp.c: the per-part parameter gathering of fsdp.h. */
#include "dist/fsdp.h"

#include <stdlib.h>
#include <string.h>

int tn_fsdp_part_ranges(const TnParamLayout *layout, const TnConfig *cfg, int part, TnRange ranges[2]) {
    int L = cfg->n_layers, count = 0;
    if (part == L && cfg->tie_word_embeddings) {
        tn_param_part_range(layout, L, TN_PART_EMBED, &ranges[0].begin, &ranges[0].end);
        count = 1;
    }
    tn_param_part_range(layout, L, part, &ranges[count].begin, &ranges[count].end);
    return count + 1;
}

size_t tn_fsdp_gather_floats(const TnParamLayout *layout, const TnConfig *cfg) {
    size_t largest = 0;
    for (int part = TN_PART_EMBED; part <= cfg->n_layers; part++) {
        TnRange ranges[2];
        size_t size = 0;
        for (int i = 0, n = tn_fsdp_part_ranges(layout, cfg, part, ranges); i < n; i++)
            size += ranges[i].end - ranges[i].begin;
        if (size > largest) largest = size;
    }
    return largest;
}

void tn_fsdp_init(TnFsdp *f, TnModel *m, const TnComm *comm) {
    TnRange own = tn_rank_range(m->layout.total, comm->size, comm->rank);
    float *shard = tn_malloc((own.end - own.begin) * sizeof *shard);
    memcpy(shard, m->params + own.begin, (own.end - own.begin) * sizeof *shard);
    free(m->params);
    m->params = NULL;
    tn_fsdp_init_shard(f, m, comm, shard);
}

void tn_fsdp_init_shard(TnFsdp *f, TnModel *m, const TnComm *comm, float *shard) {
    TN_ASSERT(!m->params);
    memset(f, 0, sizeof *f);
    f->comm = comm;
    f->model = m;
    f->own = tn_rank_range(m->layout.total, comm->size, comm->rank);
    f->shard = shard;
    f->gather_floats = tn_fsdp_gather_floats(&m->layout, &m->config);
    f->gather = tn_malloc(f->gather_floats * sizeof *f->gather);
    f->current = TN_FSDP_NONE;
    /* no view may point at a buffer the model does not hold: each part binds its own */
    memset(&m->w, 0, sizeof m->w);
}

void tn_fsdp_free(TnFsdp *f) {
    free(f->shard);
    free(f->gather);
    memset(f, 0, sizeof *f);
}

void tn_fsdp_gather_part(TnModel *m, int part, void *user) {
    TnFsdp *f = user;
    /* the head, asked for by the forward and again by the backward that follows it */
    if (part == f->current || f->failed) return;
    TnRange ranges[2];
    float *at = f->gather;
    for (int i = 0, n = tn_fsdp_part_ranges(&m->layout, &m->config, part, ranges); i < n; i++) {
        if (tn_comm_all_gather_part(f->comm, f->shard, m->layout.total, ranges[i], at, &f->error)) {
            f->failed = 1;
            f->current = TN_FSDP_NONE;
            return;
        }
        tn_weights_bind_range(&m->w, &m->layout, ranges[i].begin, ranges[i].end, at);
        at += ranges[i].end - ranges[i].begin;
    }
    f->current = part;
}

void tn_fsdp_invalidate(TnFsdp *f) { f->current = TN_FSDP_NONE; }

int tn_fsdp_status(TnFsdp *f, TnError *err) {
    if (!f->failed) return 0;
    f->failed = 0;
    *err = f->error;
    return -1;
}
