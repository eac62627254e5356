// Block allocation for the paged KV cache.
#include "wick/runtime/kv_pool.h"

#include <algorithm>

#include "wick/core/ops.h"

namespace wick::runtime {

BlockAllocator::BlockAllocator(int64_t num_blocks) {
  WICK_CHECK(num_blocks >= 2, "kv cache: need at least 2 blocks (block 0 is reserved), got ", num_blocks);
  total_ = num_blocks - 1;
  // Handed out lowest first (pop from the back).
  for (int64_t b = num_blocks - 1; b >= 1; --b) free_.push_back(int32_t(b));
}

bool BlockAllocator::allocate(int64_t count, std::vector<int32_t>& table) {
  if (count <= 0) return true;
  if (count > free()) return false;
  for (int64_t i = 0; i < count; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void BlockAllocator::release(std::vector<int32_t>& table) {
  for (int32_t b : table) free_.push_back(b);
  table.clear();
}

size_t KVPool::nbytes() const {
  size_t total = 0;
  for (const Tensor& t : layers) total += size_t(t.numel()) * t.itemsize();
  return total;
}

KVPool make_kv_pool(int64_t layers, int64_t num_blocks, int64_t kv_heads, int64_t block_size, int64_t head_dim,
                    Dtype dtype, Device device) {
  KVPool pool;
  pool.block_size = block_size;
  for (int64_t i = 0; i < layers; ++i)
    pool.layers.push_back(zeros({num_blocks, 2, kv_heads, block_size, head_dim}, dtype, device).eval());
  return pool;
}

}  // namespace wick::runtime
