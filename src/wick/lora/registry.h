// Many LoRA adapters over one loaded base model, each under a name, with one (or none) active:
// switching hands the forward another adapter's updates and never reloads or modifies the base.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "wick/lora/adapter.h"

namespace wick::lora {

class AdapterRegistry {
 public:
  // `base` is only read, and must outlive the registry.
  explicit AdapterRegistry(const models::DecoderModel& base) : base_(&base) {}

  // Loads the PEFT folder `dir` under `name` (not yet active). Errors name the adapter: an empty
  // or taken name, an unreadable folder, tensors that do not fit the base.
  void load(const std::string& name, const std::string& dir);
  // Adds an adapter already in memory under `name`, checked against the base like load().
  void add(const std::string& name, Adapter adapter);
  // Forgets the adapter; when it was the active one, none is active afterwards.
  void unload(const std::string& name);

  void activate(const std::string& name);
  void deactivate();
  // The active adapter's name; none when the base runs alone.
  const std::optional<std::string>& active() const { return active_; }
  // The active adapter's updates for DecoderModel::forward and models::generate; nullptr when none
  // is active (the base's own logits).
  const models::LoraDeltas* active_deltas() const;

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const;  // sorted
  const Adapter& adapter(const std::string& name) const;
  // A named adapter's updates, whichever is active (a per-request choice).
  const models::LoraDeltas& deltas(const std::string& name) const;

 private:
  struct Entry {
    Adapter adapter;
    models::LoraDeltas deltas;  // made once, so switching costs nothing
  };
  const Entry& find(const std::string& name) const;

  const models::DecoderModel* base_;
  std::map<std::string, Entry> entries_;
  std::optional<std::string> active_;
};

}  // namespace wick::lora
