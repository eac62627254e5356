// CUDA matrix products through cuBLASLt (f32, bf16 and f16 with f32 accumulation; TF32 only when
// allowed) and cuBLAS for f64. Transposed views are passed with trans flags instead of copies;
// batches with one stride per operand run as one strided-batched call. A few rows against the
// transpose of a weight (a linear layer in a decode step) go to the skinny kernel (gemv.h).
#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "wick/backend/cuda/gemv.h"
#include "wick/backend/cuda/kernel_utils.cuh"
#include "wick/backend/cuda/settings.h"
#include "wick/backend/blas_layout.h"
#include "wick/core/primitives.h"

namespace wick {

namespace {


// The single stride of a batch index space for an operand, if its offsets are linear in the
// flat batch index.
std::optional<int64_t> uniform_stride(const Shape& batch, const Strides& strides) {
  std::optional<int64_t> stride;
  int64_t inner = 1;  // number of batch elements below this dim
  for (int d = int(batch.size()) - 1; d >= 0; --d) {
    if (batch[d] == 1) continue;
    if (!stride) {
      stride = strides[d];
    } else if (strides[d] != *stride * inner) {
      return std::nullopt;
    }
    inner *= batch[d];
  }
  return stride ? stride : std::optional<int64_t>(0);
}

struct LtDesc {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDesc() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

uint32_t alignment_of(const void* p, int64_t batch_stride_bytes) {
  uint64_t v = uint64_t(reinterpret_cast<uintptr_t>(p)) | uint64_t(batch_stride_bytes) | 256u;
  return uint32_t(v & (~v + 1));  // lowest set bit, at most 256
}

void set_layout(cublasLtMatrixLayout_t& layout, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                int batch, int64_t batch_stride) {
  WICK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, type, uint64_t(rows), uint64_t(cols), ld));
  if (batch > 1) {
    WICK_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
    WICK_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                       &batch_stride, sizeof(batch_stride)));
  }
}

// Row-major out[M, N] = a[M, K] @ b[K, N] is column-major out^T[N, M] = b^T[N, K] @ a^T[K, M]:
// cuBLAS's first operand is b, its second a.
struct Gemm {
  int64_t m, n, k;
  BlasView va, vb;
  int batch;
  int64_t sa, sb, so;  // batch strides in elements
};

// What decides a cuBLASLt plan: the descriptors and the heuristic's choice depend only on these.
struct PlanKey {
  int device, type, compute, ta, tb, batch;
  int64_t m, n, k, lda, ldb, sa, sb, so;
  uint32_t align_a, align_b, align_c;
  bool operator==(const PlanKey&) const = default;
};
struct PlanKeyHash {
  size_t operator()(const PlanKey& p) const {
    size_t h = 1469598103934665603ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    for (int64_t v : {int64_t(p.device), int64_t(p.type), int64_t(p.compute), int64_t(p.ta), int64_t(p.tb),
                      int64_t(p.batch), p.m, p.n, p.k, p.lda, p.ldb, p.sa, p.sb, p.so, int64_t(p.align_a),
                      int64_t(p.align_b), int64_t(p.align_c)})
      mix(uint64_t(v));
    return h;
  }
};
struct Plan {
  LtDesc d;
  cublasLtMatmulAlgo_t algo;
};

// Plans are made once per shape and kept: building the descriptors and asking the heuristic costs
// more host time than a small product takes on the GPU.
// (Never destroyed: cuBLASLt may be gone at static destruction.)
std::mutex g_plans_mutex;
auto& g_plans = *new std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash>();

const Plan& plan_for(const PlanKey& key, const Gemm& g, cudaDataType_t type, cublasComputeType_t compute,
                     size_t ws_bytes, int device) {
  std::lock_guard<std::mutex> lock(g_plans_mutex);
  auto it = g_plans.find(key);
  if (it != g_plans.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  LtDesc& d = plan->d;
  WICK_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F));
  cublasOperation_t ta = cublasOperation_t(key.ta), tb = cublasOperation_t(key.tb);
  WICK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  WICK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  // Stored (column-major) shapes: b is [N, K] (or [K, N] when transposed), a is [K, M] (or [M, K]).
  if (g.vb.transposed) set_layout(d.a, type, g.k, g.n, g.vb.ld, g.batch, g.sb);
  else set_layout(d.a, type, g.n, g.k, g.vb.ld, g.batch, g.sb);
  if (g.va.transposed) set_layout(d.b, type, g.m, g.k, g.va.ld, g.batch, g.sa);
  else set_layout(d.b, type, g.k, g.m, g.va.ld, g.batch, g.sa);
  set_layout(d.c, type, g.n, g.m, g.n, g.batch, g.so);
  WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
  WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                         sizeof(ws_bytes)));
  WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                         &key.align_a, sizeof(key.align_a)));
  WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                         &key.align_b, sizeof(key.align_b)));
  WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                         &key.align_c, sizeof(key.align_c)));
  WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                         &key.align_c, sizeof(key.align_c)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  WICK_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(cuda::cublaslt_handle(device), d.op, d.a, d.b, d.c, d.c, d.pref, 1,
                                                   &result, &found));
  WICK_CHECK(found > 0, "matmul: cuBLASLt has no algorithm for [", g.m, ", ", g.k, "] @ [", g.k, ", ", g.n, "] x ",
             g.batch);
  plan->algo = result.algo;
  return *g_plans.emplace(key, std::move(plan)).first->second;
}

