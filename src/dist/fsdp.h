/* fsdp.h: ZeRO-3 as FSDP, the parameters sharded and gathered one part at
 * a time (Rajbhandari et al. 2020; PyTorch's FullyShardedDataParallel).
 *
 * Each rank keeps its shard of the flat parameter buffer (tn_rank_range of
 * dist/comm.h; AdamW updates it there) and one gather buffer, the size of
 * the largest part (params.h: the embedding, a layer, or the head, which
 * for a tied embedding holds the embedding and the final norm). The model's
 * TnModelHooks.weights gathers a part into that buffer just before the
 * forward or backward reads it and points the model's weight views there;
 * gathering the next part drops it (the backward gathers each layer
 * again). So a rank holds shard + gather buffer of parameters, not the
 * whole model; the model's own params buffer is freed.
 *
 * Every rank must run the same passes (forward, backward, or
 * tn_model_idle_pass) in the same order: each gather is a collective.
 * A failed gather is recorded and reported by tn_fsdp_status; the views
 * then hold stale values (the job must stop: comm.h).
 */
#ifndef TN_DIST_FSDP_H
#define TN_DIST_FSDP_H

#include "dist/comm.h"
#include "model/transnormer.h"

typedef struct TnFsdp {
    const TnComm *comm;
    TnModel *model;
    TnRange own;          /* this rank's range of the flat buffer */
    float *shard;         /* own.end - own.begin floats: the parameters this rank keeps, owned */
    float *gather;        /* gather_floats: the part in use, owned */
    size_t gather_floats;
    int current;          /* the part gather holds; TN_FSDP_NONE after a change of the shard */
    int failed;           /* a gather failed: error holds why */
    TnError error;
} TnFsdp;

#define TN_FSDP_NONE (-2)

/* Takes this rank's shard of m->params (whole on entry, the same on every
 * rank) and frees the rest: m->params becomes NULL. The caller installs
 * tn_fsdp_gather_part as m's weights hook with user = f. */
void tn_fsdp_init(TnFsdp *f, TnModel *m, const TnComm *comm);
/* The same for a model that never held the whole buffer (m->params NULL,
 * tn_model_create): shard is this rank's range of the parameters
 * (tn_rank_range of layout.total; tn_params_init_range or
 * tn_checkpoint_load_range fill it), allocated with tn_malloc; f owns it. */
void tn_fsdp_init_shard(TnFsdp *f, TnModel *m, const TnComm *comm, float *shard);
void tn_fsdp_free(TnFsdp *f);
/* TnModelHooks.weights, user = the TnFsdp. */
void tn_fsdp_gather_part(TnModel *m, int part, void *user);
/* The shard changed (an optimizer step): the next pass gathers afresh. */
void tn_fsdp_invalidate(TnFsdp *f);
/* 0, or -1 with the error of the first failed gather since the last call. */
int tn_fsdp_status(TnFsdp *f, TnError *err);
/* The ranges of the flat buffer that part reads: its own, and for the head
 * of a tied embedding the embedding's first (the logits are the final
 * norm's output times E^T). Returns how many (1 or 2); a gather lays them
 * out one after the other. */
int tn_fsdp_part_ranges(const TnParamLayout *layout, const TnConfig *cfg, int part, TnRange ranges[2]);
/* The floats of the gather buffer of a model's parts (the largest part). */
size_t tn_fsdp_gather_floats(const TnParamLayout *layout, const TnConfig *cfg);

#endif
