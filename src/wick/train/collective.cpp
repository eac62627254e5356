#include "wick/train/collective.h"

#include <condition_variable>
#include <mutex>

#include "wick/base/error.h"
#include "wick/core/ops.h"

namespace wick::train {

namespace {

// What the members of one ThreadGroup share: the values each rank brought to the sum in progress,
// the last sum, and why the group stopped (empty while it runs).
struct Shared {
  std::mutex mutex;
  std::condition_variable changed;
  int size = 0;
  std::chrono::milliseconds timeout{0};
  int64_t generation = 0;  // sums completed
  int arrived = 0;
  std::vector<std::vector<double>> inputs;
  std::vector<double> result;
  std::string broken;
};

class ThreadMember : public Collective {
 public:
  ThreadMember(std::shared_ptr<Shared> shared, int rank) : shared_(std::move(shared)), rank_(rank) {}
  ~ThreadMember() override { abandon("it left the group"); }

  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }

  void all_reduce_sum(std::vector<double>& values) override {
    Shared& s = *shared_;
    std::unique_lock<std::mutex> lock(s.mutex);
    WICK_CHECK(s.broken.empty(), "data-parallel training: ", s.broken);
    s.inputs[size_t(rank_)] = values;
    const int64_t generation = s.generation;
    if (++s.arrived == s.size) {
      const size_t n = values.size();
      for (int r = 0; r < s.size; ++r)
        if (s.inputs[size_t(r)].size() != n) {
          s.broken = str_cat("rank ", r, " brought ", s.inputs[size_t(r)].size(), " values to a sum, rank ", rank_, " ", n);
          s.changed.notify_all();
          fail("data-parallel training: ", s.broken);
        }
      s.result.assign(n, 0.0);
      for (int r = 0; r < s.size; ++r)  // in rank order: the same bits on every run
        for (size_t i = 0; i < n; ++i) s.result[i] += s.inputs[size_t(r)][i];
      s.arrived = 0;
      ++s.generation;
      s.changed.notify_all();
    } else {
      bool done = s.changed.wait_for(lock, s.timeout, [&] { return s.generation != generation || !s.broken.empty(); });
      if (!done && s.broken.empty()) {
        s.broken = str_cat("rank ", rank_, " waited ", s.timeout.count() / 1000.0,
                           " s for the other ranks at a sum and gave up");
        s.changed.notify_all();
      }
      WICK_CHECK(s.generation != generation, "data-parallel training: ", s.broken);
    }
    values = s.result;
  }

  void all_reduce_sum(std::vector<Tensor>& tensors) override {
    std::vector<double> flat;
    for (const Tensor& t : tensors) {
      std::vector<double> v = to_device(astype(t, Dtype::F64), Device::cpu()).to_vector<double>();
      flat.insert(flat.end(), v.begin(), v.end());
    }
    all_reduce_sum(flat);
    size_t at = 0;
    for (Tensor& t : tensors) {
      std::vector<double> v(flat.begin() + int64_t(at), flat.begin() + int64_t(at) + t.numel());
      at += size_t(t.numel());
      t = to_device(astype(Tensor::from_vector(v, t.shape(), Device::cpu()), t.dtype()), t.device());
    }
  }

  void abandon(const std::string& why) override {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (shared_->broken.empty()) shared_->broken = str_cat("rank ", rank_, " stopped: ", why);
    shared_->changed.notify_all();
  }

 private:
  std::shared_ptr<Shared> shared_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Collective>> ThreadGroup::make(int size, std::chrono::milliseconds timeout) {
  WICK_CHECK(size >= 1, "data-parallel training: a group needs at least one rank, got ", size);
  WICK_CHECK(timeout.count() > 0, "data-parallel training: the timeout must be positive");
  auto shared = std::make_shared<Shared>();
  shared->size = size;
  shared->timeout = timeout;
  shared->inputs.resize(size_t(size));
  std::vector<std::unique_ptr<Collective>> members;
  for (int r = 0; r < size; ++r) members.push_back(std::make_unique<ThreadMember>(shared, r));
  return members;
}

Shard shard_of(int64_t global_rows, int rank, int size) {
  WICK_CHECK(size >= 1 && rank >= 0 && rank < size, "data-parallel training: rank ", rank, " of ", size);
  WICK_CHECK(global_rows % size == 0, "data-parallel training: ", global_rows, " rows do not split over ", size, " ranks");
  const int64_t per = global_rows / size;
  return Shard{rank * per, (rank + 1) * per};
}

}  // namespace wick::train
