// Tensor: a reference-counted handle to an array that is either materialised (storage + strides)
// or the pending output of a primitive applied to other tensors (a node of the graph).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wick/core/device.h"
#include "wick/core/dtype.h"
#include "wick/core/settings.h"
#include "wick/core/shape.h"
#include "wick/core/storage.h"

namespace wick {

class Primitive;
class Tensor;
struct TensorImpl;

// What computes a node: its primitive and inputs. The outputs of a primitive of several outputs
// (siblings, Tensor::make_siblings) share one Node, so the inputs are held once, whichever
// siblings are alive, and the node runs once for all of them.
struct Node {
  std::shared_ptr<Primitive> primitive;
  std::vector<Tensor> inputs;
  // Several outputs only (empty for one): each output, held weakly so that an output nobody holds
  // is freed (its memory too, once evaluated), and its shape and dtype, so that the evaluation can
  // hand the primitive a temporary in place of an output that is gone.
  std::vector<std::weak_ptr<TensorImpl>> outputs;
  std::vector<Shape> shapes;
  std::vector<Dtype> dtypes;
  Device device;
};

struct TensorImpl {
  Shape shape;
  Dtype dtype = Dtype::F32;
  Device device;
  // Set once evaluated: the data is storage->data() + offset * itemsize, laid out by strides.
  std::shared_ptr<Storage> storage;
  Strides strides;
  int64_t offset = 0;
  // Set while the tensor is a node: what computes it, and from what. Cleared once the node has
  // been evaluated and nothing needs it for a gradient, so intermediates are freed early (the
  // inputs go when the last sibling lets go of the node).
  std::shared_ptr<Node> node;
  // True when a gradient is being traced through this tensor (see autograd.h).
  bool tracks_grad = false;
};

class Tensor {
 public:
  Tensor() = default;

  // A leaf holding a copy of host data of `dtype`, placed on `device`.
  static Tensor from_data(const void* data, const Shape& shape, Dtype dtype, Device device = default_device());
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = default_device()) {
    WICK_CHECK(int64_t(values.size()) == wick::numel(shape), "from_vector: ", values.size(),
               " values do not fill shape ", shape_str(shape));
    if constexpr (std::is_same_v<T, bool>) {
      std::vector<uint8_t> bytes(values.begin(), values.end());
      return from_data(bytes.data(), shape, Dtype::Bool, device);
    } else {
      return from_data(values.data(), shape, dtype_v<T>, device);
    }
  }
  // A leaf over existing memory (e.g. a memory-mapped file), without copying.
  static Tensor from_storage(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
                             int64_t offset, Dtype dtype);
  // A leaf of uninitialised contiguous memory.
  static Tensor empty(const Shape& shape, Dtype dtype, Device device = default_device());
  // A node computed by `primitive` from `inputs`: run at once in eager mode, recorded in lazy mode.
  static Tensor make(const Shape& shape, Dtype dtype, Device device, std::shared_ptr<Primitive> primitive,
                     std::vector<Tensor> inputs);
  // The outputs of one node of a primitive of several outputs (siblings: num_outputs() shapes and
  // dtypes), computed together: evaluating any of them evaluates all, once.
  static std::vector<Tensor> make_siblings(const std::vector<Shape>& shapes, const std::vector<Dtype>& dtypes,
                                           Device device, std::shared_ptr<Primitive> primitive,
                                           std::vector<Tensor> inputs);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t shape(int64_t dim) const;
  int ndim() const { return int(impl().shape.size()); }
  int64_t numel() const { return wick::numel(impl().shape); }
  Dtype dtype() const { return impl().dtype; }
  size_t itemsize() const { return dtype_size(impl().dtype); }
  Device device() const { return impl().device; }

