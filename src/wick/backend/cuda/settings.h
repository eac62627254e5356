// Global switches of the CUDA backend (available only in builds with CUDA).
#pragma once

namespace wick::cuda {

// Whether f32 matrix products may use TF32 tensor cores (faster, ~1e-3 relative error).
// Off by default so f32 results match the CPU to f32 precision.
void set_allow_tf32(bool allow);
bool allow_tf32();

// Whether bf16/f16 attention forward may use the tensor-core (WMMA) kernel when the shapes suit it
// (head dims multiples of 16 up to 128, at least 64 queries); on by default. Off: the CUDA-core kernel.
void set_attention_tensor_cores(bool allow);
bool attention_tensor_cores();

// Whether the skinny (decode) products are launched as programmatic dependents on GPUs that support
// it (sm_90 and later): a product's blocks start, and load their first weights, while the kernel
// before it drains, and wait for that kernel before they read activations. On by default;
// WICK_CUDA_OVERLAP=0 in the environment turns it off at start-up (to measure what it brings).
void set_overlapped_products(bool on);
bool overlapped_products();

}  // namespace wick::cuda
