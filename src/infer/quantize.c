#include "infer/quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul_int8.h"

/* Visits the quantized matrices of a model with their fp32 sources. */
typedef void (*MatrixVisit)(TnQuantMatrix *q, float *source, void *user);

static void for_each_matrix(TnQuantModel *q, const TnModel *m, MatrixVisit visit, void *user) {
    const TnConfig *cfg = &m->config;
    int D = cfg->dim, G = cfg->glu_dim;
    for (int l = 0; l < cfg->n_layers; l++) {
        const TnLayerWeights *w = &m->w.layers[l];
        TnQuantLayer *ql = &q->layers[l];
        ql->qkvu.rows = tn_qkvu_rows(cfg), ql->qkvu.cols = D;
        ql->out.rows = D, ql->out.cols = D;
        ql->l1.rows = G, ql->l1.cols = D;
        ql->l2.rows = G, ql->l2.cols = D;
        ql->l3.rows = D, ql->l3.cols = G;
        visit(&ql->qkvu, w->qkvu, user);
        visit(&ql->out, w->out, user);
        visit(&ql->l1, w->l1, user);
        visit(&ql->l2, w->l2, user);
        visit(&ql->l3, w->l3, user);
    }
    q->output.rows = cfg->vocab_size, q->output.cols = D;
    visit(&q->output, m->w.lm_head, user);
}

typedef struct Sizes {
    size_t values, scales;
} Sizes;

static void count(TnQuantMatrix *q, float *source, void *user) {
    (void)source;
    Sizes *s = user;
    s->values += (size_t)q->rows * q->cols;
    s->scales += (size_t)q->rows;
}

typedef struct Cursor {
    int8_t *values;
    float *scales;
} Cursor;

/* Per-row absmax: s = max|w| / 127, q = round(w / s), so |w - s q| <= s / 2. */
static void quantize(TnQuantMatrix *q, float *source, void *user) {
    Cursor *c = user;
    q->values = c->values;
    q->scales = c->scales;
    c->values += (size_t)q->rows * q->cols;
    c->scales += q->rows;
    #pragma omp parallel for
    for (int r = 0; r < q->rows; r++) {
        const float *w = source + (size_t)r * q->cols;
        float max = 0;
        for (int i = 0; i < q->cols; i++) max = fabsf(w[i]) > max ? fabsf(w[i]) : max;
        float s = max > 0 ? max / 127.0f : 1.0f;
        q->scales[r] = s;
        for (int i = 0; i < q->cols; i++) q->values[(size_t)r * q->cols + i] = (int8_t)lrintf(w[i] / s);
    }
}

void tn_quantize_model(TnQuantModel *q, const TnModel *m) {
    memset(q, 0, sizeof *q);
    q->n_layers = m->config.n_layers;
    q->tied = m->w.lm_head == m->w.embed;
    Sizes sizes = {0, 0};
    for_each_matrix(q, m, count, &sizes);
    q->value_memory = tn_malloc(sizes.values);
    q->scale_memory = tn_malloc(sizes.scales * sizeof(float));
    q->bytes = sizes.values + sizes.scales * sizeof(float);
    Cursor cursor = {q->value_memory, q->scale_memory};
    for_each_matrix(q, m, quantize, &cursor);
}

void tn_quant_free(TnQuantModel *q) {
    free(q->value_memory);
    free(q->scale_memory);
    memset(q, 0, sizeof *q);
}

static void dequantize(TnQuantMatrix *q, float *target, void *user) {
    (void)user;
    #pragma omp parallel for
    for (int r = 0; r < q->rows; r++)
        for (int i = 0; i < q->cols; i++)
            target[(size_t)r * q->cols + i] = q->scales[r] * (float)q->values[(size_t)r * q->cols + i];
}

void tn_dequantize_into(TnModel *m, const TnQuantModel *q) {
    /* for_each_matrix only re-sets the shapes, which are the same. */
    TnQuantModel view = *q;
    for_each_matrix(&view, m, dequantize, NULL);
}

void tn_quant_linear(float *out, const float *inp, const TnQuantMatrix *w, int n_rows) {
    matmul_int8_forward_cpu(out, inp, w->values, w->scales, n_rows, w->cols, w->rows);
}