  bool is_evaluated() const { return impl().storage != nullptr; }
  // Materialises this tensor (and what it depends on). Returns *this.
  const Tensor& eval() const;
  // These evaluate first.
  const Strides& strides() const;
  int64_t offset() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;
  // Address of the first element on the tensor's device (evaluates; no synchronisation).
  void* data_ptr() const;
  // Host address of the first element; CPU tensors only.
  template <typename T>
  T* data() const {
    WICK_CHECK(device().is_cpu(), "data(): tensor is on ", device().str(), "; copy it to the CPU first");
    WICK_CHECK(dtype_v<T> == dtype(), "data(): tensor is ", dtype_name(dtype()), ", not ", dtype_name(dtype_v<T>));
    return static_cast<T*>(data_ptr());
  }
  // A contiguous host copy converted to T (waits for the device).
  template <typename T>
  std::vector<T> to_vector() const;
  template <typename T>
  T item() const {
    WICK_CHECK(numel() == 1, "item(): tensor has ", numel(), " elements, expected 1");
    return to_vector<T>()[0];
  }
  // "Tensor(shape=[2,3], dtype=f32, device=cpu)"
  std::string str() const;

  // --- For backends, the graph and autograd. ---
  TensorImpl& impl() const {
    WICK_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool tracks_grad() const { return impl_ && impl_->tracks_grad; }
  // Sets the data of a node during evaluation.
  void set_data(std::shared_ptr<Storage> storage, const Strides& strides, int64_t offset) const;
  // Gives a node fresh contiguous storage on its device.
  void allocate() const;
  // Gives nodes of one shape, dtype and device one buffer, side by side along their last dim, as
  // split would cut them from a tensor whose last dim holds them all: split's vjp then joins
  // them without a copy. (For a primitive of several outputs that are gradients of split parts.)
  static void allocate_side_by_side(const std::vector<Tensor>& outs);
  // A new handle sharing this tensor's data (and node), used by autograd to mark traced inputs.
  Tensor shallow_copy() const;
  bool same(const Tensor& other) const { return impl_ == other.impl_; }
  // The primitive that computes this tensor, null once it was forgotten (or for a leaf).
  Primitive* primitive() const { return impl_ && impl_->node ? impl_->node->primitive.get() : nullptr; }
  // The outputs of this tensor's node (itself alone for one output); an output nobody holds any
  // more is undefined. Empty for a leaf.
  std::vector<Tensor> siblings() const;
  // The same for evaluating the node: a fresh temporary (shape, dtype and device set, no data)
  // stands for each output that nobody holds any more.
  std::vector<Tensor> node_outputs() const;

 private:
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<TensorImpl> impl_;
};

// Copies the (possibly strided, any-device) tensor into a contiguous host buffer of its dtype.
void copy_to_host(const Tensor& t, void* dst);

// ---------------------------------------------------------------- aliasing
// Who else can see a tensor's memory: the one test behind every in-place write and every fusion
// of the graph. Handles are counted rather than tracked because every holder of a node (a user's
// variable, a consumer node's inputs, eval()'s order list) holds a Tensor, so the count of handles
// on a node, and of nodes on a storage, is exactly the number of places that can still read it.

// The handles on t's node, the caller's own included.
inline long node_handles(const Tensor& t) { return t.impl_ptr().use_count(); }

// Whether the holder of the only handle on `t` (evaluated) may overwrite t's memory unseen: no
// other node views its storage, t covers that storage densely from its start (so a new tensor of
// t's shape can own all of it), and no gradient will read t's values (t is not traced, or the
// primitive that made it declares that its vjp does not read its output).
bool can_overwrite(const Tensor& t);

template <typename T>
std::vector<T> Tensor::to_vector() const {
  std::vector<uint8_t> raw(numel() * itemsize());
  copy_to_host(*this, raw.data());
  std::vector<T> out(numel());
  dispatch_all(dtype(), [&]<typename S>() {
    const S* src = reinterpret_cast<const S*>(raw.data());
    for (int64_t i = 0; i < numel(); ++i) {
      if constexpr (std::is_same_v<S, f16> || std::is_same_v<S, bf16>) {
        out[i] = static_cast<T>(static_cast<float>(src[i]));
      } else {
        out[i] = static_cast<T>(src[i]);
      }
    }
  });
  return out;
}

}  // namespace wick
