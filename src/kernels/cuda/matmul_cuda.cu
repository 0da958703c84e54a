#include "kernels/cuda/matmul_cuda.h"

#include <cublasLt.h>
#include <stdlib.h>
#include <string.h>

namespace {

/* What makes two products the same problem for cuBLASLt (column-major
 * terms, as cublasLtMatmul sees them). */
struct GemmKey {
    cublasOperation_t transa, transb;
    int m, n, k, lda, ldb, ldc;
    cudaDataType c_type;
    int align_a, align_b, align_c; /* bytes, powers of two up to 256: the algorithms must allow them */
};

struct Plan {
    int used;
    unsigned long long last_use; /* which plan a new shape replaces */
    GemmKey key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo; /* the heuristic's first */
};

} // namespace

struct TnMatmulCuda {
    cublasLtHandle_t handle;
    cudaStream_t stream;
    void *workspace;
    size_t workspace_bytes;
    unsigned long long calls;
    Plan plans[TN_MATMUL_PLANS];
};

namespace {

int lt_fail(TnError *err, const char *what, const char *call, cublasStatus_t status) {
    return tn_fail(err, "%s: %s: %s", what, call, cublasGetStatusString(status));
}

#define LT_TRY(what, call)                                                                                             \
    do {                                                                                                               \
        cublasStatus_t lt_status_ = (call);                                                                            \
        if (lt_status_ != CUBLAS_STATUS_SUCCESS) return lt_fail(err, what, #call, lt_status_);                         \
    } while (0)

int alignment_of(const void *p) {
    int bytes = 256;
    while (bytes > 1 && (uintptr_t)p % bytes) bytes /= 2;
    return bytes;
}

void release(Plan *plan) {
    if (plan->op) cublasLtMatmulDescDestroy(plan->op);
    if (plan->a) cublasLtMatrixLayoutDestroy(plan->a);
    if (plan->b) cublasLtMatrixLayoutDestroy(plan->b);
    if (plan->c) cublasLtMatrixLayoutDestroy(plan->c);
    memset(plan, 0, sizeof *plan);
}

/* Descriptors and the heuristic's first algorithm. */
int make_plan(TnMatmulCuda *mm, Plan *plan, const GemmKey &key, const char *what, TnError *err) {
    release(plan);
    plan->key = key; /* marked used once complete: a failure leaves its descriptors to release() */
    LT_TRY(what, cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_TRY(what, cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &key.transa, sizeof key.transa));
    LT_TRY(what, cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &key.transb, sizeof key.transb));
    int a_rows = key.transa == CUBLAS_OP_N ? key.m : key.k, b_rows = key.transb == CUBLAS_OP_N ? key.k : key.n;
    LT_TRY(what, cublasLtMatrixLayoutCreate(&plan->a, CUDA_R_16BF, a_rows, key.transa == CUBLAS_OP_N ? key.k : key.m,
                                            key.lda));
    LT_TRY(what, cublasLtMatrixLayoutCreate(&plan->b, CUDA_R_16BF, b_rows, key.transb == CUBLAS_OP_N ? key.n : key.k,
                                            key.ldb));
    LT_TRY(what, cublasLtMatrixLayoutCreate(&plan->c, key.c_type, key.m, key.n, key.ldc));
    cublasLtMatmulPreference_t preference;
    LT_TRY(what, cublasLtMatmulPreferenceCreate(&preference));
    uint32_t alignments[4] = {(uint32_t)key.align_a, (uint32_t)key.align_b, (uint32_t)key.align_c,
                              (uint32_t)key.align_c};
    cublasLtMatmulPreferenceAttributes_t names[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                 &mm->workspace_bytes, sizeof mm->workspace_bytes);
    for (int i = 0; i < 4 && status == CUBLAS_STATUS_SUCCESS; i++)
        status = cublasLtMatmulPreferenceSetAttribute(preference, names[i], &alignments[i], sizeof alignments[i]);
    cublasLtMatmulHeuristicResult_t first;
    int found = 0;
    if (status == CUBLAS_STATUS_SUCCESS)
        status = cublasLtMatmulAlgoGetHeuristic(mm->handle, plan->op, plan->a, plan->b, plan->c, plan->c, preference, 1,
                                                &first, &found);
    cublasLtMatmulPreferenceDestroy(preference);
    if (status != CUBLAS_STATUS_SUCCESS) return lt_fail(err, what, "cuBLASLt preference and heuristic", status);
    if (found < 1) return tn_fail(err, "%s: cuBLASLt has no algorithm for m %d, n %d, k %d", what, key.m, key.n, key.k);
    plan->algo = first.algo;
    plan->used = 1;
    return 0;
}

Plan *find_plan(TnMatmulCuda *mm, const GemmKey &key) {
    for (Plan &plan : mm->plans)
        if (plan.used && memcmp(&plan.key, &key, sizeof key) == 0) return &plan;
    return NULL;
}

Plan *oldest_plan(TnMatmulCuda *mm) {
    Plan *oldest = &mm->plans[0];
    for (Plan &plan : mm->plans) {
        if (!plan.used) return &plan;
        if (plan.last_use < oldest->last_use) oldest = &plan;
    }
    return oldest;
}

cudaDataType data_type(TnCudaFloat type) { return type == TN_CUDA_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

/* Row-major X (r, c) is column-major X^T (c, r): each product below is the
 * column-major form of the row-major one in the header. c = a . b + beta c. */
int gemm(TnMatmulCuda *mm, const char *what, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
         const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta, void *c, cudaDataType c_type, int ldc,
         TnError *err) {
    GemmKey key;
    memset(&key, 0, sizeof key); /* compared with memcmp: no stray padding bytes */
    key.transa = transa, key.transb = transb, key.m = m, key.n = n, key.k = k;
    key.lda = lda, key.ldb = ldb, key.ldc = ldc, key.c_type = c_type;
    key.align_a = alignment_of(a), key.align_b = alignment_of(b), key.align_c = alignment_of(c);
    Plan *plan = find_plan(mm, key);
    if (!plan) {
        plan = oldest_plan(mm);
        if (make_plan(mm, plan, key, what, err)) return -1;
    }
    plan->last_use = ++mm->calls;
    const float one = 1.0f;
    cublasStatus_t status = cublasLtMatmul(mm->handle, plan->op, &one, a, plan->a, b, plan->b, &beta, c, plan->c, c,
                                           plan->c, &plan->algo, mm->workspace, mm->workspace_bytes, mm->stream);
    if (status != CUBLAS_STATUS_SUCCESS)
        return tn_fail(err, "%s: cublasLtMatmul (m %d, n %d, k %d): %s", what, m, n, k, cublasGetStatusString(status));
    return 0;
}

} // namespace

extern "C" int tn_matmul_cuda_create(TnMatmulCuda **mm, cudaStream_t stream, size_t workspace_bytes, TnError *err) {
    *mm = (TnMatmulCuda *)calloc(1, sizeof **mm);
    if (!*mm) return tn_fail(err, "tn_matmul_cuda_create: out of host memory");
    (*mm)->stream = stream;
    if (workspace_bytes) {
        cudaError_t status = cudaMalloc(&(*mm)->workspace, workspace_bytes);
        if (status != cudaSuccess)
            return tn_fail(err, "tn_matmul_cuda_create: cannot allocate %zu bytes of workspace: %s", workspace_bytes,
                           cudaGetErrorString(status));
        (*mm)->workspace_bytes = workspace_bytes;
    }
    LT_TRY("tn_matmul_cuda_create", cublasLtCreate(&(*mm)->handle));
    return 0;
}

extern "C" void tn_matmul_cuda_destroy(TnMatmulCuda *mm) {
    if (!mm) return;
    for (Plan &plan : mm->plans) release(&plan);
    if (mm->handle) cublasLtDestroy(mm->handle);
    cudaFree(mm->workspace);
    free(mm);
}

extern "C" int matmul_forward_cuda(TnMatmulCuda *mm, void *out, TnCudaFloat out_type, float beta, const uint16_t *inp,
                                   const uint16_t *weight, int n_rows, int in_dim, int out_dim, TnError *err) {
    if (n_rows >= 1 && n_rows <= TN_MATVEC_MAX_ROWS && in_dim % 8 == 0 && (uintptr_t)inp % 16 == 0 &&
        (uintptr_t)weight % 16 == 0)
        return matvec_forward_cuda(out, out_type, beta, inp, weight, n_rows, in_dim, out_dim, mm->stream, err);
    return gemm(mm, "matmul_forward_cuda", CUBLAS_OP_T, CUBLAS_OP_N, out_dim, n_rows, in_dim, weight, in_dim, inp,
                in_dim, beta, out, data_type(out_type), out_dim, err);
}

extern "C" int matmul_backward_cuda(TnMatmulCuda *mm, void *dinp, TnCudaFloat dinp_type, float *dweight,
                                    float weight_beta, const uint16_t *dout, const uint16_t *inp,
                                    const uint16_t *weight, int n_rows, int in_dim, int out_dim, TnError *err) {
    if (gemm(mm, "matmul_backward_cuda (input)", CUBLAS_OP_N, CUBLAS_OP_N, in_dim, n_rows, out_dim, weight, in_dim,
             dout, out_dim, 0.0f, dinp, data_type(dinp_type), in_dim, err))
        return -1;
    return gemm(mm, "matmul_backward_cuda (weight)", CUBLAS_OP_N, CUBLAS_OP_T, in_dim, out_dim, n_rows, inp, in_dim,
                dout, out_dim, weight_beta, dweight, CUDA_R_32F, in_dim, err);
}
