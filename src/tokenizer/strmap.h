/* strmap.h: a growing hash map from byte strings to 64-bit counts.
 *
 * Training counts words with it (one map per thread, then merged) and
 * looks up the pieces it creates. Keys are copied into an arena the map
 * owns; entries are numbered 0..size-1 in insertion order and never move,
 * so an entry index is a stable handle. Memory is proportional to the
 * distinct keys, never to how often they were added.
 */
#ifndef TN_TOKENIZER_STRMAP_H
#define TN_TOKENIZER_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct TnStrMap {
    uint32_t *slots;      /* [capacity] entry index + 1, 0 empty */
    size_t capacity;      /* a power of two */
    uint64_t *hashes;     /* [size] */
    size_t *key_offset;   /* [size + 1] into keys */
    int64_t *values;      /* [size] */
    size_t size, entry_capacity;
    char *keys;
    size_t keys_size, keys_capacity;
} TnStrMap;

void tn_strmap_init(TnStrMap *m);
void tn_strmap_free(TnStrMap *m);
/* The entry index of key, inserting it with value 0 when absent. */
size_t tn_strmap_insert(TnStrMap *m, const char *key, size_t len);
/* The entry index of key, or -1. */
long long tn_strmap_find(const TnStrMap *m, const char *key, size_t len);
static inline const char *tn_strmap_key(const TnStrMap *m, size_t i, size_t *len) {
    *len = m->key_offset[i + 1] - m->key_offset[i];
    return m->keys + m->key_offset[i];
}

#endif
