#include "golden.h"

#include <stdlib.h>

#include "test.h"

int golden_open(GoldenCase *c) {
    TnError err;
    int rc = tn_model_load(&c->model, golden_dir(), &err);
    CHECK(rc == 0, "load golden model: %s", err.msg);
    if (rc) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/golden.safetensors", golden_dir());
    rc = tn_st_open(&c->tensors, path, &err);
    CHECK(rc == 0, "open golden tensors: %s", err.msg);
    if (rc) { tn_model_free(&c->model); return -1; }
    const TnStTensor *ids_t = tn_st_find(&c->tensors, "input_ids");
    int64_t *ids = ids_t ? malloc(ids_t->numel * sizeof *ids) : NULL;
    rc = ids_t && ids_t->ndim == 2 ? tn_st_read_i64(&c->tensors, ids_t, ids, &err) : -1;
    CHECK(rc == 0, "golden file has input_ids [B, T]");
    if (rc) { free(ids); golden_close(c); return -1; }
    c->batch = (int)ids_t->shape[0];
    c->seq_len = (int)ids_t->shape[1];
    int n = c->batch * c->seq_len;
    c->tokens = malloc((size_t)n * sizeof *c->tokens);
    c->targets = malloc((size_t)n * sizeof *c->targets);
    c->scored = 0;
    for (int i = 0; i < n; i++) {
        c->tokens[i] = (int32_t)ids[i];
        c->targets[i] = (i % c->seq_len == c->seq_len - 1) ? -100 : (int32_t)ids[i + 1];
        c->scored += c->targets[i] != -100;
    }
    free(ids);
    return 0;
}

void golden_close(GoldenCase *c) {
    tn_st_close(&c->tensors);
    tn_model_free(&c->model);
    free(c->tokens);
    free(c->targets);
    c->tokens = c->targets = NULL;
}
