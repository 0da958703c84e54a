/* unionfind.h: disjoint sets over 0..n-1 whose root is always the smallest
 * member, so that "keep the root" keeps the first occurrence of every cluster
 * in input order, whatever order the unions came in (deterministic output).
 * Memory: 4 bytes per element (at most 2^32 - 1 elements). */
#ifndef TN_DATA_UNIONFIND_H
#define TN_DATA_UNIONFIND_H

#include <stdint.h>

typedef struct TnUnionFind {
    uint32_t *parent;
    uint32_t n;
} TnUnionFind;

void tn_union_find_init(TnUnionFind *u, uint32_t n);
void tn_union_find_free(TnUnionFind *u);
/* The smallest member of x's set (halves the path on the way). */
uint32_t tn_union_find_root(TnUnionFind *u, uint32_t x);
/* Merges the sets of a and b; returns 1 if they were different sets. */
int tn_union_find_merge(TnUnionFind *u, uint32_t a, uint32_t b);

#endif
