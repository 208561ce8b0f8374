// encode.cpp (lm-tokenize): encode, decode and stats.
#include <omp.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "commands.h"
#include "docs.h"
#include "format/tokens.h"
#include "text/pretokenize.h"
#include "text/vocab.h"
#include "util/cli.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/progress.h"

namespace lm {

namespace {

// Where a command's data goes: stdout, or -o FILE written atomically (a
// temporary renamed into place only when everything succeeded).
class Output {
 public:
  Status Open(const cli::Command& c) {
    if (!c.vm.count("output")) return Status::OK();
    name_ = c.vm["output"].as<std::string>();
    LM_RETURN_IF_ERROR(file_.Open(name_));
    int fd = dup(file_.fd());
    if (fd < 0 || !(f_ = fdopen(fd, "wb"))) return Status::FromErrno(name_, "cannot open");
    return Status::OK();
  }
  ~Output() {
    if (f_) fclose(f_);
  }
  FILE* f() const { return f_ ? f_ : stdout; }
  const std::string& name() const { return name_; }
  bool to_stdout() const { return f_ == nullptr; }
  Status Commit() {
    if (!f_) return Status::OK();
    bool bad = fflush(f_) != 0 || ferror(f_);
    fclose(f_);
    f_ = nullptr;
    if (bad) return Status::FromErrno(name_, "write failed");
    return file_.Commit();
  }

