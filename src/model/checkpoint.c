#include "model/checkpoint.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/json.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

/* The list of weight files of a directory: one file, or each shard the
 * index names, once. Which tensors the index assigns to a shard is not
 * kept: the reader takes each file's tensors from its own header. */
typedef struct WeightFiles {
    int n_files;
    char **files;   /* file names relative to dir, owned */
} WeightFiles;

static void weight_files_free(WeightFiles *wf) {
    for (int i = 0; i < wf->n_files; i++) free(wf->files[i]);
    free(wf->files);
    memset(wf, 0, sizeof *wf);
}

static int add_file_once(WeightFiles *wf, const char *name) {
    for (int i = 0; i < wf->n_files; i++)
        if (strcmp(wf->files[i], name) == 0) return 0;
    char **grown = realloc(wf->files, (size_t)(wf->n_files + 1) * sizeof *grown);
    if (!grown) tn_die("out of memory");
    wf->files = grown;
    wf->files[wf->n_files++] = strdup(name);
    return 0;
}

static int list_weight_files(WeightFiles *wf, const char *dir, TnError *err) {
    memset(wf, 0, sizeof *wf);
    char path[4096];
    if (tn_path_join(path, sizeof path, dir, INDEX_NAME, err)) return -1;
    if (!tn_file_exists(path)) {
        char single[4096];
        if (tn_path_join(single, sizeof single, dir, SINGLE_NAME, err)) return -1;
        if (!tn_file_exists(single))
            return tn_fail(err, "%s: no %s or %s in this directory", dir, SINGLE_NAME, INDEX_NAME);
        return add_file_once(wf, SINGLE_NAME);
    }
    char *text;
    if (tn_read_file(path, &text, NULL, err)) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return tn_fail(err, "%s: not valid JSON with a \"weight_map\" object", path);
    }
    for (const cJSON *e = map->child; e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            /* the message quotes e->string, which cJSON_Delete frees */
            tn_fail(err, "%s: weight_map entry '%s' must name a file in the same directory", path, e->string);
            cJSON_Delete(root);
            weight_files_free(wf);
            return -1;
        }
        add_file_once(wf, e->valuestring);
    }
    cJSON_Delete(root);
    if (wf->n_files == 0) return tn_fail(err, "%s: weight_map is empty", path);
    return 0;
}

