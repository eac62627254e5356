// Loading what the CLI's commands need from a user's PATH: a tokenizer.json or model folder, a
// .gguf file, or a Hub id already in the local cache.
#pragma once

#include <string>

#include "wick/chat/template.h"
#include "wick/tokenizer/tokenizer.h"

namespace wick::cli {

// True when the file starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

tok::Tokenizer load_tokenizer(const std::string& path);
chat::ChatTemplateConfig load_chat_template(const std::string& path);

}  // namespace wick::cli