 private:
  std::string name_ = "<stdout>";
  AtomicFile file_;
  FILE* f_ = nullptr;
};

const char kDocManual[] =
    "DOCUMENTS\n"
    "  Each FILE (or stdin) is one document unless --doc-delim, --lines or --jsonl\n"
    "  cuts it into several. Empty documents are skipped; an input that is empty,\n"
    "  or holds no document at all, is an error.\n";

struct Batch {
  std::vector<Piece> pieces;
  std::vector<std::vector<uint32_t>> ids;
  bool done = false;
  bool idle = false;  // the input paused after this batch: flush the output
};

// Encodes pieces in parallel, order kept; calls sink(piece, ids) in order and
// flush() when the input pauses (so that a pipe sees its documents promptly). With
// several threads, reading the next batch and writing the previous one
// overlap the encoding of the current one.
template <typename Sink, typename Flush>
Status EncodeAll(const Vocab& vocab, DocReader* reader, int threads, bool allow_special, bool eot,
                 Progress* progress, Sink sink, Flush flush) {
  size_t batch_bytes = (size_t)threads * (4 << 20);
  auto read = [&](Batch* b) {
    b->pieces.clear();
    Status s = reader->Next(batch_bytes, &b->pieces, &b->done);
    b->idle = reader->idle();
    return s;
  };
  auto encode = [&](Batch* b) {
    std::vector<Status> errs(b->pieces.size());
    b->ids.resize(b->pieces.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < b->pieces.size(); i++) {
      const Piece& p = b->pieces[i];
      b->ids[i].clear();
      Status s = allow_special ? vocab.Encode(p.text, true, &b->ids[i])
                               : vocab.EncodeOrdinary(p.text.data(), p.text.size(), &b->ids[i]);
      if (s.ok() && eot && p.doc_end) b->ids[i].push_back(vocab.eot_id());
      errs[i] = s.ok() ? s : s.With(reader->SourceName(p.source));
    }
    for (auto& s : errs) LM_RETURN_IF_ERROR(s);
    return Status::OK();
  };
  auto write = [&](Batch* b) {
    for (size_t i = 0; i < b->pieces.size(); i++) LM_RETURN_IF_ERROR(sink(b->pieces[i], b->ids[i]));
    // Only when the input pauses, so that the bytes written (chunk boundaries
    // included) do not depend on -j.
    return b->idle ? flush() : Status::OK();
  };
  if (threads <= 1) {
    Batch b;
    while (!b.done) {
      LM_RETURN_IF_ERROR(read(&b));
      LM_RETURN_IF_ERROR(encode(&b));
      LM_RETURN_IF_ERROR(write(&b));
      if (progress) progress->Update(reader->bytes_read());
    }
    return Status::OK();
  }
  // Three batches rotate: one being read, one encoded, one written.
  Batch slots[3];
  Batch* cur = &slots[0];
  Batch* next = &slots[1];
  Batch* out = &slots[2];
  LM_RETURN_IF_ERROR(read(cur));
  std::future<Status> writing;
  Status st;
  for (;;) {
    std::future<Status> reading;
    const bool more = !cur->done;
    if (more) reading = std::async(std::launch::async, read, next);
    st = encode(cur);
    Status ws = writing.valid() ? writing.get() : Status::OK();
    if (st.ok()) st = ws;
    if (st.ok()) {
      std::swap(cur, out);
      writing = std::async(std::launch::async, write, out);
    }
    Status rs = more ? reading.get() : Status::OK();
    if (st.ok()) st = rs;
    if (!st.ok() || !more) break;
    if (progress) progress->Update(reader->bytes_read());
    std::swap(cur, next);
  }
  Status ws = writing.valid() ? writing.get() : Status::OK();
  return st.ok() ? ws : st;
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

}  // namespace

Status CmdEncode(int argc, char** argv) {
  cli::Command c;
  c.synopsis =
      "lm-tokenize [encode] --vocab tok.bpe [--doc-delim STR | --lines | --jsonl FIELD] [--no-eot] "
      "[--allow-special] [--ids] [-j N] [FILE...]";
  c.options.add_options()("vocab,v", cli::po::value<std::string>()->value_name("FILE"),
                          "the vocabulary (tok.bpe), required")(
      "ids",
      "write decimal ids, space-separated, one line per document, instead of the binary stream")(
      "no-eot", "do not end each document with <|endoftext|>")(
      "allow-special", "text spelling a special token (<|endoftext|>) becomes that token")(
      "output,o", cli::po::value<std::string>()->value_name("FILE"),
      "write to FILE (atomically) instead of stdout")(
      "file", cli::po::value<std::vector<std::string>>()->value_name("FILE..."),
      "input files (default: stdin)");
  AddDocOptions(&c);
  c.positional.add("file", -1);
  c.manual = std::string(
                 "DESCRIPTION\n"
                 "  Encodes text into the token stream (docs/formats/tokens.md) on stdout, the\n"
                 "  input of lm-pack. Encoding is exactly tiktoken's for the same vocabulary and\n"
                 "  pattern. Text that looks like a special token is ordinary text unless\n"
                 "  --allow-special. Work is spread over threads; output order is input order.\n"
                 "\n") +
             kDocManual +
             "\nEXAMPLES\n"
             "  cat books/*.txt | lm-tokenize --vocab tok.bpe > books.tok\n"
             "  lm-tokenize encode --vocab tok.bpe --jsonl text data.jsonl | lm-pack -o shards/\n"
             "  echo 'Hello world' | lm-tokenize --vocab tok.bpe --ids --no-eot\n"
             "\nEXIT STATUS\n  0 success, 1 bad input or runtime error, 2 usage error.\n";
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (!c.vm.count("vocab")) return Status::Usage("--vocab is required");
  DocMode mode;
  LM_RETURN_IF_ERROR(GetDocMode(c, &mode));
  bool ids_out = c.vm.count("ids") > 0;
  Output out;
  LM_RETURN_IF_ERROR(out.Open(c));
  if (!ids_out && out.to_stdout() && isatty(1))
    return Status::Usage(
        "refusing to write a binary token stream to a terminal (redirect it, or use --ids)");
  Vocab vocab;
  LM_RETURN_IF_ERROR(Vocab::Load(c.vm["vocab"].as<std::string>(), &vocab));
  std::vector<std::string> files;
  if (c.vm.count("file")) files = c.vm["file"].as<std::vector<std::string>>();
  int threads = 1;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(c.vm["threads"].as<int>(), &threads));
  DocReader reader(files, mode, &vocab.pretokenizer());
  Progress progress("encode", 0);
  bool eot = !c.vm.count("no-eot");
  bool allow = c.vm.count("allow-special") > 0;
  if (allow) {
    std::vector<std::string> specials;
    for (uint32_t id = 0; id < vocab.size(); id++)
      if (vocab.is_special(id)) specials.push_back(vocab.token_bytes(id));
    reader.KeepWhole(specials);
  }
  if (ids_out) {
    bool line_open = false;
    LM_RETURN_IF_ERROR(EncodeAll(
        vocab, &reader, threads, allow, eot, &progress,
        [&](const Piece& p, const std::vector<uint32_t>& ids) {
          return WriteIdsLine(out, ids, &line_open, p.doc_end);
        },
        [&] {
          if (fflush(out.f()) != 0) return Status::FromErrno(out.name(), "write failed");
          return Status::OK();
        }));
    return out.Commit();
  }
  TokenStreamWriter w(out.f(), out.name());
  TokenStreamInfo info;
  info.vocab_size = vocab.size();
  info.eot_id = vocab.eot_id();
  info.vocab_id = vocab.id();
  // The header waits for the first document, so that bad input writes nothing.
  bool begun = false;
  LM_RETURN_IF_ERROR(EncodeAll(
      vocab, &reader, threads, allow, eot, &progress,
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
        if (s.ok() && fflush(out.f()) != 0) s = Status::FromErrno(out.name(), "write failed");
        return s;
      }));
  if (!begun) LM_RETURN_IF_ERROR(w.Begin(info));
  LM_RETURN_IF_ERROR(w.End());
  return out.Commit();
}

