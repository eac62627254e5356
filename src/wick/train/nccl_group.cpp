#include "wick/train/nccl_group.h"

#include "wick/base/error.h"

#if WICK_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <map>
#include <thread>

#include "wick/backend/cuda/runtime.h"
#include "wick/core/ops.h"
#endif

namespace wick::train {

#if WICK_HAVE_NCCL

namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32: return ncclFloat32;
    case Dtype::F64: return ncclFloat64;
    case Dtype::BF16: return ncclBfloat16;
    case Dtype::F16: return ncclFloat16;
    default: fail("data-parallel training: NCCL cannot sum ", dtype_name(dtype), " tensors");
  }
}

class NcclMember : public Collective {
 public:
  NcclMember(const std::string& id, int rank, int size, int device, std::chrono::milliseconds timeout)
      : rank_(rank), size_(size), device_(device), timeout_(timeout) {
    WICK_CHECK(id.size() == sizeof(ncclUniqueId), "data-parallel training: a NCCL group id has ", sizeof(ncclUniqueId),
               " bytes, got ", id.size());
    WICK_CHECK(size >= 1 && rank >= 0 && rank < size, "data-parallel training: rank ", rank, " of ", size);
    ncclUniqueId uid;
    std::memcpy(&uid, id.data(), sizeof(uid));
    WICK_CUDA_CHECK(cudaSetDevice(device));
    stream_ = cuda::stream(device);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // calls return at once; wait() polls them against the timeout
    check(ncclCommInitRankConfig(&comm_, size, uid, rank, &config), "joining the group");
    wait("joining the group");
  }

  ~NcclMember() override {
    if (comm_ == nullptr) return;
    if (!aborted_ && ncclCommFinalize(comm_) == ncclSuccess) {
      try {
        wait("leaving the group");
      } catch (const Error&) {
        return;  // aborted by wait()
      }
    }
    if (!aborted_) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(std::vector<Tensor>& tensors) override {
    WICK_CUDA_CHECK(cudaSetDevice(device_));
    // One flat buffer per dtype, in the order the tensors come, summed in one NCCL group call.
    std::map<Dtype, std::vector<size_t>> by_dtype;
    for (size_t i = 0; i < tensors.size(); ++i) {
      WICK_CHECK(tensors[i].device() == Device::cuda(device_), "data-parallel training: rank ", rank_, " sums on cuda:",
                 device_, " but a tensor is on ", tensors[i].device().str());
      by_dtype[tensors[i].dtype()].push_back(i);
    }
    std::vector<std::pair<Dtype, Tensor>> flats;
    for (auto& [dtype, idx] : by_dtype) {
      std::vector<Tensor> parts;
      for (size_t i : idx) parts.push_back(reshape(tensors[i], {tensors[i].numel()}));
      flats.emplace_back(dtype, concat(parts, 0).eval());
    }
    check(ncclGroupStart(), "a sum");
    for (auto& [dtype, flat] : flats)
      check(ncclAllReduce(flat.data_ptr(), flat.data_ptr(), size_t(flat.numel()), nccl_type(dtype), ncclSum, comm_, stream_),
            "a sum");
    check(ncclGroupEnd(), "a sum");
    wait("a sum");
    size_t k = 0;
    for (auto& [dtype, idx] : by_dtype) {
      const Tensor& flat = flats[k++].second;
      int64_t at = 0;
      for (size_t i : idx) {
        const int64_t n = tensors[i].numel();
        tensors[i] = reshape(narrow(flat, 0, at, n), tensors[i].shape());
        at += n;
      }
    }
  }

  void all_reduce_sum(std::vector<double>& values) override {
    if (values.empty()) return;
    std::vector<Tensor> t{to_device(Tensor::from_vector(values, {int64_t(values.size())}, Device::cpu()), Device::cuda(device_))};
    all_reduce_sum(t);
    values = to_device(t[0], Device::cpu()).to_vector<double>();
  }

  void abandon(const std::string& why) override {
    if (comm_ != nullptr && !aborted_) {
      ncclCommAbort(comm_);
      aborted_ = true;
    }
  }

 private:
  void check(ncclResult_t r, const char* what) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    std::string detail = ncclGetErrorString(r);
    abandon(detail);
    fail("data-parallel training: NCCL failed at ", what, " on rank ", rank_, ": ", detail);
  }

  // Until the communicator has no call in progress and the stream has run the sums; a rank that
  // does not answer within the timeout aborts the group.
  void wait(const char* what) {
    WICK_CHECK(!aborted_, "data-parallel training: the group was stopped before ", what);
    const Clock::time_point deadline = Clock::now() + timeout_;
    cudaEvent_t done = nullptr;
    WICK_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    WICK_CUDA_CHECK(cudaEventRecord(done, stream_));
    for (;;) {
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      if (state != ncclSuccess && state != ncclInProgress) {
        cudaEventDestroy(done);
        check(state, what);
      }
      cudaError_t q = cudaEventQuery(done);
      if (state == ncclSuccess && q == cudaSuccess) break;
      if (q != cudaSuccess && q != cudaErrorNotReady) {
        cudaEventDestroy(done);
        abandon(cudaGetErrorString(q));
        fail("data-parallel training: CUDA failed during ", what, " on rank ", rank_, ": ", cudaGetErrorString(q));
      }
      if (Clock::now() > deadline) {
        cudaEventDestroy(done);
        abandon("timeout");
        fail("data-parallel training: rank ", rank_, " waited ", timeout_.count() / 1000.0, " s for the other ranks at ",
             what, " and stopped the group (did a rank die?)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    cudaEventDestroy(done);
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int rank_, size_, device_;
  std::chrono::milliseconds timeout_;
  bool aborted_ = false;
};

}  // namespace

bool nccl_available() { return true; }

std::string nccl_unique_id() {
  ncclUniqueId uid;
  ncclResult_t r = ncclGetUniqueId(&uid);
  WICK_CHECK(r == ncclSuccess, "data-parallel training: NCCL could not make a group id: ", ncclGetErrorString(r));
  return std::string(reinterpret_cast<const char*>(&uid), sizeof(uid));
}

std::unique_ptr<Collective> nccl_join(const std::string& id, int rank, int size, int device,
                                      std::chrono::milliseconds timeout) {
  return std::make_unique<NcclMember>(id, rank, size, device, timeout);
}

#else

bool nccl_available() { return false; }

std::string nccl_unique_id() { fail("data-parallel training on GPUs needs a build with CUDA and NCCL; this one has none"); }

std::unique_ptr<Collective> nccl_join(const std::string&, int, int, int, std::chrono::milliseconds) {
  fail("data-parallel training on GPUs needs a build with CUDA and NCCL; this one has none");
}

#endif

}  // namespace wick::train
