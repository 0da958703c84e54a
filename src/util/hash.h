/* hash.h: FNV-1a 64, the checksum and identity hash of tnllm's files
 * (training states, saved inference states, data streams). Not
 * cryptographic: it detects truncation, corruption and mix-ups. */
#ifndef TN_UTIL_HASH_H
#define TN_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The starting value of a hash. */
#define TN_FNV_OFFSET 0xcbf29ce484222325ULL

/* Folds n bytes into hash and returns the new hash. */
uint64_t tn_fnv1a(uint64_t hash, const void *data, size_t n);

#endif
