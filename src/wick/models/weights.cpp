// Model-file tensors to engine tensors.
#include "wick/models/weights.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "wick/core/ops.h"
#include "wick/core/ops/linear.h"

namespace wick::models {

Dtype engine_dtype(io::FileDtype dtype, const std::string& tensor) {
  switch (dtype) {
    case io::FileDtype::F32: return Dtype::F32;
    case io::FileDtype::F16: return Dtype::F16;
    case io::FileDtype::BF16: return Dtype::BF16;
    case io::FileDtype::F64: return Dtype::F64;
    case io::FileDtype::I32: return Dtype::I32;
    case io::FileDtype::I64: return Dtype::I64;
    case io::FileDtype::U8: return Dtype::U8;
    case io::FileDtype::BOOL: return Dtype::Bool;
    default: break;
  }
  fail("tensor '", tensor, "' has dtype ", io::file_dtype_name(dtype), ", which wick cannot load");
}

Tensor to_tensor(const io::TensorView& view, Dtype dtype, Device device) {
  Dtype stored = engine_dtype(view.dtype, view.name);
  Tensor t;
  bool aligned = reinterpret_cast<uintptr_t>(view.data) % dtype_size(stored) == 0;
  if (aligned) {
    t = mapped_tensor(view.data, view.nbytes, view.owner, view.shape, stored);
  } else {
    t = Tensor::from_data(view.data, view.shape, stored, Device::cpu());
  }
  return to_device(astype(t, dtype), device);
}

Tensor mapped_tensor(const uint8_t* data, size_t nbytes, std::shared_ptr<const void> owner, const Shape& shape,
                     Dtype dtype) {
  return MappedRegion(data, nbytes, std::move(owner)).tensor(data, shape, dtype);
}

MappedRegion::MappedRegion(const uint8_t* begin, size_t nbytes, std::shared_ptr<const void> owner)
    : begin_(begin),
      storage_(std::make_shared<Storage>(const_cast<uint8_t*>(begin), nbytes, Device::cpu(),
                                         [owner = std::move(owner)](void*) {})) {}

MappedRegion MappedRegion::owned(const uint8_t* begin, size_t nbytes) {
  const size_t length = std::max<size_t>(nbytes, 1);
  void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  WICK_CHECK(p != MAP_FAILED, "weights: cannot allocate ", nbytes, " bytes: ", std::strerror(errno));
  ::madvise(p, length, MADV_HUGEPAGE);  // fewer page faults while the loader fills it; advice only
  auto storage = std::make_shared<Storage>(p, nbytes, Device::cpu(), [length](void* q) { ::munmap(q, length); });
  return MappedRegion(begin, std::move(storage), /*owned=*/true);
}

uint8_t* MappedRegion::writable(const uint8_t* data) const {
  WICK_CHECK(owned_, "mapped region: the file's mapping is read-only; owned() makes a writable region");
  WICK_CHECK(data >= begin_ && size_t(data - begin_) < storage_->nbytes(), "mapped region: byte ", data - begin_,
             " is outside the region");
  return static_cast<uint8_t*>(storage_->data()) + (data - begin_);
}

Tensor MappedRegion::tensor(const uint8_t* data, const Shape& shape, Dtype dtype) const {
  const size_t at = size_t(data - begin_), size = dtype_size(dtype);
  WICK_CHECK(data >= begin_ && at % size == 0, "mapped region: tensor data at byte ", at, " is outside the region or not ",
             size, "-byte aligned");
  return Tensor::from_storage(storage_, shape, contiguous_strides(shape), int64_t(at / size), dtype);
}

Tensor load_weight(const io::SafeTensors& file, const std::string& name, const Shape& shape, Dtype dtype, Device device) {
  const io::TensorView* view = file.find(name);
  WICK_CHECK(view != nullptr, "missing weight '", name, "' in ", file.source());
  WICK_CHECK(view->shape == shape, "weight '", name, "' in ", file.source(), " has shape ", shape_str(view->shape),
             " but the config implies ", shape_str(shape));
  return to_tensor(*view, dtype, device);
}

bool stackable(const LinearWeight& a, const LinearWeight& b) {
  if (a.is_quantized() != b.is_quantized() || a.shape()[1] != b.shape()[1]) return false;
  if (!a.is_quantized()) return a.dense().dtype() == b.dense().dtype();
  return a.blocks().type == b.blocks().type && a.blocks().int8_activations == b.blocks().int8_activations &&
         a.blocks().lanes == b.blocks().lanes;
}

void pack_tensors(const std::vector<std::vector<Tensor*>>& groups, Device device) {
  constexpr size_t kAlign = 256;
  auto round_up = [](size_t n, size_t to) { return (n + to - 1) / to * to; };
  struct Slot {
    Tensor* tensor;
    Tensor source;  // contiguous
    size_t offset;  // bytes
  };
  std::vector<Slot> slots;
  std::map<std::pair<const void*, size_t>, size_t> placed;  // (data, bytes) -> slot
  std::vector<std::pair<Tensor*, size_t>> aliases;          // tensors that share a slot
  size_t end = 0;
  for (const std::vector<Tensor*>& group : groups) {
    end = round_up(end, kAlign);
    for (Tensor* t : group) {
      if (!t->defined()) continue;
      size_t nbytes = size_t(t->numel()) * t->itemsize();
      auto key = std::make_pair(static_cast<const void*>(t->eval().data_ptr()), nbytes);
      if (auto it = placed.find(key); it != placed.end() && t->is_contiguous()) {
        aliases.emplace_back(t, it->second);
        continue;
      }
      Tensor source = contiguous(*t).eval();
      end = round_up(end, source.itemsize());
      placed.emplace(key, slots.size());
      slots.push_back(Slot{t, std::move(source), end});
      end += nbytes;
    }
  }
  std::shared_ptr<Storage> block = allocate(std::max<size_t>(end, 1), device);
  for (Slot& s : slots) {
    const Tensor& src = s.source;
    copy_bytes(static_cast<uint8_t*>(block->data()) + s.offset, device, src.data_ptr(), src.device(),
               size_t(src.numel()) * src.itemsize());
    *s.tensor = Tensor::from_storage(block, src.shape(), contiguous_strides(src.shape()),
                                     int64_t(s.offset / src.itemsize()), src.dtype());
  }
  for (auto [t, slot] : aliases) *t = *slots[slot].tensor;
}

bool adjacent(const std::vector<const Tensor*>& parts) {
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const Tensor& a = *parts[i];
    const Tensor& b = *parts[i + 1];
    if (!a.is_contiguous() || !b.is_contiguous() || a.dtype() != b.dtype() || a.storage() != b.storage()) return false;
    if (a.offset() + a.numel() != b.offset()) return false;
  }
  return true;
}

