#include "data/dedup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/lsh.h"
#include "data/minhash.h"
#include "data/jsonl.h"
#include "data/pipeline.h"
#include "data/unionfind.h"
#include "util/fileio.h"
#include "util/progress.h"

int tn_dedup_next_unit(TnDedupLevel level, const char *text, size_t len, size_t *pos, size_t *start,
                       size_t *unit_len) {
    if (level == TN_DEDUP_DOCUMENT) {
        if (*pos > 0) return 0;
        *start = 0;
        *unit_len = len;
        *pos = len + 1;
        return 1;
    }
    while (*pos < len) {
        const char *nl = memchr(text + *pos, '\n', len - *pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t s = *pos;
        *pos = end + 1;
        if (!tn_line_is_blank(text + s, end - s)) {
            *start = s;
            *unit_len = end - s;
            return 1;
        }
    }
    return 0;
}

/* ---- exact-duplicate table: open addressing, key 0 means empty ---------- */

typedef struct ExactTable {
    uint64_t *keys;
    uint32_t *units;
    size_t cap, count; /* cap is a power of two */
} ExactTable;

static void exact_init(ExactTable *t, size_t cap) {
    t->cap = cap;
    t->count = 0;
    t->keys = tn_calloc(cap, sizeof *t->keys);
    t->units = tn_malloc(cap * sizeof *t->units);
}

static size_t exact_slot(const ExactTable *t, uint64_t key) {
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (t->cap - 1);
    while (t->keys[i] != 0 && t->keys[i] != key) i = (i + 1) & (t->cap - 1);
    return i;
}

/* Key 0 marks an empty slot. */
static uint64_t exact_key(uint64_t hash) { return hash ? hash : 1; }

/* Whether a unit with this hash was registered (read-only: safe while the
 * batch's documents are hashed in parallel, as the table changes only
 * between batches). */
static int exact_contains(const ExactTable *t, uint64_t hash) { return t->keys[exact_slot(t, exact_key(hash))] != 0; }

/* Returns the first unit with this hash, or inserts unit and returns it. */
static uint32_t exact_find_or_insert(ExactTable *t, uint64_t hash, uint32_t unit) {
    uint64_t key = exact_key(hash);
    if (2 * (t->count + 1) > t->cap) {
        ExactTable bigger;
        exact_init(&bigger, 2 * t->cap);
        for (size_t i = 0; i < t->cap; i++)
            if (t->keys[i]) {
                size_t j = exact_slot(&bigger, t->keys[i]);
                bigger.keys[j] = t->keys[i];
                bigger.units[j] = t->units[i];
            }
        bigger.count = t->count;
        free(t->keys);
        free(t->units);
        *t = bigger;
    }
    size_t i = exact_slot(t, key);
    if (t->keys[i]) return t->units[i];
    t->keys[i] = key;
    t->units[i] = unit;
    t->count++;
    return unit;
}

static void exact_free(ExactTable *t) {
    free(t->keys);
    free(t->units);
}

/* ---- the scan ----------------------------------------------------------- */

/* Per unit, fn writes (2 + bands) uint64: the exact hash, 1 if it has
 * shingles, then the band keys. */
typedef struct ScanContext {
    const TnDedupOptions *o;
    TnMinHash minhash;
    TnMinHashScratch *scratch; /* per thread */
    uint32_t **signatures;     /* per thread, num_perm each */
    FILE **band_files;
    char (*band_paths)[4200];
    long long *band_records;
    ExactTable exact;
    uint32_t *exact_pairs;     /* (duplicate, first) pairs */
    size_t n_exact_pairs, exact_pairs_cap;
    uint64_t *first_unit;
    size_t first_unit_cap;
    long long n_documents;
    uint64_t n_units;
} ScanContext;

static void scan_document(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                          TnTextBuf *kept, TnTextBuf *rejected) {
    (void)corpus, (void)rejected;
    ScanContext *c = context;
    const TnTextBuf *line = &b->lines[i];
    cJSON *json, *text;
    const char *reason;
    if (tn_doc_parse(line->data, line->len, &json, &text, &reason)) return; /* no units */
    const char *s = text->valuestring;
    size_t len = strlen(s), pos = 0, start, unit_len;
    uint32_t *signature = c->signatures[thread];
    while (tn_dedup_next_unit(c->o->level, s, len, &pos, &start, &unit_len)) {
        uint64_t record[2 + 256];
        record[0] = tn_hash64(s + start, unit_len, c->o->seed);
        /* Exact duplicates of earlier batches need no signature (exact first). */
        record[1] = !exact_contains(&c->exact, record[0]) &&
                    tn_minhash_signature(&c->minhash, s + start, unit_len, signature, &c->scratch[thread]) > 0;
        for (int band = 0; band < c->o->bands; band++)
            record[2 + band] = record[1] ? tn_lsh_band_key(signature, band, c->o->rows) : 0;
        tn_textbuf_append(kept, (const char *)record, (size_t)(2 + c->o->bands) * sizeof *record);
    }
    cJSON_Delete(json);
}

/* Registers the batch's units in input order: exact table, band files. */
static int register_batch(void *context, const TnDocBatch *b, const TnTextBuf *kept, const TnTextBuf *rejected,
                          TnError *err) {
    (void)rejected;
    ScanContext *c = context;
    size_t stride = (size_t)(2 + c->o->bands);
    for (int i = 0; i < b->count; i++) {
        if ((size_t)c->n_documents + 2 > c->first_unit_cap) {
            c->first_unit_cap = 2 * c->first_unit_cap + 1024;
            c->first_unit = realloc(c->first_unit, c->first_unit_cap * sizeof *c->first_unit);
            if (!c->first_unit) tn_die("out of memory for %zu document offsets", c->first_unit_cap);
        }
        c->first_unit[c->n_documents++] = c->n_units;
        const uint64_t *records = (const uint64_t *)kept[i].data;
        size_t n = kept[i].len / (stride * sizeof *records);
        for (size_t k = 0; k < n; k++) {
            const uint64_t *rec = records + k * stride;
            if (c->n_units >= UINT32_MAX)
                return tn_fail(err, "dedup: more than %u units to deduplicate; split the corpus", UINT32_MAX - 1);
            uint32_t unit = (uint32_t)c->n_units++;
            uint32_t first = exact_find_or_insert(&c->exact, rec[0], unit);
            if (first != unit) {
                if (c->n_exact_pairs + 2 > c->exact_pairs_cap) {
                    c->exact_pairs_cap = 2 * c->exact_pairs_cap + 4096;
                    c->exact_pairs = realloc(c->exact_pairs, c->exact_pairs_cap * sizeof *c->exact_pairs);
                    if (!c->exact_pairs) tn_die("out of memory for exact-duplicate pairs");
                }
                c->exact_pairs[c->n_exact_pairs++] = unit;
                c->exact_pairs[c->n_exact_pairs++] = first;
                continue;
            }
            if (!rec[1]) continue; /* no shingles: exact matching only */
            for (int band = 0; band < c->o->bands; band++) {
                unsigned char bytes[12];
                memcpy(bytes, &rec[2 + band], 8);
                memcpy(bytes + 8, &unit, 4);
                if (fwrite(bytes, 1, 12, c->band_files[band]) != 12)
                    return tn_fail(err, "%s: write failed: %s", c->band_paths[band], strerror(errno));
                c->band_records[band]++;
            }
        }
    }
    return 0;
}

typedef struct BandRecord {
    uint64_t key;
    uint32_t unit;
} BandRecord;

static int compare_band_records(const void *a, const void *b) {
    const BandRecord *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->unit > y->unit) - (x->unit < y->unit);
}

