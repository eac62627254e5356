// Internals of the CUDA backend shared by its kernels: error checks, the per-device stream, the
// device error flag that kernels raise (reported at the next synchronisation) and dtype mapping.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "wick/core/tensor.h"

namespace wick::cuda {

[[noreturn]] void fail_cuda(const char* call, const char* what, const char* file, int line);
inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) fail_cuda(call, cudaGetErrorString(e), file, line);
}
void check_cublas(cublasStatus_t s, const char* call, const char* file, int line);

// The stream every kernel and copy of `device` is queued on; also makes `device` current.
cudaStream_t stream(int device);
inline cudaStream_t stream_of(const Tensor& t) { return stream(t.device().index); }
// The device whose wick stream is `s` (the current device for any other stream). Unlike
// cudaStreamGetDevice, allowed while `s` is being captured into a CUDA graph.
int device_of_stream(cudaStream_t s);
int sm_count(int device);
// Whether skinny products on `device` are launched as programmatic dependents (overlapped_products()
// and a GPU of compute capability 9.0 or later).
bool programmatic_launch(int device);

// Raised by kernels for bad data (an index out of range); the host reads it at the next
// synchronisation and throws a wick::Error naming the op, the value and the limit.
struct DeviceError {
  int code;  // 0: none; see error_name() in device.cpp
  long long value, limit;
};
enum DeviceErrorCode : int {
  kErrNone = 0,
  kErrGatherIndex = 1,
  kErrScatterIndex = 2,
  kErrCrossEntropyTarget = 3,
  kErrPagedIndex = 4,  // a paged-cache row, position or block out of range
  kErrLoraSlot = 5,    // an adapter slot past the stacked adapters
  kErrSampleTokens = 6,  // value: row * 16 + what; see backend/cuda/sampling.cu
};
DeviceError* device_error(int device);  // device pointer of mapped pinned memory
// Throws if a kernel raised an error since the last check (call after a stream synchronisation).
void check_device_error(int device);
// The message of a kErrSampleTokens error (defined with its kernel).
std::string sample_tokens_error(long long value, long long limit);

cublasLtHandle_t cublaslt_handle(int device);
cublasHandle_t cublas_handle(int device);
// A workspace for cuBLASLt, allocated once per device.
void* cublaslt_workspace(int device, size_t* nbytes);

// Graph capture support of the caching allocator (allocator.cpp): between begin and end, the
// device's allocations come from a private pool that the graph keeps; closing it (when the graph
// is destroyed, after its last replay finished) returns its blocks to the shared free list.
struct PrivatePool;
void allocator_capture_begin(int device);
std::shared_ptr<PrivatePool> allocator_capture_end(int device);
void allocator_close_pool(int device, PrivatePool& pool);

// A contiguous copy of x on its device (x itself when already contiguous).
Tensor contiguous_on_device(const Tensor& x);

// out[M, N] = alpha * a[M, K] @ b[N, K]^T + beta * out through cuBLASLt (f32, bf16, f16 with f32
// accumulation; f64 through cuBLAS), all three contiguous row-major on `device`.
void gemm_nt(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a, const void* b, void* out, float alpha,
             float beta, int device);
// out[M, N] = alpha * a[M, K] @ b[K, N] + beta * out, likewise.
void gemm_nn(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a, const void* b, void* out, float alpha,
             float beta, int device);

}  // namespace wick::cuda

#define WICK_CUDA_CHECK(call) ::wick::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define WICK_CUBLAS_CHECK(call) ::wick::cuda::check_cublas((call), #call, __FILE__, __LINE__)
// After every kernel launch: a bad configuration is reported naming the kernel.
#define WICK_CUDA_LAUNCH_CHECK(kernel) ::wick::cuda::check_cuda(cudaGetLastError(), "launch of " kernel, __FILE__, __LINE__)
