#include "data/unionfind.h"

#include <stdlib.h>

#include "util/error.h"

void tn_union_find_init(TnUnionFind *u, uint32_t n) {
    u->n = n;
    u->parent = tn_malloc((size_t)(n ? n : 1) * sizeof *u->parent);
    for (uint32_t i = 0; i < n; i++) u->parent[i] = i;
}

void tn_union_find_free(TnUnionFind *u) {
    free(u->parent);
    u->parent = NULL;
    u->n = 0;
}

uint32_t tn_union_find_root(TnUnionFind *u, uint32_t x) {
    while (u->parent[x] != x) {
        u->parent[x] = u->parent[u->parent[x]];
        x = u->parent[x];
    }
    return x;
}

int tn_union_find_merge(TnUnionFind *u, uint32_t a, uint32_t b) {
    a = tn_union_find_root(u, a);
    b = tn_union_find_root(u, b);
    if (a == b) return 0;
    /* The smaller index becomes the root: a parent is never larger than its
     * child, which keeps roots minimal without ranks (path halving keeps the
     * trees shallow in practice). */
    if (a < b) u->parent[b] = a;
    else u->parent[a] = b;
    return 1;
}
