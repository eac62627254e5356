// UTF-8 and Unicode helpers for the tokenizers: code points, character classes with the meaning
// Rust's `char` methods give them (HF tokenizers is written in Rust), normalization forms, lowercase.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wick::tok {

// Decodes the code point at s[i] and advances i past it; s must be valid UTF-8.
char32_t next_code_point(std::string_view s, size_t& i);
// Byte length of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
size_t utf8_sequence_length(unsigned char lead);
void append_utf8(std::string& out, char32_t cp);

bool is_valid_utf8(std::string_view bytes);
// Replaces each maximal invalid subsequence with U+FFFD, like Rust's String::from_utf8_lossy.
std::string to_valid_utf8(std::string_view bytes);

bool is_whitespace(char32_t c);        // Unicode White_Space (Rust char::is_whitespace)
bool is_alphanumeric(char32_t c);      // Alphabetic or N* (Rust char::is_alphanumeric)
bool is_numeric(char32_t c);           // N* (Rust char::is_numeric)
bool is_punctuation(char32_t c);       // P* or ASCII punctuation (HF is_bert_punc / is_punc)
bool is_other(char32_t c);             // C* (Cc, Cf, Cs, Co, Cn)
bool is_mark(char32_t c);              // M* (Mn, Mc, Me)
bool is_mark_nonspacing(char32_t c);   // Mn
bool is_word_char(char32_t c);         // regex \w: Alphabetic, M, Nd, Pc, Join_Control

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize_unicode(std::string_view s, NormalForm form);
// Per-character full lowercase mapping (no context rules), as HF's Lowercase normalizer does.
std::string lowercase(std::string_view s);

}  // namespace wick::tok
