#include "model/recompute.h"

#include <string.h>

static const char *const names[] = {"none", "norms", "layers"};

int tn_recompute_parse(const char *name, TnRecompute *recompute) {
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (strcmp(name, names[i]) == 0) {
            *recompute = (TnRecompute)i;
            return 0;
        }
    return -1;
}

const char *tn_recompute_name(TnRecompute recompute) { return names[recompute]; }
