/* models.h: the models the inference tests run on: the golden tiny model
 * and small random ones of a given shape. */
#ifndef TN_TESTS_MODELS_H
#define TN_TESTS_MODELS_H

#include "model/transnormer.h"

typedef struct SmallShape {
    int V, D, L, H, G, no_scale, tied;
    const char *lrpe; /* one '0' or '1' per layer */
} SmallShape;

/* A configuration of that shape with init_std 0.2, larger than the 0.02
 * of training so that attention, decay and LRPE visibly matter. */
TnConfig small_config(const SmallShape *shape);
/* small_config(shape), then a model initialised from seed. */
void small_model(TnModel *m, const SmallShape *shape, uint64_t seed);

/* Loads the golden tiny model (golden_dir()); a failure counts as a failed
 * CHECK and returns -1. */
int golden_model(TnModel *m);

#endif
