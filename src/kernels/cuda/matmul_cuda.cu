#include "kernels/cuda/matmul_cuda.h"

namespace {

/* Row-major X (r, c) is column-major X^T (c, r): each product below is the
 * column-major form of the row-major one in the header. */
int gemm(cublasHandle_t handle, const char *what, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
         int k, const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta, void *c, cudaDataType c_type,
         int ldc, TnError *err) {
    const float one = 1.0f;
    cublasStatus_t status = cublasGemmEx(handle, transa, transb, m, n, k, &one, a, CUDA_R_16BF, lda, b, CUDA_R_16BF,
                                         ldb, &beta, c, c_type, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (status == CUBLAS_STATUS_SUCCESS) return 0;
    return tn_fail(err, "%s: cublasGemmEx (m %d, n %d, k %d): %s", what, m, n, k, cublasGetStatusString(status));
}

} // namespace

extern "C" int matmul_forward_cuda(cublasHandle_t handle, void *out, TnCudaOutType out_type, float beta,
                                   const uint16_t *inp, const uint16_t *weight, int n_rows, int in_dim, int out_dim,
                                   TnError *err) {
    if (n_rows >= 1 && n_rows <= TN_MATVEC_MAX_ROWS && in_dim % 8 == 0 && (uintptr_t)inp % 16 == 0 &&
        (uintptr_t)weight % 16 == 0) {
        cudaStream_t stream;
        cublasStatus_t status = cublasGetStream(handle, &stream);
        if (status != CUBLAS_STATUS_SUCCESS)
            return tn_fail(err, "matmul_forward_cuda: cublasGetStream: %s", cublasGetStatusString(status));
        return matvec_forward_cuda(out, out_type, beta, inp, weight, n_rows, in_dim, out_dim, stream, err);
    }
    cudaDataType type = out_type == TN_CUDA_OUT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    return gemm(handle, "matmul_forward_cuda", CUBLAS_OP_T, CUBLAS_OP_N, out_dim, n_rows, in_dim, weight, in_dim, inp,
                in_dim, beta, out, type, out_dim, err);
}

extern "C" int matmul_backward_cuda(cublasHandle_t handle, float *dinp, float *dweight, const uint16_t *dout,
                                    const uint16_t *inp, const uint16_t *weight, int n_rows, int in_dim, int out_dim,
                                    TnError *err) {
    if (gemm(handle, "matmul_backward_cuda (input)", CUBLAS_OP_N, CUBLAS_OP_N, in_dim, n_rows, out_dim, weight,
             in_dim, dout, out_dim, 0.0f, dinp, CUDA_R_32F, in_dim, err))
        return -1;
    return gemm(handle, "matmul_backward_cuda (weight)", CUBLAS_OP_N, CUBLAS_OP_T, in_dim, out_dim, n_rows, inp,
                in_dim, dout, out_dim, 1.0f, dweight, CUDA_R_32F, in_dim, err);
}
