/* grad_reduce.h: gradient reduction overlapped with the backward pass.
 *
 * A data-parallel step sums every rank's gradients (train/trainer.h). Done
 * after the backward, the whole buffer waits for the last layer; here each
 * part of the flat buffer (params.h: the head, layers L-1..0, the
 * embedding, in the order the backward finishes them) starts its
 * reduction as soon as the backward is done with it (TnModelHooks
 * grads_done), and the step waits for all of them at the end.
 *
 * Two modes:
 *   - all-reduce (ZeRO-0/1): grads is the whole buffer, into which every
 *     backward of the step accumulates; only the step's last backward on
 *     each rank is armed (the micro-batches before it accumulate into the
 *     same buffer, so reducing them early would sum them twice), and its
 *     parts are all-reduced in place (MPI_Iallreduce).
 *   - scatter (ZeRO-2/3): grads is the rank's shard of the gradients alone
 *     (its range tn_rank_range of the flat buffer), the only gradient
 *     memory kept across the step. The backward writes each part into a
 *     part-sized buffer handed out by the grads hook (TnModelHooks.grads):
 *     layers and the head take turns in a ring of TN_GRAD_RING buffers, so
 *     that a part's reduce-scatter (MPI_Ireduce_scatter) runs while the
 *     backward fills the next, and the embedding has a buffer of its own
 *     (a tied embedding receives the head's gradient first and its own
 *     last). Every backward of the step is armed: each reduces its parts,
 *     and the shard accumulates the sums, which is the same sum as
 *     reducing the accumulated buffer once, in another order. Before a
 *     buffer is reused its reduction is waited for and added in.
 *
 * Every element is summed over the ranks once per reduction, as the
 * blocking collectives do (dist/comm.h), so a step's result does not
 * depend on whether it overlaps. Every rank arms the same backwards (an
 * idle one, tn_model_idle_pass, where a rank has no micro-batch left) and
 * so starts the same collectives in the same order.
 */
#ifndef TN_DIST_GRAD_REDUCE_H
#define TN_DIST_GRAD_REDUCE_H

#include "dist/comm.h"
#include "model/transnormer.h"

/* The buffers the layers and the head take turns in (scatter mode). */
#define TN_GRAD_RING 2

/* A part-sized gradient buffer of the scatter mode and its reduction. */
typedef struct TnGradUnit {
    float *buffer;             /* capacity floats, owned */
    size_t capacity;
    int part;                  /* the part it holds (TN_PART_EMBED .. L), or TN_GRAD_NO_PART */
    int in_flight;             /* its reduce-scatter started and not yet added into the shard */
    TnCommRequests *requests;  /* that reduce-scatter's */
} TnGradUnit;

#define TN_GRAD_NO_PART (-2)

typedef struct TnGradReduce {
    const TnComm *comm;
    const TnParamLayout *layout; /* the model's */
    int n_layers, tied;
    float *grads;                /* caller-owned: layout->total floats, or (scatter) the range own alone */
    TnRange own;                 /* the range grads covers */
    int scatter;                 /* reduce-scatter into the shard (ZeRO >= 2), else all-reduce */
    int armed, expected, started; /* the backward in progress reduces; parts due and started since the finish */
    TnCommRequests *requests;    /* all-reduce mode */
    TnGradUnit embed, ring[TN_GRAD_RING]; /* scatter mode */
    int next;                    /* the ring buffer the next layer or head takes */
    int failed;                  /* a start failed: error holds why */
    TnError error;
} TnGradReduce;

/* Reduces the gradients of m over comm into grads: the whole buffer, or
 * with scatter the rank's shard (tn_rank_range(layout.total, size, rank)
 * floats). Free with tn_grad_reduce_free. */
void tn_grad_reduce_init(TnGradReduce *g, const TnComm *comm, const TnModel *m, float *grads, int scatter);
void tn_grad_reduce_free(TnGradReduce *g);
/* The floats of the scatter mode's part buffers for a model of this
 * layout: the embedding's part plus TN_GRAD_RING of the largest layer or
 * head (the head's own range: a tied embedding's gradient stays in the
 * embedding's buffer). */
size_t tn_grad_reduce_buffer_floats(const TnParamLayout *layout, int n_layers);
/* The next backward (or idle pass) reduces its parts as it finishes them:
 * the step's last on this rank (all-reduce), or every one (scatter). */
void tn_grad_reduce_arm(TnGradReduce *g);
/* TnModelHooks.grads (scatter mode), user = the TnGradReduce. */
void tn_grad_reduce_bind(TnModel *m, int part, TnWeights *dw, void *user);
/* TnModelHooks.grads_done, user = the TnGradReduce. */
void tn_grad_reduce_part_done(TnModel *m, int part, void *user);
/* Waits for every reduction of the armed backwards: then grads holds the
 * sum over the ranks (scatter: added to what it held). Fails on a
 * collective's error, or when an armed backward did not finish every part
 * (or, scatter, a backward ran unarmed). Disarms. */
int tn_grad_reduce_finish(TnGradReduce *g, TnError *err);

#endif
