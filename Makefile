# lm: build every tool into bin/, run every test, run the demo.
# `make help` lists the targets and variables (from their ## comments).
#
# Layout: common/<lib>/*.cpp -> $(BUILD)/lib<lib>.a, with common/<lib>/lib.mk
# naming its link dependencies (LIB_<lib>_DEPS, itself first, then what it
# needs, in an order the linker can follow: a library before those it uses,
# with no linker group around them, so that a dependency cycle fails to link).
# tools/<t>/*.cpp -> bin/lm-<t>, with tools/<t>/tool.mk naming TOOL_<t>_LIBS.
# Unit tests tests/unit/<lib>/*_test.cpp link LIB_<lib>_DEPS. BUILD= and BIN=
# let several builds share a tree.

# Every core unless -j is given (a -j on the command line wins over this).
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)

BUILD ?= build## where objects and test programs go
BIN ?= bin## where the tools go
CXX ?= g++
CXXFLAGS ?= -O2 -g
WERROR ?=## -Werror: warnings as errors, as CI builds
TESTS ?=## with make test: only the test files whose name matches (grep -E)
LM_CXXFLAGS := -std=c++17 -Wall -Wextra -Wshadow -Wno-unused-parameter $(WERROR) -pthread -fopenmp \
  -MMD -MP -Icommon -I. $(shell pkg-config --cflags-only-I libzstd 2>/dev/null)
LDLIBS := -lzstd -lxxhash -lboost_program_options -lpcre2-8 -lopenblas -fopenmp -lpthread

# CUDA: built when nvcc is found (NVCC= disables it).
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)## empty: CPU only, even where nvcc exists (give it to every make)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# Machine code for every GPU generation from Ampere on that this nvcc knows
# (sm_80 A100, sm_86 RTX 30xx/A10/A6000, sm_89 RTX 40xx/L4/L40S, sm_90
# H100/H200, sm_100 B200, sm_120 RTX 50xx), plus PTX of the newest, which later
# GPUs compile at load time. CUDA_SASS=90 builds one (quicker while editing).
CUDA_SASS ?= 80 86 89 90 100 120## the GPU architectures built (90: H100/H200 only, quicker)
# nvcc compiles a file's architectures in parallel, on as many threads as cores.
NVCC_THREADS ?= 0
ifneq ($(NVCC),)
  NVCC_ARCHS := $(patsubst compute_%,%,$(filter compute_%,$(shell $(NVCC) --list-gpu-arch 2>/dev/null)))
  CUDA_SASS_BUILT := $(filter $(NVCC_ARCHS),$(CUDA_SASS))
  CUDA_ARCH ?= $(foreach a,$(CUDA_SASS_BUILT),-gencode arch=compute_$(a),code=sm_$(a)) \
    -gencode arch=compute_$(lastword $(CUDA_SASS_BUILT)),code=compute_$(lastword $(CUDA_SASS_BUILT))
endif
NVCCFLAGS ?= -O3 -std=c++17 --expt-relaxed-constexpr -lineinfo --threads $(NVCC_THREADS)
# cuDNN's fused attention: used when cuDNN 9 or later is in the toolkit (or
# /usr/include) and the cudnn-frontend headers are in CUDNN_FE (fetched by
# scripts/install-deps.sh --cudnn-frontend). CUDNN=0 builds without it:
# attention then uses the built-in kernels.
CUDNN ?= 1## 0: no cuDNN attention (the built-in kernels)
CUDNN_FE ?= .deps/cudnn-frontend/include
# The CUDA runtime is linked statically, so that a program runs wherever the
# driver is recent enough; cuBLAS(Lt) and cuDNN stay shared (hundreds of MB).
ifneq ($(NVCC),)
  HAVE_CUDA := 1
  LM_CXXFLAGS += -DLM_HAVE_CUDA=1 -I$(CUDA_HOME)/include
  CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas
  ifeq ($(CUDNN),1)
    CUDNN_H := $(firstword $(wildcard $(CUDA_HOME)/include/cudnn_version.h /usr/include/cudnn_version.h \
      /usr/include/$(shell $(CXX) -dumpmachine 2>/dev/null)/cudnn_version.h))
    CUDNN_MAJOR := $(if $(CUDNN_H),$(shell sed -n 's/^\#define CUDNN_MAJOR  *\([0-9]*\).*/\1/p' $(CUDNN_H)))
    ifneq ($(filter-out 0 1 2 3 4 5 6 7 8,$(CUDNN_MAJOR)),)
      # Fetched by `make deps`, and once by `make test` or `make demo` (which
      # install what is missing); a plain make never fetches: it builds the
      # built-in attention and says so. A failed fetch leaves
      # .deps/cudnn-frontend.failed, and only `make deps` tries again.
      ifeq ($(wildcard $(CUDNN_FE)/cudnn_frontend.h .deps/cudnn-frontend.failed),)
        ifneq ($(filter test demo,$(MAKECMDGOALS)),)
          $(shell scripts/install-deps.sh --cudnn-frontend >&2)
        endif
      endif
      ifneq ($(wildcard $(CUDNN_FE)/cudnn_frontend.h),)
        HAVE_CUDNN := 1
        LM_CXXFLAGS += -DLM_HAVE_CUDNN=1 -isystem $(CUDNN_FE) \
          $(addprefix -isystem ,$(filter-out $(CUDA_HOME)/include/,$(dir $(CUDNN_H))))
        # cudnn-frontend's compiled-kernel engines call NVRTC.
        CUDA_LDLIBS += -lcudnn -lnvrtc
      endif
    endif
  endif
  CUDA_LDLIBS += -lcudart_static -ldl -lrt -lpthread
  CUDA_SUMMARY := with the CUDA backend for sm_$(subst $(eval) ,/,$(CUDA_SASS_BUILT)); attention: $(if \
    $(HAVE_CUDNN),cuDNN $(CUDNN_MAJOR) where its graph builds else the built-in kernels,built-in \
    kernels ($(if $(filter 1,$(CUDNN)),no cuDNN 9 or no cudnn-frontend headers: make deps fetches them,CUDNN=0)))
