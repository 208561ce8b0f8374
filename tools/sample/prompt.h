// prompt.h: lm-sample's prompt as token ids: a token stream taken as it is
// (its vocabulary checked), or text encoded after an <|endoftext|>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/vocab.h"
#include "util/status.h"

namespace lm {

// A prompt file (or stdin) is a token stream when it starts with the magic
// followed by a byte no text has there (the version's low byte, 1): so a text
// prompt that merely starts with "LMTS" stays text.
bool LooksLikeTokenStream(const std::string& bytes);

// The prompt `bytes` (named `name` in errors) as ids, and its text. --prompt
// is always text (may_be_stream false).
Status PromptIds(const std::string& name, const std::string& bytes, bool may_be_stream,
                 const Vocab& vocab, std::vector<int32_t>* ids, std::string* text);

}  // namespace lm
