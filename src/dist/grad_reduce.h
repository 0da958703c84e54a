/* grad_reduce.h: gradient reduction overlapped with the backward pass.
 *
 * A data-parallel step sums every rank's gradients (train/trainer.h). Done
 * after the backward, the whole buffer waits for the last layer; here each
 * part of the flat buffer (params.h: the head, layers L-1..0, the
 * embedding, in the order the backward finishes them) starts its
 * reduction as soon as the backward is done with it (TnModelHooks
 * grads_done), and the step waits for all of them at the end: an
 * all-reduce (MPI_Iallreduce) for ZeRO-0/1, a reduce-scatter to the ranks'
 * shards (MPI_Ireduce_scatter) for ZeRO-2/3. Only the step's last backward
 * on each rank is armed: the micro-batches before it accumulate into the
 * same buffer, so reducing them early would sum them twice.
 *
 * The sums are the blocking collectives' (dist/comm.h: every element is
 * summed over the ranks once), so a step's result does not depend on
 * whether it overlaps. Every rank arms exactly one backward per step (an
 * idle one, tn_model_idle_pass, where a rank has no micro-batch left) and
 * so starts the same collectives in the same order.
 */
#ifndef TN_DIST_GRAD_REDUCE_H
#define TN_DIST_GRAD_REDUCE_H

#include "dist/comm.h"
#include "model/transnormer.h"

typedef struct TnGradReduce {
    const TnComm *comm;
    const TnParamLayout *layout; /* the model's */
    int n_layers;
    float *grads;                /* layout->total floats, caller-owned */
    int scatter;                 /* reduce-scatter (ZeRO >= 2), else all-reduce */
    int armed, started;          /* the backward in progress reduces; parts started so far */
    TnCommRequests *requests;
    int failed;                  /* a start failed: error holds why */
    TnError error;
} TnGradReduce;

/* Reduces grads (laid out like m's parameters) over comm. Free with
 * tn_grad_reduce_free. */
void tn_grad_reduce_init(TnGradReduce *g, const TnComm *comm, const TnModel *m, float *grads, int scatter);
void tn_grad_reduce_free(TnGradReduce *g);
/* The next backward (or idle pass) is this step's last on this rank: its
 * parts start their reductions as it finishes them. */
void tn_grad_reduce_arm(TnGradReduce *g);
/* TnModelHooks.grads_done, user = the TnGradReduce. */
void tn_grad_reduce_part_done(TnModel *m, int part, void *user);
/* Waits for every reduction of the armed backward: then grads holds the
 * sum over the ranks (ZeRO >= 2: on this rank's shard, tn_rank_range).
 * Fails on a collective's error, or when the armed backward did not finish
 * every part. Disarms. */
int tn_grad_reduce_finish(TnGradReduce *g, TnError *err);

#endif
