/* quantize.h: int8 weights for decoding (per-row absmax scales).
 *
 * Decoding is memory-bound: every matrix is streamed once per token. A
 * TnQuantModel holds int8 copies of the matrices read whole per token,
 * W_qkvu, W_out, W1, W2, W3 of every layer and the output projection (the
 * tied embedding with it), each row r as round(W[r] / s_r) with
 * s_r = max|W[r]| / 127, so a decode step reads about a quarter of the fp32
 * bytes. LRPE theta and, for untied models, the input embedding (one row
 * per token) stay fp32.
 *
 * Memory: one allocation for all int8 values and one for all scales, owned
 * by the TnQuantModel; the fp32 model it came from is only read and must
 * outlive nothing (the quantized copy is self-contained).
 */
#ifndef TN_INFER_QUANTIZE_H
#define TN_INFER_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "model/transnormer.h"

typedef struct TnQuantMatrix {
    int8_t *values;  /* (rows, cols) */
    float *scales;   /* (rows) */
    int rows, cols;
} TnQuantMatrix;

typedef struct TnQuantLayer {
    TnQuantMatrix qkvu, out, l1, l2, l3;
} TnQuantLayer;

typedef struct TnQuantModel {
    int n_layers;
    int tied;                 /* 1: output is the embedding, so input rows come from it too */
    TnQuantLayer layers[TN_MAX_LAYERS];
    TnQuantMatrix output;     /* (V, D) lm_head, or the embedding when tied */
    int8_t *value_memory;
    float *scale_memory;
    size_t bytes;             /* int8 values + fp32 scales */
} TnQuantModel;

/* Quantizes m's matrices. Free with tn_quant_free. */
void tn_quantize_model(TnQuantModel *q, const TnModel *m);
void tn_quant_free(TnQuantModel *q);

/* Overwrites m's quantized matrices with their int8 values times their
 * scales (the embedding too when tied), so the fp32 forward pass computes
 * what the int8 path computes: the way to measure the perplexity cost of
 * quantization with the ordinary evaluation. */
void tn_dequantize_into(TnModel *m, const TnQuantModel *q);

/* out (n_rows, w->rows) = inp (n_rows, w->cols) . dequantized(w)^T */
void tn_quant_linear(float *out, const float *inp, const TnQuantMatrix *w, int n_rows);

#endif
