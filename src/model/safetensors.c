#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/bf16.h"
#include "util/fileio.h"
#include "util/json.h"

static const struct { TnDtype dtype; const char *name; size_t size; } dtype_table[] = {
    {TN_F32, "F32", 4}, {TN_BF16, "BF16", 2}, {TN_F16, "F16", 2}, {TN_F64, "F64", 8},
    {TN_I64, "I64", 8}, {TN_I32, "I32", 4}, {TN_U8, "U8", 1},
};

const char *tn_dtype_name(TnDtype dtype) { return dtype_table[dtype].name; }
size_t tn_dtype_size(TnDtype dtype) { return dtype_table[dtype].size; }

int tn_dtype_parse(const char *name, TnDtype *dtype) {
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (strcmp(dtype_table[i].name, name) == 0) { *dtype = dtype_table[i].dtype; return 0; }
    return -1;
}

static int is_float_dtype(TnDtype d) { return d == TN_F32 || d == TN_BF16 || d == TN_F16 || d == TN_F64; }

/* Largest header we accept (the format's reference reader uses 100 MB). */
#define ST_MAX_HEADER (100u << 20)

/* Offsets and sizes are JSON numbers, doubles: whole ones up to 2^53 are exact. */
#define ST_MAX_OFFSET ((uint64_t)1 << 53)

/* True if x is a whole number in [0, max] (checked before any conversion). */
static int is_whole_number(const cJSON *x, double max) {
    return cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= max &&
           x->valuedouble == (double)(uint64_t)x->valuedouble;
}

