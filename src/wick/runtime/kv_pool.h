// The paged KV cache of a decoder: per layer one pool of blocks holding keys and values
// ([num_blocks, 2, kv_heads, block_size, head_dim], see core/ops/paged_attention.h), and the host-side
// allocator that hands blocks to sequences. Block 0 is reserved: padding rows of a fixed-shape
// (graph-replayed) step point there, so their writes never touch a sequence's data.
#pragma once

#include <cstdint>
#include <vector>

#include "wick/core/tensor.h"

namespace wick::runtime {

class BlockAllocator {
 public:
  BlockAllocator() = default;
  explicit BlockAllocator(int64_t num_blocks);

  int64_t total() const { return total_; }                    // usable blocks (block 0 excluded)
  int64_t free() const { return int64_t(free_.size()); }
  int64_t used() const { return total_ - free(); }
  // Appends `count` blocks to `table`; false (and no change) when too few are free.
  bool allocate(int64_t count, std::vector<int32_t>& table);
  // Returns every block of `table` and clears it.
  void release(std::vector<int32_t>& table);

 private:
  int64_t total_ = 0;
  std::vector<int32_t> free_;
};

struct KVPool {
  std::vector<Tensor> layers;  // one per layer
  int64_t block_size = 0;
  int64_t num_blocks() const { return layers.empty() ? 0 : layers[0].shape(0); }
  // Bytes of device memory the pools hold.
  size_t nbytes() const;
};

// Zero-filled pools for `layers` layers.
KVPool make_kv_pool(int64_t layers, int64_t num_blocks, int64_t kv_heads, int64_t block_size, int64_t head_dim,
                    Dtype dtype, Device device);

// Blocks needed to hold `positions` positions.
inline int64_t blocks_for(int64_t positions, int64_t block_size) { return (positions + block_size - 1) / block_size; }

}  // namespace wick::runtime