void lt_matmul(const Gemm& g, cudaDataType_t type, size_t item, const void* pa, const void* pb, void* po, int device,
               float alpha = 1.0f, float beta = 0.0f) {
  bool f32 = type == CUDA_R_32F;
  cublasComputeType_t compute = f32 && cuda::allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasOperation_t ta = g.vb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's A is our b
  cublasOperation_t tb = g.va.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  size_t ws_bytes = 0;
  void* ws = cuda::cublaslt_workspace(device, &ws_bytes);
  PlanKey key{device, int(type), int(compute), int(ta), int(tb), g.batch, g.m, g.n, g.k, g.va.ld, g.vb.ld,
              g.batch > 1 ? g.sa : 0, g.batch > 1 ? g.sb : 0, g.batch > 1 ? g.so : 0,
              alignment_of(pb, g.batch > 1 ? g.sb * int64_t(item) : 0),
              alignment_of(pa, g.batch > 1 ? g.sa * int64_t(item) : 0),
              alignment_of(po, g.batch > 1 ? g.so * int64_t(item) : 0)};
  const Plan& plan = plan_for(key, g, type, compute, ws_bytes, device);
  WICK_CUBLAS_CHECK(cublasLtMatmul(cuda::cublaslt_handle(device), plan.d.op, &alpha, pb, plan.d.a, pa, plan.d.b, &beta,
                                   po, plan.d.c, po, plan.d.c, &plan.algo, ws, ws_bytes, cuda::stream(device)));
}

void dgemm(const Gemm& g, const double* pa, const double* pb, double* po, int device, double alpha = 1.0,
           double beta = 0.0) {
  cublasHandle_t h = cuda::cublas_handle(device);
  cublasOperation_t ta = g.vb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t tb = g.va.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  WICK_CUBLAS_CHECK(cublasDgemmStridedBatched(h, ta, tb, int(g.n), int(g.m), int(g.k), &alpha, pb, int(g.vb.ld), g.sb,
                                              pa, int(g.va.ld), g.sa, &beta, po, int(g.n), g.so, g.batch));
}

cudaDataType_t cuda_type(Dtype dt) {
  switch (dt) {
    case Dtype::F32: return CUDA_R_32F;
    case Dtype::BF16: return CUDA_R_16BF;
    case Dtype::F16: return CUDA_R_16F;
    default: fail("matmul: unsupported dtype ", dtype_name(dt), " on CUDA");
  }
}

// Rows of f32 activations the skinny kernel takes: it runs them on CUDA cores 8 rows a pass over
// the weight, so past one pass cuBLAS (one read per tile of rows) is the better choice.
constexpr int64_t kSkinnyMaxRowsF32 = 8;

// out[M, N] = a[M, K] @ b[K, N] through the skinny kernel when b is the transpose of a contiguous
// weight [N, K] and M is small (cuBLASLt's tiles are made for many rows and read the weight at a
// fraction of the memory bandwidth there). False when the operands do not suit it.
bool skinny_linear(const Tensor& a, const Tensor& b, const Tensor& out) {
  if (out.ndim() != 2) return false;
  const int64_t m = out.shape(0), n = out.shape(1), k = a.shape(1);
  const Dtype dtype = out.dtype();
  if (dtype != Dtype::BF16 && dtype != Dtype::F16 && dtype != Dtype::F32) return false;
  if (m > (dtype == Dtype::F32 ? kSkinnyMaxRowsF32 : cuda::kSkinnyMaxRows)) return false;
  if (b.strides()[0] != 1 || b.strides()[1] != k) return false;
  const ggml::GgmlType type = dtype == Dtype::BF16 ? ggml::GgmlType::BF16
                            : dtype == Dtype::F16 ? ggml::GgmlType::F16
                                                  : ggml::GgmlType::F32;
  if (!cuda::skinny_beats_gemm(type, m, n, k)) return false;
  const cuda::SkinnyWeight w{static_cast<const uint8_t*>(b.data_ptr()), type, n, k};
  Tensor x = a.is_contiguous() ? a : cuda::contiguous_on_device(a);
  if (!cuda::skinny_matmul_problem(w, x.data_ptr(), dtype, m, dtype).empty()) return false;
  cuda::skinny_matmul(w, x.data_ptr(), dtype, m, out.data_ptr(), dtype, nullptr, Dtype::F32, cuda::stream_of(out));
  return true;
}

}  // namespace

