/* dedup.h: exact and near-duplicate detection over a corpus (§4.1).
 *
 * Units are whole documents (TN_DEDUP_DOCUMENT) or their non-blank lines
 * (TN_DEDUP_LINE, split by tn_dedup_next_unit). One streaming pass over the
 * corpus, on all cores:
 *   1. exact duplicates first: a unit whose 64-bit hash was seen before is a
 *      duplicate of the first unit with that hash (in-memory table of 16
 *      bytes per distinct unit; a false match needs a 64-bit collision,
 *      probability about n^2 / 2^65);
 *   2. every other unit gets a MinHash signature (minhash.h) whose b bands of
 *      r rows (lsh.h) are appended as (band key, unit) records to one file
 *      per band in work_dir: the signatures live on disk, not in memory.
 * Then each band file is sorted and units with equal keys (the candidate
 * pairs of LSH) are merged by union-find (unionfind.h), one band in memory
 * at a time. Each cluster keeps its first unit in input order; the result
 * is deterministic and independent of the thread count. Memory: about 9
 * bytes per unit plus 8 per document plus the exact-hash table plus one
 * band file (12 bytes per unit) while it is sorted.
 */
#ifndef TN_DATA_DEDUP_H
#define TN_DATA_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef enum TnDedupLevel { TN_DEDUP_DOCUMENT, TN_DEDUP_LINE } TnDedupLevel;
typedef enum TnUnitStatus { TN_UNIT_KEPT, TN_UNIT_EXACT, TN_UNIT_NEAR } TnUnitStatus;

typedef struct TnDedupOptions {
    TnDedupLevel level;
    int num_perm, ngram;     /* signature length and shingle size */
    int bands, rows;         /* bands * rows <= num_perm */
    uint64_t seed;
    const char *work_dir;    /* band files (created if missing; files removed after) */
    int threads;             /* 0: all cores */
    int progress;            /* draw a progress line on stderr */
} TnDedupOptions;

typedef struct TnDedupResult {
    long long n_documents;
    uint32_t n_units;
    uint64_t *first_unit;    /* (n_documents + 1): document d holds units first_unit[d] .. first_unit[d+1]-1 */
    uint32_t *representative;/* (n_units) the kept unit of the unit's cluster (itself when kept) */
    uint8_t *status;         /* (n_units) TnUnitStatus */
    long long exact, near;   /* units dropped as exact and as near duplicates */
    long long clusters;      /* clusters of two or more units */
    long long candidates;    /* band collisions merged (candidate pairs in union order) */
    double bytes, seconds_scan, seconds_cluster;
} TnDedupResult;

/* Finds the unit after *pos in text: returns 1 and sets [*start, *start + *len)
 * and advances *pos, or returns 0 when no unit is left. Line level: each
 * line ('\n'-separated) with a non-space character; document level: the
 * whole text, once (even when empty). */
int tn_dedup_next_unit(TnDedupLevel level, const char *text, size_t len, size_t *pos, size_t *start,
                       size_t *unit_len);

int tn_dedup_scan(const TnDedupOptions *o, const char *const *inputs, int n_inputs, TnDedupResult *r, TnError *err);
void tn_dedup_result_free(TnDedupResult *r);
/* The document that holds unit u. */
long long tn_dedup_document_of(const TnDedupResult *r, uint32_t unit);

/* A result applies to the inputs as scanned; a later pass over them (the
 * output pass of tnllm data dedup, which reads the files again) asks of
 * each document whether it is still the one the scan saw. */
typedef enum TnDedupMatch {
    TN_DEDUP_SAME,    /* as far as can be told: the text's units are first_unit[d] .. first_unit[d+1]-1 */
    TN_DEDUP_CHANGED, /* the input changed since the scan: d is past the scan's documents, or the text holds
                         another number of units (units where the scan found no text included) */
} TnDedupMatch;

/* Whether text[0..len), read as document d (input order, from 0) at level
 * (the scan's), is the document the scan saw as d. The scan keeps no text,
 * so an edit that keeps the number of units is not noticed; nor is a pass
 * that ends early (TnPipeline.documents_expected catches that). */
TnDedupMatch tn_dedup_match(const TnDedupResult *r, TnDedupLevel level, long long d, const char *text, size_t len);

#endif
