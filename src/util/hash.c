#include "util/hash.h"

#define FNV_PRIME 0x100000001b3ULL

uint64_t tn_fnv1a(uint64_t hash, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) hash = (hash ^ p[i]) * FNV_PRIME;
    return hash;
}