/* Reads one band file, sorts it and merges equal keys. */
static int cluster_band(ScanContext *c, int band, TnUnionFind *uf, long long *candidates, TnError *err) {
    const char *path = c->band_paths[band];
    FILE *fp = fopen(path, "rb");
    if (!fp) return tn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t n = (size_t)c->band_records[band];
    BandRecord *records = tn_malloc((n ? n : 1) * sizeof *records);
    unsigned char bytes[12];
    for (size_t i = 0; i < n; i++) {
        if (fread(bytes, 1, 12, fp) != 12) {
            fclose(fp);
            free(records);
            return tn_fail(err, "%s: short read (the work directory changed during the run?)", path);
        }
        memcpy(&records[i].key, bytes, 8);
        memcpy(&records[i].unit, bytes + 8, 4);
    }
    fclose(fp);
    qsort(records, n, sizeof *records, compare_band_records);
    for (size_t i = 1; i < n; i++)
        if (records[i].key == records[i - 1].key) *candidates += tn_union_find_merge(uf, records[i - 1].unit, records[i].unit);
    free(records);
    return 0;
}

static void close_band_files(ScanContext *c) {
    for (int band = 0; band < c->o->bands; band++) {
        if (c->band_files[band]) fclose(c->band_files[band]);
        c->band_files[band] = NULL;
        remove(c->band_paths[band]);
    }
    rmdir(c->o->work_dir); /* only if empty: a user's own directory stays */
}

static int open_band_files(ScanContext *c, TnError *err) {
    if (tn_mkdir_p(c->o->work_dir, err)) return -1;
    for (int band = 0; band < c->o->bands; band++) {
        snprintf(c->band_paths[band], sizeof c->band_paths[band], "%s/band-%03d.%ld.bin", c->o->work_dir, band,
                 (long)getpid());
        c->band_files[band] = fopen(c->band_paths[band], "w+b");
        if (!c->band_files[band]) {
            int e = errno;
            close_band_files(c);
            return tn_fail(err, "%s: cannot create: %s", c->band_paths[band], strerror(e));
        }
    }
    return 0;
}