static void shape_string(char *out, size_t cap, int ndim, const long long *shape) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++) n += (size_t)snprintf(out + n, cap - n, i ? ", %lld" : "%lld", shape[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

struct TnCheckpointReader {
    const TnParamLayout *layout;
    int n_files;
    TnStFile *files;           /* open */
    const TnStTensor **stored; /* per layout tensor: its entry in files */
    TnStFile **file_of;        /* per layout tensor: the file holding it */
};

/* Checks every tensor of one open file against the layout and records
 * where each is. */
static int index_file_tensors(TnCheckpointReader *reader, TnStFile *st, TnError *err) {
    const TnParamLayout *layout = reader->layout;
    for (int i = 0; i < st->n_tensors; i++) {
        const TnStTensor *t = &st->tensors[i];
        const TnTensorInfo *info = tn_param_find(layout, t->name);
        if (!info) return tn_fail(err, "%s: unexpected tensor '%s' (not a parameter of this config)", st->path, t->name);
        int idx = (int)(info - layout->tensors);
        if (reader->stored[idx]) return tn_fail(err, "%s: tensor '%s' is stored twice", st->path, t->name);
        int same = t->ndim == info->ndim;
        for (int k = 0; same && k < t->ndim; k++) same = t->shape[k] == info->shape[k];
        if (!same) {
            char got[128], want[128];
            shape_string(got, sizeof got, t->ndim, t->shape);
            shape_string(want, sizeof want, info->ndim, info->shape);
            return tn_fail(err, "%s: tensor '%s' has shape %s, expected %s", st->path, t->name, got, want);
        }
        reader->stored[idx] = t;
        reader->file_of[idx] = st;
    }
    return 0;
}

/* True if any weight file stores lm_head.weight (which unties the output). */
static int has_lm_head(const char *dir, const WeightFiles *wf, int *found, TnError *err) {
    *found = 0;
    for (int i = 0; i < wf->n_files && !*found; i++) {
        char path[4096];
        TnStFile st;
        if (tn_path_join(path, sizeof path, dir, wf->files[i], err) || tn_st_open(&st, path, err)) return -1;
        *found = tn_st_find(&st, "lm_head.weight") != NULL;
        tn_st_close(&st);
    }
    return 0;
}

int tn_checkpoint_load_config(const char *dir, TnConfig *cfg, TnError *err) {
    char path[4096];
    if (tn_path_join(path, sizeof path, dir, "config.json", err) || tn_config_load(cfg, path, err)) return -1;
    WeightFiles wf;
    if (list_weight_files(&wf, dir, err)) return -1;
    int untied, rc = has_lm_head(dir, &wf, &untied, err);
    weight_files_free(&wf);
    if (!rc && untied) cfg->tie_word_embeddings = 0;
    return rc;
}

void tn_checkpoint_reader_close(TnCheckpointReader *reader) {
    if (!reader) return;
    for (int i = 0; i < reader->n_files; i++) tn_st_close(&reader->files[i]);
    free(reader->files);
    free(reader->stored);
    free(reader->file_of);
    free(reader);
}

int tn_checkpoint_reader_open(TnCheckpointReader **out, const char *dir, const TnParamLayout *layout, TnError *err) {
    *out = NULL;
    WeightFiles wf;
    if (list_weight_files(&wf, dir, err)) return -1;
    TnCheckpointReader *reader = tn_calloc(1, sizeof *reader);
    reader->layout = layout;
    reader->files = tn_calloc((size_t)wf.n_files, sizeof *reader->files);
    reader->stored = tn_calloc((size_t)layout->n_tensors, sizeof *reader->stored);
    reader->file_of = tn_calloc((size_t)layout->n_tensors, sizeof *reader->file_of);
    int rc = 0;
    for (int i = 0; i < wf.n_files && !rc; i++) {
        char path[4200];
        rc = tn_path_join(path, sizeof path, dir, wf.files[i], err) || tn_st_open(&reader->files[i], path, err);
        if (rc) break;
        reader->n_files++;
        rc = index_file_tensors(reader, &reader->files[i], err);
    }
    for (int i = 0; i < layout->n_tensors && !rc; i++)
        if (!reader->stored[i])
            rc = tn_fail(err, "%s: missing tensor '%s' (expected from config.json)", dir, layout->tensors[i].name);
    weight_files_free(&wf);
    if (rc) {
        tn_checkpoint_reader_close(reader);
        return -1;
    }
    *out = reader;
    return 0;
}

int tn_checkpoint_read_runs(TnCheckpointReader *reader, const TnRun *runs, size_t n_runs, float *out, TnError *err) {
    const TnParamLayout *layout = reader->layout;
    for (size_t i = 0; i < n_runs; i++) {
        /* a run may span tensors: read it tensor by tensor */
        for (size_t done = 0; done < runs[i].count;) {
            size_t at = runs[i].from + done;
            const TnTensorInfo *t = tn_param_tensor_at(layout, at);
            int idx = (int)(t - layout->tensors);
            size_t take = t->offset + t->numel - at < runs[i].count - done ? t->offset + t->numel - at
                                                                            : runs[i].count - done;
            if (tn_st_read_f32_range(reader->file_of[idx], reader->stored[idx], at - t->offset, take,
                                     out + runs[i].to + done, err))
                return -1;
            done += take;
        }
    }
    return 0;
}

int tn_checkpoint_load_range(const char *dir, const TnParamLayout *layout, float *out, size_t begin, size_t end,
                             TnError *err) {
    TnCheckpointReader *reader;
    if (tn_checkpoint_reader_open(&reader, dir, layout, err)) return -1;
    TnRun run = {.from = begin, .to = 0, .count = end - begin};
    int rc = tn_checkpoint_read_runs(reader, &run, 1, out, err);
    tn_checkpoint_reader_close(reader);
    return rc;
}

int tn_checkpoint_load(const char *dir, TnConfig *cfg, TnParamLayout *layout, float **params, TnError *err) {
    *params = NULL;
    memset(layout, 0, sizeof *layout);
    if (tn_checkpoint_load_config(dir, cfg, err)) return -1;
    tn_param_layout_init(layout, cfg);
    float *buf = tn_malloc(layout->total * sizeof *buf);
    if (tn_checkpoint_load_range(dir, layout, buf, 0, layout->total, err)) {
        free(buf);
        tn_param_layout_free(layout);
        return -1;
    }
    *params = buf;
    return 0;
}

/* Writes the index of a sharded save. */
static int write_index(const char *dir, const TnParamLayout *layout, const int *shard_of, int n_shards, size_t total_bytes,
                       TnError *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)total_bytes);
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    char name[64];
    for (int i = 0; i < layout->n_tensors; i++) {
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", shard_of[i] + 1, n_shards);
        cJSON_AddStringToObject(map, layout->tensors[i].name, name);
    }
    char path[4096];
    if (tn_path_join(path, sizeof path, dir, INDEX_NAME, err)) {
        cJSON_Delete(root);
        return -1;
    }
    return tn_json_write_file(path, root, err);
}

