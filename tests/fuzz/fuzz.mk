# tests/fuzz/fuzz.mk: the fuzz targets, tests/fuzz/NAME_fuzz.cpp, one per input
# a user can hand lm (docs/RELIABILITY.md lists them and what they found).
#
#   make fuzz FUZZ=vocab FUZZ_SECONDS=60   libFuzzer (clang) with ASan and UBSan,
#                                          for that long; FUZZ= a list, default all
#   make fuzz FUZZ=vocab FUZZ_SECONDS=0 FUZZ_RUNS=10000000   that many inputs instead
#   make fuzz-list                         the target names
# (make help lists the variables.)
#
# Each target also builds in every configuration as $(BUILD)/tests/fuzz/NAME_test,
# the target linked with driver.cpp instead of libFuzzer: `make test` replays
# its seed corpus (tests/fuzz/corpus/NAME) and the inputs of past findings
# (tests/fuzz/regress/NAME) through it, under the sanitizers in CI's build.
# libFuzzer's build lives in its own BUILD (FUZZ_BUILD), so that it shares
# no object with the ordinary one; its findings go to $(FUZZ_BUILD)/artifacts/NAME/
# and what it learns to $(FUZZ_BUILD)/corpus/NAME/.

FUZZ_NAMES := $(patsubst tests/fuzz/%_fuzz.cpp,%,$(wildcard tests/fuzz/*_fuzz.cpp))
# What each target links beyond its .cpp: libraries, and a tool's own sources.
FUZZ_config_LIBS := $(LIB_model_DEPS)
FUZZ_eval_record_LIBS := $(LIB_util_DEPS)
FUZZ_eval_record_SRCS := tools/eval/record.cpp
FUZZ_gpt2_LIBS := $(LIB_text_DEPS)
FUZZ_jsonl_LIBS := $(LIB_text_DEPS)
FUZZ_jsonl_SRCS := tools/tokenize/documents.cpp
FUZZ_manifest_LIBS := $(LIB_format_DEPS)
FUZZ_safetensors_LIBS := $(LIB_format_DEPS)
FUZZ_shard_LIBS := $(LIB_format_DEPS)
FUZZ_tiktoken_LIBS := $(LIB_text_DEPS)
FUZZ_tokens_LIBS := $(LIB_format_DEPS)
FUZZ_trainer_state_LIBS := $(LIB_model_DEPS)
FUZZ_vocab_LIBS := $(LIB_text_DEPS)

# Prerequisites are spelled out: this file is read before libs_of is defined.
# Libraries link in their LIB_x_DEPS order, with no --start-group (as the
# Makefile links).
fuzz_objs = $(BUILD)/tests/fuzz/$(1)_fuzz.o $(patsubst %.cpp,$(BUILD)/%.o,$(FUZZ_$(1)_SRCS))
fuzz_libs = $(foreach l,$(FUZZ_$(1)_LIBS),$(BUILD)/lib$(l).a)
define fuzz_rules
$(BUILD)/tests/fuzz/$(1)_test: $(call fuzz_objs,$(1)) $(BUILD)/tests/fuzz/driver.o $(call fuzz_libs,$(1))
	@mkdir -p $$(dir $$@)
	$(CXX) $(CXXFLAGS) -fopenmp -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $(LDLIBS)
$(BUILD)/tests/fuzz/$(1)_fuzzer: $(call fuzz_objs,$(1)) $(call fuzz_libs,$(1))
	@mkdir -p $$(dir $$@)
	$(CXX) $(CXXFLAGS) -fsanitize=fuzzer -fopenmp -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $(LDLIBS)
endef
$(foreach t,$(FUZZ_NAMES),$(eval $(call fuzz_rules,$(t))))
EXTRA_BINS += $(foreach t,$(FUZZ_NAMES),$(BUILD)/tests/fuzz/$(t)_test)

# libFuzzer needs clang (scripts/install-deps.sh --fuzz); -O1 keeps the
# sanitizers' reports exact. A finding stops its target; the others still run,
# and make fails at the end.
FUZZ ?= $(FUZZ_NAMES)## with make fuzz: the targets to run (make fuzz-list names them)
FUZZ_SECONDS ?= 60## with make fuzz: seconds per target (0: no limit)
FUZZ_RUNS ?=## with make fuzz: inputs per target (empty: no limit)
FUZZ_TIMEOUT ?= 10## with make fuzz: seconds after which one input counts as a hang
FUZZ_OPTS ?=## with make fuzz: more libFuzzer options (-jobs=2, -max_len=N, ...)
FUZZ_BUILD ?= build-fuzz
FUZZ_CXX ?= clang++
FUZZ_CXXFLAGS ?= -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
  -fno-sanitize-recover=all

.PHONY: fuzz fuzz-build fuzz-list
fuzz-list: ## the fuzz targets' names
	@echo $(FUZZ_NAMES)
fuzz-build: ## build the fuzz targets with libFuzzer, ASan and UBSan (in $(FUZZ_BUILD)/)
	@command -v $(FUZZ_CXX) >/dev/null || { echo "make fuzz: $(FUZZ_CXX) not found (scripts/install-deps.sh --fuzz installs clang)" >&2; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) BIN=$(FUZZ_BUILD)/bin NVCC= CXX=$(FUZZ_CXX) \
	  CXXFLAGS='$(FUZZ_CXXFLAGS)' $(foreach t,$(FUZZ),$(FUZZ_BUILD)/tests/fuzz/$(t)_fuzzer)
fuzz: fuzz-build ## run fuzz targets (FUZZ=, FUZZ_SECONDS=, FUZZ_RUNS=): libFuzzer with ASan and UBSan
	@failed=; for t in $(FUZZ); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts/$$t; \
	  echo "== fuzz $$t, $(FUZZ_SECONDS) s$(if $(FUZZ_RUNS), or $(FUZZ_RUNS) inputs)"; \
	  $(FUZZ_BUILD)/tests/fuzz/$${t}_fuzzer -max_total_time=$(FUZZ_SECONDS) \
	    $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS)) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t/ $(FUZZ_OPTS) \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t $$(ls -d tests/fuzz/regress/$$t 2>/dev/null) || \
	    failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: findings in$$failed (inputs in $(FUZZ_BUILD)/artifacts/)" >&2; exit 1; fi