std::optional<Tensor> stacked_view(const std::vector<const Tensor*>& parts) {
  if (parts.empty() || !adjacent(parts)) return std::nullopt;
  const Tensor& first = *parts[0];
  if (first.ndim() == 0) return std::nullopt;
  Shape shape = first.shape();
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i]->ndim() != first.ndim()) return std::nullopt;
    for (int d = 1; d < first.ndim(); ++d)
      if (parts[i]->shape(d) != first.shape(d)) return std::nullopt;
    shape[0] += parts[i]->shape(0);
  }
  return Tensor::from_storage(first.storage(), shape, contiguous_strides(shape), first.offset(), first.dtype());
}

std::optional<LinearWeight> stacked_view(const std::vector<const LinearWeight*>& parts) {
  if (parts.empty()) return std::nullopt;
  std::vector<const Tensor*> memory;
  for (const LinearWeight* p : parts) {
    if (!stackable(*parts[0], *p)) return std::nullopt;
    memory.push_back(&p->memory());
  }
  std::optional<Tensor> rows = stacked_view(memory);
  if (!rows) return std::nullopt;
  return with_memory(*parts[0], *rows);
}

LinearWeight with_memory(const LinearWeight& like, Tensor memory) {
  if (!like.is_quantized()) return memory;
  const QuantizedMatrix& q = like.blocks();
  int64_t rows = memory.shape(0);
  return QuantizedMatrix{std::move(memory), q.type, rows, q.cols, q.int8_activations, q.lanes};
}

const Tensor& LinearWeight::dense() const {
  WICK_CHECK(!blocks_, "this weight is kept quantized (", ggml::ggml_type_name(blocks_->type), "); ask for to_dense()");
  return dense_;
}

const QuantizedMatrix& LinearWeight::blocks() const {
  WICK_CHECK(blocks_.has_value(), "this weight is dense, not quantized");
  return *blocks_;
}

Tensor LinearWeight::to_dense(Dtype dtype) const { return blocks_ ? dequantize(*blocks_, dtype) : astype(dense_, dtype); }

Tensor linear(const Tensor& x, const LinearWeight& w, const std::optional<Tensor>& bias) {
  return w.is_quantized() ? wick::linear(x, w.blocks(), bias) : wick::linear(x, w.dense(), bias);
}

Tensor linear_add(const Tensor& x, const LinearWeight& w, const std::optional<Tensor>& bias,
                  std::optional<Tensor> residual) {
  return w.is_quantized() ? wick::linear_add(x, w.blocks(), bias, std::move(residual))
                          : wick::linear_add(x, w.dense(), bias, std::move(residual));
}

}  // namespace wick::models
