#include "models.h"

#include <string.h>

#include "test.h"

TnConfig small_config(const SmallShape *shape) {
    TnConfig cfg;
    tn_config_defaults(&cfg);
    cfg.vocab_size = shape->V;
    cfg.dim = shape->D;
    cfg.n_layers = shape->L;
    cfg.n_heads = shape->H;
    cfg.glu_dim = shape->G;
    cfg.no_scale_embedding = shape->no_scale;
    cfg.tie_word_embeddings = shape->tied;
    for (int l = 0; l < shape->L; l++) cfg.use_lrpe[l] = (unsigned char)(shape->lrpe[l] == '1');
    cfg.init_std = 0.2f;
    return cfg;
}

void small_model(TnModel *m, const SmallShape *shape, uint64_t seed) {
    TnConfig cfg = small_config(shape);
    tn_model_init(m, &cfg, seed);
}

int golden_model(TnModel *m) {
    TnError err;
    int rc = tn_model_load(m, golden_dir(), &err);
    CHECK(rc == 0, "load golden model: %s", err.msg);
    return rc;
}