else
  HAVE_CUDA :=
  CUDA_LDLIBS :=
endif
# NCCL (data-parallel lm-train on GPUs, common/comm/): in the CUDA build, when
# nccl.h is beside the toolkit's headers (or NCCL_HOME names where it is).
NCCL_HOME ?= $(CUDA_HOME)
HAVE_NCCL := $(if $(HAVE_CUDA),$(wildcard $(NCCL_HOME)/include/nccl.h))
ifneq ($(HAVE_NCCL),)
  LM_CXXFLAGS += -DLM_HAVE_NCCL=1 -I$(NCCL_HOME)/include
  NCCL_LDLIBS := -L$(NCCL_HOME)/lib64 -L$(NCCL_HOME)/lib -Wl,-rpath,$(NCCL_HOME)/lib64 -lnccl
endif

# MPI (data-parallel lm-train across processes and machines, common/comm/):
# Open MPI or MPICH through pkg-config's mpi (Debian's libopenmpi-dev or
# libmpich-dev). MPI= builds without it: lm-train then runs one process only.
MPI ?= $(shell pkg-config --exists mpi 2>/dev/null && echo mpi)## empty: no MPI even where it is installed (give it to every make)
ifneq ($(MPI),)
  LM_CXXFLAGS += -DLM_HAVE_MPI=1 $(shell pkg-config --cflags $(MPI))
  MPI_LDLIBS := $(shell pkg-config --libs $(MPI))
endif

# Everything built depends on the configuration, so that `make NVCC=` after
# `make` (or another CXXFLAGS) rebuilds instead of keeping the old objects.
# The stamp is rewritten only when the configuration changes. WERROR is left
# out: it changes no object (.ci/run builds with it, then runs make test).
CONFIG := CXX=$(CXX) CXXFLAGS=$(CXXFLAGS) NVCC=$(NVCC) NVCCFLAGS=$(NVCCFLAGS) CUDA_ARCH=$(CUDA_ARCH) \
  CUDNN=$(HAVE_CUDNN) MPI=$(MPI)
CONFIG_STAMP := $(BUILD)/.config
# make -n and -q change nothing, the stamp included: for them a changed
# configuration makes the stamp a phony target, so what depends on it shows
# as out of date.
DRY_RUN := $(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS)))
ifeq ($(filter clean help format deps,$(MAKECMDGOALS)),)
  ifeq ($(DRY_RUN),)
    $(shell mkdir -p $(BUILD) && { [ "$$(cat $(CONFIG_STAMP) 2>/dev/null)" = '$(CONFIG)' ] || printf '%s' '$(CONFIG)' >$(CONFIG_STAMP); })
  else ifneq ($(shell cat $(CONFIG_STAMP) 2>/dev/null),$(CONFIG))
    .PHONY: $(CONFIG_STAMP)
    $(CONFIG_STAMP): ; @mkdir -p $(BUILD) && printf '%s' '$(CONFIG)' >$@
  endif
endif

.DEFAULT_GOAL := all
.SECONDARY:
.DELETE_ON_ERROR:
LIBS := $(patsubst common/%/,%,$(sort $(dir $(wildcard common/*/*.cpp common/*/*.cu))))
TOOLS := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/main.cpp))))
-include $(wildcard common/*/lib.mk)
-include $(wildcard tools/*/tool.mk)
-include tests/fuzz/fuzz.mk

