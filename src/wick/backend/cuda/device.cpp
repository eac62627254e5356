// The CUDA runtime of wick: device discovery, one non-default stream per device, copies,
// synchronisation (which reports errors raised by kernels), library handles and settings.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <mutex>
#include <vector>

#include "wick/backend/cuda/runtime.h"
#include "wick/backend/cuda/settings.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/primitives.h"

namespace wick::cuda {

namespace {

struct DeviceState {
  cudaStream_t stream = nullptr;
  int sm_count = 0;
  int major = 0;  // compute capability
  DeviceError* error_host = nullptr;
  DeviceError* error_device = nullptr;
  cublasLtHandle_t lt = nullptr;
  cublasHandle_t blas = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  // Pinned staging buffers for small host-to-device copies, used in turn; each one's event marks
  // when the copy reading it has finished.
  static constexpr int kStages = 4;
  void* stage[kStages] = {};
  cudaEvent_t stage_done[kStages] = {};
  int next_stage = 0;
  std::mutex stage_mutex;
};

constexpr size_t kStageBytes = size_t(1) << 20;

constexpr int kMaxDevices = 64;
std::mutex g_mutex;
DeviceState g_devices[kMaxDevices];
std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_attention_tensor_cores{true};
std::atomic<bool> g_overlapped_products{[] {
  const char* env = std::getenv("WICK_CUDA_OVERLAP");
  return env == nullptr || std::string(env) != "0";
}()};

void set_device(int device) {
  int current = -1;
  WICK_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) WICK_CUDA_CHECK(cudaSetDevice(device));
}

DeviceState& state(int device) {
  WICK_CHECK(device >= 0 && device < device_count(), "cuda: device ", device, " does not exist (", device_count(),
             " CUDA devices)");
  set_device(device);
  DeviceState& st = g_devices[device];
  if (st.stream) return st;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!st.stream) {
    WICK_CUDA_CHECK(cudaDeviceGetAttribute(&st.sm_count, cudaDevAttrMultiProcessorCount, device));
    WICK_CUDA_CHECK(cudaDeviceGetAttribute(&st.major, cudaDevAttrComputeCapabilityMajor, device));
    void* flag = nullptr;
    WICK_CUDA_CHECK(cudaHostAlloc(&flag, sizeof(DeviceError), cudaHostAllocMapped));
    st.error_host = static_cast<DeviceError*>(flag);
    *st.error_host = DeviceError{kErrNone, 0, 0};
    void* dflag = nullptr;
    WICK_CUDA_CHECK(cudaHostGetDevicePointer(&dflag, flag, 0));
    st.error_device = static_cast<DeviceError*>(dflag);
    cudaStream_t s = nullptr;
    WICK_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    st.stream = s;  // published last: other threads test it without the lock
  }
  return st;
}

const char* error_op(int code) {
  switch (code) {
    case kErrGatherIndex: return "gather";
    case kErrScatterIndex: return "scatter_add";
    case kErrCrossEntropyTarget: return "cross_entropy";
    case kErrPagedIndex: return "paged attention (row, position or block)";
    case kErrLoraSlot: return "lora_gather_add (adapter slot)";
    default: return "a kernel";
  }
}

}  // namespace

[[noreturn]] void fail_cuda(const char* call, const char* what, const char* file, int line) {
  fail("CUDA error in ", call, ": ", what, " (", file, ":", line, ")");
}

void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS error in ", call, ": ", cublasGetStatusString(s), " (", file, ":", line, ")");
}

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }
void set_attention_tensor_cores(bool allow) { g_attention_tensor_cores = allow; }
bool attention_tensor_cores() { return g_attention_tensor_cores; }
void set_overlapped_products(bool on) { g_overlapped_products = on; }
bool overlapped_products() { return g_overlapped_products; }

cudaStream_t stream(int device) { return state(device).stream; }
int device_of_stream(cudaStream_t s) {
  for (int d = 0; d < kMaxDevices; ++d)
    if (g_devices[d].stream != nullptr && g_devices[d].stream == s) return d;
  int current = 0;
  WICK_CUDA_CHECK(cudaGetDevice(&current));
  return current;
}
int sm_count(int device) { return state(device).sm_count; }
bool programmatic_launch(int device) { return g_overlapped_products && state(device).major >= 9; }
DeviceError* device_error(int device) { return state(device).error_device; }

