// Models with their tokenizer, chat template, EOS ids and generation or pooling defaults.
#include "wick/models/loading.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "wick/base/error.h"
#include "wick/io/gguf.h"
#include "wick/io/gguf_model.h"
#include "wick/io/model_source.h"
#include "wick/models/gguf_tokenizer.h"

namespace wick::models {

namespace fs = std::filesystem;

namespace {

// A tokenizer.json, or a folder holding one: taken as given; anything else goes through the model
// resolver (GGUF file, Hub id in the cache).
std::string resolve_tokenizer_source(const std::string& path) {
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".json") return path;
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "tokenizer.json")) return path;
  return io::resolve_model_source(path).path;
}

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

chat::ChatTemplateConfig gguf_chat_template(const io::GgufTokenizerData& d, const std::string& path) {
  WICK_CHECK(d.chat_template.has_value(), path, ": the GGUF metadata has no tokenizer.chat_template");
  chat::ChatTemplateConfig config;
  config.chat_template = *d.chat_template;
  auto token = [&](const std::optional<int64_t>& id) -> std::optional<std::string> {
    if (id) return d.tokens.at(size_t(*id));
    return std::nullopt;
  };
  config.options.bos_token = token(d.bos_token_id);
  config.options.eos_token = token(d.eos_token_id);
  return config;
}

// Calls load(); keeps its result, or the message of the wick::Error it threw.
template <class T, class Load>
void load_or_keep_error(std::optional<T>& out, std::string& error, Load&& load) {
  try {
    out.emplace(load());
  } catch (const Error& e) {
    error = e.what();
  }
}

const char* const kTokenizerNotLoaded = "the tokenizer was not loaded (LoadOptions::with_tokenizer is false)";
const char* const kTemplateNotLoaded = "the chat template was not loaded (LoadOptions::with_tokenizer is false)";

// The tokenizer and chat template of `loaded`, or why each is absent.
template <class LoadTokenizer, class LoadTemplate>
void load_text_files(LoadedDecoder& loaded, const LoadOptions& options, LoadTokenizer&& tokenizer_loader,
                     LoadTemplate&& template_loader) {
  if (!options.with_tokenizer) {
    loaded.tokenizer_error = kTokenizerNotLoaded;
    loaded.chat_template_error = kTemplateNotLoaded;
    return;
  }
  load_or_keep_error(loaded.tokenizer, loaded.tokenizer_error, tokenizer_loader);
  load_or_keep_error(loaded.chat_template, loaded.chat_template_error, template_loader);
}

void add_unique(std::vector<int32_t>& ids, int64_t id) {
  if (std::find(ids.begin(), ids.end(), int32_t(id)) == ids.end()) ids.push_back(int32_t(id));
}

}  // namespace

tok::Tokenizer load_tokenizer(const std::string& path) {
  std::string p = resolve_tokenizer_source(path);
  if (fs::is_regular_file(p) && is_gguf_file(p)) return tokenizer_from_gguf(io::GgufFile::open(p));
  return tok::Tokenizer::from_file(p);
}

chat::ChatTemplateConfig load_chat_template(const std::string& path) {
  std::string p = resolve_tokenizer_source(path);
  if (fs::is_regular_file(p) && is_gguf_file(p)) return gguf_chat_template(io::gguf_tokenizer_data(io::GgufFile::open(p)), p);
  fs::path config = fs::is_directory(p) ? fs::path(p) : fs::path(p).parent_path() / "tokenizer_config.json";
  return chat::load_chat_template_config(config.string());
}

const tok::Tokenizer& LoadedDecoder::require_tokenizer() const {
  if (!tokenizer) throw Error(tokenizer_error);
  return *tokenizer;
}

const chat::ChatTemplateConfig& LoadedDecoder::require_chat_template() const {
  if (!chat_template) throw Error(chat_template_error);
  return *chat_template;
}

LoadedDecoder load_decoder(const std::string& path, const LoadOptions& options) {
  io::ModelSource src = io::resolve_model_source(path);
  if (src.format == io::ModelFormat::kGguf) {
    io::GgufFile file = io::GgufFile::open(src.path);
    io::GgufTokenizerData tok = io::gguf_tokenizer_data(file);
    std::vector<int32_t> eos;
    for (const auto& id : {tok.eos_token_id, tok.eot_token_id, tok.eom_token_id})
      if (id) add_unique(eos, *id);
    LoadedDecoder loaded{.model = DecoderModel::load_gguf(file, options.device, options.dtype, options.storage),
                         .path = src.path,
                         .eos_ids = std::move(eos)};
    load_text_files(
        loaded, options, [&] { return tokenizer_from_gguf(tok); }, [&] { return gguf_chat_template(tok, src.path); });
    return loaded;
  }
  WICK_CHECK(src.format == io::ModelFormat::kHfFolder, path, ": a decoder needs a model folder or a .gguf file");
  std::vector<int32_t> eos;
  for (int64_t id : io::load_model_config(src.path + "/config.json").eos_token_ids) add_unique(eos, id);
  std::optional<io::GenerationConfig> generation;
  std::string generation_file = src.path + "/generation_config.json";
  if (fs::exists(generation_file)) generation = io::load_generation_config(generation_file);
  if (generation)
    for (int64_t id : generation->eos_token_ids) add_unique(eos, id);
  LoadedDecoder loaded{.model = DecoderModel::load(src.path, options.device, options.dtype, options.storage),
                       .path = src.path,
                       .eos_ids = std::move(eos),
                       .generation = std::move(generation)};
  load_text_files(
      loaded, options, [&] { return load_tokenizer(src.path); }, [&] { return load_chat_template(src.path); });
  return loaded;
}

const tok::Tokenizer& LoadedEncoder::require_tokenizer() const {
  if (!tokenizer) throw Error(tokenizer_error);
  return *tokenizer;
}

Pooling LoadedEncoder::default_pooling() const {
  if (!sentence_transformers || sentence_transformers->pooling_modes.empty()) return Pooling::Mean;
  const std::vector<std::string>& modes = sentence_transformers->pooling_modes;
  const std::string& m = modes.front();
  WICK_CHECK(modes.size() == 1 && (m == "mean" || m == "cls" || m == "lasttoken"), path, ": pooling mode '", m,
             "' is not supported (mean, cls, lasttoken)");
  return parse_pooling(m);
}

bool LoadedEncoder::default_normalize() const {
  return sentence_transformers ? sentence_transformers->normalize : true;
}

int64_t LoadedEncoder::max_length() const {
  const auto& st = sentence_transformers;
  int64_t n = st && st->max_seq_length ? *st->max_seq_length : 512;
  return std::min<int64_t>(n, model.config().max_position_embeddings);
}

LoadedEncoder load_encoder(const std::string& path, const LoadOptions& options) {
  io::ModelSource src = io::resolve_model_source(path);
  WICK_CHECK(src.format == io::ModelFormat::kHfFolder, path, ": embeddings need a model folder");
  WICK_CHECK(!options.storage.keep_file_blocks && !options.storage.quantize, path,
             ": quantized weight storage is for decoders; an encoder loads dense");
  LoadedEncoder loaded{.model = EncoderModel::load(src.path, options.device, options.dtype),
                       .path = src.path,
                       .sentence_transformers = io::load_sentence_transformers_config(src.path)};
  if (options.with_tokenizer)
    load_or_keep_error(loaded.tokenizer, loaded.tokenizer_error, [&] { return load_tokenizer(src.path); });
  else
    loaded.tokenizer_error = kTokenizerNotLoaded;
  return loaded;
}

}  // namespace wick::models