static int parse_tensor_entry(TnStTensor *t, const cJSON *e, const char *path, uint64_t data_size, TnError *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return tn_fail(err, "%s: header entry '%s' is not an object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return tn_fail(err, "%s: tensor '%s' needs dtype, shape and data_offsets [begin, end]", path, name);
    if (tn_dtype_parse(dt->valuestring, &t->dtype))
        return tn_fail(err, "%s: tensor '%s' has unsupported dtype '%s'", path, name, dt->valuestring);
    t->ndim = cJSON_GetArraySize(shape);
    if (t->ndim > TN_ST_MAX_DIMS) return tn_fail(err, "%s: tensor '%s' has %d dimensions", path, name, t->ndim);
    /* The element count saturates at limit + 1 (a later 0 still zeroes it),
     * so neither it nor the byte count can wrap around. */
    size_t limit = ST_MAX_OFFSET / tn_dtype_size(t->dtype);
    t->numel = 1;
    int i = 0;
    for (const cJSON *s = shape->child; s; s = s->next, i++) {
        if (!is_whole_number(s, 1e15)) return tn_fail(err, "%s: tensor '%s' has an invalid shape", path, name);
        t->shape[i] = (long long)s->valuedouble;
        size_t dim = (size_t)t->shape[i];
        t->numel = dim && t->numel > limit / dim ? limit + 1 : t->numel * dim;
    }
    if (t->numel > limit)
        return tn_fail(err, "%s: tensor '%s' is larger than 2^53 bytes (the most data_offsets can address)", path,
                       name);
    const cJSON *b = offs->child, *en = b->next;
    if (!is_whole_number(b, (double)ST_MAX_OFFSET) || !is_whole_number(en, (double)ST_MAX_OFFSET) ||
        en->valuedouble < b->valuedouble)
        return tn_fail(err, "%s: tensor '%s' has invalid data_offsets (whole numbers 0 <= begin <= end <= 2^53)",
                       path, name);
    t->begin = (uint64_t)b->valuedouble;
    t->end = (uint64_t)en->valuedouble;
    if (t->end - t->begin != (uint64_t)t->numel * tn_dtype_size(t->dtype))
        return tn_fail(err, "%s: tensor '%s' spans %llu bytes but %s x %zu elements need %llu", path, name,
                       (unsigned long long)(t->end - t->begin), tn_dtype_name(t->dtype), t->numel,
                       (unsigned long long)(t->numel * tn_dtype_size(t->dtype)));
    if (t->end > data_size)
        return tn_fail(err, "%s: tensor '%s' ends at byte %llu of a %llu-byte data section (file truncated?)", path,
                       name, (unsigned long long)t->end, (unsigned long long)data_size);
    return 0;
}

static int compare_begin(const void *a, const void *b) {
    const TnStTensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

int tn_st_open(TnStFile *f, const char *path, TnError *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    uint64_t file_size;
    f->fp = tn_open_regular(path, &file_size, err);
    if (!f->fp) return -1;
    unsigned char len_bytes[8];
    if (file_size < 8 || fread(len_bytes, 1, 8, f->fp) != 8) {
        tn_st_close(f);
        return tn_fail(err, "%s: file too short for a safetensors header (%llu bytes)", path,
                       (unsigned long long)file_size);
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | len_bytes[i];
    if (header_len > ST_MAX_HEADER || header_len > file_size - 8) {
        tn_st_close(f);
        return tn_fail(err, "%s: header length %llu exceeds the file size %llu (truncated or not safetensors)", path,
                       (unsigned long long)header_len, (unsigned long long)file_size);
    }
    char *header = tn_malloc(header_len + 1);
    if (fread(header, 1, header_len, f->fp) != header_len) {
        free(header);
        tn_st_close(f);
        return tn_fail(err, "%s: cannot read the header", path);
    }
    header[header_len] = '\0';
    f->data_start = 8 + header_len;
    uint64_t data_size = file_size - f->data_start;

    /* The format pads the JSON with spaces; anything else after it is not a header. */
    size_t at;
    cJSON *root = tn_json_parse_whole(header, header_len, " ", &at);
    free(header);
    if (!root || at != header_len || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        tn_st_close(f);
        return tn_fail(err, "%s: header is not a valid JSON object", path);
    }
    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0) n++;
    f->tensors = tn_calloc((size_t)n, sizeof *f->tensors);
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) {
                cJSON_Delete(root);
                tn_st_close(f);
                return tn_fail(err, "%s: __metadata__ is not an object", path);
            }
            continue;
        }
        TnStTensor *t = &f->tensors[f->n_tensors];
        if (parse_tensor_entry(t, e, path, data_size, err)) {
            cJSON_Delete(root);
            tn_st_close(f);
            return -1;
        }
        t->name = strdup(e->string);
        f->n_tensors++;
    }
    cJSON_Delete(root);

    /* The data section must be exactly covered: sorted by offset, each tensor
     * starts where the previous ended and the last ends at the file's end. */
    TnStTensor *sorted = tn_malloc((size_t)n * sizeof *sorted + 1);
    memcpy(sorted, f->tensors, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_begin);
    uint64_t expect = 0;
    for (int i = 0; i < n; i++) {
        if (sorted[i].begin != expect) {
            int rc = tn_fail(err, "%s: tensor '%s' starts at byte %llu, expected %llu (overlap or gap)", path,
                             sorted[i].name, (unsigned long long)sorted[i].begin, (unsigned long long)expect);
            free(sorted);
            tn_st_close(f);
            return rc;
        }
        expect = sorted[i].end;
    }
    free(sorted);
    if (expect != data_size) {
        tn_st_close(f);
        return tn_fail(err, "%s: data section is %llu bytes but the tensors cover %llu", path,
                       (unsigned long long)data_size, (unsigned long long)expect);
    }
    return 0;
}

void tn_st_close(TnStFile *f) {
    if (f->fp) fclose(f->fp);
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->fp = NULL;
    f->tensors = NULL;
    f->n_tensors = 0;
}

