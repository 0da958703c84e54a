#include "tokenizer/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static uint64_t hash_key(const char *key, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    return h * 0xff51afd7ed558ccdull;
}

void tn_strmap_init(TnStrMap *m) {
    memset(m, 0, sizeof *m);
    m->capacity = 1024;
    m->slots = tn_calloc(m->capacity, sizeof *m->slots);
    m->key_offset = tn_calloc(1, sizeof *m->key_offset);
}

void tn_strmap_free(TnStrMap *m) {
    free(m->slots);
    free(m->hashes);
    free(m->key_offset);
    free(m->values);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

static size_t probe(const TnStrMap *m, uint64_t hash, const char *key, size_t len, int *found) {
    size_t mask = m->capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        uint32_t e = m->slots[i];
        *found = 0;
        if (e == 0) return i;
        size_t klen;
        const char *k = tn_strmap_key(m, e - 1, &klen);
        if (m->hashes[e - 1] == hash && klen == len && memcmp(k, key, len) == 0) {
            *found = 1;
            return i;
        }
    }
}

long long tn_strmap_find(const TnStrMap *m, const char *key, size_t len) {
    int found;
    size_t slot = probe(m, hash_key(key, len), key, len, &found);
    return found ? (long long)m->slots[slot] - 1 : -1;
}

static void grow(TnStrMap *m) {
    free(m->slots);
    m->capacity *= 2;
    m->slots = tn_calloc(m->capacity, sizeof *m->slots);
    size_t mask = m->capacity - 1;
    for (size_t e = 0; e < m->size; e++) {
        size_t i = m->hashes[e] & mask;
        while (m->slots[i]) i = (i + 1) & mask;
        m->slots[i] = (uint32_t)e + 1;
    }
}

size_t tn_strmap_insert(TnStrMap *m, const char *key, size_t len) {
    uint64_t hash = hash_key(key, len);
    int found;
    size_t slot = probe(m, hash, key, len, &found);
    if (found) return m->slots[slot] - 1;
    if (m->size == m->entry_capacity) {
        m->entry_capacity = m->entry_capacity ? 2 * m->entry_capacity : 1024;
        m->hashes = realloc(m->hashes, m->entry_capacity * sizeof *m->hashes);
        m->values = realloc(m->values, m->entry_capacity * sizeof *m->values);
        m->key_offset = realloc(m->key_offset, (m->entry_capacity + 1) * sizeof *m->key_offset);
        if (!m->hashes || !m->values || !m->key_offset) tn_die("out of memory growing a map to %zu keys", m->size);
    }
    if (m->keys_size + len > m->keys_capacity) {
        m->keys_capacity = 2 * (m->keys_size + len) + 4096;
        m->keys = realloc(m->keys, m->keys_capacity);
        if (!m->keys) tn_die("out of memory growing a map's keys to %zu bytes", m->keys_capacity);
    }
    size_t e = m->size++;
    memcpy(m->keys + m->keys_size, key, len);
    m->keys_size += len;
    m->key_offset[e + 1] = m->keys_size;
    m->hashes[e] = hash;
    m->values[e] = 0;
    m->slots[slot] = (uint32_t)e + 1;
    if (2 * m->size > m->capacity) grow(m);
    return e;
}
