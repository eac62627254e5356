// The CUDA entry points of a build without CUDA: each reports that CUDA is absent.
#include "wick/core/backend_hooks.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  fail(what, ": this build of wick has no CUDA backend (configure with -DWICK_CUDA=ON on a machine with nvcc)");
}
}  // namespace

namespace cuda {
bool available() { return false; }
int device_count() { return 0; }
void* allocate(size_t, int) { no_cuda("cuda allocation"); }
void release(void*, int) {}
void copy(void*, Device, const void*, Device, size_t) { no_cuda("cuda copy"); }
void synchronize(int) { no_cuda("cuda synchronize"); }
MemoryStats memory_stats(int) { no_cuda("cuda memory stats"); }
void reset_peak_memory(int) { no_cuda("cuda memory stats"); }
void empty_cache(int) {}
size_t free_memory(int) { no_cuda("cuda memory info"); }
bool profiling() { return false; }
void profile_begin(int, void**) {}
void profile_end(int, void*, const char*, const std::string&) {}
void profile_reset() {}
void profile_report() {}
struct Graph {};
void capture_begin(int) { no_cuda("cuda graph capture"); }
std::shared_ptr<Graph> capture_end(int) { no_cuda("cuda graph capture"); }
void capture_abort(int) {}
void graph_launch(const Graph&, int) { no_cuda("cuda graph launch"); }
}  // namespace cuda

#define WICK_NO_CUDA(P) \
  void P::eval_cuda(const std::vector<Tensor>&, const Tensor&) { no_cuda(#P); }
WICK_PRIMITIVES(WICK_NO_CUDA)
#undef WICK_NO_CUDA
#define WICK_NO_CUDA(P) \
  void P::eval_outputs_cuda(const std::vector<Tensor>&, const std::vector<Tensor>&) { no_cuda(#P); }
WICK_PRIMITIVES_OF_SEVERAL_OUTPUTS(WICK_NO_CUDA)
#undef WICK_NO_CUDA

template <class Fn>
void Unary<Fn>::eval_cuda(const std::vector<Tensor>&, const Tensor&) { no_cuda(Fn::name); }
template <class Fn>
void Binary<Fn>::eval_cuda(const std::vector<Tensor>&, const Tensor&) { no_cuda(Fn::name); }
#define WICK_INSTANTIATE(F) template void Unary<fn::F>::eval_cuda(const std::vector<Tensor>&, const Tensor&);
WICK_UNARY_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE
#define WICK_INSTANTIATE(F) template void Binary<fn::F>::eval_cuda(const std::vector<Tensor>&, const Tensor&);
WICK_ARITH_FNS(WICK_INSTANTIATE)
WICK_COMPARE_FNS(WICK_INSTANTIATE)
#undef WICK_INSTANTIATE

}  // namespace wick
