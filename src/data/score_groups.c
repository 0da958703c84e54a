#include "data/score_groups.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int tn_score_groups_find(const TnScoreGroups *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->groups[i].name, name) == 0) return i;
    return -1;
}

int tn_score_groups_add(TnScoreGroups *g, const char *name, float score) {
    int id = tn_score_groups_find(g, name);
    if (id < 0) {
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 8;
            g->groups = realloc(g->groups, (size_t)g->cap * sizeof *g->groups);
            if (!g->groups) tn_die("out of memory for %d score groups", g->cap);
        }
        id = g->n++;
        memset(&g->groups[id], 0, sizeof g->groups[id]);
        g->groups[id].name = strdup(name);
        TN_ASSERT(g->groups[id].name);
    }
    TnScoreGroup *s = &g->groups[id];
    if (s->count == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->scores = realloc(s->scores, s->cap * sizeof *s->scores);
        if (!s->scores) tn_die("out of memory for %zu scores", s->cap);
    }
    s->scores[s->count++] = score;
    return id;
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void tn_score_groups_sort(TnScoreGroups *g) {
    for (int i = 0; i < g->n; i++) qsort(g->groups[i].scores, g->groups[i].count, sizeof(float), compare_floats);
}

double tn_score_groups_percentile(const TnScoreGroups *g, int group, double q) {
    const TnScoreGroup *s = &g->groups[group];
    if (s->count == 0) return NAN;
    double position = q / 100.0 * (double)(s->count - 1);
    size_t below = (size_t)floor(position);
    if (below + 1 >= s->count) return s->scores[s->count - 1];
    double frac = position - (double)below;
    return s->scores[below] + frac * (s->scores[below + 1] - s->scores[below]);
}

void tn_score_groups_free(TnScoreGroups *g) {
    for (int i = 0; i < g->n; i++) {
        free(g->groups[i].name);
        free(g->groups[i].scores);
    }
    free(g->groups);
    memset(g, 0, sizeof *g);
}
