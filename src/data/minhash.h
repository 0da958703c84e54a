/* minhash.h: MinHash signatures of documents (§4.1 deduplication).
 *
 * A document is read as a sequence of tokens: each run of letters, digits
 * and marks (lower-cased) is one token, and each wide (East Asian) letter is
 * a token of its own, so Chinese and Japanese text gives character n-grams
 * and other scripts word n-grams, mixed text both, without a word splitter.
 * Everything else (spaces, punctuation, symbols, bytes that are not UTF-8)
 * separates tokens. The
 * shingles are the n-grams of consecutive tokens (a document with fewer
 * than n tokens has one shingle: all of them; one without tokens has none).
 *
 * The signature is num_perm minima of hash functions h_k over the shingle
 * set, h_k(x) = (a_k x + b_k mod 2^64) >> 32 with a_k odd and b_k random
 * from the seed (multiply-add-shift, a 2-universal family), applied to a
 * 64-bit hash x of the shingle. P(sig_A[k] == sig_B[k]) is the Jaccard
 * similarity of the two shingle sets (up to 2^-32 hash collisions).
 */
#ifndef TN_DATA_MINHASH_H
#define TN_DATA_MINHASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct TnMinHash {
    int num_perm, ngram;
    uint64_t *a, *b; /* (num_perm) */
} TnMinHash;

/* Per-thread scratch (token hashes), grown as needed; zero-initialise. */
typedef struct TnMinHashScratch {
    uint64_t *tokens;
    size_t cap;
} TnMinHashScratch;

void tn_minhash_init(TnMinHash *m, int num_perm, int ngram, uint64_t seed);
void tn_minhash_free(TnMinHash *m);
void tn_minhash_scratch_free(TnMinHashScratch *s);

/* Fills scratch with the token hashes of text; returns their count. */
size_t tn_minhash_tokens(const char *text, size_t len, TnMinHashScratch *s);
/* Writes the signature (num_perm values) of text; returns the number of
 * shingles (0: no tokens, the signature is all UINT32_MAX). */
size_t tn_minhash_signature(const TnMinHash *m, const char *text, size_t len, uint32_t *signature,
                            TnMinHashScratch *s);

/* A 64-bit hash of len bytes (the exact-duplicate key; also used for bands). */
uint64_t tn_hash64(const void *data, size_t len, uint64_t seed);

#endif