Status CmdStats(int argc, char** argv) {
  cli::Command c;
  c.synopsis =
      "lm-tokenize stats --vocab tok.bpe [--doc-delim STR | --lines | --jsonl FIELD] [-j N] "
      "[FILE...]";
  c.options.add_options()("vocab,v", cli::po::value<std::string>()->value_name("FILE"),
                          "the vocabulary (tok.bpe), required")(
      "file", cli::po::value<std::vector<std::string>>()->value_name("FILE..."),
      "input files (default: stdin)");
  AddDocOptions(&c);
  c.positional.add("file", -1);
  c.manual =
      std::string(
          "DESCRIPTION\n"
          "  Encodes the input and prints, one per line: documents, bytes (of document\n"
          "  text), tokens (not counting <|endoftext|>), bytes_per_token.\n\n") +
      kDocManual +
      "\nEXAMPLES\n  lm-tokenize stats --vocab tok.bpe ../shared/corpora/gutenberg/valid/*.txt\n" +
      "\nEXIT STATUS\n  0 success, 1 bad input or runtime error, 2 usage error.\n";
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (!c.vm.count("vocab")) return Status::Usage("--vocab is required");
  DocMode mode;
  LM_RETURN_IF_ERROR(GetDocMode(c, &mode));
  Vocab vocab;
  LM_RETURN_IF_ERROR(Vocab::Load(c.vm["vocab"].as<std::string>(), &vocab));
  std::vector<std::string> files;
  if (c.vm.count("file")) files = c.vm["file"].as<std::vector<std::string>>();
  DocReader reader(files, mode, &vocab.pretokenizer());
  uint64_t docs = 0, bytes = 0, tokens = 0;
  int threads = 1;
  LM_RETURN_IF_ERROR(cli::ResolveThreads(c.vm["threads"].as<int>(), &threads));
  LM_RETURN_IF_ERROR(EncodeAll(
      vocab, &reader, threads, false, false, nullptr,
      [&](const Piece& p, const std::vector<uint32_t>& ids) {
        docs += p.doc_end;
        bytes += p.text.size();
        tokens += ids.size();
        return Status::OK();
      },
      [] { return Status::OK(); }));
  printf("documents %llu\nbytes %llu\ntokens %llu\nbytes_per_token %.4f\n",
         (unsigned long long)docs, (unsigned long long)bytes, (unsigned long long)tokens,
         tokens ? (double)bytes / (double)tokens : 0.0);
  return Status::OK();
}

