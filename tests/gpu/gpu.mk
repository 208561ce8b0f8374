# tests/gpu/gpu.mk: the GPU check programs, built only with the CUDA backend
# (they need the CUDA toolkit's headers; none needs a GPU to build). Included
# by the Makefile after libs_of is defined. Libraries link in dependency
# order, users first: the checks, cuda, cpu (the CPU twins), then what both
# backends stand on.
#   bin/lm-kernel-check         every kernel against its CPU twin on a GPU, and
#                               the whole model on both backends (kernel_check.cpp)
#   tests/gpu/kernel_emu_test   the same kernels run on the CPU through emu.h;
#                               a unit test, run by `make test`
#   tests/gpu/backend_emu_test  the whole CUDA backend on the CPU (emulated
#                               kernels, runtime and GEMM) against the CPU backend,
#                               and sharded over emulated ranks against one
ifneq ($(HAVE_CUDA),)
GPU_CHECK_LIBS := cuda cpu model format util
GPU_EMU_LIBS := cpu model format util
EXTRA_BINS += $(BIN)/lm-kernel-check $(BUILD)/tests/gpu/kernel_emu_test \
  $(BUILD)/tests/gpu/backend_emu_test
$(BIN)/lm-kernel-check: $(BUILD)/tests/gpu/kernel_check.o $(call libs_of,$(GPU_CHECK_LIBS))
	@mkdir -p $(BIN)
	$(CXX) $(CXXFLAGS) -fopenmp -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) $(CUDA_LDLIBS)
# "#pragma unroll" is unknown to the host compiler (GCC 12 ignores the
# diagnostic pragma for it, so the flag goes here).
$(BUILD)/tests/gpu/kernel_emu_test.o $(BUILD)/tests/gpu/backend_emu_test.o: \
  LM_CXXFLAGS += -Wno-unknown-pragmas
# Both emulator tests compile the kernels (and the backend) into themselves and
# link without the CUDA libraries: backend_emu_test serves the runtime calls.
$(BUILD)/tests/gpu/kernel_emu_test: $(BUILD)/tests/gpu/kernel_emu_test.o $(call libs_of,$(GPU_EMU_LIBS))
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -fopenmp -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)
$(BUILD)/tests/gpu/backend_emu_test: $(BUILD)/tests/gpu/backend_emu_test.o $(call libs_of,$(GPU_EMU_LIBS))
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -fopenmp -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)
endif
