// CPU storage: blocks above 32 MiB are kept for reuse when freed (core/storage.h): the next
// allocation of a size they hold (and not a much smaller one) gets the same block, 64-byte aligned,
// and release_kept_host_blocks hands them back. Small blocks come from the heap as before.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "wick/core/storage.h"

namespace wick {
namespace {

constexpr size_t kMiB = size_t(1) << 20;

TEST(HostStorage, LargeBlocksAreKeptForTheNextAllocationThatFits) {
  release_kept_host_blocks();
  void* first = nullptr;
  {
    std::shared_ptr<Storage> a = allocate(40 * kMiB, Device::cpu());
    first = a->data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
    std::memset(first, 1, 40 * kMiB);
  }
  {
    std::shared_ptr<Storage> b = allocate(38 * kMiB, Device::cpu());  // fits: the kept block
    EXPECT_EQ(b->data(), first);
    EXPECT_EQ(b->nbytes(), 38 * kMiB);
    std::shared_ptr<Storage> c = allocate(40 * kMiB, Device::cpu());  // the block is in use: another
    EXPECT_NE(c->data(), first);
  }
  {
    // A fifth or more smaller than both kept blocks (40 MiB each): a block of its own.
    std::shared_ptr<Storage> d = allocate(33 * kMiB, Device::cpu());
    EXPECT_NE(d->data(), first);
    std::shared_ptr<Storage> e = allocate(40 * kMiB, Device::cpu());
    std::shared_ptr<Storage> f = allocate(40 * kMiB, Device::cpu());
    EXPECT_TRUE(e->data() == first || f->data() == first);
  }
  release_kept_host_blocks();
  std::shared_ptr<Storage> g = allocate(8 * kMiB, Device::cpu());  // small: the heap's
  EXPECT_EQ(reinterpret_cast<uintptr_t>(g->data()) % 64, 0u);
}

}  // namespace
}  // namespace wick
