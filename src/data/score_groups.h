/* score_groups.h: per-document scores grouped by a metadata value (a source,
 * a language), with percentiles per group, for thresholds by percentile
 * (self-cleaning, §4.1). Groups are numbered in order of first appearance,
 * so everything derived from them is deterministic. Memory: 4 bytes per
 * score. */
#ifndef TN_DATA_SCORE_GROUPS_H
#define TN_DATA_SCORE_GROUPS_H

#include <stddef.h>

typedef struct TnScoreGroup {
    char *name;          /* owned */
    float *scores;       /* sorted after tn_score_groups_sort */
    size_t count, cap;
} TnScoreGroup;

typedef struct TnScoreGroups {
    TnScoreGroup *groups;
    int n, cap;
} TnScoreGroups;

/* The id of the group called name, or -1. */
int tn_score_groups_find(const TnScoreGroups *g, const char *name);
/* Adds a score to the group called name (created if new); returns its id. */
int tn_score_groups_add(TnScoreGroups *g, const char *name, float score);
void tn_score_groups_sort(TnScoreGroups *g);
/* The q-th percentile (0..100) of a sorted group, interpolated linearly
 * between order statistics (numpy's default); NaN for an empty group. */
double tn_score_groups_percentile(const TnScoreGroups *g, int group, double q);
void tn_score_groups_free(TnScoreGroups *g);

#endif
