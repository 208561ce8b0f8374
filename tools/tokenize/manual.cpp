// manual.cpp (lm-tokenize): the synopsis and manual of the tool and of each
// command (--help).
#include "manual.h"

// How files become documents: the same for encode, stats and train.
#define LM_DOCUMENTS_SECTION                                                           \
  "DOCUMENTS\n"                                                                        \
  "  Each FILE (or stdin) is one document unless --doc-delim, --lines, --paragraphs\n" \
  "  or --jsonl cuts it into several. --paragraphs splits at blank lines in any\n"     \
  "  line ending (\\n, \\r\\n or \\r), lines of spaces and tabs counting as blank:\n"  \
  "  a paragraph ends before the line ending of its last line, and blank lines\n"      \
  "  before a paragraph are dropped, so that CRLF and LF copies of a text give the\n"  \
  "  same documents (but for the \\r inside them). Empty documents are skipped; an\n"  \
  "  input that is empty, or holds no document at all, is an error.\n"

#define LM_EXIT_STATUS "EXIT STATUS\n  0 success, 1 bad input or runtime error, 2 usage error.\n"

namespace lm {

const char* const kTokenizeHelp =
    "Usage: lm-tokenize [COMMAND] [options] [FILE...]\n"
    "\n"
    "Byte-level BPE tokenizer of the lm pipeline.\n"
    "\n"
    "Commands:\n"
    "  encode    text -> token stream (the default when no command is named)\n"
    "  decode    token stream (or ids) -> text\n"
    "  train     learn a vocabulary from text\n"
    "  import    a tiktoken or GPT-2 vocabulary -> tok.bpe\n"
    "  export    tok.bpe -> Hugging Face tokenizer.json\n"
    "  stats     documents, bytes, tokens, bytes per token\n"
    "\n"
    "Run 'lm-tokenize COMMAND --help' for a command's options.\n"
    "\n"
    "EXAMPLES\n"
    "  lm-tokenize train --vocab-size 32768 -o tok.bpe corpus/*.txt\n"
    "  cat corpus/*.txt | lm-tokenize --vocab tok.bpe | lm-pack -o shards/\n"
    "  echo 'hello world' | lm-tokenize --vocab tok.bpe --ids\n"
    "\n" LM_EXIT_STATUS;

const char* const kEncodeSynopsis =
    "lm-tokenize [encode] --vocab tok.bpe [--doc-delim STR | --lines | --paragraphs | --jsonl "
    "FIELD] [--no-eot] "
    "[--allow-special] [--ids] [-j N] [FILE...]";

const char* const kEncodeManual =
    "DESCRIPTION\n"
    "  Encodes text into the token stream (docs/formats/tokens.md) on stdout, the\n"
    "  input of lm-pack. Encoding is exactly tiktoken's for the same vocabulary and\n"
    "  pattern. Text that looks like a special token is ordinary text unless\n"
    "  --allow-special. Work is spread over threads; output order is input order.\n"
    "\n" LM_DOCUMENTS_SECTION
    "\nEXAMPLES\n"
    "  cat books/*.txt | lm-tokenize --vocab tok.bpe > books.tok\n"
    "  lm-tokenize encode --vocab tok.bpe --jsonl text data.jsonl | lm-pack -o shards/\n"
    "  lm-tokenize --vocab tok.bpe --paragraphs talks.txt | lm-pack -o shards/ --val-fraction "
    "0.05\n"
    "  echo 'Hello world' | lm-tokenize --vocab tok.bpe --ids --no-eot\n"
    "\n" LM_EXIT_STATUS;

const char* const kStatsSynopsis =
    "lm-tokenize stats --vocab tok.bpe [--doc-delim STR | --lines | --paragraphs | --jsonl FIELD] "
    "[-j N] "
    "[FILE...]";

const char* const kStatsManual =
    "DESCRIPTION\n"
    "  Encodes the input and prints, one per line: documents, bytes (of document\n"
    "  text), tokens (not counting <|endoftext|>), bytes_per_token.\n"
    "\n" LM_DOCUMENTS_SECTION
    "\nEXAMPLES\n"
    "  lm-tokenize stats --vocab tok.bpe ../shared/corpora/gutenberg/valid/*.txt\n"
    "\n" LM_EXIT_STATUS;

const char* const kDecodeSynopsis =
    "lm-tokenize decode --vocab tok.bpe [--ids] [--doc-delim STR | --lines | --keep-eot] [-o "
    "OUT] [FILE...]";

const char* const kDecodeManual =
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
    "\n" LM_EXIT_STATUS;

const char* const kTrainSynopsis =
    "lm-tokenize train --vocab-size N [--pattern gpt2|cl100k|o200k|none|REGEX] [--special "
    "TOKEN]... "
    "[--min-frequency F] [--doc-delim STR | --lines | --paragraphs | --jsonl FIELD] [-j N] -o "
    "tok.bpe [FILE...]";

const char* const kTrainManual =
    "DESCRIPTION\n"
    "  Learns a byte-level BPE vocabulary: ids 0..255 are the bytes, then the\n"
    "  merges in the order learned, then <|endoftext|> and the --special tokens.\n"
    "  Text is cut by the pattern, distinct chunks are counted (memory grows with\n"
    "  their number, not with the input), then the most frequent pair is merged\n"
    "  until the vocabulary is full. Ties go to the smallest (left id, right id),\n"
    "  so the result is the same for any -j. Each file is one document unless\n"
    "  --doc-delim, --lines, --paragraphs or --jsonl cut it (as for encode);\n"
    "  chunks never span documents. Chunks over 1,024 bytes (with --pattern\n"
    "  none, a whole document) are counted as 1,024-byte slices.\n"
    "\nEXAMPLES\n"
    "  lm-tokenize train --vocab-size 32768 -o tok.bpe corpus/*.txt\n"
    "  cat corpus/*.txt | lm-tokenize train -n 8k --pattern cl100k --special '<|pad|>' -o "
    "tok.bpe\n"
    "\n" LM_EXIT_STATUS;

const char* const kImportSynopsis =
    "lm-tokenize import (--tiktoken FILE.tiktoken --pattern gpt2|cl100k|o200k|REGEX | --gpt2 "
    "encoder.json "
    "vocab.bpe) [--special TOKEN=ID]... -o tok.bpe";

const char* const kImportManual =
    "DESCRIPTION\n"
    "  Converts another tool's vocabulary into tok.bpe, keeping its ids, so that\n"
    "  encode gives exactly that tool's ids. Without --special, tiktoken's\n"
    "  gpt2, cl100k_base and o200k_base rank files (recognized by pattern and\n"
    "  size) get tiktoken's special tokens; any other gets <|endoftext|> after\n"
    "  its last id. GPT-2's encoder.json already holds <|endoftext|>. Ids may\n"
    "  have gaps (unused ids), but a file whose ids are more than half unused\n"
    "  is refused: a BPE vocabulary's ranks are dense.\n"
    "\nEXAMPLES\n"
    "  lm-tokenize import --tiktoken cl100k_base.tiktoken --pattern cl100k \\\n"
    "      --special '<|endoftext|>=100257' --special '<|fim_prefix|>=100258' -o cl100k.bpe\n"
    "  lm-tokenize import --gpt2 encoder.json vocab.bpe -o gpt2.bpe\n"
    "\n" LM_EXIT_STATUS;

const char* const kExportSynopsis = "lm-tokenize export --hf tokenizer.json --vocab tok.bpe";

const char* const kExportManual =
    "DESCRIPTION\n"
    "  Writes the vocabulary as a Hugging Face tokenizers file (byte-level BPE,\n"
    "  the same pattern, ignore_merges so that whole-token chunks match tiktoken)\n"
    "  that encodes text to the same ids as lm-tokenize's default, with one\n"
    "  caveat: Hugging Face splits the text of special tokens out of the input by\n"
    "  default, where lm-tokenize reads it as ordinary text; set\n"
    "  tokenizer.encode_special_tokens = True (tokenizers) for the same ids.\n"
    "  The merges are the ones that can happen: one per token that a merge\n"
    "  makes (tokens only a whole chunk gives have none), as \"A B\" strings,\n"
    "  which tokenizers 0.19 and newer read. Special tokens keep their\n"
    "  ids, gaps included (each is also in the model's vocabulary, where\n"
    "  tokenizers takes ids from); one that is not UTF-8, or is spelled like a\n"
    "  byte-level token, cannot be exported (exit 1).\n"
    "\nEXAMPLES\n"
    "  lm-tokenize export --hf tokenizer.json --vocab tok.bpe\n"
    "\n" LM_EXIT_STATUS;

}  // namespace lm
