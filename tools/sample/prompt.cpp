// prompt.cpp: lm-sample's prompt (prompt.h).
#include "prompt.h"

#include <cstring>

#include "format/tokens.h"
#include "util/hash.h"

namespace lm {

bool LooksLikeTokenStream(const std::string& bytes) {
  if (bytes.size() < 5 || std::memcmp(bytes.data(), kTokenStreamMagic, 4) != 0) return false;
  unsigned char c = (unsigned char)bytes[4];
  return c < 0x20 && c != '\t' && c != '\n' && c != '\r';
}

namespace {

Status StreamPromptIds(const std::string& name, const std::string& bytes, const Vocab& vocab,
                       std::vector<int32_t>* ids, std::string* text) {
  TokenStreamInfo info;
  std::vector<uint32_t> u;
  LM_RETURN_IF_ERROR(ReadTokenStream(name, bytes, &info, &u));  // its errors name the file
  if (info.vocab_id != vocab.id())
    return Status::Invalid(name + ": token stream of another vocabulary (" +
                           HashHex(info.vocab_id) + "; the checkpoint's is " + HashHex(vocab.id()) +
                           ")");
  for (uint32_t t : u)
    if (t >= vocab.size())
      return Status::Invalid(name + ": token id " + std::to_string(t) + " outside the vocabulary");
  if (u.empty()) u.push_back(vocab.eot_id());
  ids->assign(u.begin(), u.end());
  return vocab.Decode(u.data(), u.size(), text);
}

}  // namespace

Status PromptIds(const std::string& name, const std::string& bytes, bool may_be_stream,
                 const Vocab& vocab, std::vector<int32_t>* ids, std::string* text) {
  ids->clear();
  if (may_be_stream && LooksLikeTokenStream(bytes))
    return StreamPromptIds(name, bytes, vocab, ids, text);
  *text = bytes;
  std::vector<uint32_t> enc;
  LM_RETURN_IF_ERROR(vocab.Encode(bytes, false, &enc).With(name));
  ids->push_back((int32_t)vocab.eot_id());
  for (uint32_t t : enc) ids->push_back((int32_t)t);
  return Status::OK();
}

}  // namespace lm