void check_device_error(int device) {
  DeviceState& st = state(device);
  volatile DeviceError* e = st.error_host;
  if (e->code == kErrNone) return;
  int code = e->code;
  long long value = e->value, limit = e->limit;
  e->code = kErrNone;
  if (code == kErrSampleTokens) fail(sample_tokens_error(value, limit), " (found on cuda:", device, ")");
  if (code == kErrCrossEntropyTarget)
    fail("cross_entropy: target ", value, " is out of range for ", limit, " classes (found on cuda:", device, ")");
  fail(error_op(code), ": index ", value, " is out of range for a dim of size ", limit, " (found on cuda:", device, ")");
}

cublasLtHandle_t cublaslt_handle(int device) {
  DeviceState& st = state(device);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!st.lt) WICK_CUBLAS_CHECK(cublasLtCreate(&st.lt));
  return st.lt;
}

cublasHandle_t cublas_handle(int device) {
  DeviceState& st = state(device);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!st.blas) {
    WICK_CUBLAS_CHECK(cublasCreate(&st.blas));
    WICK_CUBLAS_CHECK(cublasSetStream(st.blas, st.stream));
  }
  return st.blas;
}

void* cublaslt_workspace(int device, size_t* nbytes) {
  DeviceState& st = state(device);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!st.workspace) {
    st.workspace_bytes = size_t(32) << 20;
    WICK_CUDA_CHECK(cudaMalloc(&st.workspace, st.workspace_bytes));
  }
  *nbytes = st.workspace_bytes;
  return st.workspace;
}

Tensor contiguous_on_device(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  AsType().eval_cuda({x}, out);
  return out;
}

namespace {

// Small copies go through pinned staging memory, so the host does not wait for the stream; large
// ones are copied from the pageable source (the call returns once the data is staged by the
// driver, so the caller may free the source either way).
void copy_to_device(void* dst, const void* src, size_t nbytes, int device) {
  DeviceState& st = state(device);
  if (nbytes > kStageBytes) {
    WICK_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, st.stream));
    return;
  }
  std::lock_guard<std::mutex> lock(st.stage_mutex);
  int i = st.next_stage;
  st.next_stage = (i + 1) % DeviceState::kStages;
  if (!st.stage[i]) {
    WICK_CUDA_CHECK(cudaHostAlloc(&st.stage[i], kStageBytes, cudaHostAllocDefault));
    WICK_CUDA_CHECK(cudaEventCreateWithFlags(&st.stage_done[i], cudaEventDisableTiming));
  } else {
    WICK_CUDA_CHECK(cudaEventSynchronize(st.stage_done[i]));  // the previous copy from this buffer is done
  }
  std::memcpy(st.stage[i], src, nbytes);
  WICK_CUDA_CHECK(cudaMemcpyAsync(dst, st.stage[i], nbytes, cudaMemcpyHostToDevice, st.stream));
  WICK_CUDA_CHECK(cudaEventRecord(st.stage_done[i], st.stream));
}

}  // namespace

// ---------------------------------------------------------------- hooks of backend_hooks.h
int device_count() {
  static int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // no driver or no GPU: not an error, just no CUDA devices
      n = 0;
    }
    return n;
  }();
  return count;
}

bool available() { return device_count() > 0; }

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cuda() && src_device.is_cpu()) {
    copy_to_device(dst, src, nbytes, dst_device.index);
  } else if (dst_device.is_cpu() && src_device.is_cuda()) {
    cudaStream_t s = stream(src_device.index);
    WICK_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s));
    WICK_CUDA_CHECK(cudaStreamSynchronize(s));
    check_device_error(src_device.index);
  } else if (dst_device == src_device) {
    WICK_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream(dst_device.index)));
  } else {
    // Between two GPUs: order after the source's queued work, then let the destination wait.
    WICK_CUDA_CHECK(cudaStreamSynchronize(stream(src_device.index)));
    cudaStream_t s = stream(dst_device.index);
    WICK_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, s));
  }
}

void synchronize(int device) {
  WICK_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
  check_device_error(device);
}

}  // namespace wick::cuda
