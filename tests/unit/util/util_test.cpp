// util_test.cpp: Status, codecs, hashing, atomic files, CLI value parsers.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "util/cli.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/json.h"

using namespace lm;

TEST(xxh3_known_answers) {
  // XXH3-64 of the empty input with seed 0 (xxHash's own sanity value).
  CHECK_EQ(Hash64("", 0), 0x2D06800538D394C2ULL);
  Hasher h;
  h.Update("hello ");
  h.Update("world");
  CHECK_EQ(h.Digest(), Hash64(std::string("hello world")));
  uint64_t back = 0;
  CHECK(ParseHashHex(HashHex(0x0123456789abcdefULL), &back));
  CHECK_EQ(back, 0x0123456789abcdefULL);
  CHECK(!ParseHashHex("xyz", &back));
}

TEST(varint_round_trip_and_truncation) {
  uint64_t vals[] = {0, 1, 127, 128, 300, 1ULL << 35, ~0ULL};
  for (uint64_t v : vals) {
    std::string s;
    PutVarint(&s, v);
    const uint8_t* p = (const uint8_t*)s.data();
    uint64_t got = 0;
    CHECK(GetVarint(&p, p + s.size(), &got));
    CHECK_EQ(got, v);
    const uint8_t* q = (const uint8_t*)s.data();
    if (s.size() > 1) CHECK(!GetVarint(&q, q + s.size() - 1, &got));
  }
  std::string bad(11, (char)0xff);
  const uint8_t* p = (const uint8_t*)bad.data();
  uint64_t got;
  CHECK(!GetVarint(&p, p + bad.size(), &got));
}

TEST(valid_utf8) {
  auto ok = [](const std::string& s) { return ValidUtf8(s.data(), s.size()); };
  CHECK(ok(""));
  CHECK(ok("abc"));
  CHECK(ok("\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"));  // é 日 😀 U+10FFFF
  CHECK(ok(std::string("a\0b", 3)));
  CHECK(!ok("\xff"));
  CHECK(!ok("\x80"));
  CHECK(!ok("\xc3"));          // truncated
  CHECK(!ok("\xc0\xaf"));      // overlong '/'
  CHECK(!ok("\xe0\x80\xaf"));  // overlong
  CHECK(!ok("\xf0\x80\x80\xaf"));
  CHECK(!ok("\xed\xa0\x80"));      // surrogate U+D800
  CHECK(!ok("\xf4\x90\x80\x80"));  // U+110000
  CHECK(!ok("\xe6\x97"));
}

TEST(fixed_width_little_endian) {
  std::string s;
  PutU16(&s, 0x1234);
  PutU32(&s, 0xdeadbeef);
  PutU64(&s, 0x0102030405060708ULL);
  CHECK_EQ(s.size(), 14u);
  CHECK_EQ((uint8_t)s[0], 0x34);
  ByteReader r(s.data(), s.size());
  uint16_t a = 0;
  uint32_t b = 0;
  uint64_t c = 0;
  CHECK(r.U16(&a) && r.U32(&b) && r.U64(&c));
  CHECK_EQ(a, 0x1234);
  CHECK_EQ(b, 0xdeadbeefu);
  CHECK_EQ(c, 0x0102030405060708ULL);
  CHECK(!r.U16(&a));
}

TEST(atomic_file_commit_and_abort) {
  char tmpl[] = "/tmp/lm-util-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string p = JoinPath(dir, "out.txt");
  {
    AtomicFile f;
    CHECK_OK(f.Open(p));
    CHECK_OK(f.Write("abc"));
    CHECK(!PathExists(p));  // nothing visible before commit
  }
  CHECK(!PathExists(p));  // aborted by the destructor
  CHECK_OK(WriteFileAtomic(p, "hello"));
  std::string back;
  CHECK_OK(ReadFile(p, &back));
  CHECK_EQ(back, std::string("hello"));
  CHECK_OK(RemoveAll(dir));
  CHECK(!PathExists(dir));
}

