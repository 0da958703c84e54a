/* tensor_parallel.h: the tensor parallelism of the paper's §3.2.2 (Eq.
 * 11-18, Megatron-style) for the CPU model and the CUDA model's parts
 * (model/transnormer_cuda.h TnCudaPart, train/step_device.h), over the
 * groups of comm.h.
 *
 * Ranks: a job of N = D x T ranks is cut into D tensor groups of T
 * consecutive ranks (world rank = d T + t: tensor rank t of data group
 * rank d) and T data groups (the ranks of one tensor rank t). A tensor
 * group holds one copy of the model, split T ways; a data group holds the
 * same part of D copies and sums their gradients (data parallel, ZeRO:
 * train/trainer.h).
 *
 * The split (part t of T, transnormer.h says how the passes use it):
 *   GLA:  W_qkvu [P, D]  rows of heads tH/T .. (t+1)H/T - 1 in each of its
 *                        q, k, v (and u) blocks (split by heads: columns of
 *                        the projection's output)
 *         W_out  [D, D]  the same D/T columns (split by rows of its input)
 *         theta  [H,1,d] the same heads; the decay rates too
 *         the norm after the attention: the same D/T columns of its gain
 *   SGLU: W1, W2 [G, D]  rows tG/T .. (t+1)G/T - 1;  W3 [D, G]: those columns
 *   whole on every rank (replicated): the embedding, the APE table, lm_head
 *   and the other norms. Their gradients are equal on every rank of a
 *   tensor group (they follow from the summed activations' gradients), so
 *   equal updates keep them equal: this relies on the all-reduce giving
 *   every rank the same bits, which OpenMPI's algorithms (each step adds
 *   a pair in either order) and NCCL's (each sum made once, then copied
 *   to every rank) do.
 * The part of a tensor is a set of equal runs of its elements: a part's
 * buffer is laid out like the whole model's (params.h: same names and
 * order, the split widths), so gradients and moments of a part are one
 * flat buffer, and a ZeRO shard over the data group is a range of it.
 *
 * Requires: arch transnormer; H and G divisible by T; norm srmsnorm or
 * rmsnorm (LayerNorm's centre of the split norm would need one more sum:
 * refused). Checkpoints stay the whole model's (tn_tp_runs says where a
 * part's elements go in the whole buffer and come from at load).
 */
#ifndef TN_DIST_TENSOR_PARALLEL_H
#define TN_DIST_TENSOR_PARALLEL_H

#include "dist/comm.h"
#include "model/transnormer.h"

/* Fails with a message naming the reason when cfg cannot be split into
 * `parts` parts (above). parts = 1 always passes. */
int tn_tp_check(const TnConfig *cfg, int parts, TnError *err);

/* Splits world (N ranks) into this rank's tensor group of tp ranks and its
 * data group of N / tp ranks (above). Fails when tp does not divide N.
 * Collective over world; free both with tn_comm_free. */
int tn_tp_groups(const TnComm *world, int tp, TnComm *tensor, TnComm *data, TnError *err);

/* The highest ZeRO stage tensor parallelism runs with on GPUs: from 2 on
 * ZeRO's per-layer collectives over the data group would run beside the
 * tensor group's (train/step_device.h tn_step_device_tp_check says why it
 * refuses them; the planner, plan.h, lists no such layout). The CPU runs
 * every stage. */
#define TN_TP_GPU_MAX_ZERO 1

/* Whether the tensor is split over the tensor group (else replicated).
 * The Transformer baseline's q, k, v projections count as split too, as
 * Megatron splits them by heads: the planner (plan.h) counts them so,
 * though this CPU path refuses the baseline. */
int tn_tp_is_split(const TnTensorInfo *t);

/* The layout of one of `parts` parts of the model laid out by whole (cfg
 * passing tn_tp_check). Free with tn_param_layout_free. */
void tn_tp_layout(TnParamLayout *part, const TnParamLayout *whole, const TnConfig *cfg, int parts);

/* Copies part `index` of `parts` between a whole buffer and a part buffer
 * (laid out by tn_tp_layout): tn_tp_slice fills part from whole,
 * tn_tp_place writes part into its place in whole (the replicated tensors
 * too). */
void tn_tp_slice(float *part, const TnParamLayout *part_layout, const float *whole, const TnParamLayout *whole_layout,
                 const TnConfig *cfg, int parts, int index);
void tn_tp_place(float *whole, const TnParamLayout *whole_layout, const float *part, const TnParamLayout *part_layout,
                 const TnConfig *cfg, int parts, int index);

/* The runs (params.h) of the whole buffer that make the elements
 * [begin, end) of part `index` of `parts` (laid out by part_layout), run.to
 * counted from begin: a rank reads or draws its range of its part from the
 * whole model's files or initialisation without holding the whole model.
 * Returns their number; *runs is allocated (the caller frees). With one
 * part, one run per tensor. */
size_t tn_tp_runs(const TnParamLayout *part_layout, const TnParamLayout *whole_layout, const TnConfig *cfg, int parts,
                  int index, size_t begin, size_t end, TnRun **runs);

/* A range of a part's flat buffer whose tensors are all split over the
 * tensor group (split 1) or all replicated (0): the global gradient norm
 * adds the squares of the split ones over the tensor group and counts the
 * replicated ones once (train/trainer.h). */
typedef struct TnTpRun {
    size_t begin, end;
    int split;
} TnTpRun;

/* The runs covering range of a buffer laid out by layout (a part's, or a
 * whole model's: tn_tp_is_split says the same), in order, adjacent tensors
 * of one kind merged, empty ones left out. Returns their number, at most
 * layout->n_tensors (the room runs must have). */
int tn_tp_split_runs(const TnParamLayout *layout, TnRange range, TnTpRun *runs);

/* Turns m, a whole model, into this rank's part over tensor_group (kept by
 * m, not owned: it must outlive m): its layout, parameters (none for a
 * model made by tn_model_create) and decay rates; the activation arenas
 * are dropped (tn_model_reserve again). Fails, m unchanged, when
 * tn_tp_check does. A group of one rank leaves m whole. */
int tn_tp_split_model(TnModel *m, const TnComm *tensor_group, TnError *err);

#endif
