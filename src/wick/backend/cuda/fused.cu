// CUDA evaluation of fused elementwise chains (fusion.cpp): one thread per output element runs
// the chain's instructions in registers, so a chain of n ops costs one launch and one pass.
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/core/primitives.h"

namespace wick {

namespace {

using cuda::dcompute_t;
using cuda::dev_t;

struct FusedParams {
  FusedInstr program[Fused::kMaxInstructions];
  int n_instr;
  int n_inputs;
  int ndim;
  int64_t sizes[Fused::kMaxDims];
  int64_t strides[Fused::kMaxInputs][Fused::kMaxDims];
  bool dense[Fused::kMaxInputs];
  const void* inputs[Fused::kMaxInputs];
};

template <typename D>
__global__ void fused_kernel(const __grid_constant__ FusedParams p, D* out, int64_t n) {
  cuda::launch_dependents();  // a skinny product after this kernel may start loading its weights
  using C = dcompute_t<D>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    C regs[Fused::kMaxInstructions];
    for (int r = 0; r < p.n_instr; ++r) {
      const FusedInstr ins = p.program[r];
      C v;
      switch (ins.kind) {
        case FusedInstr::Load: {
          int64_t off = i;
          if (!p.dense[ins.id]) {
            off = 0;
            int64_t rest = i;
            for (int d = p.ndim - 1; d >= 0; --d) {
              off += (rest % p.sizes[d]) * p.strides[ins.id][d];
              rest /= p.sizes[d];
            }
          }
          v = cuda::to_c(static_cast<const D*>(p.inputs[ins.id])[off]);
          break;
        }
        case FusedInstr::Unary: v = fn::apply_unary(fn::UnaryId(ins.id), regs[ins.a]); break;
        case FusedInstr::Arith: v = fn::apply_arith(fn::ArithId(ins.id), regs[ins.a], regs[ins.b]); break;
        default: v = fn::Silu{}(regs[ins.a]) * regs[ins.b]; break;
      }
      regs[r] = v;
    }
    out[i] = cuda::from_c<D>(regs[p.n_instr - 1]);
  }
}

}  // namespace

void Fused::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  out.allocate();
  FusedParams p{};
  p.n_instr = int(program_.size());
  for (int r = 0; r < p.n_instr; ++r) p.program[r] = program_[r];
  p.n_inputs = int(in.size());
  p.ndim = out.ndim();
  for (int d = 0; d < p.ndim; ++d) p.sizes[d] = out.shape()[d];
  for (size_t k = 0; k < in.size(); ++k) {
    p.inputs[k] = in[k].data_ptr();
    p.dense[k] = in[k].is_contiguous();
    for (int d = 0; d < p.ndim; ++d) p.strides[k][d] = in[k].strides()[d];
  }
  int64_t n = out.numel();
  if (n == 0) return;
  int device = out.device().index;
  int threads = 256;
  int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, int64_t(cuda::sm_count(device)) * 32);
  dispatch_float(out.dtype(), name(), [&]<typename T>() {
    using D = dev_t<T>;
    fused_kernel<D><<<int(blocks), threads, 0, cuda::stream(device)>>>(p, static_cast<D*>(out.data_ptr()), n);
    WICK_CUDA_LAUNCH_CHECK("fused_kernel");
  });
}

}  // namespace wick
