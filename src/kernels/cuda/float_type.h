/* float_type.h: the element type of a GPU buffer that the kernels take in
 * either precision: fp32 (the residual stream and what is summed over
 * ranks), or bf16 (the products' operands, and the activations' gradients
 * that feed only elementwise kernels, as mixed precision keeps them). */
#ifndef TN_KERNELS_CUDA_FLOAT_TYPE_H
#define TN_KERNELS_CUDA_FLOAT_TYPE_H

typedef enum TnCudaFloat { TN_CUDA_F32, TN_CUDA_BF16 } TnCudaFloat;

#endif
