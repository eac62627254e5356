// The adapter registry: named adapters over one base, switched by handing out their deltas.
#include "wick/lora/registry.h"

namespace wick::lora {

namespace {

// The base's weight [out, in] of a module named as DecoderModel::module_name names it.
const models::LinearWeight* base_weight(const models::DecoderModel& base, const std::string& module) {
  for (int64_t i = 0; i < base.config().num_layers; ++i) {
    const models::DecoderLayer& l = base.layers[i];
    std::pair<const char*, const models::LinearWeight*> slots[] = {{"q_proj", &l.q}, {"k_proj", &l.k}, {"v_proj", &l.v}, {"o_proj", &l.o},
                                                     {"gate_proj", &l.gate}, {"up_proj", &l.up}, {"down_proj", &l.down}};
    for (auto [name, w] : slots)
      if (models::DecoderModel::module_name(i, name) == module) return w;
  }
  return nullptr;
}

std::string list(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

void AdapterRegistry::load(const std::string& name, const std::string& dir) {
  WICK_CHECK(!name.empty(), "lora: an adapter needs a name (", dir, ")");
  WICK_CHECK(!contains(name), "lora: an adapter named '", name, "' is already loaded");
  Adapter adapter;
  try {
    adapter = Adapter::load(dir, *base_);
  } catch (const Error& e) {
    fail("lora: adapter '", name, "' (", dir, "): ", e.what());
  }
  add(name, std::move(adapter));
}

void AdapterRegistry::add(const std::string& name, Adapter adapter) {
  WICK_CHECK(!name.empty(), "lora: an adapter needs a name");
  WICK_CHECK(!contains(name), "lora: an adapter named '", name, "' is already loaded");
  const std::vector<Tensor>& p = adapter.parameters();
  for (size_t i = 0; i < adapter.modules().size(); ++i) {
    const std::string& module = adapter.modules()[i];
    const models::LinearWeight* w = base_weight(*base_, module);
    WICK_CHECK(w, "lora: adapter '", name, "': the base model has no module ", module);
    const Tensor &a = p[2 * i], &b = p[2 * i + 1];
    WICK_CHECK(a.ndim() == 2 && b.ndim() == 2 && a.shape(1) == w->shape()[1] && b.shape(0) == w->shape()[0] &&
                   b.shape(1) == a.shape(0),
               "lora: adapter '", name, "': ", module, " has A ", shape_str(a.shape()), " and B ", shape_str(b.shape()),
               ", which do not fit the base's weight ", shape_str(w->shape()));
    WICK_CHECK(a.device() == base_->device() && b.device() == base_->device(), "lora: adapter '", name,
               "' is on another device than the base model");
  }
  models::LoraDeltas deltas = adapter.deltas();
  entries_.emplace(name, Entry{std::move(adapter), std::move(deltas)});
}

void AdapterRegistry::unload(const std::string& name) {
  find(name);
  entries_.erase(name);
  if (active_ == name) active_.reset();
}

void AdapterRegistry::activate(const std::string& name) {
  find(name);
  active_ = name;
}

void AdapterRegistry::deactivate() { active_.reset(); }

const models::LoraDeltas* AdapterRegistry::active_deltas() const { return active_ ? &find(*active_).deltas : nullptr; }

std::vector<std::string> AdapterRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

const Adapter& AdapterRegistry::adapter(const std::string& name) const { return find(name).adapter; }

const models::LoraDeltas& AdapterRegistry::deltas(const std::string& name) const { return find(name).deltas; }

const AdapterRegistry::Entry& AdapterRegistry::find(const std::string& name) const {
  auto it = entries_.find(name);
  WICK_CHECK(it != entries_.end(), "lora: no adapter named '", name, "' is loaded (loaded: ", list(names()), ")");
  return it->second;
}

}  // namespace wick::lora
