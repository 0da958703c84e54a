/* checkpoint.h: HF model directories (config.json + safetensors).
 *
 * A model directory holds config.json and either model.safetensors or
 * shards model-0000i-of-0000n.safetensors listed in
 * model.safetensors.index.json, with the official parameter names (SPEC
 * section 1). Loading checks every tensor against the layout the config
 * implies: a missing tensor, an unexpected one, a wrong shape or a non-float
 * dtype fails with a message naming the file and the tensor. A stored
 * lm_head.weight unties the output projection.
 */
#ifndef TN_MODEL_CHECKPOINT_H
#define TN_MODEL_CHECKPOINT_H

#include <stddef.h>

#include "model/config.h"
#include "model/params.h"
#include "model/safetensors.h"

/* Loads dir: fills cfg, builds layout (free with tn_param_layout_free) and
 * allocates *params (layout->total floats, the caller frees). On failure
 * nothing is left allocated. */
int tn_checkpoint_load(const char *dir, TnConfig *cfg, TnParamLayout *layout, float **params, TnError *err);
/* tn_checkpoint_load in two steps, for a rank that keeps a range of the
 * parameters alone (dist/fsdp.h): the config (untied when lm_head.weight
 * is stored), then, every tensor checked against layout, the elements
 * [begin, end) of the flat buffer into out (out[0] is element begin),
 * read from the files without the rest. */
int tn_checkpoint_load_config(const char *dir, TnConfig *cfg, TnError *err);
int tn_checkpoint_load_range(const char *dir, const TnParamLayout *layout, float *out, size_t begin, size_t end,
                             TnError *err);

/* Saves config.json and the weights (dtype TN_F32 or TN_BF16). Tensors are
 * split into shards of at most shard_bytes each (0: one file). Each file is
 * written atomically; a stale single file or index from an earlier save
 * with the other layout is removed afterwards. */
int tn_checkpoint_save(const char *dir, const TnConfig *cfg, const TnParamLayout *layout, const float *params,
                  TnDtype dtype, size_t shard_bytes, TnError *err);

#endif
