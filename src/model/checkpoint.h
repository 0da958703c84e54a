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
/* The same for many pieces of one directory (a rank's tensor-parallel
 * part, dist/tensor_parallel.h tn_tp_runs): open checks every tensor
 * against layout (which must outlive the reader) and keeps the files
 * open; read_runs reads each run's elements into out[run.to ..]. */
typedef struct TnCheckpointReader TnCheckpointReader;

int tn_checkpoint_reader_open(TnCheckpointReader **reader, const char *dir, const TnParamLayout *layout, TnError *err);
int tn_checkpoint_read_runs(TnCheckpointReader *reader, const TnRun *runs, size_t n_runs, float *out, TnError *err);
void tn_checkpoint_reader_close(TnCheckpointReader *reader);

/* Saves config.json and the weights (dtype TN_F32 or TN_BF16). Tensors are
 * split into shards of at most shard_bytes each (0: one file). Every file
 * is written whole under a temporary name first, and only then do they
 * replace the previous save's (renames), config.json last: a save that
 * fails while writing (a full disk, an interrupted run) leaves the previous
 * save as it was; a directory being saved over needs room for both saves.
 * A single file goes in before an earlier save's index is removed (one
 * that cannot be removed fails the save); a sharded save removes that
 * index before its shards take their names (an interruption among those
 * renames leaves no index: refused, not a mix of two saves) and an earlier
 * single file once it is whole. */
int tn_checkpoint_save(const char *dir, const TnConfig *cfg, const TnParamLayout *layout, const float *params,
                  TnDtype dtype, size_t shard_bytes, TnError *err);

/* tn_checkpoint_save in pieces, for parameters that are never whole in
 * memory (a ZeRO-3 rank 0 gathering one part at a time): open plans the
 * files, write appends the next count floats of the flat buffer (in its
 * order, which is the files': each file is finished once its last tensor
 * is complete), close checks that the whole buffer came, then puts the
 * files in place as tn_checkpoint_save says. A failed call leaves no
 * temporary file and closes the writer; abort drops an open writer. */
typedef struct TnCheckpointWriter {
    char dir[4096];
    TnConfig config;         /* written at close */
    const TnParamLayout *layout;
    TnDtype dtype;
    int *shard_of, n_shards; /* each tensor's file */
    size_t total_bytes;
    int shard;               /* the file being written; n_shards: none */
    size_t position;         /* floats of the flat buffer written */
    size_t shard_end;        /* the flat buffer's end of the file being written */
    TnStWriter *files;       /* n_shards: written, finished, then published at close */
} TnCheckpointWriter;

int tn_checkpoint_writer_open(TnCheckpointWriter *w, const char *dir, const TnConfig *cfg, const TnParamLayout *layout,
                              TnDtype dtype, size_t shard_bytes, TnError *err);
int tn_checkpoint_writer_write(TnCheckpointWriter *w, const float *data, size_t count, TnError *err);
int tn_checkpoint_writer_close(TnCheckpointWriter *w, TnError *err);
void tn_checkpoint_writer_abort(TnCheckpointWriter *w);

#endif
