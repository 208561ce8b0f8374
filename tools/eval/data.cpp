// data.cpp: lm-eval's data sources (data.h).
#include "data.h"

#include <cstring>

#include "format/tokens.h"
#include "util/file.h"
#include "util/hash.h"

namespace lm {

namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// Appends the tokens of one token stream file to d->mem.
Status AppendTokenFile(const std::string& f, const std::string& bytes, EvalData* d) {
  TokenStreamInfo info;
  std::vector<uint32_t> ids;
  LM_RETURN_IF_ERROR(ReadTokenStream(f, bytes, &info, &ids));  // its errors name f
  if (d->vocab_id && info.vocab_id != d->vocab_id)
    return Status::Invalid(f + ": token stream of vocabulary " + HashHex(info.vocab_id) +
                           ", unlike the files before it (" + HashHex(d->vocab_id) + ")");
  d->vocab_id = info.vocab_id;
  for (uint32_t t : ids) d->mem.push_back((int32_t)t);
  return Status::OK();
}

}  // namespace

Status EvalData::Read(int64_t start, int64_t n, int32_t* out) {
  if (!ds) {
    std::memcpy(out, mem.data() + start, (size_t)n * sizeof(int32_t));
    return Status::OK();
  }
  buf.resize((size_t)n);
  LM_RETURN_IF_ERROR(ds->Read(ds_split, (uint64_t)start, (size_t)n, buf.data()));
  for (int64_t i = 0; i < n; i++)
    out[i] = buf[(size_t)i] > (uint32_t)INT32_MAX ? -1 : (int32_t)buf[(size_t)i];
  return Status::OK();
}

Status OpenDataset(const std::string& dir, const std::string& split, uint64_t limit, EvalData* d) {
  LM_RETURN_IF_ERROR(Dataset::Open(dir, &d->ds));
  const DatasetInfo& info = d->ds->info();
  d->ds_split = split == "train" ? Split::kTrain : Split::kVal;
  d->name = dir;
  d->split = split;
  d->vocab_id = info.vocab_id;
  uint64_t n = info.tokens[(int)d->ds_split];
  // The manifest's counts size the plan: check them against the headers of
  // the shards to be read first (Read would, but only once it got there).
  LM_RETURN_IF_ERROR(d->ds->CheckShards(d->ds_split, limit ? std::min(n, limit) : n));
  if (n < 2)
    return Status::Invalid(dir + ": the " + split + " split is empty (" + std::to_string(n) +
                           " tokens; nothing to evaluate" +
                           (split == "val" ? "; lm-pack --val-fraction holds out a split)" : ")"));
  // The split's identity: the manifest's shard hashes and which split.
  d->identity = Hash64(HashHex(info.identity) + ":" + split);
  d->n_tokens = (int64_t)n;
  return Status::OK();
}

Status ReadTokenFiles(const std::vector<std::string>& files, EvalData* d) {
  Hasher h;
  for (const std::string& f : files) {
    std::string bytes;
    LM_RETURN_IF_ERROR(ReadFile(f, &bytes));
    h.Update(bytes);
    LM_RETURN_IF_ERROR(AppendTokenFile(f, bytes, d));
  }
  d->name = Join(files);
  d->identity = Hash64(HashHex(h.Digest()) + ":tokens");
  d->n_tokens = (int64_t)d->mem.size();
  if (d->n_tokens < 2)
    return Status::Invalid(d->name + ": " + std::to_string(d->n_tokens) +
                           " token(s): nothing to evaluate");
  return Status::OK();
}

Status NameTextFiles(const std::vector<std::string>& files, EvalData* d) {
  // The identity is of the bytes, so that --new-only can key on it before
  // any checkpoint (and so any vocabulary) is loaded.
  Hasher h;
  for (const std::string& f : files) {
    std::string text;
    LM_RETURN_IF_ERROR(ReadFile(f, &text));
    h.Update(HashHex(Hash64(text)));
  }
  d->identity = Hash64(HashHex(h.Digest()) + ":text");
  d->name = Join(files);
  d->text_files = files;
  return Status::OK();
}

// One more <|endoftext|> goes first, as documents in packed data follow one:
// then the first token of the text is scored too, and bits/byte counts every
// byte of it.
Status TokenizeText(const Vocab& vocab, EvalData* d) {
  std::vector<uint32_t> ids;
  d->mem.push_back((int32_t)vocab.eot_id());
  for (const std::string& f : d->text_files) {
    std::string text;
    LM_RETURN_IF_ERROR(ReadFile(f, &text));
    ids.clear();  // Encode appends
    LM_RETURN_IF_ERROR(vocab.Encode(text, false, &ids).With(f));
    for (uint32_t t : ids) d->mem.push_back((int32_t)t);
    d->mem.push_back((int32_t)vocab.eot_id());
  }
  d->vocab_id = vocab.id();
  d->n_tokens = (int64_t)d->mem.size();
  if (d->n_tokens == 1 + (int64_t)d->text_files.size())
    return Status::Invalid(d->name + ": no text to evaluate (the files are empty)");
  return Status::OK();
}

}  // namespace lm
