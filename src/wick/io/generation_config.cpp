// generation_config.json → GenerationConfig.
#include "wick/io/hf_config.h"
#include "wick/io/json_fields.h"

namespace wick::io {

GenerationConfig parse_generation_config(const nlohmann::json& config, const std::string& source) {
  detail::JsonFields f(config, source);
  GenerationConfig g;
  g.eos_token_ids = f.integer_or_list("eos_token_id");
  g.bos_token_id = f.integer("bos_token_id");
  g.pad_token_id = f.integer("pad_token_id");
  g.do_sample = f.boolean("do_sample");
  g.temperature = f.number("temperature");
  g.top_p = f.number("top_p");
  g.top_k = f.integer("top_k");
  g.min_p = f.number("min_p");
  g.repetition_penalty = f.number("repetition_penalty");
  g.max_new_tokens = f.integer("max_new_tokens");
  g.max_length = f.integer("max_length");
  return g;
}

GenerationConfig load_generation_config(const std::string& path) {
  return parse_generation_config(detail::read_json_file(path), path);
}

}  // namespace wick::io
