// jsonl_fuzz.cpp: lm-tokenize's input documents (tools/tokenize/documents.h), as
// `lm-tokenize --jsonl FIELD`, `--lines` and `--doc-delim` cut them.
//
// The first byte of the input picks the mode (byte % 3: JSONL of the field
// "text", lines, documents separated by "\n\n") and whether documents are
// cut into small pieces at the pre-tokenizer's safe points, as lm-tokenize
// does to spread a long document over threads (byte & 4: the GPT-2,
// cl100k or o200k pattern by (byte >> 3) % 3); the rest is the file.
// Accepted input must give the same documents when written again in that
// mode (JSONL through nlohmann's dump) and read back; pieces must join to
// the documents read whole, and pre-tokenizing the pieces separately must
// give the chunks of the whole document.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz.h"
#include "text/pretokenize.h"
#include "tools/tokenize/documents.h"

namespace {

// The documents of `path`; false when the reader refuses it. With `pre`,
// *pieces gets each document's pieces.
bool ReadDocs(const std::string& path, const lm::DocMode& mode, const lm::Pretokenizer* pre,
              std::vector<std::string>* docs, std::vector<std::vector<std::string>>* pieces) {
  lm::DocReader r({path}, mode, pre, pre ? 16 : 1 << 20);
  std::vector<lm::Piece> got;
  std::string cur;
  std::vector<std::string> cur_pieces;
  for (bool done = false; !done;) {
    got.clear();
    if (!r.Next(1 << 20, &got, &done).ok()) return false;
    for (const lm::Piece& p : got) {
      cur += p.text;
      cur_pieces.push_back(p.text);
      if (!p.doc_end) continue;
      docs->push_back(cur);
      if (pieces) pieces->push_back(cur_pieces);
      cur.clear();
      cur_pieces.clear();
    }
  }
  FUZZ_CHECK(cur.empty());  // the last piece ends a document
  return true;
}

// The documents as a file of that mode. Delimiters go between documents
// only: a last document "b\n" followed by "\n\n" would read as "b", "\n".
std::string Write(const lm::DocMode& mode, const std::vector<std::string>& docs) {
  std::string out;
  for (size_t i = 0; i < docs.size(); i++) {
    if (mode.kind == lm::DocMode::kJsonl) {
      out += nlohmann::json{{mode.field, docs[i]}}.dump() + "\n";
    } else {
      if (i > 0) out += mode.kind == lm::DocMode::kLines ? "\n" : mode.delim;
      out += docs[i];
    }
  }
  return out;
}

// Chunk ends of each piece on its own, shifted, are the whole's chunk ends.
void CheckPieces(const lm::Pretokenizer& pre, const std::string& doc,
                 const std::vector<std::string>& pieces) {
  std::vector<size_t> whole, parts, one;
  FUZZ_CHECK(pre.Split(doc.data(), doc.size(), &whole).ok());
  size_t at = 0;
  for (const std::string& p : pieces) {
    one.clear();
    FUZZ_CHECK(pre.Split(p.data(), p.size(), &one).ok());
    for (size_t e : one) parts.push_back(at + e);
    at += p.size();
  }
  FUZZ_CHECK(parts == whole);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static lm_fuzz::MemFile file("fuzz.txt"), again_file("again.txt");
  lm::DocMode mode;
  mode.kind = data[0] % 3 == 0   ? lm::DocMode::kJsonl
              : data[0] % 3 == 1 ? lm::DocMode::kLines
                                 : lm::DocMode::kDelim;
  mode.field = "text";
  mode.delim = "\n\n";
  file.Set(data + 1, size - 1);
  std::vector<std::string> docs;
  if (!ReadDocs(file.path(), mode, nullptr, &docs, nullptr)) return 0;
  lm_fuzz::Accepted()++;
  const std::string text = Write(mode, docs);
  again_file.Set(text.data(), text.size());
  std::vector<std::string> again;
  FUZZ_CHECK(ReadDocs(again_file.path(), mode, nullptr, &again, nullptr));
  FUZZ_CHECK(again == docs);
  if (data[0] & 4) {
    static std::unique_ptr<lm::Pretokenizer> pres[3];
    const int k = (data[0] >> 3) % 3;
    if (!pres[k])
      FUZZ_CHECK(lm::Pretokenizer::Create((lm::PatternKind)(k + 1), "", false, &pres[k]).ok());
    std::vector<std::string> split_docs;
    std::vector<std::vector<std::string>> pieces;
    FUZZ_CHECK(ReadDocs(file.path(), mode, pres[k].get(), &split_docs, &pieces));
    FUZZ_CHECK(split_docs == docs);
    for (size_t i = 0; i < docs.size(); i++) CheckPieces(*pres[k], docs[i], pieces[i]);
  }
  return 0;
}
