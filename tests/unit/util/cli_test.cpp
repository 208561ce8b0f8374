// cli_test.cpp: typed option values and range checks (util/cli.h) as a tool
// declares them: conversion, the error that names the option, and ranges.
#include "util/cli.h"

#include <cmath>

#include "../test.h"

using namespace lm;

namespace {

// Parses args (without the program name) into a fresh command built by `declare`.
Status ParseArgs(std::vector<std::string> args, const std::function<void(cli::Command*)>& declare) {
  cli::Command cmd;
  declare(&cmd);
  std::vector<char*> argv{(char*)"lm-test"};
  for (auto& a : args) argv.push_back(&a[0]);
  bool exit_now = false;
  return cli::Parse(&cmd, (int)argv.size(), argv.data(), &exit_now);
}

}  // namespace

TEST(count_duration_every_convert) {
  cli::Count c;
  cli::Duration d;
  cli::Every e;
  auto declare = [&](cli::Command* cmd) {
    cli::Options add(cmd);
    add("tokens", &c, "N", "tokens");
    add("budget", &d, "DURATION", "budget");
    add("val-every", &e, "N|DURATION", "every");
  };
  CHECK_OK(ParseArgs({"--tokens", "10k", "--budget", "1h30m", "--val-every", "30m"}, declare));
  CHECK_EQ(c.n, 10000u);
  CHECK_EQ(d.seconds, 5400.0);
  CHECK_EQ(e.steps, 0);
  CHECK_EQ(e.seconds, 1800.0);
  CHECK_OK(ParseArgs({"--val-every", "2k"}, declare));
  CHECK_EQ(e.steps, 2000);
  CHECK_OK(ParseArgs({"--val-every", "off"}, declare));
  CHECK(e.off());
}

TEST(malformed_typed_value_names_the_option) {
  cli::Count c;
  cli::Duration d;
  auto declare = [&](cli::Command* cmd) {
    cli::Options add(cmd);
    add("tokens", &c, "N", "tokens");
    add("budget", &d, "DURATION", "budget");
  };
  Status s = ParseArgs({"--tokens", "12x"}, declare);
  CHECK_EQ(s.code(), Status::kUsage);
  CHECK(s.message().find("--tokens: bad number '12x'") != std::string::npos);
  s = ParseArgs({"--budget", "5q"}, declare);
  CHECK_EQ(s.code(), Status::kUsage);
  CHECK(s.message().find("--budget: bad duration '5q'") != std::string::npos);
  s = ParseArgs({"--tokens", "1", "--tokens", "2"}, declare);
  CHECK_EQ(s.code(), Status::kUsage);
}

TEST(ranges_refuse_with_one_wording) {
  int keep = 0, layers = 0;
  float lr = 0, beta = 0;
  auto declare = [&](cli::Command* cmd) {
    cli::Options add(cmd);
    add("keep", &keep, "K", "kept").Default(3).Min(0);
    add("layers", &layers, "N", "layers").Min(1);
    add("lr", &lr, "X", "rate").Default(6e-4f, "6e-4").Check(cli::Positive());
    add("beta1", &beta, "X", "beta").Default(0.9f, "0.9").Check(cli::In(0, 1, false, true));
  };
  CHECK_OK(ParseArgs({}, declare));
  CHECK_EQ(keep, 3);
  CHECK_EQ(layers, 0);  // not given: not checked
  Status s = ParseArgs({"--keep", "-1"}, declare);
  CHECK_EQ(s.message(), std::string("--keep must be at least 0 (got -1)"));
  s = ParseArgs({"--layers", "0"}, declare);
  CHECK_EQ(s.message(), std::string("--layers must be at least 1 (got 0)"));
  s = ParseArgs({"--lr", "inf"}, declare);
  CHECK_EQ(s.message(), std::string("--lr must be a positive number (got inf)"));
  s = ParseArgs({"--lr", "nan"}, declare);
  CHECK_EQ(s.code(), Status::kUsage);
  s = ParseArgs({"--beta1", "1"}, declare);
  CHECK_EQ(s.message(), std::string("--beta1 must be in [0, 1) (got 1)"));
  CHECK_OK(ParseArgs({"--beta1", "0"}, declare));
}

TEST(short_only_option_is_range_checked) {
  int n = 0;
  auto declare = [&](cli::Command* cmd) {
    cli::Options add(cmd);
    add(",n", &n, "N", "tokens").Default(256).Min(0);
  };
  Status s = ParseArgs({"-n", "-1"}, declare);
  CHECK_EQ(s.message(), std::string("-n must be at least 0 (got -1)"));
  CHECK_OK(ParseArgs({"-n", "3"}, declare));
  CHECK_EQ(n, 3);
}

TEST(number_text_reads_back) {
  CHECK_EQ(cli::NumberText(6e-4), std::string("0.0006"));
  CHECK_EQ(cli::NumberText(-1), std::string("-1"));
  CHECK_EQ(cli::NumberText(0.1f), std::string("0.10000000149011612"));
  CHECK_EQ(cli::NumberText(0.1f, true), std::string("0.1"));
  CHECK_EQ(cli::NumberText(1e30), std::string("1e+30"));
  CHECK_EQ(cli::NumberText(20), std::string("20"));
  CHECK_EQ(cli::NumberText(-1000), std::string("-1000"));
  CHECK_EQ(cli::NumberText(1e15), std::string("1e+15"));
}

TEST_MAIN()