// A link is followed (its target replaced, the link kept); a device or FIFO
// is written in place, never replaced by a regular file.
TEST(atomic_file_through_links_and_devices) {
  char tmpl[] = "/tmp/lm-util-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string target = JoinPath(dir, "target.txt"), link = JoinPath(dir, "link.txt");
  CHECK_OK(WriteFileAtomic(target, "old"));
  CHECK_EQ(symlink("target.txt", link.c_str()), 0);
  CHECK_OK(WriteFileAtomic(link, "new"));
  struct stat st;
  CHECK(lstat(link.c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  std::string back;
  CHECK_OK(ReadFile(target, &back));
  CHECK_EQ(back, std::string("new"));
  // A dangling link: the file is made where it points, the link kept.
  std::string dangling = JoinPath(dir, "dangling.txt");
  CHECK_EQ(symlink("made.txt", dangling.c_str()), 0);
  CHECK_OK(WriteFileAtomic(dangling, "made"));
  CHECK(lstat(dangling.c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  CHECK_OK(ReadFile(JoinPath(dir, "made.txt"), &back));
  CHECK_EQ(back, std::string("made"));
  // /dev/null stays a character device.
  CHECK_OK(WriteFileAtomic("/dev/null", "into the void"));
  CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
  // A FIFO receives the bytes, read by a child.
  std::string fifo = JoinPath(dir, "fifo");
  CHECK_EQ(mkfifo(fifo.c_str(), 0600), 0);
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = fopen(fifo.c_str(), "r");
    char b[16] = {0};
    size_t n = f ? fread(b, 1, sizeof b - 1, f) : 0;
    _exit(n == 5 && std::string(b) == "piped" ? 0 : 1);
  }
  CHECK_OK(WriteFileAtomic(fifo, "piped"));
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(lstat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode));
  // /dev/full refuses the write: an error, and the device is left alone.
  CHECK(!WriteFileAtomic("/dev/full", "x").ok());
  CHECK(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode));
  // A directory is refused before anything is written.
  Status s = WriteFileAtomic(dir, "x");
  CHECK(!s.ok() && s.message().find("is a directory") != std::string::npos);
  CHECK_OK(RemoveAll(dir));
}

TEST(mapped_file_refuses_what_is_not_a_regular_file) {
  char tmpl[] = "/tmp/lm-util-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  // A FIFO with no writer: refused at once, not waited on.
  std::string fifo = JoinPath(dir, "fifo");
  CHECK_EQ(mkfifo(fifo.c_str(), 0600), 0);
  MappedFile m;
  Status s = m.Open(fifo);
  CHECK(!s.ok() && s.message() == fifo + ": not a regular file");
  s = m.Open(dir);
  CHECK(!s.ok() && s.message() == dir + ": not a regular file");
  s = m.Open("/dev/zero");
  CHECK(!s.ok() && s.message() == "/dev/zero: not a regular file");
  CHECK_OK(RemoveAll(dir));
}

TEST(same_file_follows_links) {
  char tmpl[] = "/tmp/lm-util-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string a = JoinPath(dir, "a"), b = JoinPath(dir, "b");
  CHECK_OK(WriteFileAtomic(a, "1"));
  CHECK_OK(WriteFileAtomic(b, "1"));
  CHECK(SameFile(a, a));
  CHECK(SameFile(a, JoinPath(dir, "../" + BaseName(dir) + "/a")));
  CHECK(!SameFile(a, b));
  CHECK_EQ(symlink("a", JoinPath(dir, "sym").c_str()), 0);
  CHECK_EQ(link(a.c_str(), JoinPath(dir, "hard").c_str()), 0);
  CHECK(SameFile(JoinPath(dir, "sym"), a));
  CHECK(SameFile(JoinPath(dir, "hard"), a));
  CHECK(!SameFile(JoinPath(dir, "missing"), JoinPath(dir, "missing")));
  CHECK_OK(RemoveAll(dir));
}

TEST(paths) {
  CHECK_EQ(DirName("a/b/c"), std::string("a/b"));
  CHECK_EQ(DirName("c"), std::string("."));
  CHECK_EQ(DirName("/c"), std::string("/"));
  CHECK_EQ(BaseName("a/b/c/"), std::string("c"));
  CHECK_EQ(JoinPath("a/", "b"), std::string("a/b"));
}

TEST(parse_duration) {
  double s = 0;
  CHECK_OK(cli::ParseDuration("24h", &s));
  CHECK_NEAR(s, 86400, 1e-9);
  CHECK_OK(cli::ParseDuration("90m", &s));
  CHECK_NEAR(s, 5400, 1e-9);
  CHECK_OK(cli::ParseDuration("3600s", &s));
  CHECK_NEAR(s, 3600, 1e-9);
  CHECK_OK(cli::ParseDuration("1h30m", &s));
  CHECK_NEAR(s, 5400, 1e-9);
  CHECK_OK(cli::ParseDuration("45", &s));
  CHECK_NEAR(s, 45, 1e-9);
  CHECK(!cli::ParseDuration("abc", &s).ok());
  CHECK(!cli::ParseDuration("5x", &s).ok());
  CHECK(!cli::ParseDuration("-5m", &s).ok());
}

TEST(parse_count_and_unescape) {
  uint64_t n = 0;
  CHECK_OK(cli::ParseCount("10k", &n));
  CHECK_EQ(n, 10000u);
  CHECK_OK(cli::ParseCount("2M", &n));
  CHECK_EQ(n, 2000000u);
  CHECK_OK(cli::ParseCount("1e3", &n));
  CHECK_EQ(n, 1000u);
  CHECK(!cli::ParseCount("1.5", &n).ok());
  CHECK(!cli::ParseCount("ten", &n).ok());
  std::string u;
  CHECK_OK(cli::Unescape("\\n%\\n", &u));
  CHECK_EQ(u, std::string("\n%\n"));
  CHECK_OK(cli::Unescape("a\\x41\\0", &u));
  CHECK_EQ(u, std::string("aA\0", 3));
  CHECK(!cli::Unescape("\\x4", &u).ok());
  for (const char* bad : {"\\x+4", "\\x-1", "\\x f", "\\xg0"}) CHECK(!cli::Unescape(bad, &u).ok());
  CHECK_OK(cli::Unescape("\\xfF", &u));
  CHECK_EQ(u, std::string("\xff"));
  CHECK(!cli::Unescape("\\q", &u).ok());
}

TEST(file_lock_excludes) {
  char tmpl[] = "/tmp/lm-lock-test-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string p = JoinPath(dir, "lock");
  FileLock a, b;
  CHECK_OK(a.Lock(p));
  bool held = true;
  CHECK_OK(b.TryLock(p, &held));
  CHECK(!held);
  a.Unlock();
  CHECK_OK(b.TryLock(p, &held));
  CHECK(held);
  RemoveAll(dir);
}

TEST_MAIN()

TEST(json_text_refuses_nul_and_names_the_place) {
  nlohmann::json j;
  CHECK_OK(ParseJsonText(std::string_view("{\"a\": [1, 2]} \n"), &j));
  CHECK_EQ(j["a"][1].get<int>(), 2);
  // nlohmann alone reads `{"a":1}\0garbage` as `{"a":1}`.
  Status nul = ParseJsonText(std::string_view("{\"a\":1}\0garbage", 16), &j);
  CHECK_EQ(nul.code(), Status::kInvalid);
  CHECK(nul.message() == "not valid JSON (a NUL byte at offset 7)");
  Status junk = ParseJsonText(std::string_view("{\"a\":1} x"), &j);
  CHECK_EQ(junk.code(), Status::kInvalid);
  CHECK(junk.message().find("line 1, column 9") != std::string::npos);
  CHECK(junk.message().rfind("not valid JSON (", 0) == 0);
  CHECK_EQ(ParseJsonText(std::string_view(""), &j).code(), Status::kInvalid);
  // A long bad string is quoted only in part.
  std::string big = "{\"a\": \"" + std::string(5000, 'x') + "\\u12\"}";
  Status longs = ParseJsonText(std::string_view(big), &j);
  CHECK_EQ(longs.code(), Status::kInvalid);
  CHECK(longs.message().size() < 260);
  nlohmann::ordered_json o;
  CHECK_OK(ParseJsonText(std::string_view("{\"z\":1,\"a\":2}"), &o));
  CHECK(o.dump() == "{\"z\":1,\"a\":2}");
}

// A config.json of 200,000 nested brackets crashed lm-train (stack overflow
// in nlohmann's recursive dump); 512 levels are read, 513 refused.
TEST(json_nested_deeper_than_512_levels_is_refused_not_a_stack_overflow) {
  nlohmann::json j;
  auto nest = [](size_t n, const char* open, const char* close) {
    std::string s;
    for (size_t i = 0; i < n; i++) s += open;
    for (size_t i = 0; i < n; i++) s += close;
    return s;
  };
  CHECK_OK(ParseJsonText(std::string_view(nest(512, "[", "]")), &j));
  CHECK(j.dump().size() == 1024);
  Status deep = ParseJsonText(std::string_view(nest(513, "[", "]")), &j);
  CHECK_EQ(deep.code(), Status::kInvalid);
  CHECK(deep.message() == "not valid JSON for lm (nested deeper than 512 levels at offset 512)");
  std::string objects = "{\"a\": " + nest(200000, "[", "]") + "}";
  CHECK_EQ(ParseJsonText(std::string_view(objects), &j).code(), Status::kInvalid);
  // Brackets inside strings (escaped quotes too) are not nesting.
  std::string quoted = "[\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"]";
  CHECK_OK(ParseJsonText(std::string_view(quoted), &j));
}