/* Opens the file of shard w->shard, its tensors' header written. */
static int open_shard(TnCheckpointWriter *w, TnError *err) {
    const TnParamLayout *layout = w->layout;
    TnStWriteItem *items = tn_malloc((size_t)layout->n_tensors * sizeof *items);
    int count = 0;
    w->shard_end = w->position;
    for (int i = 0; i < layout->n_tensors; i++) {
        if (w->shard_of[i] != w->shard) continue;
        const TnTensorInfo *t = &layout->tensors[i];
        items[count++] = (TnStWriteItem){t->name, t->ndim, t->shape, NULL};
        w->shard_end = t->offset + t->numel;
    }
    char name[64], path[4200];
    if (w->n_shards == 1) snprintf(name, sizeof name, SINGLE_NAME);
    else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", w->shard + 1, w->n_shards);
    int rc = tn_path_join(path, sizeof path, w->dir, name, err) ||
             tn_st_writer_open(&w->files[w->shard], path, items, count, w->dtype, err);
    free(items);
    return rc ? -1 : 0;
}

/* Removes dir/name if it is there. */
static int remove_if_present(const char *dir, const char *name, TnError *err) {
    char path[4200];
    return tn_path_join(path, sizeof path, dir, name, err) || tn_remove_if_present(path, err) ? -1 : 0;
}

/* Drops the writer's temporary files (an open one, the finished ones) and
 * its plan. */
static void release(TnCheckpointWriter *w) {
    for (int s = 0; w->files && s < w->n_shards; s++) tn_st_writer_abort(&w->files[s]);
    free(w->files);
    free(w->shard_of);
    w->files = NULL;
    w->shard_of = NULL;
    w->shard = w->n_shards;
}

int tn_checkpoint_writer_open(TnCheckpointWriter *w, const char *dir, const TnConfig *cfg, const TnParamLayout *layout,
                              TnDtype dtype, size_t shard_bytes, TnError *err) {
    memset(w, 0, sizeof *w);
    if (tn_mkdir_p(dir, err)) return -1;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->config = *cfg;
    w->layout = layout;
    w->dtype = dtype;
    /* Greedy assignment of tensors, in layout order (the buffer's), to shards. */
    int n = layout->n_tensors;
    w->shard_of = tn_malloc((size_t)n * sizeof *w->shard_of);
    w->n_shards = 1;
    size_t esize = tn_dtype_size(dtype), in_shard = 0, next = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = layout->tensors[i].numel * esize;
        TN_ASSERT(layout->tensors[i].offset == next); /* the files follow the buffer */
        next += layout->tensors[i].numel;
        if (shard_bytes && in_shard > 0 && in_shard + bytes > shard_bytes) { w->n_shards++; in_shard = 0; }
        w->shard_of[i] = w->n_shards - 1;
        in_shard += bytes;
        w->total_bytes += bytes;
    }
    w->files = tn_calloc((size_t)w->n_shards, sizeof *w->files);
    if (open_shard(w, err)) {
        release(w);
        return -1;
    }
    return 0;
}