static int finish_clusters(ScanContext *c, TnDedupResult *r, TnError *err) {
    double start = tn_now();
    for (int band = 0; band < c->o->bands; band++)
        if (fflush(c->band_files[band]) != 0) return tn_fail(err, "%s: write failed: %s", c->band_paths[band], strerror(errno));
    r->n_units = (uint32_t)c->n_units;
    r->status = tn_calloc(r->n_units ? r->n_units : 1, 1);
    TnUnionFind uf;
    tn_union_find_init(&uf, r->n_units);
    for (size_t i = 0; i < c->n_exact_pairs; i += 2) {
        r->status[c->exact_pairs[i]] = TN_UNIT_EXACT;
        tn_union_find_merge(&uf, c->exact_pairs[i], c->exact_pairs[i + 1]);
    }
    for (int band = 0; band < c->o->bands; band++) {
        fclose(c->band_files[band]);
        c->band_files[band] = NULL;
        if (cluster_band(c, band, &uf, &r->candidates, err)) {
            tn_union_find_free(&uf);
            return -1;
        }
        remove(c->band_paths[band]);
    }
    /* Ascending order: a parent is never larger than its child, so
     * parent[parent[u]] is already the final root. */
    uint8_t *has_members = tn_calloc(r->n_units ? r->n_units : 1, 1);
    for (uint32_t u = 0; u < r->n_units; u++) {
        uint32_t root = uf.parent[uf.parent[u]];
        uf.parent[u] = root;
        if (root == u) continue;
        if (r->status[u] == TN_UNIT_EXACT) r->exact++;
        else {
            r->status[u] = TN_UNIT_NEAR;
            r->near++;
        }
        r->clusters += !has_members[root];
        has_members[root] = 1;
    }
    free(has_members);
    r->representative = uf.parent;
    r->seconds_cluster = tn_now() - start;
    return 0;
}

int tn_dedup_scan(const TnDedupOptions *o, const char *const *inputs, int n_inputs, TnDedupResult *r, TnError *err) {
    memset(r, 0, sizeof *r);
    if (o->bands * o->rows > o->num_perm || o->bands > 256)
        return tn_fail(err, "dedup: %d bands x %d rows do not fit %d permutations", o->bands, o->rows, o->num_perm);
    TnPipeline p = {.inputs = inputs, .n_inputs = n_inputs, .label = "signatures", .threads = o->threads,
                    .after_batch = register_batch, .quiet = !o->progress};
    int threads = tn_pipeline_threads(&p);
    ScanContext c = {.o = o};
    tn_minhash_init(&c.minhash, o->num_perm, o->ngram, o->seed);
    c.scratch = tn_calloc((size_t)threads, sizeof *c.scratch);
    c.signatures = tn_calloc((size_t)threads, sizeof *c.signatures);
    for (int t = 0; t < threads; t++) c.signatures[t] = tn_malloc((size_t)o->num_perm * sizeof **c.signatures);
    c.band_files = tn_calloc((size_t)o->bands, sizeof *c.band_files);
    c.band_paths = tn_calloc((size_t)o->bands, sizeof *c.band_paths);
    c.band_records = tn_calloc((size_t)o->bands, sizeof *c.band_records);
    exact_init(&c.exact, 1 << 16);
    int rc = open_band_files(&c, err);
    TnPipelineCounts counts;
    if (rc == 0) rc = tn_pipeline_run(&p, scan_document, &c, &counts, err);
    if (rc == 0) {
        r->bytes = counts.bytes;
        r->seconds_scan = counts.seconds;
        r->n_documents = c.n_documents;
        c.first_unit = c.first_unit ? c.first_unit : tn_malloc(sizeof *c.first_unit);
        c.first_unit[c.n_documents] = c.n_units;
        r->first_unit = c.first_unit;
        c.first_unit = NULL;
        exact_free(&c.exact); /* before clustering: the two never need memory at once */
        c.exact.keys = NULL;
        c.exact.units = NULL;
        rc = finish_clusters(&c, r, err);
    }
    close_band_files(&c);
    exact_free(&c.exact);
    free(c.exact_pairs);
    free(c.first_unit);
    for (int t = 0; t < threads; t++) {
        tn_minhash_scratch_free(&c.scratch[t]);
        free(c.signatures[t]);
    }
    free(c.scratch);
    free(c.signatures);
    free(c.band_files);
    free(c.band_paths);
    free(c.band_records);
    tn_minhash_free(&c.minhash);
    if (rc) tn_dedup_result_free(r);
    return rc;
}

void tn_dedup_result_free(TnDedupResult *r) {
    free(r->first_unit);
    free(r->representative);
    free(r->status);
    memset(r, 0, sizeof *r);
}

long long tn_dedup_document_of(const TnDedupResult *r, uint32_t unit) {
    long long lo = 0, hi = r->n_documents; /* first_unit[lo] <= unit < first_unit[hi] */
    while (hi - lo > 1) {
        long long mid = (lo + hi) / 2;
        if (r->first_unit[mid] <= unit) lo = mid;
        else hi = mid;
    }
    return lo;
}

TnDedupMatch tn_dedup_match(const TnDedupResult *r, TnDedupLevel level, long long d, const char *text, size_t len) {
    if (d < 0 || d >= r->n_documents) return TN_DEDUP_CHANGED;
    uint64_t units = 0;
    size_t pos = 0, start, unit_len;
    while (tn_dedup_next_unit(level, text, len, &pos, &start, &unit_len)) units++;
    return units == r->first_unit[d + 1] - r->first_unit[d] ? TN_DEDUP_SAME : TN_DEDUP_CHANGED;
}
