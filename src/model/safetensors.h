/* safetensors.h: reading and writing the safetensors format.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON mapping each
 * tensor name to {dtype, shape, data_offsets: [begin, end)} relative to the
 * data section (plus an optional "__metadata__" object of strings), then the
 * data. tn_st_open validates all of it before any tensor is read: a
 * truncated file, a header that is not one JSON object (padding spaces
 * alone may follow it), an unknown dtype, offsets that are not whole
 * numbers up to 2^53, overlap, leave gaps or run past the end, a shape of
 * more bytes than that, and a byte span that does not match dtype x shape
 * all fail with a message that names the file (and the tensor).
 */
#ifndef TN_MODEL_SAFETENSORS_H
#define TN_MODEL_SAFETENSORS_H

#include <stdint.h>
#include <stdio.h>

#include "util/error.h"
#include "util/fileio.h"

typedef enum TnDtype { TN_F32, TN_BF16, TN_F16, TN_F64, TN_I64, TN_I32, TN_U8 } TnDtype;

#define TN_ST_MAX_DIMS 8

const char *tn_dtype_name(TnDtype dtype);
size_t tn_dtype_size(TnDtype dtype);
/* Parses "F32", "BF16", ...; returns -1 if unknown. */
int tn_dtype_parse(const char *name, TnDtype *dtype);

typedef struct TnStTensor {
    char *name; /* owned */
    TnDtype dtype;
    int ndim;
    long long shape[TN_ST_MAX_DIMS];
    size_t numel;
    uint64_t begin, end; /* byte offsets into the data section */
} TnStTensor;

typedef struct TnStFile {
    char path[4096];
    FILE *fp;
    uint64_t data_start; /* 8 + header length */
    int n_tensors;
    TnStTensor *tensors;
} TnStFile;

int tn_st_open(TnStFile *f, const char *path, TnError *err);
void tn_st_close(TnStFile *f);
const TnStTensor *tn_st_find(const TnStFile *f, const char *name);

/* Read a tensor converting to the destination type. Floating dtypes convert
 * to float32/float64; integer dtypes to int64. Reading a float tensor as
 * integers (or the reverse) fails. dst holds t->numel elements. */
int tn_st_read_f32(TnStFile *f, const TnStTensor *t, float *dst, TnError *err);
/* Elements [first, first + count) of t alone (count floats into dst): a
 * shard is read without the rest of the tensor. */
int tn_st_read_f32_range(TnStFile *f, const TnStTensor *t, size_t first, size_t count, float *dst, TnError *err);
int tn_st_read_f64(TnStFile *f, const TnStTensor *t, double *dst, TnError *err);
int tn_st_read_i64(TnStFile *f, const TnStTensor *t, int64_t *dst, TnError *err);

/* One tensor to write, from float32 data converted to the file's dtype. */
typedef struct TnStWriteItem {
    const char *name;
    int ndim;
    const long long *shape;
    const float *data;
} TnStWriteItem;

/* Writes items (in order) to path atomically, every tensor stored as dtype
 * (TN_F32 or TN_BF16), with __metadata__ {"format": "pt"} for transformers. */
int tn_st_write(const char *path, const TnStWriteItem *items, int n_items, TnDtype dtype, TnError *err);

/* tn_st_write in pieces, for data that is never whole in memory (a ZeRO
 * rank 0 gathering a model one part at a time): open writes the header
 * of items (their data unused), write appends the next count floats of
 * the tensors' data in order, commit checks that every float came and
 * renames the file into place. commit is finish (the checks, the data
 * flushed to disk under the temporary name) then publish (the rename), for
 * several files that replace their old ones together (checkpoint.h). A
 * failed call leaves no file (the writer is closed); abort drops an open
 * or finished writer's temporary file. */
#define TN_ST_WRITE_CHUNK ((size_t)1 << 18)

typedef struct TnStWriter {
    TnAtomicFile file;
    TnDtype dtype;
    size_t remaining; /* floats still due */
    uint16_t *half;   /* bf16 conversion buffer, TN_ST_WRITE_CHUNK */
    int open;         /* being written */
    int finished;     /* written whole, not yet published */
} TnStWriter;

int tn_st_writer_open(TnStWriter *w, const char *path, const TnStWriteItem *items, int n_items, TnDtype dtype,
                      TnError *err);
int tn_st_writer_write(TnStWriter *w, const float *data, size_t count, TnError *err);
int tn_st_writer_commit(TnStWriter *w, TnError *err);
int tn_st_writer_finish(TnStWriter *w, TnError *err);
int tn_st_writer_publish(TnStWriter *w, TnError *err);
void tn_st_writer_abort(TnStWriter *w);

#endif