/* Finishes the file being written (its last tensor complete) and opens
 * the next one, if any; on failure the writer is aborted. */
static int next_shard(TnCheckpointWriter *w, TnError *err) {
    int rc = tn_st_writer_finish(&w->files[w->shard], err);
    w->shard++;
    if (rc || (w->shard < w->n_shards && open_shard(w, err))) {
        tn_checkpoint_writer_abort(w);
        return -1;
    }
    return 0;
}

int tn_checkpoint_writer_write(TnCheckpointWriter *w, const float *data, size_t count, TnError *err) {
    while (count > 0) {
        if (w->shard == w->n_shards) {
            tn_checkpoint_writer_abort(w);
            return tn_fail(err, "%s: more floats than the model's %zu", w->dir, w->layout->total);
        }
        size_t take = w->shard_end - w->position < count ? w->shard_end - w->position : count;
        if (tn_st_writer_write(&w->files[w->shard], data, take, err)) {
            tn_checkpoint_writer_abort(w);
            return -1;
        }
        w->position += take;
        data += take;
        count -= take;
        if (w->position < w->shard_end) continue;
        if (next_shard(w, err)) return -1;
    }
    return 0;
}

/* Puts the finished files in place of the previous save's, config.json
 * last. A single file goes in before the old index goes (loading prefers
 * an index: until it is removed the previous save loads whole). Shards
 * take their names one rename at a time, so the old index goes first: an
 * interruption among them leaves a directory that refuses to load (no
 * index) rather than one that loads a mix of two saves' shards; the new
 * index follows them, and the old single file goes once the save is whole. */
static int publish(TnCheckpointWriter *w, TnError *err) {
    char path[4200];
    if (tn_path_join(path, sizeof path, w->dir, "config.json", err)) return -1;
    if (w->n_shards == 1)
        return tn_st_writer_publish(&w->files[0], err) || remove_if_present(w->dir, INDEX_NAME, err) ||
                       tn_config_save(&w->config, path, err)
                   ? -1
                   : 0;
    if (remove_if_present(w->dir, INDEX_NAME, err)) return -1;
    for (int s = 0; s < w->n_shards; s++)
        if (tn_st_writer_publish(&w->files[s], err)) return -1;
    return write_index(w->dir, w->layout, w->shard_of, w->n_shards, w->total_bytes, err) ||
                   tn_config_save(&w->config, path, err) || remove_if_present(w->dir, SINGLE_NAME, err)
               ? -1
               : 0;
}

int tn_checkpoint_writer_close(TnCheckpointWriter *w, TnError *err) {
    if (!w->files) return tn_fail(err, "%s: the checkpoint writer was already closed", w->dir);
    if (w->position != w->layout->total) {
        size_t position = w->position;
        tn_checkpoint_writer_abort(w);
        return tn_fail(err, "%s: %zu of the model's %zu floats written", w->dir, position, w->layout->total);
    }
    /* files of empty tensors only (or a model of no floats) after the last float */
    while (w->shard < w->n_shards)
        if (next_shard(w, err)) return -1;
    int rc = publish(w, err);
    release(w);
    return rc;
}

void tn_checkpoint_writer_abort(TnCheckpointWriter *w) { release(w); }

int tn_checkpoint_save(const char *dir, const TnConfig *cfg, const TnParamLayout *layout, const float *params,
                  TnDtype dtype, size_t shard_bytes, TnError *err) {
    TnCheckpointWriter w;
    if (tn_checkpoint_writer_open(&w, dir, cfg, layout, dtype, shard_bytes, err) ||
        tn_checkpoint_writer_write(&w, params, layout->total, err))
        return -1;
    return tn_checkpoint_writer_close(&w, err);
}