Status CmdDecode(int argc, char** argv) {
  cli::Command c;
  c.synopsis =
      "lm-tokenize decode --vocab tok.bpe [--ids] [--doc-delim STR | --lines | --keep-eot] [-o "
      "OUT] [FILE...]";
  c.options.add_options()("vocab,v", cli::po::value<std::string>()->value_name("FILE"),
                          "the vocabulary (tok.bpe), required")(
      "ids", "read decimal ids (separated by white space) instead of a token stream")(
      "doc-delim", cli::po::value<std::string>()->value_name("STR"),
      "write STR for each <|endoftext|> (default: nothing)")(
      "lines", "write a newline for each <|endoftext|>")("keep-eot",
                                                         "write <|endoftext|> as its text")(
      "output,o", cli::po::value<std::string>()->value_name("FILE"),
      "write to FILE (atomically) instead of stdout")(
      "file", cli::po::value<std::vector<std::string>>()->value_name("FILE..."),
      "token streams (default: stdin)");
  c.positional.add("file", -1);
  c.manual =
      "DESCRIPTION\n"
      "  Turns a token stream (or decimal ids) back into the exact bytes encoded,\n"
      "  invalid UTF-8 included. Each <|endoftext|> becomes the --doc-delim string\n"
      "  (nothing by default, so that one encoded file decodes to itself); other\n"
      "  special tokens become their text. A stream made with another vocabulary,\n"
      "  or an id outside this one, is an error.\n"
      "\nEXAMPLES\n"
      "  lm-tokenize --vocab tok.bpe book.txt > book.tok && lm-tokenize decode --vocab tok.bpe "
      "book.tok\n"
      "  echo '15496 995' | lm-tokenize decode --vocab gpt2.bpe --ids\n"
      "\nEXIT STATUS\n  0 success, 1 bad input or runtime error, 2 usage error.\n";
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (!c.vm.count("vocab")) return Status::Usage("--vocab is required");
  std::string vpath = c.vm["vocab"].as<std::string>();
  Vocab vocab;
  LM_RETURN_IF_ERROR(Vocab::Load(vpath, &vocab));
  std::string eot_text;
  if (c.vm.count("doc-delim") + c.vm.count("lines") + c.vm.count("keep-eot") > 1)
    return Status::Usage("--doc-delim, --lines and --keep-eot exclude one another");
  if (c.vm.count("doc-delim"))
    LM_RETURN_IF_ERROR(cli::Unescape(c.vm["doc-delim"].as<std::string>(), &eot_text));
  if (c.vm.count("lines")) eot_text = "\n";
  if (c.vm.count("keep-eot")) eot_text = vocab.token_bytes(vocab.eot_id());
  std::vector<std::string> files;
  if (c.vm.count("file")) files = c.vm["file"].as<std::vector<std::string>>();
  if (files.empty()) files.push_back("-");
  Output out;
  LM_RETURN_IF_ERROR(out.Open(c));
  std::string text;
  auto emit = [&](const uint32_t* ids, size_t n, const std::string& name) -> Status {
    text.clear();
    for (size_t i = 0; i < n; i++) {
      if (ids[i] == vocab.eot_id()) {
        text += eot_text;
        continue;
      }
      Status s = vocab.Decode(ids + i, 1, &text);
      if (!s.ok()) return s.With(name);
    }
    if (fwrite(text.data(), 1, text.size(), out.f()) != text.size())
      return Status::FromErrno(out.name(), "write failed");
    return Status::OK();
  };
  for (const std::string& f : files) {
    std::string name = f == "-" ? "<stdin>" : f;
    FILE* in = f == "-" ? stdin : fopen(f.c_str(), "rb");
    if (!in) return Status::FromErrno(f, "cannot open");
    Status st;
    if (c.vm.count("ids")) {
      std::vector<uint32_t> ids;
      uint64_t v = 0, line = 1;
      bool in_num = false, any = false;
      int ch;
      while (st.ok() && (ch = getc(in)) != EOF) {
        if (ch >= '0' && ch <= '9') {
          v = v * 10 + (uint64_t)(ch - '0');
          if (v > 0xffffffffULL)
            st = Status::Invalid(name + ":" + std::to_string(line) + ": id too large");
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
        if (!isspace(ch)) {
          // A control or non-ASCII byte is shown as its value, not written raw.
          char shown[16];
          if (ch >= 0x20 && ch < 0x7f)
            snprintf(shown, sizeof shown, "'%c'", (char)ch);
          else
            snprintf(shown, sizeof shown, "byte 0x%02x", (unsigned)(ch & 0xff));
          st = Status::Invalid(name + ":" + std::to_string(line) +
                               ": expected decimal token ids, found " + shown);
          break;
        }
        if (ids.size() >= 65536) {
          st = emit(ids.data(), ids.size(), name);
          ids.clear();
        }
      }
      if (st.ok() && in_num) ids.push_back((uint32_t)v), any = true;
      if (st.ok()) st = emit(ids.data(), ids.size(), name);
      if (st.ok() && !any) st = Status::Invalid(name + ": empty input (no token ids)");
    } else {
      TokenStreamReader r(in, name);
      st = r.Begin();
      const TokenStreamInfo& h = r.info();
      if (st.ok() && (h.vocab_id != vocab.id() || h.vocab_size != vocab.size()))
        st = Status::Invalid(name + ": token stream was made with another vocabulary (stream " +
                             HashHex(h.vocab_id) + " of " + std::to_string(h.vocab_size) +
                             " ids, " + vpath + " is " + HashHex(vocab.id()) + " of " +
                             std::to_string(vocab.size()) + ")");
      // Same vocabulary, so the end-of-text id can only differ if the header was forged.
      if (st.ok() && h.eot_id != kNoToken && h.eot_id != vocab.eot_id())
        st = Status::Invalid(name + ": the stream's end-of-text id " + std::to_string(h.eot_id) +
                             " is not " + vpath + "'s " + std::to_string(vocab.eot_id()));
      std::vector<uint32_t> ids;
      bool done = false;
      while (st.ok() && !done) {
        st = r.Next(&ids, &done);
        if (st.ok()) st = emit(ids.data(), ids.size(), name);
      }
    }
    if (in != stdin) fclose(in);
    LM_RETURN_IF_ERROR(st);
  }
  return out.Commit();
}

}  // namespace lm
