// encode.cpp (lm-tokenize encode): text -> token stream (or --ids text).
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "documents.h"
#include "format/tokens.h"
#include "manual.h"
#include "pipeline.h"
#include "text/vocab.h"
#include "util/cli.h"

namespace lm {

namespace {

struct EncodeOptions {
  std::string vocab, output;
  bool ids = false, no_eot = false, allow_special = false;
  std::vector<std::string> files;
  DocOptions docs;
};

void Declare(cli::Command* c, EncodeOptions* o) {
  cli::Options add(c);
  add("vocab,v", &o->vocab, "FILE", "the vocabulary (tok.bpe), required");
  add.Flag("ids", &o->ids,
           "write decimal ids, space-separated, one line per document, instead of the binary "
           "stream");
  add.Flag("no-eot", &o->no_eot, "do not end each document with <|endoftext|>");
  add.Flag("allow-special", &o->allow_special,
           "text spelling a special token (<|endoftext|>) becomes that token");
  add("output,o", &o->output, "FILE", "write to FILE (atomically) instead of stdout");
  add("file", &o->files, "FILE...", "input files (default: stdin)");
  add.Positional("file", -1);
  DeclareDocOptions(c, &o->docs);
}

Status WriteIdsLine(const Output& o, const std::vector<uint32_t>& ids, bool* line_open, bool end) {
  std::string s;
  s.reserve(ids.size() * 6 + 1);
  char buf[16];
  for (uint32_t id : ids) {
    if (*line_open) s.push_back(' ');
    int n = snprintf(buf, sizeof buf, "%u", id);
    s.append(buf, n);
    *line_open = true;
  }
  if (end) {
    s.push_back('\n');
    *line_open = false;
  }
  if (fwrite(s.data(), 1, s.size(), o.f()) != s.size())
    return Status::FromErrno(o.name(), "write failed");
  return Status::OK();
}

Status EncodeIds(const EncodeOptions& o, const Vocab& vocab, DocReader* reader, int threads,
                 Output* out) {
  Progress progress("encode", 0);
  bool line_open = false;
  return EncodeAll(
      vocab, reader, threads, o.allow_special, !o.no_eot, &progress,
      [&](const Piece& p, const std::vector<uint32_t>& ids) {
        return WriteIdsLine(*out, ids, &line_open, p.doc_end);
      },
      [&] {
        if (fflush(out->f()) != 0) return Status::FromErrno(out->name(), "write failed");
        return Status::OK();
      });
}

Status EncodeStream(const EncodeOptions& o, const Vocab& vocab, DocReader* reader, int threads,
                    Output* out) {
  Progress progress("encode", 0);
  TokenStreamWriter w(out->f(), out->name());
  TokenStreamInfo info;
  info.vocab_size = vocab.size();
  info.eot_id = vocab.eot_id();
  info.vocab_id = vocab.id();
  // The header waits for the first document, so that bad input writes nothing.
  bool begun = false;
  LM_RETURN_IF_ERROR(EncodeAll(
      vocab, reader, threads, o.allow_special, !o.no_eot, &progress,
      [&](const Piece&, const std::vector<uint32_t>& ids) {
        if (!begun) {
          LM_RETURN_IF_ERROR(w.Begin(info));
          begun = true;
        }
        return w.Write(ids.data(), ids.size());
      },
      [&] {
        if (!begun) return Status::OK();
        Status s = w.Flush();
        if (s.ok() && fflush(out->f()) != 0) s = Status::FromErrno(out->name(), "write failed");
        return s;
      }));
  if (!begun) LM_RETURN_IF_ERROR(w.Begin(info));
  return w.End();
}

}  // namespace

Status CmdEncode(int argc, char** argv) {
  cli::Command c;
  c.synopsis = kEncodeSynopsis;
  c.manual = kEncodeManual;
  EncodeOptions o;
  Declare(&c, &o);
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (o.vocab.empty()) return Status::Usage("--vocab is required");
  DocMode mode;
  LM_RETURN_IF_ERROR(ResolveDocMode(c, o.docs, &mode));
  Output out;
  LM_RETURN_IF_ERROR(out.Open(c.Given("output"), o.output));
  if (!o.ids && out.to_stdout() && isatty(1))
    return Status::Usage(
        "refusing to write a binary token stream to a terminal (redirect it, or use --ids)");
  Vocab vocab;
  LM_RETURN_IF_ERROR(Vocab::Load(o.vocab, &vocab));
  int threads = 1;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(o.docs.threads, &threads));
  DocReader reader(o.files, mode, &vocab.pretokenizer());
  if (o.allow_special) {
    std::vector<std::string> specials;
    for (uint32_t id = 0; id < vocab.size(); id++)
      if (vocab.is_special(id)) specials.push_back(vocab.token_bytes(id));
    reader.KeepWhole(specials);
  }
  LM_RETURN_IF_ERROR(o.ids ? EncodeIds(o, vocab, &reader, threads, &out)
                           : EncodeStream(o, vocab, &reader, threads, &out));
  return out.Commit();
}

}  // namespace lm
