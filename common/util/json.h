// json.h: the one way files' JSON text is parsed, so every reader refuses the
// same things.
//
// nlohmann's parser takes a NUL byte for the end of its input and ignores
// whatever follows it, so `{"a":1}\0garbage` would read as `{"a":1}`. JSON text
// never holds a raw NUL (RFC 8259: control characters are escaped inside
// strings and are not whitespace outside them), so one is refused here, with
// its offset. Parse errors keep nlohmann's line and column.
//
// nlohmann parses any depth, but dumping, copying and comparing a value
// recurse once per level: a 400 KB config.json of nested brackets crashed
// lm-train with a stack overflow (`"model_type": [[[...]]]` went to dump()
// in an error message). Text nested deeper than kMaxJsonDepth arrays and
// objects is refused (RFC 8259 section 9 lets a parser limit the depth); no
// file lm reads comes near it.
#pragma once

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/status.h"

namespace lm {

constexpr size_t kMaxJsonDepth = 512;

// The offset of the bracket that opens level kMaxJsonDepth + 1 of `text`
// (strings skipped), or npos. Text that is not JSON may give any answer: the
// parser refuses it anyway.
inline size_t JsonTooDeepAt(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); i++) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return std::string_view::npos;
}

// Parses `text` (all of it) into *out. On failure returns Invalid with a
// message that starts "not valid JSON" and says where; callers prefix the file.
template <class Json>
Status ParseJsonText(std::string_view text, Json* out,
                     typename Json::parser_callback_t callback = nullptr) {
  const void* nul = std::memchr(text.data(), 0, text.size());
  if (nul != nullptr)
    return Status::Invalid("not valid JSON (a NUL byte at offset " +
                           std::to_string((const char*)nul - text.data()) + ")");
  const size_t deep = JsonTooDeepAt(text);
  if (deep != std::string_view::npos)
    return Status::Invalid("not valid JSON for lm (nested deeper than " +
                           std::to_string(kMaxJsonDepth) + " levels at offset " +
                           std::to_string(deep) + ")");
  try {
    *out = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const nlohmann::json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ...".
    std::string why = e.what();
    size_t at = why.find("] ");
    if (at != std::string::npos) why = why.substr(at + 2);
    // The message quotes the last token read, which may be a whole long string.
    if (why.size() > 200) {
      size_t cut = 200;
      while (cut > 0 && ((unsigned char)why[cut] & 0xC0) == 0x80) cut--;  // a whole UTF-8 char
      why = why.substr(0, cut) + "...";
    }
    return Status::Invalid("not valid JSON (" + why + ")");
  } catch (const nlohmann::json::exception& e) {
    return Status::Invalid(std::string("not valid JSON (") + e.what() + ")");
  }
  return Status::OK();
}

}  // namespace lm