const TnStTensor *tn_st_find(const TnStFile *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    if (exp == 0x1f) u = sign | 0x7f800000u | (mant << 13);
    else if (exp != 0) u = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) u = sign;
    else { /* subnormal: normalise */
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Reads the raw bytes of t in chunks and hands each chunk to convert(). */
typedef void (*ConvertFn)(const void *src, TnDtype dtype, size_t count, void *dst, size_t dst_index);

/* Elements [first, first + count) of t. */
static int read_converted(TnStFile *f, const TnStTensor *t, size_t first, size_t count_all, void *dst,
                          ConvertFn convert, TnError *err) {
    size_t esize = tn_dtype_size(t->dtype), chunk = (1u << 20) / esize;
    /* a run of a tensor-parallel part (checkpoint.h) may be a row: no 1 MiB buffer for it */
    if (count_all < chunk) chunk = count_all;
    if (fseeko(f->fp, (off_t)(f->data_start + t->begin + first * esize), SEEK_SET) != 0)
        return tn_fail(err, "%s: cannot seek to tensor '%s'", f->path, t->name);
    unsigned char *buf = tn_malloc(chunk * esize);
    for (size_t done = 0; done < count_all; done += chunk) {
        size_t count = count_all - done < chunk ? count_all - done : chunk;
        if (fread(buf, esize, count, f->fp) != count) {
            free(buf);
            return tn_fail(err, "%s: short read in tensor '%s' (file truncated?)", f->path, t->name);
        }
        convert(buf, t->dtype, count, dst, done);
    }
    free(buf);
    return 0;
}

static double float_at(const void *src, TnDtype dtype, size_t i) {
    const unsigned char *p = (const unsigned char *)src + i * tn_dtype_size(dtype);
    switch (dtype) {
    case TN_F32: { float v; memcpy(&v, p, 4); return v; }
    case TN_F64: { double v; memcpy(&v, p, 8); return v; }
    case TN_BF16: { uint16_t v; memcpy(&v, p, 2); return tn_bf16_to_f32(v); }
    case TN_F16: { uint16_t v; memcpy(&v, p, 2); return f16_to_f32(v); }
    default: return 0.0;
    }
}

static int64_t int_at(const void *src, TnDtype dtype, size_t i) {
    const unsigned char *p = (const unsigned char *)src + i * tn_dtype_size(dtype);
    switch (dtype) {
    case TN_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    case TN_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case TN_U8: return *p;
    default: return 0;
    }
}

static void to_f32(const void *src, TnDtype dtype, size_t count, void *dst, size_t at) {
    float *out = (float *)dst + at;
    for (size_t i = 0; i < count; i++) out[i] = (float)float_at(src, dtype, i);
}
static void to_f64(const void *src, TnDtype dtype, size_t count, void *dst, size_t at) {
    double *out = (double *)dst + at;
    for (size_t i = 0; i < count; i++) out[i] = float_at(src, dtype, i);
}
static void to_i64(const void *src, TnDtype dtype, size_t count, void *dst, size_t at) {
    int64_t *out = (int64_t *)dst + at;
    for (size_t i = 0; i < count; i++) out[i] = int_at(src, dtype, i);
}

int tn_st_read_f32(TnStFile *f, const TnStTensor *t, float *dst, TnError *err) {
    return tn_st_read_f32_range(f, t, 0, t->numel, dst, err);
}

int tn_st_read_f32_range(TnStFile *f, const TnStTensor *t, size_t first, size_t count, float *dst, TnError *err) {
    if (!is_float_dtype(t->dtype))
        return tn_fail(err, "%s: tensor '%s' has dtype %s, expected a floating type (F32, BF16, F16, F64)", f->path,
                       t->name, tn_dtype_name(t->dtype));
    TN_ASSERT(first + count <= t->numel);
    return read_converted(f, t, first, count, dst, to_f32, err);
}

int tn_st_read_f64(TnStFile *f, const TnStTensor *t, double *dst, TnError *err) {
    if (!is_float_dtype(t->dtype))
        return tn_fail(err, "%s: tensor '%s' has dtype %s, expected a floating type", f->path, t->name,
                       tn_dtype_name(t->dtype));
    return read_converted(f, t, 0, t->numel, dst, to_f64, err);
}

int tn_st_read_i64(TnStFile *f, const TnStTensor *t, int64_t *dst, TnError *err) {
    if (is_float_dtype(t->dtype))
        return tn_fail(err, "%s: tensor '%s' has dtype %s, expected an integer type", f->path, t->name,
                       tn_dtype_name(t->dtype));
    return read_converted(f, t, 0, t->numel, dst, to_i64, err);
}

int tn_st_writer_open(TnStWriter *w, const char *path, const TnStWriteItem *items, int n_items, TnDtype dtype,
                      TnError *err) {
    memset(w, 0, sizeof *w);
    if (dtype != TN_F32 && dtype != TN_BF16) return tn_fail(err, "%s: can only write F32 or BF16", path);
    size_t esize = tn_dtype_size(dtype);
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t offset = 0;
    for (int i = 0; i < n_items; i++) {
        size_t numel = 1;
        cJSON *e = cJSON_AddObjectToObject(root, items[i].name);
        cJSON_AddStringToObject(e, "dtype", tn_dtype_name(dtype));
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < items[i].ndim; k++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)items[i].shape[k]));
            numel *= (size_t)items[i].shape[k];
        }
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        offset += numel * esize;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        w->remaining += numel;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t json_len = strlen(json), padded = (json_len + 7) & ~(size_t)7;
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int rc = tn_atomic_open(&w->file, path, err);
    if (!rc)
        rc = tn_atomic_write(&w->file, len_bytes, 8, err) || tn_atomic_write(&w->file, json, json_len, err) ||
             tn_atomic_write(&w->file, "        ", padded - json_len, err);
    cJSON_free(json);
    if (rc) return -1; /* tn_atomic_write removed the temporary file */
    w->dtype = dtype;
    w->half = dtype == TN_BF16 ? tn_malloc(TN_ST_WRITE_CHUNK * sizeof *w->half) : NULL;
    w->open = 1;
    return 0;
}