namespace cuda {

void gemm_nt(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a, const void* b, void* out, float alpha,
             float beta, int device) {
  // b[N, K] row-major is the [K, N] operand stored transposed (column-major with ld K).
  Gemm g{m, n, k, BlasView{false, k}, BlasView{true, k}, 1, 0, 0, 0};
  if (dtype == Dtype::F64)
    return dgemm(g, static_cast<const double*>(a), static_cast<const double*>(b), static_cast<double*>(out), device,
                 alpha, beta);
  lt_matmul(g, cuda_type(dtype), dtype_size(dtype), a, b, out, device, alpha, beta);
}

void gemm_nn(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a, const void* b, void* out, float alpha,
             float beta, int device) {
  Gemm g{m, n, k, BlasView{false, k}, BlasView{false, n}, 1, 0, 0, 0};
  if (dtype == Dtype::F64)
    return dgemm(g, static_cast<const double*>(a), static_cast<const double*>(b), static_cast<double*>(out), device,
                 alpha, beta);
  lt_matmul(g, cuda_type(dtype), dtype_size(dtype), a, b, out, device, alpha, beta);
}

}  // namespace cuda

void Matmul::eval_cuda(const std::vector<Tensor>& in, const Tensor& out) {
  Tensor a = in[0], b = in[1];
  out.allocate();
  WICK_CHECK(is_floating(out.dtype()), "matmul: expected a floating dtype, got ", dtype_name(out.dtype()));
  int nd = out.ndim();
  int device = out.device().index;
  int64_t m = out.shape(-2), n = out.shape(-1), k = a.shape(-1);
  if (out.numel() == 0) return;
  if (k == 0) {
    WICK_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, size_t(out.numel()) * out.itemsize(), cuda::stream(device)));
    return;
  }
  if (skinny_linear(a, b, out)) return;
  auto view_of = [&](Tensor& t, int64_t rows, int64_t cols) {
    auto v = blas_view(rows, cols, t.strides()[nd - 2], t.strides()[nd - 1]);
    if (!v) {
      t = cuda::contiguous_on_device(t);
      v = blas_view(rows, cols, t.strides()[nd - 2], t.strides()[nd - 1]);
    }
    return *v;
  };
  BlasView va = view_of(a, m, k), vb = view_of(b, k, n);
  Shape batch(out.shape().begin(), out.shape().end() - 2);
  Strides sa(a.strides().begin(), a.strides().end() - 2), sb(b.strides().begin(), b.strides().end() - 2);
  Strides so(out.strides().begin(), out.strides().end() - 2);
  auto ua = uniform_stride(batch, sa), ub = uniform_stride(batch, sb);
  int64_t nbatch = numel(batch);
  size_t item = out.itemsize();
  auto run = [&](const char* pa, const char* pb, char* po, int count, int64_t stride_a, int64_t stride_b) {
    Gemm g{m, n, k, va, vb, count, stride_a, stride_b, m * n};
    if (out.dtype() == Dtype::F64)
      dgemm(g, reinterpret_cast<const double*>(pa), reinterpret_cast<const double*>(pb), reinterpret_cast<double*>(po),
            device);
    else
      lt_matmul(g, cuda_type(out.dtype()), item, pa, pb, po, device);
  };
  const char* pa = static_cast<const char*>(a.data_ptr());
  const char* pb = static_cast<const char*>(b.data_ptr());
  char* po = static_cast<char*>(out.data_ptr());
  if (ua && ub && nbatch <= 65535) {
    run(pa, pb, po, int(nbatch), *ua, *ub);
    return;
  }
  // Irregular batch strides: one call per matrix.
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t i = 0; i < nbatch; ++i) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    run(pa + oa * int64_t(item), pb + ob * int64_t(item), po + i * m * n * int64_t(item), 1, 0, 0);
    for (int d = int(batch.size()) - 1; d >= 0; --d) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace wick
