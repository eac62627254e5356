// Sharded safetensors checkpoints: model.safetensors.index.json maps each tensor to its shard.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "wick/base/error.h"
#include "wick/io/safetensors.h"

namespace wick::io {

SafeTensors SafeTensors::open_index(const std::string& index_path) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  std::ifstream in(index_path, std::ios::binary);
  if (!in) fail(index_path, ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  json index;
  try {
    index = json::parse(text.str());
  } catch (const json::exception& e) {
    fail(index_path, ": invalid JSON: ", e.what());
  }
  if (!index.is_object()) fail(index_path, ": must be a JSON object");
  if (!index.contains("weight_map") || !index["weight_map"].is_object())
    fail(index_path, ": field 'weight_map' missing or not an object");

  SafeTensors out;
  out.source_ = index_path;
  if (index.contains("metadata")) {
    const json& meta = index["metadata"];
    if (!meta.is_object()) fail(index_path, ": field 'metadata' must be an object");
    // Indexes store numbers here (total_size); keep every value as text like safetensors metadata.
    for (const auto& [k, v] : meta.items()) out.metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }

  // Group tensors by shard so each shard is opened (and validated) once, in first-use order.
  std::vector<std::string> shard_order;
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string())
      fail(index_path, ": weight_map['", name, "'] must be a file name, got ", shard.dump());
    const std::string& file = shard.get_ref<const std::string&>();
    fs::path rel(file);
    bool escapes = rel.is_absolute();
    for (const auto& part : rel) escapes = escapes || part == "..";
    if (escapes || file.empty())
      fail(index_path, ": weight_map['", name, "'] = '", file, "' must be a path inside the folder");
    if (by_shard.find(file) == by_shard.end()) shard_order.push_back(file);
    by_shard[file].push_back(name);
  }

  fs::path dir = fs::path(index_path).parent_path();
  for (const std::string& file : shard_order) {
    SafeTensors shard = open((dir / file).string());
    std::vector<std::string> wanted = by_shard[file];
    // Keep the shard's own file order for names().
    std::map<std::string, bool> is_wanted;
    for (const auto& w : wanted) is_wanted[w] = true;
    for (const auto& w : wanted) {
      if (!shard.contains(w))
        fail(index_path, ": weight_map says tensor '", w, "' is in '", file, "', but it is not");
    }
    for (const std::string& name : shard.names()) {
      if (!is_wanted.count(name)) continue;
      out.names_.push_back(name);
      out.tensors_.emplace(name, shard.get(name));
    }
  }
  return out;
}

}  // namespace wick::io