int tn_st_writer_write(TnStWriter *w, const float *data, size_t count, TnError *err) {
    if (count > w->remaining) {
        tn_st_writer_abort(w);
        return tn_fail(err, "%s: %zu more floats than its tensors hold", w->file.path, count - w->remaining);
    }
    w->remaining -= count;
    int rc = 0;
    if (w->dtype == TN_F32) rc = tn_atomic_write(&w->file, data, count * sizeof *data, err);
    for (size_t done = 0; w->dtype == TN_BF16 && done < count && !rc; done += TN_ST_WRITE_CHUNK) {
        size_t n = count - done < TN_ST_WRITE_CHUNK ? count - done : TN_ST_WRITE_CHUNK;
        for (size_t j = 0; j < n; j++) w->half[j] = tn_f32_to_bf16(data[done + j]);
        rc = tn_atomic_write(&w->file, w->half, n * sizeof *w->half, err);
    }
    if (rc) { /* the temporary file is gone */
        w->open = 0;
        tn_st_writer_abort(w);
    }
    return rc ? -1 : 0;
}

int tn_st_writer_commit(TnStWriter *w, TnError *err) {
    return tn_st_writer_finish(w, err) || tn_st_writer_publish(w, err) ? -1 : 0;
}

int tn_st_writer_finish(TnStWriter *w, TnError *err) {
    if (w->remaining) {
        size_t missing = w->remaining;
        tn_st_writer_abort(w);
        return tn_fail(err, "%s: %zu floats of its tensors were never written", w->file.path, missing);
    }
    free(w->half);
    w->half = NULL;
    w->open = 0;
    if (tn_atomic_finish(&w->file, err)) return -1;
    w->finished = 1;
    return 0;
}

int tn_st_writer_publish(TnStWriter *w, TnError *err) {
    w->finished = 0;
    return tn_atomic_publish(&w->file, err);
}

void tn_st_writer_abort(TnStWriter *w) {
    if (w->open || w->finished) tn_atomic_abort(&w->file);
    free(w->half);
    w->half = NULL;
    w->open = 0;
    w->finished = 0;
}

int tn_st_write(const char *path, const TnStWriteItem *items, int n_items, TnDtype dtype, TnError *err) {
    TnStWriter w;
    if (tn_st_writer_open(&w, path, items, n_items, dtype, err)) return -1;
    for (int i = 0; i < n_items; i++) {
        size_t numel = 1;
        for (int k = 0; k < items[i].ndim; k++) numel *= (size_t)items[i].shape[k];
        if (tn_st_writer_write(&w, items[i].data, numel, err)) return -1;
    }
    return tn_st_writer_commit(&w, err);
}
