// decode.cpp (lm-tokenize decode): a token stream, or decimal ids, back to
// the exact bytes encoded.
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "format/tokens.h"
#include "manual.h"
#include "pipeline.h"
#include "text/vocab.h"
#include "util/cli.h"
#include "util/hash.h"

namespace lm {

namespace {

struct DecodeOptions {
  std::string vocab, delim, output;
  bool ids = false, lines = false, keep_eot = false;
  std::vector<std::string> files;
};

void Declare(cli::Command* c, DecodeOptions* o) {
  cli::Options add(c);
  add("vocab,v", &o->vocab, "FILE", "the vocabulary (tok.bpe), required");
  add.Flag("ids", &o->ids, "read decimal ids (separated by white space) instead of a token stream");
  add("doc-delim", &o->delim, "STR", "write STR for each <|endoftext|> (default: nothing)");
  add.Flag("lines", &o->lines, "write a newline for each <|endoftext|>");
  add.Flag("keep-eot", &o->keep_eot, "write <|endoftext|> as its text");
  add("output,o", &o->output, "FILE", "write to FILE (atomically) instead of stdout");
  add("file", &o->files, "FILE...", "token streams (default: stdin)");
  add.Positional("file", -1);
}

// Writes ids as text, each <|endoftext|> as eot_text.
class Decoder {
 public:
  Decoder(const Vocab& vocab, std::string eot_text, Output* out)
      : vocab_(vocab), eot_text_(std::move(eot_text)), out_(out) {}
  Status Emit(const uint32_t* ids, size_t n, const std::string& name) {
    text_.clear();
    for (size_t i = 0; i < n; i++) {
      if (ids[i] == vocab_.eot_id()) {
        text_ += eot_text_;
        continue;
      }
      Status s = vocab_.Decode(ids + i, 1, &text_);
      if (!s.ok()) return s.With(name);
    }
    if (fwrite(text_.data(), 1, text_.size(), out_->f()) != text_.size())
      return Status::FromErrno(out_->name(), "write failed");
    return Status::OK();
  }

 private:
  const Vocab& vocab_;
  std::string eot_text_, text_;
  Output* out_;
};

// A byte that is not part of an id list, shown as itself when printable.
std::string ShownByte(int ch) {
  char shown[16];
  if (ch >= 0x20 && ch < 0x7f)
    snprintf(shown, sizeof shown, "'%c'", (char)ch);
  else
    snprintf(shown, sizeof shown, "byte 0x%02x", (unsigned)(ch & 0xff));
  return shown;
}

// Decimal ids separated by white space.
Status DecodeIdsText(FILE* in, const std::string& name, Decoder* d) {
  std::vector<uint32_t> ids;
  uint64_t v = 0, line = 1;
  bool in_num = false, any = false;
  int ch;
  while ((ch = getc(in)) != EOF) {
    if (ch >= '0' && ch <= '9') {
      v = v * 10 + (uint64_t)(ch - '0');
      if (v > 0xffffffffULL)
        return Status::Invalid(name + ":" + std::to_string(line) + ": id too large");
      in_num = true;
      continue;
    }
    if (in_num) {
      ids.push_back((uint32_t)v);
      v = 0;
      in_num = false;
      any = true;
    }
    if (ch == '\n') line++;
    if (!isspace(ch))
      return Status::Invalid(name + ":" + std::to_string(line) +
                             ": expected decimal token ids, found " + ShownByte(ch));
    if (ids.size() >= 65536) {
      LM_RETURN_IF_ERROR(d->Emit(ids.data(), ids.size(), name));
      ids.clear();
    }
  }
  if (in_num) ids.push_back((uint32_t)v), any = true;
  LM_RETURN_IF_ERROR(d->Emit(ids.data(), ids.size(), name));
  if (!any) return Status::Invalid(name + ": empty input (no token ids)");
  return Status::OK();
}

Status DecodeStream(FILE* in, const std::string& name, const Vocab& vocab,
                    const std::string& vocab_path, Decoder* d) {
  TokenStreamReader r(in, name);
  LM_RETURN_IF_ERROR(r.Begin());
  const TokenStreamInfo& h = r.info();
  if (h.vocab_id != vocab.id() || h.vocab_size != vocab.size())
    return Status::Invalid(name + ": token stream was made with another vocabulary (stream " +
                           HashHex(h.vocab_id) + " of " + std::to_string(h.vocab_size) + " ids, " +
                           vocab_path + " is " + HashHex(vocab.id()) + " of " +
                           std::to_string(vocab.size()) + ")");
  // Same vocabulary, so the end-of-text id can only differ if the header was forged.
  if (h.eot_id != kNoToken && h.eot_id != vocab.eot_id())
    return Status::Invalid(name + ": the stream's end-of-text id " + std::to_string(h.eot_id) +
                           " is not " + vocab_path + "'s " + std::to_string(vocab.eot_id()));
  std::vector<uint32_t> ids;
  bool done = false;
  while (!done) {
    LM_RETURN_IF_ERROR(r.Next(&ids, &done));
    LM_RETURN_IF_ERROR(d->Emit(ids.data(), ids.size(), name));
  }
  return Status::OK();
}

}  // namespace

Status CmdDecode(int argc, char** argv) {
  cli::Command c;
  c.synopsis = kDecodeSynopsis;
  c.manual = kDecodeManual;
  DecodeOptions o;
  Declare(&c, &o);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (o.vocab.empty()) return Status::Usage("--vocab is required");
  Vocab vocab;
  LM_RETURN_IF_ERROR(Vocab::Load(o.vocab, &vocab));
  if (c.vm.count("doc-delim") + o.lines + o.keep_eot > 1)
    return Status::Usage("--doc-delim, --lines and --keep-eot exclude one another");
  std::string eot_text;
  if (c.vm.count("doc-delim")) LM_RETURN_IF_ERROR(cli::Unescape(o.delim, &eot_text));
  if (o.lines) eot_text = "\n";
  if (o.keep_eot) eot_text = vocab.token_bytes(vocab.eot_id());
  if (o.files.empty()) o.files.push_back("-");
  Output out;
  LM_RETURN_IF_ERROR(out.Open(c.Given("output"), o.output));
  Decoder d(vocab, eot_text, &out);
  for (const std::string& f : o.files) {
    std::string name = f == "-" ? "<stdin>" : f;
    FILE* in = f == "-" ? stdin : fopen(f.c_str(), "rb");
    if (!in) return Status::FromErrno(f, "cannot open");
    Status st = o.ids ? DecodeIdsText(in, name, &d) : DecodeStream(in, name, vocab, o.vocab, &d);
    if (in != stdin) fclose(in);
    LM_RETURN_IF_ERROR(st);
  }
  return out.Commit();
}

}  // namespace lm