# --- dependencies -------------------------------------------------------------
# A plain `make` never installs anything: it names what is missing and points
# to `make deps`. `make test` and `make demo` install it (scripts/install-deps.sh),
# as the README promises (LM_DEPS is install for what they build).
LM_DEPS ?= check
DEPS_STAMP := $(BUILD)/.deps-ok
$(DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(BUILD)
	@if [ '$(LM_DEPS)' = install ]; then \
	  scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh; \
	else \
	  scripts/install-deps.sh --check || \
	  { echo "make: run 'make deps' to install them (make test and make demo do it themselves)" >&2; exit 1; }; \
	fi
	@touch $@

# --- libraries ---------------------------------------------------------------
define lib_rules
$(1)_CPP := $(wildcard common/$(1)/*.cpp)
$(1)_CU := $(if $(HAVE_CUDA),$(wildcard common/$(1)/*.cu))
$(1)_OBJS := $$(patsubst %.cpp,$(BUILD)/%.o,$$($(1)_CPP)) $$(patsubst %.cu,$(BUILD)/%.cu.o,$$($(1)_CU))
$(BUILD)/lib$(1).a: $$($(1)_OBJS)
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach l,$(LIBS),$(eval $(call lib_rules,$(l))))
# A lib.mk may set LIB_x_CUDA := 1 to make its users link the CUDA runtime.
libs_of = $(foreach l,$(1),$(BUILD)/lib$(l).a)
cuda_of = $(if $(HAVE_CUDA),$(if $(strip $(foreach l,$(1),$(LIB_$(l)_CUDA))),$(CUDA_LDLIBS)))
# A lib.mk may set LIB_x_LDLIBS to the system libraries it needs (MPI, NCCL).
ldlibs_of = $(sort $(foreach l,$(1),$(LIB_$(l)_LDLIBS)))

$(BUILD)/%.o: %.cpp $(CONFIG_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(LM_CXXFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu $(CONFIG_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -Icommon -I. -Xcompiler -fopenmp -MMD -MP -c $< -o $@

# --- tools -------------------------------------------------------------------
define tool_rules
$(BIN)/lm-$(1): $(patsubst %.cpp,$(BUILD)/%.o,$(wildcard tools/$(1)/*.cpp)) $$(call libs_of,$$(TOOL_$(1)_LIBS)) $(CONFIG_STAMP)
	@mkdir -p $(BIN)
	$(CXX) $(CXXFLAGS) -fopenmp -o $$@ $$(filter %.o,$$^) $$(filter %.a,$$^) $(LDLIBS) $$(call ldlibs_of,$$(TOOL_$(1)_LIBS)) $$(call cuda_of,$$(TOOL_$(1)_LIBS))
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rules,$(t))))

# Extra programs a lib.mk or tool.mk declares, and the GPU checks (tests/gpu/gpu.mk).
EXTRA_BINS ?=
include tests/gpu/gpu.mk

.PHONY: all
all: $(foreach t,$(TOOLS),$(BIN)/lm-$(t)) $(EXTRA_BINS) ## build bin/lm-* (the CUDA backend too when nvcc is found)
	@echo "built: $(notdir $^)$(if $(HAVE_CUDA), ($(CUDA_SUMMARY)), (CPU only: $(if $(filter command line environment%,$(origin NVCC)),NVCC is empty,nvcc not found)))"

# --- tests -------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/*/*_test.cpp)
UNIT_BINS := $(patsubst tests/unit/%.cpp,$(BUILD)/tests/%,$(UNIT_SRCS))
define unit_rules
$(BUILD)/tests/$(1)/%_test: $(BUILD)/tests/unit/$(1)/%_test.o $$(call libs_of,$$(LIB_$(1)_DEPS))
	@mkdir -p $$(dir $$@)
	$(CXX) $(CXXFLAGS) -fopenmp -o $$@ $$< $$(filter %.a,$$^) $(LDLIBS) $$(call ldlibs_of,$$(LIB_$(1)_DEPS)) $$(call cuda_of,$$(LIB_$(1)_DEPS))
endef
$(foreach l,$(LIBS),$(eval $(call unit_rules,$(l))))

.PHONY: test unit-tests
unit-tests: $(UNIT_BINS)
test: all unit-tests ## build and run every test (unit, Bats); ends "N passed, N failed, N skipped"
	@BUILD='$(BUILD)' BIN='$(BIN)' TESTS='$(TESTS)' \
	  UNIT_TESTS='$(sort $(UNIT_BINS) $(filter $(BUILD)/tests/%,$(EXTRA_BINS)))' \
	  tests/run-all.sh

.PHONY: demo
demo: all ## the whole pipeline on the fortunes corpus, ~5 minutes (scripts/demo.sh)
	@scripts/demo.sh
# What they build may install missing packages first (a plain make only names them).
test demo: LM_DEPS := install

.PHONY: format clean help deps
format: ## clang-format every C++ and CUDA source file
	@command -v clang-format >/dev/null || { echo "make format: clang-format not found (apt-get install clang-format)" >&2; exit 1; }
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
clean: ## remove $(BUILD)/ and $(BIN)/
	rm -rf $(BUILD) $(BIN)
deps: ## install the missing Debian packages (scripts/install-deps.sh)
	scripts/install-deps.sh
help: ## this list
	@echo "Targets:"
	@sed -n 's/^\([a-zA-Z_-]*\):.*## \(.*\)/  make \1\t\2/p' $(MAKEFILE_LIST) | expand -t 18
	@echo "Variables (make VAR=value ...):"
	@sed -n 's/^\([A-Z_]*\) ?=[^#]*## \(.*\)/  \1=\t\2/p' $(MAKEFILE_LIST) | expand -t 18

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
