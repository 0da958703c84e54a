#include "data/minhash.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "util/error.h"
#include "util/rng.h"

void tn_minhash_init(TnMinHash *m, int num_perm, int ngram, uint64_t seed) {
    m->num_perm = num_perm;
    m->ngram = ngram;
    m->a = tn_malloc((size_t)num_perm * sizeof *m->a);
    m->b = tn_malloc((size_t)num_perm * sizeof *m->b);
    TnRng rng;
    tn_rng_seed(&rng, seed, 0x6d696e68617368ull); /* stream "minhash" */
    for (int k = 0; k < num_perm; k++) {
        m->a[k] = tn_rng_next(&rng) | 1u;
        m->b[k] = tn_rng_next(&rng);
    }
}

void tn_minhash_free(TnMinHash *m) {
    free(m->a);
    free(m->b);
    m->a = m->b = NULL;
}

void tn_minhash_scratch_free(TnMinHashScratch *s) {
    free(s->tokens);
    s->tokens = NULL;
    s->cap = 0;
}

/* MurmurHash3's 64-bit finalizer: every input bit affects every output bit. */
static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint64_t tn_hash64(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = mix64(seed ^ (len * 0x9e3779b97f4a7c15ull));
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = mix64(h ^ w) * 0x9e3779b97f4a7c15ull;
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, len - i);
    return mix64(h ^ tail ^ 0x7f4a7c15u);
}

static void push_token(TnMinHashScratch *s, size_t *n, uint64_t h) {
    if (*n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->tokens = realloc(s->tokens, s->cap * sizeof *s->tokens);
        if (!s->tokens) tn_die("out of memory for %zu token hashes", s->cap);
    }
    s->tokens[(*n)++] = mix64(h);
}

size_t tn_minhash_tokens(const char *text, size_t len, TnMinHashScratch *s) {
    const uint64_t prime = 0x100000001b3ull;
    size_t n = 0, i = 0;
    uint64_t h = 0;
    int in_word = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)text[i];
        int32_t cp;
        if (ch < 0x80) {
            cp = ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
            i++;
            int word = (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9');
            if (word) {
                h = in_word ? (h ^ (uint64_t)cp) * prime : 0xcbf29ce484222325ull ^ (uint64_t)cp;
                in_word = 1;
            } else if (in_word) {
                push_token(s, &n, h);
                in_word = 0;
            }
            continue;
        }
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) { /* invalid byte: a separator */
            i++;
            if (in_word) push_token(s, &n, h);
            in_word = 0;
            continue;
        }
        i += (size_t)k;
        utf8proc_category_t cat = utf8proc_category(cp);
        int letter = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        int word = letter || (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_NO);
        if (letter && utf8proc_charwidth(cp) == 2) {
            if (in_word) push_token(s, &n, h);
            in_word = 0;
            push_token(s, &n, 0x5bd1e995ull * (uint64_t)cp + 0x2545f491ull); /* a character n-gram unit */
        } else if (word) {
            cp = utf8proc_tolower(cp);
            h = in_word ? (h ^ (uint64_t)cp) * prime : 0xcbf29ce484222325ull ^ (uint64_t)cp;
            in_word = 1;
        } else if (in_word) {
            push_token(s, &n, h);
            in_word = 0;
        }
    }
    if (in_word) push_token(s, &n, h);
    return n;
}

/* Folds shingle x into the running minima (vectorised over k). */
static inline void update_minima(const TnMinHash *m, uint64_t x, uint32_t *restrict signature) {
    const uint64_t *restrict a = m->a, *restrict b = m->b;
#pragma omp simd
    for (int k = 0; k < m->num_perm; k++) {
        uint32_t h = (uint32_t)((a[k] * x + b[k]) >> 32);
        signature[k] = h < signature[k] ? h : signature[k];
    }
}

size_t tn_minhash_signature(const TnMinHash *m, const char *text, size_t len, uint32_t *signature,
                            TnMinHashScratch *s) {
    for (int k = 0; k < m->num_perm; k++) signature[k] = UINT32_MAX;
    size_t n = tn_minhash_tokens(text, len, s);
    if (n == 0) return 0;
    size_t g = (size_t)m->ngram < n ? (size_t)m->ngram : n, shingles = n - g + 1;
    for (size_t i = 0; i < shingles; i++) {
        uint64_t x = 0;
        for (size_t j = 0; j < g; j++) x = (x ^ s->tokens[i + j]) * 0x9e3779b97f4a7c15ull + j;
        update_minima(m, mix64(x), signature);
    }
    return shingles;
}
